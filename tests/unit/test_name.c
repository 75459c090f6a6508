/* Unit tests of names and addresses: normalisation, IDNA, the label and length rules, CIDR text.
 * Mirrors src/core/name.c and src/core/addr.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <sandnet/policy.h>

static void norm_ok(const char *in, const char *want, enum sn_entry_kind want_kind)
{
	char out[256], msg[256];
	enum sn_entry_kind k;
	if (sn_name_normalize(in, out, sizeof(out), &k, msg, sizeof(msg)) != 0)
		fail_msg("%s refused: %s", in, msg);
	assert_string_equal(out, want);
	assert_int_equal(k, want_kind);
}

static void norm_bad(const char *in, const char *needle)
{
	char out[256], msg[256];
	enum sn_entry_kind k;
	assert_int_not_equal(sn_name_normalize(in, out, sizeof(out), &k, msg, sizeof(msg)), 0);
	if (!strstr(msg, needle))
		fail_msg("%s: message \"%s\" lacks \"%s\"", in, msg, needle);
}

static void test_names(void **state)
{
	(void)state;
	norm_ok("Example.COM", "example.com", SN_ENTRY_NAME);
	norm_ok("example.com.", "example.com", SN_ENTRY_NAME);
	norm_ok("*.example.com", "example.com", SN_ENTRY_WILDCARD);
	norm_ok("**.example.com", "example.com", SN_ENTRY_WILDCARD);
	norm_ok("*", "", SN_ENTRY_ANY_NAME);
	norm_ok("_dmarc.example.com", "_dmarc.example.com", SN_ENTRY_NAME);
	norm_ok("bücher.example", "xn--bcher-kva.example", SN_ENTRY_NAME);
	norm_ok("BÜCHER.example", "xn--bcher-kva.example", SN_ENTRY_NAME);
	norm_ok("*.bücher.example", "xn--bcher-kva.example", SN_ENTRY_WILDCARD);
	norm_ok("xn--bcher-kva.example", "xn--bcher-kva.example", SN_ENTRY_NAME);
	norm_ok("localhost", "localhost", SN_ENTRY_NAME);
	/* 63-byte label and a 253-byte name are fine */
	char n[300];
	memset(n, 'a', 63);
	memcpy(n + 63, ".com", 5);
	norm_ok(n, n, SN_ENTRY_NAME);
	for (int i = 0; i < 253; i++)
		n[i] = i % 2 ? '.' : 'a';
	n[253] = 0;
	norm_ok(n, n, SN_ENTRY_NAME);
	n[253] = '.';
	n[254] = 'a';
	n[255] = 0;
	norm_bad(n, "a name is at most 253 bytes");
	memset(n, 'a', 64);
	memcpy(n + 64, ".com", 5);
	norm_bad(n, "a label is at most 63 bytes");
	norm_bad("a..b", "empty label");
	norm_bad("", "empty");
	norm_bad(".", "empty label");
	norm_bad("*.", "empty");
	norm_bad("a b.com", "' ' is not allowed");
	norm_bad("a/b.com", "'/' is not allowed");
	norm_bad("a.*.com", "'*' is allowed only");
	norm_bad("**", "'*' is allowed only");
	norm_bad("*.*.com", "'*' is allowed only");
	norm_bad("foo.123", "last label");
	norm_bad("a\x01.com", "byte 0x01");
}

static void cidr_ok(const char *in, const char *out)
{
	struct sn_cidr c;
	char msg[256], buf[SN_CIDR_STRLEN];
	if (sn_cidr_parse(in, &c, msg, sizeof(msg)) != 0)
		fail_msg("%s refused: %s", in, msg);
	assert_string_equal(sn_cidr_format(&c, buf, sizeof(buf)), out);
}

static void cidr_bad(const char *in, const char *needle)
{
	struct sn_cidr c;
	char msg[256];
	assert_int_not_equal(sn_cidr_parse(in, &c, msg, sizeof(msg)), 0);
	if (!strstr(msg, needle))
		fail_msg("%s: message \"%s\" lacks \"%s\"", in, msg, needle);
}

static void test_cidrs(void **state)
{
	(void)state;
	cidr_ok("10.0.0.0/8", "10.0.0.0/8");
	cidr_ok("1.2.3.4", "1.2.3.4");
	cidr_ok("1.2.3.4/32", "1.2.3.4");
	cidr_ok("0.0.0.0/0", "0.0.0.0/0");
	cidr_ok("2001:DB8:0:0::/64", "2001:db8::/64");
	cidr_ok("::1", "::1");
	cidr_ok("::/0", "::/0");
	cidr_ok("::ffff:1.2.3.4", "::ffff:1.2.3.4");
	cidr_bad("10.0.0.1/8", "did you mean 10.0.0.0/8?");
	cidr_bad("10.128.0.0/9x", "prefix length must be a number");
	cidr_bad("10.0.0.0/", "prefix length must be a number");
	cidr_bad("10.0.0.0/33", "too long for IPv4 (0-32)");
	cidr_bad("::/129", "too long for IPv6 (0-128)");
	cidr_bad("300.1.1.1", "not a valid IPv4 address");
	cidr_bad("1.2.3", "not a valid IPv4 address");
	cidr_bad("01.2.3.4", "not a valid IPv4 address");
	cidr_bad("::g", "not a valid IPv6 address");
	cidr_bad("1:2:3:4:5:6:7:8:9", "not a valid IPv6 address");
	cidr_bad("/8", "not an IP address");

	struct sn_cidr c;
	char msg[256];
	uint8_t a[16] = {10, 200, 3, 4};
	sn_cidr_parse("10.192.0.0/10", &c, msg, sizeof(msg));
	assert_true(sn_cidr_contains(&c, AF_INET, a));
	a[1] = 128;
	assert_false(sn_cidr_contains(&c, AF_INET, a));
	assert_false(sn_cidr_contains(&c, AF_INET6, a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cidrs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

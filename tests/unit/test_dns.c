/* Unit tests of the DNS message reader (src/proxy/dns.c) over the seed messages of
 * fuzz/corpus/dns (built by tests/lib/dnsmsg.py) and hand-made malformed ones. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"

static size_t load(const char *name, uint8_t *buf, size_t size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/dns/%s", CORPUS_DIR, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, size, f);
	fclose(f);
	return n;
}

static void test_query(void **state)
{
	(void)state;
	uint8_t m[512], out[512];
	size_t n = load("q_aaaa_edns", m, sizeof(m));
	struct sn_dns_question q;
	assert_int_equal(sn_dns_parse_query(m, n, &q), 0);
	assert_string_equal(q.name, "www.example.com");
	assert_int_equal(q.type, SN_DNS_AAAA);
	assert_int_equal(q.id, 2);
	size_t r = sn_dns_reply_error(m, q.end, SN_DNS_NXDOMAIN, out, sizeof(out));
	assert_int_equal(r, q.end);
	assert_int_equal(out[2], 0x81); /* QR, RD */
	assert_int_equal(out[3] & 0x0f, SN_DNS_NXDOMAIN);
	assert_int_equal(out[11], 0); /* no additional records */
	/* a response is not a query; a truncated question is malformed */
	assert_int_equal(sn_dns_parse_query(out, r, &q), -EPROTO);
	assert_int_equal(sn_dns_parse_query(m, 20, &q), -EINVAL);
	assert_int_equal(sn_dns_parse_query(m, 5, &q), -EINVAL);
	/* a name that points at itself */
	uint8_t loop[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	assert_int_equal(sn_dns_parse_query(loop, sizeof(loop), &q), -EINVAL);
	/* label bytes outside the host name alphabet cannot pass as another name */
	uint8_t odd[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', '.', 'b', 1, 'c', 0, 0, 1, 0, 1};
	assert_int_equal(sn_dns_parse_query(odd, sizeof(odd), &q), 0);
	assert_string_equal(q.name, "a?b.c");
	size_t b = sn_dns_build_query(7, "Host.example.", SN_DNS_A, out, sizeof(out));
	assert_true(b > 0);
	assert_int_equal(sn_dns_parse_query(out, b, &q), 0);
	assert_string_equal(q.name, "host.example");
	assert_int_equal(sn_dns_build_query(7, "a..b", SN_DNS_A, out, sizeof(out)), 0);
}

static void test_chain(void **state)
{
	(void)state;
	uint8_t m[512];
	struct sn_dns_answer a;
	size_t n = load("r_cname", m, sizeof(m));
	assert_int_equal(sn_dns_parse_response(m, n, "WWW.test.", &a), 0);
	assert_int_equal(a.nnames, 3);
	assert_string_equal(a.names[0], "www.test");
	assert_string_equal(a.names[2], "end.cdn.test");
	assert_int_equal(a.naddrs, 2);
	assert_int_equal(a.addrs[0].family, AF_INET);
	assert_int_equal(a.addrs[0].ttl, 30); /* the chain's smallest TTL */
	assert_int_equal(a.addrs[1].family, AF_INET6);
	n = load("r_cname_unordered", m, sizeof(m));
	assert_int_equal(sn_dns_parse_response(m, n, "x.test", &a), 0);
	assert_int_equal(a.naddrs, 1);
	assert_int_equal(a.addrs[0].ttl, 5);
	/* addresses of names outside the chain are not the question's */
	assert_int_equal(sn_dns_parse_response(m, n, "other.test", &a), 0);
	assert_int_equal(a.naddrs, 0);
	n = load("r_nx", m, sizeof(m));
	assert_int_equal(sn_dns_parse_response(m, n, "nope.test", &a), 0);
	assert_int_equal(a.rcode, SN_DNS_NXDOMAIN);
	/* cut anywhere before its OPT record (11 bytes, not read), a response is malformed */
	n = load("r_cname", m, sizeof(m));
	for (size_t cut = 0; cut < n - 11; cut++)
		assert_int_not_equal(sn_dns_parse_response(m, cut, "www.test", &a), 0);
}

static bool drop_private(int family, const uint8_t *addr, void *arg)
{
	(void)arg;
	return family == AF_INET && addr[0] == 10;
}

static void test_filter(void **state)
{
	(void)state;
	uint8_t m[512], out[512];
	struct sn_dns_answer a;
	size_t n = load("r_a", m, sizeof(m));
	ssize_t w = sn_dns_filter(m, n, drop_private, NULL, out, sizeof(out));
	assert_true(w > 0);
	assert_int_equal(sn_dns_parse_response(out, (size_t)w, "a.test", &a), 0);
	assert_int_equal(a.naddrs, 1);
	assert_int_equal(a.addrs[0].addr[0], 192);
	/* the chain survives the rebuild, names written out; the OPT record is kept */
	n = load("r_cname", m, sizeof(m));
	w = sn_dns_filter(m, n, drop_private, NULL, out, sizeof(out));
	assert_true(w > 0);
	assert_int_equal(out[11], 1);
	assert_int_equal(sn_dns_parse_response(out, (size_t)w, "www.test", &a), 0);
	assert_int_equal(a.naddrs, 2);
	/* too small: answers cut, TC set */
	w = sn_dns_filter(m, n, drop_private, NULL, out, 60);
	assert_true(w > 0 && w <= 60);
	assert_true(out[2] & 0x02);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

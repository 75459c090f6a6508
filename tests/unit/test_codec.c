/* Unit tests of the policy codecs: JSON and YAML in, canonical JSON out, validation errors with
 * their paths, limits, round trips. Mirrors src/core/decode.c, yaml.c, format.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sandnet/policy.h>

static struct sn_policy *parse_ok(const char *doc)
{
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p = NULL;
	int rc = sn_policy_parse(doc, strlen(doc), SN_FORMAT_AUTO, SN_DIALECT_AUTO, &p, &errs);
	if (rc) {
		for (unsigned i = 0; i < errs.n; i++)
			print_error("unexpected error: %s: %s\n", errs.e[i].path, errs.e[i].msg);
		fail_msg("parse failed for: %s", doc);
	}
	return p;
}

/* Expects the document to be refused with an error at path whose message contains needle. */
static void expect_err(const char *doc, enum sn_dialect dialect, const char *path,
		       const char *needle)
{
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p = (void *)1;
	int rc = sn_policy_parse(doc, strlen(doc), SN_FORMAT_AUTO, dialect, &p, &errs);
	if (rc == 0)
		fail_msg("accepted: %s", doc);
	assert_null(p);
	for (unsigned i = 0; i < errs.n; i++)
		if (strcmp(errs.e[i].path, path) == 0 && strstr(errs.e[i].msg, needle))
			return;
	for (unsigned i = 0; i < errs.n; i++)
		print_error("got: %s: %s\n", errs.e[i].path, errs.e[i].msg);
	fail_msg("no error at \"%s\" containing \"%s\" for: %s", path, needle, doc);
}

struct bad {
	const char *doc;
	const char *path;
	const char *needle;
};

static const struct bad native_bad[] = {
	/* unknown fields, top level and inside a rule */
	{"{\"egres\": {}}", "egres", "unknown field"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"port\": [80]}]}}",
	 "egress.rules[0].port", "unknown field"},
	{"{\"egress\": {\"moed\": \"allow-all\"}}", "egress.moed", "unknown field"},
	/* mode, action */
	{"{\"egress\": {\"mode\": \"blockall\"}}", "egress.mode", "not a mode"},
	{"{\"ingress\": {\"mode\": 1}}", "ingress.mode", "allow-all or block-all"},
	{"{\"egress\": {\"rules\": [{\"to\": [\"1.2.3.4\"]}]}}", "egress.rules[0].action",
	 "missing"},
	{"{\"egress\": {\"rules\": [{\"action\": \"permit\"}]}}", "egress.rules[0].action",
	 "not an action"},
	/* empty lists */
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": []}]}}", "egress.rules[0].to",
	 "is empty"},
	{"{\"ingress\": {\"rules\": [{\"action\": \"allow\", \"from\": []}]}}",
	 "ingress.rules[0].from", "is empty"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"ports\": []}]}}",
	 "egress.rules[0].ports", "is empty"},
	/* to/from in the wrong direction */
	{"{\"ingress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"1.2.3.4\"]}]}}",
	 "ingress.rules[0].to", "use \"from\""},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"from\": [\"1.2.3.4\"]}]}}",
	 "egress.rules[0].from", "use \"to\""},
	/* addresses */
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"10.0.0.1/8\"]}]}}",
	 "egress.rules[0].to[0]", "did you mean 10.0.0.0/8?"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"2001:db8::1/32\"]}]}}",
	 "egress.rules[0].to[0]", "did you mean 2001:db8::/32?"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"10.0.0.0/33\"]}]}}",
	 "egress.rules[0].to[0]", "prefix length 33 is too long for IPv4"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"::/129\"]}]}}",
	 "egress.rules[0].to[0]", "prefix length 129 is too long for IPv6"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"300.1.1.1\"]}]}}",
	 "egress.rules[0].to[0]", "not a valid IPv4 address"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"1.2.3\"]}]}}",
	 "egress.rules[0].to[0]", "not a valid IPv4 address"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"::g\"]}]}}",
	 "egress.rules[0].to[0]", "not a valid IPv6 address"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [\"10.0.0.0/x\"]}]}}",
	 "egress.rules[0].to[0]", "prefix length must be a number"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"to\": [42]}]}}",
	 "egress.rules[0].to[0]", "must be a string"},
	/* ports */
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [0]}]}}",
	 "egress.rules[0].ports[0]", "0 is not a port (1-65535)"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [65536]}]}}",
	 "egress.rules[0].ports[0]", "65536 is not a port (1-65535)"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [\"9000-8000\"]}]}}",
	 "egress.rules[0].ports[0]", "reversed range; write \"8000-9000\""},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [\"http\"]}]}}",
	 "egress.rules[0].ports[0]", "not a port or a port range"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [\"80-\"]}]}}",
	 "egress.rules[0].ports[0]", "not a port or a port range"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [80.5]}]}}",
	 "egress.rules[0].ports[0]", "must be a port number"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"ports\": [80], \"protocol\": "
	 "\"icmp\"}]}}",
	 "egress.rules[0].ports", "ICMP has no ports"},
	{"{\"egress\": {\"rules\": [{\"action\": \"deny\", \"protocol\": \"sctp\"}]}}",
	 "egress.rules[0].protocol", "not a protocol"},
	/* names */
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": "
	 "[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com\"]}]}}",
	 "egress.rules[0].to[0]", "a label is at most 63 bytes"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"a..com\"]}]}}",
	 "egress.rules[0].to[0]", "empty label"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\".com\"]}]}}",
	 "egress.rules[0].to[0]", "empty label"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"exa mple.com\"]}]}}",
	 "egress.rules[0].to[0]", "not allowed in a name"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"a!b.com\"]}]}}",
	 "egress.rules[0].to[0]", "'!' is not allowed"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"a.*.com\"]}]}}",
	 "egress.rules[0].to[0]", "'*' is allowed only as the whole first label"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"*foo.com\"]}]}}",
	 "egress.rules[0].to[0]", "'*' is allowed only"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"to\": [\"foo.*\"]}]}}",
	 "egress.rules[0].to[0]", "'*' is allowed only"},
	/* ingress */
	{"{\"ingress\": {\"rules\": [{\"action\": \"allow\", \"from\": [\"example.com\"]}]}}",
	 "ingress.rules[0].from[0]", "addresses only"},
	{"{\"ingress\": {\"mask_request_host\": \"a b:80\"}}", "ingress.mask_request_host",
	 "not allowed in a name"},
	{"{\"ingress\": {\"mask_request_host\": \"localhost:99999\"}}",
	 "ingress.mask_request_host", "1-65535 or the placeholder {port}"},
	{"{\"ingress\": {\"mask_request_host\": \"localhost:{PORT}\"}}",
	 "ingress.mask_request_host", "placeholder {port}"},
	{"{\"ingress\": {\"mask_request_host\": \"::1:80\"}}", "ingress.mask_request_host",
	 "not host[:port]"},
	{"{\"ingress\": {\"mask_request_host\": \"\"}}", "ingress.mask_request_host",
	 "not host[:port]"},
	{"{\"egress\": {\"mask_request_host\": \"x\"}}", "egress.mask_request_host",
	 "unknown field"},
	/* syntax */
	{"{\"egress\": {}} x", "", "JSON syntax error"},
	{" \r\n\t{\"egress\": {}} x", "", "JSON syntax error"}, /* JSON after white space */
	{"{\"egress\": {}, \"egress\": {}}", "", "JSON syntax error"},
	{"{\"egress\": {\"rules\": [{\"action\": \"allow\", \"name\": \"\xff\"}]}}", "",
	 "JSON syntax error"},
	{"[1, 2]", "", "must be an object"},
	/* YAML */
	{"egress:\n  mode: block-all\n  mode: allow-all\n", "egress.mode", "duplicate key"},
	{"egress:\n  rules:\n    - action: allow\n      action: deny\n", "egress.rules[0].action",
	 "duplicate key"},
	{"egress: &a\n  mode: block-all\ningress: *a\n", "ingress", "not supported"},
	{"egress:\n  mode: block-all\n  ? {a: 1}\n  : x\n", "egress",
	 "a list or mapping cannot be a key"},
	{"? [a]\n: 1\n", "", "a key is not a string (line 1)"},
	{"egress:\n  mode: [\n", "", "YAML syntax error"},
	{"egress: {}\n---\negress: {}\n", "", "more than one YAML document"},
	{"egress:\n  rules:\n    - action: allow\n      to: [\"10.0.0.1/8\"]\n",
	 "egress.rules[0].to[0]", "did you mean 10.0.0.0/8?"},
	{"egress:\n  rules:\n    - action: allow\n      name: \"\xc3\x28\"\n", "",
	 "YAML syntax error"},
	/* mixing dialects */
	{"{\"egress\": {\"mode\": \"block-all\"}, \"allowOut\": [\"1.1.1.1\"]}", "",
	 "mixes policy dialects"},
	{"{\"mode\": \"block-all\", \"egress\": {\"rules\": []}}", "", "mixes policy dialects"},
	{"{\"egress\": {\"rules\": [], \"allowed_cidrs\": []}}", "", "mixes policy dialects"},
};

static void test_native_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(native_bad) / sizeof(native_bad[0]); i++)
		expect_err(native_bad[i].doc, SN_DIALECT_AUTO, native_bad[i].path,
			   native_bad[i].needle);
}

static void test_every_error_reported(void **state)
{
	(void)state;
	const char *doc = "{\"egress\": {\"mode\": \"x\", \"rules\": ["
			  "{\"action\": \"allow\", \"to\": [\"1.2.3\", \"ok.com\", \"10.0.0.1/8\"]},"
			  "{\"action\": \"deny\", \"ports\": [0, 70000, \"9-8\"]},"
			  "{\"bogus\": 1}]}}";
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p;
	assert_int_not_equal(sn_policy_parse(doc, strlen(doc), 0, 0, &p, &errs), 0);
	/* mode, to[0], to[2], ports[0..2], rules[2].bogus, rules[2].action */
	assert_int_equal(errs.n, 8);
	assert_string_equal(errs.e[0].path, "egress.mode");
	assert_string_equal(errs.e[1].path, "egress.rules[0].to[0]");
	assert_string_equal(errs.e[2].path, "egress.rules[0].to[2]");
	assert_string_equal(errs.e[3].path, "egress.rules[1].ports[0]");
	assert_string_equal(errs.e[5].path, "egress.rules[1].ports[2]");
}

/* Values quoted in messages: escaped, cut at a character's end, and never more than the sentence
 * after them can bear. */
#define A8 "aaaaaaaa"
#define A62 A8 A8 A8 A8 A8 A8 A8 "aaaaaa"
#define E1 "\xc3\xa9" /* two bytes */
#define E8 E1 E1 E1 E1 E1 E1 E1 E1
static void test_quote(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", "\"\""},
		{"abc", "\"abc\""},
		{"a\"b\\c", "\"a\\\"b\\\\c\""},
		{"\x1b[2J\x7f", "\"\\x1b[2J\\x7f\""},
		/* not UTF-8: lone continuation, cut sequence, overlong, surrogate, > U+10FFFF */
		{"\x80 \xc3 \xc0\x80 \xed\xa0\x80 \xf4\x90\x80\x80",
		 "\"\\x80 \\xc3 \\xc0\\x80 \\xed\\xa0\\x80 \\xf4\\x90\\x80\\x80\""},
		{"\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xbc",
		 "\"\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xbc\""},
		{A62 "aa", "\"" A62 "aa\""},       /* 64 bytes: whole */
		{A62 "aaa", "\"" A62 "aa...\""},   /* 65: 64 and "..." */
		{A62 "\x01", "\"" A62 "...\""},   /* an escape that would pass 64 goes whole */
		{"a" E8 E8 E8 E8 E8, "\"a" E8 E8 E8 E1 E1 E1 E1 E1 E1 E1 "...\""}, /* 1 + 31 x 2 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[SN_QUOTE_MAX];
		assert_string_equal(sn_err_quote(cases[i].in, buf, sizeof(buf)), cases[i].out);
		assert_true(strlen(buf) < SN_QUOTE_MAX);
	}
	/* a character cut by a length limit goes; whole ones stay */
	struct {
		const char *in, *out;
	} trims[] = {
		{"", ""},         {"ab\xc3", "ab"},
		{"ab\xe2\x82", "ab"}, {"ab\xe2\x82\xac", "ab\xe2\x82\xac"},
		{"\xf0\x9f\x98", ""}, {"x\xf0\x9f\x98\x80", "x\xf0\x9f\x98\x80"},
		{"abc", "abc"},
	};
	for (size_t i = 0; i < sizeof(trims) / sizeof(trims[0]); i++) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%s", trims[i].in);
		sn_err_utf8_trim(buf);
		assert_string_equal(buf, trims[i].out);
	}
	/* a message past SN_ERR_MSG_MAX that the limit cuts inside a character */
	struct sn_errs errs;
	sn_errs_init(&errs);
	char big[SN_ERR_MSG_MAX + 8];
	memset(big, 'x', sizeof(big));
	memcpy(big + SN_ERR_MSG_MAX - 2, "\xe2\x82\xac", 3);
	big[sizeof(big) - 1] = 0;
	sn_errs_add(&errs, SN_ERR_INVALID, big + 100, "%s", big);
	assert_int_equal(strlen(errs.e[0].msg), SN_ERR_MSG_MAX - 2);
	assert_int_equal(strlen(errs.e[0].path), SN_ERR_PATH_MAX - 1);
	/* the sentence after a long value stays whole */
	char doc[400] = "{\"egress\": {\"mode\": \"";
	size_t o = strlen(doc);
	memset(doc + o, 'x', 300);
	memcpy(doc + o + 300, "\"}}", 4);
	expect_err(doc, SN_DIALECT_AUTO, "egress.mode",
		   "...\" is not a mode (allow-all or block-all)");
}

static void test_limits(void **state)
{
	(void)state;
	/* more rules than a direction holds */
	size_t n = SN_LIMIT_RULES + 1;
	size_t cap = 64 + n * 22;
	char *doc = malloc(cap), *w = doc;
	w += snprintf(w, cap - (size_t)(w - doc), "{\"egress\":{\"rules\":[");
	for (size_t i = 0; i < n; i++)
		w += snprintf(w, cap - (size_t)(w - doc), "%s{\"action\":\"allow\"}", i ? "," : "");
	snprintf(w, cap - (size_t)(w - doc), "]}}");
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p;
	assert_int_not_equal(sn_policy_parse(doc, strlen(doc), 0, 0, &p, &errs), 0);
	assert_int_equal(errs.e[0].code, SN_ERR_LIMIT);
	assert_string_equal(errs.e[0].path, "egress.rules");
	assert_non_null(strstr(errs.e[0].msg, "at most 10000"));
	free(doc);

	/* more entries than a policy holds: 1,000,001 ports of "1" */
	n = SN_LIMIT_ENTRIES + 1;
	cap = 128 + n * 4;
	doc = malloc(cap);
	w = doc;
	w += snprintf(w, cap, "{\"egress\":{\"rules\":[{\"action\":\"allow\",\"to\":[");
	for (size_t i = 0; i < n; i++) {
		*w++ = i ? ',' : ' ';
		*w++ = '"';
		*w++ = (char)('a' + i % 26);
		*w++ = '"';
	}
	snprintf(w, cap - (size_t)(w - doc), "]}]}}");
	sn_errs_init(&errs);
	assert_int_not_equal(sn_policy_parse(doc, strlen(doc), 0, 0, &p, &errs), 0);
	assert_int_equal(errs.e[0].code, SN_ERR_LIMIT);
	assert_non_null(strstr(errs.e[0].msg, "more than 1000000 entries"));
	free(doc);

	/* a document over 64 MiB is refused before parsing */
	sn_errs_init(&errs);
	static const char big[1];
	assert_int_not_equal(sn_policy_parse(big, SN_LIMIT_DOC_BYTES + 1ul, 0, 0, &p, &errs), 0);
	assert_int_equal(errs.e[0].code, SN_ERR_LIMIT);
	assert_non_null(strstr(errs.e[0].msg, "64 MiB"));

	/* YAML nesting */
	char deep[400];
	w = deep;
	for (int i = 0; i < 70; i++)
		*w++ = '[';
	*w = 0;
	sn_errs_init(&errs);
	assert_int_not_equal(sn_policy_parse(deep, strlen(deep), SN_FORMAT_YAML, 0, &p, &errs), 0);
}

static void test_normalise(void **state)
{
	(void)state;
	struct sn_policy *p = parse_ok(
		"egress:\n"
		"  rules:\n"
		"    - action: allow\n"
		"      to: [GitHub.COM., \"**.Example.org\", \"*\", 10.1.2.3/32, \"2001:DB8::/32\",\n"
		"           github.com, bücher.example, 10.1.2.3]\n"
		"      ports: [443, \"443\", \"8000-8100\", 443]\n");
	char *s = sn_policy_format(p, 0);
	assert_string_equal(
		s, "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
		   "\"github.com\",\"*.example.org\",\"*\",\"10.1.2.3\",\"2001:db8::/32\","
		   "\"xn--bcher-kva.example\"],\"ports\":[443,\"8000-8100\"],\"protocol\":\"any\"}]},"
		   "\"ingress\":{\"mode\":\"allow-all\",\"rules\":[]}}");
	free(s);
	sn_policy_free(p);

	p = parse_ok("{}");
	s = sn_policy_format(p, 0);
	assert_string_equal(s, "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[]},\"ingress\":{"
			       "\"mode\":\"allow-all\",\"rules\":[]}}");
	free(s);
	sn_policy_free(p);
	p = parse_ok("");
	sn_policy_free(p);
	/* mask_request_host: as given, and normalised */
	static const char *const masks[][2] = {
		{"\"Localhost:${PORT}\"", "localhost:{port}"},
		{"\"[2001:DB8::1]:8080\"", "[2001:db8::1]:8080"},
		{"\"127.0.0.1:{port}\"", "127.0.0.1:{port}"},
		{"10.0.0.1", "10.0.0.1"},
	};
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		char doc[128];
		snprintf(doc, sizeof(doc), "ingress:\n  mask_request_host: %s\n", masks[i][0]);
		p = parse_ok(doc);
		assert_string_equal(p->mask_request_host, masks[i][1]);
		sn_policy_free(p);
	}
}

static const char *const roundtrip_docs[] = {
	"{}",
	"{\"egress\": {\"mode\": \"block-all\", \"rules\": [{\"action\": \"allow\", \"to\": "
	"[\"github.com\", \"*.githubusercontent.com\", \"140.82.112.0/20\"], \"ports\": [443, "
	"\"8000-8100\"], \"protocol\": \"tcp\", \"name\": \"github\"}, {\"action\": \"deny\", "
	"\"to\": [\"169.254.169.254\"]}]}, \"ingress\": {\"mode\": \"allow-all\", \"rules\": "
	"[{\"action\": \"allow\", \"from\": [\"203.0.113.0/24\", \"::1\"], \"ports\": [8080]}], "
	"\"mask_request_host\": \"localhost:{port}\"}}",
	"egress:\n  rules:\n    - action: deny\n      protocol: icmp\n    - action: allow\n"
	"      to: ['*']\n      protocol: udp\n      ports: ['1-65535']\n",
	/* a rule name that the canonical form must escape, and one beyond ASCII */
	"egress: {rules: [{action: allow, name: \"back\\\\slash \\\"q\\\" \xc3\xa9\"}]}\n",
	"{\"allowOut\": [\"1.1.1.1\", \"example.com\"], \"denyOut\": [\"0.0.0.0/0\", \"10.0.0.0/8\"],"
	" \"allowIn\": [\"1.2.3.0/24\"], \"denyIn\": [\"0.0.0.0/0\"], \"allowPorts\": [80]}",
	"{\"mode\": \"block-all\", \"egress\": {\"trafficRules\": [{\"name\": \"x\", \"action\": "
	"\"allow\", \"domains\": [\"a.com\"], \"ports\": [{\"port\": 53, \"protocol\": \"udp\"}, "
	"{\"port\": 443, \"endPort\": 444}]}]}}",
};

static void test_roundtrip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(roundtrip_docs) / sizeof(roundtrip_docs[0]); i++) {
		struct sn_policy *p = parse_ok(roundtrip_docs[i]);
		for (int indent = 0; indent <= 2; indent += 2) {
			char *s = sn_policy_format(p, indent);
			struct sn_policy *q = parse_ok(s);
			assert_true(sn_policy_equal(p, q));
			char *s2 = sn_policy_format(q, indent);
			assert_string_equal(s, s2);
			free(s);
			free(s2);
			sn_policy_free(q);
		}
		struct sn_policy *d = sn_policy_dup(p);
		assert_true(sn_policy_equal(p, d));
		sn_policy_free(d);
		sn_policy_free(p);
	}
}

/* sn_policy_equal() must see every field: each document below differs from the base in one of
 * them, after normalisation, and must compare unequal both ways (the round trips above rely on
 * it). Each difference is a text substitution in the base document. */
static const char equal_base[] =
	"{\"egress\": {\"mode\": \"block-all\", \"rules\": ["
	"{\"action\": \"allow\", \"to\": [\"github.com\", \"*.githubusercontent.com\", "
	"\"140.82.112.0/20\", \"2001:db8::/32\"], \"ports\": [443, \"8000-8100\"], "
	"\"protocol\": \"tcp\", \"name\": \"gh\"}, "
	"{\"action\": \"deny\", \"to\": [\"0.0.0.0/0\"]}, "
	"{\"action\": \"allow\", \"protocol\": \"udp\"}]}, "
	"\"ingress\": {\"mode\": \"allow-all\", \"rules\": [{\"action\": \"allow\", \"from\": "
	"[\"203.0.113.0/24\"], \"ports\": [8080]}], \"mask_request_host\": \"localhost:{port}\"}}";

static const char *const equal_diffs[][2] = {
	{"\"mode\": \"block-all\"", "\"mode\": \"allow-all\""},
	{"\"mode\": \"allow-all\"", "\"mode\": \"block-all\""},
	{", {\"action\": \"allow\", \"protocol\": \"udp\"}", ""},
	{"{\"action\": \"allow\", \"to\": [\"github", "{\"action\": \"deny\", \"to\": [\"github"},
	{"\"protocol\": \"tcp\"", "\"protocol\": \"udp\""},
	{"\"name\": \"gh\"", "\"name\": \"gi\""},
	{", \"name\": \"gh\"", ""},
	{"\"github.com\", ", ""},
	{"\"github.com\"", "\"gitlab.com\""},
	{"\"*.githubusercontent.com\"", "\"githubusercontent.com\""},
	{"\"140.82.112.0/20\"", "\"140.82.112.0/21\""},
	{"\"140.82.112.0/20\"", "\"140.82.128.0/20\""},
	{"\"2001:db8::/32\"", "\"2001:db9::/32\""},
	{"\"0.0.0.0/0\"", "\"::/0\""},
	{"[443, ", "[444, "},
	{"\"8000-8100\"", "\"8000-8101\""},
	{"\"8000-8100\"", "\"7999-8100\""},
	{", \"ports\": [443, \"8000-8100\"]", ""},
	{", \"to\": [\"0.0.0.0/0\"]", ""},
	{"\"203.0.113.0/24\"", "\"203.0.114.0/24\""},
	{"[8080]", "[8081]"},
	{", \"mask_request_host\": \"localhost:{port}\"", ""},
	{"localhost:{port}", "localhost:8080"},
};

static void test_policy_equal(void **state)
{
	(void)state;
	struct sn_policy *base = parse_ok(equal_base), *again = parse_ok(equal_base);
	assert_true(sn_policy_equal(base, again));
	sn_policy_free(again);
	for (size_t i = 0; i < sizeof(equal_diffs) / sizeof(equal_diffs[0]); i++) {
		const char *at = strstr(equal_base, equal_diffs[i][0]);
		assert_non_null(at);
		char doc[sizeof(equal_base) + 64];
		size_t pre = (size_t)(at - equal_base);
		snprintf(doc, sizeof(doc), "%.*s%s%s", (int)pre, equal_base, equal_diffs[i][1],
			 at + strlen(equal_diffs[i][0]));
		struct sn_policy *d = parse_ok(doc);
		if (sn_policy_equal(base, d) || sn_policy_equal(d, base))
			fail_msg("equal after %s -> %s", equal_diffs[i][0], equal_diffs[i][1]);
		sn_policy_free(d);
	}
	sn_policy_free(base);
}

static void test_explicit_dialect(void **state)
{
	(void)state;
	/* naming a dialect makes the other dialects' fields unknown */
	expect_err("{\"egress\": {}}", SN_DIALECT_E2B, "egress", "unknown field for an E2B");
	expect_err("{\"allowOut\": []}", SN_DIALECT_NATIVE, "allowOut", "unknown field");
	expect_err("{\"allowOut\": []}", SN_DIALECT_SANDBOX0, "allowOut", "unknown field");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_errors),   cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_limits),          cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_policy_equal),
		cmocka_unit_test(test_explicit_dialect), cmocka_unit_test(test_quote),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

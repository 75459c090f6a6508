/* Unit tests of the E2B and sandbox0 dialects: conversion to native, the peers' validation rules,
 * and the E2B ingress semantics checked exhaustively against a reference. Mirrors
 * src/core/dialect.c. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sandnet/snapshot.h>

static char *convert(const char *doc, enum sn_dialect d)
{
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p;
	if (sn_policy_parse(doc, strlen(doc), SN_FORMAT_AUTO, d, &p, &errs)) {
		for (unsigned i = 0; i < errs.n; i++)
			print_error("error: %s: %s\n", errs.e[i].path, errs.e[i].msg);
		fail_msg("refused: %s", doc);
	}
	char *s = sn_policy_format(p, 0);
	sn_policy_free(p);
	return s;
}

static void expect(const char *doc, enum sn_dialect d, const char *want)
{
	char *got = convert(doc, d);
	if (strcmp(got, want) != 0)
		fail_msg("for %s\n got: %s\nwant: %s", doc, got, want);
	free(got);
}

static void expect_err(const char *doc, const char *path, const char *needle)
{
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p;
	assert_int_not_equal(sn_policy_parse(doc, strlen(doc), 0, 0, &p, &errs), 0);
	for (unsigned i = 0; i < errs.n; i++)
		if (strcmp(errs.e[i].path, path) == 0 && strstr(errs.e[i].msg, needle))
			return;
	for (unsigned i = 0; i < errs.n; i++)
		print_error("got: %s: %s\n", errs.e[i].path, errs.e[i].msg);
	fail_msg("no error at %s with \"%s\" for %s", path, needle, doc);
}

#define ING_OPEN "\"ingress\":{\"mode\":\"allow-all\",\"rules\":[]}"

static void test_e2b_egress(void **state)
{
	(void)state;
	/* deny all + allowOut: block-all with the allow rule first (allow wins) */
	expect("{\"allowOut\":[\"1.1.1.1\",\"example.com\"],\"denyOut\":[\"0.0.0.0/0\"]}",
	       SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
	       "\"1.1.1.1\",\"example.com\"],\"protocol\":\"any\"}]}," ING_OPEN "}");
	/* allow_internet_access false is the same as denyOut 0.0.0.0/0 */
	expect("{\"allow_internet_access\":false}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[]}," ING_OPEN "}");
	expect("{\"allow_internet_access\":false,\"allowOut\":[\"a.com\"]}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
	       "\"a.com\"],\"protocol\":\"any\"}]}," ING_OPEN "}");
	/* partial denyOut: allow rule, then deny rule, allow-all */
	expect("{\"allowOut\":[\"10.1.0.0/16\"],\"denyOut\":[\"10.0.0.0/8\",\"192.168.1.1\"]}",
	       SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
	       "\"10.1.0.0/16\"],\"protocol\":\"any\"},{\"action\":\"deny\",\"to\":["
	       "\"10.0.0.0/8\",\"192.168.1.1\"],\"protocol\":\"any\"}]}," ING_OPEN "}");
	/* empty lists are fine in E2B: they mean nothing */
	expect("{\"allowOut\":[],\"denyOut\":[]}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[]}," ING_OPEN "}");
	/* explicit dialect works on a body that auto-detection would also find */
	expect("{\"denyOut\":[\"0.0.0.0/0\"]}", SN_DIALECT_E2B,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[]}," ING_OPEN "}");
}

static void test_e2b_errors(void **state)
{
	(void)state;
	expect_err("{\"denyOut\":[\"evil.com\"]}", "denyOut[0]", "addresses only");
	expect_err("{\"allowOut\":[\"1.1.1.1\",\"example.com\"]}", "allowOut[1]",
		   "needs \"0.0.0.0/0\" in denyOut");
	expect_err("{\"allowOut\":[\"example.com\"],\"denyOut\":[\"10.0.0.0/8\"]}", "allowOut[0]",
		   "needs \"0.0.0.0/0\" in denyOut");
	expect_err("{\"allowIn\":[\"1.2.3.4\"]}", "allowIn", "needs \"0.0.0.0/0\" in denyIn");
	expect_err("{\"allowIn\":[\"1.2.3.4\"],\"denyIn\":[\"5.0.0.0/8\"]}", "allowIn",
		   "needs \"0.0.0.0/0\" in denyIn");
	expect_err("{\"allowPorts\":[80],\"denyPorts\":[81]}", "allowPorts", "not both");
	expect_err("{\"allowOut\":[\"0.0.0.0\"]}", "allowOut[0]", "unspecified address");
	expect_err("{\"denyOut\":[\"::\"]}", "denyOut[0]", "unspecified address");
	expect_err("{\"denyIn\":[\"0.0.0.0\"]}", "denyIn[0]", "unspecified address");
	expect_err("{\"allowOut\":\"1.1.1.1\"}", "allowOut", "must be a list");
	expect_err("{\"allow_internet_access\":\"no\"}", "allow_internet_access",
		   "true or false");
	expect_err("{\"allow_internet_access\":true,\"allowInternetAccess\":true}",
		   "allowInternetAccess", "not both");
	expect_err("{\"denyPorts\":[0]}", "denyPorts[0]", "not a port");
	expect_err("{\"maskRequestHost\":\"host:{PORT}\"}", "maskRequestHost", "placeholder");
	expect_err("{\"allowOut\":[\"10.0.0.1/8\"]}", "allowOut[0]", "did you mean 10.0.0.0/8?");
}

static void test_e2b_mask(void **state)
{
	(void)state;
	expect("{\"maskRequestHost\":\"localhost:${PORT}\"}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[]},\"ingress\":{\"mode\":"
	       "\"allow-all\",\"rules\":[],\"mask_request_host\":\"localhost:{port}\"}}");
}

/* E2B ingress: a request passes when its port passes and its client passes. */
struct e2b_in {
	const char *allow_in, *deny_in, *allow_ports, *deny_ports; /* JSON arrays or NULL */
};

static bool in_list(const char *list, const char *client, int port, bool is_port)
{
	if (!list)
		return false;
	if (is_port) {
		char needle[16];
		snprintf(needle, sizeof(needle), "%d", port);
		return strstr(list, needle) != NULL;
	}
	/* lists here hold whole-address CIDRs of the test's four clients or 0.0.0.0/0 */
	if (strstr(list, "0.0.0.0/0"))
		return true;
	if (strstr(list, "10.0.0.0/8") && strncmp(client, "10.", 3) == 0)
		return true;
	return strstr(list, client) != NULL;
}

static bool e2b_reference(const struct e2b_in *c, const char *client, int port)
{
	bool port_ok = c->allow_ports ? in_list(c->allow_ports, client, port, true)
				      : !in_list(c->deny_ports, client, port, true);
	bool client_ok = in_list(c->allow_in, client, port, false) ||
			 !in_list(c->deny_in, client, port, false);
	return port_ok && client_ok;
}

static void test_e2b_ingress_semantics(void **state)
{
	(void)state;
	const char *allow_in[] = {NULL, "[\"1.1.1.1\"]", "[\"1.1.1.1\",\"10.0.0.0/8\"]"};
	const char *deny_in[] = {NULL, "[\"0.0.0.0/0\"]", "[\"2.2.2.2\"]", "[\"10.0.0.0/8\"]"};
	const char *ports[] = {NULL, "[80]", "[80,8080]"};
	const char *clients[] = {"1.1.1.1", "2.2.2.2", "10.1.2.3", "3.3.3.3"};
	const int qports[] = {80, 8080, 9000};
	int checked = 0;
	for (size_t a = 0; a < 3; a++)
		for (size_t d = 0; d < 4; d++)
			for (size_t ap = 0; ap < 3; ap++)
				for (size_t dp = 0; dp < 3; dp++) {
					struct e2b_in c = {allow_in[a], deny_in[d], ports[ap],
							   ports[dp]};
					if ((c.allow_in && d != 1) || (c.allow_ports && c.deny_ports))
						continue; /* refused by E2B's rules */
					char doc[512];
					int o = snprintf(doc, sizeof(doc), "{\"denyOut\":[]");
					if (c.allow_in)
						o += snprintf(doc + o, sizeof(doc) - o,
							      ",\"allowIn\":%s", c.allow_in);
					if (c.deny_in)
						o += snprintf(doc + o, sizeof(doc) - o,
							      ",\"denyIn\":%s", c.deny_in);
					if (c.allow_ports)
						o += snprintf(doc + o, sizeof(doc) - o,
							      ",\"allowPorts\":%s", c.allow_ports);
					if (c.deny_ports)
						o += snprintf(doc + o, sizeof(doc) - o,
							      ",\"denyPorts\":%s", c.deny_ports);
					snprintf(doc + o, sizeof(doc) - o, "}");
					struct sn_policy *p;
					struct sn_errs errs;
					sn_errs_init(&errs);
					if (sn_policy_parse(doc, strlen(doc), 0, 0, &p, &errs))
						fail_msg("refused %s: %s", doc, errs.e[0].msg);
					struct sn_snapshot *s = sn_snapshot_compile(p);
					for (size_t ci = 0; ci < 4; ci++)
						for (size_t pi = 0; pi < 3; pi++) {
							uint8_t addr[4];
							inet_pton(AF_INET, clients[ci], addr);
							struct sn_query q = {SN_INGRESS, AF_INET, addr,
									     (uint16_t)qports[pi],
									     SN_PROTO_TCP, NULL};
							struct sn_decision dd = sn_decide(s, &q);
							bool want = e2b_reference(&c, clients[ci],
										  qports[pi]);
							if ((dd.verdict == SN_VERDICT_ALLOW) != want)
								fail_msg("%s: client %s port %d: got %s",
									 doc, clients[ci], qports[pi],
									 sn_verdict_name(dd.verdict));
							checked++;
						}
					sn_snapshot_unref(s);
					sn_policy_free(p);
				}
	assert_true(checked > 100);
}

static void test_sandbox0_legacy(void **state)
{
	(void)state;
	/* block-all: allowed lists form one allow rule; denied lists are not used */
	expect("{\"mode\":\"block-all\",\"egress\":{\"allowed_domains\":[\"a.com\"],"
	       "\"allowed_cidrs\":[\"10.0.0.0/8\"],\"allowed_ports\":[443,\"8000-8080\"],"
	       "\"denied_cidrs\":[\"1.1.1.1\"]}}",
	       SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
	       "\"10.0.0.0/8\",\"a.com\"],\"ports\":[443,\"8000-8080\"],\"protocol\":\"any\"}]},"
	       ING_OPEN "}");
	/* allow-all: each denied list a deny rule of its own */
	expect("{\"mode\":\"allow-all\",\"egress\":{\"denied_domains\":[\"x.com\"],"
	       "\"denied_cidrs\":[\"1.1.1.1\"],\"denied_ports\":[25],\"allowed_cidrs\":[\"2.2.2.2\"]}}",
	       SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[{\"action\":\"deny\",\"to\":["
	       "\"1.1.1.1\"],\"protocol\":\"any\"},{\"action\":\"deny\",\"to\":[\"x.com\"],"
	       "\"protocol\":\"any\"},{\"action\":\"deny\",\"ports\":[25],\"protocol\":\"any\"}]},"
	       ING_OPEN "}");
	/* only ports in block-all */
	expect("{\"mode\":\"block-all\",\"egress\":{\"allowed_ports\":[\"53\"]}}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"ports\":[53],"
	       "\"protocol\":\"any\"}]}," ING_OPEN "}");
	/* CIDRs alone, and names alone (each list may be missing) */
	expect("{\"mode\":\"block-all\",\"egress\":{\"allowed_cidrs\":[\"1.1.1.1\"]}}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
	       "\"1.1.1.1\"],\"protocol\":\"any\"}]}," ING_OPEN "}");
	expect("{\"mode\":\"block-all\",\"egress\":{\"allowed_domains\":[\"a.com\"]}}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[{\"action\":\"allow\",\"to\":["
	       "\"a.com\"],\"protocol\":\"any\"}]}," ING_OPEN "}");
	/* mode alone */
	expect("{\"mode\":\"block-all\"}", SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":[]}," ING_OPEN "}");
}

static void test_sandbox0_traffic_rules(void **state)
{
	(void)state;
	expect("{\"mode\":\"block-all\",\"egress\":{\"trafficRules\":["
	       "{\"name\":\"web\",\"action\":\"allow\",\"domains\":[\"*.a.com\"],\"cidrs\":"
	       "[\"10.0.0.0/8\"],\"ports\":[{\"port\":443},{\"port\":53,\"protocol\":\"udp\"},"
	       "{\"port\":8000,\"endPort\":8080,\"protocol\":\"tcp\"}]},"
	       "{\"action\":\"deny\",\"cidrs\":[\"1.1.1.1\"]}]}}",
	       SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"block-all\",\"rules\":["
	       "{\"action\":\"allow\",\"to\":[\"*.a.com\",\"10.0.0.0/8\"],\"ports\":[443,"
	       "\"8000-8080\"],\"protocol\":\"tcp\",\"name\":\"web\"},"
	       "{\"action\":\"allow\",\"to\":[\"*.a.com\",\"10.0.0.0/8\"],\"ports\":[53],"
	       "\"protocol\":\"udp\",\"name\":\"web\"},"
	       "{\"action\":\"deny\",\"to\":[\"1.1.1.1\"],\"protocol\":\"any\"}]}," ING_OPEN "}");
	/* the default mode is allow-all; protocol defaults to tcp */
	expect("{\"egress\":{\"trafficRules\":[{\"action\":\"deny\",\"ports\":[{\"port\":22}]}]}}",
	       SN_DIALECT_AUTO,
	       "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[{\"action\":\"deny\",\"ports\":[22],"
	       "\"protocol\":\"tcp\"}]}," ING_OPEN "}");
}

static void test_sandbox0_errors(void **state)
{
	(void)state;
	expect_err("{\"mode\":\"block-all\",\"egress\":{\"allowed_cidrs\":[\"1.1.1.1\"],"
		   "\"trafficRules\":[]}}",
		   "egress.trafficRules", "cannot be mixed");
	expect_err("{\"mode\":\"closed\"}", "mode", "allow-all or block-all");
	expect_err("{\"mode\":\"block-all\",\"egress\":{\"allowed_domains\":[\"1.2.3.4\"]}}",
		   "egress.allowed_domains[0]", "names only");
	expect_err("{\"mode\":\"block-all\",\"egress\":{\"allowed_cidrs\":[\"a.com\"]}}",
		   "egress.allowed_cidrs[0]", "addresses only");
	expect_err("{\"mode\":\"block-all\",\"egress\":{\"allowed_ports\":[\"9-8\"]}}",
		   "egress.allowed_ports[0]", "reversed");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"maybe\"}]}}",
		   "egress.trafficRules[0].action", "allow or deny");
	expect_err("{\"egress\":{\"trafficRules\":[{\"domains\":[\"a.com\"]}]}}",
		   "egress.trafficRules[0].action", "missing");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"ports\":[{\"port\":"
		   "80,\"endPort\":70}]}]}}",
		   "egress.trafficRules[0].ports[0].endPort", "below port");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"ports\":[{\"port\":"
		   "80,\"protocol\":\"icmp\"}]}]}}",
		   "egress.trafficRules[0].ports[0].protocol", "tcp or udp");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"ports\":[{\"port\":"
		   "0}]}]}}",
		   "egress.trafficRules[0].ports[0].port", "1-65535");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"hosts\":[]}]}}",
		   "egress.trafficRules[0].hosts", "unknown field");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"name\":\"a\\u007f\"}]}}",
		   "egress.trafficRules[0].name", "control characters");
	expect_err("{\"mode\":\"block-all\",\"egress\":{\"allowed_hosts\":[]}}",
		   "egress.allowed_hosts", "unknown field");
}

/* Every native egress policy has a sandbox0 form that parses back to it. */
static void test_sandbox0_view_roundtrip(void **state)
{
	(void)state;
	static const char *const docs[] = {
		"{}",
		"egress: {mode: block-all}",
		"egress:\n  mode: block-all\n  rules:\n"
		"  - {action: allow, to: [a.com, \"*.b.com\", \"*\", 10.0.0.0/8, \"2001:db8::1\"], "
		"ports: [443, \"8000-8100\"], protocol: tcp, name: web}\n"
		"  - {action: allow, ports: [53], protocol: udp}\n"
		"  - {action: deny, to: [1.1.1.1], ports: [25], protocol: any}\n"
		"  - {action: allow, protocol: icmp}\n"
		"  - {action: deny, to: [evil.com]}\n"
		"  - {action: allow}\n",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct sn_policy *p, *q;
		assert_int_equal(sn_policy_parse(docs[i], strlen(docs[i]), 0, 0, &p, NULL), 0);
		char *view = sn_policy_format_sandbox0(p, 0);
		assert_non_null(view);
		struct sn_errs errs;
		sn_errs_init(&errs);
		if (sn_policy_parse(view, strlen(view), 0, SN_DIALECT_SANDBOX0, &q, &errs))
			fail_msg("%s does not parse: %s: %s", view, errs.e[0].path, errs.e[0].msg);
		/* the view carries egress only */
		assert_int_equal(q->egress.nrules, p->egress.nrules);
		q->ingress = (struct sn_dir_policy){0};
		struct sn_policy eg = *p;
		eg.ingress = (struct sn_dir_policy){0};
		eg.mask_request_host = NULL;
		if (!sn_policy_equal(&eg, q))
			fail_msg("round trip differs for %s: %s", docs[i], view);
		free(view);
		sn_policy_free(q);
		sn_policy_free(p);
	}
	/* the rule-level protocol refuses a port protocol that contradicts it */
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"protocol\":\"udp\","
		   "\"ports\":[{\"port\":53,\"protocol\":\"tcp\"}]}]}}",
		   "egress.trafficRules[0].ports[0].protocol", "differs from the rule's protocol");
	expect_err("{\"egress\":{\"trafficRules\":[{\"action\":\"allow\",\"protocol\":\"icmp\","
		   "\"ports\":[{\"port\":53}]}]}}",
		   "egress.trafficRules[0].ports", "ICMP has no ports");
}

/* E2B's view is exact for what E2B can say, and flagged for what it cannot. */
static void test_e2b_view(void **state)
{
	(void)state;
	static const char *const exact[] = {
		"{}",
		"{\"allowOut\":[\"1.1.1.1\",\"a.com\"],\"denyOut\":[\"0.0.0.0/0\"]}",
		"{\"allowOut\":[\"10.1.0.0/16\"],\"denyOut\":[\"10.0.0.0/8\"]}",
		"{\"allowIn\":[\"1.2.3.0/24\"],\"denyIn\":[\"0.0.0.0/0\"],\"allowPorts\":[80],"
		"\"maskRequestHost\":\"localhost:${PORT}\"}",
		"{\"denyIn\":[\"5.0.0.0/8\"],\"denyPorts\":[22]}",
		"{\"denyIn\":[\"5.0.0.0/8\"],\"allowPorts\":[8080]}",
	};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		struct sn_policy *p;
		assert_int_equal(sn_policy_parse(exact[i], strlen(exact[i]), 0, 0, &p, NULL), 0);
		bool ex;
		char *v = sn_policy_format_e2b(p, &ex);
		assert_non_null(v);
		if (!ex || strstr(v, "x-sandnet-native"))
			fail_msg("%s: view %s not exact", exact[i], v);
		free(v);
		sn_policy_free(p);
	}
	const char *native = "egress: {rules: [{action: allow, to: [a.com], ports: [443]}]}";
	struct sn_policy *p;
	assert_int_equal(sn_policy_parse(native, strlen(native), 0, 0, &p, NULL), 0);
	bool ex = true;
	char *v = sn_policy_format_e2b(p, &ex);
	assert_false(ex);
	assert_non_null(strstr(v, "\"x-sandnet-native\":true"));
	assert_non_null(strstr(v, "\"allowOut\":[\"a.com\"]"));
	free(v);
	sn_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e2b_egress),
		cmocka_unit_test(test_e2b_errors),
		cmocka_unit_test(test_e2b_mask),
		cmocka_unit_test(test_e2b_ingress_semantics),
		cmocka_unit_test(test_sandbox0_legacy),
		cmocka_unit_test(test_sandbox0_traffic_rules),
		cmocka_unit_test(test_sandbox0_errors),
		cmocka_unit_test(test_sandbox0_view_roundtrip),
		cmocka_unit_test(test_e2b_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

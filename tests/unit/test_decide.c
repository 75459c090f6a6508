/* Table-driven tests of sn_decide() and sn_dns_allowed(): first match, AND inside a rule, modes,
 * wildcards, IDNA, IPv6, port ranges, protocols, need-name, ingress; and the render lists.
 * Mirrors src/core/compile.c. */
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

#include "docbuf.h"
#include "naive.h"

enum { A = SN_VERDICT_ALLOW, D = SN_VERDICT_DENY, N = SN_VERDICT_NEED_NAME };
#define M SN_RULE_NONE

struct qcase {
	const char *dst; /* or client, for ingress */
	int port;
	const char *proto;
	const char *name;
	int verdict;
	int rule;
};

struct pcase {
	const char *policy; /* YAML */
	int ingress;
	struct qcase q[16];
};

static const struct pcase cases[] = {
	/* the empty policy allows everything */
	{"{}", 0, {{"1.2.3.4", 80, "tcp", NULL, A, M}, {"::1", 53, "udp", NULL, A, M},
		   {"8.8.8.8", 0, "icmp", NULL, A, M}}},
	/* block-all with nothing allowed */
	{"egress: {mode: block-all}", 0,
	 {{"1.2.3.4", 80, "tcp", NULL, D, M}, {"1.2.3.4", 80, "tcp", "a.com", D, M}}},
	/* first match wins, both orders */
	{"egress:\n  rules:\n  - {action: deny, to: [10.0.0.0/8]}\n"
	 "  - {action: allow, to: [10.1.0.0/16]}\n  mode: block-all",
	 0,
	 {{"10.1.2.3", 80, "tcp", NULL, D, 0}, {"10.2.0.1", 80, "tcp", NULL, D, 0},
	  {"11.0.0.1", 80, "tcp", NULL, D, M}}},
	{"egress:\n  rules:\n  - {action: allow, to: [10.1.0.0/16]}\n"
	 "  - {action: deny, to: [10.0.0.0/8]}",
	 0,
	 {{"10.1.2.3", 80, "tcp", NULL, A, 0}, {"10.2.0.1", 80, "tcp", NULL, D, 1},
	  {"11.0.0.1", 80, "tcp", NULL, A, M}}},
	/* AND inside a rule: address and port and protocol */
	{"egress:\n  mode: block-all\n  rules:\n"
	 "  - {action: allow, to: [1.1.1.1, 2.2.2.0/24], ports: [53, \"8000-8100\"], protocol: udp}",
	 0,
	 {{"1.1.1.1", 53, "udp", NULL, A, 0}, {"2.2.2.200", 8100, "udp", NULL, A, 0},
	  {"2.2.2.200", 8101, "udp", NULL, D, M}, {"2.2.2.200", 7999, "udp", NULL, D, M},
	  {"1.1.1.1", 53, "tcp", NULL, D, M}, {"1.1.1.2", 53, "udp", NULL, D, M},
	  {"1.1.1.1", 0, "icmp", NULL, D, M}}},
	/* ports with protocol any cover tcp and udp but never icmp */
	{"egress:\n  rules:\n  - {action: deny, ports: [22]}\n  - {action: deny, protocol: icmp}",
	 0,
	 {{"9.9.9.9", 22, "tcp", NULL, D, 0}, {"9.9.9.9", 22, "udp", NULL, D, 0},
	  {"9.9.9.9", 23, "tcp", NULL, A, M}, {"9.9.9.9", 0, "icmp", NULL, D, 1}}},
	/* names: exact, wildcard at any depth but not the apex, "*" */
	{"egress:\n  mode: block-all\n  rules:\n  - {action: allow, to: [github.com, \"*.ghcdn.com\"]}",
	 0,
	 {{"1.2.3.4", 443, "tcp", "github.com", A, 0}, {"1.2.3.4", 443, "tcp", "GitHub.com.", A, 0},
	  {"1.2.3.4", 443, "tcp", "api.github.com", D, M}, {"1.2.3.4", 443, "tcp", "a.ghcdn.com", A, 0},
	  {"1.2.3.4", 443, "tcp", "a.b.ghcdn.com", A, 0}, {"1.2.3.4", 443, "tcp", "ghcdn.com", D, M},
	  {"1.2.3.4", 443, "tcp", "xghcdn.com", D, M}, {"1.2.3.4", 443, "tcp", NULL, N, 0},
	  {"1.2.3.4", 443, "tcp", "bad name!", D, M}}},
	{"egress:\n  mode: block-all\n  rules:\n  - {action: allow, to: [\"*\"], ports: [443]}", 0,
	 {{"1.2.3.4", 443, "tcp", "anything.example", A, 0}, {"1.2.3.4", 443, "tcp", NULL, N, 0},
	  {"1.2.3.4", 80, "tcp", "anything.example", D, M}}},
	/* a deny name in allow-all mode */
	{"egress:\n  rules:\n  - {action: deny, to: [evil.com, \"*.evil.com\"]}", 0,
	 {{"1.2.3.4", 443, "tcp", "evil.com", D, 0}, {"1.2.3.4", 443, "tcp", "x.evil.com", D, 0},
	  {"1.2.3.4", 443, "tcp", "good.com", A, M}, {"1.2.3.4", 443, "tcp", NULL, N, 0}}},
	/* names longer than a hash slot holds in place */
	{"egress:\n  mode: block-all\n  rules:\n  - {action: allow, to: [a-very-long-label-that-"
	 "goes-on-and-on.another-long-label-for-the-test.example]}\n  - {action: deny, to: [\"*.an-"
	 "other-rather-long-zone-name-to-overflow-the-slot.example\"]}",
	 0,
	 {{"1.2.3.4", 443, "tcp",
	   "a-very-long-label-that-goes-on-and-on.another-long-label-for-the-test.example", A, 0},
	  {"1.2.3.4", 443, "tcp",
	   "a-very-long-label-that-goes-on-and-on.another-long-label-for-the-test.exampla", D, M},
	  {"1.2.3.4", 443, "tcp", "x.an-other-rather-long-zone-name-to-overflow-the-slot.example",
	   D, 1},
	  {"1.2.3.4", 443, "tcp", "x.an-other-rather-long-zone-name-to-overflow-the-slot.examplf",
	   D, M}}},
	/* IDNA */
	{"egress:\n  mode: block-all\n  rules:\n  - {action: allow, to: [bücher.example]}", 0,
	 {{"1.2.3.4", 443, "tcp", "xn--bcher-kva.example", A, 0},
	  {"1.2.3.4", 443, "tcp", "bucher.example", D, M}}},
	/* a rule with names and addresses: the address decides without a name */
	{"egress:\n  mode: block-all\n  rules:\n  - {action: allow, to: [a.com, 5.5.5.0/24]}\n"
	 "  - {action: deny, to: [5.5.5.5]}",
	 0,
	 {{"5.5.5.5", 80, "tcp", NULL, A, 0}, {"6.6.6.6", 80, "tcp", NULL, N, 0},
	  {"6.6.6.6", 80, "tcp", "b.com", D, M}, {"6.6.6.6", 80, "tcp", "a.com", A, 0}}},
	/* need-name only when the name rule's ports and protocol match */
	{"egress:\n  rules:\n  - {action: deny, to: [x.com], ports: [443], protocol: tcp}", 0,
	 {{"1.1.1.1", 443, "tcp", NULL, N, 0}, {"1.1.1.1", 80, "tcp", NULL, A, M},
	  {"1.1.1.1", 443, "udp", NULL, A, M}}},
	/* IPv6 */
	{"egress:\n  mode: block-all\n  rules:\n  - {action: deny, to: [\"2001:db8::1\"]}\n"
	 "  - {action: allow, to: [\"2001:db8::/32\", \"::/0\"], ports: [\"1-1000\"]}\n"
	 "  - {action: allow, to: [0.0.0.0/0], protocol: icmp}",
	 0,
	 {{"2001:db8::1", 80, "tcp", NULL, D, 0}, {"2001:db8::2", 80, "tcp", NULL, A, 1},
	  {"2001:db9::2", 1000, "udp", NULL, A, 1}, {"2001:db9::2", 1001, "udp", NULL, D, M},
	  {"1.2.3.4", 80, "tcp", NULL, D, M}, {"1.2.3.4", 0, "icmp", NULL, A, 2},
	  {"::ffff:1.2.3.4", 0, "icmp", NULL, D, M}}},
	/* host bits at the edges of the address space */
	{"egress:\n  rules:\n  - {action: deny, to: [255.255.255.255, 0.0.0.0/8, \"ffff::/16\"]}", 0,
	 {{"255.255.255.255", 1, "tcp", NULL, D, 0}, {"255.255.255.254", 1, "tcp", NULL, A, M},
	  {"0.255.255.255", 1, "tcp", NULL, D, 0}, {"1.0.0.0", 1, "tcp", NULL, A, M},
	  {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, "tcp", NULL, D, 0},
	  {"fffe::", 1, "tcp", NULL, A, M}}},
	/* ingress: client address and sandbox port */
	{"ingress:\n  mode: block-all\n  rules:\n  - {action: deny, from: [203.0.113.7]}\n"
	 "  - {action: allow, from: [203.0.113.0/24, \"2001:db8::/64\"], ports: [8080]}\n"
	 "  - {action: allow, ports: [3000]}",
	 1,
	 {{"203.0.113.7", 8080, "tcp", NULL, D, 0}, {"203.0.113.8", 8080, "tcp", NULL, A, 1},
	  {"203.0.113.8", 8081, "tcp", NULL, D, M}, {"198.51.100.1", 8080, "tcp", NULL, D, M},
	  {"198.51.100.1", 3000, "tcp", NULL, A, 2}, {"2001:db8::5", 8080, "tcp", NULL, A, 1}}},
};

static void test_decide_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		struct sn_policy *p;
		struct sn_errs errs;
		sn_errs_init(&errs);
		if (sn_policy_parse(c->policy, strlen(c->policy), 0, 0, &p, &errs))
			fail_msg("case %zu refused: %s: %s", i, errs.e[0].path, errs.e[0].msg);
		struct sn_snapshot *s = sn_snapshot_compile(p);
		assert_non_null(s);
		for (size_t j = 0; j < 16 && c->q[j].dst; j++) {
			const struct qcase *qc = &c->q[j];
			uint8_t addr[16];
			struct sn_query q = {.dir = c->ingress ? SN_INGRESS : SN_EGRESS,
					     .addr = addr,
					     .port = (uint16_t)qc->port,
					     .name = qc->name};
			q.family = strchr(qc->dst, ':') ? AF_INET6 : AF_INET;
			assert_int_equal(inet_pton(q.family, qc->dst, addr), 1);
			q.proto = strcmp(qc->proto, "tcp") == 0   ? SN_PROTO_TCP
				  : strcmp(qc->proto, "udp") == 0 ? SN_PROTO_UDP
								  : SN_PROTO_ICMP;
			struct sn_decision d = sn_decide(s, &q);
			if ((int)d.verdict != qc->verdict || d.rule != qc->rule)
				fail_msg("case %zu query %zu (%s %d/%s name %s): got %s rule %d, want "
					 "%s rule %d",
					 i, j, qc->dst, qc->port, qc->proto, qc->name ? qc->name : "-",
					 sn_verdict_name(d.verdict), d.rule,
					 sn_verdict_name((enum sn_verdict)qc->verdict), qc->rule);
			struct sn_decision n = naive_decide(p, &q);
			assert_int_equal(n.verdict, d.verdict);
			assert_int_equal(n.rule, d.rule);
		}
		sn_snapshot_unref(s);
		sn_policy_free(p);
	}
}

struct dcase {
	const char *name;
	bool allowed;
	int rule;
};

/* A policy in YAML or JSON that must parse, and its snapshot. */
static struct sn_snapshot *parse_compile(const char *doc, struct sn_policy **p)
{
	assert_int_equal(sn_policy_parse(doc, strlen(doc), 0, 0, p, NULL), 0);
	struct sn_snapshot *s = sn_snapshot_compile(*p);
	assert_non_null(s);
	return s;
}

static void check_dns(const char *policy, const struct dcase *dc, size_t n)
{
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(policy, &p);
	for (size_t i = 0; i < n; i++) {
		int rule = 99, nrule = 99;
		bool ok = sn_dns_allowed(s, dc[i].name, &rule);
		if (ok != dc[i].allowed || rule != dc[i].rule)
			fail_msg("%s: %s: got %d rule %d", policy, dc[i].name, ok, rule);
		assert_int_equal(naive_dns_allowed(p, dc[i].name, &nrule), ok);
		assert_int_equal(nrule, rule);
	}
	sn_snapshot_unref(s);
	sn_policy_free(p);
}

/* The allow rules whose learned-address sets an answer for a name feeds. */
static void test_name_rules(void **state)
{
	(void)state;
	const char *doc = "egress:\n  mode: block-all\n  rules:\n"
			  "  - {action: allow, to: [1.1.1.1, a.example]}\n"
			  "  - {action: deny, to: [a.example]}\n"
			  "  - {action: allow, to: [\"*.example\"], ports: [53]}\n"
			  "  - {action: allow}\n"
			  "  - {action: allow, to: [\"*\"], protocol: udp}";
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(doc, &p);
	uint32_t r[8];
	assert_int_equal(sn_snapshot_name_rules(s, "A.Example.", r, 8), 3);
	assert_int_equal(r[0], 0);
	assert_int_equal(r[1], 2);
	assert_int_equal(r[2], 4);
	assert_int_equal(sn_snapshot_name_rules(s, "b.c.example", r, 8), 2);
	assert_int_equal(r[0], 2);
	assert_int_equal(sn_snapshot_name_rules(s, "example", r, 8), 1);
	assert_int_equal(r[0], 4);
	assert_int_equal(sn_snapshot_name_rules(s, "a.example", r, 1), 1);
	assert_int_equal(sn_snapshot_name_rules(s, "bad..name", r, 8), -1);
	sn_snapshot_unref(s);
	sn_policy_free(p);
}

static void test_dns(void **state)
{
	(void)state;
	/* block-all: only names an allow rule names resolve; address-only rules cannot match */
	const struct dcase c1[] = {{"github.com", true, 1},      {"api.github.com", false, M},
				   {"x.cdn.example", true, 2},   {"cdn.example", false, M},
				   {"Other.com.", false, M},     {"bad..name", false, M}};
	check_dns("egress:\n  mode: block-all\n  rules:\n  - {action: allow, to: [1.1.1.1]}\n"
		  "  - {action: allow, to: [github.com], ports: [443]}\n"
		  "  - {action: allow, to: [\"*.cdn.example\"]}",
		  c1, sizeof(c1) / sizeof(c1[0]));
	/* allow-all: a full deny answers NXDOMAIN, a narrower deny is skipped */
	const struct dcase c2[] = {{"evil.com", false, 0}, {"smtp.com", true, M},
				   {"a.b.evil.com", false, 0}, {"good.com", true, M}};
	check_dns("egress:\n  rules:\n  - {action: deny, to: [evil.com, \"*.evil.com\"]}\n"
		  "  - {action: deny, to: [smtp.com], ports: [25]}",
		  c2, sizeof(c2) / sizeof(c2[0]));
	/* a rule without "to" can match every name; "*" too */
	const struct dcase c3[] = {{"a.com", false, 0}, {"b.org", false, 0}};
	check_dns("egress:\n  rules:\n  - {action: deny}\n  - {action: allow, to: [a.com]}", c3, 2);
	const struct dcase c4[] = {{"a.com", true, 1}, {"b.org", true, 1}};
	check_dns("egress:\n  mode: block-all\n  rules:\n  - {action: deny, to: [a.com], protocol: "
		  "udp}\n  - {action: allow, to: [\"*\"], ports: [443]}",
		  c4, 2);
}

/* A name with a probe for each of twelve pattern depths: the first rule in order decides, whichever
 * depth it matches at. */
static void test_many_label_probes(void **state)
{
	(void)state;
	char doc[2048];
	int o = snprintf(doc, sizeof(doc), "egress:\n  mode: block-all\n  rules:\n");
	const char *zone = "l.k.j.i.h.g.f.e.d.c.b.a";
	for (int i = 0; i < 12; i++)
		o += snprintf(doc + o, sizeof(doc) - o, "  - {action: %s, to: [\"*.%s\"]}\n",
			      i % 2 ? "deny" : "allow", zone + 2 * i);
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(doc, &p);
	uint8_t a[4] = {1, 2, 3, 4};
	const char *names[] = {"x.l.k.j.i.h.g.f.e.d.c.b.a", "x.b.a", "x.a", "a", "x.y.z"};
	struct sn_decision d[5];
	for (int i = 0; i < 5; i++) {
		struct sn_query q = {SN_EGRESS, AF_INET, a, 443, SN_PROTO_TCP, names[i]};
		d[i] = sn_decide(s, &q);
		assert_int_equal(naive_decide(p, &q).rule, d[i].rule);
	}
	assert_int_equal(d[0].rule, 0); /* the deepest pattern is the first rule */
	assert_int_equal(d[1].rule, 10);
	assert_int_equal(d[3].verdict, SN_VERDICT_DENY);
	sn_snapshot_unref(s);
	sn_policy_free(p);
}

/* name against the snapshot and the naive evaluator, as a connection to port (TCP, from
 * 192.0.2.1) and as a DNS query; returns the snapshot's decision */
static struct sn_decision check_name(const struct sn_policy *p, const struct sn_snapshot *s,
				     const char *name, uint16_t port)
{
	uint8_t a[4] = {192, 0, 2, 1};
	struct sn_query q = {SN_EGRESS, AF_INET, a, port, SN_PROTO_TCP, name};
	struct sn_decision d = sn_decide(s, &q), r = naive_decide(p, &q);
	if (d.verdict != r.verdict || d.rule != r.rule)
		fail_msg("\"%s\" port %u: got %s %d, naive %s %d", name, port,
			 sn_verdict_name(d.verdict), d.rule, sn_verdict_name(r.verdict), r.rule);
	int rule, nrule;
	assert_int_equal(sn_dns_allowed(s, name, &rule), naive_dns_allowed(p, name, &nrule));
	assert_int_equal(rule, nrule);
	return d;
}

/* The name scanner reads sixteen bytes at a time: every byte class, at every position of a block,
 * in names of every length around the limits, must read as the naive evaluator reads it. */
static void test_name_bytes(void **state)
{
	(void)state;
	const char *doc = "egress:\n  mode: block-all\n  rules:\n"
			  "  - {action: allow, to: [\"ab-c_d.example\", \"*.zz.example\"]}\n"
			  "  - {action: deny, to: [\"*.example\"], ports: [80]}\n"
			  "  - {action: allow, to: [\"*.a.b.c.d.e.f.g.h.i\"]}\n"
			  "  - {action: allow, to: [\"*\"], ports: [443]}\n"; /* a valid name */
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(doc, &p);
	char name[300];
	long checked = 0;
	/* one odd byte at every position of names of 1 to 70 bytes (names of up to 64 bytes take
	 * their own path) */
	static const unsigned char odd[] = {'a', 'z', 'A', 'Z', '0', '9', '-', '_', '.', '@', '[',
					    '`', '{', '/', ':', ' ', 0x7f, 0x80, 0xc3, 0xff, '*'};
	for (size_t len = 1; len <= 70; len++)
		for (size_t pos = 0; pos < len; pos++)
			for (size_t k = 0; k < sizeof(odd); k++) {
				/* "...x.zz.example" shaped names, cut to len bytes from the right */
				const char *tail = "q.ab-c_d.example.zz.example";
				size_t tl = strlen(tail);
				for (size_t i = 0; i < len; i++)
					name[i] = i + tl >= len ? tail[i + tl - len] : 'm';
				name[len] = 0;
				name[pos] = (char)odd[k];
				check_name(p, s, name, 80);
				check_name(p, s, name, 443);
				checked++;
			}
	/* a name of one label of 62 to 65 bytes, with and without a last dot */
	for (size_t len = 62; len <= 65; len++)
		for (int dot = 0; dot < 2; dot++) {
			memset(name, 'k', len);
			memcpy(name + len, ".", 2);
			name[len + (size_t)dot] = 0;
			assert_int_equal(check_name(p, s, name, 443).rule,
					 len <= 63 ? 3 : SN_RULE_NONE);
		}
	/* label lengths 63 and 64; names of 253 and 254 bytes (with and without a last dot) */
	static const size_t labels[] = {62, 63, 64};
	for (size_t i = 0; i < 3; i++) {
		memset(name, 'k', labels[i]);
		snprintf(name + labels[i], sizeof(name) - labels[i], ".zz.example");
		int rule;
		assert_int_equal(sn_dns_allowed(s, name, &rule), labels[i] <= 63);
	}
	for (size_t len = 250; len <= 256; len++) {
		size_t o = 0;
		while (o < len - 11) {
			size_t l = len - 11 - o > 60 ? 60 : len - 11 - o;
			memset(name + o, 'y', l);
			o += l;
			if (o < len - 11)
				name[o - 1] = '.';
		}
		memcpy(name + o, ".zz.example", 12);
		for (int dot = 0; dot < 2; dot++) {
			if (dot)
				memcpy(name + len, ".", 2);
			int rule, nrule;
			bool ok = sn_dns_allowed(s, name, &rule);
			assert_int_equal(ok, naive_dns_allowed(p, name, &nrule));
			assert_int_equal(ok, len <= 253);
			name[len] = 0;
		}
	}
	assert_true(checked > 10000);
	sn_snapshot_unref(s);
	sn_policy_free(p);
}

static void test_render(void **state)
{
	(void)state;
	const char *doc = "egress:\n  rules:\n"
			  "  - {action: allow, to: [10.0.0.0/8, 10.1.0.0/16, 10.2.3.4, 9.9.9.9, "
			  "\"2001:db8::1\", \"2001:db8::/32\", \"2002::1\", a.com], ports: [443, "
			  "\"440-445\", 80, 81]}\n"
			  "  - {action: deny}\n";
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(doc, &p);
	assert_int_equal(sn_snapshot_nrules(s, SN_EGRESS), 2);
	const struct sn_rule_render *r = sn_snapshot_rule(s, SN_EGRESS, 0);
	assert_true(r->has_names);
	assert_false(r->any_dest);
	assert_int_equal(r->nnets4, 1); /* 10.1/16 is inside 10/8 */
	assert_int_equal(r->nhosts4, 1); /* 10.2.3.4 is inside 10/8; 9.9.9.9 stays */
	assert_int_equal(r->hosts4[0].addr[0], 9);
	assert_int_equal(r->nnets6, 1);
	assert_int_equal(r->nhosts6, 1); /* 2001:db8::1 inside 2001:db8::/32 */
	assert_int_equal(r->nports, 2);  /* 80-81, 440-445 */
	assert_int_equal(r->ports[0].lo, 80);
	assert_int_equal(r->ports[0].hi, 81);
	assert_int_equal(r->ports[1].lo, 440);
	assert_int_equal(r->ports[1].hi, 445);
	r = sn_snapshot_rule(s, SN_EGRESS, 1);
	assert_true(r->any_dest);
	assert_false(r->has_names);
	assert_null(sn_snapshot_rule(s, SN_EGRESS, 2));
	assert_true(sn_snapshot_memory(s) > 0);
	struct sn_snapshot *s2 = sn_snapshot_ref(s);
	sn_snapshot_unref(s);
	sn_snapshot_unref(s2);
	sn_policy_free(p);
}

/* ---- policies big enough for the first-level table ---- */

static uint32_t lrng = 12345;
static uint32_t lrnd(uint32_t n)
{
	lrng = lrng * 1103515245u + 12345u;
	return (lrng >> 8) % n;
}

/* a += delta (+1 or -1) on a big-endian address of len bytes, wrapping */
static void addr_step(uint8_t *a, int len, int delta)
{
	for (int i = len - 1; i >= 0; i--) {
		a[i] = (uint8_t)(a[i] + delta);
		if (a[i] != (delta > 0 ? 0 : 0xff))
			break;
	}
}

/* One query against the naive evaluator. */
/* The reason sn_decide() gives for a decision of policy p. */
static const char *want_reason(const struct sn_policy *p, const struct sn_query *q,
			       struct sn_decision d)
{
	if (d.rule == SN_RULE_NONE)
		return (q->dir == SN_INGRESS ? p->ingress.mode : p->egress.mode) ==
				       SN_MODE_BLOCK_ALL
			       ? "no rule matched: mode block-all"
			       : "no rule matched: mode allow-all";
	return d.verdict == SN_VERDICT_NEED_NAME ? "a rule that matches names decides, and the "
						   "connection's name is not known"
						 : "the first matching rule decides";
}

static void check_query(const struct sn_policy *p, const struct sn_snapshot *s,
			const struct sn_query *q)
{
	struct sn_decision got = sn_decide(s, q), ref = naive_decide(p, q);
	if (got.verdict != ref.verdict || got.rule != ref.rule ||
	    strcmp(got.reason, want_reason(p, q, ref)) != 0) {
		char t[INET6_ADDRSTRLEN];
		inet_ntop(q->family, q->addr, t, sizeof(t));
		fail_msg("%s port %u %s name %s: got %d rule %d (%s), want %d rule %d", t, q->port,
			 sn_proto_name(q->proto), q->name ? q->name : "-", got.verdict, got.rule,
			 got.reason, ref.verdict, ref.rule);
	}
}

/* Every query shape at addr against the naive evaluator. */
static void check_addr(const struct sn_policy *p, const struct sn_snapshot *s, int family,
		       const uint8_t *addr)
{
	static const uint16_t ports[] = {443, 5, 1003, 2017};
	static const char *const names[] = {NULL, "a.example", "x.b.example", "c.example"};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			for (int k = 0; k < 2; k++)
				check_query(p, s,
					    &(struct sn_query){SN_EGRESS, family, addr, ports[i],
							       k ? SN_PROTO_UDP : SN_PROTO_TCP,
							       names[j]});
}

/* The first and last address and their neighbours of every every-th address entry, and nrandom
 * random addresses. */
static void check_policy(const struct sn_policy *p, const struct sn_snapshot *s, size_t every,
			 int nrandom)
{
	size_t count = 0;
	for (size_t r = 0; r < p->egress.nrules; r++)
		for (size_t e = 0; e < p->egress.rules[r].npeers; e++) {
			const struct sn_entry *x = &p->egress.rules[r].peers[e];
			if (x->kind != SN_ENTRY_CIDR || count++ % every)
				continue;
			int len = x->cidr.family == AF_INET6 ? 16 : 4;
			uint8_t a[16], b[16];
			memcpy(a, x->cidr.addr, 16);
			memcpy(b, a, 16);
			for (int bit = x->cidr.plen; bit < len * 8; bit++)
				b[bit / 8] |= (uint8_t)(0x80 >> bit % 8);
			check_addr(p, s, x->cidr.family, a);
			check_addr(p, s, x->cidr.family, b);
			addr_step(a, len, -1);
			addr_step(b, len, 1);
			check_addr(p, s, x->cidr.family, a);
			check_addr(p, s, x->cidr.family, b);
		}
	for (int i = 0; i < nrandom; i++) {
		uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
		for (int k = i % 4 ? 4 : 0; k < 16; k++)
			a[k] = (uint8_t)lrnd(256);
		check_addr(p, s, i % 2 ? AF_INET6 : AF_INET, a);
	}
}

/* Compiles the policy document d, checks it (check_policy()) and frees it all. */
static void check_doc(struct docbuf *d, size_t every, int nrandom)
{
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(d->p, &p);
	check_policy(p, s, every, nrandom);
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(d->p);
}

/* Verdict rows (a query without a name decided by its address's list and its class): port
 * classes with edges at both ends of the port line, on both sides of a high byte's edge and
 * inside a high byte, under every protocol (and a query's "any"), with rules without a
 * destination, for ICMP, with names; every class edge and its neighbours at addresses of every
 * list, in both modes, against the naive evaluator. Then the same with more port classes than a
 * row takes, which the engine decides by walking the lists instead. */
static void test_port_classes(void **state)
{
	(void)state;
	static const char *const addrs[] = {"10.0.0.1",      "10.1.2.3",       "10.2.0.9",
					    "10.3.0.1",      "10.200.0.1",     "11.0.0.1",
					    "2001:db8::1",   "2001:db8:1::1",  "2001:db8:8000::1",
					    "2001:db9::1"};
	static const uint16_t ports[] = {0,   1,   2,   254,  255,  256,  257,   442,   443,  444,
					 510, 511, 513, 514,  999,  1000, 1010,  1011,  1012, 4000,
					 4020, 59999, 60000, 65534, 65535};
	for (int t = 0; t < 4; t++) {
		struct docbuf d = {0};
		docbuf_put(&d, "{\"egress\":{\"mode\":\"%s\",\"rules\":[",
		           t % 2 ? "allow-all" : "block-all");
		docbuf_put(&d, "{\"action\":\"deny\",\"to\":[\"10.0.0.0/8\",\"2001:db8::/32\"],"
			       "\"ports\":[1,255,256],\"protocol\":\"tcp\"},"
			       "{\"action\":\"allow\",\"to\":[\"10.1.0.0/16\",\"2001:db8:1::/48\"],"
			       "\"ports\":[\"511-513\",\"1000-1010\"],\"protocol\":\"udp\"},"
			       "{\"action\":\"allow\",\"to\":[\"a.example\",\"10.2.0.0/16\"],"
			       "\"ports\":[\"60000-65535\"]},"
			       "{\"action\":\"deny\",\"ports\":[65535,443]},"
			       "{\"action\":\"allow\",\"to\":[\"10.0.0.0/8\"],"
			       "\"protocol\":\"icmp\"},"
			       "{\"action\":\"deny\",\"to\":[\"*.example\",\"10.3.0.0/16\"]},"
			       "{\"action\":\"allow\",\"to\":[\"10.0.0.0/9\",\"2001:db8::/33\"]}");
		if (t >= 2) { /* 21 more ports: 43 classes */
			docbuf_put(&d,
			           ",{\"action\":\"allow\",\"to\":[\"11.0.0.0/8\"],\"ports\":[");
			for (int i = 0; i < 21; i++)
				docbuf_put(&d, "%s%d", i ? "," : "", 4000 + 2 * i);
			docbuf_put(&d, "]}");
		}
		docbuf_put(&d, "]}}");
		struct sn_policy *p;
		struct sn_snapshot *s = parse_compile(d.p, &p);
		for (size_t a = 0; a < sizeof(addrs) / sizeof(addrs[0]); a++) {
			uint8_t addr[16];
			int family = strchr(addrs[a], ':') ? AF_INET6 : AF_INET;
			assert_int_equal(inet_pton(family, addrs[a], addr), 1);
			for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
				for (int proto = SN_PROTO_ANY; proto <= SN_PROTO_ICMP; proto++)
					for (int named = 0; named < 2; named++)
						check_query(p, s,
							    &(struct sn_query){
								SN_EGRESS, family, addr, ports[i],
								(enum sn_proto)proto,
								named ? "b.example" : NULL});
		}
		sn_snapshot_unref(s);
		sn_policy_free(p);
		free(d.p);
	}
}

/* Verdict rows are built only while the rule-list pool with them stays within 2^15 words: many
 * overlapping prefixes (/12-/16 in one case, /16-/24 in the other) in rules with ports, so that
 * the lists are many and long. The first keeps its rows, the second would outgrow the pool and is
 * compiled again without them; both against the naive evaluator. */
static void test_row_pool_limit(void **state)
{
	(void)state;
	for (int t = 0; t < 2; t++) {
		unsigned minlen = t ? 16 : 12, span = t ? 9 : 5;
		struct docbuf d = {0};
		docbuf_put(&d, "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[");
		for (int r = 0; r < 100; r++) {
			docbuf_put(&d, "%s{\"action\":\"%s\",\"ports\":%s,\"to\":[", r ? "," : "",
			           r % 3 ? "allow" : "deny",
			           r % 3 == 0 ? "[443]" : r % 3 == 1 ? "[1003]" : "[5,2017]");
			for (int i = 0; i < 100; i++) {
				unsigned plen = minlen + lrnd(span);
				uint32_t a = (10u << 24 | lrnd(1u << 24)) & ~(~0u >> plen);
				docbuf_put(&d, "%s\"%u.%u.%u.%u/%u\"", i ? "," : "", a >> 24,
				           a >> 16 & 255, a >> 8 & 255, a & 255, plen);
			}
			docbuf_put(&d, "]}");
		}
		docbuf_put(&d, "]}}");
		check_doc(&d, 200, 100);
	}
}

/* Rules 0 and 1 (act0 with port 443, then act1): n hosts next to each other in each family,
 * NET4.x.y and NET6x, alternating between the two, so that first-level buckets hold more than 63
 * segments. */
static void put_alternating_hosts(struct docbuf *d, const char *act0, const char *act1, int n,
				  const char *net4, const char *net6)
{
	for (int r = 0; r < 2; r++) {
		docbuf_put(d, "%s{\"action\":\"%s\",%s\"to\":[", r ? "," : "", r ? act1 : act0,
		           r ? "" : "\"ports\":[443],");
		for (int i = 0; i < n; i++)
			docbuf_put(d, "%s\"%s.%d.%d\",\"%s%x\"", i ? "," : "", net4, (2 * i + r) / 256,
			           (2 * i + r) % 256, net6, 2 * i + r);
		docbuf_put(d, "]}");
	}
}

/* A bucket of the first-level table with more than 63 segments: hosts next to each other that
 * alternate between two rules, among a few thousand random prefixes of both families. */
static void test_large_bucket(void **state)
{
	(void)state;
	struct docbuf d = {0};
	docbuf_put(&d, "{\"egress\":{\"mode\":\"block-all\",\"rules\":[");
	put_alternating_hosts(&d, "allow", "deny", 150, "10.1", "2001:db8::");
	for (int r = 2; r < 10; r++) {
		docbuf_put(&d, ",{\"action\":\"%s\",%s\"to\":[", r % 2 ? "deny" : "allow",
		           r % 3 ? "" : "\"ports\":[\"1000-1010\"],\"protocol\":\"tcp\",");
		for (int i = 0; i < 250; i++)
			docbuf_put(&d, "%s\"%u.%u.%u.0/24\",\"2001:db8:%x:%x00::/56\"",
			           i ? "," : "", lrnd(224), lrnd(256), lrnd(256), lrnd(65536),
			           lrnd(256));
		docbuf_put(&d, "]}");
	}
	docbuf_put(
	    &d,
	    ",{\"action\":\"allow\",\"to\":[\"a.example\",\"*.b.example\"],\"ports\":[443]}]}}");
	check_doc(&d, 5, 2000);
}

/* Packed segments (a first-level bucket that leaves 16 IPv4 or 80 IPv6 bits): rules inside
 * 10.0.0.0/8 and 2001:db8:1::/48, of prefixes from /16 and /56 to hosts, some of them on bucket
 * edges, with runs of adjacent hosts that alternate between two rules (buckets of more than 63
 * segments); every entry's edges and random addresses inside both prefixes against the naive
 * evaluator. */
static void test_packed_buckets(void **state)
{
	(void)state;
	struct docbuf d = {0};
	docbuf_put(&d, "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[");
	put_alternating_hosts(&d, "deny", "allow", 120, "10.7", "2001:db8:1:7::");
	for (int r = 2; r < 12; r++) {
		docbuf_put(&d, ",{\"action\":\"%s\",%s\"to\":[", r % 2 ? "allow" : "deny",
		           r % 3 ? "" : "\"ports\":[\"1000-1010\"],\"protocol\":\"tcp\",");
		for (int i = 0; i < 300; i++) {
			int p4 = 16 + (int)lrnd(17), p6 = 56 + 8 * (int)lrnd(10);
			uint32_t a4 = 10u << 24 | lrnd(1u << 24);
			a4 &= p4 == 32 ? ~0u : ~(~0u >> p4);
			uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
			for (int k = 6; k < 16; k++)
				a6[k] = k < p6 / 8 ? (uint8_t)lrnd(256) : 0;
			char t[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, a6, t, sizeof(t));
			docbuf_put(&d, "%s\"%u.%u.%u.%u/%d\",\"%s/%d\"", i ? "," : "", a4 >> 24,
			           a4 >> 16 & 255, a4 >> 8 & 255, a4 & 255, p4, t, p6);
		}
		docbuf_put(&d, "]}");
	}
	docbuf_put(&d, "]}}");
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(d.p, &p);
	check_policy(p, s, 5, 0);
	for (int i = 0; i < 2000; i++) {
		uint8_t a[16] = {10, (uint8_t)lrnd(256), (uint8_t)lrnd(256), (uint8_t)lrnd(256)};
		if (i % 2) {
			uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};
			for (int k = 6; k < 16; k++)
				b[k] = (uint8_t)lrnd(256);
			memcpy(a, b, 16);
		}
		check_addr(p, s, i % 2 ? AF_INET6 : AF_INET, a);
	}
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(d.p);
}

/* base's first plen bits, then random bits up to len, then zeros */
static void random_bits(uint8_t *a, const uint8_t *base, int plen, int len)
{
	memcpy(a, base, 16);
	for (int bit = plen; bit < 128; bit++) {
		uint8_t m = (uint8_t)(0x80 >> bit % 8);
		a[bit / 8] = bit < len && lrnd(2) ? a[bit / 8] | m : a[bit / 8] & (uint8_t)~m;
	}
}

/* IPv6 policies whose segments share 56, 64 and 96 bits: the first-level table's bits then straddle
 * the address's two words or lie in the low one, and the shared prefix reaches into the low word.
 * Checked at the edges of every fourth entry and at random addresses inside and just outside the
 * prefix. */
static void test_low_word_buckets(void **state)
{
	(void)state;
	static const int shared[] = {56, 64, 96};
	for (size_t t = 0; t < sizeof(shared) / sizeof(shared[0]); t++) {
		uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0};
		int plen = shared[t];
		struct docbuf d = {0};
		docbuf_put(&d, "{\"egress\":{\"mode\":\"block-all\",\"rules\":[");
		for (int r = 0; r < 6; r++) {
			docbuf_put(&d, "%s{\"action\":\"%s\",%s\"to\":[", r ? "," : "",
			           r % 2 ? "allow" : "deny", r % 3 ? "" : "\"ports\":[443],");
			for (int i = 0; i < 200; i++) {
				uint8_t a[16];
				int len = i % 2 ? 128 : plen + 4 + (int)lrnd((unsigned)(124 - plen));
				random_bits(a, base, plen, len);
				char txt[INET6_ADDRSTRLEN];
				inet_ntop(AF_INET6, a, txt, sizeof(txt));
				docbuf_put(&d, "%s\"%s/%d\"", i ? "," : "", txt, len);
			}
			docbuf_put(&d, "]}");
		}
		docbuf_put(&d, "]}}");
		struct sn_policy *p;
		struct sn_snapshot *s = parse_compile(d.p, &p);
		check_policy(p, s, 4, 0);
		for (int i = 0; i < 1000; i++) {
			uint8_t a[16];
			random_bits(a, base, plen, 128);
			if (i % 3 == 0) /* outside the shared prefix by one bit */
				a[(i / 3 % plen) / 8] ^= (uint8_t)(0x80 >> (i / 3 % plen) % 8);
			check_addr(p, s, AF_INET6, a);
		}
		sn_snapshot_unref(s);
		sn_policy_free(p);
		free(d.p);
	}
}

/* Name tables of 16 to 4,096 slots, each filled to just under two thirds, so that runs of taken
 * slots cross the end of a table and many slots share a control byte: every name, exact or under
 * a wildcard, of 12 to 55 bytes, is found, and its near misses are not. */
static void test_name_tables(void **state)
{
	(void)state;
	static const int sizes[] = {10, 42, 170, 680, 2730};
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		int n = sizes[t];
		char (*names)[64] = malloc((size_t)n * sizeof(*names));
		for (int i = 0; i < n; i++) /* "e12-q.example": 12 to 52 bytes */
			snprintf(names[i], sizeof(names[i]), "e%d-%.*s.example", i,
				 (int)lrnd(38) + 1, "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjkl");
		struct docbuf d = {0};
		docbuf_put(&d, "{\"egress\":{\"mode\":\"block-all\",\"rules\":[");
		for (int r = 0; r < 8; r++) {
			docbuf_put(&d, "%s{\"action\":\"%s\",\"to\":[", r ? "," : "",
			           r % 2 ? "deny" : "allow");
			for (int i = r; i < n; i += 8)
				docbuf_put(&d, "%s\"%s\",\"*.w%s\"", i > r ? "," : "", names[i],
				           names[i]);
			docbuf_put(&d, "]}");
		}
		docbuf_put(&d, "]}}");
		struct sn_policy *p;
		struct sn_snapshot *s = parse_compile(d.p, &p);
		char q[80];
		for (int i = 0; i < n; i++) {
			check_name(p, s, names[i], 443);
			snprintf(q, sizeof(q), "x.w%s", names[i]); /* under a wildcard */
			check_name(p, s, q, 443);
			check_name(p, s, q + 2, 443); /* a wildcard's apex */
			check_name(p, s, q + 1, 443); /* ".w..." is not a name */
			snprintf(q, sizeof(q), "%sx", names[i]);
			check_name(p, s, q, 443);
		}
		sn_snapshot_unref(s);
		sn_policy_free(p);
		free(d.p);
		free(names);
	}
}

/* Two query shapes at addr: the lighter check_addr() for tests that look at many addresses of a
 * large policy. */
static void check_addr_light(const struct sn_policy *p, const struct sn_snapshot *s, int family,
			     const uint8_t *addr)
{
	check_query(p, s, &(struct sn_query){SN_EGRESS, family, addr, 443, SN_PROTO_TCP, NULL});
	check_query(p, s,
		    &(struct sn_query){SN_EGRESS, family, addr, 5, SN_PROTO_UDP, "a.example"});
}

/* First-level groups, narrow and wide: runs of 1 to 80 adjacent hosts that alternate between two
 * rules, each in a /24 (IPv4) or /48 (IPv6) of its own, among random prefixes, give buckets of every
 * size around the narrow entries' limit (31 segments) and the wide ones' (63). Each run is checked
 * around its ends and at hosts inside. */
#define GROUP_RUNS 120
static void test_l1_groups(void **state)
{
	(void)state;
	uint32_t run4[GROUP_RUNS], run6[GROUP_RUNS], len[GROUP_RUNS];
	for (int j = 0; j < GROUP_RUNS; j++) {
		len[j] = 1 + (uint32_t)j * 37 % 80;
		run4[j] = 10u << 24 | lrnd(1u << 16) << 8; /* 10.x.y.0 */
		run6[j] = lrnd(1u << 16);                   /* 2001:db8:x::/48 */
	}
	struct docbuf d = {0};
	docbuf_put(&d, "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[");
	for (int r = 0; r < 2; r++) {
		docbuf_put(&d, "%s{\"action\":\"%s\",%s\"to\":[", r ? "," : "", r ? "allow" : "deny",
		           r ? "" : "\"ports\":[443],");
		bool first = true;
		for (int j = 0; j < GROUP_RUNS; j++)
			for (uint32_t h = 1 + (uint32_t)r; h <= len[j]; h += 2, first = false)
				docbuf_put(&d, "%s\"%u.%u.%u.%u\",\"2001:db8:%x::%x\"", first ? "" : ",",
				           run4[j] >> 24, run4[j] >> 16 & 255, run4[j] >> 8 & 255, h,
				           run6[j], h);
		docbuf_put(&d, "%s]}", first ? "\"192.0.2.1\"" : "");
	}
	docbuf_put(&d, ",{\"action\":\"deny\",\"to\":[\"10.0.0.0/16\",\"10.255.0.0/16\"");
	for (int i = 0; i < 400; i++)
		docbuf_put(&d, ",\"10.%u.%u.0/%d\",\"2001:db8:%x:%x::/64\"", lrnd(256), lrnd(256) & 0xf0,
		           20 + (int)lrnd(5), lrnd(1u << 16), lrnd(1u << 16));
	docbuf_put(&d, "]}]}}");
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(d.p, &p);
	for (int j = 0; j < GROUP_RUNS; j++) {
		for (uint32_t k = 0; k < 12; k++) {
			/* hosts 0, 1, 2, the last two and the one after the run, then six at random */
			uint32_t h = k < 3 ? k : k < 6 ? len[j] - 4 + k : lrnd(len[j] + 2);
			uint8_t a[16] = {(uint8_t)(run4[j] >> 24), (uint8_t)(run4[j] >> 16),
					 (uint8_t)(run4[j] >> 8), (uint8_t)h};
			check_addr_light(p, s, AF_INET, a);
			uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, (uint8_t)(run6[j] >> 8), (uint8_t)run6[j]};
			b[15] = (uint8_t)h;
			check_addr_light(p, s, AF_INET6, b);
		}
	}
	check_policy(p, s, 97, 200);
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(d.p);
}

/* The start of an allow-all policy whose lists fill a large pool: rules 0-23 hold 24 nested
 * prefixes at the bottom of 10.0.0.0/8, and n more rules the /8 itself, all with ports (so no list
 * stops early): 24 distinct lists of about n rules each. */
static void put_nested_pool(struct docbuf *d, int n)
{
	docbuf_put(d, "{\"egress\":{\"mode\":\"allow-all\",\"rules\":[");
	for (int r = 0; r < 24 + n; r++)
		docbuf_put(d, "%s{\"action\":\"%s\",\"to\":[\"10.0.0.0/%d\"],\"ports\":[%d]}",
		           r ? "," : "", r % 3 ? "deny" : "allow", r < 24 ? 9 + r : 8,
		           r < 24 ? 1000 + r : 2000 + r % 50);
}

/* Rule lists past 16-bit pool offsets: 24 nested prefixes in rules with ports, inside a /8 that
 * 3,000 more rules with ports hold, make 24 distinct lists of about 3,000 rules each. */
static void test_large_pool(void **state)
{
	(void)state;
	struct docbuf d = {0};
	put_nested_pool(&d, 3000);
	docbuf_put(&d, ",{\"action\":\"deny\",\"to\":[");
	for (int i = 0; i < 100; i++)
		docbuf_put(&d, "%s\"%u.%u.%u.%u\"", i ? "," : "", 11 + lrnd(200), lrnd(256),
		           lrnd(256), lrnd(256));
	docbuf_put(&d, "]}]}}");
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(d.p, &p);
	check_policy(p, s, 97, 100);
	for (int j = 0; j < 24; j++) {
		uint8_t a[16] = {10};
		a[1 + j / 8] = (uint8_t)(0x80 >> j % 8);
		check_addr(p, s, AF_INET, a);
	}
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(d.p);
}

/* A bucket wholly inside one segment whose rule list lies past 15-bit pool offsets: 24 nested
 * prefixes at the bottom of 10.0.0.0/8, inside 2,000 rules with ports that hold the /8, intern
 * about 48,000 words of lists before the list of 10.200.0.0/16 (a deny rule of its own), which
 * covers whole buckets. */
static void test_large_pool_bucket(void **state)
{
	(void)state;
	struct docbuf d = {0};
	put_nested_pool(&d, 2000);
	docbuf_put(&d, ",{\"action\":\"deny\",\"to\":[\"10.200.0.0/16\"]}");
	docbuf_put(&d, ",{\"action\":\"allow\",\"to\":[\"10.255.255.255\"");
	for (int i = 1; i < 64; i++)
		docbuf_put(&d, ",\"10.%d.0.1\"", i * 4);
	docbuf_put(&d, "]}]}}");
	struct sn_policy *p;
	struct sn_snapshot *s = parse_compile(d.p, &p);
	check_policy(p, s, 61, 0);
	for (int i = 0; i < 120; i++) {
		uint8_t a[16] = {10, (uint8_t)(i < 80 ? 200 : lrnd(256)), (uint8_t)lrnd(256),
				 (uint8_t)lrnd(256)};
		check_addr(p, s, AF_INET, a);
	}
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(d.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_dns),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_many_label_probes),
		cmocka_unit_test(test_name_bytes),
		cmocka_unit_test(test_large_bucket),
		cmocka_unit_test(test_packed_buckets),
		cmocka_unit_test(test_low_word_buckets),
		cmocka_unit_test(test_l1_groups),
		cmocka_unit_test(test_large_pool),
		cmocka_unit_test(test_large_pool_bucket),
		cmocka_unit_test(test_name_tables),
		cmocka_unit_test(test_port_classes),
		cmocka_unit_test(test_row_pool_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

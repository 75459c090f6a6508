/* Differential test: the compiled engine (sn_decide, sn_dns_allowed) against the naive linear
 * evaluator on random (policy, query) pairs, IPv4 and IPv6, egress and ingress. Policies are
 * generated as JSON text, so the parser is exercised too. SN_DIFF_PAIRS sets the number of pairs
 * (default 100000), SN_DIFF_SEED the seed (printed on failure). */
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

#include "naive.h"

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char *const labels[] = {"a", "b", "www", "api", "x-y"};
static const char *const zones[] = {"x.com", "y.org", "com", "deep.x.com"};

static void rand_name(char *buf, size_t size)
{
	int depth = (int)rnd(3);
	size_t o = 0;
	buf[0] = 0;
	for (int i = 0; i < depth; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s.", labels[rnd(5)]);
	snprintf(buf + o, size - o, "%s", zones[rnd(4)]);
}

static void rand_v4(uint8_t *a)
{
	a[0] = rnd(8) ? 10 : (uint8_t)rnd(256);
	a[1] = (uint8_t)rnd(4);
	a[2] = (uint8_t)rnd(4);
	a[3] = (uint8_t)rnd(256);
}

static void rand_v6(uint8_t *a)
{
	memset(a, 0, 16);
	a[0] = 0x20;
	a[1] = 0x01;
	a[2] = 0x0d;
	a[3] = rnd(8) ? 0xb8 : (uint8_t)rnd(256);
	a[5] = (uint8_t)rnd(4);
	a[7] = (uint8_t)rnd(4);
	a[15] = (uint8_t)rnd(256);
	if (rnd(16) == 0)
		a[0] = 0xff;
}

static void rand_cidr(char *buf, size_t size)
{
	static const int l4[] = {0, 8, 16, 22, 24, 28, 30, 31, 32, 32};
	static const int l6[] = {0, 16, 32, 48, 64, 120, 127, 128, 128};
	uint8_t a[16];
	int fam = rnd(2) ? AF_INET : AF_INET6;
	int plen;
	if (fam == AF_INET) {
		rand_v4(a);
		plen = l4[rnd(10)];
	} else {
		rand_v6(a);
		plen = l6[rnd(9)];
	}
	int alen = fam == AF_INET ? 4 : 16;
	for (int i = 0; i < alen; i++) {
		int bit = i * 8;
		if (bit >= plen)
			a[i] = 0;
		else if (plen - bit < 8)
			a[i] &= (uint8_t)(0xff << (8 - (plen - bit)));
	}
	char s[64];
	inet_ntop(fam, a, s, sizeof(s));
	snprintf(buf, size, "%s/%d", s, plen);
}

static size_t rand_rule(char *buf, size_t size, int ingress)
{
	size_t o = (size_t)snprintf(buf, size, "{\"action\":\"%s\"", rnd(2) ? "allow" : "deny");
	if (rnd(5)) {
		int n = 1 + (int)rnd(5);
		o += (size_t)snprintf(buf + o, size - o, ",\"%s\":[", ingress ? "from" : "to");
		for (int i = 0; i < n; i++) {
			char e[128];
			uint32_t k = ingress ? 0 : rnd(10);
			if (k < 6)
				rand_cidr(e, sizeof(e));
			else if (k < 8)
				rand_name(e, sizeof(e));
			else if (k < 9) {
				e[0] = '*';
				e[1] = '.';
				rand_name(e + 2, sizeof(e) - 2);
			} else
				snprintf(e, sizeof(e), rnd(4) ? "%s" : "*", zones[rnd(4)]);
			o += (size_t)snprintf(buf + o, size - o, "%s\"%s\"", i ? "," : "", e);
		}
		o += (size_t)snprintf(buf + o, size - o, "]");
	}
	bool ports = rnd(2);
	if (ports) {
		int n = 1 + (int)rnd(3);
		o += (size_t)snprintf(buf + o, size - o, ",\"ports\":[");
		for (int i = 0; i < n; i++) {
			int lo = 1 + (int)rnd(20), hi = lo + (int)rnd(4);
			if (rnd(2))
				o += (size_t)snprintf(buf + o, size - o, "%s%d", i ? "," : "", lo);
			else
				o += (size_t)snprintf(buf + o, size - o, "%s\"%d-%d\"", i ? "," : "",
						      lo, hi);
		}
		o += (size_t)snprintf(buf + o, size - o, "]");
	}
	static const char *const protos[] = {"any", "tcp", "udp", "icmp"};
	const char *proto = protos[rnd(ports ? 3 : 4)];
	o += (size_t)snprintf(buf + o, size - o, ",\"protocol\":\"%s\"}", proto);
	return o;
}

static char *rand_policy(void)
{
	size_t size = 65536, o = 0;
	char *buf = malloc(size);
	o += (size_t)snprintf(buf, size, "{");
	for (int dir = 0; dir < 2; dir++) {
		o += (size_t)snprintf(buf + o, size - o, "%s\"%s\":{\"mode\":\"%s\",\"rules\":[",
				      dir ? "," : "", dir ? "ingress" : "egress",
				      rnd(2) ? "allow-all" : "block-all");
		int n = (int)rnd(12);
		for (int i = 0; i < n; i++) {
			if (i)
				buf[o++] = ',';
			o += rand_rule(buf + o, size - o, dir);
		}
		o += (size_t)snprintf(buf + o, size - o, "]}");
	}
	snprintf(buf + o, size - o, "}");
	return buf;
}

/* The element of a partition that holds a query, or -1. */
static int part_lookup(const struct sn_part_elem *v, size_t n, const struct sn_query *q)
{
	int bytes = q->family == AF_INET6 ? 16 : 4;
	int cls = q->proto == SN_PROTO_TCP ? SN_PART_TCP
		  : q->proto == SN_PROTO_UDP ? SN_PART_UDP
					     : SN_PART_ICMP;
	int found = -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].cls != cls || memcmp(q->addr, v[i].lo, bytes) < 0 ||
		    memcmp(q->addr, v[i].hi, bytes) > 0)
			continue;
		if ((cls == SN_PART_TCP || cls == SN_PART_UDP) &&
		    (q->port < v[i].plo || q->port > v[i].phi))
			continue;
		if (found >= 0)
			fail_msg("elements %d and %zu overlap", found, i);
		found = (int)i;
	}
	return found < 0 ? -1 : (int)v[found].rule;
}

/* The kernel's partitions of runs of rules without names decide as the rules do. */
static void test_partition(void **state)
{
	(void)state;
	rng = 0xfeedbeef;
	long checked = 0;
	for (int it = 0; it < 300; it++) {
		char *doc = rand_policy();
		struct sn_policy *p;
		assert_int_equal(sn_policy_parse(doc, strlen(doc), 0, 0, &p, NULL), 0);
		/* the longest run without names */
		size_t best = 0, bestlen = 0;
		for (size_t i = 0; i < p->egress.nrules;) {
			size_t j = i;
			for (; j < p->egress.nrules; j++) {
				bool names = false;
				for (size_t e = 0; e < p->egress.rules[j].npeers; e++)
					names |= p->egress.rules[j].peers[e].kind != SN_ENTRY_CIDR;
				if (names)
					break;
			}
			if (j - i > bestlen)
				best = i, bestlen = j - i;
			i = j + 1;
		}
		struct sn_policy run = *p;
		run.egress.rules = p->egress.rules + best;
		run.egress.nrules = bestlen;
		struct sn_snapshot *s = sn_snapshot_compile(p);
		for (int fam = 0; fam < 2; fam++) {
			int family = fam ? AF_INET6 : AF_INET;
			struct sn_part_elem *v;
			size_t n;
			assert_int_equal(sn_snapshot_partition(s, SN_EGRESS, best, best + bestlen, family,
							       &v, &n),
					 0);
			for (int k = 0; k < 300; k++) {
				uint8_t addr[16];
				struct sn_query q = {.dir = SN_EGRESS, .family = family, .addr = addr};
				if (family == AF_INET)
					rand_v4(addr);
				else
					rand_v6(addr);
				q.proto = (enum sn_proto)(1 + rnd(3));
				q.port = q.proto == SN_PROTO_ICMP ? 0 : (uint16_t)rnd(24);
				struct sn_decision want = naive_decide(&run, &q);
				int got = part_lookup(v, n, &q);
				int w = want.rule == SN_RULE_NONE ? -1 : (int)best + want.rule;
				if (got != w)
					fail_msg("partition: rule %d, want %d; policy %s", got, w, doc);
				checked++;
			}
			free(v);
		}
		sn_snapshot_unref(s);
		sn_policy_free(p);
		free(doc);
	}
	print_message("%ld partition lookups checked\n", checked);
}

static void test_differential(void **state)
{
	(void)state;
	const char *env = getenv("SN_DIFF_PAIRS");
	long pairs = env ? atol(env) : 100000;
	const char *seed_env = getenv("SN_DIFF_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x5eed5a4d;
	rng = seed;
	long done = 0, v6 = 0, need = 0, named = 0, dns = 0;
	while (done < pairs) {
		char *doc = rand_policy();
		struct sn_policy *p;
		struct sn_errs errs;
		sn_errs_init(&errs);
		if (sn_policy_parse(doc, strlen(doc), SN_FORMAT_JSON, SN_DIALECT_NATIVE, &p, &errs))
			fail_msg("generated policy refused (%s: %s): %s", errs.e[0].path,
				 errs.e[0].msg, doc);
		struct sn_snapshot *s = sn_snapshot_compile(p);
		assert_non_null(s);
		for (int i = 0; i < 50; i++, done++) {
			uint8_t addr[16];
			char name[128];
			struct sn_query q = {.dir = rnd(4) ? SN_EGRESS : SN_INGRESS, .addr = addr};
			q.family = rnd(2) ? AF_INET : AF_INET6;
			if (q.family == AF_INET)
				rand_v4(addr);
			else
				rand_v6(addr);
			q.proto = (enum sn_proto)(1 + rnd(3));
			q.port = q.proto == SN_PROTO_ICMP ? 0 : (uint16_t)(1 + rnd(22));
			uint32_t k = rnd(10);
			if (k < 5) {
				rand_name(name, 128);
				if (rnd(4) == 0)
					name[0] = (char)(name[0] - 32); /* upper case */
				q.name = name;
			} else if (k == 5) {
				q.name = rnd(2) ? "bad..name" : "x.com.";
			}
			struct sn_decision a = sn_decide(s, &q), b = naive_decide(p, &q);
			if (a.verdict != b.verdict || a.rule != b.rule) {
				char as[64];
				inet_ntop(q.family, addr, as, sizeof(as));
				fail_msg("seed %#llx pair %ld: %s %s port %u proto %s name %s: engine "
					 "%s/%d, naive %s/%d\npolicy: %s",
					 (unsigned long long)seed, done,
					 q.dir == SN_INGRESS ? "ingress" : "egress", as, q.port,
					 sn_proto_name(q.proto), q.name ? q.name : "-",
					 sn_verdict_name(a.verdict), a.rule, sn_verdict_name(b.verdict),
					 b.rule, doc);
			}
			v6 += q.family == AF_INET6;
			need += a.verdict == SN_VERDICT_NEED_NAME;
			named += q.name != NULL && a.rule != SN_RULE_NONE;
			if (i < 10) {
				char dn[128];
				rand_name(dn, sizeof(dn));
				int r1, r2;
				bool x = sn_dns_allowed(s, dn, &r1), y = naive_dns_allowed(p, dn, &r2);
				if (x != y || r1 != r2)
					fail_msg("dns %s: engine %d/%d naive %d/%d policy %s", dn, x,
						 r1, y, r2, doc);
				dns++;
			}
		}
		sn_snapshot_unref(s);
		sn_policy_free(p);
		free(doc);
	}
	print_message("%ld pairs (%ld IPv6, %ld need-name, %ld decided with a name), %ld DNS "
		      "checks\n",
		      done, v6, need, named, dns);
	assert_true(v6 > done / 4 && need > 0 && named > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_differential),
					   cmocka_unit_test(test_partition)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

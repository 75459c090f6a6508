/* bench/decide: decision speed, compile time and snapshot memory of the policy engine.
 *
 * Policy: 100,000 CIDR entries (IPv4 and IPv6, hosts and prefixes) in 100 rules, and 10,000
 * domain patterns (exact and "*.") in 20 rules, some with ports and protocols. Queries: 1,000,000
 * random ones, both families, a third with a name. Reports the median of 5 runs of each, and, in
 * the same run, the naive linear evaluator on a sample of the same queries (it is too slow for all
 * of them), checking that both agree.
 *
 * usage: bench_decide [--runs N] [--queries N] [--naive N] [--scale D]
 *
 * --scale D divides the entries per rule by D: with 100 the snapshot stays in the L2 cache, which
 * separates the work of a decision from its waits on memory. */
#include <arpa/inet.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <sandnet/snapshot.h>

#include "docbuf.h"
#include "naive.h"

#define NCIDR_RULES 100
#define CIDRS_PER_RULE 1000
#define NNAME_RULES 20
#define NAMES_PER_RULE 500

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}
static uint32_t rnd(uint32_t n)
{
	return (uint32_t)(rnd64() % n);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dcmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void cidr_text(char *s, size_t size, int v6, int host)
{
	uint8_t a[16] = {0};
	int plen;
	if (!v6) {
		uint32_t x = (uint32_t)rnd64();
		plen = host ? 32 : 16 + (int)rnd(13); /* /16 - /28 */
		x &= plen ? ~0u << (32 - plen) : 0;
		a[0] = (uint8_t)(x >> 24), a[1] = (uint8_t)(x >> 16), a[2] = (uint8_t)(x >> 8),
		a[3] = (uint8_t)x;
		char t[64];
		inet_ntop(AF_INET, a, t, sizeof(t));
		snprintf(s, size, "%s/%d", t, plen);
	} else {
		a[0] = 0x20, a[1] = 0x01, a[2] = 0x0d, a[3] = 0xb8;
		for (int i = 4; i < 16; i++)
			a[i] = (uint8_t)rnd(256);
		plen = host ? 128 : 48 + 8 * (int)rnd(6); /* /48 - /88 */
		for (int i = plen / 8; i < 16; i++)
			a[i] = 0;
		char t[64];
		inet_ntop(AF_INET6, a, t, sizeof(t));
		snprintf(s, size, "%s/%d", t, plen);
	}
}

static int cidrs_per_rule = CIDRS_PER_RULE, names_per_rule = NAMES_PER_RULE;
static char names[NNAME_RULES * NAMES_PER_RULE][48];

static char *make_policy(void)
{
	struct docbuf b = {0};
	docbuf_put(&b, "{\"egress\":{\"mode\":\"block-all\",\"rules\":[");
	int rule = 0;
	for (int r = 0; r < NCIDR_RULES; r++, rule++) {
		docbuf_put(&b, "%s{\"action\":\"%s\",\"to\":[", rule ? "," : "",
		           r % 3 ? "allow" : "deny");
		for (int i = 0; i < cidrs_per_rule; i++) {
			char s[64];
			cidr_text(s, sizeof(s), i % 2, i % 4 < 2);
			docbuf_put(&b, "%s\"%s\"", i ? "," : "", s);
		}
		docbuf_put(&b, "]");
		if (r % 4 == 1)
			docbuf_put(&b, ",\"ports\":[443,\"8000-8100\"],\"protocol\":\"tcp\"");
		docbuf_put(&b, "}");
	}
	for (int r = 0; r < NNAME_RULES; r++, rule++) {
		docbuf_put(&b, ",{\"action\":\"%s\",\"to\":[", r % 5 ? "allow" : "deny");
		for (int i = 0; i < names_per_rule; i++) {
			char *n = names[r * names_per_rule + i];
			snprintf(n, sizeof(names[0]), "svc%u.zone%u.example", rnd(100000), rnd(1000));
			docbuf_put(&b, "%s\"%s%s\"", i ? "," : "", i % 2 ? "*." : "", n);
		}
		docbuf_put(&b, "]%s}", r % 2 ? ",\"ports\":[443]" : "");
	}
	docbuf_put(&b, "]}}");
	return b.p;
}

/* A query carries its name bytes with it, as a proxy has the SNI in the connection's buffer. */
struct q {
	struct sn_query q;
	uint8_t addr[16];
	char name[80];
};
static char wwwnames[NNAME_RULES * NAMES_PER_RULE][52];

int main(int argc, char **argv)
{
	int runs = 5;
	long nq = 1000000, nnaive = 2000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--runs") == 0)
			runs = strtol(argv[i + 1], NULL, 10) > 0 ? (int)strtol(argv[i + 1], NULL, 10) : 5;
		else if (strcmp(argv[i], "--queries") == 0)
			nq = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--naive") == 0)
			nnaive = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--scale") == 0) {
			long d = strtol(argv[i + 1], NULL, 10);
			d = d > 0 ? d : 1;
			cidrs_per_rule = (int)((CIDRS_PER_RULE + d - 1) / d);
			names_per_rule = (int)((NAMES_PER_RULE + d - 1) / d);
		}
	}
	if (nnaive > nq)
		nnaive = nq;
	char *doc = make_policy();
	double t0 = now();
	struct sn_policy *p;
	struct sn_errs errs;
	sn_errs_init(&errs);
	if (sn_policy_parse(doc, strlen(doc), SN_FORMAT_JSON, SN_DIALECT_NATIVE, &p, &errs)) {
		fprintf(stderr, "policy refused: %s: %s\n", errs.e[0].path, errs.e[0].msg);
		return 1;
	}
	double parse_ms = (now() - t0) * 1e3;
	size_t ncidr = 0, nname = 0;
	for (size_t i = 0; i < p->egress.nrules; i++)
		for (size_t j = 0; j < p->egress.rules[i].npeers; j++)
			p->egress.rules[i].peers[j].kind == SN_ENTRY_CIDR ? ncidr++ : nname++;

	/* compile: median of runs; memory from the allocator's own count */
	double *ct = calloc((size_t)runs, sizeof(double));
	struct sn_snapshot *s = NULL;
	size_t heap = 0;
	for (int r = 0; r < runs; r++) {
		sn_snapshot_unref(s);
		malloc_trim(0);
		size_t before = mallinfo2().uordblks;
		t0 = now();
		s = sn_snapshot_compile(p);
		ct[r] = (now() - t0) * 1e3;
		heap = mallinfo2().uordblks - before;
		if (!s)
			return 1;
	}

	/* the CIDR entries alone: the same rules without the name rules */
	size_t cidr_heap;
	{
		struct sn_policy cp = *p;
		cp.egress.nrules = NCIDR_RULES;
		malloc_trim(0);
		size_t before = mallinfo2().uordblks;
		struct sn_snapshot *cs = sn_snapshot_compile(&cp);
		cidr_heap = mallinfo2().uordblks - before;
		sn_snapshot_unref(cs);
	}

	/* queries: half aimed at policy entries, the rest random; a third with a name */
	for (size_t i = 0; i < (size_t)(NNAME_RULES * names_per_rule); i++)
		snprintf(wwwnames[i], sizeof(wwwnames[i]), "www.%s", names[i]);
	struct q *qs = malloc((size_t)nq * sizeof(*qs));
	memset(qs, 0, (size_t)nq * sizeof(*qs));
	for (long i = 0; i < nq; i++) {
		struct q *x = &qs[i];
		const struct sn_rule *r = &p->egress.rules[rnd(NCIDR_RULES)];
		const struct sn_entry *e = &r->peers[rnd((uint32_t)r->npeers)];
		bool v6 = rnd(2);
		if (rnd(2) && e->kind == SN_ENTRY_CIDR) {
			v6 = e->cidr.family == AF_INET6;
			memcpy(x->addr, e->cidr.addr, 16);
			x->addr[v6 ? 15 : 3] |= (uint8_t)rnd(2);
		} else {
			for (int k = 0; k < 16; k++)
				x->addr[k] = (uint8_t)rnd(256);
			if (v6)
				x->addr[0] = 0x20, x->addr[1] = 0x01, x->addr[2] = 0x0d,
				x->addr[3] = 0xb8;
		}
		x->q.dir = SN_EGRESS;
		x->q.family = v6 ? AF_INET6 : AF_INET;
		x->q.addr = x->addr;
		x->q.proto = rnd(4) ? SN_PROTO_TCP : SN_PROTO_UDP;
		x->q.port = rnd(2) ? 443 : (uint16_t)(1 + rnd(65535));
		uint32_t k = rnd(6);
		if (k < 2) {
			uint32_t j = rnd((uint32_t)(NNAME_RULES * names_per_rule));
			snprintf(x->name, sizeof(x->name), "%s", k ? wwwnames[j] : names[j]);
			x->q.name = x->name;
		}
	}

	double *dt = calloc((size_t)runs, sizeof(double));
	unsigned long sink = 0;
	for (int r = 0; r < runs; r++) {
		t0 = now();
		for (long i = 0; i < nq; i++) {
			struct sn_decision d = sn_decide(s, &qs[i].q);
			sink += (unsigned)d.verdict + (unsigned)d.rule;
		}
		dt[r] = (now() - t0) * 1e9 / (double)nq;
	}

	/* the same, per kind of query, to see where the time goes */
	static const char *const kinds[3] = {"IPv4, no name", "IPv6, no name", "with a name"};
	double kind_ns[3];
	for (int k = 0; k < 3; k++) {
		long cnt = 0;
		struct q *sub = malloc((size_t)nq * sizeof(*sub));
		for (long i = 0; i < nq; i++) {
			int kind = qs[i].q.name ? 2 : qs[i].q.family == AF_INET6;
			if (kind == k) {
				sub[cnt] = qs[i];
				sub[cnt].q.addr = sub[cnt].addr;
				if (sub[cnt].q.name)
					sub[cnt].q.name = sub[cnt].name;
				cnt++;
			}
		}
		double *kt = calloc((size_t)runs, sizeof(double));
		for (int r = 0; r < runs; r++) {
			t0 = now();
			for (long i = 0; i < cnt; i++)
				sink += (unsigned)sn_decide(s, &sub[i].q).verdict;
			kt[r] = (now() - t0) * 1e9 / (double)(cnt ? cnt : 1);
		}
		kind_ns[k] = median(kt, runs);
		free(kt);
		free(sub);
	}

	double *nt = calloc((size_t)runs, sizeof(double));
	long mismatches = 0;
	for (int r = 0; r < runs; r++) {
		t0 = now();
		for (long i = 0; i < nnaive; i++) {
			struct sn_decision d = naive_decide(p, &qs[i].q);
			sink += (unsigned)d.verdict;
		}
		nt[r] = (now() - t0) * 1e9 / (double)nnaive;
	}
	for (long i = 0; i < nnaive; i++) {
		struct sn_decision a = sn_decide(s, &qs[i].q), b = naive_decide(p, &qs[i].q);
		mismatches += a.verdict != b.verdict || a.rule != b.rule;
	}

	size_t mem = sn_snapshot_memory(s);
	printf("policy: %zu rules, %zu CIDR entries, %zu domain patterns; parse %.1f ms\n",
	       p->egress.nrules, ncidr, nname, parse_ms);
	printf("compile:          %.1f ms (median of %d)\n", median(ct, runs), runs);
	printf("snapshot memory:  %zu bytes on the heap (%zu counted by the snapshot), %.1f bytes "
	       "per CIDR entry\n",
	       heap, mem, (double)heap / (double)ncidr);
	printf("  CIDR rules only: %zu bytes on the heap = %.1f bytes per CIDR entry\n", cidr_heap,
	       (double)cidr_heap / (double)ncidr);
	printf("decide:           %.1f ns per decision (median of %d runs of %ld queries)\n",
	       median(dt, runs), runs, nq);
	for (int k = 0; k < 3; k++)
		printf("  %-15s %.1f ns per decision\n", kinds[k], kind_ns[k]);
	printf("naive evaluator:  %.0f ns per decision (median of %d runs of %ld queries)\n",
	       median(nt, runs), runs, nnaive);
	printf("agreement:        %ld mismatches in %ld queries (sink %lu)\n", mismatches, nnaive,
	       sink & 1);
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(doc);
	free(qs);
	free(ct);
	free(dt);
	free(nt);
	return mismatches ? 1 : 0;
}

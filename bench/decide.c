/* bench/decide: decision speed, compile time and snapshot memory of the policy engine.
 *
 * Policy: 100,000 CIDR entries (IPv4 and IPv6, hosts and prefixes) in 100 rules, and 10,000
 * domain patterns (exact and "*.") in 20 rules, some with ports and protocols. Queries: 1,000,000
 * random ones, both families, a third with a name. Reports the median of 5 runs of each, and, in
 * the same run, the naive linear evaluator on a sample of the same queries (it is too slow for all
 * of them), checking that both agree.
 *
 * usage: bench_decide [--runs N] [--queries N] [--naive N] [--scale D] [--padded]
 *
 * --scale D divides the entries per rule by D: with 100 the snapshot stays in the L2 cache, which
 * separates the work of a decision from its waits on memory.
 *
 * The queries lie one after another as a caller holds them: a query and its address (48 bytes),
 * and, for a query with a name, the name's bytes in a stream of their own, in query order.
 * --padded gives every query an 80-byte name buffer of its own instead, used or not (128 bytes a
 * query: the layout before the twelfth session; docs/BENCHMARKS.md compares the two).
 *
 * Before and after the decisions it times a chain of dependent loads over 4 MB (the host's state:
 * on this machine 16-18 ns a load when the last level cache is ours, 100 ns and more when the
 * host's other tenants have it), so that each run's figures can be read against it. */
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

/* ns per load of a chain of dependent loads, in random order, over the cache lines of 4 MB */
static double host_latency(void)
{
	enum { LINES = (4 << 20) / 64, STRIDE = 64 / sizeof(size_t), LOADS = 1 << 20 };
	size_t *v = malloc((size_t)LINES * 64), *perm = malloc(LINES * sizeof(*perm));
	if (!v || !perm) {
		free(v);
		free(perm);
		return 0;
	}
	for (size_t i = 0; i < LINES; i++)
		perm[i] = i;
	for (size_t i = LINES - 1; i > 0; i--) {
		size_t j = rnd64() % (i + 1), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < LINES; i++)
		v[perm[i] * STRIDE] = perm[(i + 1) % LINES] * STRIDE;
	size_t at = 0;
	for (size_t i = 0; i < LINES; i++) /* once round, to fault the pages in */
		at = v[at];
	double t0 = now();
	for (long i = 0; i < LOADS; i++)
		at = v[at];
	double ns = (now() - t0) * 1e9 / LOADS;
	free(v);
	free(perm);
	return ns + (double)(at & 1) * 1e-12; /* keeps the chain */
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

struct q {
	struct sn_query q;
	uint8_t addr[16];
};
#define PADDED_NAME 80

/* The queries: count records of stride bytes, each a struct q, followed in the padded layout by
 * its name buffer; names: the other layout's name bytes, in query order, up to names_end. Every
 * name is shorter than PADDED_NAME, so each layout has room for a name per query. */
struct qset {
	unsigned char *base;
	size_t stride, count;
	char *names, *names_end;
};

static struct q *qat(const struct qset *s, size_t i)
{
	return (struct q *)(void *)(s->base + i * s->stride);
}

static bool qset_alloc(struct qset *s, size_t count, bool padded)
{
	s->stride = sizeof(struct q) + (padded ? PADDED_NAME : 0);
	s->count = 0;
	s->base = calloc(count ? count : 1, s->stride);
	s->names = s->names_end = padded ? NULL : malloc(count * PADDED_NAME + 1);
	return s->base && (padded || s->names);
}

/* Appends query x (its name, if any, is copied with it). */
static void qset_add(struct qset *s, const struct q *x)
{
	struct q *y = qat(s, s->count++);
	*y = *x;
	y->q.addr = y->addr;
	if (!x->q.name)
		return;
	char *n = s->names ? s->names_end : (char *)(y + 1);
	size_t len = strnlen(x->q.name, PADDED_NAME - 1);
	memcpy(n, x->q.name, len);
	n[len] = 0;
	y->q.name = n;
	if (s->names)
		s->names_end += len + 1;
}

static void qset_free(struct qset *s)
{
	free(s->base);
	free(s->names);
}

static char wwwnames[NNAME_RULES * NAMES_PER_RULE][52];

int main(int argc, char **argv)
{
	int runs = 5;
	long nq = 1000000, nnaive = 2000;
	bool padded = false;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(argv[i], "--padded") == 0) {
			padded = true;
			continue;
		}
		long n = v ? strtol(v, NULL, 10) : 0;
		if (n <= 0) {
			fprintf(stderr, "usage: bench_decide [--runs N] [--queries N] [--naive N] "
					"[--scale D] [--padded]\n");
			return 2;
		}
		i++;
		if (strcmp(argv[i - 1], "--runs") == 0)
			runs = (int)n;
		else if (strcmp(argv[i - 1], "--queries") == 0)
			nq = n;
		else if (strcmp(argv[i - 1], "--naive") == 0)
			nnaive = n;
		else if (strcmp(argv[i - 1], "--scale") == 0) {
			cidrs_per_rule = (int)((CIDRS_PER_RULE + n - 1) / n);
			names_per_rule = (int)((NAMES_PER_RULE + n - 1) / n);
		} else {
			fprintf(stderr, "bench_decide: unknown option %s\n", argv[i - 1]);
			return 2;
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

	/* each run's time: compile, decide, decide by kind, the naive evaluator */
	double *times = calloc(4 * (size_t)runs, sizeof(double));
	if (!times)
		return 1;
	double *ct = times, *dt = ct + runs, *kt = dt + runs, *nt = kt + runs;

	/* compile: median of runs; memory from the allocator's own count */
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
	struct qset qs;
	if (!qset_alloc(&qs, (size_t)nq, padded))
		return 1;
	for (long i = 0; i < nq; i++) {
		struct q query = {0}, *x = &query;
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
			x->q.name = k ? wwwnames[j] : names[j];
		}
		qset_add(&qs, x);
	}

	double host_before = host_latency();
	unsigned long sink = 0;
	for (int r = 0; r < runs; r++) {
		t0 = now();
		for (long i = 0; i < nq; i++) {
			struct sn_decision d = sn_decide(s, &qat(&qs, (size_t)i)->q);
			sink += (unsigned)d.verdict + (unsigned)d.rule;
		}
		dt[r] = (now() - t0) * 1e9 / (double)nq;
	}

	/* the same, per kind of query, to see where the time goes */
	static const char *const kinds[3] = {"IPv4, no name", "IPv6, no name", "with a name"};
	double kind_ns[3];
	for (int k = 0; k < 3; k++) {
		struct qset sub;
		if (!qset_alloc(&sub, (size_t)nq, padded))
			return 1;
		for (size_t i = 0; i < (size_t)nq; i++) {
			const struct q *x = qat(&qs, i);
			if ((x->q.name ? 2 : x->q.family == AF_INET6) == k)
				qset_add(&sub, x);
		}
		for (int r = 0; r < runs; r++) {
			t0 = now();
			for (size_t i = 0; i < sub.count; i++)
				sink += (unsigned)sn_decide(s, &qat(&sub, i)->q).verdict;
			kt[r] = (now() - t0) * 1e9 / (double)(sub.count ? sub.count : 1);
		}
		kind_ns[k] = median(kt, runs);
		qset_free(&sub);
	}

	double host_after = host_latency();
	long mismatches = 0;
	for (int r = 0; r < runs; r++) {
		t0 = now();
		for (long i = 0; i < nnaive; i++) {
			struct sn_decision d = naive_decide(p, &qat(&qs, (size_t)i)->q);
			sink += (unsigned)d.verdict;
		}
		nt[r] = (now() - t0) * 1e9 / (double)nnaive;
	}
	for (long i = 0; i < nnaive; i++) {
		const struct sn_query *q = &qat(&qs, (size_t)i)->q;
		struct sn_decision a = sn_decide(s, q), b = naive_decide(p, q);
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
	double dmed = median(dt, runs); /* sorts dt: the fastest and slowest runs frame it */
	printf("decide:           %.1f ns per decision (median of %d runs of %ld queries, %zu-byte "
	       "records%s)\n",
	       dmed, runs, nq, qs.stride, padded ? " with their name buffers" : "");
	printf("  runs from       %.1f to %.1f ns per decision\n", dt[0], dt[runs - 1]);
	for (int k = 0; k < 3; k++)
		printf("  %-15s %.1f ns per decision\n", kinds[k], kind_ns[k]);
	printf("host:             %.1f ns a dependent load over 4 MB before the decisions, %.1f after\n",
	       host_before, host_after);
	printf("naive evaluator:  %.0f ns per decision (median of %d runs of %ld queries)\n",
	       median(nt, runs), runs, nnaive);
	printf("agreement:        %ld mismatches in %ld queries (sink %lu)\n", mismatches, nnaive,
	       sink & 1);
	sn_snapshot_unref(s);
	sn_policy_free(p);
	free(doc);
	qset_free(&qs);
	free(times);
	return mismatches ? 1 : 0;
}

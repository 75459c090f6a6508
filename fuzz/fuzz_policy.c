/* libFuzzer target for the policy entry points: one binary per entry point, chosen at compile time
 * by SN_FUZZ_FORMAT and SN_FUZZ_DIALECT (JSON native, YAML native, E2B, sandbox0). Every accepted
 * policy must format, re-parse to an equal policy and compile, and its decisions, for queries
 * made of the input's bytes, must equal the naive evaluator's (tests/support/naive.c). A refused
 * one's errors must be UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sandnet/snapshot.h>

#include "naive.h"
#include "utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
char *sn_policy_format_tree(const struct sn_policy *p, int indent); /* src/core/format.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sn_errs errs;
	sn_errs_init(&errs);
	struct sn_policy *p = NULL;
	int rc = sn_policy_parse((const char *)data, size, SN_FUZZ_FORMAT, SN_FUZZ_DIALECT, &p, &errs);
	if (rc) {
		if (p || !sn_errs_any(&errs))
			abort(); /* a refusal always says why and returns nothing */
		/* each error's path and message are UTF-8 (the API sends them as JSON strings) */
		for (unsigned i = 0; i < errs.n; i++)
			if (!utf8_valid(errs.e[i].path, strlen(errs.e[i].path)) ||
			    !utf8_valid(errs.e[i].msg, strlen(errs.e[i].msg)))
				abort();
		return 0;
	}
	char *s = sn_policy_format(p, 0);
	if (!s)
		abort();
	/* the direct writer must give jansson's bytes */
	char *t = sn_policy_format_tree(p, 0);
	if (!t || strcmp(s, t) != 0) {
		fprintf(stderr, "direct and tree formats differ:\n%s\n%s\n", s, t ? t : "(null)");
		abort();
	}
	free(t);
	struct sn_policy *q = NULL;
	if (sn_policy_parse(s, strlen(s), SN_FORMAT_JSON, SN_DIALECT_NATIVE, &q, NULL) ||
	    !sn_policy_equal(p, q)) {
		fprintf(stderr, "round trip failed: %s\n", s);
		abort();
	}
	struct sn_snapshot *snap = sn_snapshot_compile(p);
	if (!snap)
		abort();
	/* the input's first bytes also serve as a query: address and name */
	uint8_t addr[16] = {0};
	memcpy(addr, data, size < 16 ? size : 16);
	char name[300];
	size_t nl = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, nl);
	name[nl] = 0;
	struct sn_query qu = {SN_EGRESS, size % 2 ? AF_INET6 : AF_INET, addr, 443, SN_PROTO_TCP,
			      size % 3 ? name : NULL};
	struct sn_query www = qu;
	www.name = "www.example.com";
	/* every protocol (and "any"), at ports taken from the input's last bytes and at 443 */
	for (int i = 0; i < 8; i++) {
		struct sn_query v[3] = {qu, www, qu};
		v[2].dir = SN_INGRESS;
		for (int k = 0; k < 3; k++) {
			v[k].proto = (enum sn_proto)(i % 4);
			if (i >= 4 && size >= 2 * (size_t)i)
				v[k].port = (uint16_t)(data[size - 2 * i + 1] << 8 | data[size - 2 * i]);
			struct sn_decision a = sn_decide(snap, &v[k]), b = naive_decide(p, &v[k]);
			if (a.verdict != b.verdict || a.rule != b.rule)
				abort();
		}
	}
	sn_dns_allowed(snap, name, NULL);
	sn_dns_allowed(snap, "a.example.com", NULL);
	sn_snapshot_unref(snap);
	sn_policy_free(q);
	free(s);
	sn_policy_free(p);
	return 0;
}

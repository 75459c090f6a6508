/* libFuzzer target for the query-name path of the decision engine (src/core/compile.c): a name
 * from a ClientHello, a Host field or a DNS question reaches sn_decide(), sn_dns_allowed() and
 * sn_snapshot_name_rules() as untrusted bytes. The input (up to its first NUL) is the name; every
 * answer must equal the naive evaluator's (tests/support/naive.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sandnet/snapshot.h>

#include "naive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* exact names, wildcards at several depths, names past a slot's inline bytes, a port-bound deny */
static const char *const policy =
    "egress:\n  mode: block-all\n  rules:\n"
    "  - {action: deny, to: [\"*.bad.example\"], ports: [443]}\n"
    "  - {action: allow, to: [a.example, \"*.example\", \"*.b.c.d.e.f.g\"]}\n"
    "  - {action: allow, to: [\"*.a-rather-long-label-to-overflow-the-slot.example.net\"]}\n"
    "  - {action: deny, to: [10.0.0.0/8, \"2001:db8::/32\"]}\n"
    "  - {action: allow, to: [x_y.example.org, \"*.org\"], protocol: udp}\n"
    "  - {action: allow, to: [\"*\"], ports: [8080]}\n";

static struct sn_policy *p;
static struct sn_snapshot *s;

static void same(struct sn_decision a, struct sn_decision b)
{
	if (a.verdict != b.verdict || a.rule != b.rule)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!s) {
		if (sn_policy_parse(policy, strlen(policy), SN_FORMAT_YAML, SN_DIALECT_NATIVE, &p,
		                    NULL) ||
		    !(s = sn_snapshot_compile(p)))
			abort();
	}
	char name[320];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, data, n);
	name[n] = 0;
	static const uint8_t a4[4] = {10, 1, 2, 3}, b4[4] = {192, 0, 2, 1};
	static const uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	struct sn_query q[6] = {
	    {SN_EGRESS, AF_INET, a4, 443, SN_PROTO_TCP, name},
	    {SN_EGRESS, AF_INET, b4, 443, SN_PROTO_TCP, name},
	    {SN_EGRESS, AF_INET, b4, 53, SN_PROTO_UDP, name},
	    {SN_EGRESS, AF_INET, b4, 8080, SN_PROTO_TCP, name},
	    {SN_EGRESS, AF_INET6, a6, 80, SN_PROTO_TCP, name},
	    {SN_EGRESS, AF_INET, b4, 443, SN_PROTO_TCP, NULL},
	};
	for (int i = 0; i < 6; i++)
		same(sn_decide(s, &q[i]), naive_decide(p, &q[i]));
	int r1, r2;
	if (sn_dns_allowed(s, name, &r1) != naive_dns_allowed(p, name, &r2) || r1 != r2)
		abort();
	uint32_t rules[8];
	int k = sn_snapshot_name_rules(s, name, rules, 8);
	if (k < -1 || k > 8)
		abort();
	return 0;
}

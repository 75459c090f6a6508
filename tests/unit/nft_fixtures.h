/* What the renderer's tests share: a policy with every kind of rule, a sandbox, and helpers
 * that fail the test on bad input. Include after cmocka.h. */
#ifndef SN_TESTS_NFT_FIXTURES_H
#define SN_TESTS_NFT_FIXTURES_H

#include <arpa/inet.h>
#include <string.h>

#include <sandnet/policy.h>
#include <sandnet/snapshot.h>

#include "render.h"

static const char *const mixed_policy =
    "egress:\n"
    "  mode: block-all\n"
    "  rules:\n"
    "    - {action: deny, to: [169.254.169.254, 10.0.0.0/8]}\n"
    "    - {action: allow, to: [140.82.112.0/20, github.com, \"*.githubusercontent.com\"],"
    " ports: [443, \"8000-8100\"], protocol: tcp, name: github}\n"
    "    - {action: allow, to: [\"2001:db8::/32\", \"2001:db8:1::1\", 1.1.1.1], ports: [53],"
    " protocol: udp}\n"
    "    - {action: deny, to: [evil.example]}\n"
    "    - {action: allow, protocol: icmp}\n"
    "    - {action: allow, ports: [22]}\n";

static inline struct sn_snapshot *compile(const char *doc)
{
	struct sn_policy *p;
	struct sn_errs errs;
	sn_errs_init(&errs);
	if (sn_policy_parse(doc, strlen(doc), 0, 0, &p, &errs))
		fail_msg("policy refused: %s: %s", errs.e[0].path, errs.e[0].msg);
	struct sn_snapshot *s = sn_snapshot_compile(p);
	sn_policy_free(p);
	assert_non_null(s);
	return s;
}

static inline struct sn_cidr cidr(const char *s)
{
	struct sn_cidr c;
	char msg[256];
	if (sn_cidr_parse(s, &c, msg, sizeof(msg)))
		fail_msg("%s", msg);
	return c;
}

/* A sandbox at 10.200.0.6 and fd00:5a::6, its host side at .5 and ::5. */
static inline struct sn_nft_sandbox sandbox(const char *id, const char *ifname, uint64_t rev)
{
	struct sn_nft_sandbox sb = {.id = id, .ifname = ifname, .rev = rev, .has6 = true};
	inet_pton(AF_INET, "10.200.0.6", sb.addr4);
	inet_pton(AF_INET6, "fd00:5a::6", sb.addr6);
	inet_pton(AF_INET, "10.200.0.5", sb.host4);
	inet_pton(AF_INET6, "fd00:5a::5", sb.host6);
	return sb;
}

#endif

/* Compiled policy snapshots: immutable, reference-counted, built once per revision and shared by
 * every thread that decides (kernel renderer, egress proxy, DNS forwarder, ingress proxy).
 * Core layer: pure. A snapshot is never changed after sn_snapshot_compile() returns, so any thread
 * may call the functions below on a snapshot it holds a reference to; _ref/_unref are atomic. */
#ifndef SANDNET_SNAPSHOT_H
#define SANDNET_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sandnet/policy.h>

struct sn_snapshot;

enum sn_verdict {
	SN_VERDICT_ALLOW = 0,
	SN_VERDICT_DENY,
	SN_VERDICT_NEED_NAME, /* the answer depends on the connection's name, which the query lacks */
};

struct sn_query {
	enum sn_dir dir;
	int family;            /* AF_INET or AF_INET6 */
	const uint8_t *addr;   /* egress: destination; ingress: client. 4 or 16 bytes, network order */
	uint16_t port;         /* destination port (egress) or sandbox port (ingress); 0 for ICMP */
	enum sn_proto proto;   /* TCP, UDP or ICMP */
	const char *name;      /* the connection's name (SNI, Host, learned), or NULL */
};

#define SN_RULE_NONE (-1)

struct sn_decision {
	enum sn_verdict verdict;
	int rule;           /* index of the deciding rule in that direction, or SN_RULE_NONE: the mode */
	const char *reason; /* static sentence, e.g. "matched rule", "no rule matched: block-all" */
};

/* Compiles a policy. Returns a new snapshot with one reference, or NULL when out of memory. The
 * snapshot keeps what it needs; p may be freed afterwards. */
struct sn_snapshot *sn_snapshot_compile(const struct sn_policy *p);
struct sn_snapshot *sn_snapshot_ref(struct sn_snapshot *s);
void sn_snapshot_unref(struct sn_snapshot *s);

/* Bytes of memory the snapshot uses (lookup structures and render lists). */
size_t sn_snapshot_memory(const struct sn_snapshot *s);

/* Decides one query; query->name is normalised (case, trailing dot) before matching. A name that
 * is not a valid domain name matches no name entry (not even "*"): the caller decides whether to
 * pass such a name at all. q->proto is TCP, UDP or ICMP; a rule with ports never matches ICMP. */
struct sn_decision sn_decide(const struct sn_snapshot *s, const struct sn_query *q);

/* DNS rules of DESIGN.md section 1: may this sandbox resolve name? *rule receives the deciding
 * rule's egress index or SN_RULE_NONE when the mode decided (rule may be NULL). A name that is not
 * a valid domain is refused. */
bool sn_dns_allowed(const struct sn_snapshot *s, const char *name, int *rule);

/* The egress allow rules with a name entry (exact, pattern or "*") that matches name, in rule
 * order, into out[0..max-1]: the rules whose learned-address sets an answer for name feeds.
 * Returns how many, or -1 when name is not a valid domain name. */
int sn_snapshot_name_rules(const struct sn_snapshot *s, const char *name, uint32_t *out,
			   size_t max);

/* What the kernel layer needs to render one rule. Arrays are sorted and free of duplicates; host
 * prefixes (/32, /128) are kept apart from shorter prefixes (hash sets vs interval sets). Pointers
 * stay valid while the caller holds a reference to the snapshot. */
struct sn_rule_render {
	enum sn_action action;
	enum sn_proto proto;
	bool any_dest;                      /* no to/from: any address */
	bool has_names;                     /* some entry is a name, pattern or "*" */
	const struct sn_cidr *hosts4, *nets4, *hosts6, *nets6;
	size_t nhosts4, nnets4, nhosts6, nnets6;
	const struct sn_port_range *ports;  /* merged, sorted; NULL = any port */
	size_t nports;
};
size_t sn_snapshot_nrules(const struct sn_snapshot *s, enum sn_dir dir);
enum sn_mode sn_snapshot_mode(const struct sn_snapshot *s, enum sn_dir dir);
const struct sn_rule_render *sn_snapshot_rule(const struct sn_snapshot *s, enum sn_dir dir,
					      size_t i);

/* The kernel's view of a run of rules without names: disjoint elements (address range, class,
 * port range) naming the first rule of [first, last) that matches them, so that the kernel can
 * decide the whole run with one lookup. What no element covers matches no rule of the run.
 * Classes: TCP and UDP carry a port range; ICMP (ICMP or ICMPv6 of the family) and OTHER (every
 * other protocol) none. Returns 0 with a new array (free()), -EINVAL when a rule of the run has
 * names, or -ENOMEM (also when a segment's ports are too fragmented to track). */
enum { SN_PART_TCP = 1, SN_PART_UDP, SN_PART_ICMP, SN_PART_OTHER };
struct sn_part_elem {
	uint8_t lo[16], hi[16]; /* inclusive; network order; IPv4 in the first 4 bytes */
	uint8_t cls;
	uint16_t plo, phi; /* inclusive, TCP and UDP */
	uint32_t rule;
};
int sn_snapshot_partition(const struct sn_snapshot *s, enum sn_dir dir, size_t first, size_t last,
			  int family, struct sn_part_elem **out, size_t *n);

const char *sn_verdict_name(enum sn_verdict v);

#endif

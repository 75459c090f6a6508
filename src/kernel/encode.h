/* What a sandbox's generation is made of, in the form both of its encoders take: nft text
 * (render.c, for libnftables, the golden files and the start-up reconciliation) and netlink
 * messages built with libnftnl (nlenc.c, for the daemon's creates and updates, which must not pay
 * for libnftables's cache of the whole table). render.c decides what the sets and rules are; the
 * encoders only spell them. Kernel layer, pure; sandnetd holds the netlink encoder's list. */
#ifndef SN_KERNEL_ENCODE_H
#define SN_KERNEL_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "render.h"

/* A set or a verdict map of a generation, with its elements. */
enum sn_set_type {
	SN_SET_ADDR,    /* hash of addresses: cidrs[0..n) with plen == only_len, or all when -1 */
	SN_SET_PREFIX,  /* interval set of the prefixes cidrs[0..n) (sorted, disjoint) */
	SN_SET_PORT,    /* interval set of inet_service: ports[0..n) (sorted, disjoint) */
	SN_SET_LEARNED, /* hash with element timeouts: learned[k] with .rule == rule, .family */
	SN_SET_MAP,     /* address . protocol [. port] : verdict, intervals: map[0..n) */
};

struct sn_map_elem {
	uint8_t lo[16], hi[16];  /* addresses, inclusive */
	uint8_t plo, phi;        /* protocol numbers */
	uint16_t portlo, porthi; /* with_ports only */
	bool accept;             /* else goto deny */
};

struct sn_setspec {
	enum sn_set_type type;
	const char *name;
	int family; /* AF_INET or AF_INET6 (addresses) */
	size_t n;
	const struct sn_cidr *cidrs;
	int only_len;
	const struct sn_port_range *ports;
	const struct sn_nft_learned *learned;
	uint32_t rule;
	const struct sn_map_elem *map;
	bool with_ports; /* map: keyed by address . protocol . port */
};

/* The number of elements of an SN_SET_ADDR set: its size, given to the kernel (which then picks
 * a hash of fixed size, and refuses more). */
static inline size_t sn_setspec_count(const struct sn_setspec *s)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		k += s->only_len < 0 || s->cidrs[i].plen == (unsigned)s->only_len;
	return k;
}

/* A rule: matches in order, then a verdict. Address matches bring their family's dependency
 * ("meta nfproto") with them, as nft adds it in an inet table. */
enum sn_match_kind {
	SN_M_NFPROTO,      /* meta nfproto ipv4|ipv6 */
	SN_M_SADDR_NE,     /* ip[6] saddr != addr */
	SN_M_SADDR_NOT_IN, /* ip[6] saddr != addr/len */
	SN_M_DADDR_EQ,     /* ip[6] daddr addr */
	SN_M_DADDR_SET,    /* ip[6] daddr [& mask of len] @set */
	SN_M_L4PROTO,      /* meta l4proto num */
	SN_M_L4PROTO_SET,  /* meta l4proto @set (a global set) */
	SN_M_DPORT,        /* th dport num */
	SN_M_DPORT_SET,    /* th dport @set */
	SN_M_ND,           /* icmpv6 type nd-neighbor-solicit..nd-neighbor-advert */
	SN_M_CT_REPLY,     /* ct direction reply */
	SN_M_CT_DNAT,      /* ct status dnat */
	SN_M_CT_NEW,       /* ct state new */
	SN_M_MARK_SET,     /* meta mark set num (a statement) */
	SN_M_VMAP,         /* ip[6] daddr . meta l4proto [. th dport] vmap @set */
};

struct sn_match {
	enum sn_match_kind kind;
	int family;
	const uint8_t *addr;
	int len; /* prefix or mask length; -1: none */
	uint32_t num;
	const char *set;
	bool with_ports; /* SN_M_VMAP */
};

enum sn_verdict_kind { SN_V_NONE, SN_V_ACCEPT, SN_V_DROP, SN_V_DENY /* goto deny */ };

/* The global sets of protocol numbers rules refer to (created with the table). */
#define SN_SET_TCP_UDP "l4-tcp-udp"
#define SN_SET_ICMP    "l4-icmp"

/* The netlink encoder: libnftnl objects, in order, for elems.c to send; a set's elements in
 * messages of at most SN_NL_ELEMS_PER_MSG: they sit in one attribute, whose length has 16 bits,
 * and a map's element takes up to 100 bytes. */
#define SN_NL_ELEMS_PER_MSG 512
enum sn_nl_kind { SN_NL_SET, SN_NL_ELEMS, SN_NL_CHAIN, SN_NL_RULE };
struct sn_nl_obj {
	enum sn_nl_kind kind;
	void *obj; /* struct nftnl_set (SET, ELEMS), nftnl_chain, nftnl_rule */
};
struct sn_nl_list {
	struct sn_nl_obj *v;
	size_t n, cap;
	uint32_t next_id;
	bool failed;
};
void sn_nl_list_clear(struct sn_nl_list *l);

void sn_nl_set(struct sn_nl_list *l, const struct sn_setspec *s);
void sn_nl_chain(struct sn_nl_list *l, const char *chain);
void sn_nl_rule(struct sn_nl_list *l, const char *chain, const struct sn_match *m, size_t n,
                enum sn_verdict_kind v);

#endif

/* Rendering of sandnet's nftables state as nft(8) text for libnftables: the table skeleton, and
 * per sandbox one chain and its named sets built from a compiled snapshot. Kernel layer, pure: no
 * syscalls; the same input always gives the same text (tests/golden/nft/ holds examples).
 *
 * Layout (docs/KERNEL.md):
 *   table inet sandnet
 *     map dispatch      ifname : verdict        host-side interface -> jump sb-<id>-<rev>
 *     set guard4/6      ranges no sandbox may reach (loopback, link-local, the pools, the host)
 *     chain prerouting  filter, priority -150: iifname vmap @dispatch
 *     chain deny        reject: TCP reset, else ICMP administratively prohibited
 *     chain nat_pre     nat prerouting: marked DNS -> dns port, marked TCP -> proxy port
 *     chain input       sandboxes reach the host only through those redirects
 *     chain nat_post    masquerade what leaves a sandbox for anywhere but another sandbox
 *     chain sb-<id>-<rev>  the sandbox's policy, in rule order, and its sets s<id>-<rev>-r<k>-*
 */
#ifndef SN_KERNEL_RENDER_H
#define SN_KERNEL_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sandnet/snapshot.h>

#define SN_NFT_TABLE "sandnet"
#define SN_MARK_DNS 0x5d01u
#define SN_MARK_PROXY 0x5d02u
#define SN_MARK_FLOWS 0x5d03u /* a new connection past the sandbox's flow limit, to the deny chain */
#define SN_NFLOG_SNAPLEN 96 /* bytes of a rejected packet logged: its headers */
#define SN_NFLOG_RATE 200   /* rejects logged per second at most (all sandboxes) */
#define SN_NFLOG_SANDBOX_RATE 20 /* and per sandbox */
#define SN_SET_DENYLOG "denylog" /* the per-sandbox meter of logged rejects */
#define SN_SET_DNSRATE "dnsrate" /* the per-sandbox meter of DNS queries */
#define SN_SET_FLOWS "flows"     /* the per-sandbox count of tracked connections */
/* Elements a learned-address set holds at most: the DNS answers of one sandbox's names cannot
 * grow the kernel's memory without bound (past it, new addresses are not learned until others
 * time out; TCP to them still reaches the proxy, which decides by the name). */
#define SN_LEARNED_SET_MAX 4096

/* A growable text buffer; on allocation failure it stays failed and rendering returns -ENOMEM. */
struct sn_text {
	char *s;
	size_t len, cap;
	bool failed;
};
void sn_text_clear(struct sn_text *t);
void sn_text_printf(struct sn_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct sn_nft_config {
	uint16_t dns_port, proxy_port;
	const struct sn_cidr *guard; /* pools, host addresses, operator ranges; loopback and
				      * link-local are always added */
	size_t nguard;
	const struct sn_cidr *pools; /* sandbox address pools: masqueraded when leaving */
	size_t npools;
	bool proxy_enabled; /* false: TCP that needs a name is rejected (fail closed) */
	uint16_t nflog_group; /* 0: rejects are not logged; else to this NFLOG group */
	uint32_t dns_rate;    /* 0: no limit; else a sandbox's UDP DNS packets a second (as many
			       * in a burst) past which they are dropped */
	uint32_t max_flows;   /* 0: no limit; else the connections the kernel tracks for one
			       * sandbox at once, past which new ones are rejected */
};

/* A rule's prefixes, from SN_SPLIT_MIN on, are kept in one hash set per prefix length (a lookup
 * of the masked address each; BASELINES.md: interval sets get slow to fill at tens of
 * thousands). */
#define SN_SPLIT_MIN 256

/* An address the DNS forwarder learned for a rule's names, carried into a new generation. */
struct sn_nft_learned {
	uint32_t rule; /* egress rule index in the snapshot being rendered */
	int family;
	uint8_t addr[16];
	uint32_t timeout_s; /* what is left of its TTL */
};

struct sn_nft_sandbox {
	const char *id;     /* sandbox id: [a-z0-9-], at most 32 bytes */
	const char *ifname; /* host-side interface */
	uint8_t addr4[4], host4[4]; /* the sandbox's address and the host side's */
	bool has6;
	uint8_t addr6[16], host6[16];
	uint64_t rev; /* revision: names the chain and sets, so an update builds beside the old */
	bool paused;  /* drop all: in the table's paused set (and the chain is a drop) */
	bool was_paused; /* an update: the generation it replaces was paused */
	const struct sn_nft_learned *learned; /* sorted by rule; rules without learned sets skip */
	size_t nlearned;
};

/* The name of rule's learned-address set of family in sandbox id's generation gen. */
void sn_nft_learned_set(char *buf, size_t size, const char *id, uint64_t gen, size_t rule,
			int family);

/* Is addr in a range no sandbox may reach: the guard sets' contents (cfg's ranges and the fixed
 * ones the table always holds)? What the DNS forwarder removes from answers, and how a kernel
 * reject is explained. */
bool sn_nft_guarded(const struct sn_nft_config *cfg, int family, const uint8_t *addr);

/* The table with its global objects, created or replaced (sandbox chains are not touched: the
 * dispatch map and the guard sets are flushed and refilled, in one transaction). */
int sn_nft_render_table(struct sn_text *out, const struct sn_nft_config *cfg);

/* One sandbox's generation sb->rev of snapshot s: its sets and its chain, referenced by nothing
 * yet. */
int sn_nft_render_generation(struct sn_text *out, const struct sn_nft_config *cfg,
			     const struct sn_nft_sandbox *sb, const struct sn_snapshot *s);

/* The same generation as libnftnl objects for netlink (encode.h: struct sn_nl_list), the way
 * sandnetd loads it: nft text makes libnftables read every chain and set of the table into its
 * cache first, which costs milliseconds per thousand sets (docs/KERNEL.md). */
struct sn_nl_list;
int sn_nft_build_generation(struct sn_nl_list *out, const struct sn_nft_config *cfg,
			    const struct sn_nft_sandbox *sb, const struct sn_snapshot *s);

/* The same in one text: the generation, the dispatch element pointing at it, and, when old is
 * not NULL, the removal of the chain and sets that old (the snapshot in force, at revision
 * old_rev) was rendered to. One transaction: packets see the old policy or the new. */
int sn_nft_render_sandbox(struct sn_text *out, const struct sn_nft_config *cfg,
			  const struct sn_nft_sandbox *sb, const struct sn_snapshot *s,
			  const struct sn_snapshot *old, uint64_t old_rev);

/* Calls fn for every object of sb's generation rev rendered from s: the chain, then its sets and
 * maps. 0 or -ENOMEM. */
enum sn_nft_obj { SN_NFT_CHAIN, SN_NFT_SET, SN_NFT_MAP };
int sn_nft_generation_objects(const struct sn_nft_sandbox *sb, const struct sn_snapshot *s,
			      uint64_t rev,
			      void (*fn)(enum sn_nft_obj kind, const char *name, void *arg),
			      void *arg);

/* The removal of a sandbox's dispatch element, chain and sets (s: the snapshot in force). */
int sn_nft_render_delete(struct sn_text *out, const struct sn_nft_sandbox *sb,
			 const struct sn_snapshot *s);

#endif

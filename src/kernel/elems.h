/* Set elements over netlink (libnftnl + libmnl), without libnftables: the DNS forwarder's learned
 * addresses go into the kernel in one batch per answer, with no text to parse and no ruleset to
 * list first. Kernel layer. One struct sn_elems per thread. */
#ifndef SN_KERNEL_ELEMS_H
#define SN_KERNEL_ELEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sn_elems;

struct sn_elem {
	const char *set; /* a set of table inet SN_NFT_TABLE */
	int family;      /* AF_INET (4-byte key) or AF_INET6 (16 bytes) */
	uint8_t addr[16];
	uint64_t timeout_ms; /* 0: the set's default */
};

/* Returns 0 or -errno. */
int sn_elems_open(struct sn_elems **out);
void sn_elems_close(struct sn_elems *e);

/* Adds n elements in one transaction: all are in the kernel when it returns 0; on an error none
 * is (-ENOENT: a set does not exist, e.g. replaced by a newer generation meanwhile). An element
 * already present gets the new timeout. */
int sn_elems_add(struct sn_elems *e, const struct sn_elem *v, size_t n);

/* Loads a generation built by sn_nft_build_generation (its sets with their elements, its chain
 * and rules), then points the dispatch map's element for sb's interface at chain (replacing the
 * one there when replace; no switch when sb is NULL), with sb's elements of the table's sets
 * (its addresses in owner4/6 while it runs, its interface in paused while paused) as a new
 * sandbox gets them or as sb->paused differs from sb->was_paused. As few transactions as the batch size allows, the
 * switch in the last: packets see the old generation or the new. On an error what was loaded is
 * removed again. 0 or -errno. */
struct sn_nl_list;
struct sn_nft_sandbox;
int sn_elems_load(struct sn_elems *e, const struct sn_nl_list *l, const struct sn_nft_sandbox *sb,
		  const char *chain, bool replace);
/* Tests: with on, sn_elems_load puts every object in a transaction of its own, so that a failing
 * switch finds most of a generation committed and must take it out again. */
void sn_elems_split(struct sn_elems *e, bool on);
/* Takes sb's dispatch element and its elements of the table's sets out, in one transaction. */
int sn_elems_remove(struct sn_elems *e, const struct sn_nft_sandbox *sb);
/* Removes generation sb->rev of sandbox sb, rendered from s (its chain, then its sets and
 * maps), in one transaction. */
struct sn_snapshot;
int sn_elems_delete_generation(struct sn_elems *e, const struct sn_nft_sandbox *sb,
			       const struct sn_snapshot *s);
#endif

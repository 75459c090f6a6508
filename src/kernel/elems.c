/* Set elements over netlink: see elems.h. Kernel layer. */
#include "elems.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "encode.h"
#include "render.h"

/* Batches are built in one buffer of BIG_BATCH bytes; libmnl wants twice the batch's limit, for
 * the message that goes over it. Whole sets take a few batches of BATCH_LIMIT. */
#define BIG_BATCH (4u << 20)
#define BATCH_LIMIT (BIG_BATCH / 2)
#define ELEMS_PER_MSG 1024 /* learned: 40 bytes each in one attribute of at most 64 KiB */
#define MSG_ROOM (128u << 10) /* a message's size at most (an attribute holds 64 KiB) */

struct sn_elems {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char *big;             /* BIG_BATCH bytes, at the first batch */
	bool split;            /* every object in a transaction of its own (tests) */
	_Alignas(struct nlmsghdr) char buf[1 << 16]; /* answers */
};

int sn_elems_open(struct sn_elems **out)
{
	struct sn_elems *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!e->nl || mnl_socket_bind(e->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int rc = -errno;
		if (e->nl)
			mnl_socket_close(e->nl);
		free(e);
		return rc;
	}
	/* errors without a copy of the failed request: a batch's errors fit the receive buffer */
	int one = 1;
	setsockopt(mnl_socket_get_fd(e->nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	/* a lost answer must not hang the caller */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(mnl_socket_get_fd(e->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	e->portid = mnl_socket_get_portid(e->nl);
	e->seq = (uint32_t)time(NULL);
	*out = e;
	return 0;
}

void sn_elems_close(struct sn_elems *e)
{
	if (!e)
		return;
	mnl_socket_close(e->nl);
	free(e->big);
	free(e);
}

/* A transaction being built: begin ... messages ... end. Only the last message asks for an ack:
 * the kernel handles a batch within the send, answers every message that failed, and then
 * acknowledges the last one even when the batch was aborted (an ack per message would overflow
 * the socket's receive buffer with a few thousand rules). */
struct batch {
	struct mnl_nlmsg_batch *b;
	uint32_t first; /* the first message's sequence number */
	struct nlmsghdr *last;
};

static int begin(struct sn_elems *e, struct batch *t)
{
	if (!e->big) {
		if (!(e->big = malloc(BIG_BATCH)))
			return -ENOMEM;
		int sz = (int)(2 * BIG_BATCH);
		setsockopt(mnl_socket_get_fd(e->nl), SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	}
	t->b = mnl_nlmsg_batch_start(e->big, BATCH_LIMIT);
	if (!t->b)
		return -ENOMEM;
	nftnl_batch_begin(mnl_nlmsg_batch_current(t->b), e->seq++);
	mnl_nlmsg_batch_next(t->b);
	t->first = e->seq;
	t->last = NULL;
	return 0;
}

/* The header of the batch's next message. */
static struct nlmsghdr *msg(struct sn_elems *e, struct batch *t, uint16_t type, uint16_t flags)
{
	t->last = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(t->b), type, NFPROTO_INET, flags,
					e->seq++);
	return t->last;
}

/* Sends the batch and reads the answers up to the last message's ack; the first error found is
 * the batch's. */
static int send_and_wait(struct sn_elems *e, struct mnl_nlmsg_batch *b, uint32_t first,
			 uint32_t last)
{
	if (mnl_socket_sendto(e->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
		return -errno;
	int err = 0;
	for (;;) {
		ssize_t r = mnl_socket_recvfrom(e->nl, e->buf, sizeof(e->buf));
		if (r < 0)
			return -errno;
		int len = (int)r;
		for (struct nlmsghdr *h = (struct nlmsghdr *)e->buf; mnl_nlmsg_ok(h, len);
		     h = mnl_nlmsg_next(h, &len)) {
			if (h->nlmsg_seq < first || h->nlmsg_seq > last ||
			    h->nlmsg_type != NLMSG_ERROR)
				continue; /* not an answer to this batch (an earlier one timed out) */
			const struct nlmsgerr *ne = mnl_nlmsg_get_payload(h);
			if (ne->error && !err)
				err = ne->error;
			if (h->nlmsg_seq == last)
				return err;
		}
	}
}

/* Ends, sends and waits; rc: what went wrong while building (then nothing is sent). */
static int commit(struct sn_elems *e, struct batch *t, int rc)
{
	if (!rc && t->last) {
		t->last->nlmsg_flags |= NLM_F_ACK;
		uint32_t last = t->last->nlmsg_seq;
		nftnl_batch_end(mnl_nlmsg_batch_current(t->b), e->seq++);
		mnl_nlmsg_batch_next(t->b);
		rc = send_and_wait(e, t->b, t->first, last);
	}
	mnl_nlmsg_batch_stop(t->b);
	return rc;
}

/* A set of sandnet's table, by name, to build a message about. */
static struct nftnl_set *named_set(const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	if (s) {
		nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	}
	return s;
}

/* Adds a message about set s (its elements when elems) to the batch, and frees s. */
static int put(struct sn_elems *e, struct batch *t, uint16_t type, uint16_t flags,
	       struct nftnl_set *s, bool elems)
{
	struct nlmsghdr *nlh = msg(e, t, type, flags);
	if (elems)
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
	else
		nftnl_set_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return mnl_nlmsg_batch_next(t->b) ? 0 : -E2BIG;
}

static size_t room(const struct batch *t)
{
	size_t used = mnl_nlmsg_batch_size(t->b);
	return used < BATCH_LIMIT ? BATCH_LIMIT - used : 0;
}

static int add_key(struct nftnl_set *s, const uint8_t *key, uint32_t len, uint64_t timeout_ms)
{
	struct nftnl_set_elem *el = nftnl_set_elem_alloc();
	if (!el)
		return -ENOMEM;
	nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, len);
	if (timeout_ms)
		nftnl_set_elem_set_u64(el, NFTNL_SET_ELEM_TIMEOUT, timeout_ms);
	nftnl_set_elem_add(s, el);
	return 0;
}

int sn_elems_add(struct sn_elems *e, const struct sn_elem *v, size_t n)
{
	if (!n)
		return 0;
	struct batch t;
	int rc = begin(e, &t);
	if (rc)
		return rc;
	/* one message per run of one set's elements (at most ELEMS_PER_MSG): one transaction */
	for (size_t i = 0; i < n && !rc;) {
		struct nftnl_set *s = named_set(v[i].set);
		if (!s || room(&t) < MSG_ROOM) {
			nftnl_set_free(s);
			rc = s ? -E2BIG : -ENOMEM;
			break;
		}
		size_t j = i;
		for (; j < n && j - i < ELEMS_PER_MSG && strcmp(v[j].set, v[i].set) == 0 && !rc; j++)
			rc = add_key(s, v[j].addr, v[j].family == AF_INET ? 4 : 16, v[j].timeout_ms);
		if (rc) {
			nftnl_set_free(s);
			break;
		}
		rc = put(e, &t, NFT_MSG_NEWSETELEM, NLM_F_CREATE, s, true);
		i = j;
	}
	return commit(e, &t, rc);
}

/* Makes room in t for one more message: commits what t holds and begins anew when it is full.
 * Only for objects nothing references yet: they may take several transactions. *committed
 * counts the objects in transactions that went through. */
static int make_room(struct sn_elems *e, struct batch *t, size_t pending, size_t *committed)
{
	if (room(t) >= MSG_ROOM && !(e->split && t->last))
		return 0;
	int rc = commit(e, t, 0);
	if (rc) {
		t->b = NULL;
		return rc;
	}
	*committed = pending;
	return begin(e, t);
}

/* A message about one of a generation's objects. */
static int put_obj(struct sn_elems *e, struct batch *t, const struct sn_nl_obj *o)
{
	static const uint16_t type[] = {NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM, NFT_MSG_NEWCHAIN,
					NFT_MSG_NEWRULE};
	static const uint16_t flags[] = {NLM_F_CREATE | NLM_F_EXCL, NLM_F_CREATE,
					 NLM_F_CREATE | NLM_F_EXCL, NLM_F_CREATE | NLM_F_APPEND};
	struct nlmsghdr *nlh = msg(e, t, type[o->kind], flags[o->kind]);
	switch (o->kind) {
	case SN_NL_SET: nftnl_set_nlmsg_build_payload(nlh, o->obj); break;
	case SN_NL_ELEMS: nftnl_set_elems_nlmsg_build_payload(nlh, o->obj); break;
	case SN_NL_CHAIN: nftnl_chain_nlmsg_build_payload(nlh, o->obj); break;
	case SN_NL_RULE: nftnl_rule_nlmsg_build_payload(nlh, o->obj); break;
	}
	return mnl_nlmsg_batch_next(t->b) ? 0 : -E2BIG;
}

/* A message adding (or deleting) one element of key k to set name; with jump, a verdict map's
 * element that jumps to that chain. */
static int put_key(struct sn_elems *e, struct batch *t, const char *set, bool add, const void *k,
		   uint32_t len, const char *jump)
{
	struct nftnl_set *s = named_set(set);
	struct nftnl_set_elem *el = s ? nftnl_set_elem_alloc() : NULL;
	if (!el) {
		nftnl_set_free(s);
		return -ENOMEM;
	}
	nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, k, len);
	if (jump) {
		nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
		nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, jump);
	}
	nftnl_set_elem_add(s, el);
	return put(e, t, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? NLM_F_CREATE : 0, s,
		   true);
}

/* The sandbox's elements: in dispatch (jumping to chain, when add and dispatch), in the owner
 * sets (owners) and in paused (paused). nft's keys: an ifname is IFNAMSIZ bytes, zero-padded;
 * an address follows it. */
static int put_members(struct sn_elems *e, struct batch *t, const struct sn_nft_sandbox *sb,
		       bool add, bool dispatch, const char *chain, bool owners, bool paused)
{
	uint8_t k[32] = {0};
	size_t n = strlen(sb->ifname);
	if (n >= 16)
		return -EINVAL;
	memcpy(k, sb->ifname, n);
	int rc = dispatch ? put_key(e, t, "dispatch", add, k, 16, add ? chain : NULL) : 0;
	if (!rc && owners) {
		memcpy(k + 16, sb->addr4, 4);
		rc = put_key(e, t, "owner4", add, k, 20, NULL);
		if (!rc && sb->has6) {
			memcpy(k + 16, sb->addr6, 16);
			rc = put_key(e, t, "owner6", add, k, 32, NULL);
		}
	}
	if (!rc && paused) {
		memset(k + 16, 0, 16);
		rc = put_key(e, t, "paused", add, k, 16, NULL);
	}
	return rc;
}

/* sb's dispatch element out (replace) and one pointing at chain in, with its set elements as its
 * state changes: its addresses in the owner sets while it runs, its interface in paused while
 * paused. */
static int put_switch(struct sn_elems *e, struct batch *t, const struct sn_nft_sandbox *sb,
		      const char *chain, bool replace)
{
	bool was = replace && sb->was_paused, change = !replace || was != sb->paused;
	int rc = replace ? put_members(e, t, sb, false, true, NULL, change && !was, change && was)
			 : 0;
	if (!rc)
		rc = put_members(e, t, sb, true, true, chain, change && !sb->paused,
				 change && sb->paused);
	return rc;
}

/* The removal of objects in one transaction: a chain (with its rules) before the sets and maps
 * its rules refer to. */
struct del {
	struct sn_elems *e;
	struct batch t;
	int rc;
};

static void del_obj(enum sn_nft_obj kind, const char *name, void *arg)
{
	struct del *x = arg;
	if (x->rc)
		return;
	if (kind != SN_NFT_CHAIN) {
		struct nftnl_set *s = named_set(name);
		x->rc = s ? put(x->e, &x->t, NFT_MSG_DELSET, 0, s, false) : -ENOMEM;
		return;
	}
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c) {
		x->rc = -ENOMEM;
		return;
	}
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, SN_NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_nlmsg_build_payload(msg(x->e, &x->t, NFT_MSG_DELCHAIN, 0), c);
	nftnl_chain_free(c);
	if (!mnl_nlmsg_batch_next(x->t.b))
		x->rc = -E2BIG;
}

/* Removes the chain and the sets among l's first n objects (all in the kernel). */
static void unload(struct sn_elems *e, const struct sn_nl_list *l, size_t n)
{
	struct del x = {.e = e};
	if (begin(e, &x.t))
		return; /* left for the next start's reconciliation */
	for (size_t i = 0; i < n; i++)
		if (l->v[i].kind == SN_NL_CHAIN)
			del_obj(SN_NFT_CHAIN, nftnl_chain_get_str(l->v[i].obj, NFTNL_CHAIN_NAME), &x);
	for (size_t i = 0; i < n; i++)
		if (l->v[i].kind == SN_NL_SET)
			del_obj(SN_NFT_SET, nftnl_set_get_str(l->v[i].obj, NFTNL_SET_NAME), &x);
	commit(e, &x.t, x.rc);
}

int sn_elems_delete_generation(struct sn_elems *e, const struct sn_nft_sandbox *sb,
			       const struct sn_snapshot *s)
{
	struct del x = {.e = e};
	int rc = begin(e, &x.t);
	if (rc)
		return rc;
	rc = sn_nft_generation_objects(sb, s, sb->rev, del_obj, &x);
	return commit(e, &x.t, rc ? rc : x.rc);
}

void sn_elems_split(struct sn_elems *e, bool on)
{
	e->split = on;
}

int sn_elems_load(struct sn_elems *e, const struct sn_nl_list *l, const struct sn_nft_sandbox *sb,
		  const char *chain, bool replace)
{
	if (l->failed)
		return -ENOMEM;
	struct batch t = {0};
	size_t committed = 0;
	int rc = begin(e, &t);
	for (size_t i = 0; i < l->n && !rc; i++)
		if (!(rc = make_room(e, &t, i, &committed)))
			rc = put_obj(e, &t, &l->v[i]);
	if (!rc && sb && !(rc = make_room(e, &t, l->n, &committed)))
		rc = put_switch(e, &t, sb, chain, replace);
	if (t.b) {
		rc = commit(e, &t, rc);
		if (!rc)
			committed = l->n;
	}
	if (rc && committed)
		unload(e, l, committed);
	return rc;
}

int sn_elems_remove(struct sn_elems *e, const struct sn_nft_sandbox *sb)
{
	struct batch t;
	int rc = begin(e, &t);
	if (rc)
		return rc;
	return commit(e, &t, put_members(e, &t, sb, false, true, NULL, !sb->paused, sb->paused));
}

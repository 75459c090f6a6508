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
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "render.h"

/* Batches are built in one buffer of BIG_BATCH bytes; libmnl wants twice the batch's limit, for
 * the message that goes over it. Whole sets take a few batches of BATCH_LIMIT. */
#define BIG_BATCH (4u << 20)
#define BATCH_LIMIT (BIG_BATCH / 2)
#define ELEMS_PER_MSG 2048
#define MSG_ROOM (ELEMS_PER_MSG * 64 + 4096) /* a message's size at most */

struct sn_elems {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char *big;             /* BIG_BATCH bytes, at the first batch */
	char buf[1 << 16];     /* answers */
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

/* A transaction being built: begin ... messages ... end, then one answer per message. */
struct batch {
	struct mnl_nlmsg_batch *b;
	uint32_t first; /* the first message's sequence number */
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
	return 0;
}

/* Sends the batch and waits for one answer per message: an ack, or the error that aborted the
 * transaction (then no further answers come). */
static int send_and_wait(struct sn_elems *e, struct mnl_nlmsg_batch *b, uint32_t first,
			 uint32_t expect)
{
	if (mnl_socket_sendto(e->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
		return -errno;
	for (uint32_t got = 0; got < expect;) {
		ssize_t r = mnl_socket_recvfrom(e->nl, e->buf, sizeof(e->buf));
		if (r < 0)
			return -errno;
		int len = (int)r;
		for (struct nlmsghdr *h = (struct nlmsghdr *)e->buf; mnl_nlmsg_ok(h, len);
		     h = mnl_nlmsg_next(h, &len)) {
			if (h->nlmsg_seq < first || h->nlmsg_seq >= first + expect ||
			    h->nlmsg_type != NLMSG_ERROR)
				continue; /* not an answer to this batch (an earlier one timed out) */
			const struct nlmsgerr *ne = mnl_nlmsg_get_payload(h);
			if (ne->error)
				return ne->error;
			got++;
		}
	}
	return 0;
}

/* Ends, sends and waits; rc: what went wrong while building (then nothing is sent). */
static int commit(struct sn_elems *e, struct batch *t, int rc)
{
	uint32_t expect = e->seq - t->first;
	if (!rc && expect) {
		nftnl_batch_end(mnl_nlmsg_batch_current(t->b), e->seq++);
		mnl_nlmsg_batch_next(t->b);
		rc = send_and_wait(e, t->b, t->first, expect);
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
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(t->b), type,
						     NFPROTO_INET, flags | NLM_F_ACK, e->seq++);
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
 * Only for objects nothing references yet: they may take several transactions. */
static int make_room(struct sn_elems *e, struct batch *t)
{
	if (room(t) >= MSG_ROOM)
		return 0;
	int rc = commit(e, t, 0);
	if (!rc)
		rc = begin(e, t);
	else
		t->b = NULL;
	return rc;
}

int sn_elems_create_sets(struct sn_elems *e, const struct sn_nft_bulk *v, size_t n)
{
	struct batch t = {0};
	int rc = begin(e, &t);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct sn_nft_bulk *bs = &v[i];
		uint32_t klen = bs->family == AF_INET6 ? 16 : 4;
		struct nftnl_set *s = (rc = make_room(e, &t)) ? NULL : named_set(bs->name);
		if (!s) {
			rc = rc ? rc : -ENOMEM;
			break;
		}
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		/* nft's datatypes ipv4_addr 7, ipv6_addr 8: what nft reads back for the rules */
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, klen == 16 ? 8 : 7);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, klen);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
		nftnl_set_set_u32(s, NFTNL_SET_ID, (uint32_t)i + 1);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, (uint32_t)(bs->n ? bs->n : 1));
		rc = put(e, &t, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, s, false);
		for (size_t j = 0; j < bs->n && !rc;) {
			struct nftnl_set *es = (rc = make_room(e, &t)) ? NULL : named_set(bs->name);
			if (!es) {
				rc = rc ? rc : -ENOMEM;
				break;
			}
			size_t end = j + ELEMS_PER_MSG < bs->n ? j + ELEMS_PER_MSG : bs->n;
			for (; j < end && !rc; j++)
				rc = add_key(es, bs->elems[j].addr, klen, 0);
			if (rc)
				nftnl_set_free(es);
			else
				rc = put(e, &t, NFT_MSG_NEWSETELEM, NLM_F_CREATE, es, true);
		}
	}
	if (t.b)
		rc = commit(e, &t, rc);
	if (rc)
		sn_elems_delete_sets(e, v, n);
	return rc;
}

int sn_elems_delete_sets(struct sn_elems *e, const struct sn_nft_bulk *v, size_t n)
{
	/* one transaction per set: a set that was never made does not stop the others' removal */
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct batch t;
		int r = begin(e, &t);
		if (r)
			return r;
		struct nftnl_set *s = named_set(v[i].name);
		r = commit(e, &t, s ? put(e, &t, NFT_MSG_DELSET, 0, s, false) : -ENOMEM);
		if (r && r != -ENOENT && !rc)
			rc = r;
	}
	return rc;
}

int sn_elems_delete_objects(struct sn_elems *e, const char *chain, char *const *sets, size_t n)
{
	struct batch t;
	int rc = begin(e, &t);
	if (rc)
		return rc;
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c)
		return commit(e, &t, -ENOMEM);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, SN_NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(t.b), NFT_MSG_DELCHAIN,
						     NFPROTO_INET, NLM_F_ACK, e->seq++);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	mnl_nlmsg_batch_next(t.b);
	for (size_t i = 0; i < n && !rc; i++) {
		struct nftnl_set *s = named_set(sets[i]);
		rc = s ? put(e, &t, NFT_MSG_DELSET, 0, s, false) : -ENOMEM;
	}
	return commit(e, &t, rc);
}

int sn_elems_switch(struct sn_elems *e, const char *ifname, const char *chain)
{
	uint8_t key[16] = {0}; /* nft's ifname: IFNAMSIZ bytes, zero-padded */
	size_t n = strlen(ifname);
	if (n >= sizeof(key))
		return -EINVAL;
	memcpy(key, ifname, n);
	struct batch t;
	int rc = begin(e, &t);
	if (rc)
		return rc;
	/* the old element out and the new one in, in one transaction */
	struct nftnl_set *del = named_set("dispatch"), *add = named_set("dispatch");
	struct nftnl_set_elem *el = nftnl_set_elem_alloc();
	if (!del || !add || !el || add_key(del, key, sizeof(key), 0)) {
		nftnl_set_free(del);
		nftnl_set_free(add);
		nftnl_set_elem_free(el);
		return commit(e, &t, -ENOMEM);
	}
	nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, sizeof(key));
	nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
	nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, chain);
	nftnl_set_elem_add(add, el);
	rc = put(e, &t, NFT_MSG_DELSETELEM, 0, del, true);
	if (!rc)
		rc = put(e, &t, NFT_MSG_NEWSETELEM, NLM_F_CREATE, add, true);
	else
		nftnl_set_free(add);
	return commit(e, &t, rc);
}

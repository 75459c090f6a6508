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

struct sn_elems {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char *big; /* BIG_BATCH bytes, for whole sets */
	char buf[1 << 16];
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

/* One NEWSETELEM message for v[0..n) (all of one set). */
static int put_set(struct sn_elems *e, struct mnl_nlmsg_batch *b, const struct sn_elem *v,
		   size_t n)
{
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, v[0].set);
	for (size_t i = 0; i < n; i++) {
		struct nftnl_set_elem *el = nftnl_set_elem_alloc();
		if (!el) {
			nftnl_set_free(s);
			return -ENOMEM;
		}
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, v[i].addr,
				   v[i].family == AF_INET ? 4 : 16);
		if (v[i].timeout_ms)
			nftnl_set_elem_set_u64(el, NFTNL_SET_ELEM_TIMEOUT, v[i].timeout_ms);
		nftnl_set_elem_add(s, el);
	}
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWSETELEM,
						     NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK,
						     e->seq++);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return mnl_nlmsg_batch_next(b) ? 0 : -E2BIG;
}

/* Sends a batch and waits for one answer per message (seq first .. first + expect - 1): an ack,
 * or the error that aborted the batch. */
static int send_and_wait(struct sn_elems *e, struct mnl_nlmsg_batch *b, uint32_t first,
			 uint32_t expect)
{
	if (mnl_socket_sendto(e->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
		return -errno;
	int err = 0;
	for (uint32_t got = 0; got < expect;) {
		ssize_t r = mnl_socket_recvfrom(e->nl, e->buf, sizeof(e->buf));
		if (r < 0)
			return -errno;
		int len = (int)r;
		for (struct nlmsghdr *h = (struct nlmsghdr *)e->buf; mnl_nlmsg_ok(h, len);
		     h = mnl_nlmsg_next(h, &len)) {
			if (h->nlmsg_seq < first || h->nlmsg_seq >= first + expect)
				continue; /* an answer to an earlier call that timed out */
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			const struct nlmsgerr *ne = mnl_nlmsg_get_payload(h);
			if (ne->error && !err)
				err = ne->error;
			got++;
			if (err)
				return err; /* the batch was aborted: no further acks come */
		}
	}
	return err;
}

int sn_elems_add(struct sn_elems *e, const struct sn_elem *v, size_t n)
{
	if (!n)
		return 0;
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(e->buf, sizeof(e->buf));
	if (!b)
		return -ENOMEM;
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), e->seq++);
	mnl_nlmsg_batch_next(b);
	uint32_t first = e->seq;
	int rc = 0;
	for (size_t i = 0; i < n && !rc;) {
		size_t j = i + 1;
		while (j < n && strcmp(v[j].set, v[i].set) == 0 && j - i < 256)
			j++;
		rc = put_set(e, b, v + i, j - i);
		i = j;
	}
	uint32_t expect = e->seq - first;
	nftnl_batch_end(mnl_nlmsg_batch_current(b), e->seq++);
	mnl_nlmsg_batch_next(b);
	if (!rc)
		rc = send_and_wait(e, b, first, expect);
	mnl_nlmsg_batch_stop(b);
	return rc;
}


/* A batch buffer for set contents: large, so that 100,000 elements take a few round trips. */
#define BIG_BATCH (4u << 20)
/* libmnl's batch limit; the buffer is twice that, for the message that goes over it */
#define BATCH_LIMIT (BIG_BATCH / 2)

static size_t room(struct mnl_nlmsg_batch *b)
{
	size_t used = mnl_nlmsg_batch_size(b);
	return used < BATCH_LIMIT ? BATCH_LIMIT - used : 0;
}


static int big_buffer(struct sn_elems *e)
{
	if (e->big)
		return 0;
	e->big = malloc(BIG_BATCH);
	if (!e->big)
		return -ENOMEM;
	int sz = (int)(2 * BIG_BATCH);
	setsockopt(mnl_socket_get_fd(e->nl), SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	return 0;
}

/* Ends, sends and waits for the batch being built in e->big; starts the next one. */
static int flush_big(struct sn_elems *e, struct mnl_nlmsg_batch **b, uint32_t *first)
{
	uint32_t expect = e->seq - *first;
	nftnl_batch_end(mnl_nlmsg_batch_current(*b), e->seq++);
	mnl_nlmsg_batch_next(*b);
	int rc = expect ? send_and_wait(e, *b, *first, expect) : 0;
	mnl_nlmsg_batch_stop(*b);
	*b = mnl_nlmsg_batch_start(e->big, BATCH_LIMIT);
	nftnl_batch_begin(mnl_nlmsg_batch_current(*b), e->seq++);
	mnl_nlmsg_batch_next(*b);
	*first = e->seq;
	return rc;
}

#define ELEMS_PER_MSG 2048
#define MSG_ROOM (ELEMS_PER_MSG * 64 + 4096) /* a message's size at most */

int sn_elems_create_sets(struct sn_elems *e, const struct sn_nft_bulk *v, size_t n)
{
	int rc = big_buffer(e);
	if (rc)
		return rc;
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(e->big, BATCH_LIMIT);
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), e->seq++);
	mnl_nlmsg_batch_next(b);
	uint32_t first = e->seq;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct sn_nft_bulk *bs = &v[i];
		uint32_t klen = bs->family == AF_INET6 ? 16 : 4;
		if (room(b) < MSG_ROOM && (rc = flush_big(e, &b, &first)))
			break;
		struct nftnl_set *s = nftnl_set_alloc();
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, bs->name);
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		/* nft's datatypes: ipv4_addr 7, ipv6_addr 8 (what nft reads back for the rules) */
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, bs->family == AF_INET6 ? 8 : 7);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, klen);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
		nftnl_set_set_u32(s, NFTNL_SET_ID, (uint32_t)i + 1);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, (uint32_t)(bs->n ? bs->n : 1));
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(
			mnl_nlmsg_batch_current(b), NFT_MSG_NEWSET, NFPROTO_INET,
			NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, e->seq++);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		mnl_nlmsg_batch_next(b);
		for (size_t j = 0; j < bs->n && !rc;) {
			if (room(b) < MSG_ROOM && (rc = flush_big(e, &b, &first)))
				break;
			struct nftnl_set *es = nftnl_set_alloc();
			if (!es) {
				rc = -ENOMEM;
				break;
			}
			nftnl_set_set_str(es, NFTNL_SET_TABLE, SN_NFT_TABLE);
			nftnl_set_set_str(es, NFTNL_SET_NAME, bs->name);
			size_t end = j + ELEMS_PER_MSG < bs->n ? j + ELEMS_PER_MSG : bs->n;
			for (; j < end; j++) {
				struct nftnl_set_elem *el = nftnl_set_elem_alloc();
				if (!el) {
					rc = -ENOMEM;
					break;
				}
				nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, bs->elems[j].addr, klen);
				nftnl_set_elem_add(es, el);
			}
			nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWSETELEM,
						    NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, e->seq++);
			nftnl_set_elems_nlmsg_build_payload(nlh, es);
			nftnl_set_free(es);
			mnl_nlmsg_batch_next(b);
		}
	}
	if (!rc) {
		uint32_t expect = e->seq - first;
		nftnl_batch_end(mnl_nlmsg_batch_current(b), e->seq++);
		mnl_nlmsg_batch_next(b);
		rc = expect ? send_and_wait(e, b, first, expect) : 0;
	}
	mnl_nlmsg_batch_stop(b);
	if (rc)
		sn_elems_delete_sets(e, v, n);
	return rc;
}

int sn_elems_delete_sets(struct sn_elems *e, const struct sn_nft_bulk *v, size_t n)
{
	/* one transaction per set: a set that was never made does not stop the others' removal */
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(e->buf, sizeof(e->buf));
		nftnl_batch_begin(mnl_nlmsg_batch_current(b), e->seq++);
		mnl_nlmsg_batch_next(b);
		uint32_t first = e->seq;
		struct nftnl_set *s = nftnl_set_alloc();
		if (!s) {
			mnl_nlmsg_batch_stop(b);
			return -ENOMEM;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, v[i].name);
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b),
							     NFT_MSG_DELSET, NFPROTO_INET,
							     NLM_F_ACK, e->seq++);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		mnl_nlmsg_batch_next(b);
		nftnl_batch_end(mnl_nlmsg_batch_current(b), e->seq++);
		mnl_nlmsg_batch_next(b);
		int r = send_and_wait(e, b, first, 1);
		mnl_nlmsg_batch_stop(b);
		if (r && r != -ENOENT && !rc)
			rc = r;
	}
	return rc;
}

int sn_elems_delete_objects(struct sn_elems *e, const char *chain, char *const *sets, size_t n)
{
	int rc = big_buffer(e);
	if (rc)
		return rc;
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(e->big, BATCH_LIMIT);
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), e->seq++);
	mnl_nlmsg_batch_next(b);
	uint32_t first = e->seq;
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (!c) {
		mnl_nlmsg_batch_stop(b);
		return -ENOMEM;
	}
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, SN_NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_DELCHAIN,
						     NFPROTO_INET, NLM_F_ACK, e->seq++);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	mnl_nlmsg_batch_next(b);
	for (size_t i = 0; i < n && !rc; i++) {
		struct nftnl_set *s = nftnl_set_alloc();
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, sets[i]);
		nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_DELSET, NFPROTO_INET,
					    NLM_F_ACK, e->seq++);
		nftnl_set_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		if (!mnl_nlmsg_batch_next(b))
			rc = -E2BIG;
	}
	if (!rc) {
		uint32_t expect = e->seq - first;
		nftnl_batch_end(mnl_nlmsg_batch_current(b), e->seq++);
		mnl_nlmsg_batch_next(b);
		rc = send_and_wait(e, b, first, expect);
	}
	mnl_nlmsg_batch_stop(b);
	return rc;
}

int sn_elems_switch(struct sn_elems *e, const char *ifname, const char *chain)
{
	char key[16] = {0}; /* nft's ifname: IFNAMSIZ bytes, zero-padded */
	size_t n = strlen(ifname);
	if (n >= sizeof(key))
		return -EINVAL;
	memcpy(key, ifname, n);
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(e->buf, sizeof(e->buf) / 2);
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), e->seq++);
	mnl_nlmsg_batch_next(b);
	uint32_t first = e->seq;
	int rc = 0;
	for (int k = 0; k < 2 && !rc; k++) {
		struct nftnl_set *s = nftnl_set_alloc();
		struct nftnl_set_elem *el = nftnl_set_elem_alloc();
		if (!s || !el) {
			nftnl_set_free(s);
			nftnl_set_elem_free(el);
			rc = -ENOMEM;
			break;
		}
		nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, "dispatch");
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, key, sizeof(key));
		if (k == 1) {
			nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
			nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, chain);
		}
		nftnl_set_elem_add(s, el);
		struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(
			mnl_nlmsg_batch_current(b), k == 0 ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM,
			NFPROTO_INET, (uint16_t)(k == 1 ? NLM_F_CREATE | NLM_F_ACK : NLM_F_ACK),
			e->seq++);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		mnl_nlmsg_batch_next(b);
	}
	if (!rc) {
		uint32_t expect = e->seq - first;
		nftnl_batch_end(mnl_nlmsg_batch_current(b), e->seq++);
		mnl_nlmsg_batch_next(b);
		rc = send_and_wait(e, b, first, expect);
	}
	mnl_nlmsg_batch_stop(b);
	return rc;
}

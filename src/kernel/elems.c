/* Set elements over netlink: see elems.h. Kernel layer. */
#include "elems.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "render.h"

struct sn_elems {
	struct mnl_socket *nl;
	uint32_t portid, seq;
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
	if (!rc && mnl_socket_sendto(e->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
		rc = -errno;
	mnl_nlmsg_batch_stop(b);
	if (rc)
		return rc;
	/* one answer per message: an ack, or the error that aborted the batch */
	int err = 0;
	for (uint32_t got = 0; got < expect;) {
		ssize_t r = mnl_socket_recvfrom(e->nl, e->buf, sizeof(e->buf));
		if (r < 0)
			return -errno;
		size_t len = (size_t)r;
		for (struct nlmsghdr *h = (struct nlmsghdr *)e->buf; mnl_nlmsg_ok(h, (int)len);
		     h = mnl_nlmsg_next(h, (int *)&len)) {
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

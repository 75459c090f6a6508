/* Kernel denials: the shared deny chain logs what it rejects to an NFLOG group (rate limited, the
 * first bytes of each packet); this thread reads them with libnetfilter_log and records each one
 * as a denial of the sandbox that sent it. The kernel does not say which rule decided; the
 * sandbox's snapshot does, with the same answer the kernel's rules were rendered from (kernel
 * rejects are decisions without a name: names go to the proxy). Daemon layer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libnetfilter_log/libnetfilter_log.h>

#include "daemon.h"

struct sn_kdeny {
	struct sn_daemon *d;
	struct nflog_handle *h;
	struct nflog_g_handle *gh;
	pthread_t thread;
	volatile bool stop;
};

static void record(struct sn_daemon *d, const uint8_t *p, size_t len, uint32_t mark)
{
	int family;
	const uint8_t *src, *dst;
	uint8_t proto;
	size_t l4;
	if (len >= 20 && p[0] >> 4 == 4) {
		family = AF_INET;
		src = p + 12;
		dst = p + 16;
		proto = p[9];
		l4 = (size_t)(p[0] & 0x0f) * 4;
	} else if (len >= 40 && p[0] >> 4 == 6) {
		family = AF_INET6;
		src = p + 8;
		dst = p + 24;
		proto = p[6];
		l4 = 40;
	} else {
		return;
	}
	struct sn_view *v = sn_net_lookup(&d->net, family, src);
	if (!v)
		return; /* not from a sandbox */
	uint16_t port = 0;
	enum sn_proto sp = SN_PROTO_ICMP;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		sp = proto == IPPROTO_TCP ? SN_PROTO_TCP : SN_PROTO_UDP;
		if (len >= l4 + 4)
			port = (uint16_t)(p[l4 + 2] << 8 | p[l4 + 3]);
	}
	int rule = SN_RULE_NONE;
	const char *reason;
	if (mark == SN_MARK_FLOWS) {
		reason = "flow limit: the sandbox has as many connections as --max-flows allows";
	} else if (sn_nft_guarded(&d->nftcfg, family, dst)) {
		reason = "guard rails: the destination is in a range no sandbox may reach";
	} else {
		struct sn_snapshot *snap = sn_view_snap(v, NULL);
		struct sn_query q = {.dir = SN_EGRESS, .family = family, .addr = dst, .port = port,
				     .proto = sp, .name = ""};
		struct sn_decision dn = sn_decide(snap, &q);
		sn_snapshot_unref(snap);
		rule = dn.rule;
		reason = dn.rule == SN_RULE_NONE ? dn.reason : "a deny rule matches the address";
	}
	char a[INET6_ADDRSTRLEN];
	inet_ntop(family, dst, a, sizeof(a));
	sn_view_log(v, SN_LOG_DEBUG, "sandbox %s: kernel rejected protocol %u to %s port %u: %s",
		    v->id, proto, a, port, reason);
	sn_view_deny(v, "kernel", proto, family, dst, port, NULL, rule, reason);
	sn_view_unref(v);
}

static int on_packet(struct nflog_g_handle *gh, struct nfgenmsg *msg, struct nflog_data *nfa,
		     void *arg)
{
	(void)gh;
	(void)msg;
	char *payload;
	int n = nflog_get_payload(nfa, &payload);
	if (n > 0)
		record(arg, (const uint8_t *)payload, (size_t)n, nflog_get_nfmark(nfa));
	return 0;
}

/* Binds the NFLOG group; a daemon that was just killed may hold it for a moment longer. */
static bool bind_group(struct sn_kdeny *k)
{
	k->gh = nflog_bind_group(k->h, k->d->cfg.nflog_group);
	if (!k->gh)
		return false;
	/* one message per packet, at once (the kernel batches for a second by default) */
	nflog_set_mode(k->gh, NFULNL_COPY_PACKET, SN_NFLOG_SNAPLEN);
	nflog_set_qthresh(k->gh, 1);
	nflog_set_timeout(k->gh, 0);
	nflog_callback_register(k->gh, on_packet, k->d);
	return true;
}

static void *kdeny_main(void *arg)
{
	struct sn_kdeny *k = arg;
	int fd = nflog_fd(k->h);
	for (int i = 0; !k->gh && !k->stop; i++) {
		if (bind_group(k)) {
			sn_log(SN_LOG_INFO, "kernel denials: NFLOG group %u bound",
			       k->d->cfg.nflog_group);
			break;
		}
		if (i == 0)
			sn_log(SN_LOG_WARN, "kernel denials: NFLOG group %u: %s; retrying",
			       k->d->cfg.nflog_group, strerror(errno));
		struct timespec ts = {.tv_nsec = 200000000};
		nanosleep(&ts, NULL);
	}
	char buf[65536] __attribute__((aligned));
	while (!k->stop) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r > 0)
			nflog_handle_packet(k->h, buf, (int)r);
		else if (r < 0 && errno == ENOBUFS)
			sn_log(SN_LOG_WARN, "kernel denials: some were lost (too many at once)");
	}
	return NULL;
}

int sn_kdeny_start(struct sn_daemon *d, struct sn_kdeny **out, char *err, size_t errsize)
{
	struct sn_kdeny *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	k->d = d;
	k->h = nflog_open();
	if (!k->h) {
		snprintf(err, errsize, "NFLOG: %s", strerror(errno));
		sn_kdeny_stop(k);
		return -EIO;
	}
	bind_group(k); /* or, when busy, the thread retries */
	struct timeval tv = {.tv_usec = 200000};
	setsockopt(nflog_fd(k->h), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (pthread_create(&k->thread, NULL, kdeny_main, k)) {
		snprintf(err, errsize, "no thread for kernel denials");
		sn_kdeny_stop(k);
		return -EAGAIN;
	}
	*out = k;
	return 0;
}

void sn_kdeny_stop(struct sn_kdeny *k)
{
	if (!k)
		return;
	k->stop = true;
	if (k->thread)
		pthread_join(k->thread, NULL);
	if (k->gh)
		nflog_unbind_group(k->gh);
	if (k->h)
		nflog_close(k->h);
	free(k);
}

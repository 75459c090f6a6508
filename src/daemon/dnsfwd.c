/* The policy DNS forwarder (DESIGN.md section 1, "DNS and the policy"). Daemon layer.
 *
 * One thread on epoll answers every DNS query a sandbox sends (UDP and TCP, to any address: the
 * kernel redirects port 53 here): a name the sandbox's policy does not resolve gets NXDOMAIN at
 * once and never reaches the upstream; any other query goes to --dns-upstream over UDP (one
 * retransmission after a second, SERVFAIL after two), and again over TCP when the answer comes
 * back truncated. Only the upstream's address and port may answer: a forged answer must spoof
 * that address, guess the random ID, hit the query's random source port (RFC 5452: each query
 * goes out on a socket of its own while fewer than UPSOCK_MAX are open) and repeat the question.
 * Answers lose the addresses that point into guarded ranges (DNS rebinding).
 *
 * An answer whose addresses feed learned-address sets (allow rules naming the name) goes through
 * the learner thread, which adds them to the kernel before the answer is sent: a client that
 * sends its first UDP datagram right after the answer finds its address in the set. Answers the
 * sandbox already learned (with at least half of their TTL left) skip that step. */
#define _GNU_SOURCE /* accept4, splice, pipe2 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "elems.h"

#define UDP_MAX 4096     /* largest UDP answer passed on */
#define TCP_MSG_MAX 65535
#define MAX_TCP_CLIENTS 512
#define SANDBOX_TCP_MAX 32 /* a sandbox's TCP connections at once (closed at once beyond) */
#define TCP_IDLE_MS 10000
#define RETRANSMIT_MS 1000
#define GIVE_UP_MS 2000
#define PENDING_MAX 60000       /* queries at the upstream at once (SERVFAIL beyond) */
#define SANDBOX_PENDING_MAX 512 /* and of one sandbox */
#define UPSOCK_MAX          256 /* UDP sockets to the upstream at once (shared beyond) */
/* the receive buffer of the socket all sandboxes share: a burst as big as the kernel lets one
 * sandbox send (--dns-rate) fits */
#define UDP_RCVBUF (4 << 20)

enum { EV_UDP, EV_TCP_LISTEN, EV_UPSTREAM, EV_DONE, EV_TCP_CLIENT, EV_TCP_UPSTREAM };

struct evsrc {
	int kind, fd;
};

/* Where an answer goes. */
struct reply_to {
	int fd; /* UDP: the listening socket */
	struct sockaddr_storage addr;
	socklen_t alen;
	uint64_t conn; /* TCP: the client connection's id; 0 for UDP */
};

struct tcp_client {
	struct evsrc ev;
	uint64_t id;
	struct sn_view *view;
	uint8_t *in; /* 2 + TCP_MSG_MAX */
	size_t inlen;
	uint8_t *out;
	size_t outlen, outoff;
	unsigned owed;  /* queries read and not answered yet */
	bool closing;   /* the client shut its side: close once nothing is owed or unsent */
	bool throttled; /* its sandbox is past --dns-rate: not read until the next tick */
	int64_t last;
	struct tcp_client *prev, *next;
};

/* A UDP socket to the upstream, bound to a port the kernel picks at random; closed once no
 * query waits on it. */
struct upsock {
	struct evsrc ev;
	unsigned users; /* queries waiting for their answer on it */
	size_t slot;    /* in sn_dnsfwd.socks */
	struct upsock *next_dead;
};

struct pending {
	uint16_t uid; /* upstream id */
	struct upsock *us; /* the socket it went out on; NULL once it went on over TCP */
	struct reply_to to;
	struct sn_view *view;
	uint16_t cid; /* the client's id */
	char qname[SN_DNS_NAME_MAX];
	size_t client_max;
	uint8_t *query; /* with uid */
	size_t qlen;
	int64_t sent, deadline;
	bool retried;
	/* TCP to the upstream after a truncated answer */
	struct evsrc tev;
	uint8_t *tc;  /* the truncated UDP answer, the fallback */
	size_t tclen;
	uint8_t *tbuf; /* 2 + TCP_MSG_MAX */
	size_t tlen, toff;
	bool twrote;
	struct pending *prev, *next;
};

struct ljob {
	struct ljob *next;
	struct sn_view *view;
	struct sn_dns_answer *ans;
	int64_t ttl_ms[SN_DNS_ADDR_MAX];
	struct reply_to to;
	uint8_t *msg;
	size_t len;
};

struct sn_dnsfwd {
	struct sn_daemon *d;
	int ep;
	struct evsrc udp4, udp6, tcp4, tcp6, done;
	struct sn_listener ltcp4, ltcp6; /* tcp4 and tcp6 paused when out of descriptors */
	struct sockaddr_storage upstream;
	socklen_t uplen;
	struct pending *pend[65536];
	struct upsock *socks[UPSOCK_MAX]; /* those with users */
	size_t nsocks;
	struct upsock *spare;      /* opened ahead, for the next query */
	struct upsock *dead_socks; /* no user left: closed after the batch of events */
	size_t npend;
	struct pending *pend_list; /* the same, in a list the timer walks */
	struct tcp_client *clients;
	size_t nclients;
	uint64_t next_conn;
	pthread_t thread, learner;
	bool stop;
	/* learner queue and the answers it finished */
	pthread_mutex_t qmu;
	pthread_cond_t qcond;
	struct ljob *jobs, *done_jobs;
	struct sn_elems *elems;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int ep_add(struct sn_dnsfwd *f, struct evsrc *e, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = e};
	return epoll_ctl(f->ep, EPOLL_CTL_ADD, e->fd, &ev);
}

static void ep_mod(struct sn_dnsfwd *f, struct evsrc *e, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = e};
	epoll_ctl(f->ep, EPOLL_CTL_MOD, e->fd, &ev);
}

bool sn_dns_upstream_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[80];
	uint16_t port = 53;
	snprintf(host, sizeof(host), "%s", s);
	char *colon = strrchr(host, ':');
	if (host[0] == '[') { /* [v6]:port */
		char *close_b = strchr(host, ']');
		if (!close_b)
			return false;
		*close_b = 0;
		if (close_b[1] == ':')
			port = (uint16_t)strtol(close_b + 2, NULL, 10);
		memmove(host, host + 1, strlen(host));
	} else if (colon && strchr(host, ':') == colon) { /* v4:port */
		*colon = 0;
		port = (uint16_t)strtol(colon + 1, NULL, 10);
	}
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *b = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		*len = sizeof(*a);
	} else if (inet_pton(AF_INET6, host, &b->sin6_addr) == 1) {
		b->sin6_family = AF_INET6;
		b->sin6_port = htons(port);
		*len = sizeof(*b);
	} else {
		return false;
	}
	return port != 0;
}

/* ---- sending answers ---- */

static struct tcp_client *client_by_id(struct sn_dnsfwd *f, uint64_t id)
{
	for (struct tcp_client *c = f->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void client_close(struct sn_dnsfwd *f, struct tcp_client *c)
{
	epoll_ctl(f->ep, EPOLL_CTL_DEL, c->ev.fd, NULL);
	close(c->ev.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		f->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	f->nclients--;
	c->view->dns_tcp--;
	sn_view_unref(c->view);
	free(c->in);
	free(c->out);
	free(c);
}

/* Sends what c has to send; may close c. A closing client is not read (its end would wake the
 * loop for ever), and goes once its answers are out. */
static void client_flush(struct sn_dnsfwd *f, struct tcp_client *c)
{
	uint32_t in = c->closing || c->throttled ? 0 : EPOLLIN;
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->ev.fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ep_mod(f, &c->ev, in | EPOLLOUT);
				return;
			}
			client_close(f, c);
			return;
		}
		c->outoff += (size_t)w;
	}
	c->outoff = c->outlen = 0;
	if (c->closing && !c->owed)
		client_close(f, c);
	else
		ep_mod(f, &c->ev, in);
}

static void send_reply(struct sn_dnsfwd *f, const struct reply_to *to, const uint8_t *m, size_t n)
{
	if (!to->conn) {
		sendto(to->fd, m, n, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&to->addr,
		       to->alen);
		return;
	}
	struct tcp_client *c = client_by_id(f, to->conn);
	if (!c)
		return;
	c->owed -= c->owed > 0;
	if (n > TCP_MSG_MAX) {
		client_flush(f, c);
		return;
	}
	uint8_t *p = realloc(c->out, c->outlen + 2 + n);
	if (!p)
		return;
	c->out = p;
	put16(p + c->outlen, (uint16_t)n);
	memcpy(p + c->outlen + 2, m, n);
	c->outlen += 2 + n;
	c->last = sn_now_ms();
	client_flush(f, c);
}

/* ---- answers from the upstream ---- */

static bool guarded(int family, const uint8_t *a, void *arg)
{
	return sn_nft_guarded(arg, family, a);
}

/* ---- sockets to the upstream ---- */

static uint32_t random32(void)
{
	uint32_t r;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)rand();
	return r;
}

/* A new socket, bound to a port the kernel picks at random; NULL when it cannot be had. */
static struct upsock *upsock_open(struct sn_dnsfwd *f)
{
	struct upsock *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ev = (struct evsrc){EV_UPSTREAM, socket(f->upstream.ss_family,
						  SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
	struct sockaddr_storage any = {.ss_family = f->upstream.ss_family};
	if (s->ev.fd < 0 || bind(s->ev.fd, (struct sockaddr *)&any, f->uplen) ||
	    ep_add(f, &s->ev, EPOLLIN)) {
		if (s->ev.fd >= 0)
			close(s->ev.fd);
		free(s);
		return NULL;
	}
	return s;
}

/* The socket a new query goes out on: a fresh one (a new random source port) while fewer than
 * UPSOCK_MAX are in use, else one of those at random. NULL when there is none. The spare, opened
 * after the last batch of events, saves the query the three system calls. */
static struct upsock *upsock_get(struct sn_dnsfwd *f)
{
	struct upsock *s = NULL;
	if (f->nsocks < UPSOCK_MAX) {
		s = f->spare ? f->spare : upsock_open(f);
		f->spare = NULL;
		if (s) {
			s->slot = f->nsocks;
			f->socks[f->nsocks++] = s;
		}
	}
	if (!s && f->nsocks)
		s = f->socks[random32() % f->nsocks];
	if (s)
		s->users++;
	return s;
}

/* p no longer waits on its socket; the last user's leaving retires it. */
static void upsock_put(struct sn_dnsfwd *f, struct pending *p)
{
	struct upsock *s = p->us;
	p->us = NULL;
	if (!s || --s->users)
		return;
	f->socks[s->slot] = f->socks[--f->nsocks];
	f->socks[s->slot]->slot = s->slot;
	s->next_dead = f->dead_socks;
	f->dead_socks = s;
}

static void upsock_close(struct upsock *s)
{
	close(s->ev.fd); /* leaves the epoll set too */
	free(s);
}

/* Closes the retired sockets (after a batch of events, none of which may still name them), and
 * opens the spare unless all UPSOCK_MAX are in use (or stopping). */
static void upsock_reap(struct sn_dnsfwd *f, bool spare)
{
	while (f->dead_socks) {
		struct upsock *s = f->dead_socks;
		f->dead_socks = s->next_dead;
		upsock_close(s);
	}
	if (spare && !f->spare && f->nsocks < UPSOCK_MAX)
		f->spare = upsock_open(f);
	if (!spare && f->spare) {
		upsock_close(f->spare);
		f->spare = NULL;
	}
}

static void pending_free(struct sn_dnsfwd *f, struct pending *p)
{
	upsock_put(f, p);
	if (p->tev.fd >= 0) {
		epoll_ctl(f->ep, EPOLL_CTL_DEL, p->tev.fd, NULL);
		close(p->tev.fd);
	}
	f->pend[p->uid] = NULL;
	f->npend--;
	p->view->dns_pending--;
	if (p->prev)
		p->prev->next = p->next;
	else
		f->pend_list = p->next;
	if (p->next)
		p->next->prev = p->prev;
	sn_view_unref(p->view);
	free(p->query);
	free(p->tc);
	free(p->tbuf);
	free(p);
}

/* The final answer m for p: filtered, learned, sent (now or by the learner). */
static void answer(struct sn_dnsfwd *f, struct pending *p, uint8_t *m, size_t n)
{
	struct sn_daemon *d = f->d;
	put16(m, p->cid);
	static struct sn_dns_answer a;
	if (sn_dns_parse_response(m, n, p->qname, &a) != 0) {
		send_reply(f, &p->to, m, n); /* not ours to judge: pass it on */
		return;
	}
	uint8_t *out = m;
	static uint8_t filtered[TCP_MSG_MAX];
	bool any = false;
	for (size_t i = 0; i < a.naddrs && !any; i++)
		any = sn_nft_guarded(&d->nftcfg, a.addrs[i].family, a.addrs[i].addr);
	if (any) {
		ssize_t w = sn_dns_filter(m, n, guarded, &d->nftcfg,
					  filtered, p->to.conn ? sizeof(filtered) : p->client_max);
		if (w < 0)
			return;
		sn_view_log(p->view, SN_LOG_INFO,
			    "sandbox %s: DNS %s: addresses in guarded ranges removed", p->view->id,
			    p->qname);
		out = filtered;
		n = (size_t)w;
		if (sn_dns_parse_response(out, n, p->qname, &a) != 0)
			return;
	}
	if (a.naddrs == 0) {
		send_reply(f, &p->to, out, n);
		return;
	}
	/* remember the answer; the kernel learns it unless it knows it already */
	int64_t now = sn_now_ms(), ttl[SN_DNS_ADDR_MAX];
	for (size_t i = 0; i < a.naddrs; i++) {
		uint32_t t = a.addrs[i].ttl;
		if (t < d->cfg.learn_ttl_min)
			t = d->cfg.learn_ttl_min;
		if (t > d->cfg.learn_ttl_max)
			t = d->cfg.learn_ttl_max;
		ttl[i] = (int64_t)t * 1000;
	}
	struct sn_snapshot *snap = sn_view_snap(p->view, NULL);
	uint32_t rules[1];
	bool feeds = sn_snapshot_name_rules(snap, p->qname, rules, 1) > 0;
	sn_snapshot_unref(snap);
	if (!feeds || sn_view_knows(p->view, &a, ttl, now)) {
		sn_view_learn(p->view, &a, ttl, now);
		send_reply(f, &p->to, out, n);
		return;
	}
	struct ljob *j = calloc(1, sizeof(*j));
	if (j)
		j->ans = malloc(sizeof(*j->ans));
	if (j)
		j->msg = malloc(n);
	if (!j || !j->ans || !j->msg) {
		if (j) {
			free(j->ans);
			free(j->msg);
			free(j);
		}
		return; /* no memory: the client retries */
	}
	memcpy(j->ans, &a, sizeof(a));
	memcpy(j->ttl_ms, ttl, sizeof(ttl));
	memcpy(j->msg, out, n);
	j->len = n;
	j->to = p->to;
	j->view = sn_view_ref(p->view);
	pthread_mutex_lock(&f->qmu);
	j->next = f->jobs;
	f->jobs = j;
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qmu);
}

static void servfail(struct sn_dnsfwd *f, struct pending *p)
{
	uint8_t m[SN_DNS_HEADER + SN_DNS_NAME_MAX + 8];
	struct sn_dns_question q;
	if (sn_dns_parse_query(p->query, p->qlen, &q) == 0) {
		size_t n = sn_dns_reply_error(p->query, q.end, SN_DNS_SERVFAIL, m, sizeof(m));
		if (n) {
			put16(m, p->cid);
			send_reply(f, &p->to, m, n);
		}
	}
}

/* Truncated over UDP: ask again over TCP. */
static bool tcp_retry(struct sn_dnsfwd *f, struct pending *p, const uint8_t *m, size_t n)
{
	p->tc = malloc(n);
	p->tbuf = malloc(2 + TCP_MSG_MAX);
	if (!p->tc || !p->tbuf)
		return false;
	memcpy(p->tc, m, n);
	p->tclen = n;
	int fd = socket(f->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&f->upstream, f->uplen) && errno != EINPROGRESS) {
		close(fd);
		return false;
	}
	p->tev = (struct evsrc){EV_TCP_UPSTREAM, fd};
	put16(p->tbuf, (uint16_t)p->qlen);
	memcpy(p->tbuf + 2, p->query, p->qlen);
	p->tlen = 2 + p->qlen;
	p->toff = 0;
	p->twrote = false;
	p->deadline = sn_now_ms() + GIVE_UP_MS;
	if (ep_add(f, &p->tev, EPOLLOUT)) {
		close(fd);
		p->tev.fd = -1;
		return false;
	}
	upsock_put(f, p);
	return true;
}

/* The TCP answer is in, or TCP failed (m NULL): the client gets the better of the two. */
static void tcp_done(struct sn_dnsfwd *f, struct pending *p, uint8_t *m, size_t n)
{
	if (m && (p->to.conn || n <= p->client_max))
		answer(f, p, m, n);
	else
		answer(f, p, p->tc, p->tclen);
	pending_free(f, p);
}

static void on_tcp_upstream(struct sn_dnsfwd *f, struct pending *p, uint32_t events)
{
	int fd = p->tev.fd;
	if (!p->twrote) {
		while (p->toff < p->tlen) {
			ssize_t w = send(fd, p->tbuf + p->toff, p->tlen - p->toff, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN)
					return;
				tcp_done(f, p, NULL, 0);
				return;
			}
			p->toff += (size_t)w;
		}
		p->twrote = true;
		p->tlen = 0;
		ep_mod(f, &p->tev, EPOLLIN);
		return;
	}
	(void)events;
	for (;;) {
		size_t need = p->tlen < 2 ? 2 : 2 + ((size_t)p->tbuf[0] << 8 | p->tbuf[1]);
		if (p->tlen >= 2 && p->tlen == need) {
			tcp_done(f, p, p->tbuf + 2, need - 2);
			return;
		}
		ssize_t r = recv(fd, p->tbuf + p->tlen, need - p->tlen, 0);
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			tcp_done(f, p, NULL, 0);
			return;
		}
		p->tlen += (size_t)r;
	}
}

/* Whether a datagram came from the upstream's address and port. */
static bool from_upstream(const struct sn_dnsfwd *f, const struct sockaddr_storage *ss)
{
	if (ss->ss_family != f->upstream.ss_family)
		return false;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss, *u = (const void *)&f->upstream;
		return a->sin_port == u->sin_port && a->sin_addr.s_addr == u->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *a = (const void *)ss, *u = (const void *)&f->upstream;
	return a->sin6_port == u->sin6_port &&
	       memcmp(&a->sin6_addr, &u->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

static void on_upstream(struct sn_dnsfwd *f, struct upsock *s)
{
	static uint8_t m[UDP_MAX + 1];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t r = recvfrom(s->ev.fd, m, sizeof(m), 0, (struct sockaddr *)&from, &flen);
		if (r < 0)
			return;
		if ((size_t)r < SN_DNS_HEADER || (size_t)r > UDP_MAX || !from_upstream(f, &from))
			continue;
		/* the answer to a query that went out on this socket */
		struct pending *p = f->pend[(uint16_t)(m[0] << 8 | m[1])];
		if (!p || p->us != s)
			continue;
		/* the answer must repeat the question we asked */
		struct sn_dns_question q;
		uint8_t hdr = m[2];
		m[2] &= 0x7f;
		int qrc = sn_dns_parse_query(m, (size_t)r, &q);
		m[2] = hdr;
		if (qrc || strcmp(q.name, p->qname) != 0)
			continue;
		if ((m[2] & 0x02) && tcp_retry(f, p, m, (size_t)r))
			continue;
		answer(f, p, m, (size_t)r);
		pending_free(f, p);
	}
}

/* ---- queries from sandboxes ---- */

#define ERR_MAX (SN_DNS_HEADER + SN_DNS_NAME_MAX + 8) /* an error answer: header and question */

/* Sends an error answer (rcode) to the query m, whose question ends at qend. Returns whether one
 * went. */
static bool reply_error(struct sn_dnsfwd *f, const struct reply_to *to, const uint8_t *m,
			size_t qend, int rcode)
{
	uint8_t out[ERR_MAX];
	size_t r = sn_dns_reply_error(m, qend, rcode, out, sizeof(out));
	if (r)
		send_reply(f, to, out, r);
	return r != 0;
}

/* Answers a query m[0..n) from a sandbox, at once (FORMERR, NXDOMAIN, REFUSED, SERVFAIL past the
 * forwarder's capacity) or through the upstream. Returns false when no answer will come: a
 * response or a message too short for a header is dropped, and so is a query that cannot be
 * followed (no memory). */
static bool query(struct sn_dnsfwd *f, struct sn_view *v, const uint8_t *m, size_t n,
		  const struct reply_to *to, uint8_t proto)
{
	struct sn_dns_question q;
	int rc = sn_dns_parse_query(m, n, &q);
	if (rc == -EINVAL && n >= SN_DNS_HEADER && !(m[2] & 0x80)) {
		uint8_t h[SN_DNS_HEADER];
		memcpy(h, m, SN_DNS_HEADER);
		h[2] = (uint8_t)(0x80 | (m[2] & 0x79));
		h[3] = SN_DNS_FORMERR;
		memset(h + 4, 0, 8);
		send_reply(f, to, h, sizeof(h));
		return true;
	}
	if (rc)
		return false; /* a response, or not even a header: dropped */
	if (q.end > ERR_MAX) /* a name written with padding: refuse */
		return false;
	struct sn_snapshot *snap = sn_view_snap(v, NULL);
	int rule = SN_RULE_NONE;
	bool ok = q.qclass == 1 && sn_dns_allowed(snap, q.name, &rule);
	sn_snapshot_unref(snap);
	if (!ok) {
		sn_view_deny(v, "dns", proto, 0, NULL, 53, q.name, rule,
			     q.qclass == 1 ? "the policy does not resolve this name"
					   : "only class IN is answered");
		return reply_error(f, to, m, q.end,
				   q.qclass == 1 ? SN_DNS_NXDOMAIN : SN_DNS_REFUSED);
	}
	/* past the forwarder's capacity, or past the sandbox's share of it (so that one sandbox
	 * cannot take it from the others): an answer at once, and the client may ask again */
	if (v->dns_pending >= SANDBOX_PENDING_MAX || f->npend >= PENDING_MAX) {
		if (f->npend >= PENDING_MAX)
			sn_view_log(v, SN_LOG_WARN, "DNS: %u queries in flight, the most",
				    PENDING_MAX);
		return reply_error(f, to, m, q.end, SN_DNS_SERVFAIL);
	}
	struct pending *p = calloc(1, sizeof(*p));
	if (!p || !(p->query = malloc(n))) {
		free(p);
		return false;
	}
	if (!(p->us = upsock_get(f))) {
		sn_view_log(v, SN_LOG_WARN, "DNS: no socket to the upstream: %s", strerror(errno));
		free(p->query);
		free(p);
		return reply_error(f, to, m, q.end, SN_DNS_SERVFAIL);
	}
	uint16_t uid;
	do
		uid = (uint16_t)random32();
	while (f->pend[uid]);
	p->uid = uid;
	p->cid = q.id;
	p->to = *to;
	p->view = sn_view_ref(v);
	p->tev.fd = -1;
	memcpy(p->qname, q.name, sizeof(p->qname));
	p->client_max = to->conn ? TCP_MSG_MAX : sn_dns_query_udp_size(m, n, q.end);
	if (p->client_max > UDP_MAX && !to->conn)
		p->client_max = UDP_MAX;
	memcpy(p->query, m, n);
	put16(p->query, uid);
	p->qlen = n;
	p->sent = sn_now_ms();
	p->deadline = p->sent + GIVE_UP_MS;
	f->pend[uid] = p;
	f->npend++;
	v->dns_pending++;
	p->next = f->pend_list;
	if (p->next)
		p->next->prev = p;
	f->pend_list = p;
	sendto(p->us->ev.fd, p->query, n, MSG_DONTWAIT, (struct sockaddr *)&f->upstream, f->uplen);
	return true;
}

static void addr_of(const struct sockaddr_storage *ss, int *family, const uint8_t **a)
{
	*family = ss->ss_family;
	*a = ss->ss_family == AF_INET6
		     ? ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr
		     : (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
}

static void on_udp(struct sn_dnsfwd *f, struct evsrc *e)
{
	static uint8_t m[UDP_MAX];
	for (int i = 0; i < 64; i++) {
		struct reply_to to = {.fd = e->fd};
		to.alen = sizeof(to.addr);
		ssize_t r = recvfrom(e->fd, m, sizeof(m), 0, (struct sockaddr *)&to.addr, &to.alen);
		if (r < 0)
			return;
		int family;
		const uint8_t *a;
		addr_of(&to.addr, &family, &a);
		struct sn_view *v = sn_net_lookup(&f->d->net, family, a);
		if (!v)
			continue; /* only sandboxes are answered */
		(void)query(f, v, m, (size_t)r, &to, IPPROTO_UDP);
		sn_view_unref(v);
	}
}

static void on_tcp_listen(struct sn_dnsfwd *f, struct evsrc *e)
{
	for (;;) {
		struct sockaddr_storage ss;
		int fd = sn_accept(e == &f->tcp4 ? &f->ltcp4 : &f->ltcp6, &ss);
		if (fd < 0)
			return;
		int family;
		const uint8_t *a;
		addr_of(&ss, &family, &a);
		struct sn_view *v = sn_net_lookup(&f->d->net, family, a);
		/* a sandbox gets its share of the connections, so that it cannot hold them all */
		struct tcp_client *c = v && f->nclients < MAX_TCP_CLIENTS &&
					       v->dns_tcp < SANDBOX_TCP_MAX
					   ? calloc(1, sizeof(*c))
					   : NULL;
		if (c)
			c->in = malloc(2 + TCP_MSG_MAX);
		if (!c || !c->in) {
			if (c)
				free(c);
			sn_view_unref(v);
			close(fd);
			continue;
		}
		c->ev = (struct evsrc){EV_TCP_CLIENT, fd};
		c->id = ++f->next_conn;
		c->view = v;
		v->dns_tcp++;
		c->last = sn_now_ms();
		c->next = f->clients;
		if (f->clients)
			f->clients->prev = c;
		f->clients = c;
		f->nclients++;
		if (ep_add(f, &c->ev, EPOLLIN))
			client_close(f, c);
	}
}

/* Answers every complete message c holds, while its sandbox has tokens; else c is throttled (not
 * read) until the next tick. Returns false when c was closed. */
static bool tcp_process(struct sn_dnsfwd *f, struct tcp_client *c)
{
	size_t off = 0;
	int64_t now = sn_now_ms();
	while (c->inlen - off >= 2) {
		size_t len = (size_t)c->in[off] << 8 | c->in[off + 1];
		if (c->inlen - off - 2 < len)
			break;
		/* --dns-rate a second, as many in a burst (the kernel meters the sandbox's UDP the
		 * same way, before the forwarder's shared socket) */
		unsigned rate = f->d->cfg.dns_rate;
		if (rate && !sn_bucket_take(&c->view->dns_tcp_rate, rate, now)) {
			c->throttled = true;
			ep_mod(f, &c->ev, c->outoff < c->outlen ? EPOLLOUT : 0);
			break;
		}
		struct reply_to to = {.fd = -1, .conn = c->id};
		uint64_t id = c->id;
		c->owed++;
		bool answered = query(f, c->view, c->in + off + 2, len, &to, IPPROTO_TCP);
		if (!client_by_id(f, id))
			return false; /* an answer could not be sent: closed */
		c->owed -= !answered; /* dropped: nothing will come for it */
		off += 2 + len;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return true;
}

static void on_tcp_client(struct sn_dnsfwd *f, struct tcp_client *c, uint32_t events)
{
	if (events & EPOLLOUT) {
		uint64_t id = c->id;
		client_flush(f, c);
		if (!client_by_id(f, id))
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->throttled)
		return;
	ssize_t r = recv(c->ev.fd, c->in + c->inlen, 2 + TCP_MSG_MAX - c->inlen, 0);
	if (r < 0 && errno == EAGAIN)
		return;
	if (r == 0 && !c->closing) {
		/* the client shut its side: what it asked is still answered */
		c->closing = true;
		client_flush(f, c);
		return;
	}
	if (r <= 0) {
		client_close(f, c);
		return;
	}
	c->inlen += (size_t)r;
	c->last = sn_now_ms();
	tcp_process(f, c);
}

/* ---- the learner ---- */

static void *learner_main(void *arg)
{
	struct sn_dnsfwd *f = arg;
	struct sn_daemon *d = f->d;
	for (;;) {
		pthread_mutex_lock(&f->qmu);
		while (!f->jobs && !f->stop)
			pthread_cond_wait(&f->qcond, &f->qmu);
		struct ljob *j = f->jobs;
		if (j)
			f->jobs = j->next;
		pthread_mutex_unlock(&f->qmu);
		if (!j)
			return NULL;
		int64_t now = sn_now_ms();
		pthread_mutex_lock(&d->kernel_lock);
		/* the generation in force now, and its snapshot, decide the sets */
		pthread_mutex_lock(&j->view->mu);
		uint64_t gen = j->view->gen;
		bool dead = j->view->dead;
		struct sn_snapshot *snap = sn_snapshot_ref(j->view->snap);
		pthread_mutex_unlock(&j->view->mu);
		sn_view_learn(j->view, j->ans, j->ttl_ms, now);
		uint32_t rules[64];
		int nr = dead ? 0 : sn_snapshot_name_rules(snap, j->ans->names[0], rules, 64);
		size_t ne = 0;
		static struct sn_elem el[64 * SN_DNS_ADDR_MAX];
		static char names[64][2][96];
		for (int r = 0; r < nr; r++) {
			sn_nft_learned_set(names[r][0], sizeof(names[r][0]), j->view->id, gen, rules[r],
					   AF_INET);
			sn_nft_learned_set(names[r][1], sizeof(names[r][1]), j->view->id, gen, rules[r],
					   AF_INET6);
			for (size_t i = 0; i < j->ans->naddrs; i++) {
				const struct sn_dns_addr *a = &j->ans->addrs[i];
				el[ne] = (struct sn_elem){.set = names[r][a->family == AF_INET6],
							  .family = a->family,
							  .timeout_ms = (uint64_t)j->ttl_ms[i]};
				memcpy(el[ne].addr, a->addr, 16);
				ne++;
			}
		}
		int rc = ne ? sn_elems_add(f->elems, el, ne) : 0;
		pthread_mutex_unlock(&d->kernel_lock);
		sn_snapshot_unref(snap);
		if (rc && rc != -ENOENT)
			sn_view_log(j->view, SN_LOG_WARN, "sandbox %s: learning %s: %s", j->view->id,
				    j->ans->names[0], strerror(-rc));
		else
			sn_view_log(j->view, SN_LOG_DEBUG, "sandbox %s: learned %zu addresses of %s",
				    j->view->id, j->ans->naddrs, j->ans->names[0]);
		pthread_mutex_lock(&f->qmu);
		j->next = f->done_jobs;
		f->done_jobs = j;
		pthread_mutex_unlock(&f->qmu);
		uint64_t one = 1;
		if (write(f->done.fd, &one, sizeof(one)) < 0)
			sn_log(SN_LOG_WARN, "DNS: eventfd: %s", strerror(errno));
	}
}

static void on_done(struct sn_dnsfwd *f)
{
	uint64_t x;
	if (read(f->done.fd, &x, sizeof(x)) < 0)
		return;
	pthread_mutex_lock(&f->qmu);
	struct ljob *j = f->done_jobs;
	f->done_jobs = NULL;
	pthread_mutex_unlock(&f->qmu);
	while (j) {
		struct ljob *next = j->next;
		send_reply(f, &j->to, j->msg, j->len);
		sn_view_unref(j->view);
		free(j->ans);
		free(j->msg);
		free(j);
		j = next;
	}
}

/* ---- the loop ---- */

static void on_timer(struct sn_dnsfwd *f)
{
	int64_t now = sn_now_ms();
	sn_listener_tick(&f->ltcp4, now);
	sn_listener_tick(&f->ltcp6, now);
	for (struct pending *p = f->pend_list, *next; p; p = next) {
		next = p->next;
		if (p->tev.fd >= 0) {
			if (now >= p->deadline)
				tcp_done(f, p, NULL, 0);
			continue;
		}
		if (now >= p->deadline) {
			sn_view_log(p->view, SN_LOG_WARN,
				    "sandbox %s: DNS %s: the upstream did not answer", p->view->id,
				    p->qname);
			servfail(f, p);
			pending_free(f, p);
		} else if (!p->retried && now - p->sent >= RETRANSMIT_MS) {
			p->retried = true;
			sendto(p->us->ev.fd, p->query, p->qlen, MSG_DONTWAIT,
			       (struct sockaddr *)&f->upstream, f->uplen);
		}
	}
	for (struct tcp_client *c = f->clients, *next; c; c = next) {
		next = c->next;
		if (now - c->last > TCP_IDLE_MS) {
			client_close(f, c);
		} else if (c->throttled) {
			/* its sandbox has tokens again: what it holds first, then its socket */
			c->throttled = false;
			c->last = now;
			if (tcp_process(f, c) && !c->throttled)
				client_flush(f, c);
		}
	}
}

static void *dns_main(void *arg)
{
	struct sn_dnsfwd *f = arg;
	int64_t last_tick = sn_now_ms();
	while (!f->stop) {
		struct epoll_event ev[64];
		int n = epoll_wait(f->ep, ev, 64, 100);
		for (int i = 0; i < n; i++) {
			struct evsrc *e = ev[i].data.ptr;
			switch (e->kind) {
			case EV_UDP: on_udp(f, e); break;
			case EV_TCP_LISTEN: on_tcp_listen(f, e); break;
			case EV_UPSTREAM: on_upstream(f, (struct upsock *)e); break;
			case EV_DONE: on_done(f); break;
			case EV_TCP_CLIENT:
				on_tcp_client(f, (struct tcp_client *)e, ev[i].events);
				break;
			case EV_TCP_UPSTREAM:
				on_tcp_upstream(f,
						(struct pending *)((char *)e -
								   offsetof(struct pending, tev)),
						ev[i].events);
				break;
			}
		}
		int64_t now = sn_now_ms();
		if (now - last_tick >= 100) {
			last_tick = now;
			on_timer(f);
		}
		upsock_reap(f, true);
	}
	return NULL;
}

int sn_dnsfwd_start(struct sn_daemon *d, struct sn_dnsfwd **out, char *err, size_t errsize)
{
	struct sn_dnsfwd *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	f->d = d;
	f->udp4.fd = f->udp6.fd = f->tcp4.fd = f->tcp6.fd = f->done.fd = -1;
	pthread_mutex_init(&f->qmu, NULL);
	pthread_cond_init(&f->qcond, NULL);
	int rc;
	if (!sn_dns_upstream_addr(d->cfg.dns_upstream, &f->upstream, &f->uplen)) {
		snprintf(err, errsize, "--dns-upstream %s: not an IP[:PORT]", d->cfg.dns_upstream);
		rc = -EINVAL;
		goto fail;
	}
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	uint16_t port = d->cfg.dns_port;
	f->udp4 = (struct evsrc){EV_UDP, sn_listen(AF_INET, SOCK_DGRAM, NULL, port, false)};
	f->tcp4 = (struct evsrc){EV_TCP_LISTEN, sn_listen(AF_INET, SOCK_STREAM, NULL, port, false)};
	if (d->cfg.has_pool6) {
		f->udp6 = (struct evsrc){EV_UDP, sn_listen(AF_INET6, SOCK_DGRAM, NULL, port, false)};
		f->tcp6 = (struct evsrc){EV_TCP_LISTEN,
					 sn_listen(AF_INET6, SOCK_STREAM, NULL, port, false)};
	}
	f->done = (struct evsrc){EV_DONE, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
	int rcvbuf = UDP_RCVBUF;
	for (int i = 0; i < 2; i++) {
		int fd = i ? f->udp6.fd : f->udp4.fd;
		if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	struct evsrc *all[] = {&f->udp4, &f->tcp4, &f->udp6, &f->tcp6, &f->done};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (all[i]->fd == -1 && (all[i] == &f->udp6 || all[i] == &f->tcp6))
			continue;
		if (all[i]->fd < 0 || ep_add(f, all[i], EPOLLIN)) {
			rc = all[i]->fd < 0 ? all[i]->fd : -errno;
			snprintf(err, errsize, "DNS forwarder on port %u: %s", d->cfg.dns_port,
				 strerror(-rc));
			goto fail;
		}
	}
	f->ltcp4 = (struct sn_listener){f->ep, f->tcp4.fd, &f->tcp4, "DNS over TCP"};
	f->ltcp6 = (struct sn_listener){f->ep, f->tcp6.fd, &f->tcp6, "DNS over TCP"};
	if ((rc = sn_elems_open(&f->elems))) {
		snprintf(err, errsize, "netlink: %s", strerror(-rc));
		goto fail;
	}
	if (pthread_create(&f->learner, NULL, learner_main, f)) {
		rc = -EAGAIN;
		snprintf(err, errsize, "no thread for the learner");
		goto fail;
	}
	if (pthread_create(&f->thread, NULL, dns_main, f)) {
		f->stop = true;
		pthread_cond_signal(&f->qcond);
		pthread_join(f->learner, NULL);
		rc = -EAGAIN;
		snprintf(err, errsize, "no thread for the DNS forwarder");
		goto fail;
	}
	*out = f;
	return 0;
fail:
	f->thread = 0;
	f->learner = 0;
	sn_dnsfwd_stop(f);
	return rc;
}

void sn_dnsfwd_stop(struct sn_dnsfwd *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->qmu);
	f->stop = true;
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qmu);
	if (f->thread)
		pthread_join(f->thread, NULL);
	if (f->learner)
		pthread_join(f->learner, NULL);
	while (f->pend_list)
		pending_free(f, f->pend_list);
	upsock_reap(f, false);
	while (f->clients)
		client_close(f, f->clients);
	struct ljob *lists[2] = {f->jobs, f->done_jobs};
	for (int k = 0; k < 2; k++)
		for (struct ljob *j = lists[k], *next; j; j = next) {
			next = j->next;
			sn_view_unref(j->view);
			free(j->ans);
			free(j->msg);
			free(j);
		}
	int fds[] = {f->udp4.fd, f->udp6.fd, f->tcp4.fd, f->tcp6.fd, f->done.fd, f->ep};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] > 0)
			close(fds[i]);
	sn_elems_close(f->elems);
	free(f);
}

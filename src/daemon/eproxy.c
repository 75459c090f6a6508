/* The transparent egress proxy (DESIGN.md section 2). Daemon layer.
 *
 * The kernel sends here the TCP connections that only a name can decide. Each worker thread owns
 * an epoll set and its listening sockets (SO_REUSEPORT spreads connections over the workers).
 * Per connection: the sandbox by source address, the original destination (SO_ORIGINAL_DST), the
 * first client bytes until a ClientHello's SNI or a request's Host is known (or the peek deadline
 * passes: with no bytes at all the decision is made without a name, with some bytes the client
 * is cut), the decision with the sandbox's snapshot in force, then a connect to the destination
 * and splice() both ways, or a reset. Strict names: an allow that only the name earned needs the
 * destination among the name's addresses, from the sandbox's own DNS answers or from a lookup the
 * worker makes itself (UDP to the upstream, on the same epoll set).
 *
 * A policy update makes every worker re-check its open connections (sn_eproxy_recheck) before
 * the PUT returns. */
#define _GNU_SOURCE /* accept4, splice, pipe2 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "sniff.h"

#define PEEK_MAX (SN_SNIFF_TLS_MAX + 5)
#define CONNECT_TIMEOUT_MS 10000
#define LOOKUP_TIMEOUT_MS 1500
#define PIPE_CHUNK (1 << 16)
#define PIPE_POOL 256

enum { EV_LISTEN, EV_WAKE, EV_CLIENT, EV_UPSTREAM, EV_LOOKUP };
enum { ST_PEEK, ST_LOOKUP, ST_CONNECT, ST_RELAY, ST_DEAD };

struct evsrc {
	int kind, fd;
};

struct pconn;
struct worker;

/* One direction of a relay: bytes from src, through the pipe, to dst. */
struct flow {
	int pipe[2];
	size_t pending; /* bytes in the pipe */
	bool eof, shut;
};

struct pconn {
	struct evsrc cev, uev, lev; /* client, upstream, strict-name lookup */
	struct worker *w;
	struct sn_view *view;
	int state;
	int family;
	uint8_t dst[16];
	uint16_t port;
	char name[SN_DNS_NAME_MAX]; /* "" without */
	bool strict_ok;             /* the name's address check passed (or was not needed) */
	uint8_t *buf;               /* the first bytes, until they are written upstream */
	size_t len, off;
	int64_t deadline, last;
	uint64_t epoch;
	uint16_t lookup_id;
	struct flow up, down;  /* client -> upstream, upstream -> client */
	struct pconn *prev, *next;
};

struct worker {
	struct sn_eproxy *p;
	int ep;
	struct evsrc l4, l6, wake;
	struct sn_listener lst4, lst6; /* l4 and l6 paused when out of descriptors */
	pthread_t thread;
	struct pconn *conns;
	size_t nconns;
	struct pconn *dead; /* closed in this batch of events, freed after it */
	int pipes[PIPE_POOL][2]; /* empty pipes kept for the next connections */
	size_t npipes;
	uint8_t scratch[PEEK_MAX]; /* the first read of every connection */
	uint64_t recheck_seen; /* the last recheck request served */
};

struct sn_eproxy {
	struct sn_daemon *d;
	struct worker *w;
	unsigned nw;
	atomic_uint total;  /* proxied connections open, all sandboxes' */
	unsigned max_total; /* --proxy-max-conns-total */
	bool stop;
	struct sockaddr_storage upstream;
	socklen_t uplen;
	struct sn_recheck rc;
};

static struct pconn *of(struct evsrc *e, size_t offset)
{
	return (struct pconn *)((char *)e - offset);
}

/* Every descriptor of a connection is registered once, edge-triggered, for everything; the
 * handlers always work until EAGAIN, so no interest ever changes (no epoll_ctl per event). */
static void watch(struct worker *w, struct evsrc *e)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = e};
	epoll_ctl(w->ep, EPOLL_CTL_ADD, e->fd, &ev);
}

/* Pipes come from the worker's pool and go back to it empty. */
static bool pipe_get(struct worker *w, int p[2])
{
	if (w->npipes) {
		w->npipes--;
		p[0] = w->pipes[w->npipes][0];
		p[1] = w->pipes[w->npipes][1];
		return true;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC))
		return false;
	return true;
}

static void pipe_put(struct worker *w, int p[2], bool empty)
{
	if (p[0] < 0)
		return;
	if (empty && w->npipes < PIPE_POOL) {
		w->pipes[w->npipes][0] = p[0];
		w->pipes[w->npipes][1] = p[1];
		w->npipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

static void rst_close(int fd)
{
	if (fd < 0)
		return;
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* Closes a connection; reset: both sides get a RST instead of a FIN. */
static void conn_close(struct pconn *c, bool reset)
{
	struct worker *w = c->w;
	/* closing a descriptor takes it out of the epoll set */
	if (reset) {
		rst_close(c->cev.fd);
		rst_close(c->uev.fd);
	} else {
		if (c->cev.fd >= 0)
			close(c->cev.fd);
		if (c->uev.fd >= 0)
			close(c->uev.fd);
	}
	if (c->lev.fd >= 0)
		close(c->lev.fd);
	pipe_put(w, c->up.pipe, c->up.pending == 0);
	pipe_put(w, c->down.pipe, c->down.pending == 0);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	pthread_mutex_lock(&c->view->mu);
	c->view->conns--;
	pthread_mutex_unlock(&c->view->mu);
	atomic_fetch_sub_explicit(&w->p->total, 1, memory_order_relaxed);
	sn_view_unref(c->view);
	free(c->buf);
	c->state = ST_DEAD;
	c->next = w->dead;
	w->dead = c;
}

static void deny(struct pconn *c, int rule, const char *reason)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(c->family, c->dst, a, sizeof(a));
	sn_view_log(c->view, SN_LOG_INFO, "sandbox %s: proxy: %s:%u%s%s denied: %s", c->view->id, a,
		    c->port, c->name[0] ? " " : "", c->name, reason);
	sn_view_deny(c->view, "proxy", IPPROTO_TCP, c->family, c->dst, c->port,
		     c->name[0] ? c->name : NULL, rule, reason);
	conn_close(c, true);
}

/* ---- the decision ---- */

enum { D_ALLOW, D_DENY, D_LOOKUP };

/* Decides c with snap; for D_DENY *rule and *reason say why. */
static int decide(struct pconn *c, const struct sn_snapshot *snap, int *rule, const char **reason)
{
	struct sn_daemon *d = c->w->p->d;
	struct sn_query q = {.dir = SN_EGRESS, .family = c->family, .addr = c->dst,
			     .port = c->port, .proto = SN_PROTO_TCP};
	int64_t now = sn_now_ms();
	if (c->name[0]) {
		q.name = c->name;
		struct sn_decision dn = sn_decide(snap, &q);
		*rule = dn.rule;
		if (dn.verdict != SN_VERDICT_ALLOW) {
			*reason = dn.rule == SN_RULE_NONE ? dn.reason : "a deny rule matches the name";
			return D_DENY;
		}
		if (dn.rule == SN_RULE_NONE || c->strict_ok || !d->cfg.strict_names)
			return D_ALLOW;
		/* did the address earn the allow, or only the name? */
		q.name = NULL;
		struct sn_decision da = sn_decide(snap, &q);
		if (da.verdict == SN_VERDICT_ALLOW && da.rule == dn.rule)
			return D_ALLOW;
		if (sn_view_resolves(c->view, c->name, c->family, c->dst, now)) {
			c->strict_ok = true;
			return D_ALLOW;
		}
		*reason = "strict names: the name does not resolve to this address";
		return D_LOOKUP;
	}
	/* no name from the client: the names this sandbox resolved to the address */
	char names[8][SN_DNS_NAME_MAX];
	size_t n = sn_view_names_for(c->view, c->family, c->dst, now, names, 8);
	for (size_t i = 0; i < n; i++) {
		q.name = names[i];
		struct sn_decision dn = sn_decide(snap, &q);
		if (dn.verdict == SN_VERDICT_ALLOW) {
			*rule = dn.rule;
			return D_ALLOW;
		}
	}
	/* nameless: name entries match nothing (an invalid name matches none, not even "*"), so
	 * the rules' addresses and the mode decide; deny rules with names act through DNS and
	 * names, never against an address other names may share */
	q.name = "";
	struct sn_decision d0 = sn_decide(snap, &q);
	*rule = d0.rule;
	if (d0.verdict == SN_VERDICT_ALLOW)
		return D_ALLOW;
	*reason = d0.rule == SN_RULE_NONE
			  ? "no name (no SNI or Host, and no name this sandbox resolved points to "
			    "the address): the mode decides"
			  : "no name, and a rule for the address denies";
	return D_DENY;
}

static void start_connect(struct pconn *c);

static void lookup_start(struct pconn *c)
{
	struct sn_eproxy *p = c->w->p;
	uint8_t q[SN_DNS_HEADER + SN_DNS_NAME_MAX + 4];
	if (getrandom(&c->lookup_id, sizeof(c->lookup_id), 0) != sizeof(c->lookup_id))
		c->lookup_id = (uint16_t)rand();
	size_t n = sn_dns_build_query(c->lookup_id, c->name,
				      c->family == AF_INET6 ? SN_DNS_AAAA : SN_DNS_A, q, sizeof(q));
	int fd = n ? socket(p->upstream.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
		   : -1;
	if (fd < 0 || connect(fd, (struct sockaddr *)&p->upstream, p->uplen) ||
	    send(fd, q, n, 0) != (ssize_t)n) {
		if (fd >= 0)
			close(fd);
		deny(c, SN_RULE_NONE, "strict names: the name could not be looked up");
		return;
	}
	c->lev = (struct evsrc){EV_LOOKUP, fd};
	watch(c->w, &c->lev);
	c->state = ST_LOOKUP;
	c->deadline = sn_now_ms() + LOOKUP_TIMEOUT_MS;
}

static void on_lookup(struct pconn *c)
{
	uint8_t m[4096];
	ssize_t r = recv(c->lev.fd, m, sizeof(m), 0);
	if (r < 0 && errno == EAGAIN)
		return;
	static _Thread_local struct sn_dns_answer a;
	bool ok = false;
	if (r > 0 && sn_dns_parse_response(m, (size_t)r, c->name, &a) == 0 &&
	    a.id == c->lookup_id) {
		/* remembered as the sandbox's own answers are, so the next connection to the name
		 * does not ask again while the TTL lasts */
		const struct sn_config *cfg = &c->w->p->d->cfg;
		int64_t ttl[SN_DNS_ADDR_MAX];
		for (size_t i = 0; i < a.naddrs; i++) {
			uint32_t t = a.addrs[i].ttl;
			t = t < cfg->learn_ttl_min ? cfg->learn_ttl_min : t;
			t = t > cfg->learn_ttl_max ? cfg->learn_ttl_max : t;
			ttl[i] = (int64_t)t * 1000;
			ok |= a.addrs[i].family == c->family &&
			      memcmp(a.addrs[i].addr, c->dst, c->family == AF_INET6 ? 16 : 4) == 0;
		}
		sn_view_learn(c->view, &a, ttl, sn_now_ms());
	} else if (r > 0) {
		return; /* not our answer */
	}
	close(c->lev.fd);
	c->lev.fd = -1;
	if (!ok) {
		deny(c, SN_RULE_NONE, "strict names: the name does not resolve to this address");
		return;
	}
	c->strict_ok = true;
	start_connect(c);
}

static void decide_and_go(struct pconn *c)
{
	uint64_t epoch;
	struct sn_snapshot *snap = sn_view_snap(c->view, &epoch);
	int rule = SN_RULE_NONE;
	const char *reason = "";
	int v = decide(c, snap, &rule, &reason);
	sn_snapshot_unref(snap);
	c->epoch = epoch;
	if (v == D_DENY)
		deny(c, rule, reason);
	else if (v == D_LOOKUP)
		lookup_start(c);
	else
		start_connect(c);
}

/* ---- relaying ---- */

/* Moves what it can from src to dst through f's pipe; false on an error (reset both). */
static bool pump(struct worker *w, struct flow *f, int src, int dst, int64_t *last)
{
	for (;;) {
		bool moved = false;
		if (!f->eof && f->pending < PIPE_CHUNK) {
			if (f->pipe[0] < 0 && !pipe_get(w, f->pipe))
				return false;
			ssize_t n = splice(src, NULL, f->pipe[1], NULL, PIPE_CHUNK - f->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				f->pending += (size_t)n;
				moved = true;
			} else if (n == 0) {
				f->eof = true;
			} else if (errno != EAGAIN) {
				return false;
			}
		}
		if (f->pending) {
			ssize_t n = splice(f->pipe[0], NULL, dst, NULL, f->pending,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				f->pending -= (size_t)n;
				moved = true;
			} else if (n < 0 && errno != EAGAIN) {
				return false;
			}
		}
		if (f->eof && !f->pending && !f->shut) {
			shutdown(dst, SHUT_WR); /* half-close passed on */
			f->shut = true;
		}
		if (moved) {
			*last = sn_now_ms();
			continue;
		}
		/* nothing in flight: the pipe goes back to the pool, so that an idle connection
		 * holds its two sockets and no pipe (a third of the descriptors) */
		if (!f->pending && f->pipe[0] >= 0) {
			pipe_put(w, f->pipe, true);
			f->pipe[0] = f->pipe[1] = -1;
		}
		return true;
	}
}

static void relay(struct pconn *c)
{
	if (!pump(c->w, &c->up, c->cev.fd, c->uev.fd, &c->last) ||
	    !pump(c->w, &c->down, c->uev.fd, c->cev.fd, &c->last)) {
		conn_close(c, true);
		return;
	}
	if (c->up.shut && c->down.shut)
		conn_close(c, false);
}

static void upstream_ready(struct pconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->uev.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		/* as if the client had connected directly: refused is a reset */
		conn_close(c, true);
		return;
	}
	while (c->off < c->len) {
		ssize_t n = send(c->uev.fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			conn_close(c, true);
			return;
		}
		c->off += (size_t)n;
	}
	free(c->buf);
	c->buf = NULL;
	c->state = ST_RELAY;
	c->last = sn_now_ms();
	relay(c);
}

static void start_connect(struct pconn *c)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (c->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(c->port);
		memcpy(&a->sin_addr, c->dst, 4);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(c->port);
		memcpy(&a->sin6_addr, c->dst, 16);
		len = sizeof(*a);
	}
	int fd = socket(c->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_close(c, true);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		close(fd);
		conn_close(c, true);
		return;
	}
	c->uev = (struct evsrc){EV_UPSTREAM, fd};
	c->state = ST_CONNECT;
	c->deadline = sn_now_ms() + CONNECT_TIMEOUT_MS;
	watch(c->w, &c->uev);
}

/* ---- the first bytes ---- */

static void peek(struct pconn *c)
{
	struct worker *w = c->w;
	for (;;) {
		if (c->len == PEEK_MAX)
			break;
		/* the first bytes land in the worker's scratch; a connection gets a buffer of its
		 * own only for what it must keep (a hello that is still coming, or what was read) */
		uint8_t *b = c->buf ? c->buf : w->scratch;
		ssize_t n = recv(c->cev.fd, b + c->len, PEEK_MAX - c->len, 0);
		if (n < 0 && errno == EAGAIN) {
			if (!c->buf && c->len) {
				if (!(c->buf = malloc(PEEK_MAX))) {
					conn_close(c, true);
					return;
				}
				memcpy(c->buf, w->scratch, c->len);
			}
			return;
		}
		if (n <= 0) {
			conn_close(c, false);
			return;
		}
		c->len += (size_t)n;
		int t = sn_sniff_tls_sni(b, c->len, c->name, sizeof(c->name));
		int h = t > 0 ? -EPROTO : sn_sniff_http_host(b, c->len, c->name, sizeof(c->name));
		if (t > 0 || h > 0)
			break; /* a name */
		if (t == 0 || h == 0)
			continue; /* more of a hello or a head may come */
		c->name[0] = 0; /* neither: decided without a name */
		break;
	}
	if (!c->buf && c->len) {
		if (!(c->buf = malloc(c->len))) {
			conn_close(c, true);
			return;
		}
		memcpy(c->buf, w->scratch, c->len);
	}
	if (c->len == PEEK_MAX && !c->name[0]) {
		int t = sn_sniff_tls_sni(c->buf, c->len, c->name, sizeof(c->name));
		if (t <= 0)
			c->name[0] = 0;
	}
	decide_and_go(c);
}

/* ---- per worker ---- */

static void accept_all(struct worker *w, struct evsrc *l)
{
	struct sn_daemon *d = w->p->d;
	for (;;) {
		struct sockaddr_storage ss;
		int fd = sn_accept(l == &w->l4 ? &w->lst4 : &w->lst6, &ss);
		if (fd < 0)
			return;
		int family = ss.ss_family;
		const uint8_t *src = family == AF_INET6
					     ? ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr
					     : (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
		struct sn_view *v = sn_net_lookup(&d->net, family, src);
		struct sockaddr_storage od = {0};
		socklen_t olen = sizeof(od);
		int rc = family == AF_INET6
				 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &od, &olen)
				 : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &od, &olen);
		if (!v || rc) {
			sn_view_unref(v);
			rst_close(fd);
			continue;
		}
		struct pconn *c = calloc(1, sizeof(*c));
		if (!c) {
			sn_view_unref(v);
			rst_close(fd);
			continue;
		}
		/* the sandbox's share, then everyone's (so that the sandboxes together leave the
		 * ingress its descriptors) */
		const char *full = NULL;
		pthread_mutex_lock(&v->mu);
		if (v->conns >= d->cfg.max_conns) {
			full = "too many open proxied connections";
		} else if (atomic_fetch_add_explicit(&w->p->total, 1, memory_order_relaxed) >=
			   w->p->max_total) {
			atomic_fetch_sub_explicit(&w->p->total, 1, memory_order_relaxed);
			full = "the proxy holds --proxy-max-conns-total connections, all "
			       "sandboxes'";
		} else {
			v->conns++;
		}
		pthread_mutex_unlock(&v->mu);
		if (full) {
			sn_view_deny(v, "proxy", IPPROTO_TCP, 0, NULL, 0, NULL, SN_RULE_NONE, full);
			free(c);
			sn_view_unref(v);
			rst_close(fd);
			continue;
		}
		c->w = w;
		c->view = v;
		c->family = family;
		if (family == AF_INET6) {
			memcpy(c->dst, ((struct sockaddr_in6 *)&od)->sin6_addr.s6_addr, 16);
			c->port = ntohs(((struct sockaddr_in6 *)&od)->sin6_port);
		} else {
			memcpy(c->dst, &((struct sockaddr_in *)&od)->sin_addr, 4);
			c->port = ntohs(((struct sockaddr_in *)&od)->sin_port);
		}
		c->cev = (struct evsrc){EV_CLIENT, fd};
		c->uev.fd = c->lev.fd = -1;
		c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
		c->state = ST_PEEK;
		c->deadline = sn_now_ms() + d->cfg.peek_timeout_ms;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->nconns++;
		watch(w, &c->cev);
		peek(c); /* the hello often came with the handshake's last ACK */
	}
}

/* Every open connection against its sandbox's snapshot in force. */
static void recheck(struct worker *w)
{
	for (struct pconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == ST_PEEK || c->state == ST_LOOKUP)
			continue; /* they decide with the newest snapshot anyway */
		uint64_t epoch;
		struct sn_snapshot *snap = sn_view_snap(c->view, &epoch);
		if (epoch != c->epoch) {
			c->epoch = epoch;
			int rule = SN_RULE_NONE;
			const char *reason = "";
			int v = decide(c, snap, &rule, &reason);
			if (v != D_ALLOW) {
				char why[160];
				snprintf(why, sizeof(why), "policy update: %s", reason);
				sn_snapshot_unref(snap);
				deny(c, rule, why);
				continue;
			}
		}
		sn_snapshot_unref(snap);
	}
}

static void on_wake(struct worker *w)
{
	uint64_t req;
	if (!sn_recheck_pending(&w->p->rc, (unsigned)(w - w->p->w), w->recheck_seen, &req))
		return;
	recheck(w);
	w->recheck_seen = req;
	sn_recheck_done(&w->p->rc, req);
}

static void on_timer(struct worker *w)
{
	struct sn_daemon *d = w->p->d;
	int64_t now = sn_now_ms(), idle = (int64_t)d->cfg.idle_timeout_s * 1000;
	sn_listener_tick(&w->lst4, now);
	sn_listener_tick(&w->lst6, now);
	for (struct pconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == ST_RELAY) {
			if (now - c->last > idle)
				conn_close(c, false);
			continue;
		}
		if (now < c->deadline)
			continue;
		if (c->state == ST_PEEK) {
			if (c->len == 0)
				decide_and_go(c); /* server-first: no name */
			else
				deny(c, SN_RULE_NONE,
				     "no complete ClientHello or request head before the deadline");
		} else if (c->state == ST_LOOKUP) {
			deny(c, SN_RULE_NONE, "strict names: the lookup of the name timed out");
		} else {
			conn_close(c, true); /* connect timed out */
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int64_t last_tick = sn_now_ms();
	w->lst4 = (struct sn_listener){w->ep, w->l4.fd, &w->l4, "transparent proxy"};
	w->lst6 = (struct sn_listener){w->ep, w->l6.fd, &w->l6, "transparent proxy"};
	while (!w->p->stop) {
		struct epoll_event ev[128];
		int n = epoll_wait(w->ep, ev, 128, 50);
		for (int i = 0; i < n; i++) {
			struct evsrc *e = ev[i].data.ptr;
			struct pconn *c;
			switch (e->kind) {
			case EV_LISTEN: accept_all(w, e); break;
			case EV_WAKE: on_wake(w); break;
			case EV_CLIENT:
				c = of(e, offsetof(struct pconn, cev));
				if (c->state == ST_PEEK)
					peek(c);
				else if (c->state == ST_RELAY)
					relay(c);
				else if (c->state != ST_DEAD &&
					 (ev[i].events & (EPOLLHUP | EPOLLERR)))
					conn_close(c, true); /* the client left while we decided */
				break;
			case EV_UPSTREAM:
				c = of(e, offsetof(struct pconn, uev));
				if (c->state == ST_CONNECT)
					upstream_ready(c);
				else if (c->state == ST_RELAY)
					relay(c);
				break;
			case EV_LOOKUP:
				c = of(e, offsetof(struct pconn, lev));
				if (c->state == ST_LOOKUP)
					on_lookup(c);
				break;
			}
		}
		/* connections closed in this batch may have had more events in it */
		while (w->dead) {
			struct pconn *c = w->dead;
			w->dead = c->next;
			free(c);
		}
		int64_t now = sn_now_ms();
		if (now - last_tick >= 50) {
			last_tick = now;
			on_timer(w);
		}
	}
	while (w->conns)
		conn_close(w->conns, true);
	while (w->dead) {
		struct pconn *c = w->dead;
		w->dead = c->next;
		free(c);
	}
	while (w->npipes--) {
		close(w->pipes[w->npipes][0]);
		close(w->pipes[w->npipes][1]);
	}
	return NULL;
}

int sn_eproxy_start(struct sn_daemon *d, struct sn_eproxy **out, char *err, size_t errsize)
{
	struct sn_eproxy *p = calloc(1, sizeof(*p));
	unsigned nw = sn_worker_count(d->cfg.workers);
	if (!p || !(p->w = calloc(nw, sizeof(*p->w)))) {
		free(p);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	p->d = d;
	/* a connection holds two to six descriptors (its pipes while bytes are in flight): by
	 * default the sandboxes together may take a quarter to three quarters of them */
	p->max_total = sn_fd_share(d->cfg.proxy_max_total, 8);
	sn_log(SN_LOG_INFO, "transparent proxy: at most %u connections (descriptor limit %u)",
	       p->max_total, sn_fd_limit());
	sn_dns_upstream_addr(d->cfg.dns_upstream, &p->upstream, &p->uplen);
	int rc = sn_recheck_init(&p->rc, nw) ? -EMFILE : 0;
	for (unsigned i = 0; i < nw && !rc; i++) {
		struct worker *w = &p->w[i];
		w->p = p;
		uint16_t port = d->cfg.proxy_port;
		w->l4 = (struct evsrc){EV_LISTEN, sn_listen(AF_INET, SOCK_STREAM, NULL, port, true)};
		w->l6 = (struct evsrc){EV_LISTEN,
				       d->cfg.has_pool6
					       ? sn_listen(AF_INET6, SOCK_STREAM, NULL, port, true)
					       : -1};
		w->wake = (struct evsrc){EV_WAKE, p->rc.fds[i]};
		p->nw = i + 1;
		int fds[] = {w->l4.fd, w->wake.fd, w->l6.fd};
		void *tags[] = {&w->l4, &w->wake, &w->l6};
		rc = sn_worker_start(&w->ep, &w->thread, fds, tags, d->cfg.has_pool6 ? 3 : 2,
				     worker_main, w);
	}
	if (rc) {
		snprintf(err, errsize, "egress proxy on port %u: %s", d->cfg.proxy_port,
			 strerror(-rc));
		sn_eproxy_stop(p);
		return rc;
	}
	*out = p;
	return 0;
}

void sn_eproxy_stop(struct sn_eproxy *p)
{
	if (!p)
		return;
	p->stop = true;
	for (unsigned i = 0; i < p->nw; i++) {
		struct worker *w = &p->w[i];
		sn_worker_stop(w->thread, w->ep, (int[]){w->l4.fd, w->l6.fd}, 2);
	}
	sn_recheck_free(&p->rc);
	free(p->w);
	free(p);
}

void sn_eproxy_recheck(struct sn_eproxy *p)
{
	sn_recheck_all(&p->rc);
}

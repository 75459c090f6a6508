/* The ingress proxy (DESIGN.md section 2): HTTP/1.1 from clients to services inside sandboxes,
 * each request checked against the sandbox's ingress rules. Daemon layer.
 *
 * Worker threads (one per core) each own an epoll set and a listening socket on --ingress-listen
 * (SO_REUSEPORT). The kernel's reuseport hash, not the load, picks the worker that accepts, so a
 * worker that serves two connections more than another hands a new one over to the least loaded
 * (a queue and its wake descriptor): keep-alive connections stay where they land.
 *
 * A client connection carries requests one after the other (keep-alive); each request's head is
 * parsed whole (src/proxy/http.c, at most 16 KiB: 431 beyond), routed by
 * "Host: <port>-<id>.<ingress-domain>" or X-Sandnet-Sandbox + X-Sandnet-Port, decided with the
 * sandbox's snapshot in force for the client address (the peer's, or for a --trusted-proxy peer
 * the rightmost X-Forwarded-For entry that is not a trusted proxy) and the port, rewritten (Host
 * per mask_request_host, X-Forwarded-For/-Proto/-Host appended) and sent to the sandbox; bodies
 * both ways are passed on as they come, with the parser finding where each message ends, never
 * buffered whole (a side is not read while the other side has 256 KiB waiting). The upstream
 * connection is kept for the next request to the same sandbox and port. An Upgrade answered with
 * 101 becomes a tunnel, re-checked at every policy update (closed when its port is now denied).
 *
 * Descriptors are registered once, edge-triggered; pump() does all the I/O a connection can do
 * until nothing moves, so events only say "look again". */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "link.h"
#include "http.h"

#define IO_CHUNK 65536
#define HIGH_WATER (256 * 1024) /* a side is not read while the other has this much waiting */
#define CONNECT_TIMEOUT_MS 5000

enum { EV_LISTEN, EV_CLIENT, EV_UPSTREAM, EV_WAKE };
enum { I_HEAD, I_CONNECT, I_EXCHANGE, I_TUNNEL, I_CLOSING, I_DEAD };

struct evsrc {
	int kind, fd;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct iworker;

struct iconn {
	struct evsrc cev, uev;
	struct iworker *w;
	int state;
	int family; /* the peer's */
	uint8_t peer[16];
	struct buf in, uin, uout, cout; /* from the client, from upstream, to upstream, to client */
	struct buf replay; /* a request sent on a kept upstream connection, until its answer starts */
	struct sn_http_msg req, resp;
	bool resp_head;   /* the response's head went to the client */
	bool c_eof, u_eof, u_shut, c_shut;
	bool c_readable, u_readable; /* an edge said so, and no short read since */
	bool c_hup, u_hup;           /* the peer shut its side: read to the end, short reads or not */
	bool up_reusable;
	bool tunnel; /* counted in the view's tunnels */
	bool counted;         /* in its client's count (--ingress-max-conns-per-client) */
	struct sn_view *view; /* the sandbox of the upstream connection */
	uint16_t port;
	int cfamily; /* the client address the rules saw (tunnels are re-checked with it) */
	bool allowed; /* the last request was allowed, at epoch, for port and this client */
	char peer_text[INET6_ADDRSTRLEN];
	uint8_t caddr[16];
	uint64_t epoch;
	int64_t head_start, deadline, last;
	struct iconn *prev, *next;
};

struct iworker {
	struct sn_ingress *g;
	int ep;
	struct evsrc listen, wake;
	struct sn_listener lst; /* listen, paused when out of descriptors */
	pthread_t thread;
	uint64_t recheck_seen;
	struct iconn *conns, *dead;
	atomic_uint nconns;      /* served here, and handed over to be */
	pthread_mutex_t mu;      /* guards incoming */
	struct iconn *incoming;  /* accepted by another worker, for this one */
	struct sn_http_head head; /* the head being handled (large: one per worker) */
	const struct sn_view *mask_view; /* the last mask_request_host read, and of which */
	uint64_t mask_epoch;
	char mask_id[SN_ID_MAX + 1];
	char mask[256];
	uint8_t scratch[IO_CHUNK];
	int64_t now; /* ms, read once per wake-up: what the connections' time stamps use */
	int64_t client_warned;
};

/* Connections of one client address, while it has any (--ingress-max-conns-per-client). */
struct client {
	struct client *next;
	int family;
	uint8_t addr[16]; /* IPv4, or an IPv6 /64, zero-padded */
	unsigned n;
};
#define CLIENT_BUCKETS 4096

struct sn_ingress {
	struct sn_daemon *d;
	struct iworker *w;
	unsigned nw;
	unsigned max_conns; /* client connections open at once, all workers' */
	unsigned per_client; /* of them from one address that is not a trusted proxy; 0: any */
	pthread_mutex_t cmu; /* guards clients */
	struct client *clients[CLIENT_BUCKETS];
	volatile bool stop;
	struct sn_recheck rc;
	int self_ns; /* the daemon's network namespace, which upstream sockets are made from */
};

/* Client connections open, all workers' (those being handed over included). */
static unsigned total_conns(const struct sn_ingress *g)
{
	unsigned n = 0;
	for (unsigned i = 0; i < g->nw; i++)
		n += atomic_load_explicit(&g->w[i].nconns, memory_order_relaxed);
	return n;
}

/* ---- connections per client ---- */

/* The slot of c's client: an IPv4 address, or an IPv6 /64 (what one host or site is given: its
 * other addresses count with it), which key receives zero-padded. */
static struct client **client_slot(struct sn_ingress *g, const struct iconn *c, uint8_t key[16])
{
	memset(key, 0, 16);
	memcpy(key, c->peer, c->family == AF_INET6 ? 8 : 4);
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)c->family;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	struct client **p = &g->clients[(h ^ h >> 32) % CLIENT_BUCKETS];
	while (*p && ((*p)->family != c->family || memcmp((*p)->addr, key, 16)))
		p = &(*p)->next;
	return p;
}

/* Counts c against its client's limit; false when the client is at it (or out of memory). */
static bool client_take(struct sn_ingress *g, struct iconn *c)
{
	const struct sn_config *cfg = &g->d->cfg;
	if (!g->per_client || sn_cidrs_contain(cfg->trusted, cfg->ntrusted, c->family, c->peer))
		return true;
	pthread_mutex_lock(&g->cmu);
	uint8_t key[16];
	struct client **p = client_slot(g, c, key);
	if (!*p && (*p = calloc(1, sizeof(**p)))) {
		(*p)->family = c->family;
		memcpy((*p)->addr, key, 16);
	}
	bool ok = *p && (*p)->n < g->per_client;
	if (ok)
		(*p)->n++;
	else if (*p && !(*p)->n) {
		free(*p);
		*p = NULL;
	}
	pthread_mutex_unlock(&g->cmu);
	c->counted = ok;
	return ok;
}

static void client_release(struct sn_ingress *g, struct iconn *c)
{
	if (!c->counted)
		return;
	c->counted = false;
	uint8_t key[16];
	pthread_mutex_lock(&g->cmu);
	struct client **p = client_slot(g, c, key);
	if (*p && --(*p)->n == 0) {
		struct client *gone = *p;
		*p = gone->next;
		free(gone);
	}
	pthread_mutex_unlock(&g->cmu);
}

/* ---- buffers ---- */

static bool buf_add(struct buf *b, const void *d, size_t n)
{
	if (!n) /* b->p may still be NULL */
		return true;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p)
			return false;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return true;
}

static bool buf_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* Drops the first n bytes. (An idle connection's empty buffers are freed by the timer, so a
 * busy connection does not allocate per request and an idle one holds no buffers.) */
static void buf_drop(struct buf *b, size_t n)
{
	if (n < b->len)
		memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){0};
}

/* Reads what fd has into b while b holds less than max; -1 on error, else bytes read (*eof set
 * when the peer closed). A short read means the socket is drained (*readable cleared): the next
 * bytes bring a new edge. Not once the peer has shut its side (hup): its last bytes and its end
 * came with one edge, and no other follows, so reading goes on until recv() returns 0. */
static ssize_t read_into(struct iworker *w, int fd, struct buf *b, size_t max, bool *eof,
			 bool *readable, bool hup)
{
	ssize_t total = 0;
	while (b->len < max) {
		size_t want = max - b->len < IO_CHUNK ? max - b->len : IO_CHUNK;
		if (!b->cap) {
			/* no buffer yet: a connection that has nothing to say gets none */
			ssize_t n = recv(fd, w->scratch, want, 0);
			if (n <= 0) {
				if (n < 0 && errno != EAGAIN)
					return -1;
				*eof |= n == 0;
				*readable = false;
				return total;
			}
			if (!buf_add(b, w->scratch, (size_t)n))
				return -1;
			total += n;
			if ((size_t)n < want && !hup) {
				*readable = false;
				return total;
			}
			continue;
		}
		if (b->cap - b->len < want) {
			size_t cap = b->cap ? b->cap : 16384;
			while (cap - b->len < want)
				cap *= 2;
			uint8_t *p = realloc(b->p, cap);
			if (!p)
				return -1;
			b->p = p;
			b->cap = cap;
		}
		ssize_t n = recv(fd, b->p + b->len, want, 0);
		if (n < 0) {
			if (errno != EAGAIN)
				return -1;
			*readable = false;
			return total;
		}
		if (n == 0) {
			*eof = true;
			*readable = false;
			return total;
		}
		b->len += (size_t)n;
		total += n;
		if ((size_t)n < want && !hup) {
			*readable = false;
			return total;
		}
	}
	return total;
}

/* Writes what b holds to fd; -1 on error, else bytes written. */
static ssize_t flush(int fd, struct buf *b)
{
	ssize_t total = 0;
	while (b->len) {
		ssize_t n = send(fd, b->p, b->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? total : -1;
		total += n;
		buf_drop(b, (size_t)n);
	}
	return total;
}

/* ---- connections ---- */

static void watch(struct iworker *w, struct evsrc *e)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = e};
	epoll_ctl(w->ep, EPOLL_CTL_ADD, e->fd, &ev);
}

static void close_upstream(struct iconn *c)
{
	if (c->uev.fd >= 0)
		close(c->uev.fd);
	c->uev.fd = -1;
	buf_free(&c->uin);
	buf_free(&c->uout);
	c->u_eof = c->u_shut = c->u_hup = false;
	c->up_reusable = false;
}

/* The sandbox c reaches: v (a reference the caller hands over) or none, counted in the view's
 * ingress connections, which a pause closes. */
static void conn_view(struct iconn *c, struct sn_view *v)
{
	if (c->view) {
		pthread_mutex_lock(&c->view->mu);
		c->view->ingress--;
		c->view->tunnels -= c->tunnel;
		pthread_mutex_unlock(&c->view->mu);
		sn_view_unref(c->view);
		c->tunnel = false;
	}
	c->view = v;
	if (v) {
		pthread_mutex_lock(&v->mu);
		v->ingress++;
		pthread_mutex_unlock(&v->mu);
	}
}

static void conn_close(struct iconn *c)
{
	if (c->state == I_DEAD)
		return;
	struct iworker *w = c->w;
	close(c->cev.fd);
	client_release(w->g, c);
	close_upstream(c);
	buf_free(&c->in);
	buf_free(&c->cout);
	buf_free(&c->replay);
	conn_view(c, NULL);
	atomic_fetch_sub_explicit(&w->nconns, 1, memory_order_relaxed);
	if (w->lst.paused_until && total_conns(w->g) < w->g->max_conns)
		sn_listener_resume(&w->lst); /* a slot, and a descriptor or two, are free */
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->state = I_DEAD;
	c->next = w->dead;
	w->dead = c;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

/* An answer of the proxy's own, then the connection closes: JSON, or HTML for a client that
 * prefers it; to a HEAD request, the head alone. Nothing is sent when part of an upstream
 * response already went out. */
static void respond(struct iconn *c, int status, bool html, const char *code, const char *fmt,
		    ...) __attribute__((format(printf, 5, 6)));
static void respond(struct iconn *c, int status, bool html, const char *code, const char *fmt, ...)
{
	close_upstream(c);
	if (c->resp_head) {
		conn_close(c);
		return;
	}
	char msg[512], body[1024], head[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message holds only ids, numbers and addresses: no quoting or escaping needed, but
	 * be safe with quotes and angle brackets anyway */
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\\' || *p == '<' || *p == '>' || (unsigned char)*p < 0x20)
			*p = '?';
	int n = html ? snprintf(body, sizeof(body),
				"<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body>"
				"<h1>%d %s</h1><p>%s</p></body></html>\n",
				status, reason_phrase(status), status, reason_phrase(status), msg)
		     : snprintf(body, sizeof(body),
				"{\"error\":{\"code\":\"%s\",\"path\":\"\",\"message\":\"%s\"}}\n", code,
				msg);
	snprintf(head, sizeof(head),
		 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n"
		 "\r\n",
		 status, reason_phrase(status), html ? "text/html; charset=utf-8" : "application/json",
		 n);
	buf_free(&c->cout);
	bool head_only = c->req.p.method == HTTP_HEAD; /* 0 (DELETE) before a request line */
	if (!buf_str(&c->cout, head) || (!head_only && !buf_add(&c->cout, body, (size_t)n))) {
		conn_close(c);
		return;
	}
	c->state = I_CLOSING;
}

/* ---- requests ---- */


/* "<port>-<id>.<domain>[.][:port]", any case */
static bool route_host(const struct sn_config *cfg, const struct sn_http_field *host, char *id,
		       size_t idsize, uint16_t *port)
{
	if (!host)
		return false;
	size_t n = host->vlen;
	const char *v = host->value;
	const char *colon = memchr(v, ':', n);
	if (colon)
		n = (size_t)(colon - v);
	if (n && v[n - 1] == '.') /* a fully qualified name */
		n--;
	size_t dl = strlen(cfg->ingress_domain);
	if (n < dl + 4 || v[n - dl - 1] != '.' || strncasecmp(v + n - dl, cfg->ingress_domain, dl))
		return false;
	n -= dl + 1;
	const char *dash = memchr(v, '-', n);
	if (!dash || dash == v || dash - v > 5)
		return false;
	unsigned long p = 0;
	for (const char *q = v; q < dash; q++) {
		if (*q < '0' || *q > '9')
			return false;
		p = p * 10 + (unsigned long)(*q - '0');
	}
	size_t il = n - (size_t)(dash + 1 - v);
	if (p == 0 || p > 65535 || il == 0 || il >= idsize)
		return false;
	for (size_t i = 0; i < il; i++)
		id[i] = (char)(dash[1 + i] >= 'A' && dash[1 + i] <= 'Z' ? dash[1 + i] + 32 : dash[1 + i]);
	id[il] = 0;
	*port = (uint16_t)p;
	return true;
}

static bool route_headers(const struct sn_http_head *h, char *id, size_t idsize, uint16_t *port)
{
	const struct sn_http_field *s = sn_http_field(h, "x-sandnet-sandbox"),
				   *p = sn_http_field(h, "x-sandnet-port");
	if (!s || !p || s->vlen == 0 || s->vlen >= idsize || p->vlen == 0 || p->vlen > 5)
		return false;
	unsigned long v = 0;
	for (size_t i = 0; i < p->vlen; i++) {
		if (p->value[i] < '0' || p->value[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(p->value[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	memcpy(id, s->value, s->vlen);
	id[s->vlen] = 0;
	*port = (uint16_t)v;
	return true;
}

/* Appends "Name: <old values>, <add>" (one field, the request's values joined). */
static bool append_list(struct buf *b, const struct sn_http_head *h, const char *name,
			const char *add, size_t addlen)
{
	bool ok = buf_str(b, name) && buf_str(b, ": ");
	for (size_t i = 0; i < h->nf && ok; i++)
		if (sn_http_field_is(&h->f[i], name))
			ok = buf_add(b, h->f[i].value, h->f[i].vlen) && buf_str(b, ", ");
	return ok && buf_add(b, add, addlen) && buf_str(b, "\r\n");
}

static bool prefers_html(const struct sn_http_head *h)
{
	const struct sn_http_field *a = sn_http_field(h, "accept");
	if (!a)
		return false;
	char v[256];
	size_t n = a->vlen < sizeof(v) - 1 ? a->vlen : sizeof(v) - 1;
	memcpy(v, a->value, n);
	v[n] = 0;
	return strstr(v, "text/html") && !strstr(v, "application/json");
}

static void feed_request_body(struct iconn *c);

/* The connection to the sandbox is made inside its namespace, to its own address: the kernel
 * carries it over the sandbox's loopback, so that the hop skips the veth, the host's netfilter
 * hooks and its connection tracking (docs/DAEMON.md, Ingress). */
static void start_upstream(struct iconn *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->port)};
	memcpy(&a.sin_addr, c->view->addr4, 4);
	char ns[SN_ID_MAX + 4];
	sn_sandbox_netns(ns, sizeof(ns), c->view->id);
	int fd = sn_netns_socket(ns, c->w->g->self_ns, AF_INET,
				 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		respond(c, 502, false, "bad_gateway", "no socket for the upstream connection: %s",
			strerror(-fd));
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		close(fd);
		respond(c, 502, false, "bad_gateway", "cannot connect to port %u of sandbox %s",
			c->port, c->view->id);
		return;
	}
	c->uev = (struct evsrc){EV_UPSTREAM, fd};
	c->u_readable = false;
	watch(c->w, &c->uev);
	c->state = I_CONNECT;
}

/* Idempotent and without a body (RFC 9110 9.2.2): a request that may go again when the server
 * closed a kept connection before answering it. */
static bool may_retry(const struct iconn *c, const struct sn_http_head *h)
{
	static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
	for (size_t i = 0; i < sizeof(idem) / sizeof(idem[0]); i++)
		if (strcmp(h->method, idem[i]) == 0)
			return !c->req.body;
	return false;
}

static void handle_request(struct iconn *c, size_t headlen)
{
	struct iworker *w = c->w;
	struct sn_daemon *d = w->g->d;
	const struct sn_config *cfg = &d->cfg;
	struct sn_http_head *h = &w->head;
	bool html = prefers_html(h);
	char id[SN_ID_MAX + 1];
	uint16_t port;
	const struct sn_http_field *host = sn_http_field(h, "host");
	size_t hosts = 0;
	for (size_t i = 0; i < h->nf; i++)
		hosts += sn_http_field_is(&h->f[i], "host");
	if (hosts > 1) { /* RFC 9112 3.2: a request with two Host fields is refused */
		respond(c, 400, html, "bad_request", "more than one Host header field");
		return;
	}
	/* a tunnel to the authority a CONNECT names is not what a gateway to sandboxes offers (its
	 * bytes would pass unread after the head) */
	if (c->req.p.method == HTTP_CONNECT) {
		respond(c, 501, html, "not_implemented", "the ingress does not forward CONNECT");
		return;
	}
	/* an absolute-form target names the host, whatever Host says, and goes on in origin form
	 * with a Host made from it (RFC 9112 3.2.2) */
	struct sn_http_field auth;
	const char *path = h->target;
	size_t plen = h->tlen;
	int form = sn_http_absolute_form(h->target, h->tlen, &auth, &path, &plen);
	if (form < 0) {
		respond(c, 400, html, "bad_request",
			"a request target in absolute form must be an http or https URI with a host "
			"and no userinfo");
		return;
	}
	if (form > 0)
		host = &auth;
	if (!route_headers(h, id, sizeof(id), &port) &&
	    !route_host(cfg, host, id, sizeof(id), &port)) {
		respond(c, 404, html, "not_found",
			"no sandbox named: use Host <port>-<sandbox-id>.%s or the headers "
			"X-Sandnet-Sandbox and X-Sandnet-Port",
			cfg->ingress_domain);
		return;
	}
	/* a kept-alive connection usually asks the same sandbox again (unless it was deleted
	 * since: a sandbox made again under its id is another) */
	struct sn_view *v = c->view && strcmp(c->view->id, id) == 0 &&
				    !__atomic_load_n(&c->view->dead, __ATOMIC_ACQUIRE)
				    ? sn_view_ref(c->view)
				    : sn_net_find_id(&d->net, id, strlen(id));
	if (!v) {
		respond(c, 404, html, "not_found", "no sandbox %s", id);
		return;
	}
	/* who is asking */
	int cfam = c->family;
	uint8_t caddr[16];
	memcpy(caddr, c->peer, 16);
	if (sn_cidrs_contain(cfg->trusted, cfg->ntrusted, c->family, c->peer) &&
	    !sn_http_xff_client(h, cfg->trusted, cfg->ntrusted, &cfam, caddr)) {
		sn_view_deny(v, "ingress", IPPROTO_TCP, 0, NULL, port, NULL, SN_RULE_NONE,
			     "malformed X-Forwarded-For from a trusted proxy");
		sn_view_unref(v);
		respond(c, 403, html, "forbidden",
			"X-Forwarded-For from a trusted proxy is not a list of addresses");
		return;
	}
	/* the decision of the last request stands while nothing it depends on changed: the
	 * sandbox's policy (its epoch), the port and the client */
	uint64_t epoch = __atomic_load_n(&v->epoch, __ATOMIC_ACQUIRE);
	bool paused = __atomic_load_n(&v->paused, __ATOMIC_ACQUIRE);
	struct sn_decision dn = {SN_VERDICT_ALLOW, SN_RULE_NONE, ""};
	bool same = c->allowed && c->view == v && c->epoch == epoch && c->port == port &&
		    c->cfamily == cfam && memcmp(c->caddr, caddr, 16) == 0;
	if (!same) {
		struct sn_snapshot *snap = sn_view_snap(v, &epoch);
		struct sn_query q = {.dir = SN_INGRESS, .family = cfam, .addr = caddr,
				     .port = port, .proto = SN_PROTO_TCP};
		dn = sn_decide(snap, &q);
		sn_snapshot_unref(snap);
	}
	if (cfg->control_port && port == cfg->control_port)
		dn.verdict = SN_VERDICT_ALLOW;
	c->allowed = false;
	if (dn.verdict != SN_VERDICT_ALLOW) {
		const char *why = dn.rule == SN_RULE_NONE ? dn.reason : "an ingress rule denies it";
		sn_view_deny(v, "ingress", IPPROTO_TCP, cfam, caddr, port, NULL, dn.rule, why);
		char a[INET6_ADDRSTRLEN];
		inet_ntop(cfam, caddr, a, sizeof(a));
		sn_view_unref(v);
		respond(c, 403, html, "forbidden", "%s may not reach port %u of sandbox %s: %s", a,
			port, id, why);
		return;
	}
	if (paused) {
		sn_view_unref(v);
		respond(c, 503, html, "paused", "sandbox %s is paused", id);
		return;
	}
	/* the head for the sandbox */
	char line[64];
	if (w->mask_view != v || w->mask_epoch != epoch || strcmp(w->mask_id, v->id) != 0) {
		sn_view_mask(v, w->mask, sizeof(w->mask));
		w->mask_view = v;
		w->mask_epoch = epoch;
		snprintf(w->mask_id, sizeof(w->mask_id), "%s", v->id);
	}
	const char *mask = w->mask;
	struct buf *o = &c->uout;
	size_t start = o->len;
	bool ok = buf_str(o, h->method) && buf_str(o, " ") &&
		  (form == 0 || (plen && path[0] == '/') || buf_str(o, "/")) &&
		  buf_add(o, path, plen);
	unsigned minor = c->req.p.http_minor; /* the major is 1 (else 505) */
	if (minor > 1)
		snprintf(line, sizeof(line), " HTTP/1.%u\r\n", minor);
	ok = ok && buf_str(o, minor > 1 ? line : minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n") &&
	     buf_str(o, "Host: ");
	if (mask[0]) {
		char ps[8];
		snprintf(ps, sizeof(ps), "%u", port);
		for (const char *m = mask; *m && ok;) {
			if (strncmp(m, "{port}", 6) == 0) {
				ok = buf_str(o, ps);
				m += 6;
			} else if (strncmp(m, "${PORT}", 7) == 0) {
				ok = buf_str(o, ps);
				m += 7;
			} else {
				ok = buf_add(o, m++, 1);
			}
		}
	} else if (host) {
		ok = ok && buf_add(o, host->value, host->vlen);
	}
	ok = ok && buf_str(o, "\r\n");
	static const char *const drop[] = {"host", "x-sandnet-sandbox", "x-sandnet-port",
					   "x-forwarded-for", "x-forwarded-proto",
					   "x-forwarded-host"};
	/* hop-by-hop fields stay here (RFC 9110 7.6.1), but for an upgrade's Upgrade; the proxy
	 * says what its own hop needs: the upgrade, the end of the connection the client asked for,
	 * or an HTTP/1.0 request's keep-alive */
	bool upgrade = c->req.upgrade && sn_http_field(h, "upgrade");
	for (size_t i = 0; i < h->nf && ok; i++) {
		const struct sn_http_field *f = &h->f[i];
		bool skip = sn_http_hop_by_hop(h, f) &&
			    !(upgrade && sn_http_field_is(f, "upgrade"));
		for (size_t k = 0; k < sizeof(drop) / sizeof(drop[0]) && !skip; k++)
			skip = sn_http_field_is(f, drop[k]);
		if (!skip)
			ok = buf_add(o, f->name, f->nlen) && buf_str(o, ": ") &&
			     buf_add(o, f->value, f->vlen) && buf_str(o, "\r\n");
	}
	if (upgrade)
		ok = ok && buf_str(o, "Connection: upgrade\r\n");
	else if (!c->req.keep_alive)
		ok = ok && buf_str(o, "Connection: close\r\n");
	else if (c->req.p.http_minor == 0)
		ok = ok && buf_str(o, "Connection: keep-alive\r\n");
	ok = ok && append_list(o, h, "X-Forwarded-For", c->peer_text, strlen(c->peer_text)) &&
	     append_list(o, h, "X-Forwarded-Proto", "http", 4) &&
	     (!host || append_list(o, h, "X-Forwarded-Host", host->value, host->vlen)) &&
	     buf_str(o, "\r\n");
	if (!ok) {
		sn_view_unref(v);
		conn_close(c);
		return;
	}
	buf_drop(&c->in, headlen);
	c->cfamily = cfam;
	memcpy(c->caddr, caddr, 16);
	c->epoch = epoch;
	c->allowed = true;
	c->head_start = 0;
	c->deadline = w->now + (int64_t)cfg->ingress_upstream_timeout_s * 1000;
	sn_http_init(&c->resp, true, strcmp(h->method, "HEAD") == 0);
	c->resp_head = false;
	/* the upstream connection: the one kept from the last request (process() let it go if the
	 * server closed it or sent something unasked since), or a new one */
	bool reuse = c->uev.fd >= 0 && c->up_reusable && c->view == v && c->port == port;
	c->replay.len = 0;
	if (reuse) {
		sn_view_unref(v);
		c->state = I_EXCHANGE;
		if (!start && may_retry(c, h))
			(void)buf_add(&c->replay, c->uout.p, c->uout.len); /* no memory: no retry */
	} else {
		struct buf keep = c->uout;
		c->uout = (struct buf){0};
		close_upstream(c);
		c->uout = keep;
		conn_view(c, v);
		c->port = port;
		/* counted, then the flags read again: a pause or a delete under way either finds
		 * this connection to cut, or is seen here */
		if (__atomic_load_n(&v->dead, __ATOMIC_ACQUIRE)) {
			respond(c, 404, html, "not_found", "no sandbox %s", id);
			return;
		}
		if (__atomic_load_n(&v->paused, __ATOMIC_ACQUIRE)) {
			respond(c, 503, html, "paused", "sandbox %s is paused", id);
			return;
		}
		start_upstream(c);
		if (c->state != I_CONNECT)
			return;
	}
	c->up_reusable = false;
	feed_request_body(c);
}

/* Passes the request body bytes that have come to the upstream buffer. */
static void feed_request_body(struct iconn *c)
{
	if (c->req.done && !c->req.lf_pending)
		return;
	static const uint8_t none[1];
	ssize_t n = sn_http_body(&c->req, c->in.p ? c->in.p : none, c->in.len);
	if (n < 0) {
		respond(c, 400, false, "bad_request", "malformed request body");
		return;
	}
	if (n > 0) {
		if (!buf_add(&c->uout, c->in.p, (size_t)n)) {
			conn_close(c);
			return;
		}
		buf_drop(&c->in, (size_t)n);
	}
	if (!c->req.done && c->c_eof) {
		conn_close(c); /* the client left in the middle of its body */
		return;
	}
}

/* ---- responses ---- */

/* The server closed the kept connection that a request went on, before a byte of an answer
 * (its keep-alive timeout crossed the request): the request goes again on a new connection,
 * once, as nginx and haproxy do. False when it cannot. */
static bool retry_fresh(struct iconn *c)
{
	if (!c->replay.len || c->uin.len || c->resp_head)
		return false;
	struct buf r = c->replay;
	c->replay = (struct buf){0};
	close_upstream(c);
	c->uout = r;
	start_upstream(c);
	return true;
}

/* Bytes for the client: sent at once when nothing waits before them, the rest queued. */
static bool to_client(struct iconn *c, const uint8_t *p, size_t n)
{
	if (!c->cout.len) {
		ssize_t k = send(c->cev.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno != EAGAIN)
			return false;
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			c->last = c->w->now;
		}
	}
	return !n || buf_add(&c->cout, p, n);
}

static void finish_exchange(struct iconn *c)
{
	bool keep = c->req.keep_alive && c->resp.keep_alive && !c->c_eof;
	c->up_reusable = c->resp.keep_alive && !c->uin.len && !c->u_eof;
	if (!c->up_reusable)
		close_upstream(c);
	if (!keep) {
		c->state = I_CLOSING;
		return;
	}
	c->state = I_HEAD;
	c->resp_head = false;
	c->head_start = c->in.len ? c->w->now : 0;
}

static void feed_response(struct iconn *c)
{
	struct iworker *w = c->w;
	/* heads pass unchanged: a head and the body bytes after it leave in one send */
	size_t ready = 0;
	if (c->uin.len)
		c->replay.len = 0; /* an answer has started */
	while (!c->resp_head) {
		if (ready == c->uin.len) {
			if (c->u_eof && !ready) {
				if (retry_fresh(c))
					return;
				respond(c, 502, false, "bad_gateway",
					"port %u of sandbox %s closed the connection without a response",
					c->port, c->view->id);
				return;
			}
			break;
		}
		ssize_t r = sn_http_head(&c->resp, &w->head, c->uin.p + ready, c->uin.len - ready);
		if (r == 0 && !c->u_eof)
			break;
		if (r <= 0) {
			if (ready) /* what came before went out: the client sees the cut */
				conn_close(c);
			else
				respond(c, 502, false, "bad_gateway",
					"port %u of sandbox %s sent no valid HTTP response", c->port,
					c->view->id);
			return;
		}
		ready += (size_t)r;
		int st = c->resp.status;
		if (st == 101 && c->req.upgrade) {
			if (!to_client(c, c->uin.p, ready)) {
				conn_close(c);
				return;
			}
			buf_drop(&c->uin, ready);
			c->state = I_TUNNEL;
			c->tunnel = true;
			pthread_mutex_lock(&c->view->mu);
			c->view->tunnels++;
			pthread_mutex_unlock(&c->view->mu);
			c->resp_head = true;
			return;
		}
		if (st >= 100 && st < 200) { /* 100 Continue and the like: the real one follows */
			bool head = c->resp.skip_body;
			sn_http_init(&c->resp, true, head);
			continue;
		}
		c->resp_head = true;
	}
	ssize_t n = 0;
	if (c->resp_head) {
		static const uint8_t none[1];
		n = sn_http_body(&c->resp, c->uin.len > ready ? c->uin.p + ready : none,
				 c->uin.len - ready);
		if (n == 0 && c->uin.len == ready && c->u_eof && !c->resp.done)
			n = sn_http_body(&c->resp, NULL, 0);
		if (n < 0) {
			conn_close(c); /* a malformed body: the client sees the cut */
			return;
		}
	}
	if (ready + (size_t)n) {
		if (!to_client(c, c->uin.p, ready + (size_t)n)) {
			conn_close(c);
			return;
		}
		buf_drop(&c->uin, ready + (size_t)n);
	}
	if (c->resp.done) {
		if (c->req.done)
			finish_exchange(c);
		else
			c->state = I_CLOSING; /* answered before the request ended: no reuse */
	}
}

/* ---- the pump ---- */

static bool want_client(const struct iconn *c)
{
	if (c->c_eof)
		return false;
	switch (c->state) {
	case I_HEAD: return c->in.len < SN_HTTP_HEAD_MAX;
	case I_CONNECT:
	case I_EXCHANGE: return !c->req.done && c->uout.len < HIGH_WATER && c->in.len < HIGH_WATER;
	case I_TUNNEL: return c->uout.len < HIGH_WATER;
	}
	return false;
}

static void process(struct iconn *c)
{
	struct iworker *w = c->w;
	switch (c->state) {
	case I_HEAD: {
		/* between requests: a kept connection that the server closed, or sent something
		 * unasked on, will not serve another; let it go now, not at the next request */
		if (c->uev.fd >= 0 && (c->u_eof || c->u_hup || c->uin.len))
			close_upstream(c);
		if (!c->in.len) {
			if (c->c_eof)
				conn_close(c);
			return;
		}
		if (!c->head_start)
			c->head_start = w->now;
		sn_http_init(&c->req, false, false);
		ssize_t r = sn_http_head(&c->req, &w->head, c->in.p, c->in.len);
		if (r == 0) {
			if (c->c_eof)
				conn_close(c);
			return;
		}
		if (r < 0) {
			if (r == -E2BIG)
				respond(c, 431, false, "header_too_large",
					"the request head is over %d bytes or %d fields",
					SN_HTTP_HEAD_MAX, SN_HTTP_FIELDS_MAX);
			else if (r == -EPROTONOSUPPORT)
				respond(c, 505, false, "http_version_not_supported",
					"the ingress speaks HTTP/1.0 and HTTP/1.1");
			else
				respond(c, 400, false, "bad_request", "malformed request");
			return;
		}
		handle_request(c, (size_t)r);
		return;
	}
	case I_CONNECT: feed_request_body(c); return;
	case I_EXCHANGE:
		feed_request_body(c);
		if (c->state == I_EXCHANGE)
			feed_response(c);
		return;
	case I_TUNNEL:
		if (c->in.len) {
			if (!buf_add(&c->uout, c->in.p, c->in.len)) {
				conn_close(c);
				return;
			}
			buf_drop(&c->in, c->in.len);
		}
		if (c->uin.len) {
			if (!buf_add(&c->cout, c->uin.p, c->uin.len)) {
				conn_close(c);
				return;
			}
			buf_drop(&c->uin, c->uin.len);
		}
		if (c->c_eof && !c->uout.len && !c->u_shut && c->uev.fd >= 0) {
			shutdown(c->uev.fd, SHUT_WR);
			c->u_shut = true;
		}
		if (c->u_eof && !c->cout.len && !c->c_shut) {
			shutdown(c->cev.fd, SHUT_WR);
			c->c_shut = true;
		}
		if (c->u_shut && c->c_shut)
			conn_close(c);
		return;
	case I_CLOSING:
		/* a lingering close: our answer out, our side shut, then what the client still
		 * sends is read and dropped until it closes (closing with unread bytes would
		 * reset the connection, and the client could lose the answer) */
		if (c->cout.len)
			return;
		if (!c->c_shut) {
			shutdown(c->cev.fd, SHUT_WR);
			c->c_shut = true;
		}
		for (;;) {
			ssize_t n = recv(c->cev.fd, w->scratch, sizeof(w->scratch), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				conn_close(c);
				return;
			}
			if (n < 0)
				return;
		}
	}
}

static void pump(struct iconn *c)
{
	struct iworker *w = c->w;
	for (int rounds = 0; rounds < 64 && c->state != I_DEAD; rounds++) {
		ssize_t moved = 0, n;
		if (c->c_readable && want_client(c)) {
			size_t max = c->state == I_HEAD ? SN_HTTP_HEAD_MAX + 1 : HIGH_WATER;
			bool eof = c->c_eof;
			if ((n = read_into(w, c->cev.fd, &c->in, max, &c->c_eof, &c->c_readable,
					   c->c_hup)) < 0) {
				conn_close(c);
				return;
			}
			moved += n + (c->c_eof != eof); /* an end is news too */
		}
		int before = c->state;
		size_t ib = c->in.len, ub = c->uin.len;
		process(c);
		if (c->state == I_DEAD)
			return;
		moved += c->state != before || c->in.len != ib || c->uin.len != ub;
		bool up = c->uev.fd >= 0 && c->state != I_CONNECT;
		if (up && c->uout.len) {
			if ((n = flush(c->uev.fd, &c->uout)) < 0) {
				if (retry_fresh(c))
					continue;
				respond(c, 502, false, "bad_gateway",
					"port %u of sandbox %s closed the connection", c->port,
					c->view->id);
				continue;
			}
			moved += n;
		}
		if (up && c->u_readable && !c->u_eof && c->cout.len < HIGH_WATER) {
			bool eof = c->u_eof;
			if ((n = read_into(w, c->uev.fd, &c->uin, HIGH_WATER, &c->u_eof,
					   &c->u_readable, c->u_hup)) < 0) {
				c->u_eof = true;
				n = 1;
			}
			moved += n + (c->u_eof != eof);
		}
		if (c->cout.len) {
			if ((n = flush(c->cev.fd, &c->cout)) < 0) {
				conn_close(c);
				return;
			}
			moved += n;
		}
		if (moved)
			c->last = c->w->now;
		else
			break;
	}
}

static void on_upstream(struct iconn *c)
{
	if (c->state == I_CONNECT) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(c->uev.fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			if (err == EINPROGRESS || err == EALREADY)
				return;
			respond(c, 502, false, "bad_gateway",
				"nothing listens on port %u of sandbox %s (%s)", c->port, c->view->id,
				strerror(err));
			pump(c);
			return;
		}
		c->state = I_EXCHANGE;
	}
	pump(c);
}

/* ---- the worker ---- */

/* Starts serving a connection accepted here or handed over (counted in w->nconns already). */
static void adopt(struct iworker *w, struct iconn *c)
{
	c->w = w;
	c->state = I_HEAD;
	c->c_readable = true;
	c->last = w->now;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	watch(w, &c->cev);
	pump(c);
}

/* The worker a new connection should go to: w, unless another serves two fewer. */
static struct iworker *least_loaded(struct iworker *w)
{
	struct iworker *best = w;
	unsigned bn = atomic_load_explicit(&w->nconns, memory_order_relaxed);
	for (unsigned i = 0; i < w->g->nw; i++) {
		unsigned n = atomic_load_explicit(&w->g->w[i].nconns, memory_order_relaxed);
		if (n + 2 <= bn) {
			best = &w->g->w[i];
			bn = n + 1;
		}
	}
	return best;
}

static void hand_over(struct iworker *to, struct iconn *c)
{
	pthread_mutex_lock(&to->mu);
	c->next = to->incoming;
	to->incoming = c;
	pthread_mutex_unlock(&to->mu);
	uint64_t one = 1;
	if (write(to->wake.fd, &one, sizeof(one)) < 0) {
		/* the counter is full: the worker has a wake-up pending anyway */
	}
}

static void accept_all(struct iworker *w)
{
	for (;;) {
		if (total_conns(w->g) >= w->g->max_conns) {
			/* the rest of the daemon keeps its descriptors; the clients past the limit
			 * wait in the kernel's queue until connections close */
			char why[128];
			snprintf(why, sizeof(why),
				 "%u connections open, the most --ingress-max-conns allows",
				 w->g->max_conns);
			sn_listener_pause(&w->lst, why);
			return;
		}
		struct sockaddr_storage ss;
		int fd = sn_accept(&w->lst, &ss);
		if (fd < 0)
			return;
		struct iconn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->cev = (struct evsrc){EV_CLIENT, fd};
		c->uev.fd = -1;
		c->family = ss.ss_family;
		if (ss.ss_family == AF_INET6) {
			memcpy(c->peer, ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr, 16);
			sn_addr_unmap(&c->family, c->peer); /* a v4 client on a dual-stack socket */
		} else {
			memcpy(c->peer, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		}
		inet_ntop(c->family, c->peer, c->peer_text, sizeof(c->peer_text));
		if (!client_take(w->g, c)) {
			/* a reset: the client is told at once, and no slot waits for it */
			struct linger l = {1, 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(fd);
			if (!w->client_warned || sn_now_ms() - w->client_warned >= 10000) {
				w->client_warned = sn_now_ms();
				sn_log(SN_LOG_WARN,
				       "ingress: %s has %u connections open, the most "
				       "--ingress-max-conns-per-client allows: refused",
				       c->peer_text, w->g->per_client);
			}
			free(c);
			continue;
		}
		struct iworker *to = least_loaded(w);
		atomic_fetch_add_explicit(&to->nconns, 1, memory_order_relaxed);
		if (to == w)
			adopt(w, c);
		else
			hand_over(to, c);
	}
}

/* Takes the connections other workers handed over; with drop, closes them instead (stopping). */
static void take_incoming(struct iworker *w, bool drop)
{
	pthread_mutex_lock(&w->mu);
	struct iconn *c = w->incoming;
	w->incoming = NULL;
	pthread_mutex_unlock(&w->mu);
	while (c) {
		struct iconn *next = c->next;
		c->next = NULL;
		if (drop) {
			close(c->cev.fd);
			client_release(w->g, c);
			free(c);
		} else {
			adopt(w, c);
		}
		c = next;
	}
}

/* A tunnel against its sandbox's policy in force, when that changed; false when it closed. */
static bool recheck_tunnel(struct iconn *c)
{
	const struct sn_config *cfg = &c->w->g->d->cfg;
	uint64_t epoch;
	struct sn_snapshot *snap = sn_view_snap(c->view, &epoch);
	bool open = true;
	if (epoch != c->epoch) {
		c->epoch = epoch;
		struct sn_query q = {.dir = SN_INGRESS, .family = c->cfamily, .addr = c->caddr,
				     .port = c->port, .proto = SN_PROTO_TCP};
		struct sn_decision dn = sn_decide(snap, &q);
		bool control = cfg->control_port && c->port == cfg->control_port;
		if (dn.verdict != SN_VERDICT_ALLOW && !control) {
			sn_view_deny(c->view, "ingress", IPPROTO_TCP, c->cfamily, c->caddr, c->port,
				     NULL, dn.rule, "policy update: the tunnel's port is now denied");
			conn_close(c);
			open = false;
		}
	}
	sn_snapshot_unref(snap);
	return open;
}

/* A paused sandbox's network is cut (the host's rules drop what it sends), and a deleted one's
 * goes; so does the hop to it, which the host's rules do not see: a kept upstream connection is
 * let go (the client's next request gets a 503 or a 404), any other connection with an exchange
 * or a tunnel under way is closed. */
static void cut_hop(struct iconn *c)
{
	if (c->state == I_HEAD)
		close_upstream(c);
	else if (c->uev.fd >= 0 || c->state == I_TUNNEL)
		conn_close(c);
}

static void on_wake(struct iworker *w)
{
	uint64_t req;
	bool recheck = sn_recheck_pending(&w->g->rc, (unsigned)(w - w->g->w), w->recheck_seen, &req);
	/* after the wake counter was read: a connection queued later wakes this worker again */
	take_incoming(w, false);
	if (!recheck)
		return;
	for (struct iconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->view && (__atomic_load_n(&c->view->paused, __ATOMIC_ACQUIRE) ||
				__atomic_load_n(&c->view->dead, __ATOMIC_ACQUIRE)))
			cut_hop(c);
		else if (c->state == I_TUNNEL)
			recheck_tunnel(c);
	}
	w->recheck_seen = req;
	sn_recheck_done(&w->g->rc, req);
}

static void on_timer(struct iworker *w)
{
	const struct sn_config *cfg = &w->g->d->cfg;
	int64_t now = sn_now_ms();
	sn_listener_tick(&w->lst, now);
	int64_t idle = (int64_t)cfg->ingress_idle_timeout_s * 1000;
	for (struct iconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == I_HEAD && !c->in.len && now - c->last > 1000) {
			/* idle between requests: give the buffers back */
			if (c->in.cap)
				buf_free(&c->in);
			if (c->cout.cap && !c->cout.len)
				buf_free(&c->cout);
			if (c->uin.cap && !c->uin.len)
				buf_free(&c->uin);
			if (c->uout.cap && !c->uout.len)
				buf_free(&c->uout);
			if (c->replay.cap && !c->replay.len)
				buf_free(&c->replay);
		}
		switch (c->state) {
		case I_HEAD:
			if (c->head_start &&
			    now - c->head_start > (int64_t)cfg->ingress_header_timeout_s * 1000) {
				respond(c, 408, false, "timeout",
					"the request head did not arrive within %u s",
					cfg->ingress_header_timeout_s);
				pump(c);
			} else if (!c->head_start && now - c->last > idle) {
				conn_close(c);
			}
			break;
		case I_CONNECT:
		case I_EXCHANGE:
			if (!c->resp_head && now > c->deadline) {
				respond(c, 504, false, "gateway_timeout",
					"port %u of sandbox %s did not answer within %u s", c->port,
					c->view->id, cfg->ingress_upstream_timeout_s);
				pump(c);
			} else if (c->resp_head && now - c->last > idle) {
				conn_close(c);
			}
			break;
		case I_TUNNEL:
			if (recheck_tunnel(c) && now - c->last > idle)
				conn_close(c);
			break;
		case I_CLOSING:
			if (now - c->last > 2000)
				conn_close(c);
			break;
		}
	}
}

static void *worker_main(void *arg)
{
	struct iworker *w = arg;
	int64_t tick = w->now = sn_now_ms();
	w->lst = (struct sn_listener){w->ep, w->listen.fd, &w->listen, "ingress"};
	/* Throughput first: a worker woken by a client's or a sandbox's packet does not preempt the
	 * thread that sent it, so both do more before a switch (docs/BENCHMARKS.md, bench/ingress). */
	struct sched_param sp = {0};
	int err = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	if (err)
		sn_log(SN_LOG_DEBUG, "ingress: SCHED_BATCH: %s", strerror(err));
	while (!w->g->stop) {
		struct epoll_event ev[128];
		int n = epoll_wait(w->ep, ev, 128, 100);
		w->now = sn_now_ms();
		for (int i = 0; i < n; i++) {
			struct evsrc *e = ev[i].data.ptr;
			if (e->kind == EV_LISTEN) {
				accept_all(w);
				continue;
			}
			if (e->kind == EV_WAKE) {
				on_wake(w);
				continue;
			}
			struct iconn *c = e->kind == EV_CLIENT
						  ? (struct iconn *)((char *)e - offsetof(struct iconn, cev))
						  : (struct iconn *)((char *)e - offsetof(struct iconn, uev));
			if (c->state == I_DEAD)
				continue;
			bool in = ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
			bool hup = ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
			if (e->kind == EV_UPSTREAM) {
				c->u_readable |= in;
				c->u_hup |= hup;
				on_upstream(c);
			} else {
				c->c_readable |= in;
				c->c_hup |= hup;
				pump(c);
			}
		}
		while (w->dead) {
			struct iconn *c = w->dead;
			w->dead = c->next;
			free(c);
		}
		if (w->now - tick >= 100) {
			tick = w->now;
			on_timer(w);
		}
	}
	take_incoming(w, true);
	while (w->conns)
		conn_close(w->conns);
	while (w->dead) {
		struct iconn *c = w->dead;
		w->dead = c->next;
		free(c);
	}
	return NULL;
}

int sn_ingress_start(struct sn_daemon *d, struct sn_ingress **out, char *err, size_t errsize)
{
	struct sn_ingress *g = calloc(1, sizeof(*g));
	unsigned nw = sn_worker_count(d->cfg.workers);
	if (!g || !(g->w = calloc(nw, sizeof(*g->w)))) {
		free(g);
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	g->d = d;
	g->self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (g->self_ns < 0) {
		int e = errno;
		snprintf(err, errsize, "ingress proxy: its own network namespace: %s", strerror(e));
		free(g->w);
		free(g);
		return -e;
	}
	/* a connection holds two descriptors (the client's, the sandbox's): by default the ingress
	 * may take half of the daemon's */
	g->max_conns = sn_fd_share(d->cfg.ingress_max_conns, 4);
	if ((uint64_t)g->max_conns * 2 > sn_fd_limit())
		sn_log(SN_LOG_WARN,
		       "ingress: --ingress-max-conns %u connections may take all of the %u "
		       "descriptors the daemon has",
		       g->max_conns, sn_fd_limit());
	sn_log(SN_LOG_INFO, "ingress: at most %u connections (descriptor limit %u)", g->max_conns,
	       sn_fd_limit());
	g->per_client = d->cfg.ingress_max_conns_per_client;
	pthread_mutex_init(&g->cmu, NULL);
	int rc = sn_recheck_init(&g->rc, nw) ? -EMFILE : 0;
	for (unsigned i = 0; i < nw && !rc; i++) {
		struct iworker *w = &g->w[i];
		w->g = g;
		pthread_mutex_init(&w->mu, NULL);
		int fam = strchr(d->cfg.ingress_addr, ':') ? AF_INET6 : AF_INET;
		w->listen = (struct evsrc){EV_LISTEN, sn_listen(fam, SOCK_STREAM, d->cfg.ingress_addr,
								d->cfg.ingress_port, true)};
		w->wake = (struct evsrc){EV_WAKE, g->rc.fds[i]};
		g->nw = i + 1;
		rc = sn_worker_start(&w->ep, &w->thread, (int[]){w->listen.fd, w->wake.fd},
				     (void *[]){&w->listen, &w->wake}, 2, worker_main, w);
	}
	if (rc) {
		snprintf(err, errsize, "ingress proxy on %s:%u: %s", d->cfg.ingress_addr,
			 d->cfg.ingress_port, strerror(-rc));
		sn_ingress_stop(g);
		return rc;
	}
	*out = g;
	return 0;
}

void sn_ingress_stop(struct sn_ingress *g)
{
	if (!g)
		return;
	g->stop = true;
	for (unsigned i = 0; i < g->nw; i++) {
		struct iworker *w = &g->w[i];
		sn_worker_stop(w->thread, w->ep, &w->listen.fd, 1);
	}
	for (unsigned i = 0; i < g->nw; i++) { /* handed over after their worker stopped */
		take_incoming(&g->w[i], true);
		pthread_mutex_destroy(&g->w[i].mu);
	}
	for (size_t b = 0; b < CLIENT_BUCKETS; b++) /* the connections that held them are gone */
		for (struct client *cl = g->clients[b], *next; cl; cl = next) {
			next = cl->next;
			free(cl);
		}
	pthread_mutex_destroy(&g->cmu);
	sn_recheck_free(&g->rc);
	close(g->self_ns);
	free(g->w);
	free(g);
}

void sn_ingress_recheck(struct sn_ingress *g)
{
	sn_recheck_all(&g->rc);
}

/* Sandbox views and the sandboxes by address: see net.h. Daemon layer. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT, accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "net.h"

int64_t sn_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t sn_wall_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

struct sn_view *sn_view_new(const char *id, uint32_t index, const uint8_t addr4[4],
			    const uint8_t *addr6, struct sn_snapshot *snap, uint64_t gen,
			    bool paused)
{
	struct sn_view *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	atomic_init(&v->refs, 1);
	snprintf(v->id, sizeof(v->id), "%s", id);
	v->index = index;
	memcpy(v->addr4, addr4, 4);
	if (addr6) {
		memcpy(v->addr6, addr6, 16);
		v->has6 = true;
	}
	pthread_mutex_init(&v->mu, NULL);
	v->snap = sn_snapshot_ref(snap);
	v->gen = gen;
	v->paused = paused;
	v->next_seq = 1;
	return v;
}

struct sn_view *sn_view_ref(struct sn_view *v)
{
	atomic_fetch_add(&v->refs, 1);
	return v;
}

void sn_view_unref(struct sn_view *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	sn_snapshot_unref(v->snap);
	for (size_t i = 0; i < v->nlearned; i++)
		free(v->learned[i].name);
	free(v->learned);
	free(v->ring);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

struct sn_snapshot *sn_view_snap(struct sn_view *v, uint64_t *epoch)
{
	pthread_mutex_lock(&v->mu);
	struct sn_snapshot *s = sn_snapshot_ref(v->snap);
	if (epoch)
		*epoch = v->epoch;
	pthread_mutex_unlock(&v->mu);
	return s;
}

void sn_view_publish(struct sn_view *v, struct sn_snapshot *snap, const char *mask, uint64_t gen,
		     bool paused)
{
	sn_snapshot_ref(snap);
	pthread_mutex_lock(&v->mu);
	snprintf(v->mask, sizeof(v->mask), "%s", mask ? mask : "");
	struct sn_snapshot *old = v->snap;
	v->snap = snap;
	v->gen = gen;
	v->paused = paused;
	v->epoch++;
	pthread_mutex_unlock(&v->mu);
	sn_snapshot_unref(old);
}

void sn_view_mask(struct sn_view *v, char *buf, size_t size)
{
	pthread_mutex_lock(&v->mu);
	snprintf(buf, size, "%s", v->mask);
	pthread_mutex_unlock(&v->mu);
}

void sn_view_deny(struct sn_view *v, const char *source, uint8_t proto, int family,
		  const uint8_t *addr, uint16_t port, const char *name, int rule,
		  const char *reason)
{
	pthread_mutex_lock(&v->mu);
	if (!v->ring)
		v->ring = calloc(SN_DENIALS, sizeof(*v->ring));
	if (v->ring) {
		struct sn_denial *e = &v->ring[v->next_seq % SN_DENIALS];
		e->seq = v->next_seq++;
		e->time_ms = sn_wall_ms();
		e->source = source;
		e->proto = proto;
		e->family = addr ? family : 0;
		if (addr)
			memcpy(e->addr, addr, family == AF_INET6 ? 16 : 4);
		e->port = port;
		snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
		e->rule = rule;
		snprintf(e->reason, sizeof(e->reason), "%s", reason);
	}
	pthread_mutex_unlock(&v->mu);
}

bool sn_bucket_take(struct sn_bucket *b, unsigned rate, int64_t now_ms)
{
	int64_t add = b->at_ms ? (now_ms - b->at_ms) * rate / 1000 : rate;
	if (add > 0) {
		uint64_t t = (uint64_t)b->tokens + (uint64_t)add;
		b->tokens = t > rate ? rate : (unsigned)t;
		b->at_ms = now_ms;
	}
	if (!b->tokens)
		return false;
	b->tokens--;
	return true;
}

/* -1 when a line about v may not go out now, else how many were kept out before it. */
static long log_gate(struct sn_view *v, int64_t now_ms)
{
	long r = -1;
	pthread_mutex_lock(&v->mu);
	if (sn_bucket_take(&v->log_rate, SN_VIEW_LOG_RATE, now_ms)) {
		r = (long)v->log_dropped;
		v->log_dropped = 0;
	} else {
		v->log_dropped++;
	}
	pthread_mutex_unlock(&v->mu);
	return r;
}

void sn_view_log(struct sn_view *v, enum sn_log_level level, const char *fmt, ...)
{
	if (level < sn_log_threshold)
		return;
	long dropped = log_gate(v, sn_now_ms());
	if (dropped < 0)
		return;
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (dropped)
		sn_log(level, "%s (and %ld lines about sandbox %s kept out of the log before it: more "
			      "than %d a second)",
		       msg, dropped, v->id, SN_VIEW_LOG_RATE);
	else
		sn_log(level, "%s", msg);
}

static const char *proto_name(uint8_t p)
{
	switch (p) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: return "icmp";
	}
	return "other";
}

json_t *sn_view_denials(struct sn_view *v, uint64_t since)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	pthread_mutex_lock(&v->mu);
	uint64_t first = v->next_seq > SN_DENIALS ? v->next_seq - SN_DENIALS : 1;
	if (since + 1 > first)
		first = since + 1;
	for (uint64_t s = first; v->ring && s < v->next_seq; s++) {
		const struct sn_denial *e = &v->ring[s % SN_DENIALS];
		char a[INET6_ADDRSTRLEN] = "";
		if (e->family)
			inet_ntop(e->family, e->addr, a, sizeof(a));
		time_t sec = (time_t)(e->time_ms / 1000);
		struct tm tm;
		char ts[40];
		gmtime_r(&sec, &tm);
		size_t k = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ts + k, sizeof(ts) - k, ".%03dZ", (int)(e->time_ms % 1000));
		json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "seq",
				      (json_int_t)e->seq, "time", ts, "source", e->source,
				      "protocol", proto_name(e->proto), "address", a, "port",
				      (int)e->port, "name", e->name, "reason", e->reason);
		if (o) {
			json_object_set_new(o, "rule",
					    e->rule == SN_RULE_NONE ? json_null()
								    : json_integer(e->rule));
			if (!e->family)
				json_object_set_new(o, "address", json_null());
			if (!e->name[0])
				json_object_set_new(o, "name", json_null());
			json_array_append_new(arr, o);
		}
	}
	pthread_mutex_unlock(&v->mu);
	return arr;
}

static bool same_addr(int family, const uint8_t *a, const struct sn_learned_rec *r)
{
	return r->family == family && memcmp(a, r->addr, family == AF_INET6 ? 16 : 4) == 0;
}

/* Drops expired records (under mu). */
static void prune(struct sn_view *v, int64_t now)
{
	size_t w = 0;
	for (size_t i = 0; i < v->nlearned; i++) {
		if (v->learned[i].expires_ms <= now) {
			free(v->learned[i].name);
			continue;
		}
		v->learned[w++] = v->learned[i];
	}
	v->nlearned = w;
}

/* The record of name at addr, or NULL (under mu). */
static struct sn_learned_rec *find_rec(struct sn_view *v, const char *name, int family,
				       const uint8_t *addr)
{
	for (size_t k = 0; k < v->nlearned; k++)
		if (same_addr(family, addr, &v->learned[k]) && strcmp(v->learned[k].name, name) == 0)
			return &v->learned[k];
	return NULL;
}

void sn_view_learn(struct sn_view *v, const struct sn_dns_answer *a, const int64_t *ttl_ms,
		   int64_t now)
{
	pthread_mutex_lock(&v->mu);
	for (size_t i = 0; i < a->naddrs; i++) {
		const struct sn_dns_addr *d = &a->addrs[i];
		int64_t exp = now + ttl_ms[i];
		struct sn_learned_rec *r = find_rec(v, a->names[0], d->family, d->addr);
		if (r) {
			if (r->expires_ms < exp)
				r->expires_ms = exp;
			continue;
		}
		if (v->nlearned == v->caplearned)
			prune(v, now);
		if (v->nlearned == v->caplearned) {
			size_t cap = v->caplearned ? v->caplearned * 2 : 16;
			if (cap > SN_LEARNED_MAX) {
				/* full: the record closest to expiry makes room */
				size_t oldest = 0;
				for (size_t k = 1; k < v->nlearned; k++)
					if (v->learned[k].expires_ms < v->learned[oldest].expires_ms)
						oldest = k;
				free(v->learned[oldest].name);
				v->learned[oldest] = v->learned[--v->nlearned];
			} else {
				void *p = realloc(v->learned, cap * sizeof(*v->learned));
				if (!p)
					break;
				v->learned = p;
				v->caplearned = cap;
			}
		}
		char *name = strdup(a->names[0]);
		if (!name)
			break;
		r = &v->learned[v->nlearned++];
		r->name = name;
		r->family = d->family;
		memcpy(r->addr, d->addr, 16);
		r->expires_ms = exp;
	}
	pthread_mutex_unlock(&v->mu);
}

bool sn_view_knows(struct sn_view *v, const struct sn_dns_answer *a, const int64_t *ttl_ms,
		   int64_t now)
{
	bool yes = true;
	pthread_mutex_lock(&v->mu);
	for (size_t i = 0; i < a->naddrs && yes; i++) {
		const struct sn_learned_rec *r =
			find_rec(v, a->names[0], a->addrs[i].family, a->addrs[i].addr);
		yes = r && r->expires_ms - now >= ttl_ms[i] / 2;
	}
	pthread_mutex_unlock(&v->mu);
	return yes;
}

bool sn_view_resolves(struct sn_view *v, const char *name, int family, const uint8_t *addr,
		      int64_t now)
{
	pthread_mutex_lock(&v->mu);
	const struct sn_learned_rec *r = find_rec(v, name, family, addr);
	bool yes = r && r->expires_ms > now;
	pthread_mutex_unlock(&v->mu);
	return yes;
}

size_t sn_view_names_for(struct sn_view *v, int family, const uint8_t *addr, int64_t now,
			 char (*names)[SN_DNS_NAME_MAX], size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&v->mu);
	for (size_t k = 0; k < v->nlearned && n < max; k++) {
		const struct sn_learned_rec *r = &v->learned[k];
		if (r->expires_ms > now && same_addr(family, addr, r))
			snprintf(names[n++], SN_DNS_NAME_MAX, "%s", r->name);
	}
	pthread_mutex_unlock(&v->mu);
	return n;
}

static int learned_cmp(const void *a, const void *b)
{
	const struct sn_nft_learned *x = a, *y = b;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

int sn_view_learned_for(struct sn_view *v, const struct sn_snapshot *snap, int64_t now,
			struct sn_nft_learned **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	int rc = 0;
	pthread_mutex_lock(&v->mu);
	prune(v, now);
	for (size_t k = 0; k < v->nlearned && !rc; k++) {
		const struct sn_learned_rec *r = &v->learned[k];
		uint32_t rules[64];
		int m = sn_snapshot_name_rules(snap, r->name, rules, 64);
		for (int i = 0; i < m; i++) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 16;
				void *p = realloc(*out, cap * sizeof(**out));
				if (!p) {
					rc = -1;
					break;
				}
				*out = p;
			}
			struct sn_nft_learned *l = &(*out)[(*n)++];
			l->rule = rules[i];
			l->family = r->family;
			memcpy(l->addr, r->addr, 16);
			l->timeout_s = (uint32_t)((r->expires_ms - now + 999) / 1000);
		}
	}
	pthread_mutex_unlock(&v->mu);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
		return rc;
	}
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), learned_cmp);
	return 0;
}

/* ---- the sandboxes by address ---- */

int sn_net_init(struct sn_net *net, const uint8_t pool4[4], unsigned plen4, const uint8_t *pool6)
{
	memset(net, 0, sizeof(*net));
	pthread_rwlock_init(&net->lock, NULL);
	memcpy(net->pool4, pool4, 4);
	net->plen4 = plen4;
	if (pool6) {
		memcpy(net->pool6, pool6, 16);
		net->has6 = true;
	}
	net->cap = 64;
	net->slot = calloc(net->cap, sizeof(*net->slot));
	return net->slot ? 0 : -1;
}

static size_t slot_of(const struct sn_net *net, uint32_t index)
{
	return (index * 0x9e3779b1u) & (net->cap - 1);
}

static void put(struct sn_net *net, struct sn_view *v)
{
	size_t i = slot_of(net, v->index);
	while (net->slot[i])
		i = (i + 1) & (net->cap - 1);
	net->slot[i] = v;
}

bool sn_net_add(struct sn_net *net, struct sn_view *v)
{
	pthread_rwlock_wrlock(&net->lock);
	if ((net->n + 1) * 2 > net->cap) {
		struct sn_view **old = net->slot;
		size_t oldcap = net->cap;
		struct sn_view **grown = calloc(oldcap * 2, sizeof(*grown));
		if (grown) {
			net->slot = grown;
			net->cap = oldcap * 2;
			for (size_t i = 0; i < oldcap; i++)
				if (old[i])
					put(net, old[i]);
			free(old);
		}
	}
	/* past half full when the table could not grow; never full, so that probes end */
	bool ok = net->n + 1 < net->cap;
	if (ok) {
		put(net, sn_view_ref(v));
		net->n++;
	}
	pthread_rwlock_unlock(&net->lock);
	return ok;
}

void sn_net_remove(struct sn_net *net, struct sn_view *v)
{
	pthread_rwlock_wrlock(&net->lock);
	size_t i = slot_of(net, v->index);
	while (net->slot[i] && net->slot[i] != v)
		i = (i + 1) & (net->cap - 1);
	if (net->slot[i]) {
		net->slot[i] = NULL;
		net->n--;
		/* re-place the rest of the cluster */
		for (size_t j = (i + 1) & (net->cap - 1); net->slot[j]; j = (j + 1) & (net->cap - 1)) {
			struct sn_view *m = net->slot[j];
			net->slot[j] = NULL;
			put(net, m);
		}
		pthread_mutex_lock(&v->mu);
		v->dead = true;
		pthread_mutex_unlock(&v->mu);
		sn_view_unref(v);
	}
	pthread_rwlock_unlock(&net->lock);
}

struct sn_view *sn_net_find_id(struct sn_net *net, const char *id, size_t len)
{
	struct sn_view *found = NULL;
	if (len == 0 || len >= sizeof(found->id))
		return NULL;
	pthread_rwlock_rdlock(&net->lock);
	for (size_t i = 0; i < net->cap && !found; i++)
		if (net->slot[i] && strncmp(net->slot[i]->id, id, len) == 0 &&
		    net->slot[i]->id[len] == 0)
			found = sn_view_ref(net->slot[i]);
	pthread_rwlock_unlock(&net->lock);
	return found;
}

struct sn_view *sn_net_lookup(struct sn_net *net, int family, const uint8_t *addr)
{
	uint32_t index;
	if (family == AF_INET) {
		uint32_t a, b;
		memcpy(&a, addr, 4);
		memcpy(&b, net->pool4, 4);
		index = (ntohl(a) - ntohl(b)) / 4;
	} else if (family == AF_INET6 && net->has6 && memcmp(addr, net->pool6, 8) == 0) {
		uint64_t a = 0, b = 0;
		for (int k = 8; k < 16; k++) {
			a = a << 8 | addr[k];
			b = b << 8 | net->pool6[k];
		}
		index = (uint32_t)((a - b) / 4);
	} else {
		return NULL;
	}
	struct sn_view *found = NULL;
	pthread_rwlock_rdlock(&net->lock);
	for (size_t i = slot_of(net, index); net->slot[i]; i = (i + 1) & (net->cap - 1)) {
		struct sn_view *v = net->slot[i];
		if (v->index != index)
			continue;
		bool match = family == AF_INET ? memcmp(addr, v->addr4, 4) == 0
					       : v->has6 && memcmp(addr, v->addr6, 16) == 0;
		if (match)
			found = sn_view_ref(v);
		break;
	}
	pthread_rwlock_unlock(&net->lock);
	return found;
}

/* ---- sockets ---- */

int sn_listen(int family, int type, const char *addr, uint16_t port, bool reuseport)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (addr && inet_pton(AF_INET, addr, &a->sin_addr) != 1)
			return -EINVAL;
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (addr && inet_pton(AF_INET6, addr, &a->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof(*a);
	}
	int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || (type == SOCK_STREAM && listen(fd, 4096))) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* ---- re-checks at policy updates ---- */

int sn_recheck_init(struct sn_recheck *r, unsigned n)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->fds = malloc(n * sizeof(*r->fds));
	if (!r->fds)
		return -ENOMEM;
	for (; r->n < n; r->n++)
		if ((r->fds[r->n] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			return -errno;
	return 0;
}

void sn_recheck_free(struct sn_recheck *r)
{
	for (unsigned i = 0; i < r->n; i++)
		close(r->fds[i]);
	free(r->fds);
	r->fds = NULL;
	r->n = 0;
}

void sn_recheck_all(struct sn_recheck *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t req = ++r->req;
	r->acks = 0;
	pthread_mutex_unlock(&r->mu);
	uint64_t one = 1;
	for (unsigned i = 0; i < r->n; i++)
		if (write(r->fds[i], &one, sizeof(one)) < 0)
			return;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&r->mu);
	while (r->req == req && r->acks < r->n)
		if (pthread_cond_timedwait(&r->cond, &r->mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&r->mu);
}

bool sn_recheck_pending(struct sn_recheck *r, unsigned i, uint64_t seen, uint64_t *req)
{
	uint64_t x;
	if (read(r->fds[i], &x, sizeof(x)) < 0 && errno != EAGAIN)
		return false;
	pthread_mutex_lock(&r->mu);
	*req = r->req;
	pthread_mutex_unlock(&r->mu);
	return *req != seen;
}

void sn_recheck_done(struct sn_recheck *r, uint64_t req)
{
	pthread_mutex_lock(&r->mu);
	if (req == r->req)
		r->acks++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

/* ---- workers ---- */

unsigned sn_worker_count(unsigned configured)
{
	if (configured)
		return configured;
	/* the cores this process may run on (a container's cpuset, taskset), not the host's */
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	return cores > 0 ? (unsigned)cores : 1;
}

#define ACCEPT_PAUSE_MS 100

void sn_listener_pause(struct sn_listener *l, const char *why)
{
	int64_t now = sn_now_ms();
	struct epoll_event ev = {.events = 0, .data.ptr = l->tag};
	epoll_ctl(l->ep, EPOLL_CTL_MOD, l->fd, &ev);
	l->paused_until = now + ACCEPT_PAUSE_MS;
	if (!l->warned || now - l->warned >= 10000) {
		l->warned = now;
		sn_log(SN_LOG_WARN, "%s: %s: pausing %d ms", l->what, why, ACCEPT_PAUSE_MS);
	}
}

void sn_listener_resume(struct sn_listener *l)
{
	if (!l->paused_until)
		return;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l->tag};
	epoll_ctl(l->ep, EPOLL_CTL_MOD, l->fd, &ev);
	l->paused_until = 0;
}

enum sn_accept sn_accept_failed(struct sn_listener *l, int err)
{
	switch (err) {
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM: {
		char why[96];
		snprintf(why, sizeof(why), "cannot accept connections (%s)", strerror(err));
		sn_listener_pause(l, why);
		return SN_ACCEPT_DONE;
	}
	case ECONNABORTED: /* that connection only; accept(2) passes network errors on as well */
	case EINTR:
	case EPERM: /* a firewall */
	case EPROTO:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return SN_ACCEPT_NEXT;
	default: /* EBADF, EINVAL...: the listener itself */
		return SN_ACCEPT_DONE;
	}
}

static unsigned fd_limit = 1024;   /* RLIMIT_NOFILE, read once at start */
static int fd_ceiling = INT32_MAX; /* the first descriptor of the reserve */

void sn_fd_reserve_init(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fd_limit = rl.rlim_cur > (1u << 26) ? 1u << 26 : (unsigned)rl.rlim_cur;
	fd_ceiling = (int)(fd_limit - (fd_limit / 8 < 256 ? fd_limit / 8 : 256));
}

unsigned sn_fd_limit(void)
{
	return fd_limit;
}

unsigned sn_fd_share(unsigned configured, unsigned divisor)
{
	return configured ? configured : fd_limit / divisor > 16 ? fd_limit / divisor : 16;
}

int sn_accept(struct sn_listener *l, struct sockaddr_storage *ss)
{
	for (;;) {
		socklen_t len = sizeof(*ss);
		int fd = accept4(l->fd, (struct sockaddr *)ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (sn_accept_failed(l, errno) == SN_ACCEPT_DONE)
				return -1;
			continue;
		}
		if (fd < fd_ceiling)
			return fd;
		/* the kernel gives the lowest free descriptor: every one below fd is taken */
		struct linger lg = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		sn_listener_pause(l, "cannot accept connections (the last descriptors are kept for "
				     "the API, the store and exec)");
		return -1;
	}
}

void sn_listener_tick(struct sn_listener *l, int64_t now_ms)
{
	if (l->paused_until && now_ms >= l->paused_until)
		sn_listener_resume(l);
}

int sn_worker_start(int *ep, pthread_t *thread, const int *fds, void *const *tags, size_t n,
		    void *(*fn)(void *), void *arg)
{
	if ((*ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		if (fds[i] < 0)
			return fds[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tags[i]};
		if (epoll_ctl(*ep, EPOLL_CTL_ADD, fds[i], &ev))
			return -errno;
	}
	return pthread_create(thread, NULL, fn, arg) ? -EAGAIN : 0;
}

void sn_worker_stop(pthread_t thread, int ep, const int *fds, size_t n)
{
	if (thread)
		pthread_join(thread, NULL);
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (ep > 0)
		close(ep);
}

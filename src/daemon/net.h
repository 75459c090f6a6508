/* The data plane side of sandnetd: what the DNS forwarder and the egress proxy know of each
 * sandbox (its view), the sandboxes by address, and the workers themselves. Daemon layer.
 *
 * A view is shared by the control thread (which publishes each new snapshot into it) and the
 * workers (which take a reference to the snapshot in force for each decision). Its mutex guards
 * only short copies: no worker ever waits on the kernel, the store or the network while holding
 * it. The learner thread is the only thread besides the control thread that changes the kernel,
 * and both do it under the daemon's kernel lock, so learned elements are never lost between two
 * generations of a sandbox's sets. */
#ifndef SN_DAEMON_NET_H
#define SN_DAEMON_NET_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sandnet/snapshot.h>

#include "dns.h"
#include "render.h"

#define SN_DENIALS 128        /* ring size per sandbox */
#define SN_LEARNED_MAX 4096   /* DNS answers remembered per sandbox (name, address) */

struct sn_denial {
	uint64_t seq;
	int64_t time_ms;    /* wall clock, milliseconds since the epoch */
	const char *source; /* "kernel", "proxy", "dns" */
	uint8_t proto;      /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP(V6), 0: unknown */
	int family;         /* 0: no address */
	uint8_t addr[16];
	uint16_t port;
	char name[SN_DNS_NAME_MAX]; /* "" when not known */
	int rule;                   /* SN_RULE_NONE: the mode */
	char reason[120];
};

struct sn_learned_rec {
	char *name;
	int family;
	uint8_t addr[16];
	int64_t expires_ms; /* monotonic */
};

/* A token bucket: rate tokens a second, at most rate at once; zeroed, it is full. */
struct sn_bucket {
	int64_t at_ms; /* the last refill (ms); 0: never */
	unsigned tokens;
};

/* Takes a token from b when it has one, after adding those of the time since its last refill. */
bool sn_bucket_take(struct sn_bucket *b, unsigned rate, int64_t now_ms);

struct sn_view {
	atomic_int refs;
	char id[33];
	uint32_t index; /* address block */
	uint8_t addr4[4], addr6[16];
	bool has6;
	pthread_mutex_t mu;
	/* under mu */
	struct sn_snapshot *snap;
	uint64_t gen;   /* kernel generation: names the learned sets */
	char mask[256]; /* mask_request_host, "" when none */
	uint64_t epoch; /* +1 per publish */
	bool paused, dead;
	unsigned conns;   /* open proxied connections */
	unsigned tunnels; /* open ingress tunnels (Upgrade) */
	unsigned ingress; /* ingress connections that reach it (their upstream open or kept) */
	unsigned dns_pending; /* its queries at the DNS upstream (the DNS thread's alone, no lock) */
	unsigned dns_tcp;     /* its DNS-over-TCP connections (the same) */
	struct sn_bucket dns_tcp_rate; /* its DNS-over-TCP queries (--dns-rate; the same) */
	struct sn_learned_rec *learned;
	size_t nlearned, caplearned;
	struct sn_denial *ring; /* SN_DENIALS entries, allocated at the first denial */
	struct sn_bucket log_rate; /* sn_view_log(): the lines it may still log, */
	unsigned long log_dropped; /* and how many it kept out since the last that went */
	uint64_t next_seq;
};

struct sn_view *sn_view_new(const char *id, uint32_t index, const uint8_t addr4[4],
			    const uint8_t *addr6, struct sn_snapshot *snap, uint64_t gen,
			    bool paused);
struct sn_view *sn_view_ref(struct sn_view *v);
void sn_view_unref(struct sn_view *v);
/* The snapshot in force, with a reference. */
struct sn_snapshot *sn_view_snap(struct sn_view *v, uint64_t *epoch);
/* Publishes a new snapshot (the view takes a reference) and generation. */
void sn_view_publish(struct sn_view *v, struct sn_snapshot *snap, const char *mask, uint64_t gen,
		     bool paused);
/* The policy's mask_request_host in force ("" when none) into buf. */
void sn_view_mask(struct sn_view *v, char *buf, size_t size);

void sn_view_deny(struct sn_view *v, const char *source, uint8_t proto, int family,
		  const uint8_t *addr, uint16_t port, const char *name, int rule,
		  const char *reason);
/* Denials with seq > since, oldest first, as a JSON array; NULL on no memory. */
json_t *sn_view_denials(struct sn_view *v, uint64_t since);

/* Records that name resolved to the addresses of a (for ttl_ms each). */
void sn_view_learn(struct sn_view *v, const struct sn_dns_answer *a, const int64_t *ttl_ms,
		   int64_t now_ms);
/* Whether every address of a is remembered for its name with at least half of ttl_ms left: the
 * kernel has it, and the answer need not wait for the learner. */
bool sn_view_knows(struct sn_view *v, const struct sn_dns_answer *a, const int64_t *ttl_ms,
		   int64_t now);
/* Does name resolve to addr, by this sandbox's answers still in their TTL? */
bool sn_view_resolves(struct sn_view *v, const char *name, int family, const uint8_t *addr,
		      int64_t now_ms);
/* The names that resolved to addr (at most max, each copied into names[i]). */
size_t sn_view_names_for(struct sn_view *v, int family, const uint8_t *addr, int64_t now_ms,
			 char (*names)[SN_DNS_NAME_MAX], size_t max);
/* The learned elements to carry into a generation rendered from snap: each remembered answer
 * under every allow rule of snap whose names match it, sorted by rule. *out is malloc'd. */
int sn_view_learned_for(struct sn_view *v, const struct sn_snapshot *snap, int64_t now_ms,
			struct sn_nft_learned **out, size_t *n);

/* The sandboxes by address: lookups from every worker, changes from the control thread. */
struct sn_net {
	pthread_rwlock_t lock;
	struct sn_view **slot; /* open addressing by block index */
	size_t cap, n;
	uint8_t pool4[4], pool6[16];
	unsigned plen4;
	bool has6;
};

int sn_net_init(struct sn_net *net, const uint8_t pool4[4], unsigned plen4, const uint8_t *pool6);
/* Registers v by its address, with a reference of its own; false when out of memory. */
bool sn_net_add(struct sn_net *net, struct sn_view *v);
void sn_net_remove(struct sn_net *net, struct sn_view *v);
/* The view of the sandbox whose address is addr, with a reference; NULL for any other address. */
struct sn_view *sn_net_lookup(struct sn_net *net, int family, const uint8_t *addr);
/* The view of the sandbox with this id, with a reference; NULL when there is none. */
struct sn_view *sn_net_find_id(struct sn_net *net, const char *id, size_t len);


/* A policy update asks every worker of a pool to re-check its open connections now and waits
 * (at most a second) until each has: one eventfd per worker, and a request counter. */
struct sn_recheck {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint64_t req;  /* the newest request */
	unsigned acks; /* workers done with it */
	unsigned n;
	int *fds; /* worker i waits on fds[i] in its epoll set */
};
int sn_recheck_init(struct sn_recheck *r, unsigned n);
void sn_recheck_free(struct sn_recheck *r);
void sn_recheck_all(struct sn_recheck *r);
/* Worker i, woken on fds[i]: true with *req when a request newer than seen waits; the worker
 * re-checks, remembers *req as seen and calls sn_recheck_done(). */
bool sn_recheck_pending(struct sn_recheck *r, unsigned i, uint64_t seen, uint64_t *req);
void sn_recheck_done(struct sn_recheck *r, uint64_t req);

/* A non-blocking socket bound to addr (NULL: any address of family) and port: UDP for
 * SOCK_DGRAM, listening TCP for SOCK_STREAM; IPv6 sockets are IPv6-only; reuseport lets each
 * worker have its own. The descriptor, or -errno. */
int sn_listen(int family, int type, const char *addr, uint16_t port, bool reuseport);

/* How many workers a pool has: configured, or one per core the process may run on. */
unsigned sn_worker_count(unsigned configured);

/* A listening socket in a worker's epoll set (level-triggered, EPOLLIN). When accept() runs out
 * of descriptors or memory the connection stays queued, so the listener would wake its worker at
 * once, again and again: it is unwatched for a while instead (the queue waits in the kernel), with
 * one warning per episode at most every 10 s. */
struct sn_listener {
	int ep, fd;
	void *tag;            /* the epoll data of the listener */
	const char *what;     /* for the log: "ingress", ... */
	int64_t paused_until; /* 0: watched */
	int64_t warned;
};
enum sn_accept { SN_ACCEPT_NEXT, SN_ACCEPT_DONE };
/* Unwatches the listener for a while (the connections wait in the kernel's queue), warning why
 * at most every 10 s. */
void sn_listener_pause(struct sn_listener *l, const char *why);
/* Watches a paused listener again now. */
void sn_listener_resume(struct sn_listener *l);
/* After accept4() failed with err: SN_ACCEPT_NEXT when that connection alone was lost (accept
 * the next one), else SN_ACCEPT_DONE (none waits, or the listener is paused). */
enum sn_accept sn_accept_failed(struct sn_listener *l, int err);
/* The last descriptors of the daemon's limit are the control path's (API connections, the store,
 * exec's pipes, netlink): sn_fd_reserve_init() reads the limit once at start, and sn_accept()
 * takes a connection on l (non-blocking, close-on-exec; its peer in ss) only while one remains
 * outside them. -1: none to take now (none waits, or l is paused: out of descriptors or into the
 * reserve, that connection reset). */
void sn_fd_reserve_init(void);
/* That limit; and a proxy's bound on its connections: configured, else the limit / divisor (at
 * least 16). */
unsigned sn_fd_limit(void);
unsigned sn_fd_share(unsigned configured, unsigned divisor);
int sn_accept(struct sn_listener *l, struct sockaddr_storage *ss);
/* From the worker's timer: watches a paused listener again once its pause is over. */
void sn_listener_tick(struct sn_listener *l, int64_t now_ms);
/* One worker of a proxy's pool: a new epoll set in *ep watching fds[0..n) for input, each with
 * tags[i] as its data, and a thread running fn(arg). 0 or -errno (then no thread runs; *ep, when
 * made, is for sn_worker_stop to close). */
int sn_worker_start(int *ep, pthread_t *thread, const int *fds, void *const *tags, size_t n,
		    void *(*fn)(void *), void *arg);
/* Joins the worker's thread (when it was started) and closes ep and fds[0..n) (those >= 0). */
void sn_worker_stop(pthread_t thread, int ep, const int *fds, size_t n);

int64_t sn_now_ms(void);      /* monotonic */
int64_t sn_wall_ms(void);     /* realtime */

/* ---- workers ---- */
struct sn_daemon;

/* The DNS forwarder (one thread) and the learner (one thread). */
struct sn_dnsfwd;
int sn_dnsfwd_start(struct sn_daemon *d, struct sn_dnsfwd **out, char *err, size_t errsize);
void sn_dnsfwd_stop(struct sn_dnsfwd *f);

/* The transparent egress proxy: one worker thread per core. */
struct sn_eproxy;
int sn_eproxy_start(struct sn_daemon *d, struct sn_eproxy **out, char *err, size_t errsize);
void sn_eproxy_stop(struct sn_eproxy *p);
/* Re-checks every open proxied connection of v against its snapshot in force, resetting those it
 * now denies; returns when every worker has done so (or after a second). */
void sn_eproxy_recheck(struct sn_eproxy *p);

/* The ingress proxy: one worker thread per core on --ingress-listen (ingress.c). */
struct sn_ingress;
int sn_ingress_start(struct sn_daemon *d, struct sn_ingress **out, char *err, size_t errsize);
void sn_ingress_stop(struct sn_ingress *g);
/* Closes every open tunnel whose port its sandbox's policy now denies; returns when all workers
 * have looked (or after a second). */
void sn_ingress_recheck(struct sn_ingress *g);

/* Kernel denials: NFLOG from the deny chain, recorded per sandbox (kdeny.c). */
struct sn_kdeny;
int sn_kdeny_start(struct sn_daemon *d, struct sn_kdeny **out, char *err, size_t errsize);
void sn_kdeny_stop(struct sn_kdeny *k);

/* --dns-upstream IP[:PORT] (IPv6 as [IP]:PORT) as a socket address. */
bool sn_dns_upstream_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif

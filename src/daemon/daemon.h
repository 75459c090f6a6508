/* sandnetd: configuration, the sandbox table, lifecycle and update transactions. Daemon layer.
 * Everything here runs on the control thread (libmicrohttpd's single internal thread serialises
 * requests), so no locks are needed; workers (proxy, DNS) will read published snapshots only. */
#ifndef SN_DAEMON_H
#define SN_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sandnet/snapshot.h>

#include "body.h"
#include "cgroup.h"
#include "elems.h"
#include "net.h"
#include "nft.h"
#include "render.h"
#include "store.h"

#define SN_MAX_GUARD 64
#define SN_MAX_KEYS 256

enum sn_log_level { SN_LOG_DEBUG, SN_LOG_INFO, SN_LOG_WARN, SN_LOG_ERROR };

struct sn_config {
	const char *state_dir;
	char listen_addr[64];
	uint16_t listen_port;
	char ingress_addr[64];
	uint16_t ingress_port;
	const char *ingress_domain;
	struct sn_cidr pool4, pool6;
	bool has_pool6;
	char dns_upstream[80];
	uint16_t proxy_port, dns_port, control_port;
	const char *api_keys_file;
	struct sn_cidr guard_deny[SN_MAX_GUARD];
	size_t nguard_deny;
	struct sn_cidr trusted[SN_MAX_GUARD];
	size_t ntrusted;
	enum sn_log_level log_level;
	bool strict_names;
	unsigned peek_timeout_ms, max_conns, idle_timeout_s, learn_ttl_min, learn_ttl_max;
	unsigned workers; /* 0: one per core */
	unsigned nflog_group;
	unsigned dns_rate;  /* UDP DNS packets a second per sandbox (0: no limit) */
	unsigned max_flows; /* connections the kernel tracks per sandbox (0: no limit) */
	unsigned exec_uid, exec_gid; /* who runs an exec's command, or SN_EXEC_USER_SANDBOX */
	/* what a sandbox's commands hold at once: processes and threads, bytes of memory (0: no
	 * limit); *_set: given on the command line, so that no controller to enforce it is fatal */
	uint64_t exec_limit[SN_CG_NCTL];
	bool exec_limit_set[SN_CG_NCTL];
	unsigned exec_max_running; /* commands running at once, all sandboxes' */
	unsigned ingress_header_timeout_s, ingress_idle_timeout_s, ingress_upstream_timeout_s;
	unsigned ingress_max_conns; /* 0: a quarter of the descriptor limit */
	unsigned proxy_max_total;   /* 0: an eighth of the descriptor limit */
	unsigned ingress_max_conns_per_client; /* 0: no limit */
};

/* Parses argv into cfg; on a usage error prints it and returns false. */
bool sn_config_parse(struct sn_config *cfg, int argc, char **argv);

void sn_log(enum sn_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sn_log() of a line that sandbox v's traffic caused (a denial, an unanswered query): at most
 * SN_VIEW_LOG_RATE a second per sandbox, in bursts of as many, so that a sandbox cannot flood the
 * log; the next line that goes says how many were kept out. */
#define SN_VIEW_LOG_RATE 20
void sn_view_log(struct sn_view *v, enum sn_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern enum sn_log_level sn_log_threshold;

/* The name of a sandbox's network namespace (under SN_NETNS_RUN_DIR), "sn-<id>". */
static inline void sn_sandbox_netns(char *buf, size_t size, const char *id)
{
	snprintf(buf, size, "sn-%s", id);
}

struct sn_sandbox {
	struct sn_sandbox_row row; /* as stored: id, team, state, addresses, labels, revision */
	struct sn_snapshot *snap;  /* the policy in force */
	struct sn_policy *policy;  /* the same, as data (for formatting) */
	uint64_t gen;              /* kernel generation: names the chain and sets in force */
	bool kpaused;              /* whether that generation is a paused one */
	char netns[48], ifname[16];
	uint32_t index; /* address block in the pools */
	struct sn_view *view; /* what the DNS forwarder and the proxy see */
	struct sn_sandbox *next;
};

struct sn_api_key {
	char key[128];
	char team[65];
};

struct sn_daemon {
	struct sn_config cfg;
	struct sn_store *store;
	struct sn_nft *nft;
	struct sn_elems *elems; /* big sets over netlink (the control thread's) */
	struct sn_nft_config nftcfg;
	struct sn_cidr guard[SN_MAX_GUARD + 16];
	struct sn_cidr pools[2];
	struct sn_sandbox *sandboxes;
	struct sn_api_key keys[SN_MAX_KEYS];
	size_t nkeys;
	struct sn_cgroups cgroups;
	/* the control lock: every change and every read of the sandbox table holds it (requests run
	 * on threads of their own so that a long exec does not stall the API) */
	pthread_mutex_t lock;
	unsigned exec_running; /* commands running now (under lock) */
	/* held by whoever changes the kernel: the control thread and the learner */
	pthread_mutex_t kernel_lock;
	struct sn_net net;
	struct sn_dnsfwd *dnsfwd;
	struct sn_eproxy *eproxy;
	struct sn_kdeny *kdeny;
	struct sn_ingress *ingress;
};


int sn_daemon_start(struct sn_daemon *d, char *err, size_t errsize);
void sn_daemon_stop(struct sn_daemon *d);

struct sn_sandbox *sn_sandbox_find(struct sn_daemon *d, const char *id, const char *team);
/* Creates a sandbox; id NULL generates one. policy_doc may be NULL (the empty policy). */
struct sn_sandbox *sn_sandbox_create(struct sn_daemon *d, const char *team, const char *id,
				     const char *policy_doc, size_t policy_len,
				     const char *labels_json, struct sn_result *res);
bool sn_sandbox_delete(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_result *res);
/* The update transaction: parse, validate, compile, apply, commit; on any failure the old revision
 * stays in force in the kernel and the store. expect_rev 0: no If-Match. keep_ingress: the
 * document speaks of egress only (sandbox0), the ingress part in force stays. */
bool sn_sandbox_update(struct sn_daemon *d, struct sn_sandbox *sb, const char *doc, size_t len,
		       enum sn_dialect dialect, uint64_t expect_rev, bool keep_ingress,
		       struct sn_result *res);

/* Pause: the network drops everything and the processes freeze; resume re-applies the current
 * revision and thaws. 409 when the sandbox is already in that state. */
bool sn_sandbox_pause(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_result *res);
bool sn_sandbox_resume(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_result *res);
/* The cgroup of a sandbox, under d->cgroups. */
void sn_sandbox_cgroup(const struct sn_sandbox *sb, char *buf, size_t size);
/* --exec-user sandbox: each sandbox's commands run as a user (and group) of their own,
 * SN_EXEC_UID_BASE + the sandbox's creation serial (never reused), so that no sandbox's command
 * can signal, trace or read another's, nor any other process of the host's, nor the files a
 * sandbox that is gone left behind. */
#define SN_EXEC_USER_SANDBOX 0xffffffffu
#define SN_EXEC_UID_BASE 2000000000u
/* The user and group an exec in sb runs as. */
void sn_sandbox_exec_user(const struct sn_daemon *d, const struct sn_sandbox *sb, unsigned *uid,
			  unsigned *gid);

/* Fault injection (test builds only, SN_FAULT_INJECTION): the environment variable SN_FAULT names
 * a point where every call fails: "kernel_apply", "kernel_switch", "store_commit" (an update),
 * "view_add" (a sandbox's registration for the workers). */
bool sn_fault(const char *point);

#endif

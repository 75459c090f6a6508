/* Sandbox lifecycle and the update transaction: namespaces and links (link.c), nftables
 * (render.c + nft.c), the store; every multi-step change undoes its done steps when a later one
 * fails. Reconciliation at start. Daemon layer, control thread. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "daemon.h"
#include "encode.h"
#include "link.h"

bool sn_fault(const char *point)
{
#ifdef SN_FAULT_INJECTION
	const char *f = getenv("SN_FAULT");
	return f && strcmp(f, point) == 0;
#else
	(void)point;
	return false;
#endif
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n < 1 || n > SN_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

static void names_for(struct sn_sandbox *sb)
{
	const char *id = sb->row.id;
	sn_sandbox_netns(sb->netns, sizeof(sb->netns), id);
	if (strlen(id) <= 12) {
		snprintf(sb->ifname, sizeof(sb->ifname), "sh-%s", id);
	} else {
		uint64_t h = 0xcbf29ce484222325ull;
		for (const char *p = id; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
		snprintf(sb->ifname, sizeof(sb->ifname), "sh-%012llx",
			 (unsigned long long)(h & 0xffffffffffffull));
	}
}

/* Address block i: host side .1, sandbox .2 of the i-th /30 (and ::1, ::2 of the i-th /126). */
static void block_addrs(const struct sn_config *cfg, uint32_t i, uint8_t host4[4], uint8_t sb4[4],
			uint8_t host6[16], uint8_t sb6[16])
{
	uint32_t base;
	memcpy(&base, cfg->pool4.addr, 4);
	base = ntohl(base) + i * 4;
	uint32_t h = htonl(base + 1), s = htonl(base + 2);
	memcpy(host4, &h, 4);
	memcpy(sb4, &s, 4);
	if (cfg->has_pool6) {
		memcpy(host6, cfg->pool6.addr, 16);
		/* add i * 4 to the low 64 bits */
		uint64_t lo = 0;
		for (int k = 8; k < 16; k++)
			lo = lo << 8 | host6[k];
		uint64_t hl = lo + (uint64_t)i * 4 + 1, sl = lo + (uint64_t)i * 4 + 2;
		memcpy(sb6, host6, 16);
		for (int k = 15; k >= 8; k--) {
			host6[k] = (uint8_t)hl;
			sb6[k] = (uint8_t)sl;
			hl >>= 8;
			sl >>= 8;
		}
	}
}

static uint32_t block_of(const struct sn_config *cfg, const char *addr4)
{
	uint32_t a, base;
	inet_pton(AF_INET, addr4, &a);
	memcpy(&base, cfg->pool4.addr, 4);
	return (ntohl(a) - ntohl(base)) / 4;
}

void sn_sandbox_cgroup(const struct sn_sandbox *sb, char *buf, size_t size)
{
	snprintf(buf, size, "sb-%s", sb->row.id);
}

void sn_sandbox_exec_user(const struct sn_daemon *d, const struct sn_sandbox *sb, unsigned *uid,
			  unsigned *gid)
{
	*uid = d->cfg.exec_uid;
	*gid = d->cfg.exec_gid;
	/* 2,294,967,294 serials fit below uid -1; then they wrap around */
	if (d->cfg.exec_uid == SN_EXEC_USER_SANDBOX)
		*uid = *gid = SN_EXEC_UID_BASE +
			      (unsigned)((sb->row.serial - 1) % (0xfffffffeu - SN_EXEC_UID_BASE));
}

static struct sn_nft_sandbox nft_view(struct sn_daemon *d, const struct sn_sandbox *sb,
				      uint64_t gen, bool paused)
{
	struct sn_nft_sandbox v = {.id = sb->row.id, .ifname = sb->ifname, .rev = gen,
				   .paused = paused};
	block_addrs(&d->cfg, sb->index, v.host4, v.addr4, v.host6, v.addr6);
	v.has6 = d->cfg.has_pool6;
	return v;
}

/* The sandbox's view for the workers, made and registered by address. */
static int add_view(struct sn_daemon *d, struct sn_sandbox *sb)
{
	uint8_t h4[4], s4[4], h6[16], s6[16];
	block_addrs(&d->cfg, sb->index, h4, s4, h6, s6);
	sb->view = sn_view_new(sb->row.id, sb->index, s4, d->cfg.has_pool6 ? s6 : NULL, sb->snap,
			       sb->gen, sb->row.state == SN_STATE_PAUSED);
	if (sb->view)
		sn_view_publish(sb->view, sb->snap, sb->policy->mask_request_host, sb->gen,
				sb->row.state == SN_STATE_PAUSED);
	if (!sb->view || sn_fault("view_add") || !sn_net_add(&d->net, sb->view))
		return -ENOMEM;
	return 0;
}

static int apply_text(struct sn_daemon *d, struct sn_text *t, char *err, size_t errsize)
{
	if (t->failed)
		return -ENOMEM;
	sn_log(SN_LOG_DEBUG, "nft: %zu bytes", t->len);
	return sn_nft_apply(d->nft, t->s, err, errsize);
}

static void sandbox_free(struct sn_sandbox *sb)
{
	if (!sb)
		return;
	sn_view_unref(sb->view);
	sn_sandbox_row_clear(&sb->row);
	sn_snapshot_unref(sb->snap);
	sn_policy_free(sb->policy);
	free(sb);
}

/* ---- plumbing ---- */

/* Namespace names are global to the machine, and several sandnetd may run side by side (tests do):
 * each daemon marks the namespaces it creates in its state directory and never touches others. */
static void marker_path(const struct sn_daemon *d, const char *netns, char *buf, size_t size)
{
	snprintf(buf, size, "%s/netns/%s", d->cfg.state_dir, netns);
}

static int mark(const struct sn_daemon *d, const char *netns)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/netns", d->cfg.state_dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -errno;
	marker_path(d, netns, path, sizeof(path));
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	return fclose(f) == 0 ? 0 : -errno;
}

static void unmark(const struct sn_daemon *d, const char *netns)
{
	char path[4096];
	marker_path(d, netns, path, sizeof(path));
	unlink(path);
}

static int write_resolv(const struct sn_sandbox *sb, const uint8_t host4[4])
{
	char dir[128], path[160], a[INET_ADDRSTRLEN];
	snprintf(dir, sizeof(dir), "/etc/netns/%s", sb->netns);
	mkdir("/etc/netns", 0755);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	inet_ntop(AF_INET, host4, a, sizeof(a));
	fprintf(f, "# written by sandnetd: all DNS goes to sandnet's forwarder\nnameserver %s\n", a);
	return fclose(f) == 0 ? 0 : -errno;
}

static void remove_resolv(const struct sn_sandbox *sb)
{
	char dir[128], path[160];
	snprintf(dir, sizeof(dir), "/etc/netns/%s", sb->netns);
	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	unlink(path);
	rmdir(dir);
}

/* Links, addresses, routes for a sandbox whose namespace exists (fd). */
static int plumb_links(struct sn_daemon *d, struct sn_sandbox *sb, int fd, char *err,
		       size_t errsize)
{
	uint8_t h4[4], s4[4], h6[16], s6[16];
	block_addrs(&d->cfg, sb->index, h4, s4, h6, s6);
	const char *step = "veth";
	int rc = sn_link_add_veth(sb->ifname, "eth0", fd);
	if (!rc && (step = "host address", 1))
		rc = sn_addr_add(-1, sb->ifname, AF_INET, h4, 30);
	if (!rc && d->cfg.has_pool6 && (step = "host IPv6 address", 1))
		rc = sn_addr_add(-1, sb->ifname, AF_INET6, h6, 126);
	if (!rc && (step = "host link up", 1))
		rc = sn_link_up(-1, sb->ifname);
	if (!rc && (step = "sandbox address", 1))
		rc = sn_addr_add(fd, "eth0", AF_INET, s4, 30);
	if (!rc && d->cfg.has_pool6 && (step = "sandbox IPv6 address", 1))
		rc = sn_addr_add(fd, "eth0", AF_INET6, s6, 126);
	if (!rc && (step = "sandbox link up", 1))
		rc = sn_link_up(fd, "eth0");
	if (!rc && (step = "default route", 1))
		rc = sn_route_add_default(fd, "eth0", AF_INET, h4);
	if (!rc && d->cfg.has_pool6 && (step = "IPv6 default route", 1))
		rc = sn_route_add_default(fd, "eth0", AF_INET6, h6);
	if (!rc && (step = "resolv.conf", 1))
		rc = write_resolv(sb, h4);
	if (rc) {
		snprintf(err, errsize, "%s: %s", step, strerror(-rc));
		sn_link_del(-1, sb->ifname);
	}
	return rc;
}

static int plumb(struct sn_daemon *d, struct sn_sandbox *sb, char *err, size_t errsize)
{
	int rc = mark(d, sb->netns);
	if (rc) {
		snprintf(err, errsize, "marking %s: %s", sb->netns, strerror(-rc));
		return rc;
	}
	rc = sn_netns_add(sb->netns);
	if (rc) {
		snprintf(err, errsize, "netns %s: %s", sb->netns, strerror(-rc));
		if (rc != -EEXIST)
			unmark(d, sb->netns);
		return rc;
	}
	int fd = sn_netns_open(sb->netns);
	if (fd < 0) {
		snprintf(err, errsize, "netns %s: %s", sb->netns, strerror(-fd));
		sn_netns_del(sb->netns);
		return fd;
	}
	rc = plumb_links(d, sb, fd, err, errsize);
	close(fd);
	if (rc) {
		sn_netns_del(sb->netns);
		unmark(d, sb->netns);
	}
	return rc;
}

static void unplumb(struct sn_daemon *d, struct sn_sandbox *sb)
{
	char cg[48];
	sn_sandbox_cgroup(sb, cg, sizeof(cg));
	if (d->cgroups.base[0])
		sn_cgroup_remove(&d->cgroups, cg); /* kills what runs in it */
	sn_link_del(-1, sb->ifname);
	sn_netns_del(sb->netns);
	remove_resolv(sb);
	unmark(d, sb->netns);
}

/* ---- policies ---- */

static bool parse_policy(const char *doc, size_t len, enum sn_dialect dialect,
			 struct sn_policy **p, struct sn_result *res)
{
	struct sn_errs *errs = malloc(sizeof(*errs));
	if (!errs) {
		sn_result_set(res, 500, "internal", "", "out of memory");
		return false;
	}
	sn_errs_init(errs);
	int rc = sn_policy_parse(doc, len, SN_FORMAT_AUTO, dialect, p, errs);
	if (rc) {
		if (rc == -ENOMEM && !errs->n)
			sn_result_set(res, 500, "internal", "", "out of memory");
		else {
			/* the first error in the fields; every one of them in the message */
			char msg[512] = "";
			size_t o = 0;
			for (unsigned i = 0; i < errs->n && o < sizeof(msg); i++) {
				char line[SN_ERR_PATH_MAX + SN_ERR_MSG_MAX + 4];
				o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%s%s", i ? "; " : "",
						      sn_err_line(&errs->e[i], line, sizeof(line)));
			}
			sn_result_set(res, 400,
				      errs->e[0].code == SN_ERR_SYNTAX  ? "invalid_json"
				      : errs->e[0].code == SN_ERR_LIMIT ? "limit_exceeded"
									: "invalid_policy",
				      errs->e[0].path, "%s", errs->n == 1 ? errs->e[0].msg : msg);
		}
		free(errs);
		return false;
	}
	free(errs);
	return true;
}

struct sn_sandbox *sn_sandbox_find(struct sn_daemon *d, const char *id, const char *team)
{
	for (struct sn_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (strcmp(sb->row.id, id) == 0)
			return !team || strcmp(sb->row.team, team) == 0 ? sb : NULL;
	return NULL;
}

static bool block_used(struct sn_daemon *d, uint32_t i)
{
	for (struct sn_sandbox *sb = d->sandboxes; sb; sb = sb->next)
		if (sb->index == i)
			return true;
	return false;
}

static int switch_gen(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_snapshot *snap,
		      const char *mask, uint64_t gen, bool paused, const struct sn_snapshot *old,
		      uint64_t old_gen, bool fault, char *err, size_t errsize);
static void remove_rules(struct sn_daemon *d, struct sn_sandbox *sb);

struct sn_sandbox *sn_sandbox_create(struct sn_daemon *d, const char *team, const char *id,
				     const char *policy_doc, size_t policy_len,
				     const char *labels_json, struct sn_result *res)
{
	memset(res, 0, sizeof(*res));
	char gen_id[SN_ID_MAX + 1];
	if (!id) {
		static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
		uint8_t rnd[12];
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
			sn_result_set(res, 500, "internal", "", "no randomness: %s",
				      strerror(errno));
			return NULL;
		}
		for (int i = 0; i < 12; i++)
			gen_id[i] = alphabet[rnd[i] % 36];
		gen_id[12] = 0;
		id = gen_id;
	}
	if (!valid_id(id)) {
		sn_result_set(res, 400, "invalid_request", "id",
			      "%s is not a sandbox id: 1-32 of a-z, 0-9 and '-', not at either end",
			      SN_QUOTE(id));
		return NULL;
	}
	if (sn_sandbox_find(d, id, NULL)) {
		sn_result_set(res, 409, "conflict", "id", "sandbox \"%s\" exists", id);
		return NULL;
	}
	struct sn_policy *p = NULL;
	if (!parse_policy(policy_doc ? policy_doc : "{}", policy_doc ? policy_len : 2,
			  SN_DIALECT_AUTO, &p, res)) {
		if (res->path[0]) {
			char full[SN_ERR_PATH_MAX];
			snprintf(full, sizeof(full), "network.%s", res->path);
			snprintf(res->path, sizeof(res->path), "%s", full);
		} else {
			snprintf(res->path, sizeof(res->path), "network");
		}
		return NULL;
	}
	struct sn_sandbox *sb = calloc(1, sizeof(*sb));
	char *canon = sn_policy_format(p, 0);
	if (!sb || !canon || !(sb->snap = sn_snapshot_compile(p))) {
		sn_policy_free(p);
		free(canon);
		sandbox_free(sb);
		sn_result_set(res, 500, "internal", "", "out of memory");
		return NULL;
	}
	sb->policy = p;
	snprintf(sb->row.id, sizeof(sb->row.id), "%s", id);
	snprintf(sb->row.team, sizeof(sb->row.team), "%s", team);
	sb->row.state = SN_STATE_RUNNING;
	sb->row.created_at = time(NULL);
	sb->row.revision = 1;
	sb->row.labels = strdup(labels_json ? labels_json : "{}");
	sb->row.policy = canon;
	names_for(sb);
	uint32_t max = (uint32_t)1 << (32 - d->cfg.pool4.plen - 2);
	uint32_t i = 0;
	while (i < max && block_used(d, i))
		i++;
	if (i == max) {
		sandbox_free(sb);
		sn_result_set(res, 409, "pool_exhausted", "", "the address pool has no free block");
		return NULL;
	}
	sb->index = i;
	uint8_t h4[4], s4[4], h6[16], s6[16];
	block_addrs(&d->cfg, i, h4, s4, h6, s6);
	inet_ntop(AF_INET, s4, sb->row.addr4, sizeof(sb->row.addr4));
	if (d->cfg.has_pool6)
		inet_ntop(AF_INET6, s6, sb->row.addr6, sizeof(sb->row.addr6));

	char err[512];
	if (plumb(d, sb, err, sizeof(err))) {
		sn_log(SN_LOG_ERROR, "sandbox %s: create: %s", id, err);
		sn_result_set(res, 500, "apply_failed", "", "creating the sandbox's network: %s",
			      err);
		sandbox_free(sb);
		return NULL;
	}
	char cg[48];
	sn_sandbox_cgroup(sb, cg, sizeof(cg));
	int rc = sn_cgroup_create(&d->cgroups, cg);
	if (rc) {
		sn_log(SN_LOG_ERROR, "sandbox %s: cgroup: %s", id, strerror(-rc));
		unplumb(d, sb);
		sn_result_set(res, 500, "apply_failed", "", "creating the sandbox's cgroup: %s",
			      strerror(-rc));
		sandbox_free(sb);
		return NULL;
	}
	sb->gen = 1;
	rc = switch_gen(d, sb, sb->snap, NULL, sb->gen, false, NULL, 0, false, err, sizeof(err));
	if (rc) {
		sn_log(SN_LOG_ERROR, "sandbox %s: create: %s", id, err);
		unplumb(d, sb);
		sn_result_set(res, 500, "apply_failed", "", "applying the sandbox's rules: %s",
			      err);
		sandbox_free(sb);
		return NULL;
	}
	rc = sn_store_create(d->store, &sb->row);
	if (rc) {
		sn_log(SN_LOG_ERROR, "sandbox %s: store: %s", id, sn_store_error(d->store));
		remove_rules(d, sb);
		unplumb(d, sb);
		sn_result_set(res, rc == -EEXIST ? 409 : 500,
			      rc == -EEXIST ? "conflict" : "store_failed", "",
			      "storing the sandbox: %s", sn_store_error(d->store));
		sandbox_free(sb);
		return NULL;
	}
	if (add_view(d, sb))
		sn_log(SN_LOG_ERROR, "sandbox %s: no memory for its view: DNS and proxied "
				     "connections are refused",
		       id);
	sb->next = d->sandboxes;
	d->sandboxes = sb;
	sn_log(SN_LOG_INFO, "sandbox %s: created (team %s, %s%s%s, revision 1)", id, team,
	       sb->row.addr4, sb->row.addr6[0] ? ", " : "", sb->row.addr6);
	return sb;
}

bool sn_sandbox_delete(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_result *res)
{
	memset(res, 0, sizeof(*res));
	int rc = sn_store_delete(d->store, sb->row.id);
	if (rc && rc != -ENOENT) {
		sn_result_set(res, 500, "store_failed", "", "deleting the sandbox: %s",
			      sn_store_error(d->store));
		return false;
	}
	if (sb->view) {
		sn_net_remove(&d->net, sb->view);
		/* the ingress's hop to it, inside its namespace, is cut before the namespace goes */
		pthread_mutex_lock(&sb->view->mu);
		bool ingress = sb->view->ingress > 0;
		pthread_mutex_unlock(&sb->view->mu);
		if (ingress && d->ingress)
			sn_ingress_recheck(d->ingress);
	}
	remove_rules(d, sb);
	unplumb(d, sb);
	for (struct sn_sandbox **pp = &d->sandboxes; *pp; pp = &(*pp)->next)
		if (*pp == sb) {
			*pp = sb->next;
			break;
		}
	sn_log(SN_LOG_INFO, "sandbox %s: deleted", sb->row.id);
	sandbox_free(sb);
	return true;
}

/* Removes a generation no packet reaches any more (the dispatch map points elsewhere). A failure
 * leaves unused objects behind, which the next start's reconciliation removes. */
static void delete_generation(struct sn_daemon *d, struct sn_sandbox *sb,
			      const struct sn_snapshot *old, uint64_t old_gen, bool paused)
{
	struct sn_nft_sandbox v = nft_view(d, sb, old_gen, paused);
	int rc = sn_elems_delete_generation(d->elems, &v, old);
	if (rc)
		sn_log(SN_LOG_WARN, "sandbox %s: removing generation %llu: %s", sb->row.id,
		       (unsigned long long)old_gen, strerror(-rc));
}

/* Removes sb's dispatch element and its generation in force. */
static void remove_rules(struct sn_daemon *d, struct sn_sandbox *sb)
{
	struct sn_nft_sandbox v = nft_view(d, sb, sb->gen, sb->kpaused);
	int rc = sn_elems_remove(d->elems, &v);
	if (rc)
		sn_log(SN_LOG_WARN, "sandbox %s: removing its dispatch and set elements: %s",
		       sb->row.id, strerror(-rc));
	delete_generation(d, sb, sb->snap, sb->gen, sb->kpaused);
}

/* Switches sb's kernel state from generation old_gen (snapshot old; NULL for a new sandbox) to
 * gen (snapshot snap), paused or not, with the addresses learned from DNS carried over, and
 * publishes snap to the workers. Over netlink, the switch in one transaction (elems.c); under the
 * kernel lock, so that the learner adds to one generation or the other. */
static int switch_gen(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_snapshot *snap,
		      const char *mask, uint64_t gen, bool paused, const struct sn_snapshot *old,
		      uint64_t old_gen, bool fault, char *err, size_t errsize)
{
	struct sn_nft_sandbox v = nft_view(d, sb, gen, paused);
	struct sn_nft_learned *learned = NULL;
	pthread_mutex_lock(&d->kernel_lock);
	if (sb->view)
		sn_view_learned_for(sb->view, snap, sn_now_ms(), &learned, &v.nlearned);
	v.learned = learned;
	/* over netlink: the new generation's sets, chain and rules, and the switch to them in the
	 * last transaction; then the old generation goes */
	struct sn_nl_list nl = {0};
	int rc = sn_nft_build_generation(&nl, &d->nftcfg, &v, snap);
	if (rc)
		snprintf(err, errsize, "building the rules: %s", strerror(-rc));
	if (!rc && fault && sn_fault("kernel_apply")) {
		snprintf(err, errsize, "injected fault");
		rc = -EIO;
	}
	if (!rc) {
		char chain[128];
		snprintf(chain, sizeof(chain), "sb-%s-%llu", sb->row.id, (unsigned long long)gen);
		/* a switch the kernel refuses (to a chain that does not exist) after the rest went in
		 * one object per transaction: what was loaded must go again */
		bool bad_switch = fault && sn_fault("kernel_switch");
		if (bad_switch) {
			sn_elems_split(d->elems, true);
			snprintf(chain, sizeof(chain), "sb-%s-no-such-chain", sb->row.id);
		}
		v.was_paused = sb->kpaused;
		if ((rc = sn_elems_load(d->elems, &nl, &v, chain, old != NULL)))
			snprintf(err, errsize, "loading the rules over netlink: %s", strerror(-rc));
		sn_elems_split(d->elems, false);
	}
	sn_nl_list_clear(&nl);
	if (!rc)
		sb->kpaused = paused;
	if (!rc && old)
		delete_generation(d, sb, old, old_gen, paused);
	if (!rc && sb->view)
		sn_view_publish(sb->view, snap, mask, gen, paused);
	pthread_mutex_unlock(&d->kernel_lock);
	free(learned);
	/* open proxied connections and ingress tunnels are re-checked, and a pause cuts the
	 * ingress connections to the sandbox, before the caller hears back (none: no wait) */
	if (!rc && sb->view) {
		pthread_mutex_lock(&sb->view->mu);
		bool proxied = sb->view->conns > 0, tunnels = sb->view->tunnels > 0;
		bool ingress = paused && sb->view->ingress > 0;
		pthread_mutex_unlock(&sb->view->mu);
		if (proxied && d->eproxy)
			sn_eproxy_recheck(d->eproxy);
		if ((tunnels || ingress) && d->ingress)
			sn_ingress_recheck(d->ingress);
	}
	return rc;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

bool sn_sandbox_update(struct sn_daemon *d, struct sn_sandbox *sb, const char *doc, size_t len,
		       enum sn_dialect dialect, uint64_t expect_rev, bool keep_ingress,
		       struct sn_result *res)
{
	memset(res, 0, sizeof(*res));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double t_compile = 0, t_kernel = 0;
	if (expect_rev && expect_rev != sb->row.revision) {
		sn_result_set(res, 412, "revision_mismatch", "",
			      "If-Match names revision %llu; the current revision is %llu",
			      (unsigned long long)expect_rev, (unsigned long long)sb->row.revision);
		return false;
	}
	struct sn_policy *p;
	if (!parse_policy(doc, len, dialect, &p, res))
		return false;
	if (keep_ingress) {
		struct sn_policy *cur = sn_policy_dup(sb->policy);
		if (!cur) {
			sn_policy_free(p);
			sn_result_set(res, 500, "internal", "", "out of memory");
			return false;
		}
		/* swap the ingress halves; cur then holds the new document's empty ingress */
		struct sn_dir_policy in = p->ingress;
		char *mask = p->mask_request_host;
		p->ingress = cur->ingress;
		p->mask_request_host = cur->mask_request_host;
		cur->ingress = in;
		cur->mask_request_host = mask;
		sn_policy_free(cur);
	}
	struct sn_snapshot *snap = sn_snapshot_compile(p);
	char *canon = sn_policy_format(p, 0);
	if (!snap || !canon) {
		sn_snapshot_unref(snap);
		free(canon);
		sn_policy_free(p);
		sn_result_set(res, 500, "internal", "", "out of memory");
		return false;
	}
	t_compile = ms_since(&t0);
	/* kernel: the new generation beside the old, switched in one transaction */
	char err[512] = "";
	uint64_t gen = sb->gen + 1;
	bool paused = sb->row.state == SN_STATE_PAUSED;
	int rc = switch_gen(d, sb, snap, p->mask_request_host, gen, paused, sb->snap, sb->gen, true,
			    err, sizeof(err));
	if (rc) {
		sn_log(SN_LOG_ERROR, "sandbox %s: update: nft: %s", sb->row.id, err);
		sn_result_set(res, 500, "apply_failed", "",
			      "the kernel refused the update (%s); revision %llu stays in force",
			      err, (unsigned long long)sb->row.revision);
		goto fail;
	}
	t_kernel = ms_since(&t0) - t_compile;
	/* store: compare-and-swap on the revision */
	rc = sn_fault("store_commit") ? -EIO
				      : sn_store_commit_policy(d->store, sb->row.id, sb->row.revision,
							       canon, time(NULL));
	if (rc) {
		const char *why = sn_fault("store_commit") ? "injected fault" : sn_store_error(d->store);
		sn_log(SN_LOG_ERROR, "sandbox %s: update: store: %s", sb->row.id, why);
		/* put the old rules back as the next generation */
		if (switch_gen(d, sb, sb->snap, sb->policy->mask_request_host, gen + 1, paused, snap,
			       gen, false, err, sizeof(err))) {
			sn_log(SN_LOG_ERROR, "sandbox %s: restoring revision %llu failed: %s",
			       sb->row.id, (unsigned long long)sb->row.revision, err);
			sb->gen = gen; /* what the kernel holds now */
		} else {
			sb->gen = gen + 1;
		}
		sn_result_set(res, 500, "store_failed", "",
			      "storing the update failed (%s); revision %llu stays in force", why,
			      (unsigned long long)sb->row.revision);
		goto fail;
	}
	/* publish */
	sn_snapshot_unref(sb->snap);
	sn_policy_free(sb->policy);
	free(sb->row.policy);
	sb->snap = snap;
	sb->policy = p;
	sb->row.policy = canon;
	sb->row.revision++;
	sb->gen = gen;
	sn_log(SN_LOG_INFO,
	       "sandbox %s: policy revision %llu in force (parse+compile %.2f ms, kernel %.2f ms, "
	       "store %.2f ms)",
	       sb->row.id, (unsigned long long)sb->row.revision, t_compile, t_kernel,
	       ms_since(&t0) - t_compile - t_kernel);
	return true;
fail:
	sn_snapshot_unref(snap);
	free(canon);
	sn_policy_free(p);
	return false;
}

/* Applies sb's current snapshot as the next generation, paused or not. */
static int reapply(struct sn_daemon *d, struct sn_sandbox *sb, bool paused, char *err,
		   size_t errsize)
{
	int rc = switch_gen(d, sb, sb->snap, sb->policy->mask_request_host, sb->gen + 1, paused,
			    sb->snap, sb->gen, false, err, errsize);
	if (!rc)
		sb->gen++;
	return rc;
}

static bool set_paused(struct sn_daemon *d, struct sn_sandbox *sb, bool paused,
		       struct sn_result *res)
{
	memset(res, 0, sizeof(*res));
	if ((sb->row.state == SN_STATE_PAUSED) == paused) {
		sn_result_set(res, 409, "conflict", "", "sandbox %s is %s already", sb->row.id,
			      paused ? "paused" : "running");
		return false;
	}
	char err[512], cg[48];
	sn_sandbox_cgroup(sb, cg, sizeof(cg));
	int rc = reapply(d, sb, paused, err, sizeof(err));
	if (rc) {
		sn_result_set(res, 500, "apply_failed", "", "nft: %s", err);
		return false;
	}
	rc = sn_cgroup_freeze(&d->cgroups, cg, paused);
	if (!rc)
		rc = sn_store_set_state(d->store, sb->row.id,
					paused ? SN_STATE_PAUSED : SN_STATE_RUNNING);
	if (rc) {
		sn_result_set(res, 500, "apply_failed", "", "%s: %s",
			      rc == -EIO ? "store" : "cgroup freezer",
			      rc == -EIO ? sn_store_error(d->store) : strerror(-rc));
		sn_cgroup_freeze(&d->cgroups, cg, !paused);
		reapply(d, sb, !paused, err, sizeof(err));
		return false;
	}
	sb->row.state = paused ? SN_STATE_PAUSED : SN_STATE_RUNNING;
	sn_log(SN_LOG_INFO, "sandbox %s: %s", sb->row.id, paused ? "paused" : "resumed");
	return true;
}

bool sn_sandbox_pause(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_result *res)
{
	return set_paused(d, sb, true, res);
}

bool sn_sandbox_resume(struct sn_daemon *d, struct sn_sandbox *sb, struct sn_result *res)
{
	return set_paused(d, sb, false, res);
}

/* ---- start, reconcile, stop ---- */

static int load_keys(struct sn_daemon *d, char *err, size_t errsize)
{
	char path[4096];
	const char *file = d->cfg.api_keys_file;
	if (!file) {
		snprintf(path, sizeof(path), "%s/api-key", d->cfg.state_dir);
		file = path;
		if (access(path, F_OK) != 0) {
			uint8_t rnd[24];
			if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
				snprintf(err, errsize, "no randomness for the API key");
				return -EIO;
			}
			/* made 0600, never readable by others for a moment (an open descriptor
			 * would keep the right to read what comes later) */
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
			if (!f) {
				int e = errno;
				if (fd >= 0)
					close(fd);
				snprintf(err, errsize, "%s: %s", path, strerror(e));
				return -e;
			}
			for (size_t i = 0; i < sizeof(rnd); i++)
				fprintf(f, "%02x", rnd[i]);
			fprintf(f, " default\n");
			if (ferror(f) | fclose(f)) { /* a key cut short is no key */
				int e = errno ? errno : EIO;
				unlink(path);
				snprintf(err, errsize, "%s: %s", path, strerror(e));
				return -e;
			}
		}
	}
	FILE *f = fopen(file, "r");
	if (!f) {
		snprintf(err, errsize, "%s: %s", file, strerror(errno));
		return -errno;
	}
	char line[512];
	int lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char key[256], team[128];
		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
			continue;
		if (sscanf(line, "%255s %127s", key, team) != 2 || strlen(key) >= sizeof(d->keys[0].key) ||
		    strlen(team) >= sizeof(d->keys[0].team) || d->nkeys == SN_MAX_KEYS) {
			snprintf(err, errsize, "%s:%d: want \"<key> <team>\"", file, lineno);
			fclose(f);
			return -EINVAL;
		}
		snprintf(d->keys[d->nkeys].key, sizeof(d->keys[0].key), "%s", key);
		snprintf(d->keys[d->nkeys].team, sizeof(d->keys[0].team), "%s", team);
		d->nkeys++;
	}
	fclose(f);
	if (!d->nkeys) {
		snprintf(err, errsize, "%s: no API keys", file);
		return -EINVAL;
	}
	return 0;
}

/* Guard rails: the pools, every address of the host, the operator's ranges. */
static void build_guard(struct sn_daemon *d)
{
	size_t n = 0;
	d->guard[n++] = d->cfg.pool4;
	d->pools[0] = d->cfg.pool4;
	if (d->cfg.has_pool6) {
		d->guard[n++] = d->cfg.pool6;
		d->pools[1] = d->cfg.pool6;
	}
	for (size_t i = 0; i < d->cfg.nguard_deny; i++)
		d->guard[n++] = d->cfg.guard_deny[i];
	struct ifaddrs *ifs;
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i && n < sizeof(d->guard) / sizeof(d->guard[0]);
		     i = i->ifa_next) {
			if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
					     i->ifa_addr->sa_family != AF_INET6))
				continue;
			struct sn_cidr c = {.family = (uint8_t)i->ifa_addr->sa_family};
			if (c.family == AF_INET) {
				memcpy(c.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
				c.plen = 32;
			} else {
				memcpy(c.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
				c.plen = 128;
				if (c.addr[0] == 0xfe && (c.addr[1] & 0xc0) == 0x80)
					continue; /* link-local: guarded as a range already */
			}
			if (!sn_cidrs_contain(d->guard, n, c.family, c.addr))
				d->guard[n++] = c;
		}
		freeifaddrs(ifs);
	}
	d->nftcfg = (struct sn_nft_config){.dns_port = d->cfg.dns_port,
					   .proxy_port = d->cfg.proxy_port,
					   .guard = d->guard,
					   .nguard = n,
					   .pools = d->pools,
					   .npools = d->cfg.has_pool6 ? 2 : 1,
					   .proxy_enabled = true,
					   .nflog_group = (uint16_t)d->cfg.nflog_group,
					   .dns_rate = d->cfg.dns_rate,
					   .max_flows = d->cfg.max_flows};
}

static int load_row(const struct sn_sandbox_row *row, void *arg)
{
	struct sn_daemon *d = arg;
	struct sn_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	sb->row = *row;
	sb->row.labels = strdup(row->labels);
	sb->row.policy = strdup(row->policy);
	if (!sb->row.labels || !sb->row.policy) {
		sandbox_free(sb);
		return -ENOMEM;
	}
	struct sn_errs errs;
	sn_errs_init(&errs);
	if (sn_policy_parse(row->policy, strlen(row->policy), SN_FORMAT_JSON, SN_DIALECT_NATIVE,
			    &sb->policy, &errs) ||
	    !(sb->snap = sn_snapshot_compile(sb->policy))) {
		/* fail closed: a stored policy we cannot read blocks everything */
		sn_log(SN_LOG_ERROR, "sandbox %s: stored policy unreadable (%s); blocking all",
		       row->id, errs.n ? errs.e[0].msg : "out of memory");
		sn_policy_free(sb->policy);
		const char *block = "{\"egress\":{\"mode\":\"block-all\"},\"ingress\":{\"mode\":"
				    "\"block-all\"}}";
		if (sn_policy_parse(block, strlen(block), 0, 0, &sb->policy, NULL) ||
		    !(sb->snap = sn_snapshot_compile(sb->policy))) {
			sandbox_free(sb);
			return -ENOMEM;
		}
	}
	names_for(sb);
	sb->index = block_of(&d->cfg, row->addr4);
	sb->gen = 1;
	sb->next = d->sandboxes;
	d->sandboxes = sb;
	return 0;
}

/* Namespaces and links of stored sandboxes are recreated when missing; sandnet namespaces with no
 * sandbox behind them go. */
static void reconcile_plumbing(struct sn_daemon *d)
{
	for (struct sn_sandbox *sb = d->sandboxes; sb; sb = sb->next) {
		char err[512], cg[48];
		sn_sandbox_cgroup(sb, cg, sizeof(cg));
		int rc = sn_cgroup_create(&d->cgroups, cg);
		if (rc == 0)
			sn_cgroup_freeze(&d->cgroups, cg, sb->row.state == SN_STATE_PAUSED);
		else
			sn_log(SN_LOG_ERROR, "sandbox %s: cgroup: %s", sb->row.id, strerror(-rc));
		int fd = sn_netns_open(sb->netns);
		if (fd < 0) {
			sn_log(SN_LOG_WARN, "sandbox %s: namespace missing, recreating", sb->row.id);
			if (plumb(d, sb, err, sizeof(err)))
				sn_log(SN_LOG_ERROR, "sandbox %s: %s", sb->row.id, err);
			continue;
		}
		if (sn_link_exists(-1, sb->ifname) == 0) {
			sn_log(SN_LOG_WARN, "sandbox %s: link missing, recreating", sb->row.id);
			sn_link_del(fd, "eth0");
			if (plumb_links(d, sb, fd, err, sizeof(err)))
				sn_log(SN_LOG_ERROR, "sandbox %s: %s", sb->row.id, err);
		}
		close(fd);
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/netns", d->cfg.state_dir);
	DIR *dir = opendir(path);
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		if (strncmp(e->d_name, "sn-", 3) != 0)
			continue;
		bool known = false;
		for (struct sn_sandbox *sb = d->sandboxes; sb && !known; sb = sb->next)
			known = strcmp(sb->netns, e->d_name) == 0;
		if (known)
			continue;
		struct sn_sandbox ghost = {0};
		snprintf(ghost.row.id, sizeof(ghost.row.id), "%s", e->d_name + 3);
		names_for(&ghost);
		sn_log(SN_LOG_WARN, "namespace %s belongs to no sandbox: removed", e->d_name);
		unplumb(d, &ghost);
	}
	if (dir)
		closedir(dir);
}

/* The whole table in one transaction: old objects (of any sandbox, known or not) go, the current
 * ones come, with no moment in between where a sandbox is unfiltered. */
static int reconcile_rules(struct sn_daemon *d, char *err, size_t errsize)
{
	struct sn_text t = {0};
	sn_text_printf(&t, "add table inet " SN_NFT_TABLE "\ndelete table inet " SN_NFT_TABLE "\n");
	int rc = sn_nft_render_table(&t, &d->nftcfg);
	for (struct sn_sandbox *sb = d->sandboxes; sb && !rc; sb = sb->next) {
		struct sn_nft_sandbox v =
			nft_view(d, sb, sb->gen, sb->row.state == SN_STATE_PAUSED);
		rc = sn_nft_render_sandbox(&t, &d->nftcfg, &v, sb->snap, NULL, 0);
	}
	if (!rc)
		rc = apply_text(d, &t, err, errsize);
	for (struct sn_sandbox *sb = d->sandboxes; sb && !rc; sb = sb->next)
		sb->kpaused = sb->row.state == SN_STATE_PAUSED;
	sn_text_clear(&t);
	return rc;
}

int sn_daemon_start(struct sn_daemon *d, char *err, size_t errsize)
{
	if (geteuid() != 0) {
		snprintf(err, errsize, "sandnetd needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)");
		return -EPERM;
	}
	/* namespaces are pinned by bind mounts under /run/netns: made in a private mount namespace
	 * (as under "ip netns exec") they would vanish with the daemon */
	struct stat self_mnt, init_mnt;
	if (stat("/proc/self/ns/mnt", &self_mnt) == 0 && stat("/proc/1/ns/mnt", &init_mnt) == 0 &&
	    self_mnt.st_ino != init_mnt.st_ino)
		sn_log(SN_LOG_WARN, "running in a mount namespace of its own: sandbox namespaces may "
				    "not outlive this process (use nsenter --net, not ip netns exec)");
	int rc = sn_store_open(d->cfg.state_dir, &d->store, err, errsize);
	if (rc)
		return rc;
	if ((rc = load_keys(d, err, errsize)))
		return rc;
	char markers[4096];
	snprintf(markers, sizeof(markers), "%s/netns", d->cfg.state_dir);
	if (mkdir(markers, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errsize, "%s: %s", markers, strerror(errno));
		return -errno;
	}
	if ((rc = sn_nft_open(&d->nft))) {
		snprintf(err, errsize, "libnftables: %s", strerror(-rc));
		return rc;
	}
	if ((rc = sn_elems_open(&d->elems))) {
		snprintf(err, errsize, "netlink: %s", strerror(-rc));
		return rc;
	}
	if ((rc = sn_cgroup_init(&d->cgroups, d->cfg.exec_limit))) {
		snprintf(err, errsize, "cgroup v2: %s (sandnetd needs a cgroup2 mount)",
			 strerror(-rc));
		return rc;
	}
	for (int c = 0; c < SN_CG_NCTL; c++) {
		static const char *const flag[SN_CG_NCTL] = {"--exec-pids-max", "--exec-memory-max",
							     "--exec-cpu-max"};
		if (!d->cfg.exec_limit[c] || d->cgroups.where[c] != SN_CG_NONE)
			continue;
		if (d->cfg.exec_limit_set[c]) {
			snprintf(
			    err, errsize,
			    "%s: no %s controller to enforce it (not in cgroup v2's "
			    "cgroup.controllers, no cgroup v1 hierarchy of it); 0 runs without",
			    flag[c], sn_cgroup_ctl_name(c));
			return -ENOTSUP;
		}
		sn_log(SN_LOG_WARN,
		       "no %s cgroup controller: exec'd commands run without the %s limit",
		       sn_cgroup_ctl_name(c), flag[c]);
	}
	build_guard(d);
	uint8_t *p6 = d->cfg.has_pool6 ? d->cfg.pool6.addr : NULL;
	if (sn_net_init(&d->net, d->cfg.pool4.addr, d->cfg.pool4.plen, p6)) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	if ((rc = sn_sysctl_set(-1, "net/ipv4/ip_forward", "1")) ||
	    (d->cfg.has_pool6 && (rc = sn_sysctl_set(-1, "net/ipv6/conf/all/forwarding", "1")))) {
		snprintf(err, errsize, "enabling forwarding: %s", strerror(-rc));
		return rc;
	}
	if ((rc = sn_store_list(d->store, NULL, load_row, d))) {
		snprintf(err, errsize, "loading sandboxes: %s", sn_store_error(d->store));
		return rc;
	}
	reconcile_plumbing(d);
	if ((rc = reconcile_rules(d, err, errsize))) {
		/* nftables missing or too old: say so instead of running unenforced */
		char keep[512];
		snprintf(keep, sizeof(keep), "%s", err);
		snprintf(err, errsize, "nftables: %s (needs the nf_tables, nft_nat, nft_reject "
				       "kernel features)",
			 keep);
		return rc;
	}
	size_t n = 0;
	for (struct sn_sandbox *sb = d->sandboxes; sb; sb = sb->next, n++)
		if ((rc = add_view(d, sb))) {
			snprintf(err, errsize, "out of memory");
			return rc;
		}
	sn_log(SN_LOG_INFO, "reconciled %zu sandboxes", n);
	return 0;
}

void sn_daemon_stop(struct sn_daemon *d)
{
	/* kernel state stays: sandboxes outlive the daemon */
	while (d->sandboxes) {
		struct sn_sandbox *sb = d->sandboxes;
		d->sandboxes = sb->next;
		sandbox_free(sb);
	}
	sn_nft_close(d->nft);
	sn_elems_close(d->elems);
	sn_store_close(d->store);
}

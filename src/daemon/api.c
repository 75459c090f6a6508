/* sandnetd's REST API (DESIGN.md section 3) on libmicrohttpd; JSON with jansson. Daemon layer.
 * Each connection has a thread of its own; every request but an exec's command runs under the
 * control lock, which serialises changes (the control thread of DESIGN.md section 4). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "body.h"
#include "exec.h"

#define BODY_MAX ((size_t)SN_LIMIT_DOC_BYTES + 4096)

struct req {
	char *body;
	size_t len, cap;
	bool too_big;
	bool refused; /* answered 401 at the headers */
	char exec_id[SN_ID_MAX + 1], exec_team[65]; /* set by route() for an exec */
};

/* route()'s answer for an exec: the caller runs it (the command must not hold the lock) */
#define EXEC_TAKES_LOCK ((enum MHD_Result)42)

/* Splits "<id>[/<sub>]" of a URL; false when the id cannot be a sandbox id's length. */
static bool split_id(const char *rest, char id[SN_ID_MAX + 1], const char **sub)
{
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n > SN_ID_MAX)
		return false;
	memcpy(id, rest, n);
	id[n] = 0;
	*sub = slash ? slash : "";
	return true;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
	json_decref(j);
	struct MHD_Response *r;
	if (s)
		r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	else
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	if (s)
		MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *code,
				  const char *path, const char *msg)
{
	/* path and msg may hold what the caller sent, cut short: the body is UTF-8 whatever they
	 * hold */
	path = path ? path : "";
	return send_json(c, status,
			 json_pack("{s:{s:s, s:o, s:o}}", "error", "code", code, "path",
				   sn_body_string(path, strlen(path)), "message",
				   sn_body_string(msg, strlen(msg))));
}

static enum MHD_Result send_result(struct MHD_Connection *c, const struct sn_result *r)
{
	return send_error(c, r->status, r->code, r->path, r->message);
}

/* The team of the request's key, or NULL. */
static const char *auth(struct sn_daemon *d, struct MHD_Connection *c)
{
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
	const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if ((!key || !*key) && authz && strncasecmp(authz, "Bearer ", 7) == 0)
		key = authz + 7;
	if (!key)
		return NULL;
	for (size_t i = 0; i < d->nkeys; i++) {
		/* constant time in the key's length: no early exit on the first difference */
		const char *k = d->keys[i].key;
		size_t kl = strlen(k), ql = strlen(key);
		unsigned diff = kl != ql;
		for (size_t j = 0; j < kl; j++)
			diff |= (unsigned)(k[j] ^ (j < ql ? key[j] : 0));
		if (!diff)
			return d->keys[i].team;
	}
	return NULL;
}

static json_t *network_json(const struct sn_sandbox *sb)
{
	json_t *pol = json_loads(sb->row.policy, 0, NULL);
	json_t *o = json_pack("{s:I}", "revision", (json_int_t)sb->row.revision);
	if (!pol || !o) {
		json_decref(pol);
		json_decref(o);
		return NULL;
	}
	json_object_update(o, pol);
	json_decref(pol);
	return o;
}

/* {"revision": N, <the canonical policy's members>} without parsing the stored document again:
 * the canonical form is compact JSON that starts with '{' (for 100,000 entries a parse and a dump
 * cost more than the update itself). */
static enum MHD_Result send_network(struct MHD_Connection *c, const struct sn_sandbox *sb)
{
	const char *pol = sb->row.policy;
	size_t n = strlen(pol);
	char head[40];
	int h = snprintf(head, sizeof(head), "{\"revision\":%llu,", (unsigned long long)sb->row.revision);
	char *s = pol[0] == '{' && n > 2 ? malloc((size_t)h + n) : NULL;
	if (!s)
		return send_json(c, 200, network_json(sb));
	memcpy(s, head, (size_t)h);
	memcpy(s + h, pol + 1, n); /* with its NUL */
	struct MHD_Response *r =
		MHD_create_response_from_buffer((size_t)h + n - 1, s, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static json_t *sandbox_json(const struct sn_sandbox *sb)
{
	char ts[32];
	struct tm tm;
	time_t t = (time_t)sb->row.created_at;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *addr = json_pack("{s:s}", "ipv4", sb->row.addr4);
	if (addr && sb->row.addr6[0])
		json_object_set_new(addr, "ipv6", json_string(sb->row.addr6));
	json_t *labels = json_loads(sb->row.labels, 0, NULL);
	return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:s}", "id", sb->row.id, "state",
			 sb->row.state == SN_STATE_PAUSED ? "paused" : "running", "address", addr,
			 "netns", sb->netns, "network", network_json(sb), "labels",
			 labels ? labels : json_object(), "created_at", ts);
}

static enum MHD_Result create(struct sn_daemon *d, struct MHD_Connection *c, const char *team,
			      struct req *rq)
{
	struct sn_create_body b;
	struct sn_result err;
	if (!sn_body_create(rq->body, rq->len, &b, &err))
		return send_result(c, &err);
	struct sn_result res;
	size_t netlen = b.network ? strlen(b.network) : 0;
	struct sn_sandbox *sb = sn_sandbox_create(d, team, b.id, b.network, netlen, b.labels, &res);
	sn_body_create_clear(&b);
	if (!sb)
		return send_result(c, &res);
	return send_json(c, 201, sandbox_json(sb));
}

static enum MHD_Result list(struct sn_daemon *d, struct MHD_Connection *c, const char *team)
{
	json_t *arr = json_array();
	for (struct sn_sandbox *sb = d->sandboxes; sb && arr; sb = sb->next)
		if (strcmp(sb->row.team, team) == 0)
			json_array_append_new(arr, sandbox_json(sb));
	return send_json(c, 200, json_pack("{s:o}", "sandboxes", arr));
}

/* A revision or sequence number: the n bytes at s, 1 to 19 decimal digits (no sign, no space). */
static bool parse_number(const char *s, size_t n, uint64_t *out)
{
	if (n < 1 || n > 19 || strspn(s, "0123456789") < n)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	*out = v;
	return true;
}

static enum MHD_Result put_network(struct sn_daemon *d, struct MHD_Connection *c,
				   struct sn_sandbox *sb, struct req *rq)
{
	uint64_t expect = 0; /* 0: no precondition */
	const char *im = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
	if (im && strcmp(im, "*") != 0) { /* "*": any current revision (RFC 9110 13.1.1) */
		/* a revision, bare or as an entity tag: 1 to 19 digits, not 0 */
		size_t n = strlen(im), q = n >= 2 && im[0] == '"' && im[n - 1] == '"';
		if (!parse_number(im + q, n - 2 * q, &expect) || expect == 0)
			return send_error(c, 400, "invalid_request", "If-Match",
					  "must be a revision number (or *)");
	}
	struct sn_result res;
	if (!sn_sandbox_update(d, sb, rq->body ? rq->body : "{}", rq->body ? rq->len : 2,
			       SN_DIALECT_AUTO, expect, false, &res))
		return send_result(c, &res);
	return send_network(c, sb);
}

/* ---- compatibility endpoints ---- */

static enum MHD_Result e2b_error(struct MHD_Connection *c, int status, const char *msg)
{
	return send_json(c, status, json_pack("{s:i, s:o}", "code", status, "message",
					      sn_body_string(msg, strlen(msg))));
}

static json_t *e2b_sandbox(const struct sn_sandbox *sb)
{
	bool exact;
	char *v = sn_policy_format_e2b(sb->policy, &exact);
	json_t *view = v ? json_loads(v, 0, NULL) : NULL;
	free(v);
	if (!view)
		return NULL;
	char ts[32];
	struct tm tm;
	time_t t = (time_t)sb->row.created_at;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *o = json_pack("{s:s, s:s, s:s, s:O, s:O}", "sandboxID", sb->row.id, "state",
			      sb->row.state == SN_STATE_PAUSED ? "paused" : "running", "startedAt",
			      ts, "allowInternetAccess", json_object_get(view, "allowInternetAccess"),
			      "network", json_object_get(view, "network"));
	json_decref(view);
	return o;
}

static enum MHD_Result route_e2b(struct sn_daemon *d, struct MHD_Connection *c, const char *url,
				 const char *method, struct req *rq, const char *team)
{
	char id[SN_ID_MAX + 1];
	const char *sub;
	struct sn_sandbox *sb = split_id(url + strlen("/sandboxes/"), id, &sub)
					? sn_sandbox_find(d, id, team)
					: NULL;
	if (!sb)
		return e2b_error(c, 404, "sandbox not found");
	if (!*sub && strcmp(method, "GET") == 0)
		return send_json(c, 200, e2b_sandbox(sb));
	if (strcmp(sub, "/network") == 0 && strcmp(method, "PUT") == 0) {
		struct sn_result res;
		if (!sn_sandbox_update(d, sb, rq->body ? rq->body : "{}", rq->body ? rq->len : 2,
				       SN_DIALECT_E2B, 0, false, &res)) {
			char msg[700];
			snprintf(msg, sizeof(msg), "%s%s%s", res.path, res.path[0] ? ": " : "",
				 res.message);
			return e2b_error(c, res.status, msg);
		}
		return send_json(c, 204, NULL);
	}
	return e2b_error(c, 404, "no such endpoint");
}

static json_t *sandbox0_view(const struct sn_sandbox *sb)
{
	char *v = sn_policy_format_sandbox0(sb->policy, 0);
	json_t *o = v ? json_loads(v, 0, NULL) : NULL;
	free(v);
	return o;
}

static enum MHD_Result route_sandbox0(struct sn_daemon *d, struct MHD_Connection *c,
				      const char *url, const char *method, struct req *rq,
				      const char *team)
{
	char id[SN_ID_MAX + 1];
	const char *sub;
	if (!split_id(url + strlen("/api/v1/sandboxes/"), id, &sub) || strcmp(sub, "/network") != 0)
		return send_error(c, 404, "not_found", "", "no such endpoint");
	struct sn_sandbox *sb = sn_sandbox_find(d, id, team);
	if (!sb)
		return send_error(c, 404, "not_found", "", "no such sandbox");
	if (strcmp(method, "GET") == 0)
		return send_json(c, 200, sandbox0_view(sb));
	if (strcmp(method, "PUT") != 0)
		return send_error(c, 405, "method_not_allowed", "", "use GET or PUT");
	struct sn_result res;
	if (!sn_sandbox_update(d, sb, rq->body ? rq->body : "{}", rq->body ? rq->len : 2,
			       SN_DIALECT_SANDBOX0, 0, true, &res))
		return send_result(c, &res);
	return send_json(c, 200, sandbox0_view(sb));
}

static enum MHD_Result e2b_error(struct MHD_Connection *c, int status, const char *msg);
static enum MHD_Result route_e2b(struct sn_daemon *d, struct MHD_Connection *c, const char *url,
				 const char *method, struct req *rq, const char *team);
static enum MHD_Result route_sandbox0(struct sn_daemon *d, struct MHD_Connection *c,
				      const char *url, const char *method, struct req *rq,
				      const char *team);

static enum MHD_Result exec_req(struct sn_daemon *d, struct MHD_Connection *c,
				struct sn_sandbox *sb, struct req *rq)
{
	struct sn_exec_body b;
	struct sn_result err;
	if (!sn_body_exec(rq->body, rq->len, &b, &err)) {
		pthread_mutex_unlock(&d->lock);
		return send_result(c, &err);
	}
	if (sb->row.state == SN_STATE_PAUSED) {
		sn_body_exec_clear(&b);
		pthread_mutex_unlock(&d->lock);
		return send_error(c, 409, "conflict", "", "the sandbox is paused; resume it first");
	}
	/* a command holds one of the API's connection threads while it runs: past the limit the
	 * rest stay free for every other call (a policy update among them) */
	if (d->exec_running >= d->cfg.exec_max_running) {
		unsigned n = d->exec_running;
		sn_body_exec_clear(&b);
		pthread_mutex_unlock(&d->lock);
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "%u commands are running, the most --exec-max-running allows; try again "
			 "when one has ended",
			 n);
		return send_error(c, 503, "busy", "", msg);
	}
	d->exec_running++;
	struct sn_exec_req x = {.argv = b.argv,
				.stdin_data = b.stdin_data,
				.stdin_len = b.stdin_len,
				.timeout_ms = b.timeout_ms};
	sn_sandbox_exec_user(d, sb, &x.uid, &x.gid);
	snprintf(x.netns, sizeof(x.netns), "%s", sb->netns);
	snprintf(x.resolv, sizeof(x.resolv), "/etc/netns/%s/resolv.conf", sb->netns);
	x.cgroups = &d->cgroups;
	sn_sandbox_cgroup(sb, x.cgroup, sizeof(x.cgroup));
	char id[SN_ID_MAX + 1];
	snprintf(id, sizeof(id), "%s", sb->row.id);
	/* the command runs without the lock: other requests go on meanwhile */
	pthread_mutex_unlock(&d->lock);
	struct sn_exec_res r = {0};
	int rc = sn_exec_run(&x, &r);
	pthread_mutex_lock(&d->lock);
	d->exec_running--;
	pthread_mutex_unlock(&d->lock);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "%s", b.argv[0]);
	sn_body_exec_clear(&b);
	if (rc) {
		char msg[256];
		snprintf(msg, sizeof(msg), "the command could not be started: %s",
			 r.setup_error[0] ? r.setup_error : strerror(-rc));
		sn_exec_res_clear(&r);
		return send_error(c, 500, "exec_failed", "", msg);
	}
	sn_log(SN_LOG_INFO, "sandbox %s: exec %s: exit %d%s", id, cmd, r.exit_code,
	       r.timed_out ? " (timed out)" : "");
	json_t *o = json_pack("{s:i, s:o, s:o, s:b, s:b, s:b}", "exit_code", r.exit_code, "stdout",
			      sn_body_string(r.out.data, r.out.len), "stderr",
			      sn_body_string(r.err.data, r.err.len), "timed_out", r.timed_out,
			      "stdout_truncated", r.out.truncated, "stderr_truncated",
			      r.err.truncated);
	sn_exec_res_clear(&r);
	return send_json(c, 200, o);
}

static enum MHD_Result route(struct sn_daemon *d, struct MHD_Connection *c, const char *url,
			     const char *method, struct req *rq)
{
	if (strcmp(url, "/healthz") == 0)
		return send_json(c, 200, json_pack("{s:s}", "status", "ok"));
	const char *team = auth(d, c);
	if (!team && strncmp(url, "/sandboxes/", 11) == 0)
		return e2b_error(c, 401, "missing or unknown API key");
	if (!team)
		return send_error(c, 401, "unauthorized", "",
				  "missing or unknown API key (Authorization: Bearer <key> or "
				  "X-API-Key)");
	if (rq->too_big)
		return send_error(c, 400, "limit_exceeded", "",
				  "the request body is over the 64 MiB limit");
	if (strncmp(url, "/sandboxes/", 11) == 0)
		return route_e2b(d, c, url, method, rq, team);
	if (strncmp(url, "/api/v1/sandboxes/", 18) == 0)
		return route_sandbox0(d, c, url, method, rq, team);
	if (strcmp(url, "/v1/sandboxes") == 0) {
		if (strcmp(method, "POST") == 0)
			return create(d, c, team, rq);
		if (strcmp(method, "GET") == 0)
			return list(d, c, team);
		return send_error(c, 405, "method_not_allowed", "", "use GET or POST");
	}
	if (strncmp(url, "/v1/sandboxes/", 14) != 0)
		return send_error(c, 404, "not_found", "", "no such endpoint");
	char id[SN_ID_MAX + 1];
	const char *sub;
	struct sn_sandbox *sb =
		split_id(url + strlen("/v1/sandboxes/"), id, &sub) ? sn_sandbox_find(d, id, team) : NULL;
	if (!sb)
		return send_error(c, 404, "not_found", "", "no such sandbox");
	struct sn_result res;
	if (!*sub) {
		if (strcmp(method, "GET") == 0)
			return send_json(c, 200, sandbox_json(sb));
		if (strcmp(method, "DELETE") == 0) {
			if (!sn_sandbox_delete(d, sb, &res))
				return send_result(c, &res);
			return send_json(c, 204, NULL);
		}
		return send_error(c, 405, "method_not_allowed", "", "use GET or DELETE");
	}
	if (strcmp(sub, "/pause") == 0 || strcmp(sub, "/resume") == 0) {
		if (strcmp(method, "POST") != 0)
			return send_error(c, 405, "method_not_allowed", "", "use POST");
		bool ok = strcmp(sub, "/pause") == 0 ? sn_sandbox_pause(d, sb, &res)
						      : sn_sandbox_resume(d, sb, &res);
		return ok ? send_json(c, 200, sandbox_json(sb)) : send_result(c, &res);
	}
	if (strcmp(sub, "/exec") == 0) {
		if (strcmp(method, "POST") != 0)
			return send_error(c, 405, "method_not_allowed", "", "use POST");
		snprintf(rq->exec_id, sizeof(rq->exec_id), "%s", sb->row.id);
		snprintf(rq->exec_team, sizeof(rq->exec_team), "%s", team);
		return EXEC_TAKES_LOCK;
	}
	if (strcmp(sub, "/network") == 0) {
		if (strcmp(method, "GET") == 0)
			return send_network(c, sb);
		if (strcmp(method, "PUT") == 0)
			return put_network(d, c, sb, rq);
		return send_error(c, 405, "method_not_allowed", "", "use GET or PUT");
	}
	if (strcmp(sub, "/network/denials") == 0) {
		if (strcmp(method, "GET") != 0)
			return send_error(c, 405, "method_not_allowed", "", "use GET");
		const char *since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
		uint64_t from = 0;
		if (since && !parse_number(since, strlen(since), &from))
			return send_error(c, 400, "invalid_request", "since",
					  "since is a denial sequence number (0 or more)");
		json_t *arr = sb->view ? sn_view_denials(sb->view, from) : json_array();
		return send_json(c, 200, json_pack("{s:o}", "denials", arr ? arr : json_array()));
	}
	return send_error(c, 404, "not_found", "", "no such endpoint");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	(void)version;
	struct sn_daemon *d = cls;
	struct req *rq = *con_cls;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		/* refuse an unknown key before reading a body: nobody unauthenticated makes us buffer
		 * up to the body limit */
		if (strcmp(url, "/healthz") != 0 && !auth(d, c)) {
			rq->refused = true;
			if (strncmp(url, "/sandboxes/", 11) == 0)
				return e2b_error(c, 401, "missing or unknown API key");
			return send_error(c, 401, "unauthorized", "",
					  "missing or unknown API key (Authorization: Bearer <key> or "
					  "X-API-Key)");
		}
		return MHD_YES;
	}
	if (rq->refused) {
		*upload_size = 0; /* a response is queued already; drop the body */
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rq->too_big) {
			if (rq->len + *upload_size > BODY_MAX) {
				rq->too_big = true;
			} else {
				if (rq->len + *upload_size + 1 > rq->cap) {
					size_t nc = rq->cap ? rq->cap : 4096;
					while (nc < rq->len + *upload_size + 1)
						nc *= 2;
					char *nb = realloc(rq->body, nc);
					if (!nb)
						return MHD_NO;
					rq->body = nb;
					rq->cap = nc;
				}
				memcpy(rq->body + rq->len, upload, *upload_size);
				rq->len += *upload_size;
				rq->body[rq->len] = 0;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&d->lock);
	enum MHD_Result ret = route(d, c, url, method, rq);
	if (ret == EXEC_TAKES_LOCK) {
		/* still locked: exec_req looks the sandbox up, then lets go for the command */
		struct sn_sandbox *sb = sn_sandbox_find(d, rq->exec_id, rq->exec_team);
		ret = sb ? exec_req(d, c, sb, rq) : (pthread_mutex_unlock(&d->lock),
						     send_error(c, 404, "not_found", "",
								"no such sandbox"));
	} else {
		pthread_mutex_unlock(&d->lock);
	}
	sn_log(SN_LOG_DEBUG, "%s %s", method, url);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	struct req *rq = *con_cls;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

struct MHD_Daemon *sn_api_start(struct sn_daemon *d, char *err, size_t errsize)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ERROR_LOG;
	if (inet_pton(AF_INET, d->cfg.listen_addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(d->cfg.listen_port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, d->cfg.listen_addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(d->cfg.listen_port);
		sl = sizeof(*s6);
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errsize, "--listen: \"%s\" is not an IP address", d->cfg.listen_addr);
		return NULL;
	}
	(void)sl;
	struct MHD_Daemon *m = MHD_start_daemon(
		flags, d->cfg.listen_port, NULL, NULL, handler, d, MHD_OPTION_SOCK_ADDR, &ss,
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_END);
	if (!m)
		snprintf(err, errsize, "cannot listen on %s:%u: %s", d->cfg.listen_addr,
			 d->cfg.listen_port, strerror(errno));
	return m;
}

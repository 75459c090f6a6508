/* sandnetd's REST API (DESIGN.md section 3) on libmicrohttpd; JSON with jansson. Daemon layer.
 * libmicrohttpd runs one internal thread: requests are handled one at a time, which serialises
 * every change (the control thread of DESIGN.md section 4). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"

#define BODY_MAX ((size_t)SN_LIMIT_DOC_BYTES + 4096)

struct req {
	char *body;
	size_t len, cap;
	bool too_big;
};

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
	return send_json(c, status,
			 json_pack("{s:{s:s, s:s, s:s}}", "error", "code", code, "path", path ? path : "",
				   "message", msg));
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
	if (!key && authz && strncasecmp(authz, "Bearer ", 7) == 0)
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
	json_error_t je;
	json_t *body = rq->len ? json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &je)
			       : json_object();
	if (!body) {
		char msg[300];
		snprintf(msg, sizeof(msg), "JSON syntax error at line %d, column %d: %s", je.line,
			 je.column, je.text);
		return send_error(c, 400, "invalid_json", "", msg);
	}
	if (!json_is_object(body)) {
		json_decref(body);
		return send_error(c, 400, "invalid_request", "", "the body must be a JSON object");
	}
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v)
	{
		if (strcmp(key, "id") && strcmp(key, "network") && strcmp(key, "labels")) {
			json_decref(body);
			return send_error(c, 400, "invalid_request", key,
					  "unknown field; a sandbox has id, network and labels");
		}
	}
	json_t *jid = json_object_get(body, "id"), *net = json_object_get(body, "network"),
	       *labels = json_object_get(body, "labels");
	if (jid && !json_is_string(jid)) {
		json_decref(body);
		return send_error(c, 400, "invalid_request", "id", "must be a string");
	}
	if (labels) {
		bool ok = json_is_object(labels);
		json_object_foreach(labels, key, v) ok &= json_is_string(v);
		if (!ok) {
			json_decref(body);
			return send_error(c, 400, "invalid_request", "labels",
					  "must be an object of strings");
		}
	}
	char *doc = net ? json_dumps(net, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *lab = labels ? json_dumps(labels, JSON_COMPACT) : NULL;
	struct sn_result res;
	struct sn_sandbox *sb = sn_sandbox_create(d, team, jid ? json_string_value(jid) : NULL, doc,
						  doc ? strlen(doc) : 0, lab, &res);
	free(doc);
	free(lab);
	json_decref(body);
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

static enum MHD_Result put_network(struct sn_daemon *d, struct MHD_Connection *c,
				   struct sn_sandbox *sb, struct req *rq)
{
	uint64_t expect = 0;
	const char *im = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");
	if (im) {
		/* a revision, bare or as an entity tag */
		char buf[32];
		size_t n = strlen(im);
		if (n >= 2 && im[0] == '"' && im[n - 1] == '"') {
			snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), im + 1);
			im = buf;
		}
		char *end;
		expect = strtoull(im, &end, 10);
		if (*end || !*im || expect == 0)
			return send_error(c, 400, "invalid_request", "If-Match",
					  "must be a revision number");
	}
	struct sn_result res;
	if (!sn_sandbox_update(d, sb, rq->body ? rq->body : "{}", rq->body ? rq->len : 2,
			       SN_DIALECT_AUTO, expect, &res))
		return send_result(c, &res);
	return send_json(c, 200, network_json(sb));
}

static enum MHD_Result route(struct sn_daemon *d, struct MHD_Connection *c, const char *url,
			     const char *method, struct req *rq)
{
	if (strcmp(url, "/healthz") == 0)
		return send_json(c, 200, json_pack("{s:s}", "status", "ok"));
	const char *team = auth(d, c);
	if (!team)
		return send_error(c, 401, "unauthorized", "",
				  "missing or unknown API key (Authorization: Bearer <key> or "
				  "X-API-Key)");
	if (rq->too_big)
		return send_error(c, 400, "limit_exceeded", "",
				  "the request body is over the 64 MiB limit");
	if (strcmp(url, "/v1/sandboxes") == 0) {
		if (strcmp(method, "POST") == 0)
			return create(d, c, team, rq);
		if (strcmp(method, "GET") == 0)
			return list(d, c, team);
		return send_error(c, 405, "method_not_allowed", "", "use GET or POST");
	}
	if (strncmp(url, "/v1/sandboxes/", 14) != 0)
		return send_error(c, 404, "not_found", "", "no such endpoint");
	char id[SN_ID_MAX + 2];
	const char *rest = url + 14, *slash = strchr(rest, '/');
	size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (idlen == 0 || idlen > SN_ID_MAX)
		return send_error(c, 404, "not_found", "", "no such sandbox");
	memcpy(id, rest, idlen);
	id[idlen] = 0;
	struct sn_sandbox *sb = sn_sandbox_find(d, id, team);
	if (!sb)
		return send_error(c, 404, "not_found", "", "no such sandbox");
	const char *sub = slash ? slash : "";
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
	if (strcmp(sub, "/network") == 0) {
		if (strcmp(method, "GET") == 0)
			return send_json(c, 200, network_json(sb));
		if (strcmp(method, "PUT") == 0)
			return put_network(d, c, sb, rq);
		return send_error(c, 405, "method_not_allowed", "", "use GET or PUT");
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
	enum MHD_Result ret = route(d, c, url, method, rq);
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
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
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

/* HTTP/1 messages for the ingress proxy, on the http-parser library (libhttp-parser): the head of
 * a request or a response (method, target, version, headers, framing), then the body's end, so
 * that bodies are streamed as they come (Content-Length, chunked, or until close) and never held
 * whole. Proxy layer; pure: no allocation, no I/O.
 *
 * sn_http_head() parses a head held whole in one buffer (call again with more bytes as they
 * come) into a struct sn_http_head, whose fields point into that buffer. Then sn_http_body() is given the bytes that follow,
 * as they come, and says how many belong to this message and when it is complete. */
#ifndef SN_PROXY_HTTP_H
#define SN_PROXY_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sandnet/policy.h>

#define SN_HTTP_HEAD_MAX 16384 /* a head longer than this is refused (431) */
#define SN_HTTP_FIELDS_MAX 100 /* header fields at most (431 beyond) */
#define SN_HTTP_CONN_MAX 32    /* options a request's Connection fields name at most (400 beyond) */

struct sn_http_field {
	const char *name, *value;
	size_t nlen, vlen;
};

/* What a head says, while it is being handled: points into the buffer that holds it. */
struct sn_http_head {
	const char *target; /* request target (requests) */
	size_t tlen;
	const char *method;
	int status; /* status code (responses) */
	struct sn_http_field f[SN_HTTP_FIELDS_MAX];
	size_t nf;
	bool field_limit_hit;
	/* a request's connection options: the tokens its Connection fields list (RFC 9110 7.6.1) */
	struct sn_http_token {
		const char *p;
		size_t n;
	} conn[SN_HTTP_CONN_MAX];
	size_t nconn;
};

/* A message on a connection: small, kept from its head to its end. */
struct sn_http_msg {
	http_parser p;
	struct sn_http_head *h; /* during sn_http_head() only */
	bool response;
	bool skip_body;  /* a response to HEAD: no body, whatever the head says */
	bool keep_alive; /* the connection may carry another message after this one */
	bool upgrade;    /* a request asking to switch protocols, or a 101 response */
	bool head_only;  /* the message ended with its head (no body) */
	bool body;       /* a request's head announced a body (Content-Length > 0 or chunked) */
	bool done;
	bool lf_pending; /* the head's last byte, not yet given to the parser */
	int status;
};

/* Starts a message: a request, or a response (to a HEAD request when head_request). */
void sn_http_init(struct sn_http_msg *m, bool response, bool head_request);

/* Parses the head in buf[0..len). Returns the head's length (> 0) when it is complete, 0 when
 * more bytes are needed, -E2BIG when the head is over SN_HTTP_HEAD_MAX bytes or fields,
 * -EPROTONOSUPPORT for a request whose HTTP major version is not 1, -EINVAL when it is malformed
 * or framed in a way a server behind the proxy could read otherwise: Content-Length with chunked
 * encoding, several Content-Length fields, a line that starts with white space (obs-fold), a field
 * name with white space or other bytes outside a token, "chunked" twice or not last, a request's
 * Transfer-Encoding without "chunked" last, a request's Connection fields naming more than
 * SN_HTTP_CONN_MAX options. */
ssize_t sn_http_head(struct sn_http_msg *m, struct sn_http_head *h, const uint8_t *buf, size_t len);

/* Gives the bytes after the head, in order, as they come: returns how many of buf[0..len) belong
 * to this message (the rest is the next message, or the new protocol after an upgrade), or
 * -EINVAL when the body is malformed. m->done says the message is complete. buf NULL means the
 * peer closed: a body that runs until close is complete then. */
ssize_t sn_http_body(struct sn_http_msg *m, const uint8_t *buf, size_t len);

/* Whether f is named name (case-insensitive). */
bool sn_http_field_is(const struct sn_http_field *f, const char *name);
/* The field named name (case-insensitive), or NULL. */
const struct sn_http_field *sn_http_field(const struct sn_http_head *h, const char *name);

/* Whether a request's field f is for the proxy's hop alone and must not go on (RFC 9110 7.6.1):
 * Connection, the fields it names as options, and Keep-Alive, Proxy-Connection, TE and Upgrade.
 * Content-Length and Transfer-Encoding go on whatever Connection says: the body goes on framed as
 * it came. */
bool sn_http_hop_by_hop(const struct sn_http_head *h, const struct sn_http_field *f);

/* An absolute-form request target ("http://authority/path?query", RFC 9112 3.2.2): its authority,
 * which stands for Host, in *auth (named "Host"), and the rest, the target in origin form, in
 * [*path, *path + *plen) (empty or starting with '?' when the URI has no path). Returns 1 for an
 * absolute form, 0 for any other form, -1 for one a gateway refuses: a scheme other than http and
 * https, no host, or userinfo (RFC 9110 4.2.1, 4.2.4). */
int sn_http_absolute_form(const char *t, size_t n, struct sn_http_field *auth, const char **path,
			  size_t *plen);

/* The client a request stands for when its peer is a trusted proxy (DESIGN.md section 2): the
 * rightmost X-Forwarded-For entry, all the request's X-Forwarded-For fields read as one list, that
 * is not in trusted[0..ntrusted), or the leftmost when all are. An IPv4 address written as IPv6
 * (::ffff:a.b.c.d) is read as IPv4. *family and addr are left alone when the request has no
 * X-Forwarded-For. Returns false when an entry is not an IP address (the caller fails closed). */
bool sn_http_xff_client(const struct sn_http_head *h, const struct sn_cidr *trusted,
			size_t ntrusted, int *family, uint8_t addr[16]);

#endif

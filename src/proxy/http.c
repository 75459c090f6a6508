/* HTTP/1 messages on http-parser: see http.h. Proxy layer, pure. */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

/* The parser stops after the head and after the message (pause), and the head's fields are
 * collected as pointers: the head is parsed in one call over one buffer, so each field arrives in
 * one piece. */
static int on_target(http_parser *p, const char *at, size_t len)
{
	struct sn_http_head *h = ((struct sn_http_msg *)p->data)->h;
	h->target = at;
	h->tlen = len;
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
	struct sn_http_head *h = ((struct sn_http_msg *)p->data)->h;
	if (h->nf == SN_HTTP_FIELDS_MAX) {
		h->field_limit_hit = true;
		return -1;
	}
	h->f[h->nf++] = (struct sn_http_field){.name = at, .nlen = len, .value = "", .vlen = 0};
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
	struct sn_http_head *h = ((struct sn_http_msg *)p->data)->h;
	if (h->nf) {
		h->f[h->nf - 1].value = at;
		h->f[h->nf - 1].vlen = len;
	}
	return 0;
}

static int on_head_done(http_parser *p)
{
	struct sn_http_msg *m = p->data;
	http_parser_pause(p, 1);
	/* No body, whatever Content-Length says: a response to HEAD, 1xx, 204 and 304 (RFC 9112
	 * 6.3; a 304 may give the length of the representation it stands for). */
	unsigned st = p->status_code;
	return m->skip_body || (m->response && (st / 100 == 1 || st == 204 || st == 304)) ? 1 : 0;
}

static int on_done(http_parser *p)
{
	struct sn_http_msg *m = p->data;
	m->done = true;
	m->keep_alive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings head_settings = {
	.on_url = on_target,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_head_done,
	.on_message_complete = on_done,
};

static const http_parser_settings body_settings = {
	.on_message_complete = on_done,
};

/* RFC 9110 5.6.2: the bytes of a token (a field name); letters, digits and '-' first */
static bool tchar(uint8_t c)
{
	uint8_t l = c | 0x20;
	return (l >= 'a' && l <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       (c && strchr("!#$%&'*+.^_`|~", c));
}

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Transfer-Encoding over all its fields, a list of codings: -EINVAL when an element is not a bare
 * token (parameters and empty elements are refused too, as http-parser does not read them),
 * when "chunked" comes twice or before another coding, or, in a request, when the last coding is
 * not "chunked" (RFC 9112 6.1, 6.3). */
static int check_codings(const struct sn_http_head *h, bool request)
{
	bool any = false, last_chunked = false;
	int chunked = 0;
	for (size_t i = 0; i < h->nf; i++) {
		const struct sn_http_field *f = &h->f[i];
		if (f->nlen != 17 || strncasecmp(f->name, "transfer-encoding", 17) != 0)
			continue;
		any = true;
		const char *v = f->value;
		for (size_t p = 0, e; p <= f->vlen; p = e + 1) {
			for (e = p; e < f->vlen && v[e] != ',';)
				e++;
			size_t a = p, b, c;
			while (a < e && ows(v[a]))
				a++;
			for (b = a; b < e && tchar((uint8_t)v[b]);)
				b++;
			for (c = b; c < e && ows(v[c]);)
				c++;
			if (b == a || c != e)
				return -EINVAL;
			last_chunked = b - a == 7 && strncasecmp(v + a, "chunked", 7) == 0;
			chunked += last_chunked;
			if (chunked > 1 || (chunked && !last_chunked))
				return -EINVAL;
		}
	}
	return request && any && !last_chunked ? -EINVAL : 0;
}

/* What http-parser lets through and the next hop could read otherwise. The head goes on (a
 * request's rebuilt from its fields as parsed, a response's unchanged), so the proxy and the
 * server behind it must agree on where each message ends. Refused: a line that starts with white
 * space (obs-fold, or a first field line that a server may join to the start line, RFC 9112 2.2,
 * 5.2), a field name with anything but token bytes, such as white space before the colon (RFC
 * 9112 5.1), and a coding list that a server could frame otherwise. A request's major version
 * must be 1. */
static int check_head(const struct sn_http_msg *m, const struct sn_http_head *h, const uint8_t *buf,
		      size_t n)
{
	const uint8_t *end = buf + n;
	for (const uint8_t *p = buf; (p = memchr(p, '\n', (size_t)(end - p))) != NULL;)
		if (++p < end && (*p == ' ' || *p == '\t'))
			return -EINVAL;
	for (size_t i = 0; i < h->nf; i++) {
		if (!h->f[i].nlen)
			return -EINVAL;
		for (size_t k = 0; k < h->f[i].nlen; k++)
			if (!tchar((uint8_t)h->f[i].name[k]))
				return -EINVAL;
	}
	if (check_codings(h, !m->response))
		return -EINVAL;
	return !m->response && m->p.http_major != 1 ? -EPROTONOSUPPORT : 0;
}

void sn_http_init(struct sn_http_msg *m, bool response, bool head_request)
{
	memset(m, 0, sizeof(*m));
	m->response = response;
	m->skip_body = response && head_request;
}

ssize_t sn_http_head(struct sn_http_msg *m, struct sn_http_head *h, const uint8_t *buf, size_t len)
{
	bool response = m->response, skip = m->skip_body;
	sn_http_init(m, response, skip);
	memset(h, 0, offsetof(struct sn_http_head, f));
	h->nf = 0;
	h->field_limit_hit = false;
	http_parser_init(&m->p, response ? HTTP_RESPONSE : HTTP_REQUEST);
	m->p.data = m;
	m->h = h;
	size_t cap = len < SN_HTTP_HEAD_MAX ? len : SN_HTTP_HEAD_MAX;
	size_t n = http_parser_execute(&m->p, &head_settings, (const char *)buf, cap);
	enum http_errno e = HTTP_PARSER_ERRNO(&m->p);
	m->h = NULL;
	if (e == HPE_PAUSED) {
		/* stopped at the head's end, before its last byte (LF) */
		if (n >= len || buf[n] != '\n')
			return -EINVAL;
		int bad = check_head(m, h, buf, n);
		if (bad)
			return bad;
		m->lf_pending = true;
		m->status = h->status = response ? (int)m->p.status_code : 0;
		h->method = response ? NULL : http_method_str((enum http_method)m->p.method);
		m->upgrade = m->p.upgrade;
		m->keep_alive = http_should_keep_alive(&m->p);
		m->body = (m->p.flags & F_CHUNKED) ||
			  (m->p.content_length > 0 && m->p.content_length != ULLONG_MAX);
		return (ssize_t)(n + 1);
	}
	if (e != HPE_OK)
		return h->field_limit_hit || e == HPE_HEADER_OVERFLOW ? -E2BIG : -EINVAL;
	return len >= SN_HTTP_HEAD_MAX ? -E2BIG : 0;
}

ssize_t sn_http_body(struct sn_http_msg *m, const uint8_t *buf, size_t len)
{
	if (m->done)
		return 0;
	http_parser_pause(&m->p, 0);
	if (m->lf_pending) {
		m->lf_pending = false;
		http_parser_execute(&m->p, &body_settings, "\n", 1);
		enum http_errno e = HTTP_PARSER_ERRNO(&m->p);
		if (e != HPE_OK && e != HPE_PAUSED)
			return -EINVAL;
		if (m->done) {
			m->head_only = true;
			return 0;
		}
		http_parser_pause(&m->p, 0);
	}
	if (!buf) {
		/* the peer closed: complete for a body that runs until close, else malformed */
		http_parser_execute(&m->p, &body_settings, NULL, 0);
		return m->done ? 0 : -EINVAL;
	}
	if (len == 0)
		return 0;
	size_t n = http_parser_execute(&m->p, &body_settings, (const char *)buf, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&m->p);
	if (e != HPE_OK && e != HPE_PAUSED)
		return -EINVAL;
	/* paused at the message's end, n counts the byte that ended it */
	return (ssize_t)n;
}

const struct sn_http_field *sn_http_field(const struct sn_http_head *h, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < h->nf; i++)
		if (h->f[i].nlen == n && strncasecmp(h->f[i].name, name, n) == 0)
			return &h->f[i];
	return NULL;
}

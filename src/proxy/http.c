/* HTTP/1 messages on http-parser: see http.h. Proxy layer, pure. */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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

bool sn_http_field_is(const struct sn_http_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->nlen == n && strncasecmp(f->name, name, n) == 0;
}

/* The elements of a field's comma-separated list (RFC 9110 5.6.1), one per call: a token
 * between optional white space, in [*a, *b) of the value (empty: *a == *b). Returns 1 with an
 * element, 0 after the last, -EINVAL for an element that is not a bare token. */
struct list {
	const char *v;
	size_t n, p;
	bool end;
};

static int list_next(struct list *l, size_t *a, size_t *b)
{
	if (l->end)
		return 0;
	size_t e = l->p, x = l->p, y, z;
	while (e < l->n && l->v[e] != ',')
		e++;
	while (x < e && ows(l->v[x]))
		x++;
	for (y = x; y < e && tchar((uint8_t)l->v[y]);)
		y++;
	for (z = y; z < e && ows(l->v[z]);)
		z++;
	l->end = e >= l->n;
	l->p = e + 1;
	*a = x;
	*b = y;
	return z == e ? 1 : -EINVAL;
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
		if (!sn_http_field_is(f, "transfer-encoding"))
			continue;
		any = true;
		struct list l = {f->value, f->vlen, 0, false};
		size_t a, b;
		int r;
		while ((r = list_next(&l, &a, &b)) > 0) {
			if (b == a)
				return -EINVAL;
			last_chunked = b - a == 7 && strncasecmp(f->value + a, "chunked", 7) == 0;
			chunked += last_chunked;
			if (chunked > 1 || (chunked && !last_chunked))
				return -EINVAL;
		}
		if (r < 0)
			return -EINVAL;
	}
	return request && any && !last_chunked ? -EINVAL : 0;
}

/* A request's connection options, from all its Connection fields: -EINVAL beyond
 * SN_HTTP_CONN_MAX. Empty elements are skipped, as the list syntax allows, and so are elements
 * that are not tokens, which name no field. */
static int connection_options(struct sn_http_head *h)
{
	for (size_t i = 0; i < h->nf; i++) {
		const struct sn_http_field *f = &h->f[i];
		if (!sn_http_field_is(f, "connection"))
			continue;
		struct list l = {f->value, f->vlen, 0, false};
		size_t a, b;
		int r;
		while ((r = list_next(&l, &a, &b)) != 0) {
			if (r < 0 || a == b)
				continue;
			if (h->nconn == SN_HTTP_CONN_MAX)
				return -EINVAL;
			h->conn[h->nconn++] = (struct sn_http_token){f->value + a, b - a};
		}
	}
	return 0;
}

/* What http-parser lets through and the next hop could read otherwise. The head goes on (a
 * request's rebuilt from its fields as parsed, a response's unchanged), so the proxy and the
 * server behind it must agree on where each message ends. Refused: a line that starts with white
 * space (obs-fold, or a first field line that a server may join to the start line, RFC 9112 2.2,
 * 5.2), a field name with anything but token bytes, such as white space before the colon (RFC
 * 9112 5.1), and a coding list that a server could frame otherwise. A request's major version
 * must be 1. */
static int check_head(const struct sn_http_msg *m, struct sn_http_head *h, const uint8_t *buf,
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
	if (check_codings(h, !m->response) || (!m->response && connection_options(h)))
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
	h->nconn = 0;
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
	for (size_t i = 0; i < h->nf; i++)
		if (sn_http_field_is(&h->f[i], name))
			return &h->f[i];
	return NULL;
}

bool sn_http_hop_by_hop(const struct sn_http_head *h, const struct sn_http_field *f)
{
	static const char *const always[] = {"connection", "keep-alive", "proxy-connection", "te",
					     "upgrade"};
	if (sn_http_field_is(f, "content-length") || sn_http_field_is(f, "transfer-encoding"))
		return false;
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (sn_http_field_is(f, always[i]))
			return true;
	for (size_t i = 0; i < h->nconn; i++)
		if (f->nlen == h->conn[i].n && strncasecmp(f->name, h->conn[i].p, f->nlen) == 0)
			return true;
	return false;
}

/* The scheme: ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), RFC 3986 3.1 */
int sn_http_absolute_form(const char *t, size_t n, struct sn_http_field *auth, const char **path,
			  size_t *plen)
{
	size_t s = 0;
	while (s < n && (isalpha((unsigned char)t[s]) ||
			 (s && (isdigit((unsigned char)t[s]) || t[s] == '+' || t[s] == '-' ||
				t[s] == '.'))))
		s++;
	if (!s || n - s < 3 || memcmp(t + s, "://", 3) != 0)
		return 0;
	if (!(s == 4 && strncasecmp(t, "http", 4) == 0) &&
	    !(s == 5 && strncasecmp(t, "https", 5) == 0))
		return -1;
	size_t a = s + 3, e = a;
	while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#')
		e++;
	if (e == a || memchr(t + a, '@', e - a) || t[a] == ':')
		return -1;
	*auth = (struct sn_http_field){.name = "Host", .nlen = 4, .value = t + a, .vlen = e - a};
	*path = t + e;
	*plen = n - e;
	return 1;
}

bool sn_http_xff_client(const struct sn_http_head *h, const struct sn_cidr *trusted,
			size_t ntrusted, int *family, uint8_t addr[16])
{
	bool found = false, any = false;
	int lf = 0;
	uint8_t la[16] = {0};
	/* the fields in order make one list; walk it from the right */
	for (size_t i = h->nf; i-- > 0 && !found;) {
		if (!sn_http_field_is(&h->f[i], "x-forwarded-for"))
			continue;
		const char *v = h->f[i].value;
		size_t end = h->f[i].vlen;
		for (;;) {
			size_t start = end;
			while (start > 0 && v[start - 1] != ',')
				start--;
			size_t a = start, b = end;
			while (a < b && ows(v[a]))
				a++;
			while (b > a && ows(v[b - 1]))
				b--;
			char tok[64];
			if (b - a == 0 || b - a >= sizeof(tok) || memchr(v + a, 0, b - a))
				return false;
			memcpy(tok, v + a, b - a);
			tok[b - a] = 0;
			uint8_t x[16] = {0};
			int fam = strchr(tok, ':') ? AF_INET6 : AF_INET;
			if (inet_pton(fam, tok, x) != 1)
				return false;
			/* an IPv4 client written as IPv6 is that IPv4 client, as the peer of a
			 * dual-stack socket is: IPv4 rules decide it */
			sn_addr_unmap(&fam, x);
			any = true;
			lf = fam;
			memcpy(la, x, 16);
			if (!sn_cidrs_contain(trusted, ntrusted, fam, x)) {
				*family = fam;
				memcpy(addr, x, 16);
				found = true;
				break;
			}
			if (start == 0)
				break;
			end = start - 1;
		}
	}
	if (!found && any) {
		*family = lf;
		memcpy(addr, la, 16);
	}
	return true;
}

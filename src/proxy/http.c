/* HTTP/1 messages on http-parser: see http.h. Proxy layer, pure. */
#include "http.h"

#include <errno.h>
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
	return m->skip_body ? 1 : 0;
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
		m->lf_pending = true;
		m->status = h->status = response ? (int)m->p.status_code : 0;
		h->method = response ? NULL : http_method_str((enum http_method)m->p.method);
		m->upgrade = m->p.upgrade;
		m->keep_alive = http_should_keep_alive(&m->p);
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

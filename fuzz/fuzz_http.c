/* libFuzzer target for the HTTP/1 message wrapper (src/proxy/http.c, on http-parser): the input
 * is read as a request (head, then its body given in pieces whose sizes come from the input) and
 * as a response to a GET and to a HEAD. Properties: a head's length is within the input; fields
 * and the target lie inside the head; no accepted head has a line that starts with white space or
 * a field name with white space or a colon in it; a request's connection options are at most
 * SN_HTTP_CONN_MAX non-empty pieces of the head without white space or commas, and Content-Length
 * and Transfer-Encoding are never hop-by-hop; an absolute-form target splits into a non-empty
 * authority without '@' or '/' and an origin-form rest, both inside it; the client behind a
 * trusted proxy is IPv4 (no bytes past the fourth) or IPv6 that is not IPv4-mapped; a body never
 * claims more bytes than it was given. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void within(const char *p, size_t n, const uint8_t *base, size_t len)
{
	if (n && ((const uint8_t *)p < base || (const uint8_t *)p + n > base + len))
		abort();
}

static void one(const uint8_t *data, size_t size, bool response, bool head_req)
{
	static struct sn_http_head h;
	struct sn_http_msg m;
	sn_http_init(&m, response, head_req);
	ssize_t n = sn_http_head(&m, &h, data, size);
	if (n <= 0) {
		if (n != 0 && n != -EINVAL && n != -E2BIG && !(n == -EPROTONOSUPPORT && !response))
			abort();
		return;
	}
	if ((size_t)n > size)
		abort();
	for (size_t i = 0; i + 1 < (size_t)n; i++)
		if (data[i] == '\n' && (data[i + 1] == ' ' || data[i + 1] == '\t'))
			abort();
	within(h.target, h.tlen, data, (size_t)n);
	for (size_t i = 0; i < h.nf; i++) {
		within(h.f[i].name, h.f[i].nlen, data, (size_t)n);
		within(h.f[i].value, h.f[i].vlen, data, (size_t)n);
		if (!h.f[i].nlen || memchr(h.f[i].name, ' ', h.f[i].nlen) ||
		    memchr(h.f[i].name, '\t', h.f[i].nlen) || memchr(h.f[i].name, ':', h.f[i].nlen))
			abort();
	}
	(void)sn_http_field(&h, "host");
	if (h.nconn > SN_HTTP_CONN_MAX || (response && h.nconn))
		abort();
	for (size_t i = 0; i < h.nconn; i++) {
		within(h.conn[i].p, h.conn[i].n, data, (size_t)n);
		if (!h.conn[i].n || memchr(h.conn[i].p, ' ', h.conn[i].n) ||
		    memchr(h.conn[i].p, ',', h.conn[i].n))
			abort();
	}
	if (!response && h.target) {
		struct sn_http_field auth;
		const char *path;
		size_t plen;
		if (sn_http_absolute_form(h.target, h.tlen, &auth, &path, &plen) == 1) {
			within(auth.value, auth.vlen, (const uint8_t *)h.target, h.tlen);
			within(path, plen, (const uint8_t *)h.target, h.tlen);
			if (!auth.vlen || memchr(auth.value, '@', auth.vlen) ||
			    memchr(auth.value, '/', auth.vlen) || auth.value + auth.vlen != path ||
			    path + plen != h.target + h.tlen ||
			    (plen && path[0] != '/' && path[0] != '?' && path[0] != '#'))
				abort();
		}
	}
	if (!response) {
		static struct sn_cidr trusted[2];
		static bool init;
		char msg[128];
		if (!init && (sn_cidr_parse("10.0.0.0/8", &trusted[0], msg, sizeof(msg)) ||
			      sn_cidr_parse("2001:db8::/32", &trusted[1], msg, sizeof(msg))))
			abort();
		init = true;
		int family = -1;
		uint8_t addr[16] = {0};
		static const uint8_t zero[12], mapped[12] = {[10] = 0xff, [11] = 0xff};
		if (sn_http_xff_client(&h, trusted, 2, &family, addr) &&
		    ((family != -1 && family != AF_INET && family != AF_INET6) ||
		     (family == AF_INET && memcmp(addr + 4, zero, 12) != 0) ||
		     (family == AF_INET6 && memcmp(addr, mapped, 12) == 0)))
			abort();
	}
	for (size_t i = 0; i < h.nf; i++)
		if (sn_http_hop_by_hop(&h, &h.f[i]) &&
		    ((h.f[i].nlen == 14 && !strncasecmp(h.f[i].name, "content-length", 14)) ||
		     (h.f[i].nlen == 17 && !strncasecmp(h.f[i].name, "transfer-encoding", 17))))
			abort();
	size_t off = (size_t)n, step = 1 + (data[0] % 7);
	while (off < size && !m.done) {
		size_t k = size - off < step ? size - off : step;
		ssize_t b = sn_http_body(&m, data + off, k);
		if (b < 0)
			return;
		if ((size_t)b > k)
			abort();
		off += (size_t)b;
		if ((size_t)b < k && !m.done)
			abort(); /* a body stops short only at its end */
	}
	if (!m.done)
		(void)sn_http_body(&m, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	one(data, size, false, false);
	one(data, size, true, false);
	one(data, size, true, true);
	return 0;
}

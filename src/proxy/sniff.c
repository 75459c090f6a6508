/* SNI and Host sniffing; see sniff.h. Proxy layer.
 *
 * TLS (RFC 8446 5.1, 4.1.2; RFC 6066 3):
 *   record:    type 22 (handshake) | version(2) | length(2) | fragment...
 *   handshake: type 1 (client_hello) | length(3) | version(2) | random(32)
 *              | session_id<0..32> (1-byte length) | cipher_suites<2..> (2) | compression<1..> (1)
 *              | extensions<..> (2): { type(2) | length(2) | data }
 *   server_name (type 0): list length(2) | { name_type(1) = 0 (host_name) | length(2) | name }
 * The handshake message may be split over several records; its bytes are gathered in order. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "sniff.h"

static uint32_t be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

/* Copies a name, lower-cased; only characters a host name may hold. */
static int put_name(const uint8_t *p, size_t n, char *name, size_t size)
{
	if (n == 0 || n > 253 || n + 1 > size)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + 32);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return -EINVAL;
		name[i] = (char)c;
	}
	name[n] = 0;
	if (n > 1 && name[n - 1] == '.')
		name[--n] = 0;
	return (int)n;
}

int sn_sniff_tls_sni(const uint8_t *buf, size_t len, char *name, size_t size)
{
	uint8_t hs[SN_SNIFF_TLS_MAX];
	size_t have = 0, need = 0; /* handshake bytes gathered, and the message's full size */
	size_t off = 0;
	if (len >= 1 && buf[0] != 22)
		return -EPROTO;
	if (len >= 3 && buf[1] != 3)
		return -EPROTO; /* SSL 3.0 .. TLS 1.3 records all say 3.x */
	/* gather the handshake message from consecutive handshake records */
	while (!need || have < need) {
		if (len - off < 5)
			return 0;
		if (buf[off] != 22 || buf[off + 1] != 3)
			return -EINVAL;
		size_t rlen = be16(buf + off + 3);
		if (rlen == 0 || rlen > 16384 + 2048)
			return -EINVAL;
		size_t avail = len - off - 5 < rlen ? len - off - 5 : rlen;
		size_t take = avail;
		if (have + take > sizeof(hs))
			take = sizeof(hs) - have;
		memcpy(hs + have, buf + off + 5, take);
		have += take;
		if (!need && have >= 4) {
			if (hs[0] != 1)
				return -EPROTO; /* not a ClientHello */
			need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
			if (need > sizeof(hs))
				return -E2BIG;
		}
		if (need && have >= need)
			break;
		if (avail < rlen)
			return 0; /* the record continues in bytes not yet read */
		off += 5 + rlen;
	}
	/* walk the ClientHello */
	const uint8_t *p = hs + 4, *end = hs + need;
	if (end - p < 2 + 32 + 1)
		return -EINVAL;
	p += 2 + 32;
	size_t sid = *p++;
	if (sid > 32 || (size_t)(end - p) < sid + 2)
		return -EINVAL;
	p += sid;
	size_t cs = be16(p);
	p += 2;
	if (cs < 2 || cs % 2 || (size_t)(end - p) < cs + 1)
		return -EINVAL;
	p += cs;
	size_t comp = *p++;
	if (comp < 1 || (size_t)(end - p) < comp)
		return -EINVAL;
	p += comp;
	if (p == end)
		return -ENOENT; /* no extensions */
	if (end - p < 2)
		return -EINVAL;
	size_t elen = be16(p);
	p += 2;
	if ((size_t)(end - p) != elen)
		return -EINVAL;
	while (p < end) {
		if (end - p < 4)
			return -EINVAL;
		uint32_t type = be16(p);
		size_t l = be16(p + 2);
		p += 4;
		if ((size_t)(end - p) < l)
			return -EINVAL;
		if (type == 0) {
			const uint8_t *q = p, *qe = p + l;
			if (qe - q < 2 || be16(q) != (size_t)(qe - q - 2))
				return -EINVAL;
			q += 2;
			while (q < qe) {
				if (qe - q < 3)
					return -EINVAL;
				uint8_t nt = q[0];
				size_t nl = be16(q + 1);
				q += 3;
				if ((size_t)(qe - q) < nl)
					return -EINVAL;
				if (nt == 0)
					return put_name(q, nl, name, size);
				q += nl;
			}
			return -ENOENT;
		}
		p += l;
	}
	return -ENOENT;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* "host[:port]" in p[0..n): the host's name, -EEXIST for an IP literal in brackets (no name),
 * -EINVAL when malformed (the port must be digits). */
static int host_port(const uint8_t *p, size_t n, char *name, size_t size)
{
	if (n && p[0] == '[')
		return -EEXIST;
	size_t c = 0;
	while (c < n && p[c] != ':')
		c++;
	for (size_t k = c + 1; k < n; k++)
		if (p[k] < '0' || p[k] > '9')
			return -EINVAL;
	return put_name(p, c, name, size);
}

/* The length of the "http://" or "https://" (any case) that p[0..n) starts with and goes past,
 * or 0. */
static size_t scheme_len(const uint8_t *p, size_t n)
{
	static const char *const schemes[] = {"http://", "https://"};
	for (size_t s = 0; s < 2; s++) {
		size_t l = strlen(schemes[s]), k = 0;
		while (k < l && k < n && lower(p[k]) == schemes[s][k])
			k++;
		if (k == l && n > l)
			return l;
	}
	return 0;
}

int sn_sniff_http_host(const uint8_t *buf, size_t len, char *name, size_t size)
{
	/* the request line: METHOD SP target SP HTTP/1.x CRLF; the method is a token */
	size_t i = 0;
	for (; i < len && buf[i] != ' '; i++) {
		uint8_t c = buf[i];
		if (!(c >= 'A' && c <= 'Z') || i > 16)
			return -EPROTO;
	}
	if (i == len)
		return len > SN_SNIFF_HTTP_MAX ? -E2BIG : 0;
	if (i == 0)
		return -EPROTO;
	/* the head ends at the first empty line */
	size_t head = 0;
	for (size_t k = i; k + 3 < len && k < SN_SNIFF_HTTP_MAX; k++)
		if (buf[k] == '\r' && buf[k + 1] == '\n' && buf[k + 2] == '\r' && buf[k + 3] == '\n') {
			head = k + 2;
			break;
		}
	if (!head)
		return len >= SN_SNIFF_HTTP_MAX ? -E2BIG : 0;
	size_t eol = i;
	while (eol < head && buf[eol] != '\r')
		eol++;
	if (eol < 9 || memcmp(buf + eol - 8, "HTTP/1.", 7) != 0)
		return -EINVAL;
	/* header lines: name ":" OWS value OWS CRLF; a second Host is malformed (RFC 9112 3.2) */
	int found = -ENOENT;
	for (size_t p = eol + 2; p < head;) {
		size_t e = p;
		while (e < head && buf[e] != '\r')
			e++;
		if (e + 1 >= len || buf[e + 1] != '\n')
			return -EINVAL;
		static const char host[] = "host:";
		if (e - p >= 5) {
			bool is_host = true;
			for (size_t k = 0; k < 5 && is_host; k++)
				is_host = lower(buf[p + k]) == host[k];
			if (is_host && found != -ENOENT)
				return -EINVAL;
			if (is_host) {
				size_t a = p + 5, b = e;
				while (a < b && (buf[a] == ' ' || buf[a] == '\t'))
					a++;
				while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t'))
					b--;
				/* a literal: no name, but still only one Host */
				found = host_port(buf + a, b - a, name, size);
				if (found < 0 && found != -EEXIST)
					return found;
			}
		}
		p = e + 2;
	}
	/* An absolute-form target names the host itself, and a server must then ignore Host (RFC
	 * 9112 3.2.2): its authority is the name. So is CONNECT's authority-form target (3.2.3). */
	size_t t = i + 1, te = eol - 9; /* the target, before " HTTP/1.x" */
	bool connect = i == 7 && memcmp(buf, "CONNECT", 7) == 0;
	size_t a = te > t ? t + scheme_len(buf + t, te - t) : t;
	if (a > t || connect) {
		size_t b = a;
		while (b < te && buf[b] != '/' && buf[b] != '?' && buf[b] != '#')
			b++;
		for (size_t k = a; k < b; k++) /* after any userinfo */
			if (buf[k] == '@')
				a = k + 1;
		int r = host_port(buf + a, b - a, name, size);
		return r == -EEXIST ? -ENOENT : r;
	}
	return found == -EEXIST ? -ENOENT : found;
}

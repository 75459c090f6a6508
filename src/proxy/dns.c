/* DNS messages: see dns.h. Proxy layer, pure. */
#include "dns.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static char label_char(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
		return (char)c;
	if (c >= 'A' && c <= 'Z')
		return (char)(c + 32);
	return '?';
}

/* Reads the name at m[off], following compression pointers, into out (text form). A pointer must
 * point past the header and before itself, and what it points at must end before it too: no
 * loops, and a name is always complete in the bytes before its last pointer (a message cut after
 * a name keeps it). *next receives the offset after the name where it started. 0 or -EINVAL. */
static int read_name(const uint8_t *m, size_t len, size_t off, char *out, size_t *next)
{
	size_t o = off, n = 0, wire = 1, lim = len;
	bool jumped = false;
	for (;;) {
		if (o >= lim)
			return -EINVAL;
		uint8_t l = m[o];
		if ((l & 0xc0) == 0xc0) {
			if (o + 1 >= lim)
				return -EINVAL;
			size_t to = (size_t)(l & 0x3f) << 8 | m[o + 1];
			if (to >= o || to < SN_DNS_HEADER)
				return -EINVAL;
			if (!jumped)
				*next = o + 2;
			jumped = true;
			lim = o;
			o = to;
			continue;
		}
		if (l & 0xc0)
			return -EINVAL; /* extended label types are obsolete */
		if (l == 0) {
			if (!jumped)
				*next = o + 1;
			out[n] = 0;
			return 0;
		}
		wire += 1u + l;
		if (wire > 255 || o + 1 + l >= lim)
			return -EINVAL;
		if (n)
			out[n++] = '.';
		for (size_t i = 0; i < l; i++)
			out[n++] = label_char(m[o + 1 + i]);
		o += 1u + l;
	}
}

/* Skips the name at m[off]; 0 or -EINVAL. */
static int skip_name(const uint8_t *m, size_t len, size_t off, size_t *next)
{
	char tmp[SN_DNS_NAME_MAX];
	return read_name(m, len, off, tmp, next);
}

/* Writes name (text form) uncompressed; returns the bytes written or 0 when it does not fit or
 * is not a valid name. */
static size_t write_name(const char *name, uint8_t *out, size_t size)
{
	size_t o = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || o + 1 + l + 1 > size || o + 1 + l + 1 > 255)
			return 0;
		out[o++] = (uint8_t)l;
		memcpy(out + o, p, l);
		o += l;
		p += l;
		if (*p == '.' && *++p == 0)
			break; /* one trailing dot */
	}
	if (o + 1 > size)
		return 0;
	out[o++] = 0;
	return o;
}

int sn_dns_parse_query(const uint8_t *m, size_t len, struct sn_dns_question *q)
{
	if (len < SN_DNS_HEADER)
		return -EINVAL;
	if ((m[2] & 0x80) || (m[2] >> 3 & 0x0f) != 0 || get16(m + 4) != 1)
		return -EPROTO;
	q->id = get16(m);
	size_t o;
	if (read_name(m, len, SN_DNS_HEADER, q->name, &o) || o + 4 > len)
		return -EINVAL;
	q->type = get16(m + o);
	q->qclass = get16(m + o + 2);
	q->end = o + 4;
	return 0;
}

size_t sn_dns_reply_error(const uint8_t *m, size_t qend, int rcode, uint8_t *out, size_t size)
{
	if (qend < SN_DNS_HEADER || size < qend)
		return 0;
	memcpy(out, m, qend);
	out[2] = (uint8_t)(0x80 | (m[2] & 0x01)); /* QR, opcode QUERY, RD as asked */
	out[3] = (uint8_t)(0x80 | (rcode & 0x0f)); /* RA */
	put16(out + 4, 1);
	memset(out + 6, 0, 6);
	return qend;
}

struct rr {
	size_t owner, data; /* offsets of the owner name and of the rdata */
	uint16_t type, qclass, rdlen;
	uint32_t ttl;
};

/* Reads the record at *off and moves *off past it. */
static int read_rr(const uint8_t *m, size_t len, size_t *off, struct rr *r)
{
	size_t o;
	r->owner = *off;
	if (skip_name(m, len, *off, &o) || o + 10 > len)
		return -EINVAL;
	r->type = get16(m + o);
	r->qclass = get16(m + o + 2);
	r->ttl = get32(m + o + 4);
	if (r->ttl > 0x7fffffffu)
		r->ttl = 0; /* RFC 2181: a TTL with the top bit set is zero */
	r->rdlen = get16(m + o + 8);
	r->data = o + 10;
	if (r->data + r->rdlen > len)
		return -EINVAL;
	*off = r->data + r->rdlen;
	return 0;
}

/* The header and question of a response: the offset of the first answer. */
static int response_start(const uint8_t *m, size_t len, size_t *off)
{
	if (len < SN_DNS_HEADER)
		return -EINVAL;
	if (!(m[2] & 0x80))
		return -EPROTO;
	size_t o = SN_DNS_HEADER;
	for (unsigned i = get16(m + 4); i > 0; i--) {
		if (skip_name(m, len, o, &o) || o + 4 > len)
			return -EINVAL;
		o += 4;
	}
	*off = o;
	return 0;
}

int sn_dns_parse_response(const uint8_t *m, size_t len, const char *qname, struct sn_dns_answer *a)
{
	size_t start;
	int rc = response_start(m, len, &start);
	if (rc)
		return rc;
	a->id = get16(m);
	a->rcode = m[3] & 0x0f;
	a->truncated = m[2] & 0x02;
	a->naddrs = 0;
	a->nnames = 1;
	size_t ql = strnlen(qname, SN_DNS_NAME_MAX - 1);
	memcpy(a->names[0], qname, ql);
	a->names[0][ql] = 0;
	if (ql && a->names[0][ql - 1] == '.')
		a->names[0][ql - 1] = 0;
	for (char *c = a->names[0]; *c; c++)
		*c = *c == '.' ? '.' : label_char((uint8_t)*c);
	unsigned nan = get16(m + 6);
	uint32_t chain_ttl[SN_DNS_CHAIN_MAX] = {UINT32_MAX};
	/* CNAMEs may come in any order: follow the chain until a pass adds nothing */
	for (bool grew = true; grew && a->nnames < SN_DNS_CHAIN_MAX;) {
		grew = false;
		size_t o = start;
		for (unsigned i = 0; i < nan; i++) {
			struct rr r;
			char owner[SN_DNS_NAME_MAX], target[SN_DNS_NAME_MAX];
			size_t end;
			if (read_rr(m, len, &o, &r))
				return -EINVAL;
			if (r.type != SN_DNS_CNAME || r.qclass != 1)
				continue;
			if (read_name(m, len, r.owner, owner, &end) ||
			    read_name(m, len, r.data, target, &end) || end != r.data + r.rdlen)
				return -EINVAL;
			size_t k = a->nnames - 1;
			if (strcmp(owner, a->names[k]) != 0)
				continue;
			bool seen = false;
			for (size_t j = 0; j < a->nnames; j++)
				seen |= strcmp(target, a->names[j]) == 0;
			if (seen)
				continue;
			memcpy(a->names[a->nnames], target, sizeof(target));
			chain_ttl[a->nnames] = chain_ttl[k] < r.ttl ? chain_ttl[k] : r.ttl;
			a->nnames++;
			grew = true;
			if (a->nnames == SN_DNS_CHAIN_MAX)
				break;
		}
	}
	size_t o = start;
	for (unsigned i = 0; i < nan; i++) {
		struct rr r;
		if (read_rr(m, len, &o, &r))
			return -EINVAL;
		bool v4 = r.type == SN_DNS_A && r.rdlen == 4, v6 = r.type == SN_DNS_AAAA && r.rdlen == 16;
		if ((!v4 && !v6) || r.qclass != 1 || a->naddrs == SN_DNS_ADDR_MAX)
			continue;
		char owner[SN_DNS_NAME_MAX];
		size_t end;
		if (read_name(m, len, r.owner, owner, &end))
			return -EINVAL;
		for (size_t j = 0; j < a->nnames; j++) {
			if (strcmp(owner, a->names[j]) != 0)
				continue;
			struct sn_dns_addr *d = &a->addrs[a->naddrs++];
			d->family = v4 ? AF_INET : AF_INET6;
			memset(d->addr, 0, sizeof(d->addr));
			memcpy(d->addr, m + r.data, r.rdlen);
			d->ttl = chain_ttl[j] < r.ttl ? chain_ttl[j] : r.ttl;
			break;
		}
	}
	return 0;
}

ssize_t sn_dns_filter(const uint8_t *m, size_t len,
		      bool (*drop)(int family, const uint8_t *addr, void *arg), void *arg,
		      uint8_t *out, size_t size)
{
	size_t start;
	if (response_start(m, len, &start) || size < start)
		return -EINVAL;
	/* header and question, names written out */
	memcpy(out, m, SN_DNS_HEADER);
	size_t w = SN_DNS_HEADER, o = SN_DNS_HEADER;
	char name[SN_DNS_NAME_MAX];
	unsigned nq = get16(m + 4);
	for (unsigned i = 0; i < nq; i++) {
		size_t n;
		if (read_name(m, len, o, name, &o) || o + 4 > len)
			return -EINVAL;
		if (!(n = write_name(name, out + w, size - w)) || w + n + 4 > size)
			return -EINVAL;
		w += n;
		memcpy(out + w, m + o, 4);
		w += 4;
		o += 4;
	}
	unsigned nan = get16(m + 6), nns = get16(m + 8), nar = get16(m + 10);
	unsigned kept = 0, kept_ar = 0;
	bool cut = false;
	for (unsigned i = 0; i < nan + nns + nar; i++) {
		struct rr r;
		if (read_rr(m, len, &o, &r))
			return -EINVAL;
		bool answer = i < nan, additional = i >= nan + nns;
		if (additional && r.type == SN_DNS_OPT) {
			if (m[r.owner] != 0)
				return -EINVAL;
			size_t n = r.data + r.rdlen - r.owner;
			if (w + n > size)
				continue;
			memcpy(out + w, m + r.owner, n);
			w += n;
			kept_ar++;
			continue;
		}
		if (!answer || cut)
			continue;
		bool v4 = r.type == SN_DNS_A && r.rdlen == 4, v6 = r.type == SN_DNS_AAAA && r.rdlen == 16;
		if (!v4 && !v6 && r.type != SN_DNS_CNAME)
			continue;
		if ((v4 || v6) && drop(v4 ? AF_INET : AF_INET6, m + r.data, arg))
			continue;
		size_t end, n, rec = w;
		if (read_name(m, len, r.owner, name, &end) ||
		    !(n = write_name(name, out + w, size - w)) || w + n + 10 > size) {
			cut = true;
			w = rec;
			continue;
		}
		w += n;
		memcpy(out + w, m + r.data - 10, 8); /* type, class, TTL */
		w += 10;
		if (r.type == SN_DNS_CNAME) {
			char target[SN_DNS_NAME_MAX];
			if (read_name(m, len, r.data, target, &end) || end != r.data + r.rdlen)
				return -EINVAL;
			if (!(n = write_name(target, out + w, size - w))) {
				cut = true;
				w = rec;
				continue;
			}
		} else {
			if (w + r.rdlen > size) {
				cut = true;
				w = rec;
				continue;
			}
			n = r.rdlen;
			memcpy(out + w, m + r.data, n);
		}
		put16(out + w - 2, (uint16_t)n);
		w += n;
		kept++;
	}
	put16(out + 6, (uint16_t)kept);
	put16(out + 8, 0);
	put16(out + 10, (uint16_t)kept_ar);
	if (cut)
		out[2] |= 0x02;
	return (ssize_t)w;
}

size_t sn_dns_build_query(uint16_t id, const char *name, uint16_t type, uint8_t *out, size_t size)
{
	if (size < SN_DNS_HEADER + 5)
		return 0;
	memset(out, 0, SN_DNS_HEADER);
	put16(out, id);
	out[2] = 0x01; /* RD */
	put16(out + 4, 1);
	size_t n = write_name(name, out + SN_DNS_HEADER, size - SN_DNS_HEADER - 4);
	if (!n)
		return 0;
	size_t w = SN_DNS_HEADER + n;
	put16(out + w, type);
	put16(out + w + 2, 1);
	return w + 4;
}

size_t sn_dns_query_udp_size(const uint8_t *m, size_t len, size_t qend)
{
	if (len < SN_DNS_HEADER)
		return 512;
	unsigned n = get16(m + 6) + get16(m + 8) + get16(m + 10);
	size_t o = qend;
	for (unsigned i = 0; i < n; i++) {
		struct rr r;
		if (read_rr(m, len, &o, &r))
			break;
		if (r.type == SN_DNS_OPT)
			return r.qclass > 512 ? r.qclass : 512;
	}
	return 512;
}

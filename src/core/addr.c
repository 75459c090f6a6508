/* Address prefixes: parse, format, match. Core layer (inet_pton/inet_ntop are pure functions). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <sandnet/policy.h>

static void clear_host_bits(uint8_t *addr, unsigned alen, unsigned plen)
{
	for (unsigned i = 0; i < alen; i++) {
		unsigned bit = i * 8;
		if (bit >= plen)
			addr[i] = 0;
		else if (plen - bit < 8)
			addr[i] &= (uint8_t)(0xff << (8 - (plen - bit)));
	}
}

int sn_cidr_parse(const char *s, struct sn_cidr *out, char *msg, size_t msgsize)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(a)) {
		snprintf(msg, msgsize, "%s is not an IP address or CIDR", SN_QUOTE(s));
		return -EINVAL;
	}
	memcpy(a, s, alen);
	a[alen] = 0;
	int v6 = strchr(a, ':') != NULL;
	memset(out, 0, sizeof(*out));
	out->family = v6 ? AF_INET6 : AF_INET;
	if (inet_pton(out->family, a, out->addr) != 1) {
		snprintf(msg, msgsize, "%s is not a valid %s address", SN_QUOTE(a),
			 v6 ? "IPv6" : "IPv4");
		return -EINVAL;
	}
	unsigned max = v6 ? 128 : 32;
	unsigned plen = max;
	if (slash) {
		const char *p = slash + 1;
		if (!*p || strlen(p) > 3 || strspn(p, "0123456789") != strlen(p)) {
			snprintf(msg, msgsize, "%s: the prefix length must be a number 0-%u",
				 SN_QUOTE(s), max);
			return -EINVAL;
		}
		plen = 0;
		for (; *p; p++)
			plen = plen * 10 + (unsigned)(*p - '0');
		if (plen > max) {
			snprintf(msg, msgsize, "%s: prefix length %u is too long for %s (0-%u)",
				 SN_QUOTE(s), plen,
				 v6 ? "IPv6" : "IPv4", max);
			return -EINVAL;
		}
	}
	out->plen = (uint8_t)plen;
	struct sn_cidr net = *out;
	clear_host_bits(net.addr, v6 ? 16 : 4, plen);
	if (memcmp(net.addr, out->addr, sizeof(net.addr)) != 0) {
		char buf[SN_CIDR_STRLEN];
		snprintf(msg, msgsize, "%s has host bits set; did you mean %s?", SN_QUOTE(s),
			 sn_cidr_format(&net, buf, sizeof(buf)));
		return -EINVAL;
	}
	return 0;
}

char *sn_cidr_format(const struct sn_cidr *c, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	inet_ntop(c->family, c->addr, a, sizeof(a));
	unsigned max = c->family == AF_INET6 ? 128 : 32;
	if (c->plen == max)
		snprintf(buf, size, "%s", a);
	else
		snprintf(buf, size, "%s/%u", a, c->plen);
	return buf;
}

bool sn_cidrs_contain(const struct sn_cidr *v, size_t n, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < n; i++)
		if (sn_cidr_contains(&v[i], family, addr))
			return true;
	return false;
}

bool sn_addr_unmap(int *family, uint8_t addr[16])
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	if (*family != AF_INET6 || memcmp(addr, mapped, sizeof(mapped)) != 0)
		return false;
	*family = AF_INET;
	memmove(addr, addr + 12, 4);
	memset(addr + 4, 0, 12);
	return true;
}

bool sn_cidr_contains(const struct sn_cidr *c, int family, const uint8_t *addr)
{
	if (c->family != family)
		return false;
	unsigned full = c->plen / 8, rest = c->plen % 8;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == c->addr[full];
}

/* libFuzzer target for the DNS message reader (src/proxy/dns.c): the input is read as a query
 * (and answered with an error), as a response to the name of its own question (the addresses
 * through the CNAME chain), and rebuilt without every other address. Properties: names are text
 * of at most 253 bytes; a rebuilt response parses again and gives no address that was dropped. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool every_other(int family, const uint8_t *addr, void *arg)
{
	(void)family;
	unsigned *n = arg;
	return (addr[0] & 1) || ((*n)++ & 1);
}

static void check_name(const char *s)
{
	if (strlen(s) > 253)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536];
	static struct sn_dns_answer a, b;
	struct sn_dns_question q;
	if (sn_dns_parse_query(data, size, &q) == 0) {
		check_name(q.name);
		size_t n = sn_dns_reply_error(data, q.end, SN_DNS_NXDOMAIN, out, sizeof(out));
		struct sn_dns_question q2;
		if (n < SN_DNS_HEADER || sn_dns_parse_response(out, n, q.name, &a) != 0 ||
		    a.rcode != SN_DNS_NXDOMAIN || a.naddrs != 0 || sn_dns_parse_query(out, n, &q2) != -EPROTO)
			abort();
		size_t u = sn_dns_query_udp_size(data, size, q.end);
		if (u < 512 || u > 65535)
			abort();
		size_t m = sn_dns_build_query(q.id, q.name, q.type, out, sizeof(out));
		if (m && (sn_dns_parse_query(out, m, &q2) || strcmp(q2.name, q.name) != 0))
			abort();
	}
	/* as a response, to the name its question holds */
	const char *qname = "example.com";
	static uint8_t copy[65536];
	if (size >= SN_DNS_HEADER && size <= sizeof(copy)) {
		memcpy(copy, data, size);
		copy[2] &= 0x7f;
		if (sn_dns_parse_query(copy, size, &q) == 0)
			qname = q.name;
	}
	if (sn_dns_parse_response(data, size, qname, &a) != 0)
		return 0;
	for (size_t i = 0; i < a.nnames; i++)
		check_name(a.names[i]);
	unsigned k = 0;
	size_t cap = size % 2 ? 512 : sizeof(out);
	ssize_t n = sn_dns_filter(data, size, every_other, &k, out, cap);
	if (n < 0)
		return 0;
	if ((size_t)n > cap || sn_dns_parse_response(out, (size_t)n, qname, &b) != 0)
		abort();
	for (size_t i = 0; i < b.naddrs; i++)
		if (b.addrs[i].addr[0] & 1)
			abort();
	return 0;
}

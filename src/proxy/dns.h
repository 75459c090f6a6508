/* DNS messages (RFC 1035) as sandnet's forwarder needs them: the question of a query, error
 * replies, the addresses a response gives for a name through its CNAME chain, a response rebuilt
 * without the addresses that must not be answered, and the queries the proxy makes itself.
 * Proxy layer; pure, allocation-free. Every reader checks every length against the message: the
 * bytes come from sandboxes and from the network.
 *
 * Names are returned as text: labels lower-cased and joined by '.', without the root's dot. A
 * label byte outside letters, digits, '-' and '_' is returned as '?', so that such a name matches
 * no policy entry and cannot be mistaken for another name. */
#ifndef SN_PROXY_DNS_H
#define SN_PROXY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SN_DNS_HEADER 12
#define SN_DNS_NAME_MAX 256 /* text form, with its NUL */
#define SN_DNS_CHAIN_MAX 16 /* names followed through CNAMEs */
#define SN_DNS_ADDR_MAX 64  /* addresses taken from one response */

enum { SN_DNS_A = 1, SN_DNS_CNAME = 5, SN_DNS_OPT = 41, SN_DNS_AAAA = 28 };
enum { SN_DNS_NOERROR = 0, SN_DNS_FORMERR = 1, SN_DNS_SERVFAIL = 2, SN_DNS_NXDOMAIN = 3,
       SN_DNS_REFUSED = 5 };

struct sn_dns_question {
	uint16_t id, type, qclass;
	char name[SN_DNS_NAME_MAX];
	size_t end; /* offset just past the question */
};

/* A query's header and its single question. 0; -EINVAL when malformed; -EPROTO when it is not a
 * standard query (a response, an opcode other than QUERY, a question count other than one). */
int sn_dns_parse_query(const uint8_t *m, size_t len, struct sn_dns_question *q);

/* The reply with rcode to query m whose question ends at qend: the header with the query's id and
 * RD, the question, no records. Returns its length, or 0 when size is too small. */
size_t sn_dns_reply_error(const uint8_t *m, size_t qend, int rcode, uint8_t *out, size_t size);

struct sn_dns_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint32_t ttl; /* the smallest TTL along the chain to it */
};

struct sn_dns_answer {
	uint16_t id;
	int rcode;
	bool truncated;
	char names[SN_DNS_CHAIN_MAX][SN_DNS_NAME_MAX]; /* the question's name, then its CNAMEs */
	size_t nnames;
	struct sn_dns_addr addrs[SN_DNS_ADDR_MAX]; /* A and AAAA records of those names */
	size_t naddrs;
};

/* Reads a response to a question for qname (text form). 0; -EINVAL when malformed; -EPROTO when it
 * is not a response. */
int sn_dns_parse_response(const uint8_t *m, size_t len, const char *qname, struct sn_dns_answer *a);

/* Rebuilds response m without the A and AAAA records of its answer section for which drop()
 * returns true: header, question, the remaining A, AAAA and CNAME answers (names written out in
 * full), the OPT record; other records are left out. When out is too small the answers that do
 * not fit are cut and TC is set. Returns the length, or -EINVAL when m is malformed. */
ssize_t sn_dns_filter(const uint8_t *m, size_t len,
		      bool (*drop)(int family, const uint8_t *addr, void *arg), void *arg,
		      uint8_t *out, size_t size);

/* The largest UDP response the sender of query m accepts: its EDNS payload size, else 512. */
size_t sn_dns_query_udp_size(const uint8_t *m, size_t len, size_t qend);

/* A recursive query for name (text form) and type with id. Returns its length, or 0 when name is
 * not a valid name or size is too small. */
size_t sn_dns_build_query(uint16_t id, const char *name, uint16_t type, uint8_t *out, size_t size);

#endif

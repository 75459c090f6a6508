/* The sandnet policy model (DESIGN.md section 1) and its codecs: JSON and YAML in, in the native
 * form or a peer's dialect (E2B, sandbox0); canonical JSON out. Core layer: pure functions.
 *
 * Conventions: int functions return 0 or -errno (-EINVAL: the document was refused, details in
 * errs; -ENOMEM). A policy is a tree owned by its root; sn_policy_free() frees all of it.
 * Policies are plain data: any thread may use one that no other thread is changing. */
#ifndef SANDNET_POLICY_H
#define SANDNET_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sandnet/err.h>

/* Limits, documented in docs/POLICY.md. A document over one is refused with SN_ERR_LIMIT. */
#define SN_LIMIT_DOC_BYTES      (64u * 1024 * 1024)
#define SN_LIMIT_RULES          10000u   /* per direction */
#define SN_LIMIT_ENTRIES        1000000u /* to/from/ports entries of the whole policy */
#define SN_LIMIT_DEPTH          64u      /* nesting of a document */
#define SN_LIMIT_RULE_NAME      128u     /* bytes of a rule's name */

enum sn_dir { SN_EGRESS = 0, SN_INGRESS = 1 };
enum sn_mode { SN_MODE_ALLOW_ALL = 0, SN_MODE_BLOCK_ALL = 1 };
enum sn_action { SN_ALLOW = 0, SN_DENY = 1 };
enum sn_proto { SN_PROTO_ANY = 0, SN_PROTO_TCP, SN_PROTO_UDP, SN_PROTO_ICMP };

enum sn_format { SN_FORMAT_AUTO = 0, SN_FORMAT_JSON, SN_FORMAT_YAML };
enum sn_dialect { SN_DIALECT_AUTO = 0, SN_DIALECT_NATIVE, SN_DIALECT_E2B, SN_DIALECT_SANDBOX0 };

/* An address prefix. Host bits are always zero. family is AF_INET or AF_INET6. */
struct sn_cidr {
	uint8_t family;
	uint8_t plen;
	uint8_t addr[16]; /* network byte order; IPv4 uses the first 4 bytes */
};

enum sn_entry_kind {
	SN_ENTRY_CIDR = 0, /* cidr */
	SN_ENTRY_NAME,     /* name: exactly this domain */
	SN_ENTRY_WILDCARD, /* name: any name strictly below this domain ("*.name") */
	SN_ENTRY_ANY_NAME, /* "*": any name */
};

struct sn_entry {
	enum sn_entry_kind kind;
	struct sn_cidr cidr; /* SN_ENTRY_CIDR */
	char *name;          /* SN_ENTRY_NAME, SN_ENTRY_WILDCARD: lower-case ASCII, no trailing dot */
};

struct sn_port_range {
	uint16_t lo, hi; /* 1 <= lo <= hi */
};

struct sn_rule {
	enum sn_action action;
	enum sn_proto proto;
	char *name;               /* label, or NULL */
	struct sn_entry *peers;   /* "to" (egress) or "from" (ingress); NULL when absent = any */
	size_t npeers;            /* > 0 when peers != NULL */
	struct sn_port_range *ports; /* NULL when absent = any port */
	size_t nports;
};

struct sn_dir_policy {
	enum sn_mode mode;
	struct sn_rule *rules;
	size_t nrules;
};

struct sn_policy {
	struct sn_dir_policy egress;
	struct sn_dir_policy ingress;
	char *mask_request_host; /* "host[:port]", port may be "{port}"; NULL when absent */
};

/* Parses a policy document of len bytes (need not be NUL-terminated). fmt AUTO: JSON when the first
 * non-blank byte is '{', YAML otherwise. dialect AUTO: detected from the fields present (a document
 * that mixes dialects is refused). On success *out is a new normalised native policy; on failure
 * *out is NULL, errs holds every problem found (or the first, for syntax errors) and the return is
 * -EINVAL or -ENOMEM. */
int sn_policy_parse(const char *buf, size_t len, enum sn_format fmt, enum sn_dialect dialect,
		    struct sn_policy **out, struct sn_errs *errs);

/* Canonical JSON: stable key order, normalised entries, defaults shown. indent 0: one line.
 * Returns a new NUL-terminated string (free()), or NULL when out of memory. */
char *sn_policy_format(const struct sn_policy *p, int indent);

/* sandbox0's view: {"mode", "egress": {"trafficRules": [...]}}, which every native egress policy
 * has (a rule without ports, or of protocol icmp or any, carries "protocol" at the rule level).
 * Parsing it as sandbox0 gives back the egress part. New string (free()) or NULL. */
char *sn_policy_format_sandbox0(const struct sn_policy *p, int indent);
/* E2B's view: {"allowInternetAccess", "network": {"allowOut", "denyOut", "allowIn", "denyIn",
 * "maskRequestHost"?}}; when E2B's fields cannot say exactly what the policy says, the closest
 * they come, with "x-sandnet-native": true in "network" and *exact false. */
char *sn_policy_format_e2b(const struct sn_policy *p, bool *exact);

/* An empty policy: allow-all both ways. Returns NULL when out of memory. */
struct sn_policy *sn_policy_new(void);
void sn_policy_free(struct sn_policy *p);
struct sn_policy *sn_policy_dup(const struct sn_policy *p);
bool sn_policy_equal(const struct sn_policy *a, const struct sn_policy *b);

const char *sn_dialect_name(enum sn_dialect d);
/* "native", "e2b", "sandbox0" -> dialect; returns false for anything else. */
bool sn_dialect_parse(const char *s, enum sn_dialect *out);
const char *sn_proto_name(enum sn_proto p);
const char *sn_mode_name(enum sn_mode m);
const char *sn_action_name(enum sn_action a);

/* Address text helpers (pure). sn_cidr_parse accepts "addr" (a host prefix) or "addr/len" and
 * refuses host bits; on failure it writes a user-facing sentence into msg. */
int sn_cidr_parse(const char *s, struct sn_cidr *out, char *msg, size_t msgsize);
/* "10.0.0.0/8", or the bare address for a host prefix. buf of at least SN_CIDR_STRLEN bytes. */
#define SN_CIDR_STRLEN 64
char *sn_cidr_format(const struct sn_cidr *c, char *buf, size_t size);
bool sn_cidr_contains(const struct sn_cidr *c, int family, const uint8_t *addr);
/* Whether any of v[0..n) contains the address. */
bool sn_cidrs_contain(const struct sn_cidr *v, size_t n, int family, const uint8_t *addr);
/* An IPv4 address written as IPv6 (::ffff:a.b.c.d, IPv4-mapped): turned into that IPv4 address
 * (*family AF_INET, the four bytes first, the rest zero). Returns whether it was one. */
bool sn_addr_unmap(int *family, uint8_t addr[16]);

/* Normalises a domain name or pattern as policies do (case, trailing dot, IDNA). On success writes
 * the ASCII form into out (at most 254 bytes with the NUL) and its kind; on failure a sentence. */
int sn_name_normalize(const char *in, char *out, size_t outsize, enum sn_entry_kind *kind, char *msg,
		      size_t msgsize);

#endif

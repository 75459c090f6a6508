/* Shared between the core's codecs: the decoding context and the entry/port parsers that the
 * native form and the dialects have in common. Core layer, not installed. */
#ifndef SN_CORE_INTERNAL_H
#define SN_CORE_INTERNAL_H

#include <jansson.h>

#include <sandnet/policy.h>

#define SN_HIDDEN __attribute__((visibility("hidden")))

struct dec {
	struct sn_errs *errs;
	size_t entries; /* entries decoded so far, against SN_LIMIT_ENTRIES */
	bool over_limit;
	bool nomem;
};

/* What an entry list may hold. */
enum entry_accept {
	ACCEPT_ANY,   /* addresses, CIDRs and names (egress "to") */
	ACCEPT_ADDR,  /* addresses and CIDRs only */
	ACCEPT_NAME,  /* names and patterns only */
};

SN_HIDDEN void dec_err(struct dec *d, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
SN_HIDDEN void dec_limit(struct dec *d, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Counts n entries against the policy-wide limit; false (and one limit error) when over. */
SN_HIDDEN bool dec_count(struct dec *d, size_t n);

/* Parses one entry string. false after reporting the error at path. */
SN_HIDDEN bool parse_entry_str(struct dec *d, const char *s, enum entry_accept acc,
			       struct sn_entry *out, const char *path);
/* Parses a JSON array of entries into a new array (duplicates folded, first occurrence kept).
 * Appends to (*v, *n). Returns false on any error (reported). */
SN_HIDDEN bool parse_entry_list(struct dec *d, json_t *arr, enum entry_accept acc,
				struct sn_entry **v, size_t *n, const char *path);
/* One port item: integer or "N" or "LO-HI". */
SN_HIDDEN bool parse_port_item(struct dec *d, json_t *item, struct sn_port_range *out,
			       const char *path);
SN_HIDDEN bool parse_port_list(struct dec *d, json_t *arr, struct sn_port_range **v, size_t *n,
			       const char *path);
/* Folds duplicate entries / ports in place, keeping the first occurrence's position. */
SN_HIDDEN void fold_entries(struct sn_entry *v, size_t *n);
SN_HIDDEN void fold_ports(struct sn_port_range *v, size_t *n);
/* Validates and normalises mask_request_host; returns a new string or NULL after an error. */
SN_HIDDEN char *parse_mask_host(struct dec *d, json_t *v, const char *path);
/* A rule's label: 1-SN_LIMIT_RULE_NAME bytes, no control characters. New string or NULL. */
SN_HIDDEN char *parse_rule_name(struct dec *d, json_t *v, const char *path);
SN_HIDDEN void entry_clear(struct sn_entry *e);
SN_HIDDEN void rule_clear(struct sn_rule *r);
SN_HIDDEN bool entry_is_unspecified(const struct sn_entry *e);
SN_HIDDEN bool entry_is_all(const struct sn_entry *e); /* 0.0.0.0/0 or ::/0 */

/* Decoders of the three dialects, from a parsed document into p (already sn_policy_new()). */
SN_HIDDEN void decode_native(struct dec *d, json_t *root, struct sn_policy *p);
SN_HIDDEN void decode_e2b(struct dec *d, json_t *root, struct sn_policy *p);
SN_HIDDEN void decode_sandbox0(struct dec *d, json_t *root, struct sn_policy *p);
/* Which dialect the fields of root belong to; reports a mix of dialects and returns AUTO then. */
SN_HIDDEN enum sn_dialect detect_dialect(struct dec *d, json_t *root);

/* YAML text -> JSON tree with the same shape. NULL after an error (reported). */
SN_HIDDEN json_t *yaml_to_json(const char *buf, size_t len, struct dec *d);

#endif

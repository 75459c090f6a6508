/* Decoding of policy documents: the entry point sn_policy_parse(), the parsers shared by every
 * dialect (entries, ports, mask_request_host) and the native form. Core layer. */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

void dec_err(struct dec *d, const char *path, const char *fmt, ...)
{
	char msg[SN_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sn_errs_add(d->errs, SN_ERR_INVALID, path, "%s", msg);
}

void dec_limit(struct dec *d, const char *path, const char *fmt, ...)
{
	char msg[SN_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sn_errs_add(d->errs, SN_ERR_LIMIT, path, "%s", msg);
}

bool dec_count(struct dec *d, size_t n)
{
	if (d->over_limit)
		return false;
	d->entries += n;
	if (d->entries > SN_LIMIT_ENTRIES) {
		d->over_limit = true;
		dec_limit(d, "",
			  "the policy has more than %u entries (to, from and ports together), the "
			  "limit; split it or use wider CIDRs",
			  SN_LIMIT_ENTRIES);
		return false;
	}
	return true;
}

static bool looks_like_address(const char *s)
{
	if (strchr(s, '/') || strchr(s, ':'))
		return true;
	return *s && strspn(s, "0123456789.") == strlen(s);
}

bool parse_entry_str(struct dec *d, const char *s, enum entry_accept acc, struct sn_entry *out,
		     const char *path)
{
	char msg[SN_ERR_MSG_MAX];
	memset(out, 0, sizeof(*out));
	if (looks_like_address(s)) {
		if (acc == ACCEPT_NAME) {
			dec_err(d, path, "%s is an address; this list takes names only",
				SN_QUOTE(s));
			return false;
		}
		if (sn_cidr_parse(s, &out->cidr, msg, sizeof(msg)) != 0) {
			dec_err(d, path, "%s", msg);
			return false;
		}
		/* ::ffff:a.b.c.d (IPv4-mapped) never appears on the wire: a rule on it would match
		 * nothing, so it is refused with the IPv4 form to write */
		struct sn_cidr v4 = out->cidr;
		int fam = v4.family;
		if (v4.plen >= 96 && sn_addr_unmap(&fam, v4.addr)) {
			v4.family = (uint8_t)fam;
			v4.plen -= 96;
			char a[SN_CIDR_STRLEN];
			dec_err(d, path,
				"%s is IPv4 written as IPv6 (IPv4-mapped), which no "
				"packet carries; write %s",
				SN_QUOTE(s), sn_cidr_format(&v4, a, sizeof(a)));
			return false;
		}
		out->kind = SN_ENTRY_CIDR;
		return true;
	}
	if (acc == ACCEPT_ADDR) {
		dec_err(d, path, "%s is not an IP address or CIDR; this list takes addresses only",
			SN_QUOTE(s));
		return false;
	}
	char name[256];
	if (sn_name_normalize(s, name, sizeof(name), &out->kind, msg, sizeof(msg)) != 0) {
		dec_err(d, path, "%s", msg);
		return false;
	}
	if (out->kind != SN_ENTRY_ANY_NAME) {
		out->name = strdup(name);
		if (!out->name) {
			d->nomem = true;
			return false;
		}
	}
	return true;
}

static int entry_cmp(const struct sn_entry *a, const struct sn_entry *b)
{
	if (a->kind != b->kind)
		return (int)a->kind - (int)b->kind;
	if (a->kind == SN_ENTRY_CIDR) {
		if (a->cidr.family != b->cidr.family)
			return (int)a->cidr.family - (int)b->cidr.family;
		if (a->cidr.plen != b->cidr.plen)
			return (int)a->cidr.plen - (int)b->cidr.plen;
		return memcmp(a->cidr.addr, b->cidr.addr, 16);
	}
	if (a->kind == SN_ENTRY_ANY_NAME)
		return 0;
	return strcmp(a->name, b->name);
}

/* FNV-1a over what makes an entry itself. */
static uint64_t entry_hash(const struct sn_entry *e)
{
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)e->kind;
	h *= 0x100000001b3ull;
	if (e->kind == SN_ENTRY_CIDR) {
		h = (h ^ e->cidr.family) * 0x100000001b3ull;
		h = (h ^ e->cidr.plen) * 0x100000001b3ull;
		for (int k = 0; k < 16; k++)
			h = (h ^ e->cidr.addr[k]) * 0x100000001b3ull;
	} else if (e->name) {
		for (const char *p = e->name; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

/* Drops repeated entries, keeping the first of each and the order: a hash table of the entries
 * kept so far, so 100,000 entries cost one pass. */
void fold_entries(struct sn_entry *v, size_t *n)
{
	size_t cnt = *n;
	if (cnt < 2)
		return;
	size_t cap = 16;
	while (cap < 2 * cnt)
		cap *= 2;
	uint32_t *slot = cnt > 16 ? calloc(cap, sizeof(*slot)) : NULL; /* index + 1; 0 = empty */
	size_t w = 0;
	for (size_t i = 0; i < cnt; i++) {
		bool seen = false;
		if (slot) {
			size_t k = entry_hash(&v[i]) & (cap - 1);
			for (; slot[k] && !seen; k = (k + 1) & (cap - 1))
				seen = entry_cmp(&v[slot[k] - 1], &v[i]) == 0;
			if (!seen)
				slot[k] = (uint32_t)w + 1;
		} else {
			/* small lists (and the no-memory fallback): quadratic is fine */
			for (size_t j = 0; j < w && !seen; j++)
				seen = entry_cmp(&v[j], &v[i]) == 0;
		}
		if (seen)
			entry_clear(&v[i]);
		else
			v[w++] = v[i];
	}
	*n = w;
	free(slot);
}

bool parse_entry_list(struct dec *d, json_t *arr, enum entry_accept acc, struct sn_entry **v,
		      size_t *n, const char *path)
{
	if (!json_is_array(arr)) {
		dec_err(d, path, "must be a list of %s",
			acc == ACCEPT_NAME   ? "names"
			: acc == ACCEPT_ADDR ? "IP addresses or CIDRs"
					     : "IP addresses, CIDRs or names");
		return false;
	}
	size_t cnt = json_array_size(arr);
	if (!dec_count(d, cnt))
		return false;
	if (cnt == 0)
		return true;
	struct sn_entry *nv = realloc(*v, (*n + cnt) * sizeof(*nv));
	if (!nv) {
		d->nomem = true;
		return false;
	}
	*v = nv;
	bool ok = true;
	for (size_t i = 0; i < cnt; i++) {
		json_t *item = json_array_get(arr, i);
		char p[SN_ERR_PATH_MAX];
		if (!json_is_string(item)) {
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			dec_err(d, p, "must be a string");
			ok = false;
			continue;
		}
		struct sn_entry e;
		const char *s = json_string_value(item);
		if (strlen(s) != json_string_length(item)) {
			snprintf(p, sizeof(p), "%s[%zu]", path, i);
			dec_err(d, p, "contains a NUL byte");
			ok = false;
			continue;
		}
		/* the path is only formatted when there is an error to report */
		struct sn_errs *saved = d->errs;
		struct sn_errs probe;
		sn_errs_init(&probe);
		d->errs = &probe;
		bool good = parse_entry_str(d, s, acc, &e, "");
		d->errs = saved;
		if (!good) {
			ok = false;
			if (probe.n) {
				snprintf(p, sizeof(p), "%s[%zu]", path, i);
				sn_errs_add(d->errs, probe.e[0].code, p, "%s", probe.e[0].msg);
			}
			continue;
		}
		if (ok)
			nv[(*n)++] = e;
		else
			entry_clear(&e);
	}
	return ok;
}

static bool parse_port_num(const char *s, size_t len, uint32_t *out)
{
	if (len == 0 || len > 6)
		return false;
	uint32_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

bool parse_port_item(struct dec *d, json_t *item, struct sn_port_range *out, const char *path)
{
	if (json_is_integer(item)) {
		json_int_t v = json_integer_value(item);
		if (v < 1 || v > 65535) {
			dec_err(d, path, "%lld is not a port (1-65535)", (long long)v);
			return false;
		}
		out->lo = out->hi = (uint16_t)v;
		return true;
	}
	if (!json_is_string(item)) {
		dec_err(d, path, "must be a port number or a range string such as \"8000-8100\"");
		return false;
	}
	const char *s = json_string_value(item);
	const char *dash = strchr(s, '-');
	uint32_t lo, hi;
	if (dash ? !(parse_port_num(s, (size_t)(dash - s), &lo) &&
		     parse_port_num(dash + 1, strlen(dash + 1), &hi))
		 : !parse_port_num(s, strlen(s), &lo)) {
		dec_err(d, path, "%s is not a port or a port range such as \"8000-8100\"",
			SN_QUOTE(s));
		return false;
	}
	if (!dash)
		hi = lo;
	if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535) {
		dec_err(d, path, "%s is not a port or a range of ports (1-65535)", SN_QUOTE(s));
		return false;
	}
	if (lo > hi) {
		dec_err(d, path, "%s is a reversed range; write \"%u-%u\"", SN_QUOTE(s), hi, lo);
		return false;
	}
	out->lo = (uint16_t)lo;
	out->hi = (uint16_t)hi;
	return true;
}

void fold_ports(struct sn_port_range *v, size_t *n)
{
	/* port lists are short in practice; a sorted copy would pay off only past thousands */
	size_t w = 0;
	for (size_t i = 0; i < *n; i++) {
		bool seen = false;
		for (size_t j = 0; j < w && !seen; j++)
			seen = v[j].lo == v[i].lo && v[j].hi == v[i].hi;
		if (!seen)
			v[w++] = v[i];
	}
	*n = w;
}

bool parse_port_list(struct dec *d, json_t *arr, struct sn_port_range **v, size_t *n,
		     const char *path)
{
	if (!json_is_array(arr)) {
		dec_err(d, path, "must be a list of ports or port ranges");
		return false;
	}
	size_t cnt = json_array_size(arr);
	if (!dec_count(d, cnt))
		return false;
	if (cnt == 0)
		return true;
	if (cnt > 65535) {
		dec_limit(d, path, "%zu ports; a list holds at most 65535 (use ranges)", cnt);
		return false;
	}
	struct sn_port_range *nv = realloc(*v, (*n + cnt) * sizeof(*nv));
	if (!nv) {
		d->nomem = true;
		return false;
	}
	*v = nv;
	bool ok = true;
	for (size_t i = 0; i < cnt; i++) {
		char p[SN_ERR_PATH_MAX];
		snprintf(p, sizeof(p), "%s[%zu]", path, i);
		struct sn_port_range r;
		if (parse_port_item(d, json_array_get(arr, i), &r, p))
			nv[(*n)++] = r;
		else
			ok = false;
	}
	return ok;
}

bool entry_is_unspecified(const struct sn_entry *e)
{
	static const uint8_t zero[16];
	return e->kind == SN_ENTRY_CIDR && memcmp(e->cidr.addr, zero, 16) == 0 &&
	       e->cidr.plen == (e->cidr.family == AF_INET6 ? 128 : 32);
}

bool entry_is_all(const struct sn_entry *e)
{
	return e->kind == SN_ENTRY_CIDR && e->cidr.plen == 0;
}

char *parse_mask_host(struct dec *d, json_t *v, const char *path)
{
	if (!json_is_string(v)) {
		dec_err(d, path, "must be a string \"host[:port]\"");
		return NULL;
	}
	const char *s = json_string_value(v);
	char host[300], port[16] = "";
	const char *colon;
	size_t hlen;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end)
			goto bad;
		hlen = (size_t)(end - s) + 1;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			goto bad;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			goto bad; /* a bare IPv6 address needs brackets */
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, s, hlen);
	host[hlen] = 0;
	if (colon) {
		const char *ps = colon + 1;
		uint32_t pn;
		if (strcmp(ps, "{port}") == 0 || strcmp(ps, "${PORT}") == 0)
			snprintf(port, sizeof(port), "{port}");
		else if (parse_port_num(ps, strlen(ps), &pn) && pn >= 1 && pn <= 65535)
			snprintf(port, sizeof(port), "%u", pn);
		else {
			dec_err(d, path,
				"%s: the port must be 1-65535 or the placeholder {port}",
				SN_QUOTE(s));
			return NULL;
		}
	}
	char norm[300], msg[SN_ERR_MSG_MAX];
	if (host[0] == '[') {
		struct sn_cidr c;
		host[hlen - 1] = 0;
		if (!strchr(host + 1, ':') || sn_cidr_parse(host + 1, &c, msg, sizeof(msg)) != 0 ||
		    strchr(host + 1, '/'))
			goto bad;
		char a[SN_CIDR_STRLEN];
		snprintf(norm, sizeof(norm), "[%s]", sn_cidr_format(&c, a, sizeof(a)));
	} else if (looks_like_address(host)) {
		struct sn_cidr c;
		if (strchr(host, '/') || sn_cidr_parse(host, &c, msg, sizeof(msg)) != 0)
			goto bad;
		sn_cidr_format(&c, norm, sizeof(norm));
	} else {
		enum sn_entry_kind k;
		if (sn_name_normalize(host, norm, sizeof(norm), &k, msg, sizeof(msg)) != 0) {
			dec_err(d, path, "%s", msg);
			return NULL;
		}
		if (k != SN_ENTRY_NAME)
			goto bad;
	}
	char out[340];
	snprintf(out, sizeof(out), "%s%s%s", norm, port[0] ? ":" : "", port);
	char *r = strdup(out);
	if (!r)
		d->nomem = true;
	return r;
bad:
	dec_err(d, path,
		"%s is not host[:port] (a name, an IPv4 address or a [bracketed] IPv6 address, "
		"optionally with a port or the placeholder {port})",
		SN_QUOTE(s));
	return NULL;
}

char *parse_rule_name(struct dec *d, json_t *v, const char *path)
{
	const char *s = json_string_value(v);
	if (!s || !*s || strlen(s) > SN_LIMIT_RULE_NAME || strlen(s) != json_string_length(v)) {
		dec_err(d, path, "must be a string of 1-%u bytes", SN_LIMIT_RULE_NAME);
		return NULL;
	}
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			dec_err(d, path, "must not contain control characters");
			return NULL;
		}
	char *r = strdup(s);
	if (!r)
		d->nomem = true;
	return r;
}

/* ---- native form ---- */

static bool decode_mode(struct dec *d, json_t *v, enum sn_mode *mode, const char *path)
{
	const char *s = json_string_value(v);
	if (s && strcmp(s, "allow-all") == 0)
		*mode = SN_MODE_ALLOW_ALL;
	else if (s && strcmp(s, "block-all") == 0)
		*mode = SN_MODE_BLOCK_ALL;
	else {
		if (s)
			dec_err(d, path, "%s is not a mode (allow-all or block-all)", SN_QUOTE(s));
		else
			dec_err(d, path, "must be a string: allow-all or block-all");
		return false;
	}
	return true;
}

static bool decode_proto(struct dec *d, json_t *v, enum sn_proto *out, const char *path)
{
	static const enum sn_proto all[] = {SN_PROTO_ANY, SN_PROTO_TCP, SN_PROTO_UDP, SN_PROTO_ICMP};
	const char *s = json_string_value(v);
	for (size_t i = 0; s && i < 4; i++)
		if (strcmp(s, sn_proto_name(all[i])) == 0) {
			*out = all[i];
			return true;
		}
	if (s)
		dec_err(d, path, "%s is not a protocol (tcp, udp, icmp or any)", SN_QUOTE(s));
	else
		dec_err(d, path, "must be a string: tcp, udp, icmp or any");
	return false;
}

static void decode_rule(struct dec *d, json_t *obj, enum sn_dir dir, struct sn_rule *r,
			const char *path)
{
	char p[SN_ERR_PATH_MAX];
	r->action = SN_ALLOW;
	r->proto = SN_PROTO_ANY;
	if (!json_is_object(obj)) {
		dec_err(d, path, "must be an object with \"action\" and optional %s, ports, protocol, "
				 "name",
			dir == SN_EGRESS ? "to" : "from");
		return;
	}
	const char *peer_key = dir == SN_EGRESS ? "to" : "from";
	const char *other_key = dir == SN_EGRESS ? "from" : "to";
	const char *key;
	json_t *v;
	bool have_action = false, ports_ok = true;
	json_object_foreach(obj, key, v)
	{
		snprintf(p, sizeof(p), "%s.%s", path, key);
		if (strcmp(key, "action") == 0) {
			const char *s = json_string_value(v);
			have_action = true;
			if (s && strcmp(s, "allow") == 0)
				r->action = SN_ALLOW;
			else if (s && strcmp(s, "deny") == 0)
				r->action = SN_DENY;
			else if (s)
				dec_err(d, p, "%s is not an action (allow or deny)", SN_QUOTE(s));
			else
				dec_err(d, p, "must be a string: allow or deny");
		} else if (strcmp(key, peer_key) == 0) {
			size_t before = d->errs ? d->errs->n : 0;
			if (json_is_array(v) && json_array_size(v) == 0)
				dec_err(d, p,
					"is empty; leave \"%s\" out to match any %s", peer_key,
					dir == SN_EGRESS ? "destination" : "client");
			else if (parse_entry_list(d, v, dir == SN_EGRESS ? ACCEPT_ANY : ACCEPT_ADDR,
						  &r->peers, &r->npeers, p))
				fold_entries(r->peers, &r->npeers);
			if (!r->npeers || (d->errs && d->errs->n != before)) {
				/* keep the "absent" invariant: peers == NULL iff npeers == 0 */
				if (!r->npeers) {
					free(r->peers);
					r->peers = NULL;
				}
			}
		} else if (strcmp(key, other_key) == 0) {
			dec_err(d, p, "%s rules match %s: use \"%s\"",
				dir == SN_EGRESS ? "egress" : "ingress",
				dir == SN_EGRESS ? "destinations" : "client addresses", peer_key);
		} else if (strcmp(key, "ports") == 0) {
			if (json_is_array(v) && json_array_size(v) == 0) {
				dec_err(d, p, "is empty; leave \"ports\" out to match any port");
				ports_ok = false;
			} else if (parse_port_list(d, v, &r->ports, &r->nports, p)) {
				fold_ports(r->ports, &r->nports);
			} else {
				ports_ok = false;
			}
			if (!r->nports) {
				free(r->ports);
				r->ports = NULL;
			}
		} else if (strcmp(key, "protocol") == 0) {
			decode_proto(d, v, &r->proto, p);
		} else if (strcmp(key, "name") == 0) {
			free(r->name);
			r->name = parse_rule_name(d, v, p);
		} else {
			dec_err(d, p, "unknown field; a rule has action, %s, ports, protocol and name",
				peer_key);
		}
	}
	if (!have_action) {
		snprintf(p, sizeof(p), "%s.action", path);
		dec_err(d, p, "missing; every rule needs \"action\": allow or deny");
	}
	if (ports_ok && r->ports && r->proto == SN_PROTO_ICMP) {
		snprintf(p, sizeof(p), "%s.ports", path);
		dec_err(d, p, "ICMP has no ports: remove \"ports\" or use protocol tcp, udp or any");
	}
}

static void decode_dir(struct dec *d, json_t *obj, enum sn_dir dir, struct sn_policy *pol)
{
	const char *dname = dir == SN_EGRESS ? "egress" : "ingress";
	struct sn_dir_policy *dp = dir == SN_EGRESS ? &pol->egress : &pol->ingress;
	char p[SN_ERR_PATH_MAX];
	if (!json_is_object(obj)) {
		dec_err(d, dname, "must be an object with \"mode\" and \"rules\"");
		return;
	}
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		snprintf(p, sizeof(p), "%s.%s", dname, key);
		if (strcmp(key, "mode") == 0) {
			decode_mode(d, v, &dp->mode, p);
		} else if (strcmp(key, "rules") == 0) {
			if (!json_is_array(v)) {
				dec_err(d, p, "must be a list of rules");
				continue;
			}
			size_t n = json_array_size(v);
			if (n > SN_LIMIT_RULES) {
				dec_limit(d, p, "%zu rules; a direction holds at most %u", n,
					  SN_LIMIT_RULES);
				continue;
			}
			if (n == 0)
				continue;
			dp->rules = calloc(n, sizeof(*dp->rules));
			if (!dp->rules) {
				d->nomem = true;
				return;
			}
			dp->nrules = n;
			for (size_t i = 0; i < n && !d->over_limit && !d->nomem; i++) {
				char rp[SN_ERR_PATH_MAX];
				snprintf(rp, sizeof(rp), "%s[%zu]", p, i);
				decode_rule(d, json_array_get(v, i), dir, &dp->rules[i], rp);
			}
		} else if (strcmp(key, "mask_request_host") == 0 && dir == SN_INGRESS) {
			free(pol->mask_request_host);
			pol->mask_request_host = parse_mask_host(d, v, p);
		} else {
			dec_err(d, p, "unknown field; %s has mode and rules%s", dname,
				dir == SN_INGRESS ? " and mask_request_host" : "");
		}
	}
}

void decode_native(struct dec *d, json_t *root, struct sn_policy *p)
{
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "egress") == 0)
			decode_dir(d, v, SN_EGRESS, p);
		else if (strcmp(key, "ingress") == 0)
			decode_dir(d, v, SN_INGRESS, p);
		else
			dec_err(d, key, "unknown field; a policy has egress and ingress");
		if (d->nomem)
			return;
	}
}

/* ---- entry point ---- */

static json_t *load_json(const char *buf, size_t len, struct dec *d)
{
	json_error_t je;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (!root) { /* jansson's text may hold the document's bytes: cleaned */
		char text[sizeof(je.text)];
		sn_errs_add(d->errs, SN_ERR_SYNTAX, "",
			    "JSON syntax error at line %d, column %d: %s", je.line, je.column,
			    sn_err_clean(je.text, text, sizeof(text)));
	}
	return root;
}

int sn_policy_parse(const char *buf, size_t len, enum sn_format fmt, enum sn_dialect dialect,
		    struct sn_policy **out, struct sn_errs *errs)
{
	struct sn_errs local;
	if (!errs) {
		sn_errs_init(&local);
		errs = &local;
	}
	struct dec d = {.errs = errs};
	*out = NULL;
	if (len > SN_LIMIT_DOC_BYTES) {
		sn_errs_add(errs, SN_ERR_LIMIT, "",
			    "the document is %zu bytes; a policy document is at most %u bytes (64 MiB)",
			    len, SN_LIMIT_DOC_BYTES);
		return -EINVAL;
	}
	if (fmt == SN_FORMAT_AUTO) {
		size_t i = 0;
		while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
			i++;
		fmt = i < len && buf[i] == '{' ? SN_FORMAT_JSON : SN_FORMAT_YAML;
	}
	json_t *root = fmt == SN_FORMAT_JSON ? load_json(buf, len, &d) : yaml_to_json(buf, len, &d);
	if (!root)
		return d.nomem ? -ENOMEM : -EINVAL;
	if (json_is_null(root)) {
		/* an empty YAML document: the empty policy */
		json_decref(root);
		root = json_object();
		if (!root)
			return -ENOMEM;
	}
	if (!json_is_object(root)) {
		sn_errs_add(errs, SN_ERR_INVALID, "", "a policy must be an object (a mapping)");
		json_decref(root);
		return -EINVAL;
	}
	struct sn_policy *p = sn_policy_new();
	if (!p) {
		json_decref(root);
		return -ENOMEM;
	}
	if (dialect == SN_DIALECT_AUTO)
		dialect = detect_dialect(&d, root);
	switch (dialect) {
	case SN_DIALECT_NATIVE: decode_native(&d, root, p); break;
	case SN_DIALECT_E2B: decode_e2b(&d, root, p); break;
	case SN_DIALECT_SANDBOX0: decode_sandbox0(&d, root, p); break;
	case SN_DIALECT_AUTO: break; /* detect_dialect reported the mix */
	}
	json_decref(root);
	if (d.nomem || sn_errs_any(errs)) {
		sn_policy_free(p);
		if (d.nomem && !sn_errs_any(errs))
			sn_errs_add(errs, SN_ERR_NOMEM, "", "out of memory");
		return d.nomem ? -ENOMEM : -EINVAL;
	}
	*out = p;
	return 0;
}

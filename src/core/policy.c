/* The policy model: construction, copy, comparison, names of its enums. Core layer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sandnet/policy.h>

#include "internal.h"

struct sn_policy *sn_policy_new(void)
{
	return calloc(1, sizeof(struct sn_policy));
}

void entry_clear(struct sn_entry *e)
{
	free(e->name);
	e->name = NULL;
}

void rule_clear(struct sn_rule *r)
{
	for (size_t i = 0; i < r->npeers; i++)
		entry_clear(&r->peers[i]);
	free(r->peers);
	free(r->ports);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

static void dir_clear(struct sn_dir_policy *d)
{
	for (size_t i = 0; i < d->nrules; i++)
		rule_clear(&d->rules[i]);
	free(d->rules);
	memset(d, 0, sizeof(*d));
}

void sn_policy_free(struct sn_policy *p)
{
	if (!p)
		return;
	dir_clear(&p->egress);
	dir_clear(&p->ingress);
	free(p->mask_request_host);
	free(p);
}

static char *xstrdup(const char *s, bool *fail)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

static void *xmemdup(const void *s, size_t n, bool *fail)
{
	if (!s || !n)
		return NULL;
	void *d = malloc(n);
	if (!d) {
		*fail = true;
		return NULL;
	}
	return memcpy(d, s, n);
}

static bool dir_dup(struct sn_dir_policy *dst, const struct sn_dir_policy *src)
{
	bool fail = false;
	dst->mode = src->mode;
	dst->nrules = 0;
	dst->rules = src->nrules ? calloc(src->nrules, sizeof(*dst->rules)) : NULL;
	if (src->nrules && !dst->rules)
		return false;
	dst->nrules = src->nrules;
	for (size_t i = 0; i < src->nrules && !fail; i++) {
		const struct sn_rule *s = &src->rules[i];
		struct sn_rule *d = &dst->rules[i];
		d->action = s->action;
		d->proto = s->proto;
		d->name = xstrdup(s->name, &fail);
		d->ports = xmemdup(s->ports, s->nports * sizeof(*s->ports), &fail);
		d->nports = d->ports ? s->nports : 0;
		if (s->peers) {
			d->peers = calloc(s->npeers, sizeof(*d->peers));
			if (!d->peers) {
				fail = true;
				break;
			}
			d->npeers = s->npeers;
			for (size_t j = 0; j < s->npeers; j++) {
				d->peers[j] = s->peers[j];
				d->peers[j].name = xstrdup(s->peers[j].name, &fail);
			}
		}
	}
	return !fail;
}

struct sn_policy *sn_policy_dup(const struct sn_policy *p)
{
	struct sn_policy *d = sn_policy_new();
	if (!d)
		return NULL;
	bool fail = false;
	d->mask_request_host = xstrdup(p->mask_request_host, &fail);
	if (fail || !dir_dup(&d->egress, &p->egress) || !dir_dup(&d->ingress, &p->ingress)) {
		sn_policy_free(d);
		return NULL;
	}
	return d;
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool entry_eq(const struct sn_entry *a, const struct sn_entry *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == SN_ENTRY_CIDR)
		return a->cidr.family == b->cidr.family && a->cidr.plen == b->cidr.plen &&
		       memcmp(a->cidr.addr, b->cidr.addr, 16) == 0;
	return str_eq(a->name, b->name);
}

static bool dir_eq(const struct sn_dir_policy *a, const struct sn_dir_policy *b)
{
	if (a->mode != b->mode || a->nrules != b->nrules)
		return false;
	for (size_t i = 0; i < a->nrules; i++) {
		const struct sn_rule *x = &a->rules[i], *y = &b->rules[i];
		if (x->action != y->action || x->proto != y->proto || !str_eq(x->name, y->name) ||
		    x->npeers != y->npeers || x->nports != y->nports || !x->peers != !y->peers ||
		    !x->ports != !y->ports)
			return false;
		for (size_t j = 0; j < x->npeers; j++)
			if (!entry_eq(&x->peers[j], &y->peers[j]))
				return false;
		for (size_t j = 0; j < x->nports; j++)
			if (x->ports[j].lo != y->ports[j].lo || x->ports[j].hi != y->ports[j].hi)
				return false;
	}
	return true;
}

bool sn_policy_equal(const struct sn_policy *a, const struct sn_policy *b)
{
	return dir_eq(&a->egress, &b->egress) && dir_eq(&a->ingress, &b->ingress) &&
	       str_eq(a->mask_request_host, b->mask_request_host);
}

const char *sn_dialect_name(enum sn_dialect d)
{
	switch (d) {
	case SN_DIALECT_AUTO: return "auto";
	case SN_DIALECT_NATIVE: return "native";
	case SN_DIALECT_E2B: return "e2b";
	case SN_DIALECT_SANDBOX0: return "sandbox0";
	}
	return "?";
}

bool sn_dialect_parse(const char *s, enum sn_dialect *out)
{
	static const enum sn_dialect all[] = {SN_DIALECT_NATIVE, SN_DIALECT_E2B, SN_DIALECT_SANDBOX0};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, sn_dialect_name(all[i])) == 0) {
			*out = all[i];
			return true;
		}
	return false;
}

const char *sn_proto_name(enum sn_proto p)
{
	switch (p) {
	case SN_PROTO_ANY: return "any";
	case SN_PROTO_TCP: return "tcp";
	case SN_PROTO_UDP: return "udp";
	case SN_PROTO_ICMP: return "icmp";
	}
	return "?";
}

const char *sn_mode_name(enum sn_mode m)
{
	return m == SN_MODE_BLOCK_ALL ? "block-all" : "allow-all";
}

const char *sn_action_name(enum sn_action a)
{
	return a == SN_DENY ? "deny" : "allow";
}

/* Naive reference evaluator; see naive.h. Deliberately simple: no index, no precomputation. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "naive.h"

static bool norm(const char *in, char *out)
{
	size_t n = strlen(in);
	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
		out[i] = c;
	}
	out[n] = 0;
	if (out[0] == '.' || out[n - 1] == '.' || strstr(out, ".."))
		return false;
	for (const char *l = out; l;) {
		const char *dot = strchr(l, '.');
		size_t ll = dot ? (size_t)(dot - l) : strlen(l);
		if (ll > 63)
			return false;
		l = dot ? dot + 1 : NULL;
	}
	return true;
}

static bool name_match(const struct sn_entry *e, const char *name)
{
	switch (e->kind) {
	case SN_ENTRY_ANY_NAME: return true;
	case SN_ENTRY_NAME: return strcmp(e->name, name) == 0;
	case SN_ENTRY_WILDCARD: {
		size_t nl = strlen(name), pl = strlen(e->name);
		return nl > pl + 1 && name[nl - pl - 1] == '.' && strcmp(name + nl - pl, e->name) == 0;
	}
	default: return false;
	}
}

struct sn_decision naive_decide(const struct sn_policy *p, const struct sn_query *q)
{
	const struct sn_dir_policy *d = q->dir == SN_INGRESS ? &p->ingress : &p->egress;
	char name[256];
	bool have_name = q->name != NULL, valid_name = have_name && norm(q->name, name);
	for (size_t i = 0; i < d->nrules; i++) {
		const struct sn_rule *r = &d->rules[i];
		if (r->proto != SN_PROTO_ANY && r->proto != q->proto)
			continue;
		if (r->ports) {
			if (q->proto != SN_PROTO_TCP && q->proto != SN_PROTO_UDP)
				continue;
			bool in = false;
			for (size_t j = 0; j < r->nports; j++)
				in |= q->port >= r->ports[j].lo && q->port <= r->ports[j].hi;
			if (!in)
				continue;
		}
		bool definite = !r->peers, possible = false;
		for (size_t j = 0; j < r->npeers; j++) {
			const struct sn_entry *e = &r->peers[j];
			if (e->kind == SN_ENTRY_CIDR)
				definite |= sn_cidr_contains(&e->cidr, q->family, q->addr);
			else if (!have_name)
				possible = true;
			else if (valid_name)
				definite |= name_match(e, name);
		}
		if (definite)
			return (struct sn_decision){r->action == SN_DENY ? SN_VERDICT_DENY
									 : SN_VERDICT_ALLOW,
						    (int)i, ""};
		if (possible)
			return (struct sn_decision){SN_VERDICT_NEED_NAME, (int)i, ""};
	}
	return (struct sn_decision){d->mode == SN_MODE_BLOCK_ALL ? SN_VERDICT_DENY
								  : SN_VERDICT_ALLOW,
				    SN_RULE_NONE, ""};
}

bool naive_dns_allowed(const struct sn_policy *p, const char *qname, int *rule)
{
	char name[256];
	*rule = SN_RULE_NONE;
	if (!norm(qname, name))
		return false;
	for (size_t i = 0; i < p->egress.nrules; i++) {
		const struct sn_rule *r = &p->egress.rules[i];
		bool can = !r->peers;
		for (size_t j = 0; j < r->npeers; j++)
			can |= r->peers[j].kind != SN_ENTRY_CIDR && name_match(&r->peers[j], name);
		if (!can)
			continue;
		if (r->action == SN_ALLOW) {
			*rule = (int)i;
			return true;
		}
		if (!r->ports && r->proto == SN_PROTO_ANY) {
			*rule = (int)i;
			return false;
		}
	}
	return p->egress.mode == SN_MODE_ALLOW_ALL;
}

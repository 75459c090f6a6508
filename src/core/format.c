/* Canonical JSON of a policy: keys in a fixed order, entries normalised, defaults shown, so that
 * parse(format(p)) == p. Core layer. */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include <sandnet/policy.h>

static json_t *entry_json(const struct sn_entry *e)
{
	char buf[300];
	switch (e->kind) {
	case SN_ENTRY_CIDR: return json_string(sn_cidr_format(&e->cidr, buf, sizeof(buf)));
	case SN_ENTRY_NAME: return json_string(e->name);
	case SN_ENTRY_WILDCARD:
		snprintf(buf, sizeof(buf), "*.%s", e->name);
		return json_string(buf);
	case SN_ENTRY_ANY_NAME: return json_string("*");
	}
	return NULL;
}

static json_t *port_json(const struct sn_port_range *r)
{
	if (r->lo == r->hi)
		return json_integer(r->lo);
	char buf[16];
	snprintf(buf, sizeof(buf), "%u-%u", r->lo, r->hi);
	return json_string(buf);
}

/* json_*_set_new() and _append_new() take the reference even on failure; a NULL value fails. */
static int add(json_t *o, const char *k, json_t *v)
{
	return json_object_set_new(o, k, v);
}

static json_t *dir_json(const struct sn_dir_policy *dp, enum sn_dir dir, const char *mask)
{
	json_t *o = json_object(), *rules = json_array();
	int rc = !o || !rules;
	rc |= add(o, "mode", json_string(sn_mode_name(dp->mode)));
	for (size_t i = 0; i < dp->nrules && !rc; i++) {
		const struct sn_rule *r = &dp->rules[i];
		json_t *jr = json_object();
		rc |= json_array_append_new(rules, jr);
		rc |= add(jr, "action", json_string(sn_action_name(r->action)));
		if (r->peers) {
			json_t *a = json_array();
			rc |= add(jr, dir == SN_EGRESS ? "to" : "from", a);
			for (size_t j = 0; j < r->npeers && !rc; j++)
				rc |= json_array_append_new(a, entry_json(&r->peers[j]));
		}
		if (r->ports) {
			json_t *a = json_array();
			rc |= add(jr, "ports", a);
			for (size_t j = 0; j < r->nports && !rc; j++)
				rc |= json_array_append_new(a, port_json(&r->ports[j]));
		}
		rc |= add(jr, "protocol", json_string(sn_proto_name(r->proto)));
		if (r->name)
			rc |= add(jr, "name", json_string(r->name));
	}
	rc |= add(o, "rules", rules);
	if (mask)
		rc |= add(o, "mask_request_host", json_string(mask));
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *sn_policy_format(const struct sn_policy *p, int indent)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int rc = add(o, "egress", dir_json(&p->egress, SN_EGRESS, NULL));
	rc |= add(o, "ingress", dir_json(&p->ingress, SN_INGRESS, p->mask_request_host));
	char *s = NULL;
	if (!rc) {
		size_t flags = JSON_PRESERVE_ORDER | (indent > 0 ? JSON_INDENT(indent) : JSON_COMPACT);
		s = json_dumps(o, flags);
	}
	json_decref(o);
	return s;
}

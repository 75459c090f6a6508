/* Canonical JSON of a policy: keys in a fixed order, entries normalised, defaults shown, so that
 * parse(format(p)) == p. Core layer. */
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

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

/* The same document written directly, for the compact form: what the daemon stores on every
 * update, where a jansson tree of 100,000 entries cost more than the rest of the update. The
 * bytes are jansson's (same order, separators and escapes); tests compare the two. */
struct out {
	char *s;
	size_t len, cap;
	bool failed;
};

static void o_raw(struct out *o, const char *p, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *q = realloc(o->s, cap);
		if (!q) {
			o->failed = true;
			return;
		}
		o->s = q;
		o->cap = cap;
	}
	memcpy(o->s + o->len, p, n);
	o->len += n;
	o->s[o->len] = 0;
}

static void o_lit(struct out *o, const char *p)
{
	o_raw(o, p, strlen(p));
}

/* A JSON string as jansson writes it: " \ and control characters escaped, the rest as is. */
static void o_str(struct out *o, const char *p)
{
	o_raw(o, "\"", 1);
	const char *run = p;
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		o_raw(o, run, (size_t)(p - run));
		char esc[8];
		switch (c) {
		case '"': o_raw(o, "\\\"", 2); break;
		case '\\': o_raw(o, "\\\\", 2); break;
		case '\b': o_raw(o, "\\b", 2); break;
		case '\f': o_raw(o, "\\f", 2); break;
		case '\n': o_raw(o, "\\n", 2); break;
		case '\r': o_raw(o, "\\r", 2); break;
		case '\t': o_raw(o, "\\t", 2); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04X", c);
			o_raw(o, esc, 6);
		}
		run = p + 1;
	}
	o_raw(o, run, (size_t)(p - run));
	o_raw(o, "\"", 1);
}

static char *put_uint(char *w, unsigned v)
{
	char tmp[12];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		*w++ = tmp[--n];
	return w;
}

static void o_cidr(struct out *o, const struct sn_cidr *c)
{
	char buf[SN_CIDR_STRLEN + 2], *w = buf;
	*w++ = '"';
	if (c->family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			if (i)
				*w++ = '.';
			w = put_uint(w, c->addr[i]);
		}
		if (c->plen != 32) {
			*w++ = '/';
			w = put_uint(w, c->plen);
		}
		*w++ = '"';
		o_raw(o, buf, (size_t)(w - buf));
		return;
	}
	char a[SN_CIDR_STRLEN];
	sn_cidr_format(c, a, sizeof(a));
	o_raw(o, "\"", 1);
	o_lit(o, a);
	o_raw(o, "\"", 1);
}

static void o_entry(struct out *o, const struct sn_entry *e)
{
	switch (e->kind) {
	case SN_ENTRY_CIDR: o_cidr(o, &e->cidr); return;
	case SN_ENTRY_NAME: o_str(o, e->name); return;
	case SN_ENTRY_WILDCARD:
		o_lit(o, "\"*.");
		o_lit(o, e->name); /* a domain: nothing to escape */
		o_raw(o, "\"", 1);
		return;
	case SN_ENTRY_ANY_NAME: o_lit(o, "\"*\""); return;
	}
}

static void o_dir(struct out *o, const struct sn_dir_policy *dp, enum sn_dir dir, const char *mask)
{
	o_lit(o, "{\"mode\":");
	o_str(o, sn_mode_name(dp->mode));
	o_lit(o, ",\"rules\":[");
	for (size_t i = 0; i < dp->nrules; i++) {
		const struct sn_rule *r = &dp->rules[i];
		o_lit(o, i ? ",{\"action\":" : "{\"action\":");
		o_str(o, sn_action_name(r->action));
		if (r->peers) {
			o_lit(o, dir == SN_EGRESS ? ",\"to\":[" : ",\"from\":[");
			for (size_t j = 0; j < r->npeers; j++) {
				if (j)
					o_raw(o, ",", 1);
				o_entry(o, &r->peers[j]);
			}
			o_raw(o, "]", 1);
		}
		if (r->ports) {
			o_lit(o, ",\"ports\":[");
			for (size_t j = 0; j < r->nports; j++) {
				char b[24], *w = b;
				if (j)
					*w++ = ',';
				if (r->ports[j].lo == r->ports[j].hi) {
					w = put_uint(w, r->ports[j].lo);
				} else {
					*w++ = '"';
					w = put_uint(w, r->ports[j].lo);
					*w++ = '-';
					w = put_uint(w, r->ports[j].hi);
					*w++ = '"';
				}
				o_raw(o, b, (size_t)(w - b));
			}
			o_raw(o, "]", 1);
		}
		o_lit(o, ",\"protocol\":");
		o_str(o, sn_proto_name(r->proto));
		if (r->name) {
			o_lit(o, ",\"name\":");
			o_str(o, r->name);
		}
		o_raw(o, "}", 1);
	}
	o_raw(o, "]", 1);
	if (mask) {
		o_lit(o, ",\"mask_request_host\":");
		o_str(o, mask);
	}
	o_raw(o, "}", 1);
}

char *sn_policy_format_tree(const struct sn_policy *p, int indent);

char *sn_policy_format(const struct sn_policy *p, int indent)
{
	if (indent > 0)
		return sn_policy_format_tree(p, indent);
	struct out o = {0};
	o_lit(&o, "{\"egress\":");
	o_dir(&o, &p->egress, SN_EGRESS, NULL);
	o_lit(&o, ",\"ingress\":");
	o_dir(&o, &p->ingress, SN_INGRESS, p->mask_request_host);
	o_raw(&o, "}", 1);
	if (o.failed) {
		free(o.s);
		return NULL;
	}
	return o.s;
}

/* The document through a jansson tree: the indented form, and the reference for the direct one. */
char *sn_policy_format_tree(const struct sn_policy *p, int indent)
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

/* ---- peers' views ---- */

static char *dump(json_t *o, int indent)
{
	char *s = o ? json_dumps(o, JSON_PRESERVE_ORDER |
					    (indent > 0 ? JSON_INDENT(indent) : JSON_COMPACT))
		    : NULL;
	json_decref(o);
	return s;
}

char *sn_policy_format_sandbox0(const struct sn_policy *p, int indent)
{
	json_t *rules = json_array();
	int rc = !rules;
	for (size_t i = 0; i < p->egress.nrules && !rc; i++) {
		const struct sn_rule *r = &p->egress.rules[i];
		json_t *jr = json_object();
		rc |= json_array_append_new(rules, jr);
		if (r->name)
			rc |= add(jr, "name", json_string(r->name));
		rc |= add(jr, "action", json_string(sn_action_name(r->action)));
		json_t *domains = json_array(), *cidrs = json_array();
		for (size_t j = 0; j < r->npeers; j++)
			rc |= json_array_append_new(r->peers[j].kind == SN_ENTRY_CIDR ? cidrs : domains,
						    entry_json(&r->peers[j]));
		if (json_array_size(domains))
			rc |= add(jr, "domains", domains);
		else
			json_decref(domains);
		if (json_array_size(cidrs))
			rc |= add(jr, "cidrs", cidrs);
		else
			json_decref(cidrs);
		bool per_port = r->ports && (r->proto == SN_PROTO_TCP || r->proto == SN_PROTO_UDP);
		if (r->ports) {
			json_t *ports = json_array();
			rc |= add(jr, "ports", ports);
			for (size_t j = 0; j < r->nports && !rc; j++) {
				json_t *jp = json_object();
				rc |= json_array_append_new(ports, jp);
				rc |= add(jp, "port", json_integer(r->ports[j].lo));
				if (r->ports[j].hi != r->ports[j].lo)
					rc |= add(jp, "endPort", json_integer(r->ports[j].hi));
				if (per_port)
					rc |= add(jp, "protocol", json_string(sn_proto_name(r->proto)));
			}
		}
		if (!per_port)
			rc |= add(jr, "protocol", json_string(sn_proto_name(r->proto)));
	}
	json_t *o = rc ? NULL
		       : json_pack("{s:s, s:{s:o}}", "mode", sn_mode_name(p->egress.mode), "egress",
				   "trafficRules", rules);
	if (!o)
		json_decref(rules);
	return dump(o, indent);
}

/* E2B's lists, as close to the policy as they can come. */
static json_t *e2b_network(const struct sn_policy *p, bool with_ports)
{
	json_t *allow_out = json_array(), *deny_out = json_array(), *allow_in = json_array(),
	       *deny_in = json_array();
	json_t *n = json_object();
	int rc = !allow_out || !deny_out || !allow_in || !deny_in || !n;
	if (p->egress.mode == SN_MODE_BLOCK_ALL)
		rc |= json_array_append_new(deny_out, json_string("0.0.0.0/0"));
	for (size_t i = 0; i < p->egress.nrules && !rc; i++) {
		const struct sn_rule *r = &p->egress.rules[i];
		for (size_t j = 0; j < r->npeers; j++)
			if (r->action == SN_ALLOW)
				rc |= json_array_append_new(allow_out, entry_json(&r->peers[j]));
			else if (r->peers[j].kind == SN_ENTRY_CIDR)
				rc |= json_array_append_new(deny_out, entry_json(&r->peers[j]));
	}
	json_t *allow_ports = json_array(), *deny_ports = json_array();
	rc |= !allow_ports || !deny_ports;
	if (p->ingress.mode == SN_MODE_BLOCK_ALL && !rc) {
		/* E2B has no "block-all" of its own: deny every client unless a rule allows ports
		 * only, which E2B says with allowPorts */
		bool ports_only = false;
		for (size_t i = 0; i < p->ingress.nrules; i++)
			ports_only |= p->ingress.rules[i].action == SN_ALLOW &&
				      !p->ingress.rules[i].peers;
		if (!ports_only)
			rc |= json_array_append_new(deny_in, json_string("0.0.0.0/0"));
	}
	for (size_t i = 0; i < p->ingress.nrules && !rc; i++) {
		const struct sn_rule *r = &p->ingress.rules[i];
		for (size_t j = 0; j < r->npeers; j++)
			rc |= json_array_append_new(r->action == SN_ALLOW ? allow_in : deny_in,
						    entry_json(&r->peers[j]));
		for (size_t j = 0; r->ports && j < r->nports; j++)
			rc |= json_array_append_new(r->action == SN_ALLOW ? allow_ports : deny_ports,
						    port_json(&r->ports[j]));
	}
	rc |= add(n, "allowOut", allow_out);
	rc |= add(n, "denyOut", deny_out);
	rc |= add(n, "allowIn", allow_in);
	rc |= add(n, "denyIn", deny_in);
	if (with_ports) {
		rc |= add(n, "allowPorts", allow_ports);
		rc |= add(n, "denyPorts", deny_ports);
	} else {
		json_decref(allow_ports);
		json_decref(deny_ports);
	}
	if (p->mask_request_host) {
		/* E2B writes the placeholder ${PORT} */
		char buf[400];
		const char *ph = strstr(p->mask_request_host, "{port}");
		if (ph)
			snprintf(buf, sizeof(buf), "%.*s${PORT}%s", (int)(ph - p->mask_request_host),
				 p->mask_request_host, ph + 6);
		else
			snprintf(buf, sizeof(buf), "%s", p->mask_request_host);
		rc |= add(n, "maskRequestHost", json_string(buf));
	}
	if (rc) {
		json_decref(n);
		return NULL;
	}
	return n;
}

char *sn_policy_format_e2b(const struct sn_policy *p, bool *exact)
{
	json_t *n = e2b_network(p, false);
	/* exact when E2B's own fields (ports included, which the view does not show) convert back
	 * to this very policy */
	*exact = false;
	json_t *full = e2b_network(p, true);
	char *body = dump(full, 0);
	struct sn_policy *q = NULL;
	if (body && sn_policy_parse(body, strlen(body), SN_FORMAT_JSON, SN_DIALECT_E2B, &q, NULL) == 0)
		*exact = sn_policy_equal(p, q);
	sn_policy_free(q);
	free(body);
	json_t *o = n ? json_pack("{s:b, s:o}", "allowInternetAccess",
				  p->egress.mode == SN_MODE_ALLOW_ALL, "network", n)
		      : NULL;
	if (o && !*exact)
		json_object_set_new(json_object_get(o, "network"), "x-sandnet-native", json_true());
	return dump(o, 0);
}

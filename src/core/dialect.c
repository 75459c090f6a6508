/* Peers' policy shapes, converted to the native form with the peers' own validation rules
 * (DESIGN.md section 1, "Dialects"): E2B and sandbox0 (legacy lists and trafficRules).
 * Core layer: pure conversion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

static const char *const e2b_keys[] = {"allowOut", "denyOut", "allow_internet_access",
				       "allowInternetAccess", "allowIn", "denyIn",
				       "allowPorts", "denyPorts", "maskRequestHost", NULL};
static const char *const s0_egress_keys[] = {"allowed_domains", "denied_domains", "allowed_cidrs",
					     "denied_cidrs", "allowed_ports", "denied_ports",
					     "trafficRules", NULL};

static bool in_list(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

enum sn_dialect detect_dialect(struct dec *d, json_t *root)
{
	const char *key, *e2b_key = NULL, *native_key = NULL, *s0_key = NULL;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (in_list(e2b_keys, key)) {
			if (!e2b_key)
				e2b_key = key;
		} else if (strcmp(key, "mode") == 0) {
			s0_key = "mode";
		} else if (strcmp(key, "ingress") == 0) {
			native_key = "ingress";
		} else if (strcmp(key, "egress") == 0 && json_is_object(v)) {
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2)
			{
				if (in_list(s0_egress_keys, k2))
					s0_key = s0_key ? s0_key : "egress.allowed_*/trafficRules";
				else if (strcmp(k2, "mode") == 0 || strcmp(k2, "rules") == 0)
					native_key = native_key ? native_key : "egress.mode/rules";
			}
		}
	}
	/* a top-level mode beside native egress fields is still a mix */
	int kinds = !!e2b_key + !!native_key + !!s0_key;
	if (kinds > 1) {
		char what[200] = "";
		size_t o = 0;
		if (native_key)
			o += (size_t)snprintf(what + o, sizeof(what) - o, "native (%s)", native_key);
		if (e2b_key)
			o += (size_t)snprintf(what + o, sizeof(what) - o, "%sE2B (%s)", o ? ", " : "",
					      e2b_key);
		if (s0_key)
			snprintf(what + o, sizeof(what) - o, "%ssandbox0 (%s)", o ? ", " : "", s0_key);
		dec_err(d, "", "the document mixes policy dialects: %s; use one", what);
		return SN_DIALECT_AUTO;
	}
	if (e2b_key)
		return SN_DIALECT_E2B;
	if (s0_key)
		return SN_DIALECT_SANDBOX0;
	return SN_DIALECT_NATIVE;
}

/* Appends a rule to a direction; returns it zeroed, or NULL when out of memory. */
static struct sn_rule *add_rule(struct dec *d, struct sn_dir_policy *dp, enum sn_action action)
{
	struct sn_rule *nr = realloc(dp->rules, (dp->nrules + 1) * sizeof(*nr));
	if (!nr) {
		d->nomem = true;
		return NULL;
	}
	dp->rules = nr;
	struct sn_rule *r = &nr[dp->nrules++];
	memset(r, 0, sizeof(*r));
	r->action = action;
	r->proto = SN_PROTO_ANY;
	return r;
}

/* A dialect's list: absent or empty is "no entries"; anything but a list is an error. */
static json_t *opt_list(struct dec *d, json_t *v, const char *path)
{
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_array(v)) {
		dec_err(d, path, "must be a list");
		return NULL;
	}
	return json_array_size(v) ? v : NULL;
}

static void move_entries(struct sn_rule *r, struct sn_entry *v, size_t n)
{
	r->peers = v;
	r->npeers = n;
	fold_entries(r->peers, &r->npeers);
}

/* ---- E2B ---- */

struct e2b_list {
	struct sn_entry *v;
	size_t n;
	bool all; /* held 0.0.0.0/0 or ::/0 */
};

/* names_ok false: a name in the list is an error (allowOut without a blocking denyOut). keep_all:
 * 0.0.0.0/0 stays an entry instead of setting out->all. */
static void e2b_list_parse(struct dec *d, json_t *root, const char *key, enum entry_accept acc,
			   bool names_ok, bool keep_all, struct e2b_list *out)
{
	memset(out, 0, sizeof(*out));
	json_t *arr = opt_list(d, json_object_get(root, key), key);
	if (!arr)
		return;
	size_t n = json_array_size(arr);
	if (!dec_count(d, n))
		return;
	out->v = calloc(n, sizeof(*out->v));
	if (!out->v) {
		d->nomem = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char p[SN_ERR_PATH_MAX];
		snprintf(p, sizeof(p), "%s[%zu]", key, i);
		json_t *item = json_array_get(arr, i);
		const char *s = json_string_value(item);
		if (!s) {
			dec_err(d, p, "must be a string");
			continue;
		}
		struct sn_entry e;
		if (!parse_entry_str(d, s, acc, &e, p))
			continue;
		if (entry_is_unspecified(&e)) {
			dec_err(d, p,
				"%s is the unspecified address; to mean every address write "
				"\"%s\"",
				SN_QUOTE(s), e.cidr.family == AF_INET6 ? "::/0" : "0.0.0.0/0");
			continue;
		}
		if (e.kind != SN_ENTRY_CIDR && !names_ok) {
			dec_err(d, p,
				"a domain in allowOut needs \"0.0.0.0/0\" in denyOut (or "
				"allow_internet_access: false); without it all traffic is allowed "
				"anyway");
			entry_clear(&e);
			continue;
		}
		if (entry_is_all(&e) && !keep_all)
			out->all = true;
		else
			out->v[out->n++] = e;
	}
}

static void e2b_list_free(struct e2b_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		entry_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void e2b_ports(struct dec *d, json_t *root, const char *key, struct sn_port_range **v,
		      size_t *n)
{
	json_t *arr = opt_list(d, json_object_get(root, key), key);
	if (arr && parse_port_list(d, arr, v, n, key))
		fold_ports(*v, n);
}

void decode_e2b(struct dec *d, json_t *root, struct sn_policy *p)
{
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (!in_list(e2b_keys, key))
			dec_err(d, key, "unknown field for an E2B network body (allowOut, denyOut, "
					"allow_internet_access, allowIn, denyIn, allowPorts, denyPorts, "
					"maskRequestHost)");
	}
	json_t *aia = json_object_get(root, "allow_internet_access");
	json_t *aia2 = json_object_get(root, "allowInternetAccess");
	if (aia && aia2)
		dec_err(d, "allowInternetAccess",
			"give allow_internet_access or allowInternetAccess, not both");
	const char *aia_key = aia ? "allow_internet_access" : "allowInternetAccess";
	aia = aia ? aia : aia2;
	bool internet = true;
	if (aia && !json_is_null(aia)) {
		if (!json_is_boolean(aia))
			dec_err(d, aia_key, "must be true or false");
		else
			internet = json_is_true(aia);
	}

	struct e2b_list allow_out, deny_out, allow_in, deny_in;
	e2b_list_parse(d, root, "denyOut", ACCEPT_ADDR, true, false, &deny_out);
	bool blocked = deny_out.all || !internet;
	e2b_list_parse(d, root, "allowOut", ACCEPT_ANY, blocked, true, &allow_out);
	e2b_list_parse(d, root, "denyIn", ACCEPT_ADDR, true, false, &deny_in);
	e2b_list_parse(d, root, "allowIn", ACCEPT_ADDR, true, true, &allow_in);
	struct sn_port_range *aports = NULL, *dports = NULL;
	size_t naports = 0, ndports = 0;
	e2b_ports(d, root, "allowPorts", &aports, &naports);
	e2b_ports(d, root, "denyPorts", &dports, &ndports);

	if (allow_in.n && !deny_in.all)
		dec_err(d, "allowIn", "allowIn needs \"0.0.0.0/0\" in denyIn; without it every "
				      "client is allowed anyway");
	if (naports && ndports)
		dec_err(d, "allowPorts", "give allowPorts or denyPorts, not both");

	json_t *mrh = json_object_get(root, "maskRequestHost");
	if (mrh && !json_is_null(mrh))
		p->mask_request_host = parse_mask_host(d, mrh, "maskRequestHost");

	if (sn_errs_any(d->errs) || d->nomem)
		goto out;

	/* egress: allowOut first (allow wins), then the remaining denyOut entries, then the mode */
	p->egress.mode = blocked ? SN_MODE_BLOCK_ALL : SN_MODE_ALLOW_ALL;
	if (allow_out.n) {
		struct sn_rule *r = add_rule(d, &p->egress, SN_ALLOW);
		if (!r)
			goto out;
		move_entries(r, allow_out.v, allow_out.n);
		allow_out.v = NULL;
		allow_out.n = 0;
	}
	if (deny_out.n) {
		struct sn_rule *r = add_rule(d, &p->egress, SN_DENY);
		if (!r)
			goto out;
		move_entries(r, deny_out.v, deny_out.n);
		deny_out.v = NULL;
		deny_out.n = 0;
	}

	/* ingress: a request passes when its port passes and its client passes */
	if (ndports) {
		struct sn_rule *r = add_rule(d, &p->ingress, SN_DENY);
		if (!r)
			goto out;
		r->ports = dports;
		r->nports = ndports;
		dports = NULL;
	}
	if (deny_in.all) {
		/* only allowIn clients (on allowPorts, when given) */
		if (allow_in.n) {
			struct sn_rule *r = add_rule(d, &p->ingress, SN_ALLOW);
			if (!r)
				goto out;
			move_entries(r, allow_in.v, allow_in.n);
			allow_in.v = NULL;
			allow_in.n = 0;
			if (naports) {
				r->ports = aports;
				r->nports = naports;
				aports = NULL;
			}
		}
		p->ingress.mode = SN_MODE_BLOCK_ALL;
	} else {
		if (deny_in.n) {
			struct sn_rule *r = add_rule(d, &p->ingress, SN_DENY);
			if (!r)
				goto out;
			move_entries(r, deny_in.v, deny_in.n);
			deny_in.v = NULL;
			deny_in.n = 0;
		}
		if (naports) {
			struct sn_rule *r = add_rule(d, &p->ingress, SN_ALLOW);
			if (!r)
				goto out;
			r->ports = aports;
			r->nports = naports;
			aports = NULL;
			p->ingress.mode = SN_MODE_BLOCK_ALL;
		}
	}
out:
	e2b_list_free(&allow_out);
	e2b_list_free(&deny_out);
	e2b_list_free(&allow_in);
	e2b_list_free(&deny_in);
	free(aports);
	free(dports);
}

/* ---- sandbox0 ---- */

static void s0_entries(struct dec *d, json_t *obj, const char *key, enum entry_accept acc,
		       const char *base, struct sn_entry **v, size_t *n)
{
	char p[SN_ERR_PATH_MAX];
	snprintf(p, sizeof(p), "%s.%s", base, key);
	json_t *arr = opt_list(d, json_object_get(obj, key), p);
	if (arr)
		parse_entry_list(d, arr, acc, v, n, p);
}

static void s0_ports(struct dec *d, json_t *obj, const char *key, struct sn_port_range **v,
		     size_t *n)
{
	char p[SN_ERR_PATH_MAX];
	snprintf(p, sizeof(p), "egress.%s", key);
	json_t *arr = opt_list(d, json_object_get(obj, key), p);
	if (arr && parse_port_list(d, arr, v, n, p))
		fold_ports(*v, n);
}

/* One trafficRules item -> one native rule per protocol its ports use. */
static void s0_traffic_rule(struct dec *d, json_t *tr, size_t idx, struct sn_policy *pol)
{
	char base[SN_ERR_PATH_MAX], p[SN_ERR_PATH_MAX];
	snprintf(base, sizeof(base), "egress.trafficRules[%zu]", idx);
	if (!json_is_object(tr)) {
		dec_err(d, base, "must be an object with action and optional name, domains, cidrs, "
				 "ports");
		return;
	}
	const char *key;
	json_t *v;
	json_object_foreach(tr, key, v)
	{
		static const char *const ok[] = {"name",  "action",   "domains", "cidrs",
						 "ports", "protocol", NULL};
		if (!in_list(ok, key)) {
			snprintf(p, sizeof(p), "%s.%s", base, key);
			dec_err(d, p, "unknown field; a traffic rule has name, action, domains, cidrs "
				      "and ports");
		}
	}
	enum sn_action action = SN_ALLOW;
	const char *act = json_string_value(json_object_get(tr, "action"));
	snprintf(p, sizeof(p), "%s.action", base);
	if (!json_object_get(tr, "action"))
		dec_err(d, p, "missing; every rule needs \"action\": allow or deny");
	else if (act && strcmp(act, "allow") == 0)
		action = SN_ALLOW;
	else if (act && strcmp(act, "deny") == 0)
		action = SN_DENY;
	else
		dec_err(d, p, "must be allow or deny");
	char *name = NULL;
	json_t *jn = json_object_get(tr, "name");
	if (jn && !json_is_null(jn)) {
		snprintf(p, sizeof(p), "%s.name", base);
		name = parse_rule_name(d, jn, p);
	}
	struct sn_entry *peers = NULL;
	size_t npeers = 0;
	s0_entries(d, tr, "domains", ACCEPT_NAME, base, &peers, &npeers);
	s0_entries(d, tr, "cidrs", ACCEPT_ADDR, base, &peers, &npeers);

	/* sandnet's extension, so that every native rule has a sandbox0 form: "protocol" at the rule
	 * level (tcp, udp, icmp, any); the ports then carry none of their own (or the same) */
	int rule_proto = -1;
	json_t *jrp = json_object_get(tr, "protocol");
	if (jrp && !json_is_null(jrp)) {
		const char *ps = json_string_value(jrp);
		static const enum sn_proto protos[] = {SN_PROTO_ANY, SN_PROTO_TCP, SN_PROTO_UDP,
						       SN_PROTO_ICMP};
		for (int k = 0; ps && k < 4; k++)
			if (strcmp(ps, sn_proto_name(protos[k])) == 0)
				rule_proto = (int)protos[k];
		if (rule_proto < 0) {
			snprintf(p, sizeof(p), "%s.protocol", base);
			dec_err(d, p, "must be tcp, udp, icmp or any");
		}
	}
	/* ports: [{port, endPort?, protocol?}] split by protocol */
	struct sn_port_range *pr[2] = {NULL, NULL}; /* tcp, udp */
	size_t npr[2] = {0, 0};
	snprintf(p, sizeof(p), "%s.ports", base);
	json_t *ports = opt_list(d, json_object_get(tr, "ports"), p);
	size_t nports = ports ? json_array_size(ports) : 0;
	if (nports && dec_count(d, nports)) {
		pr[0] = calloc(nports, sizeof(*pr[0]));
		pr[1] = calloc(nports, sizeof(*pr[1]));
		if (!pr[0] || !pr[1])
			d->nomem = true;
		for (size_t i = 0; i < nports && !d->nomem; i++) {
			char ip[SN_ERR_PATH_MAX];
			json_t *it = json_array_get(ports, i);
			snprintf(ip, sizeof(ip), "%s.ports[%zu]", base, i);
			if (!json_is_object(it)) {
				dec_err(d, ip, "must be an object {\"port\": N, \"endPort\"?: M, "
					       "\"protocol\"?: \"tcp\"|\"udp\"}");
				continue;
			}
			json_object_foreach(it, key, v)
			{
				if (strcmp(key, "port") && strcmp(key, "endPort") &&
				    strcmp(key, "protocol")) {
					char kp[SN_ERR_PATH_MAX];
					snprintf(kp, sizeof(kp), "%s.%s", ip, key);
					dec_err(d, kp, "unknown field; a port has port, endPort and "
						       "protocol");
				}
			}
			char fp[SN_ERR_PATH_MAX];
			json_t *jp = json_object_get(it, "port"), *je = json_object_get(it, "endPort");
			json_int_t lo = json_integer_value(jp), hi = lo;
			snprintf(fp, sizeof(fp), "%s.port", ip);
			if (!json_is_integer(jp) || lo < 1 || lo > 65535) {
				dec_err(d, fp, "must be a port number 1-65535");
				continue;
			}
			if (je && !json_is_null(je)) {
				snprintf(fp, sizeof(fp), "%s.endPort", ip);
				hi = json_integer_value(je);
				if (!json_is_integer(je) || hi < 1 || hi > 65535) {
					dec_err(d, fp, "must be a port number 1-65535");
					continue;
				}
				if (hi < lo) {
					dec_err(d, fp, "%lld is below port %lld; endPort ends the range",
						(long long)hi, (long long)lo);
					continue;
				}
			}
			int which = rule_proto == SN_PROTO_UDP ? 1 : 0;
			json_t *jpr = json_object_get(it, "protocol");
			if (jpr && !json_is_null(jpr)) {
				const char *s = json_string_value(jpr);
				snprintf(fp, sizeof(fp), "%s.protocol", ip);
				if (s && strcmp(s, "tcp") == 0)
					which = 0;
				else if (s && strcmp(s, "udp") == 0)
					which = 1;
				else {
					dec_err(d, fp, "must be tcp or udp");
					continue;
				}
				if (rule_proto >= 0 &&
				    rule_proto != (which ? SN_PROTO_UDP : SN_PROTO_TCP)) {
					dec_err(d, fp,
						"differs from the rule's protocol; give one or the "
						"other");
					continue;
				}
			}
			pr[which][npr[which]].lo = (uint16_t)lo;
			pr[which][npr[which]].hi = (uint16_t)hi;
			npr[which]++;
		}
	}
	fold_entries(peers, &npeers);
	if (rule_proto == SN_PROTO_ICMP && nports) {
		snprintf(p, sizeof(p), "%s.ports", base);
		dec_err(d, p, "ICMP has no ports");
	}
	if (rule_proto >= 0 && !sn_errs_any(d->errs) && !d->nomem) {
		/* one rule, of the rule's protocol, with all its ports */
		struct sn_rule *r = add_rule(d, &pol->egress, action);
		int w = rule_proto == SN_PROTO_UDP ? 1 : 0;
		if (r) {
			r->proto = (enum sn_proto)rule_proto;
			if (name && !(r->name = strdup(name)))
				d->nomem = true;
			r->peers = peers;
			r->npeers = npeers;
			peers = NULL;
			npeers = 0;
			if (nports && npr[w]) {
				r->ports = pr[w];
				r->nports = npr[w];
				fold_ports(r->ports, &r->nports);
				pr[w] = NULL;
			}
		}
	} else if (!sn_errs_any(d->errs) && !d->nomem) {
		/* one native rule per protocol used, tcp first; without ports: protocol any */
		for (int w = 0; w < 2 && !d->nomem; w++) {
			if (nports && !npr[w])
				continue;
			struct sn_rule *r = add_rule(d, &pol->egress, action);
			if (!r)
				break;
			if (name && !(r->name = strdup(name)))
				d->nomem = true;
			if (npeers && !(r->peers = calloc(npeers, sizeof(*r->peers)))) {
				d->nomem = true;
				break;
			}
			for (size_t i = 0; i < npeers; i++) {
				r->peers[r->npeers] = peers[i];
				r->peers[r->npeers].name = NULL;
				if (peers[i].name && !(r->peers[r->npeers].name = strdup(peers[i].name)))
					d->nomem = true;
				r->npeers++;
			}
			if (nports) {
				r->proto = w == 0 ? SN_PROTO_TCP : SN_PROTO_UDP;
				r->ports = pr[w];
				r->nports = npr[w];
				fold_ports(r->ports, &r->nports);
				pr[w] = NULL;
			} else {
				break;
			}
		}
	}
	for (size_t i = 0; i < npeers; i++)
		entry_clear(&peers[i]);
	free(peers);
	free(pr[0]);
	free(pr[1]);
	free(name);
}

void decode_sandbox0(struct dec *d, json_t *root, struct sn_policy *p)
{
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "mode") && strcmp(key, "egress"))
			dec_err(d, key, "unknown field for a sandbox0 network policy (mode, egress)");
	}
	enum sn_mode mode = SN_MODE_ALLOW_ALL;
	json_t *jm = json_object_get(root, "mode");
	if (jm) {
		const char *s = json_string_value(jm);
		if (s && strcmp(s, "allow-all") == 0)
			mode = SN_MODE_ALLOW_ALL;
		else if (s && strcmp(s, "block-all") == 0)
			mode = SN_MODE_BLOCK_ALL;
		else
			dec_err(d, "mode", "must be allow-all or block-all");
	}
	p->egress.mode = mode;
	json_t *eg = json_object_get(root, "egress");
	if (!eg || json_is_null(eg))
		return;
	if (!json_is_object(eg)) {
		dec_err(d, "egress", "must be an object");
		return;
	}
	bool legacy = false;
	json_object_foreach(eg, key, v)
	{
		char p2[SN_ERR_PATH_MAX];
		snprintf(p2, sizeof(p2), "egress.%s", key);
		if (!in_list(s0_egress_keys, key))
			dec_err(d, p2, "unknown field; sandbox0 egress has allowed_domains, "
				       "denied_domains, allowed_cidrs, denied_cidrs, allowed_ports, "
				       "denied_ports or trafficRules");
		else if (strcmp(key, "trafficRules") != 0)
			legacy = true;
	}
	json_t *tr = json_object_get(eg, "trafficRules");
	if (tr && legacy) {
		dec_err(d, "egress.trafficRules",
			"trafficRules cannot be mixed with the allowed_*/denied_* lists; use one");
		return;
	}
	if (tr) {
		if (!json_is_array(tr)) {
			dec_err(d, "egress.trafficRules", "must be a list of rules");
			return;
		}
		size_t n = json_array_size(tr);
		if (n > SN_LIMIT_RULES) {
			dec_limit(d, "egress.trafficRules", "%zu rules; a direction holds at most %u",
				  n, SN_LIMIT_RULES);
			return;
		}
		for (size_t i = 0; i < n && !d->nomem && !d->over_limit; i++)
			s0_traffic_rule(d, json_array_get(tr, i), i, p);
		if (p->egress.nrules > SN_LIMIT_RULES)
			dec_limit(d, "egress.trafficRules",
				  "%zu native rules after splitting by protocol; at most %u",
				  p->egress.nrules, SN_LIMIT_RULES);
		return;
	}

	/* legacy lists: block-all uses the allowed_* lists, allow-all the denied_* lists */
	struct sn_entry *dom = NULL, *cidr = NULL;
	size_t ndom = 0, ncidr = 0;
	struct sn_port_range *ports = NULL;
	size_t nports = 0;
	bool block = mode == SN_MODE_BLOCK_ALL;
	s0_entries(d, eg, block ? "allowed_domains" : "denied_domains", ACCEPT_NAME, "egress", &dom,
		   &ndom);
	s0_entries(d, eg, block ? "allowed_cidrs" : "denied_cidrs", ACCEPT_ADDR, "egress", &cidr,
		   &ncidr);
	s0_ports(d, eg, block ? "allowed_ports" : "denied_ports", &ports, &nports);
	if (sn_errs_any(d->errs) || d->nomem)
		goto out;
	if (block) {
		if (ndom + ncidr + nports) {
			struct sn_rule *r = add_rule(d, &p->egress, SN_ALLOW);
			if (!r)
				goto out;
			if (ndom + ncidr) {
				struct sn_entry *all = realloc(cidr, (ncidr + ndom) * sizeof(*all));
				if (!all) {
					d->nomem = true;
					goto out;
				}
				if (ndom)
					memcpy(all + ncidr, dom, ndom * sizeof(*dom));
				free(dom);
				dom = NULL;
				move_entries(r, all, ncidr + ndom);
				cidr = NULL;
				ncidr = ndom = 0;
			}
			if (nports) {
				r->ports = ports;
				r->nports = nports;
				ports = NULL;
			}
		}
	} else {
		if (ncidr) {
			struct sn_rule *r = add_rule(d, &p->egress, SN_DENY);
			if (!r)
				goto out;
			move_entries(r, cidr, ncidr);
			cidr = NULL;
			ncidr = 0;
		}
		if (ndom) {
			struct sn_rule *r = add_rule(d, &p->egress, SN_DENY);
			if (!r)
				goto out;
			move_entries(r, dom, ndom);
			dom = NULL;
			ndom = 0;
		}
		if (nports) {
			struct sn_rule *r = add_rule(d, &p->egress, SN_DENY);
			if (!r)
				goto out;
			r->ports = ports;
			r->nports = nports;
			ports = NULL;
		}
	}
out:
	for (size_t i = 0; i < ndom; i++)
		entry_clear(&dom[i]);
	for (size_t i = 0; i < ncidr; i++)
		entry_clear(&cidr[i]);
	free(dom);
	free(cidr);
	free(ports);
}

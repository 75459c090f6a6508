/* nft text for sandnet's table and sandboxes; see render.h for the layout. Kernel layer, pure. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "render.h"

void sn_text_clear(struct sn_text *t)
{
	free(t->s);
	memset(t, 0, sizeof(*t));
}

void sn_text_printf(struct sn_text *t, const char *fmt, ...)
{
	if (t->failed)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if (t->s && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t nc = t->cap ? t->cap * 2 : 4096;
		while (nc < t->len + (size_t)n + 1)
			nc *= 2;
		char *ns = realloc(t->s, nc);
		if (!ns) {
			t->failed = true;
			return;
		}
		t->s = ns;
		t->cap = nc;
	}
}

static void put_cidr(struct sn_text *t, const struct sn_cidr *c)
{
	char buf[SN_CIDR_STRLEN];
	sn_text_printf(t, "%s", sn_cidr_format(c, buf, sizeof(buf)));
}

static void put_elements(struct sn_text *t, const struct sn_cidr *v, size_t n)
{
	sn_text_printf(t, " elements = { ");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sn_text_printf(t, ", ");
		put_cidr(t, &v[i]);
	}
	sn_text_printf(t, " }");
}

/* Ranges guarded whatever the configuration: this host's, no one's, everyone's. */
static const char *const fixed_guard4 = "0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/3";
static const char *const fixed_guard6 = "::/127, ::ffff:0:0/96, fe80::/10, ff00::/8";

static struct sn_cidr fixed_guard[8];
static size_t nfixed_guard;
static pthread_once_t fixed_once = PTHREAD_ONCE_INIT;

static void parse_fixed(void)
{
	const char *lists[2] = {fixed_guard4, fixed_guard6};
	for (int l = 0; l < 2; l++)
		for (const char *p = lists[l]; *p;) {
			size_t n = strcspn(p, ",");
			char one[64], msg[128];
			snprintf(one, sizeof(one), "%.*s", (int)n, p);
			if (nfixed_guard < 8 &&
			    sn_cidr_parse(one, &fixed_guard[nfixed_guard], msg, sizeof(msg)) == 0)
				nfixed_guard++;
			p += n;
			while (*p == ',' || *p == ' ')
				p++;
		}
}

bool sn_nft_guarded(const struct sn_nft_config *cfg, int family, const uint8_t *addr)
{
	pthread_once(&fixed_once, parse_fixed);
	for (size_t i = 0; i < nfixed_guard; i++)
		if (sn_cidr_contains(&fixed_guard[i], family, addr))
			return true;
	for (size_t i = 0; i < cfg->nguard; i++)
		if (sn_cidr_contains(&cfg->guard[i], family, addr))
			return true;
	return false;
}

int sn_nft_render_table(struct sn_text *out, const struct sn_nft_config *cfg)
{
	struct sn_text *t = out;
	/* "add" is idempotent; the flushes make the global contents exactly what cfg says */
	sn_text_printf(t, "add table inet " SN_NFT_TABLE "\n");
	sn_text_printf(t, "add map inet " SN_NFT_TABLE " dispatch { type ifname : verdict; }\n");
	sn_text_printf(t, "add set inet " SN_NFT_TABLE
			  " guard4 { type ipv4_addr; flags interval; auto-merge; }\n");
	sn_text_printf(t, "add set inet " SN_NFT_TABLE
			  " guard6 { type ipv6_addr; flags interval; auto-merge; }\n");
	sn_text_printf(t, "flush set inet " SN_NFT_TABLE " guard4\n");
	sn_text_printf(t, "flush set inet " SN_NFT_TABLE " guard6\n");
	sn_text_printf(t, "add element inet " SN_NFT_TABLE " guard4 { %s", fixed_guard4);
	for (size_t i = 0; i < cfg->nguard; i++)
		if (cfg->guard[i].family == AF_INET) {
			sn_text_printf(t, ", ");
			put_cidr(t, &cfg->guard[i]);
		}
	sn_text_printf(t, " }\n");
	sn_text_printf(t, "add element inet " SN_NFT_TABLE " guard6 { %s", fixed_guard6);
	for (size_t i = 0; i < cfg->nguard; i++)
		if (cfg->guard[i].family == AF_INET6) {
			sn_text_printf(t, ", ");
			put_cidr(t, &cfg->guard[i]);
		}
	sn_text_printf(t, " }\n");
	/* the global chains are rewritten whole */
	static const char *const chains[][2] = {
		{"prerouting", "type filter hook prerouting priority -150; policy accept;"},
		{"deny", NULL},
		{"nat_pre", "type nat hook prerouting priority dstnat; policy accept;"},
		{"input", "type filter hook input priority 0; policy accept;"},
		{"nat_post", "type nat hook postrouting priority srcnat; policy accept;"},
	};
	for (size_t i = 0; i < sizeof(chains) / sizeof(chains[0]); i++) {
		if (chains[i][1])
			sn_text_printf(t, "add chain inet " SN_NFT_TABLE " %s { %s }\n", chains[i][0],
				       chains[i][1]);
		else
			sn_text_printf(t, "add chain inet " SN_NFT_TABLE " %s\n", chains[i][0]);
		sn_text_printf(t, "flush chain inet " SN_NFT_TABLE " %s\n", chains[i][0]);
	}
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE " prerouting iifname vmap @dispatch\n");
	if (cfg->nflog_group)
		sn_text_printf(t, "add rule inet " SN_NFT_TABLE " deny limit rate %u/second burst %u "
				  "packets log group %u snaplen %u\n",
			       SN_NFLOG_RATE, SN_NFLOG_RATE / 2, cfg->nflog_group, SN_NFLOG_SNAPLEN);
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE
			  " deny meta l4proto tcp reject with tcp reset\n");
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE
			  " deny reject with icmpx type admin-prohibited\n");
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE
			  " nat_pre meta mark 0x%x meta l4proto { tcp, udp } redirect to :%u\n",
		       SN_MARK_DNS, cfg->dns_port);
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE
			  " nat_pre meta mark 0x%x meta l4proto tcp redirect to :%u\n",
		       SN_MARK_PROXY, cfg->proxy_port);
	/* a sandbox reaches the host only through the redirects above */
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE
			  " input iifname \"sh-*\" ct status dnat accept\n");
	/* replies to the host's own connections into sandboxes (the ingress proxy) */
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE " input iifname \"sh-*\" ct direction reply "
			  "accept\n");
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE " input iifname \"sh-*\" icmpv6 type { "
			  "nd-neighbor-solicit, nd-neighbor-advert } accept\n");
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE " input iifname \"sh-*\" jump deny\n");
	for (size_t i = 0; i < cfg->npools; i++) {
		sn_text_printf(t, "add rule inet " SN_NFT_TABLE " nat_post %s saddr ",
			       cfg->pools[i].family == AF_INET6 ? "ip6" : "ip");
		put_cidr(t, &cfg->pools[i]);
		sn_text_printf(t, " oifname != \"sh-*\" masquerade\n");
	}
	return t->failed ? -ENOMEM : 0;
}

static void names_of(char *chain, size_t size, const struct sn_nft_sandbox *sb, uint64_t rev)
{
	snprintf(chain, size, "sb-%s-%llu", sb->id, (unsigned long long)rev);
}

/* Set kinds of a rule, in a fixed order so that creation and deletion agree. */
enum { SET_H4, SET_N4, SET_H6, SET_N6, SET_PORTS, SET_L4, SET_L6, NSETKINDS };
static const char *const set_suffix[NSETKINDS] = {"h4", "n4", "h6", "n6", "p", "l4", "l6"};

/* Runs of two or more consecutive rules without names are decided by verdict maps (one lookup per
 * packet, whatever their number); run_end[i] is the end of the run that starts at rule i, 0 for a
 * rule inside a run, and i + 1 for a rule rendered on its own. */
#define MIN_RUN 2

static size_t *runs_of(const struct sn_snapshot *s)
{
	size_t n = sn_snapshot_nrules(s, SN_EGRESS);
	size_t *end = calloc(n + 1, sizeof(*end));
	if (!end)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && !sn_snapshot_rule(s, SN_EGRESS, j)->has_names)
			j++;
		if (j - i >= MIN_RUN) {
			end[i] = j;
			i = j;
		} else {
			end[i] = i + 1;
			i++;
		}
	}
	return end;
}

static const char *const map_suffix[4] = {"a4", "b4", "a6", "b6"};

static void map_name(char *buf, size_t size, const struct sn_nft_sandbox *sb, uint64_t rev,
		     size_t first, int k)
{
	snprintf(buf, size, "s-%s-%llu-m%zu-%s", sb->id, (unsigned long long)rev, first,
		 map_suffix[k]);
}

static bool set_used(const struct sn_rule_render *r, int kind)
{
	switch (kind) {
	case SET_H4: return r->nhosts4 > 0;
	case SET_N4: return r->nnets4 > 0;
	case SET_H6: return r->nhosts6 > 0;
	case SET_N6: return r->nnets6 > 0;
	case SET_PORTS: return r->ports != NULL;
	case SET_L4:
	case SET_L6: return r->has_names && r->action == SN_ALLOW;
	}
	return false;
}

static void set_name(char *buf, size_t size, const struct sn_nft_sandbox *sb, uint64_t rev,
		     size_t rule, int kind)
{
	snprintf(buf, size, "s-%s-%llu-r%zu-%s", sb->id, (unsigned long long)rev, rule,
		 set_suffix[kind]);
}

void sn_nft_learned_set(char *buf, size_t size, const char *id, uint64_t gen, size_t rule,
			int family)
{
	snprintf(buf, size, "s-%s-%llu-r%zu-%s", id, (unsigned long long)gen, rule,
		 set_suffix[family == AF_INET6 ? SET_L6 : SET_L4]);
}

/* The learned elements of rule i and family, with their timeouts. */
static void put_learned(struct sn_text *t, const struct sn_nft_sandbox *sb, size_t i, int family)
{
	bool first = true;
	char a[INET6_ADDRSTRLEN];
	for (size_t k = 0; k < sb->nlearned; k++) {
		const struct sn_nft_learned *l = &sb->learned[k];
		if (l->rule != i || l->family != family || !l->timeout_s)
			continue;
		inet_ntop(family, l->addr, a, sizeof(a));
		sn_text_printf(t, "%s%s timeout %us", first ? " elements = { " : ", ", a, l->timeout_s);
		first = false;
	}
	if (!first)
		sn_text_printf(t, " }");
}

/* ---- big sets: hosts loaded over netlink, prefixes split by length ---- */

void sn_nft_bulk_clear(struct sn_nft_bulk_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].elems);
	free(l->v);
	*l = (struct sn_nft_bulk_list){0};
}

static bool is_split(int kind, const struct sn_rule_render *r)
{
	return (kind == SET_N4 && r->nnets4 >= SN_SPLIT_MIN) ||
	       (kind == SET_N6 && r->nnets6 >= SN_SPLIT_MIN);
}

/* The prefix lengths present among v[0..n), as a bitmap. */
static void lengths(const struct sn_cidr *v, size_t n, uint64_t bits[3])
{
	bits[0] = bits[1] = bits[2] = 0;
	for (size_t i = 0; i < n; i++)
		bits[v[i].plen / 64] |= 1ull << (v[i].plen % 64);
}

static bool has_len(const uint64_t bits[3], unsigned l)
{
	return bits[l / 64] >> (l % 64) & 1;
}

static void split_name(char *buf, size_t size, const struct sn_nft_sandbox *sb, uint64_t rev,
		       size_t rule, int kind, unsigned len)
{
	snprintf(buf, size, "s-%s-%llu-r%zu-%s-%u", sb->id, (unsigned long long)rev, rule,
		 set_suffix[kind], len);
}

static void put_mask(struct sn_text *t, int family, unsigned len)
{
	uint8_t m[16] = {0};
	for (unsigned b = 0; b < len; b++)
		m[b / 8] |= (uint8_t)(0x80 >> (b % 8));
	char a[INET6_ADDRSTRLEN];
	inet_ntop(family, m, a, sizeof(a));
	sn_text_printf(t, "%s", a);
}

/* Adds a set for the caller to load; false when out of memory. */
static bool bulk_add(struct sn_nft_bulk_list *l, const char *name, int family,
		     const struct sn_cidr *v, size_t n, int len)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return false;
		l->v = p;
		l->cap = cap;
	}
	struct sn_nft_bulk *b = &l->v[l->n];
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->family = family;
	b->n = 0;
	b->elems = malloc((n ? n : 1) * sizeof(*b->elems));
	if (!b->elems)
		return false;
	for (size_t i = 0; i < n; i++)
		if (len < 0 || v[i].plen == (unsigned)len)
			b->elems[b->n++] = v[i];
	l->n++;
	return true;
}

/* The hash sets of a split prefix list, one per length: as text, or listed for netlink. */
static void render_split_sets(struct sn_text *t, const struct sn_nft_sandbox *sb, size_t rule,
			      int kind, const struct sn_cidr *v, size_t n)
{
	int family = kind == SET_N6 ? AF_INET6 : AF_INET;
	uint64_t bits[3];
	lengths(v, n, bits);
	char name[160];
	for (unsigned len = 0; len <= (family == AF_INET6 ? 128u : 32u); len++) {
		if (!has_len(bits, len))
			continue;
		split_name(name, sizeof(name), sb, sb->rev, rule, kind, len);
		if (sb->bulk) {
			if (!bulk_add(sb->bulk, name, family, v, n, (int)len))
				t->failed = true;
			continue;
		}
		sn_text_printf(t, "add set inet " SN_NFT_TABLE " %s { type %s; elements = { ", name,
			       family == AF_INET6 ? "ipv6_addr" : "ipv4_addr");
		bool first = true;
		char a[INET6_ADDRSTRLEN];
		for (size_t i = 0; i < n; i++) {
			if (v[i].plen != len)
				continue;
			inet_ntop(family, v[i].addr, a, sizeof(a));
			sn_text_printf(t, "%s%s", first ? "" : ", ", a);
			first = false;
		}
		sn_text_printf(t, " } }\n");
	}
}

/* Calls fn for each object of sb's generation rev (snapshot s): its chain first (its rules
 * hold references to the sets), then its sets and maps. */
static int objects_of(const struct sn_nft_sandbox *sb, const struct sn_snapshot *s, uint64_t rev,
		      void (*fn)(enum sn_nft_obj kind, const char *name, void *arg), void *arg)
{
	char name[160];
	names_of(name, sizeof(name), sb, rev);
	fn(SN_NFT_CHAIN, name, arg);
	size_t n = sn_snapshot_nrules(s, SN_EGRESS);
	size_t *end = runs_of(s);
	if (!end)
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		if (end[i] > i + 1) {
			for (int k = 0; k < 4; k++) {
				map_name(name, sizeof(name), sb, rev, i, k);
				fn(SN_NFT_MAP, name, arg);
			}
			i = end[i];
			continue;
		}
		const struct sn_rule_render *r = sn_snapshot_rule(s, SN_EGRESS, i);
		for (int k = 0; k < NSETKINDS; k++) {
			if (!set_used(r, k))
				continue;
			if (is_split(k, r)) {
				uint64_t bits[3];
				const struct sn_cidr *v = k == SET_N6 ? r->nets6 : r->nets4;
				lengths(v, k == SET_N6 ? r->nnets6 : r->nnets4, bits);
				for (unsigned len = 0; len <= 128; len++)
					if (has_len(bits, len)) {
						split_name(name, sizeof(name), sb, rev, i, k, len);
						fn(SN_NFT_SET, name, arg);
					}
				continue;
			}
			set_name(name, sizeof(name), sb, rev, i, k);
			fn(SN_NFT_SET, name, arg);
		}
		i++;
	}
	free(end);
	return 0;
}

int sn_nft_generation_objects(const struct sn_nft_sandbox *sb, const struct sn_snapshot *s,
			      uint64_t rev, void (*fn)(enum sn_nft_obj kind, const char *name, void *arg),
			      void *arg)
{
	return objects_of(sb, s, rev, fn, arg);
}

static void delete_line(enum sn_nft_obj kind, const char *name, void *arg)
{
	static const char *const what[] = {"chain", "set", "map"};
	sn_text_printf(arg, "delete %s inet " SN_NFT_TABLE " %s\n", what[kind], name);
}

static void render_delete_rev(struct sn_text *t, const struct sn_nft_sandbox *sb,
			      const struct sn_snapshot *s, uint64_t rev)
{
	if (objects_of(sb, s, rev, delete_line, t))
		t->failed = true;
}

/* The verdict maps of the run [first, last): a4/a6 keyed by address . protocol . port for TCP
 * and UDP, b4/b6 by address . protocol for ICMP and every other protocol. */
static int render_run_maps(struct sn_text *t, const struct sn_nft_sandbox *sb,
			   const struct sn_snapshot *s, size_t first, size_t last)
{
	for (int fam = 0; fam < 2; fam++) {
		int family = fam ? AF_INET6 : AF_INET;
		const char *atype = fam ? "ipv6_addr" : "ipv4_addr";
		struct sn_part_elem *v;
		size_t n;
		int rc = sn_snapshot_partition(s, SN_EGRESS, first, last, family, &v, &n);
		if (rc)
			return rc;
		for (int m = 0; m < 2; m++) {
			char name[160];
			map_name(name, sizeof(name), sb, sb->rev, first, fam * 2 + m);
			sn_text_printf(t, "add map inet " SN_NFT_TABLE " %s { type %s . inet_proto%s : "
					  "verdict; flags interval; ",
				       name, atype, m == 0 ? " . inet_service" : "");
			bool any = false;
			for (size_t i = 0; i < n; i++) {
				const struct sn_part_elem *e = &v[i];
				bool ports = e->cls == SN_PART_TCP || e->cls == SN_PART_UDP;
				if (ports != (m == 0))
					continue;
				char lo[INET6_ADDRSTRLEN], hi[INET6_ADDRSTRLEN];
				inet_ntop(family, e->lo, lo, sizeof(lo));
				inet_ntop(family, e->hi, hi, sizeof(hi));
				const char *verdict = sn_snapshot_rule(s, SN_EGRESS, e->rule)->action ==
							      SN_ALLOW
							      ? "accept"
							      : "goto deny";
				/* "other": every protocol number but TCP, UDP and the family's ICMP */
				static const char *const other4[] = {"0-0", "2-5", "7-16", "18-255"};
				static const char *const other6[] = {"0-5", "7-16", "18-57", "59-255"};
				const char *const *protos = NULL;
				size_t nprotos = 1;
				const char *one = e->cls == SN_PART_TCP	  ? "tcp"
						  : e->cls == SN_PART_UDP ? "udp"
						  : fam			  ? "58-58"
									  : "1-1";
				if (e->cls == SN_PART_OTHER) {
					protos = fam ? other6 : other4;
					nprotos = 4;
				}
				for (size_t p = 0; p < nprotos; p++) {
					sn_text_printf(t, "%s%s-%s . %s", any ? ", " : "elements = { ", lo,
						       hi, protos ? protos[p] : one);
					if (ports)
						sn_text_printf(t, " . %u-%u", e->plo, e->phi);
					sn_text_printf(t, " : %s", verdict);
					any = true;
				}
			}
			sn_text_printf(t, "%s}\n", any ? " }; " : "");
		}
		free(v);
	}
	return t->failed ? -ENOMEM : 0;
}

/* "meta l4proto ..." and "th dport @set" parts of a rule. */
static void put_match(struct sn_text *t, const struct sn_rule_render *r, const char *ports_set,
		      bool tcp_only)
{
	if (tcp_only)
		sn_text_printf(t, " meta l4proto tcp");
	else if (r->proto == SN_PROTO_TCP)
		sn_text_printf(t, " meta l4proto tcp");
	else if (r->proto == SN_PROTO_UDP)
		sn_text_printf(t, " meta l4proto udp");
	else if (r->proto == SN_PROTO_ICMP)
		sn_text_printf(t, " meta l4proto { icmp, ipv6-icmp }");
	else if (r->ports)
		sn_text_printf(t, " meta l4proto { tcp, udp }");
	if (r->ports)
		sn_text_printf(t, " th dport @%s", ports_set);
}

int sn_nft_render_generation(struct sn_text *out, const struct sn_nft_config *cfg,
			     const struct sn_nft_sandbox *sb, const struct sn_snapshot *s)
{
	struct sn_text *t = out;
	char chain[128], set[160], ports[160];
	names_of(chain, sizeof(chain), sb, sb->rev);
	size_t n = sn_snapshot_nrules(s, SN_EGRESS);
	char a4[INET_ADDRSTRLEN], a6[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET, sb->addr4, a4, sizeof(a4));
	if (sb->has6)
		inet_ntop(AF_INET6, sb->addr6, a6, sizeof(a6));

	size_t *run_end = runs_of(s);
	if (!run_end)
		return -ENOMEM;
	/* sets and maps first: rules refer to them */
	for (size_t i = 0; i < n; i++) {
		const struct sn_rule_render *r = sn_snapshot_rule(s, SN_EGRESS, i);
		if (run_end[i] > i + 1) {
			int rc = render_run_maps(t, sb, s, i, run_end[i]);
			if (rc) {
				free(run_end);
				return rc;
			}
			i = run_end[i] - 1;
			continue;
		}
		for (int k = 0; k < NSETKINDS; k++) {
			if (!set_used(r, k))
				continue;
			if (is_split(k, r)) {
				if (k == SET_N4)
					render_split_sets(t, sb, i, k, r->nets4, r->nnets4);
				else
					render_split_sets(t, sb, i, k, r->nets6, r->nnets6);
				continue;
			}
			set_name(set, sizeof(set), sb, sb->rev, i, k);
			size_t nh = k == SET_H4 ? r->nhosts4 : k == SET_H6 ? r->nhosts6 : 0;
			if (sb->bulk && nh >= SN_SPLIT_MIN) {
				if (!bulk_add(sb->bulk, set, k == SET_H6 ? AF_INET6 : AF_INET,
					      k == SET_H6 ? r->hosts6 : r->hosts4, nh, -1))
					t->failed = true;
				continue;
			}
			sn_text_printf(t, "add set inet " SN_NFT_TABLE " %s { ", set);
			switch (k) {
			case SET_H4:
				sn_text_printf(t, "type ipv4_addr;");
				put_elements(t, r->hosts4, r->nhosts4);
				break;
			case SET_N4:
				sn_text_printf(t, "type ipv4_addr; flags interval;");
				put_elements(t, r->nets4, r->nnets4);
				break;
			case SET_H6:
				sn_text_printf(t, "type ipv6_addr;");
				put_elements(t, r->hosts6, r->nhosts6);
				break;
			case SET_N6:
				sn_text_printf(t, "type ipv6_addr; flags interval;");
				put_elements(t, r->nets6, r->nnets6);
				break;
			case SET_PORTS:
				sn_text_printf(t, "type inet_service; flags interval; elements = { ");
				for (size_t j = 0; j < r->nports; j++) {
					if (r->ports[j].lo == r->ports[j].hi)
						sn_text_printf(t, "%s%u", j ? ", " : "",
							       r->ports[j].lo);
					else
						sn_text_printf(t, "%s%u-%u", j ? ", " : "",
							       r->ports[j].lo, r->ports[j].hi);
				}
				sn_text_printf(t, " }");
				break;
			case SET_L4:
				/* learned addresses: filled by the DNS forwarder, each with the TTL */
				sn_text_printf(t, "type ipv4_addr; flags timeout;");
				put_learned(t, sb, i, AF_INET);
				break;
			case SET_L6:
				sn_text_printf(t, "type ipv6_addr; flags timeout;");
				put_learned(t, sb, i, AF_INET6);
				break;
			}
			sn_text_printf(t, " }\n");
		}
	}

	sn_text_printf(t, "add chain inet " SN_NFT_TABLE " %s\n", chain);
#define RULE "add rule inet " SN_NFT_TABLE " %s"
	if (sb->paused) {
		sn_text_printf(t, RULE " drop\n", chain);
	} else {
		/* anti-spoofing: only the sandbox's own source addresses */
		sn_text_printf(t, RULE " meta nfproto ipv4 ip saddr != %s drop\n", chain, a4);
		if (sb->has6)
			sn_text_printf(t, RULE " meta nfproto ipv6 ip6 saddr != { %s, fe80::/10 } drop\n",
				       chain, a6);
		else
			sn_text_printf(t, RULE " meta nfproto ipv6 drop\n", chain);
		/* neighbour discovery with the host side */
		if (sb->has6)
			sn_text_printf(t, RULE " icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } "
					      "accept\n",
				       chain);
		/* replies to connections the host opened into the sandbox (the ingress proxy): the
		 * egress policy is not theirs */
		char h4[INET_ADDRSTRLEN], h6[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET, sb->host4, h4, sizeof(h4));
		sn_text_printf(t, RULE " ip daddr %s ct direction reply accept\n", chain, h4);
		if (sb->has6) {
			inet_ntop(AF_INET6, sb->host6, h6, sizeof(h6));
			sn_text_printf(t, RULE " ip6 daddr %s ct direction reply accept\n", chain, h6);
		}
		/* all DNS, to any address, goes to the forwarder */
		sn_text_printf(t, RULE " meta l4proto { tcp, udp } th dport 53 meta mark set 0x%x accept\n",
			       chain, SN_MARK_DNS);
		/* guard rails */
		sn_text_printf(t, RULE " ip daddr @guard4 goto deny\n", chain);
		sn_text_printf(t, RULE " ip6 daddr @guard6 goto deny\n", chain);
		/* the policy, in order */
		for (size_t i = 0; i < n; i++) {
			const struct sn_rule_render *r = sn_snapshot_rule(s, SN_EGRESS, i);
			if (run_end[i] > i + 1) {
				static const char *const lookup[4] = {
					"meta nfproto ipv4 ip daddr . meta l4proto . th dport",
					"meta nfproto ipv4 ip daddr . meta l4proto",
					"meta nfproto ipv6 ip6 daddr . meta l4proto . th dport",
					"meta nfproto ipv6 ip6 daddr . meta l4proto"};
				for (int k = 0; k < 4; k++) {
					map_name(set, sizeof(set), sb, sb->rev, i, k);
					sn_text_printf(t, RULE " %s vmap @%s\n", chain, lookup[k], set);
				}
				i = run_end[i] - 1;
				continue;
			}
			const char *verdict = r->action == SN_ALLOW ? "accept" : "goto deny";
			set_name(ports, sizeof(ports), sb, sb->rev, i, SET_PORTS);
			if (r->any_dest) {
				sn_text_printf(t, RULE, chain);
				put_match(t, r, ports, false);
				sn_text_printf(t, " %s\n", verdict);
				continue;
			}
			static const struct {
				int kind;
				const char *match;
			} addr[] = {{SET_H4, "ip daddr"},
				    {SET_N4, "ip daddr"},
				    {SET_H6, "ip6 daddr"},
				    {SET_N6, "ip6 daddr"},
				    {SET_L4, "ip daddr"},
				    {SET_L6, "ip6 daddr"}};
			for (size_t a = 0; a < sizeof(addr) / sizeof(addr[0]); a++) {
				if (!set_used(r, addr[a].kind))
					continue;
				if (is_split(addr[a].kind, r)) {
					/* one lookup per prefix length, of the masked address */
					int fam = addr[a].kind == SET_N6 ? AF_INET6 : AF_INET;
					const struct sn_cidr *v = fam == AF_INET6 ? r->nets6 : r->nets4;
					uint64_t bits[3];
					lengths(v, fam == AF_INET6 ? r->nnets6 : r->nnets4, bits);
					for (unsigned len = 0; len <= 128; len++) {
						if (!has_len(bits, len))
							continue;
						split_name(set, sizeof(set), sb, sb->rev, i,
							   addr[a].kind, len);
						sn_text_printf(t, RULE " %s & ", chain, addr[a].match);
						put_mask(t, fam, len);
						sn_text_printf(t, " @%s", set);
						put_match(t, r, ports, false);
						sn_text_printf(t, " %s\n", verdict);
					}
					continue;
				}
				set_name(set, sizeof(set), sb, sb->rev, i, addr[a].kind);
				sn_text_printf(t, RULE " %s @%s", chain, addr[a].match, set);
				put_match(t, r, ports, false);
				sn_text_printf(t, " %s\n", verdict);
			}
			/* TCP that only a name can decide: new connections go to the proxy (which
			 * re-checks them at every update), and the packets of the connections it
			 * holds pass; an established connection that went straight out (an address
			 * the policy no longer allows) falls through to the rules below. Without
			 * the proxy: refused. */
			if (r->has_names && (r->proto == SN_PROTO_ANY || r->proto == SN_PROTO_TCP)) {
				sn_text_printf(t, RULE, chain);
				put_match(t, r, ports, true);
				if (cfg->proxy_enabled) {
					sn_text_printf(t, " ct status dnat accept\n");
					sn_text_printf(t, RULE, chain);
					put_match(t, r, ports, true);
					sn_text_printf(t, " ct state new meta mark set 0x%x accept\n",
						       SN_MARK_PROXY);
				} else {
					sn_text_printf(t, " goto deny\n");
				}
			}
		}
		enum sn_mode mode = sn_snapshot_mode(s, SN_EGRESS);
		sn_text_printf(t, RULE " %s\n", chain, mode == SN_MODE_ALLOW_ALL ? "accept" : "goto deny");
	}
#undef RULE
	free(run_end);
	return t->failed ? -ENOMEM : 0;
}

int sn_nft_render_sandbox(struct sn_text *out, const struct sn_nft_config *cfg,
			  const struct sn_nft_sandbox *sb, const struct sn_snapshot *s,
			  const struct sn_snapshot *old, uint64_t old_rev)
{
	int rc = sn_nft_render_generation(out, cfg, sb, s);
	if (rc)
		return rc;
	/* switch the interface over to the new chain */
	char chain[128];
	names_of(chain, sizeof(chain), sb, sb->rev);
	if (old)
		sn_text_printf(out, "delete element inet " SN_NFT_TABLE " dispatch { \"%s\" }\n",
			       sb->ifname);
	sn_text_printf(out, "add element inet " SN_NFT_TABLE " dispatch { \"%s\" : jump %s }\n",
		       sb->ifname, chain);
	if (old)
		render_delete_rev(out, sb, old, old_rev);
	return out->failed ? -ENOMEM : 0;
}

int sn_nft_render_delete(struct sn_text *out, const struct sn_nft_sandbox *sb,
			 const struct sn_snapshot *s)
{
	sn_text_printf(out, "delete element inet " SN_NFT_TABLE " dispatch { \"%s\" }\n",
		       sb->ifname);
	render_delete_rev(out, sb, s, sb->rev);
	return out->failed ? -ENOMEM : 0;
}

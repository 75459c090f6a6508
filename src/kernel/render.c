/* nft text for sandnet's table and sandboxes; see render.h for the layout. Kernel layer, pure. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "encode.h"
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
	return sn_cidrs_contain(fixed_guard, nfixed_guard, family, addr) ||
	       sn_cidrs_contain(cfg->guard, cfg->nguard, family, addr);
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
	/* each sandbox interface's own source addresses, and the paused sandboxes' interfaces:
	 * elements come and go with the sandboxes (never flushed here) */
	sn_text_printf(t, "add set inet " SN_NFT_TABLE " owner4 { type ifname . ipv4_addr; }\n");
	sn_text_printf(t, "add set inet " SN_NFT_TABLE " owner6 { type ifname . ipv6_addr; }\n");
	sn_text_printf(t, "add set inet " SN_NFT_TABLE " paused { type ifname; }\n");
	/* protocol sets the sandboxes' rules share */
	sn_text_printf(t, "add set inet " SN_NFT_TABLE " " SN_SET_TCP_UDP
			  " { type inet_proto; elements = { tcp, udp } }\n");
	sn_text_printf(t, "add set inet " SN_NFT_TABLE " " SN_SET_ICMP
			  " { type inet_proto; elements = { icmp, ipv6-icmp } }\n");
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
	/* what every sandbox gets before its own chain, shared here so that a sandbox's chain holds
	 * its policy only (the kernel re-validates every chain reachable from a base chain at each
	 * commit: the fewer rules per sandbox, the less an update pays for the others) */
#define PRE "add rule inet " SN_NFT_TABLE " prerouting "
	sn_text_printf(t, PRE "iifname != \"sh-*\" accept\n");
	/* anti-spoofing: only the interface's own addresses (and IPv6 link-local); a paused
	 * sandbox's addresses are not in the sets, so all it sends is dropped here, and its
	 * link-local IPv6 by the paused set (one lookup per packet either way) */
	sn_text_printf(t, PRE "meta nfproto ipv4 iifname . ip saddr != @owner4 drop\n");
	sn_text_printf(t, PRE "meta nfproto ipv6 ip6 saddr != fe80::/10 iifname . ip6 saddr != @owner6 "
			      "drop\n");
	sn_text_printf(t, PRE "meta nfproto ipv6 iifname @paused drop\n");
	/* neighbour discovery with the host side */
	sn_text_printf(t, PRE "icmpv6 type 135-136 accept\n");
	/* replies to connections the host opened into a sandbox (a platform's agent, an operator's
	 * curl; the ingress proxy connects from inside the sandbox's namespace) from its side
	 * of the link: the egress policy is not theirs (no sandbox can open a connection to another
	 * one: the pools are guarded) */
	for (size_t i = 0; i < cfg->npools; i++) {
		sn_text_printf(t, PRE "ct direction reply %s daddr ",
			       cfg->pools[i].family == AF_INET6 ? "ip6" : "ip");
		put_cidr(t, &cfg->pools[i]);
		sn_text_printf(t, " accept\n");
	}
	/* a sandbox's new connections past max_flows tracked at once are rejected (marked, so that
	 * the denial says why): the kernel's connection table is shared by the host and every
	 * sandbox, and when it is full, every new connection of every one of them is dropped */
	if (cfg->max_flows) {
		sn_text_printf(t, "add set inet " SN_NFT_TABLE " " SN_SET_FLOWS
				  " { type ifname; flags dynamic; size 65536; }\n");
		sn_text_printf(t, PRE "ct state new add @" SN_SET_FLOWS " { iifname ct count over %u } "
				      "meta mark set 0x%x goto deny\n",
			       cfg->max_flows, SN_MARK_FLOWS);
	}
	/* a sandbox's UDP DNS past dns_rate packets a second is dropped here, before it reaches the
	 * forwarder's socket, which all sandboxes share: one sandbox's flood cannot fill it (the
	 * kernel would then drop the others' queries too) nor take the forwarder's thread */
	if (cfg->dns_rate) {
		sn_text_printf(t, "add set inet " SN_NFT_TABLE " " SN_SET_DNSRATE
				  " { type ifname; flags dynamic,timeout; timeout 10s; size 65536; }\n");
		sn_text_printf(t, PRE "udp dport 53 update @" SN_SET_DNSRATE " { iifname limit rate "
				      "over %u/second burst %u packets } drop\n",
			       cfg->dns_rate, cfg->dns_rate);
	}
	/* all DNS, to any address, goes to the forwarder */
	sn_text_printf(t, PRE "th dport 53 meta l4proto @" SN_SET_TCP_UDP " meta mark set 0x%x accept\n",
		       SN_MARK_DNS);
	/* guard rails */
	sn_text_printf(t, PRE "ip daddr @guard4 goto deny\n");
	sn_text_printf(t, PRE "ip6 daddr @guard6 goto deny\n");
	sn_text_printf(t, PRE "iifname vmap @dispatch\n");
	sn_text_printf(t, PRE "drop\n"); /* a sandbox interface without rules: fail closed */
#undef PRE
	/* rejects are logged (to the denials of kdeny.c) at SN_NFLOG_RATE a second in all, and at
	 * SN_NFLOG_SANDBOX_RATE per sandbox interface (a meter keyed by it), so that one sandbox's
	 * flood of rejects cannot take the whole budget and leave the others' unrecorded */
	if (cfg->nflog_group) {
		sn_text_printf(t, "add set inet " SN_NFT_TABLE " " SN_SET_DENYLOG
				  " { type ifname; flags dynamic,timeout; timeout 10s; size 65536; }\n");
		sn_text_printf(t, "add rule inet " SN_NFT_TABLE " deny update @" SN_SET_DENYLOG
				  " { iifname limit rate %u/second burst %u packets } limit rate "
				  "%u/second burst %u packets log group %u snaplen %u\n",
			       SN_NFLOG_SANDBOX_RATE, SN_NFLOG_SANDBOX_RATE / 2, SN_NFLOG_RATE,
			       SN_NFLOG_RATE / 2, cfg->nflog_group, SN_NFLOG_SNAPLEN);
	}
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
	/* replies to the host's own connections into sandboxes */
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

/* ---- the encoders: nft text here, netlink in nlenc.c ---- */

struct out {
	struct sn_text *t;     /* text, or */
	struct sn_nl_list *nl; /* netlink objects, or */
	/* only the names of the chain (first), the sets and the maps */
	void (*names)(enum sn_nft_obj kind, const char *name, void *arg);
	void *arg;
	const char *chain;
};

static void put_addr(struct sn_text *t, int family, const uint8_t *a)
{
	char s[INET6_ADDRSTRLEN];
	inet_ntop(family, a, s, sizeof(s));
	sn_text_printf(t, "%s", s);
}

static void text_set(struct sn_text *t, const struct sn_setspec *s)
{
	const char *atype = s->family == AF_INET6 ? "ipv6_addr" : "ipv4_addr";
	bool any = false;
	sn_text_printf(t, "add %s inet " SN_NFT_TABLE " %s { ", s->type == SN_SET_MAP ? "map" : "set",
		       s->name);
	switch (s->type) {
	case SN_SET_ADDR:
		sn_text_printf(t, "type %s; size %zu; elements = { ", atype, sn_setspec_count(s));
		for (size_t i = 0; i < s->n; i++) {
			if (s->only_len >= 0 && s->cidrs[i].plen != (unsigned)s->only_len)
				continue;
			sn_text_printf(t, "%s", any ? ", " : "");
			put_addr(t, s->family, s->cidrs[i].addr);
			any = true;
		}
		sn_text_printf(t, " } }\n");
		return;
	case SN_SET_PREFIX:
		sn_text_printf(t, "type %s; flags interval; elements = { ", atype);
		for (size_t i = 0; i < s->n; i++) {
			char buf[SN_CIDR_STRLEN];
			sn_text_printf(t, "%s%s", i ? ", " : "",
				       sn_cidr_format(&s->cidrs[i], buf, sizeof(buf)));
		}
		sn_text_printf(t, " } }\n");
		return;
	case SN_SET_PORT:
		sn_text_printf(t, "type inet_service; flags interval; elements = { ");
		for (size_t j = 0; j < s->n; j++) {
			sn_text_printf(t, "%s%u", j ? ", " : "", s->ports[j].lo);
			if (s->ports[j].lo != s->ports[j].hi)
				sn_text_printf(t, "-%u", s->ports[j].hi);
		}
		sn_text_printf(t, " } }\n");
		return;
	case SN_SET_LEARNED:
		/* learned addresses: filled by the DNS forwarder, each with the TTL */
		sn_text_printf(t, "type %s; flags timeout; size %u;", atype, SN_LEARNED_SET_MAX);
		for (size_t k = 0; k < s->n; k++) {
			const struct sn_nft_learned *l = &s->learned[k];
			if (l->rule != s->rule || l->family != s->family || !l->timeout_s)
				continue;
			sn_text_printf(t, "%s", any ? ", " : " elements = { ");
			put_addr(t, l->family, l->addr);
			sn_text_printf(t, " timeout %us", l->timeout_s);
			any = true;
		}
		sn_text_printf(t, "%s }\n", any ? " }" : "");
		return;
	case SN_SET_MAP:
		sn_text_printf(t, "type %s . inet_proto%s : verdict; flags interval; ", atype,
			       s->with_ports ? " . inet_service" : "");
		for (size_t i = 0; i < s->n; i++) {
			const struct sn_map_elem *e = &s->map[i];
			sn_text_printf(t, "%s", i ? ", " : "elements = { ");
			put_addr(t, s->family, e->lo);
			sn_text_printf(t, "-");
			put_addr(t, s->family, e->hi);
			if (s->with_ports && e->plo == e->phi)
				sn_text_printf(t, " . %s", e->plo == IPPROTO_TCP ? "tcp" : "udp");
			else
				sn_text_printf(t, " . %u-%u", e->plo, e->phi);
			if (s->with_ports)
				sn_text_printf(t, " . %u-%u", e->portlo, e->porthi);
			sn_text_printf(t, " : %s", e->accept ? "accept" : "goto deny");
		}
		sn_text_printf(t, "%s}\n", s->n ? " }; " : "");
		return;
	}
}

static void text_rule(struct sn_text *t, const char *chain, const struct sn_match *m, size_t n,
		      enum sn_verdict_kind v)
{
	sn_text_printf(t, "add rule inet " SN_NFT_TABLE " %s", chain);
	for (size_t i = 0; i < n; i++) {
		const char *ip = m[i].family == AF_INET6 ? "ip6" : "ip";
		switch (m[i].kind) {
		case SN_M_NFPROTO:
			sn_text_printf(t, " meta nfproto %s", m[i].family == AF_INET6 ? "ipv6" : "ipv4");
			break;
		case SN_M_SADDR_NE:
		case SN_M_SADDR_NOT_IN:
			sn_text_printf(t, " %s saddr != ", ip);
			put_addr(t, m[i].family, m[i].addr);
			if (m[i].kind == SN_M_SADDR_NOT_IN)
				sn_text_printf(t, "/%d", m[i].len);
			break;
		case SN_M_DADDR_EQ:
			sn_text_printf(t, " %s daddr ", ip);
			put_addr(t, m[i].family, m[i].addr);
			break;
		case SN_M_DADDR_SET:
			sn_text_printf(t, " %s daddr", ip);
			if (m[i].len >= 0) {
				uint8_t mask[16] = {0};
				for (int b = 0; b < m[i].len; b++)
					mask[b / 8] |= (uint8_t)(0x80 >> (b % 8));
				sn_text_printf(t, " & ");
				put_addr(t, m[i].family, mask);
			}
			sn_text_printf(t, " @%s", m[i].set);
			break;
		case SN_M_L4PROTO:
			if (m[i].num == IPPROTO_TCP || m[i].num == IPPROTO_UDP)
				sn_text_printf(t, " meta l4proto %s",
					       m[i].num == IPPROTO_TCP ? "tcp" : "udp");
			else
				sn_text_printf(t, " meta l4proto %u", m[i].num);
			break;
		case SN_M_L4PROTO_SET: sn_text_printf(t, " meta l4proto @%s", m[i].set); break;
		case SN_M_DPORT: sn_text_printf(t, " th dport %u", m[i].num); break;
		case SN_M_DPORT_SET: sn_text_printf(t, " th dport @%s", m[i].set); break;
		case SN_M_ND: sn_text_printf(t, " icmpv6 type 135-136"); break;
		case SN_M_CT_REPLY: sn_text_printf(t, " ct direction reply"); break;
		case SN_M_CT_DNAT: sn_text_printf(t, " ct status dnat"); break;
		case SN_M_CT_NEW: sn_text_printf(t, " ct state new"); break;
		case SN_M_MARK_SET: sn_text_printf(t, " meta mark set 0x%x", m[i].num); break;
		case SN_M_VMAP:
			sn_text_printf(t, " %s daddr . meta l4proto%s vmap @%s", ip,
				       m[i].with_ports ? " . th dport" : "", m[i].set);
			break;
		}
	}
	static const char *const verdict[] = {"", " accept", " drop", " goto deny"};
	sn_text_printf(t, "%s\n", verdict[v]);
}

static void out_set(struct out *o, const struct sn_setspec *s)
{
	if (o->names)
		o->names(s->type == SN_SET_MAP ? SN_NFT_MAP : SN_NFT_SET, s->name, o->arg);
	else if (o->t)
		text_set(o->t, s);
	else
		sn_nl_set(o->nl, s);
}

static void out_rule(struct out *o, const struct sn_match *m, size_t n, enum sn_verdict_kind v)
{
	if (o->t)
		text_rule(o->t, o->chain, m, n, v);
	else
		sn_nl_rule(o->nl, o->chain, m, n, v);
}

static bool out_failed(const struct out *o)
{
	return o->t ? o->t->failed : o->nl ? o->nl->failed : false;
}

/* ---- a generation: what its sets and rules are ---- */

/* The verdict maps of the run [first, last): a4/a6 keyed by address . protocol . port for TCP
 * and UDP, b4/b6 by address . protocol for ICMP and every other protocol. */
static int run_maps(struct out *o, const struct sn_nft_sandbox *sb, const struct sn_snapshot *s,
		    size_t first, size_t last)
{
	/* "other": every protocol number but TCP, UDP and the family's ICMP */
	static const uint8_t other4[4][2] = {{0, 0}, {2, 5}, {7, 16}, {18, 255}};
	static const uint8_t other6[4][2] = {{0, 5}, {7, 16}, {18, 57}, {59, 255}};
	for (int fam = 0; fam < 2; fam++) {
		int family = fam ? AF_INET6 : AF_INET;
		if (o->names) { /* no elements to compute */
			for (int m = 0; m < 2; m++) {
				char name[160];
				map_name(name, sizeof(name), sb, sb->rev, first, fam * 2 + m);
				o->names(SN_NFT_MAP, name, o->arg);
			}
			continue;
		}
		struct sn_part_elem *v;
		size_t n;
		int rc = sn_snapshot_partition(s, SN_EGRESS, first, last, family, &v, &n);
		if (rc)
			return rc;
		struct sn_map_elem *me = malloc((4 * n + 1) * sizeof(*me));
		if (!me) {
			free(v);
			return -ENOMEM;
		}
		for (int m = 0; m < 2; m++) {
			char name[160];
			map_name(name, sizeof(name), sb, sb->rev, first, fam * 2 + m);
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				const struct sn_part_elem *e = &v[i];
				bool ports = e->cls == SN_PART_TCP || e->cls == SN_PART_UDP;
				if (ports != (m == 0))
					continue;
				bool accept = sn_snapshot_rule(s, SN_EGRESS, e->rule)->action == SN_ALLOW;
				uint8_t one = e->cls == SN_PART_TCP   ? IPPROTO_TCP
					      : e->cls == SN_PART_UDP ? IPPROTO_UDP
					      : fam		      ? IPPROTO_ICMPV6
								      : IPPROTO_ICMP;
				size_t nprotos = e->cls == SN_PART_OTHER ? 4 : 1;
				for (size_t p = 0; p < nprotos; p++) {
					struct sn_map_elem *x = &me[k++];
					memcpy(x->lo, e->lo, 16);
					memcpy(x->hi, e->hi, 16);
					x->plo = x->phi = one;
					if (e->cls == SN_PART_OTHER) {
						x->plo = (fam ? other6 : other4)[p][0];
						x->phi = (fam ? other6 : other4)[p][1];
					}
					x->portlo = e->plo;
					x->porthi = e->phi;
					x->accept = accept;
				}
			}
			out_set(o, &(struct sn_setspec){.type = SN_SET_MAP,
							.name = name,
							.family = family,
							.n = k,
							.map = me,
							.with_ports = m == 0});
		}
		free(me);
		free(v);
	}
	return out_failed(o) ? -ENOMEM : 0;
}

/* The sets of rule i (not in a run). */
static void rule_sets(struct out *o, const struct sn_nft_sandbox *sb, size_t i,
		      const struct sn_rule_render *r)
{
	char name[160];
	for (int k = 0; k < NSETKINDS; k++) {
		if (!set_used(r, k))
			continue;
		int family = k == SET_H6 || k == SET_N6 || k == SET_L6 ? AF_INET6 : AF_INET;
		if (is_split(k, r)) {
			/* one hash set per prefix length */
			const struct sn_cidr *v = k == SET_N6 ? r->nets6 : r->nets4;
			size_t n = k == SET_N6 ? r->nnets6 : r->nnets4;
			uint64_t bits[3];
			lengths(v, n, bits);
			for (unsigned len = 0; len <= 128; len++)
				if (has_len(bits, len)) {
					split_name(name, sizeof(name), sb, sb->rev, i, k, len);
					out_set(o, &(struct sn_setspec){.type = SN_SET_ADDR,
									.name = name,
									.family = family,
									.n = n,
									.cidrs = v,
									.only_len = (int)len});
				}
			continue;
		}
		set_name(name, sizeof(name), sb, sb->rev, i, k);
		struct sn_setspec ss = {.name = name, .family = family, .only_len = -1};
		switch (k) {
		case SET_H4: ss.type = SN_SET_ADDR, ss.cidrs = r->hosts4, ss.n = r->nhosts4; break;
		case SET_H6: ss.type = SN_SET_ADDR, ss.cidrs = r->hosts6, ss.n = r->nhosts6; break;
		case SET_N4: ss.type = SN_SET_PREFIX, ss.cidrs = r->nets4, ss.n = r->nnets4; break;
		case SET_N6: ss.type = SN_SET_PREFIX, ss.cidrs = r->nets6, ss.n = r->nnets6; break;
		case SET_PORTS: ss.type = SN_SET_PORT, ss.ports = r->ports, ss.n = r->nports; break;
		default:
			ss.type = SN_SET_LEARNED;
			ss.learned = sb->learned;
			ss.n = sb->nlearned;
			ss.rule = (uint32_t)i;
			break;
		}
		out_set(o, &ss);
	}
}

/* The protocol and port matches of a rule, into m; their number. */
static size_t proto_matches(struct sn_match *m, const struct sn_rule_render *r,
			    const char *ports_set, bool tcp_only)
{
	size_t k = 0;
	if (tcp_only || r->proto == SN_PROTO_TCP)
		m[k++] = (struct sn_match){.kind = SN_M_L4PROTO, .num = IPPROTO_TCP};
	else if (r->proto == SN_PROTO_UDP)
		m[k++] = (struct sn_match){.kind = SN_M_L4PROTO, .num = IPPROTO_UDP};
	else if (r->proto == SN_PROTO_ICMP)
		m[k++] = (struct sn_match){.kind = SN_M_L4PROTO_SET, .set = SN_SET_ICMP};
	else if (r->ports)
		m[k++] = (struct sn_match){.kind = SN_M_L4PROTO_SET, .set = SN_SET_TCP_UDP};
	if (r->ports)
		m[k++] = (struct sn_match){.kind = SN_M_DPORT_SET, .set = ports_set};
	return k;
}

/* The rules of policy rule i (not in a run). */
static void policy_rules(struct out *o, const struct sn_nft_config *cfg,
			 const struct sn_nft_sandbox *sb, size_t i, const struct sn_rule_render *r)
{
	enum sn_verdict_kind verdict = r->action == SN_ALLOW ? SN_V_ACCEPT : SN_V_DENY;
	char set[160], ports[160];
	set_name(ports, sizeof(ports), sb, sb->rev, i, SET_PORTS);
	struct sn_match m[4];
	if (r->any_dest) {
		out_rule(o, m, proto_matches(m, r, ports, false), verdict);
		return;
	}
	static const int addr_kinds[] = {SET_H4, SET_N4, SET_H6, SET_N6, SET_L4, SET_L6};
	for (size_t a = 0; a < sizeof(addr_kinds) / sizeof(addr_kinds[0]); a++) {
		int k = addr_kinds[a];
		if (!set_used(r, k))
			continue;
		int family = k == SET_H6 || k == SET_N6 || k == SET_L6 ? AF_INET6 : AF_INET;
		m[0] = (struct sn_match){.kind = SN_M_DADDR_SET, .family = family, .set = set, .len = -1};
		if (is_split(k, r)) {
			/* one lookup per prefix length, of the masked address */
			const struct sn_cidr *v = family == AF_INET6 ? r->nets6 : r->nets4;
			uint64_t bits[3];
			lengths(v, family == AF_INET6 ? r->nnets6 : r->nnets4, bits);
			for (unsigned len = 0; len <= 128; len++) {
				if (!has_len(bits, len))
					continue;
				split_name(set, sizeof(set), sb, sb->rev, i, k, len);
				m[0].len = (int)len;
				out_rule(o, m, 1 + proto_matches(m + 1, r, ports, false), verdict);
			}
			continue;
		}
		set_name(set, sizeof(set), sb, sb->rev, i, k);
		out_rule(o, m, 1 + proto_matches(m + 1, r, ports, false), verdict);
	}
	/* TCP that only a name can decide: new connections go to the proxy (which re-checks them
	 * at every update), and the packets of the connections it holds pass; an established
	 * connection that went straight out (an address the policy no longer allows) falls through
	 * to the rules below. Without the proxy: refused. */
	if (r->has_names && (r->proto == SN_PROTO_ANY || r->proto == SN_PROTO_TCP)) {
		size_t k = proto_matches(m, r, ports, true);
		if (!cfg->proxy_enabled) {
			out_rule(o, m, k, SN_V_DENY);
			return;
		}
		m[k] = (struct sn_match){.kind = SN_M_CT_DNAT};
		out_rule(o, m, k + 1, SN_V_ACCEPT);
		m[k] = (struct sn_match){.kind = SN_M_CT_NEW};
		m[k + 1] = (struct sn_match){.kind = SN_M_MARK_SET, .num = SN_MARK_PROXY};
		out_rule(o, m, k + 2, SN_V_ACCEPT);
	}
}

static int generation(struct out *o, const struct sn_nft_config *cfg,
		      const struct sn_nft_sandbox *sb, const struct sn_snapshot *s)
{
	char chain[128], set[160];
	names_of(chain, sizeof(chain), sb, sb->rev);
	o->chain = chain;
	size_t n = sn_snapshot_nrules(s, SN_EGRESS);
	size_t *run_end = runs_of(s);
	if (!run_end)
		return -ENOMEM;
	if (o->names) /* the chain first: its rules hold references to the sets */
		o->names(SN_NFT_CHAIN, chain, o->arg);
	/* sets and maps first: rules refer to them */
	for (size_t i = 0; i < n; i++) {
		if (run_end[i] > i + 1) {
			int rc = run_maps(o, sb, s, i, run_end[i]);
			if (rc) {
				free(run_end);
				return rc;
			}
			i = run_end[i] - 1;
			continue;
		}
		rule_sets(o, sb, i, sn_snapshot_rule(s, SN_EGRESS, i));
	}
	if (o->names)
		goto done;

	if (o->t)
		sn_text_printf(o->t, "add chain inet " SN_NFT_TABLE " %s\n", chain);
	else
		sn_nl_chain(o->nl, chain);
	struct sn_match m[4];
	if (sb->paused) {
		out_rule(o, NULL, 0, SN_V_DROP);
		goto done;
	}
	/* the table's prerouting chain did the rest (anti-spoofing, neighbour discovery, replies,
	 * DNS, guard rails); without an IPv6 address, no IPv6 */
	if (!sb->has6) {
		m[0] = (struct sn_match){.kind = SN_M_NFPROTO, .family = AF_INET6};
		out_rule(o, m, 1, SN_V_DROP);
	}
	/* the policy, in order */
	for (size_t i = 0; i < n; i++) {
		if (run_end[i] > i + 1) {
			for (int k = 0; k < 4; k++) {
				map_name(set, sizeof(set), sb, sb->rev, i, k);
				int family = k < 2 ? AF_INET : AF_INET6;
				m[0] = (struct sn_match){.kind = SN_M_NFPROTO, .family = family};
				m[1] = (struct sn_match){.kind = SN_M_VMAP,
							 .family = family,
							 .set = set,
							 .with_ports = k % 2 == 0};
				out_rule(o, m, 2, SN_V_NONE);
			}
			i = run_end[i] - 1;
			continue;
		}
		policy_rules(o, cfg, sb, i, sn_snapshot_rule(s, SN_EGRESS, i));
	}
	out_rule(o, NULL, 0,
		 sn_snapshot_mode(s, SN_EGRESS) == SN_MODE_ALLOW_ALL ? SN_V_ACCEPT : SN_V_DENY);
done:
	free(run_end);
	return out_failed(o) ? -ENOMEM : 0;
}

int sn_nft_render_generation(struct sn_text *out, const struct sn_nft_config *cfg,
			     const struct sn_nft_sandbox *sb, const struct sn_snapshot *s)
{
	struct out o = {.t = out};
	return generation(&o, cfg, sb, s);
}

int sn_nft_build_generation(struct sn_nl_list *out, const struct sn_nft_config *cfg,
			    const struct sn_nft_sandbox *sb, const struct sn_snapshot *s)
{
	struct out o = {.nl = out};
	return generation(&o, cfg, sb, s);
}

int sn_nft_generation_objects(const struct sn_nft_sandbox *sb, const struct sn_snapshot *s,
			      uint64_t rev, void (*fn)(enum sn_nft_obj kind, const char *name, void *arg),
			      void *arg)
{
	static const struct sn_nft_config none;
	struct sn_nft_sandbox v = *sb;
	v.rev = rev;
	struct out o = {.names = fn, .arg = arg};
	return generation(&o, &none, &v, s);
}

static void delete_line(enum sn_nft_obj kind, const char *name, void *arg)
{
	static const char *const what[] = {"chain", "set", "map"};
	sn_text_printf(arg, "delete %s inet " SN_NFT_TABLE " %s\n", what[kind], name);
}

static void render_delete_rev(struct sn_text *t, const struct sn_nft_sandbox *sb,
			      const struct sn_snapshot *s, uint64_t rev)
{
	if (sn_nft_generation_objects(sb, s, rev, delete_line, t))
		t->failed = true;
}


/* The sandbox's elements in the table's sets: owner4/6 (owners) and paused. */
static void put_members(struct sn_text *t, const struct sn_nft_sandbox *sb, const char *verb,
			bool owners, bool paused)
{
	char a[INET6_ADDRSTRLEN];
	if (owners) {
		inet_ntop(AF_INET, sb->addr4, a, sizeof(a));
		sn_text_printf(t, "%s element inet " SN_NFT_TABLE " owner4 { \"%s\" . %s }\n", verb,
			       sb->ifname, a);
		if (sb->has6) {
			inet_ntop(AF_INET6, sb->addr6, a, sizeof(a));
			sn_text_printf(t, "%s element inet " SN_NFT_TABLE " owner6 { \"%s\" . %s }\n",
				       verb, sb->ifname, a);
		}
	}
	if (paused)
		sn_text_printf(t, "%s element inet " SN_NFT_TABLE " paused { \"%s\" }\n", verb,
			       sb->ifname);
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
	/* its addresses in the owner sets while it runs, its interface in paused while paused */
	bool was = old && sb->was_paused;
	if (old && was != sb->paused)
		put_members(out, sb, "delete", !was, was);
	if (!old || was != sb->paused)
		put_members(out, sb, "add", !sb->paused, sb->paused);
	if (old)
		render_delete_rev(out, sb, old, old_rev);
	return out->failed ? -ENOMEM : 0;
}

int sn_nft_render_delete(struct sn_text *out, const struct sn_nft_sandbox *sb,
			 const struct sn_snapshot *s)
{
	sn_text_printf(out, "delete element inet " SN_NFT_TABLE " dispatch { \"%s\" }\n",
		       sb->ifname);
	put_members(out, sb, "delete", !sb->paused, sb->paused);
	render_delete_rev(out, sb, s, sb->rev);
	return out->failed ? -ENOMEM : 0;
}

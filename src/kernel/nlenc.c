/* The netlink encoder of a generation (encode.h): libnftnl objects spelling the sets and rules
 * render.c decides, byte for byte what nft(8) 1.0.6 sends for the same text (nft --debug=netlink),
 * so that both ways load the same ruleset (tests/kernel/nl_equiv.sh compares nft's listings).
 * Kernel layer, pure: builds objects, sends nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>

#include "encode.h"

#define ELEMS_PER_MSG SN_NL_ELEMS_PER_MSG

/* nft's datatype numbers, which it reads back to print a set's type */
enum { T_IPV4 = 7, T_IPV6 = 8, T_PROTO = 12, T_SERVICE = 13, T_BITS = 6 };

static void obj_free(enum sn_nl_kind kind, void *obj)
{
	switch (kind) {
	case SN_NL_SET:
	case SN_NL_ELEMS: nftnl_set_free(obj); break;
	case SN_NL_CHAIN: nftnl_chain_free(obj); break;
	case SN_NL_RULE: nftnl_rule_free(obj); break;
	}
}

void sn_nl_list_clear(struct sn_nl_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		obj_free(l->v[i].kind, l->v[i].obj);
	free(l->v);
	*l = (struct sn_nl_list){0};
}

/* Appends obj (freeing it when the list cannot take it). */
static void push(struct sn_nl_list *l, enum sn_nl_kind kind, void *obj)
{
	if (!obj || l->failed)
		goto fail;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			goto fail;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = (struct sn_nl_obj){kind, obj};
	return;
fail:
	l->failed = true;
	if (obj)
		obj_free(kind, obj);
}

static struct nftnl_set *named(const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	if (s) {
		nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
		nftnl_set_set_str(s, NFTNL_SET_TABLE, SN_NFT_TABLE);
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	}
	return s;
}

/* ---- elements ---- */

struct elems {
	struct sn_nl_list *l;
	const char *name;
	struct nftnl_set *cur;
	size_t in_cur;
};

static struct nftnl_set_elem *elem(struct elems *e)
{
	if (e->l->failed)
		return NULL;
	if (!e->cur || e->in_cur == ELEMS_PER_MSG) {
		if (e->cur)
			push(e->l, SN_NL_ELEMS, e->cur);
		e->cur = named(e->name);
		e->in_cur = 0;
		if (!e->cur) {
			e->l->failed = true;
			return NULL;
		}
	}
	struct nftnl_set_elem *el = nftnl_set_elem_alloc();
	if (!el) {
		e->l->failed = true;
		return NULL;
	}
	nftnl_set_elem_add(e->cur, el);
	e->in_cur++;
	return el;
}

static void elems_end(struct elems *e)
{
	if (e->cur)
		push(e->l, SN_NL_ELEMS, e->cur);
	e->cur = NULL;
}

static void key(struct elems *e, const void *k, uint32_t len, uint32_t flags, bool open)
{
	struct nftnl_set_elem *el = elem(e);
	if (!el)
		return;
	nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, k, len);
	if (flags)
		nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, flags);
	if (open) {
		/* tells nft's listing that the last interval runs to the end of the key space */
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(16);
		if (!u || !nftnl_udata_put_u32(u, NFTNL_UDATA_SET_ELEM_FLAGS,
		                               NFTNL_SET_ELEM_F_INTERVAL_OPEN)) {
			e->l->failed = true;
		} else {
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(u),
			                   nftnl_udata_buf_len(u));
		}
		nftnl_udata_buf_free(u);
	}
}

/* big-endian increment; false when it wraps (the range ran to the end) */
static bool next_key(uint8_t *k, size_t len)
{
	for (size_t i = len; i-- > 0;)
		if (++k[i])
			return true;
	return false;
}

/* An interval set's elements from sorted, disjoint [lo, hi] ranges, as nft sends them: a closing
 * element at zero when the first range starts above it, then each range's start and the key after
 * its end (flagged as an end; none when the range runs to the end, which is flagged open). */
struct range {
	uint8_t lo[16], hi[16];
};
static void intervals(struct elems *e, const struct range *r, size_t n, size_t len)
{
	static const uint8_t zero[16];
	if (n && memcmp(r[0].lo, zero, len) != 0)
		key(e, zero, (uint32_t)len, NFT_SET_ELEM_INTERVAL_END, false);
	for (size_t i = 0; i < n; i++) {
		uint8_t end[16];
		memcpy(end, r[i].hi, len);
		bool wraps = !next_key(end, len);
		key(e, r[i].lo, (uint32_t)len, 0, wraps);
		if (!wraps)
			key(e, end, (uint32_t)len, NFT_SET_ELEM_INTERVAL_END, false);
	}
}

static void cidr_range(const struct sn_cidr *c, size_t len, struct range *r)
{
	memcpy(r->lo, c->addr, len);
	memcpy(r->hi, c->addr, len);
	for (unsigned b = c->plen; b < len * 8; b++)
		r->hi[b / 8] |= (uint8_t)(0x80 >> (b % 8));
}

/* A map key: each field in 4-byte words, as the concatenation sits in the registers. */
static size_t map_key(uint8_t *k, int family, const uint8_t *addr, uint8_t proto, bool with_ports,
                      uint16_t port)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	memset(k, 0, 24);
	memcpy(k, addr, alen);
	k[alen] = proto;
	if (with_ports) {
		uint16_t p = htons(port);
		memcpy(k + alen + 4, &p, 2);
	}
	return alen + (with_ports ? 8 : 4);
}

static void map_elems(struct elems *e, const struct sn_setspec *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct sn_map_elem *m = &s->map[i];
		uint8_t lo[24], hi[24];
		size_t len = map_key(lo, s->family, m->lo, m->plo, s->with_ports, m->portlo);
		map_key(hi, s->family, m->hi, m->phi, s->with_ports, m->porthi);
		struct nftnl_set_elem *el = elem(e);
		if (!el)
			return;
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, lo, (uint32_t)len);
		nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY_END, hi, (uint32_t)len);
		if (m->accept) {
			nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, NF_ACCEPT);
		} else {
			nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
			nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, "deny");
		}
	}
}

void sn_nl_set(struct sn_nl_list *l, const struct sn_setspec *s)
{
	struct nftnl_set *set = named(s->name);
	if (!set) {
		l->failed = true;
		return;
	}
	bool v6 = s->family == AF_INET6;
	uint32_t alen = v6 ? 16 : 4, atype = v6 ? T_IPV6 : T_IPV4;
	uint32_t flags = 0, ktype = atype, klen = alen;
	switch (s->type) {
	case SN_SET_ADDR: break;
	case SN_SET_PREFIX: flags = NFT_SET_INTERVAL; break;
	case SN_SET_PORT:
		flags = NFT_SET_INTERVAL;
		ktype = T_SERVICE;
		klen = 2;
		break;
	case SN_SET_LEARNED: flags = NFT_SET_TIMEOUT; break;
	case SN_SET_MAP: {
		flags = NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_CONCAT;
		ktype = atype << T_BITS | T_PROTO;
		klen = alen + 4;
		uint8_t fields[4] = {(uint8_t)alen, 1, 0, 0};
		if (s->with_ports) {
			ktype = ktype << T_BITS | T_SERVICE;
			klen += 4;
			fields[2] = 2;
		}
		nftnl_set_set_data(set, NFTNL_SET_DESC_CONCAT, fields, s->with_ports ? 3 : 2);
		nftnl_set_set_u32(set, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
		break;
	}
	}
	nftnl_set_set_u32(set, NFTNL_SET_FLAGS, flags);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, ktype);
	nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, klen);
	nftnl_set_set_u32(set, NFTNL_SET_ID, ++l->next_id);
	if (s->type == SN_SET_ADDR)
		nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, (uint32_t)sn_setspec_count(s));
	else if (s->type == SN_SET_LEARNED)
		nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, SN_LEARNED_SET_MAX);
	push(l, SN_NL_SET, set);

	struct elems e = {.l = l, .name = s->name};
	switch (s->type) {
	case SN_SET_ADDR:
		for (size_t i = 0; i < s->n; i++)
			if (s->only_len < 0 || s->cidrs[i].plen == (unsigned)s->only_len)
				key(&e, s->cidrs[i].addr, alen, 0, false);
		break;
	case SN_SET_PREFIX:
	case SN_SET_PORT: {
		struct range *r = malloc((s->n ? s->n : 1) * sizeof(*r));
		if (!r) {
			l->failed = true;
			break;
		}
		for (size_t i = 0; i < s->n; i++) {
			if (s->type == SN_SET_PREFIX) {
				cidr_range(&s->cidrs[i], alen, &r[i]);
				continue;
			}
			uint16_t lo = htons(s->ports[i].lo), hi = htons(s->ports[i].hi);
			memcpy(r[i].lo, &lo, 2);
			memcpy(r[i].hi, &hi, 2);
		}
		intervals(&e, r, s->n, klen);
		free(r);
		break;
	}
	case SN_SET_LEARNED:
		for (size_t i = 0; i < s->n; i++) {
			const struct sn_nft_learned *k = &s->learned[i];
			if (k->rule != s->rule || k->family != s->family || !k->timeout_s)
				continue;
			struct nftnl_set_elem *el = elem(&e);
			if (!el)
				break;
			nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, k->addr, alen);
			nftnl_set_elem_set_u64(el, NFTNL_SET_ELEM_TIMEOUT,
			                       (uint64_t)k->timeout_s * 1000);
		}
		break;
	case SN_SET_MAP: map_elems(&e, s); break;
	}
	elems_end(&e);
}

void sn_nl_chain(struct sn_nl_list *l, const char *chain)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	if (c) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, SN_NFT_TABLE);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
	}
	push(l, SN_NL_CHAIN, c);
}

/* ---- rules ---- */

struct rb {
	struct nftnl_rule *r;
	bool failed;
	int family; /* the family this rule already checked, 0: none */
};

static struct nftnl_expr *ex(struct rb *b, const char *name)
{
	struct nftnl_expr *e = b->failed ? NULL : nftnl_expr_alloc(name);
	if (!e) {
		b->failed = true;
		return NULL;
	}
	nftnl_rule_add_expr(b->r, e);
	return e;
}

static void meta_load(struct rb *b, uint32_t key, uint32_t reg)
{
	struct nftnl_expr *e = ex(b, "meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, reg);
	}
}

static void cmp(struct rb *b, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = ex(b, "cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
}

static void cmp8(struct rb *b, uint32_t op, uint8_t v)
{
	cmp(b, op, &v, 1);
}

static void payload(struct rb *b, uint32_t base, uint32_t off, uint32_t len, uint32_t reg)
{
	struct nftnl_expr *e = ex(b, "payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, reg);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	}
}

static void bitwise(struct rb *b, const void *mask, uint32_t len)
{
	static const uint8_t zero[16];
	struct nftnl_expr *e = ex(b, "bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
}

static void lookup(struct rb *b, const char *set, bool verdict)
{
	struct nftnl_expr *e = ex(b, "lookup");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
		if (verdict)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
	}
}

static void ct_flag(struct rb *b, uint32_t key, uint32_t bit)
{
	struct nftnl_expr *e = ex(b, "ct");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	uint32_t zero = 0;
	bitwise(b, &bit, 4);
	cmp(b, NFT_CMP_NEQ, &zero, 4);
}

/* "meta nfproto" unless this rule checked the family already */
static void family_dep(struct rb *b, int family)
{
	if (b->family == family)
		return;
	meta_load(b, NFT_META_NFPROTO, NFT_REG_1);
	cmp8(b, NFT_CMP_EQ, family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
	b->family = family;
}

static void addr_load(struct rb *b, int family, bool src, uint32_t reg)
{
	family_dep(b, family);
	bool v6 = family == AF_INET6;
	payload(b, NFT_PAYLOAD_NETWORK_HEADER, v6 ? (src ? 8 : 24) : (src ? 12 : 16), v6 ? 16 : 4,
	        reg);
}

static void prefix_mask(uint8_t *m, int len)
{
	memset(m, 0, 16);
	for (int i = 0; i < len; i++)
		m[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

/* nft's register for the concatenation's field at byte offset off: a 16-byte register when the
 * field starts one, a 4-byte one otherwise */
static uint32_t concat_reg(uint32_t off)
{
	uint32_t slot = off / 4;
	return slot % 4 == 0 ? NFT_REG_1 + slot / 4 : NFT_REG32_00 + slot;
}

static void match(struct rb *b, const struct sn_match *m)
{
	uint32_t alen = m->family == AF_INET6 ? 16 : 4;
	switch (m->kind) {
	case SN_M_NFPROTO: family_dep(b, m->family); break;
	case SN_M_SADDR_NE:
		addr_load(b, m->family, true, NFT_REG_1);
		cmp(b, NFT_CMP_NEQ, m->addr, alen);
		break;
	case SN_M_SADDR_NOT_IN: {
		uint8_t mask[16];
		prefix_mask(mask, m->len);
		addr_load(b, m->family, true, NFT_REG_1);
		bitwise(b, mask, alen);
		cmp(b, NFT_CMP_NEQ, m->addr, alen);
		break;
	}
	case SN_M_DADDR_EQ:
		addr_load(b, m->family, false, NFT_REG_1);
		cmp(b, NFT_CMP_EQ, m->addr, alen);
		break;
	case SN_M_DADDR_SET:
		addr_load(b, m->family, false, NFT_REG_1);
		if (m->len >= 0) {
			uint8_t mask[16];
			prefix_mask(mask, m->len);
			bitwise(b, mask, alen);
		}
		lookup(b, m->set, false);
		break;
	case SN_M_L4PROTO:
		meta_load(b, NFT_META_L4PROTO, NFT_REG_1);
		cmp8(b, NFT_CMP_EQ, (uint8_t)m->num);
		break;
	case SN_M_L4PROTO_SET:
		meta_load(b, NFT_META_L4PROTO, NFT_REG_1);
		lookup(b, m->set, false);
		break;
	case SN_M_DPORT: {
		uint16_t p = htons((uint16_t)m->num);
		payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
		cmp(b, NFT_CMP_EQ, &p, 2);
		break;
	}
	case SN_M_DPORT_SET:
		payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
		lookup(b, m->set, false);
		break;
	case SN_M_ND:
		family_dep(b, AF_INET6);
		meta_load(b, NFT_META_L4PROTO, NFT_REG_1);
		cmp8(b, NFT_CMP_EQ, IPPROTO_ICMPV6);
		payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, NFT_REG_1);
		cmp8(b, NFT_CMP_GTE, 135); /* neighbour solicitation */
		cmp8(b, NFT_CMP_LTE, 136); /* neighbour advertisement */
		break;
	case SN_M_CT_REPLY: {
		struct nftnl_expr *e = ex(b, "ct");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_DIRECTION);
			nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
		}
		cmp8(b, NFT_CMP_EQ, IP_CT_DIR_REPLY);
		break;
	}
	case SN_M_CT_DNAT: ct_flag(b, NFT_CT_STATUS, IPS_DST_NAT); break;
	case SN_M_CT_NEW: ct_flag(b, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_NEW)); break;
	case SN_M_MARK_SET: {
		struct nftnl_expr *e = ex(b, "immediate");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DATA, m->num);
		}
		if ((e = ex(b, "meta"))) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
			nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
		}
		break;
	}
	case SN_M_VMAP: {
		addr_load(b, m->family, false, NFT_REG_1);
		uint32_t reg = concat_reg(alen);
		meta_load(b, NFT_META_L4PROTO, reg);
		struct nftnl_expr *e =
		    ex(b, "byteorder"); /* as nft emits it: a no-op on one byte */
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SREG, reg);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_DREG, reg);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_OP, NFT_BYTEORDER_HTON);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_LEN, 1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_BYTEORDER_SIZE, 2);
		}
		if (m->with_ports)
			payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, concat_reg(alen + 4));
		lookup(b, m->set, true);
		break;
	}
	}
}

void sn_nl_rule(struct sn_nl_list *l, const char *chain, const struct sn_match *m, size_t n,
                enum sn_verdict_kind v)
{
	struct rb b = {.r = nftnl_rule_alloc()};
	if (!b.r) {
		l->failed = true;
		return;
	}
	nftnl_rule_set_u32(b.r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(b.r, NFTNL_RULE_TABLE, SN_NFT_TABLE);
	nftnl_rule_set_str(b.r, NFTNL_RULE_CHAIN, chain);
	for (size_t i = 0; i < n; i++)
		match(&b, &m[i]);
	if (v != SN_V_NONE) {
		struct nftnl_expr *e = ex(&b, "immediate");
		if (e) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
			nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT,
			                   v == SN_V_ACCEPT ? NF_ACCEPT
			                   : v == SN_V_DROP ? NF_DROP
			                                    : (uint32_t)NFT_GOTO);
			if (v == SN_V_DENY)
				nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, "deny");
		}
	}
	if (b.failed) {
		nftnl_rule_free(b.r);
		l->failed = true;
		return;
	}
	push(l, SN_NL_RULE, b.r);
}

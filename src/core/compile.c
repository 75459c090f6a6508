/* Policy compiler and decision engine. A direction compiles to:
 *  - per address family, a sorted array of disjoint address segments, each naming the ordered list
 *    of rules whose address entries cover it (truncated after the first rule that matches every
 *    port and protocol, since nothing after it can decide), rules without a destination included;
 *    an optional first-level table on the top 16 bits narrows the binary search;
 *  - hash tables of exact names and of "*.suffix" patterns, each naming a rule list that includes
 *    the rules with "*";
 *  - the lists of rules with no destination, with "*", and with any name entry;
 *  - before each list, unless the rules' ports make too many classes, its verdict row: the
 *    decision for every class of query without a name whose address has the list.
 * sn_decide() answers a query without a name from its address's row. Otherwise it walks the
 * address's list up to the first rule with names, then, when none of those matched, the rest of
 * it and the name's (usually one list) side by side in rule order, and returns the first rule
 * whose ports and protocol match. Core layer: pure, immutable after compile. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sandnet/snapshot.h>

/* The name scanner reads sixteen bytes at a time with SSE2 (every x86-64 has it), else a byte at
 * a time; SN_SCALAR_NAMES forces the latter (a unit test holds it to the same cases). */
#if defined(__SSE2__) && !defined(SN_SCALAR_NAMES)
#define SN_SSE2_NAMES 1
#include <emmintrin.h>
#endif
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "names are hashed and compared eight bytes at a time, first byte lowest"
#endif

typedef unsigned __int128 u128;

/* A step of a decision, inlined into its caller whatever the compiler's estimate of its size: a
 * decision is a few hundred instructions, and each call's saving and restoring of registers shows
 * in its time. */
#define HOT static inline __attribute__((always_inline))

#define L1_MIN_SEGMENTS 64 /* below this a plain binary search is as fast */
#define L1_MAX_BITS 16

struct crule {
	uint8_t action;
	uint8_t proto;
	bool terminal; /* no ports, protocol any: matches every query its destination matches */
	uint32_t nports;
	const struct sn_port_range *ports;
};

/* The first-level table comes in groups of L1_GROUP buckets. An entry is 16 bits: L1_ONE and the
 * rule list when the whole bucket lies in one segment; else the bucket's first segment (the one
 * holding its first address), as an offset from its group's first, << L1_SEG, and the number of
 * segments to search. A group of which some entry does not fit (a rule list or a count past its
 * bits) is wide: its entries are 32 bits, in wide[], and named by the group's word (grp[]), which
 * otherwise holds the group's first segment. Most groups are narrow, so that the table, read at
 * random by every lookup, takes half the cache it would in 32 bits. */
#define L1_GROUP_BITS 5
#define L1_GROUP (1u << L1_GROUP_BITS)
#define L1_ONE 0x8000u
#define L1_SEG 5
#define L1_CNT 31u
#define L1_WIDE 0x80000000u /* grp[]: the group is wide, its entries from wide[low bits] */

/* A wide entry is 32 bits: L1W_ONE and the rule list; else the bucket's first segment <<
 * L1W_SEG and the number of segments to search, or, for a bucket of more than L1W_CNT, an index
 * into big[] << L1W_SEG and 0. Segments number at most 2^25 (a policy holds at most 1,000,000
 * entries). */
#define L1W_ONE 0x80000000u
#define L1W_SEG 6
#define L1W_CNT 63u
#define L1_MAX_SEGMENTS ((size_t)1 << (31 - L1W_SEG))

/* A packed segment: the low bits of its start and its rule list side by side, so that a search
 * reads one array and usually one cache line. Used when a first-level bucket fixes all but the low
 * 16 (IPv4) or 80 (IPv6) bits of an address and every rule list fits 16 bits. rec6's key holds
 * bits 0-79 of the start, least significant word first. */
struct rec4 {
	uint16_t key, set;
};
struct rec6 {
	uint16_t key[5], set;
};
#define REC4_BITS 16
#define REC6_BITS 80

struct lpm {
	size_t n;
	/* the segments: packed, or starts and rule lists (pool offsets) apart, the lists in 16 bits
	 * when every offset fits, else 32 */
	struct rec4 *rec4;
	struct rec6 *rec6;
	uint32_t *starts4; /* IPv4 */
	u128 *starts6;     /* IPv6 */
	uint16_t *sets16;
	uint32_t *sets32;
	/* First-level table over the l1bits address bits that follow the prefix (of plen bits) that
	 * every segment start but the first shares; bucket b holds base | b << shift and up. A lookup
	 * then usually costs one cache line. */
	uint16_t *l1;  /* NULL or 2^l1bits entries */
	uint32_t *grp; /* a word per group of L1_GROUP entries */
	uint32_t *wide;
	struct big {
		uint32_t lo, hi;
	} *big;
	u128 base;
	int plen, shift, bits, l1bits;
	/* the same for lookups on 64-bit words: an address lies outside the common prefix when
	 * ((hi ^ base_hi) & pmask_hi) | ((lo ^ base_lo) & pmask_lo) is not zero (IPv4: lo alone) */
	uint64_t base_hi, base_lo, pmask_hi, pmask_lo;
	uint32_t l1mask;
};

static inline uint32_t seg_set(const struct lpm *m, size_t i)
{
	if (m->rec4)
		return m->rec4[i].set;
	if (m->rec6)
		return m->rec6[i].set;
	return m->sets16 ? m->sets16[i] : m->sets32[i];
}

/* Half a cache line a slot. A name of up to NENT_SHORT bytes sits in place, padded with zeros,
 * and is compared a word at a time (a query's name is padded the same way, and names hold no zero
 * byte, so equal words mean equal names); a longer one keeps its first NENT_LONG bytes in place, its
 * length, and the offset of the rest in the table's arena. The tag's low bit tells the two apart. */
#define NENT_SHORT 24
#define NENT_LONG 16
struct nent {
	uint32_t tag;  /* the hash's high half (its low bits chose the slot), low bit: a long name */
	uint32_t list; /* pool offset of the name's rule list (whether a slot is taken: ctrl) */
	union {
		char name[NENT_SHORT];
		struct {
			char head[NENT_LONG];
			uint32_t off, len;
		} lng;
	} u;
} __attribute__((aligned(32)));

static inline uint32_t nent_tag(uint64_t h, size_t len)
{
	return ((uint32_t)(h >> 32) & ~1u) | (len > NENT_SHORT);
}

/* A table is probed linearly, but through a byte per slot kept apart (ctrl): 0 for an empty slot,
 * else 0x80 and the hash's top seven bits. The bytes of sixteen slots are compared at once, and a
 * slot is read only when its byte matches, so a name that is not there usually costs no read of
 * the slots at all (the bytes, cap + 15 with the first 15 repeated at the end, stay in cache). */
#define NGROUP 16
struct ntab {
	struct nent *v;
	uint8_t *ctrl;
	size_t cap; /* power of two, at least NGROUP */
	char *names;
	uint64_t labels; /* bit k-1: some name has k labels (bit 63: 64 or more) */
};

static inline uint8_t ctrl_byte(uint64_t h)
{
	return (uint8_t)(0x80 | h >> 57);
}

static unsigned label_bit(size_t labels)
{
	return labels > 64 ? 63 : (unsigned)labels - 1;
}

struct cdir {
	enum sn_mode mode;
	size_t nrules;
	struct crule *rules;
	struct sn_rule_render *render;
	struct lpm v4, v6;
	struct ntab exact, wild;
	uint32_t any_dest, any_name, named; /* pool offsets */
	uint32_t first_named;               /* the first rule with a name entry, or UINT32_MAX */
	uint32_t *pool; /* [row, count, rule...] lists; offset 0 = the empty list */
	size_t npool;
	uint32_t rowlen; /* words of a verdict row; 0: the lists have none */
	/* a query's entry in a row, by protocol: its first << 16 | a mask of the port's class */
	uint32_t pentry[4];
	/* a port's class: pclass2[(e >> 8) + (port & e & 0xff)], e = pclass1[port >> 8] */
	uint32_t *pclass1;
	uint8_t *pclass2;
	struct row_out {
		enum sn_verdict verdict;
		const char *reason;
	} row_out[4]; /* by a row entry's kind */
	struct sn_cidr *cidrs; /* render storage */
	struct sn_port_range *ports;
} __attribute__((aligned(64)));

struct sn_snapshot {
	atomic_int refs;
	size_t memory;
	struct cdir dir[2];
};

/* ---- small helpers ---- */

static inline uint64_t load64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t load_addr4(const uint8_t *a)
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

static u128 load_addr(int family, const uint8_t *a)
{
	if (family != AF_INET6)
		return load_addr4(a);
	return (u128)__builtin_bswap64(load64(a)) << 64 | __builtin_bswap64(load64(a + 8));
}

/* FNV's low bits mix poorly (a multiply carries upward only): fold the high bits in before a
 * hash picks a slot. */
static inline uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* Hash of a name, eight bytes at a time. The NAME_PAD bytes after s[len] must be readable and
 * zero: a query's name sits in such a buffer, and compile copies each pattern into one. */
#define NAME_PAD 48
static inline uint64_t nhash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	for (size_t i = 0; i < len; i += 8)
		h = (h ^ load64(s + i)) * 0x100000001b3ull;
	return mix(h);
}

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* ---- interned rule lists ---- */

struct pool_builder {
	uint32_t *v;
	size_t n, cap, rowlen, limit;
	uint32_t *ht; /* offsets; 0 = empty */
	size_t htcap, count;
	bool nomem; /* out of memory, or full: past limit words (both stop the build) */
	bool full;
};

/* A pool whose lists are each preceded by rowlen words (zero until fill_rows()), of at most limit
 * words; offset 0 holds the empty list. */
static bool pb_init(struct pool_builder *pb, size_t rowlen, size_t limit)
{
	memset(pb, 0, sizeof(*pb));
	pb->rowlen = rowlen;
	pb->limit = limit;
	pb->cap = 64 + rowlen;
	pb->v = calloc(pb->cap, sizeof(*pb->v));
	pb->htcap = 64;
	pb->ht = calloc(pb->htcap, sizeof(*pb->ht));
	if (!pb->v || !pb->ht)
		return false;
	pb->n = rowlen + 1;
	return true;
}

static bool pb_rehash(struct pool_builder *pb)
{
	size_t nc = pb->htcap * 2;
	uint32_t *nh = calloc(nc, sizeof(*nh));
	if (!nh)
		return false;
	for (size_t i = 0; i < pb->htcap; i++) {
		uint32_t off = pb->ht[i];
		if (!off)
			continue;
		const uint32_t *l = &pb->v[off + pb->rowlen];
		uint64_t h = mix(fnv(l + 1, *l * sizeof(uint32_t)));
		size_t j = h & (nc - 1);
		while (nh[j])
			j = (j + 1) & (nc - 1);
		nh[j] = off;
	}
	free(pb->ht);
	pb->ht = nh;
	pb->htcap = nc;
	return true;
}

/* Returns the pool offset of the list (k sorted rule indices), adding it when new. */
static uint32_t pb_intern(struct pool_builder *pb, const uint32_t *list, uint32_t k)
{
	if (k == 0 || pb->nomem)
		return 0;
	uint64_t h = mix(fnv(list, k * sizeof(uint32_t)));
	size_t j = h & (pb->htcap - 1);
	for (; pb->ht[j]; j = (j + 1) & (pb->htcap - 1)) {
		const uint32_t *l = &pb->v[pb->ht[j] + pb->rowlen];
		if (*l == k && memcmp(l + 1, list, k * sizeof(uint32_t)) == 0)
			return pb->ht[j];
	}
	size_t need = pb->n + pb->rowlen + 1 + k;
	if (need > pb->limit) {
		pb->nomem = pb->full = true;
		return 0;
	}
	if (need > pb->cap) {
		size_t nc = pb->cap;
		while (need > nc)
			nc *= 2;
		uint32_t *nv = realloc(pb->v, nc * sizeof(*nv));
		if (!nv) {
			pb->nomem = true;
			return 0;
		}
		pb->v = nv;
		pb->cap = nc;
	}
	uint32_t off = (uint32_t)pb->n;
	memset(&pb->v[off], 0, pb->rowlen * sizeof(uint32_t));
	pb->v[off + pb->rowlen] = k;
	memcpy(&pb->v[off + pb->rowlen + 1], list, k * sizeof(uint32_t));
	pb->n = need;
	pb->ht[j] = off;
	if (++pb->count * 2 > pb->htcap && !pb_rehash(pb))
		pb->nomem = true;
	return off;
}

/* ---- address segments ---- */

struct ev {
	u128 pos;
	uint32_t rule;
	int32_t delta;
};

/* LSD radix sort on the low `bytes` bytes of pos; passes whose digit is constant are skipped. */
static bool radix_sort(struct ev *v, size_t n, int bytes)
{
	struct ev *tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return false;
	struct ev *src = v, *dst = tmp;
	for (int b = 0; b < bytes; b++) {
		size_t cnt[256] = {0};
		for (size_t i = 0; i < n; i++)
			cnt[(uint8_t)(src[i].pos >> (8 * b))]++;
		if (cnt[(uint8_t)(src[0].pos >> (8 * b))] == n)
			continue;
		size_t sum = 0;
		for (int i = 0; i < 256; i++) {
			size_t c = cnt[i];
			cnt[i] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(uint8_t)(src[i].pos >> (8 * b))]++] = src[i];
		struct ev *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(*v));
	free(tmp);
	return true;
}

struct seg_builder {
	u128 *starts;
	uint32_t *sets;
	size_t n, cap;
};

static bool seg_push(struct seg_builder *sb, u128 start, uint32_t set)
{
	if (sb->n && sb->sets[sb->n - 1] == set)
		return true;
	if (sb->n == sb->cap) {
		size_t nc = sb->cap ? sb->cap * 2 : 64;
		u128 *ns = realloc(sb->starts, nc * sizeof(*ns));
		if (!ns)
			return false;
		sb->starts = ns;
		uint32_t *nt = realloc(sb->sets, nc * sizeof(*nt));
		if (!nt)
			return false;
		sb->sets = nt;
		sb->cap = nc;
	}
	sb->starts[sb->n] = start;
	sb->sets[sb->n] = set;
	sb->n++;
	return true;
}

/* Sweeps the prefixes of the rules [first, last) of one family over the address line (rules
 * without a destination cover all of it when any_dest is set) and calls fn for every segment, in
 * order, with the sorted list of the rules that cover it (possibly empty). */
typedef bool (*sweep_fn)(u128 start, u128 end, const uint32_t *active, size_t nactive, void *arg);

static bool sweep(const struct cdir *cd, int family, size_t first, size_t last, bool any_dest,
		  sweep_fn fn, void *arg)
{
	int bits = family == AF_INET6 ? 128 : 32;
	u128 maxv = bits == 128 ? ~(u128)0 : (u128)0xffffffffu;
	size_t nev = 0;
	for (size_t r = first; r < last; r++) {
		const struct sn_rule_render *rr = &cd->render[r];
		nev += rr->any_dest ? 1
				    : 2 * (family == AF_INET6 ? rr->nhosts6 + rr->nnets6
							      : rr->nhosts4 + rr->nnets4);
	}
	struct ev *evs = malloc((nev + 1) * sizeof(*evs));
	uint32_t *counts = calloc(cd->nrules + 1, sizeof(*counts));
	uint32_t *active = calloc(cd->nrules + 1, sizeof(*active));
	bool ok = false;
	if (!evs || !counts || !active)
		goto out;
	size_t k = 0;
	for (size_t r = first; r < last; r++) {
		const struct sn_rule_render *rr = &cd->render[r];
		if (rr->any_dest) {
			if (any_dest)
				evs[k++] = (struct ev){0, (uint32_t)r, 1};
			continue;
		}
		const struct sn_cidr *lists[2] = {family == AF_INET6 ? rr->hosts6 : rr->hosts4,
						  family == AF_INET6 ? rr->nets6 : rr->nets4};
		size_t cnt[2] = {family == AF_INET6 ? rr->nhosts6 : rr->nhosts4,
				 family == AF_INET6 ? rr->nnets6 : rr->nnets4};
		for (int l = 0; l < 2; l++)
			for (size_t i = 0; i < cnt[l]; i++) {
				const struct sn_cidr *c = &lists[l][i];
				u128 start = load_addr(family, c->addr);
				u128 hm = c->plen == 0 ? maxv : (((u128)1 << (bits - c->plen)) - 1);
				evs[k++] = (struct ev){start, (uint32_t)r, 1};
				if ((start | hm) != maxv)
					evs[k++] = (struct ev){(start | hm) + 1, (uint32_t)r, -1};
			}
	}
	nev = k;
	if (nev && !radix_sort(evs, nev, bits / 8))
		goto out;
	if ((!nev || evs[0].pos != 0) && !fn(0, nev ? evs[0].pos - 1 : maxv, active, 0, arg))
		goto out;
	size_t nactive = 0;
	for (size_t i = 0; i < nev;) {
		u128 pos = evs[i].pos;
		for (; i < nev && evs[i].pos == pos; i++) {
			uint32_t r = evs[i].rule;
			if (evs[i].delta > 0) {
				if (counts[r]++ == 0) {
					size_t j = nactive;
					while (j > 0 && active[j - 1] > r) {
						active[j] = active[j - 1];
						j--;
					}
					active[j] = r;
					nactive++;
				}
			} else if (--counts[r] == 0) {
				size_t j = 0;
				while (active[j] != r)
					j++;
				memmove(&active[j], &active[j + 1], (nactive - j - 1) * sizeof(*active));
				nactive--;
			}
		}
		if (!fn(pos, i < nev ? evs[i].pos - 1 : maxv, active, nactive, arg))
			goto out;
	}
	ok = true;
out:
	free(evs);
	free(counts);
	free(active);
	return ok;
}

struct build_arg {
	const struct cdir *cd;
	struct pool_builder *pb;
	struct seg_builder sb;
};

/* A segment's list, cut after its first rule that matches every port and protocol. */
static bool build_segment(u128 start, u128 end, const uint32_t *active, size_t nactive, void *arg)
{
	(void)end;
	struct build_arg *a = arg;
	uint32_t upto = 0;
	while (upto < nactive && !a->cd->rules[active[upto]].terminal)
		upto++;
	if (upto < nactive)
		upto++;
	uint32_t set = pb_intern(a->pb, active, upto);
	return !a->pb->nomem && seg_push(&a->sb, start, set);
}

/* The last segment that holds an address of bucket b: the one that holds the next bucket's first
 * address, unless it starts right there. */
static size_t bucket_last(const struct lpm *m, const struct seg_builder *sb,
			  const uint32_t *first_seg, size_t b, size_t nb)
{
	size_t lo = first_seg[b], last = first_seg[b + 1];
	if (last > lo && b + 1 < nb && sb->starts[last] == (m->base | (u128)(b + 1) << m->shift))
		last--;
	return last;
}

/* How many segments bucket b holds, from its first (first_seg[b]) to its last. */
static uint32_t bucket_count(const struct lpm *m, const struct seg_builder *sb,
			     const uint32_t *first_seg, size_t b, size_t nb)
{
	return (uint32_t)(bucket_last(m, sb, first_seg, b, nb) + 1 - first_seg[b]);
}

/* The narrow entry of a bucket of cnt segments from lo, the first of its group being first; false
 * when it does not fit 16 bits. (While every count fits, an offset is at most 31 * 31 and fits
 * too; its test only keeps a change of the constants from corrupting entries.) */
static bool narrow_entry(uint32_t lo, uint32_t cnt, uint32_t set, uint32_t first, uint16_t *e)
{
	if (cnt == 1 && set < L1_ONE) {
		*e = (uint16_t)(L1_ONE | set);
		return true;
	}
	if (cnt == 1 || cnt > L1_CNT || lo - first >= L1_ONE >> L1_SEG)
		return false;
	*e = (uint16_t)((lo - first) << L1_SEG | cnt);
	return true;
}

/* The first-level table of a family's segments. */
static bool build_l1(struct lpm *m, const struct seg_builder *sb, int bits, size_t *mem)
{
	int l1bits = L1_GROUP_BITS;
	while (l1bits < L1_MAX_BITS && ((size_t)1 << l1bits) < 2 * m->n)
		l1bits++;
	size_t nb = (size_t)1 << l1bits, ng = nb / L1_GROUP;
	uint32_t *first_seg = malloc((nb + 1) * sizeof(*first_seg));
	m->l1 = malloc(nb * sizeof(*m->l1));
	m->grp = malloc(ng * sizeof(*m->grp));
	if (!m->l1 || !m->grp || !first_seg) {
		free(first_seg);
		return false;
	}
	*mem += nb * sizeof(*m->l1) + ng * sizeof(*m->grp);
	/* the common prefix of starts[1] .. starts[n-1] */
	u128 first = sb->starts[1], last = sb->starts[sb->n - 1], diff = first ^ last;
	int plen = 0;
	while (plen < bits - l1bits && !(diff >> (bits - 1 - plen) & 1))
		plen++;
	m->bits = bits;
	m->plen = plen;
	m->l1bits = l1bits;
	m->shift = bits - plen - l1bits;
	m->base = plen ? first >> (bits - plen) << (bits - plen) : 0;
	u128 pmask = plen ? ~(u128)0 << (bits - plen) : 0;
	m->base_hi = (uint64_t)(m->base >> 64), m->base_lo = (uint64_t)m->base;
	m->pmask_hi = (uint64_t)(pmask >> 64), m->pmask_lo = (uint64_t)pmask;
	m->l1mask = (uint32_t)(nb - 1);
	size_t seg = 0;
	for (size_t b = 0; b < nb; b++) {
		u128 a = m->base | (u128)b << m->shift;
		while (seg + 1 < m->n && sb->starts[seg + 1] <= a)
			seg++;
		first_seg[b] = (uint32_t)seg;
	}
	first_seg[nb] = (uint32_t)(m->n - 1);
	/* a bucket's segments: from the one holding its first address to its last. Narrow groups
	 * are written at once; wide ones are counted, with their big buckets, then written. */
	size_t nwide = 0, nbig = 0;
	for (size_t g = 0; g < ng; g++) {
		size_t b0 = g * L1_GROUP, b = b0;
		for (; b < b0 + L1_GROUP; b++) {
			uint32_t lo = first_seg[b], cnt = bucket_count(m, sb, first_seg, b, nb);
			if (!narrow_entry(lo, cnt, sb->sets[lo], first_seg[b0], &m->l1[b]))
				break;
		}
		m->grp[g] = first_seg[b0];
		if (b == b0 + L1_GROUP)
			continue;
		m->grp[g] = L1_WIDE;
		nwide++;
		for (b = b0; b < b0 + L1_GROUP; b++)
			nbig += bucket_count(m, sb, first_seg, b, nb) > L1W_CNT;
	}
	if ((nwide && !(m->wide = malloc(nwide * L1_GROUP * sizeof(*m->wide)))) ||
	    (nbig && !(m->big = malloc(nbig * sizeof(*m->big))))) {
		free(first_seg);
		return false;
	}
	*mem += nwide * L1_GROUP * sizeof(*m->wide) + nbig * sizeof(*m->big);
	nwide = nbig = 0;
	for (size_t g = 0; g < ng; g++) {
		if (m->grp[g] != L1_WIDE)
			continue;
		m->grp[g] = L1_WIDE | (uint32_t)(nwide * L1_GROUP);
		for (size_t b = g * L1_GROUP; b < (g + 1) * L1_GROUP; b++) {
			uint32_t lo = first_seg[b], cnt = bucket_count(m, sb, first_seg, b, nb);
			uint32_t *e = &m->wide[nwide * L1_GROUP + b % L1_GROUP];
			m->l1[b] = 0;
			if (cnt == 1) {
				*e = L1W_ONE | sb->sets[lo];
			} else if (cnt <= L1W_CNT) {
				*e = lo << L1W_SEG | cnt;
			} else {
				m->big[nbig] = (struct big){lo, lo + cnt};
				*e = (uint32_t)nbig++ << L1W_SEG;
			}
		}
		nwide++;
	}
	free(first_seg);
	return true;
}

/* Stores the segments for lookups: packed when the first-level table allows (struct rec4). */
static bool store_segments(struct lpm *m, struct seg_builder *sb, int family, uint32_t maxset,
			   size_t *mem)
{
	bool packed = m->l1 && maxset <= UINT16_MAX &&
		      m->shift <= (family == AF_INET6 ? REC6_BITS : REC4_BITS);
	if (packed && family == AF_INET) {
		if (!(m->rec4 = malloc(sb->n * sizeof(*m->rec4))))
			return false;
		for (size_t i = 0; i < sb->n; i++)
			m->rec4[i] = (struct rec4){(uint16_t)sb->starts[i], (uint16_t)sb->sets[i]};
		*mem += sb->n * sizeof(*m->rec4);
		return true;
	}
	if (packed) {
		if (!(m->rec6 = malloc(sb->n * sizeof(*m->rec6))))
			return false;
		for (size_t i = 0; i < sb->n; i++) {
			uint64_t lo = (uint64_t)sb->starts[i];
			memcpy(m->rec6[i].key, &lo, sizeof(lo));
			m->rec6[i].key[4] = (uint16_t)(sb->starts[i] >> 64);
			m->rec6[i].set = (uint16_t)sb->sets[i];
		}
		*mem += sb->n * sizeof(*m->rec6);
		return true;
	}
	size_t setsize = maxset <= UINT16_MAX ? sizeof(uint16_t) : sizeof(uint32_t);
	if (setsize == sizeof(uint16_t)) {
		if (!(m->sets16 = malloc(sb->n * sizeof(*m->sets16))))
			return false;
		for (size_t i = 0; i < sb->n; i++)
			m->sets16[i] = (uint16_t)sb->sets[i];
	} else {
		m->sets32 = sb->sets;
		sb->sets = NULL;
	}
	if (family == AF_INET6) {
		if (!(m->starts6 = malloc(sb->n * sizeof(*m->starts6))))
			return false;
		memcpy(m->starts6, sb->starts, sb->n * sizeof(*sb->starts));
		*mem += sb->n * (sizeof(u128) + setsize);
	} else {
		if (!(m->starts4 = malloc(sb->n * sizeof(*m->starts4))))
			return false;
		for (size_t i = 0; i < sb->n; i++)
			m->starts4[i] = (uint32_t)sb->starts[i];
		*mem += sb->n * (sizeof(uint32_t) + setsize);
	}
	return true;
}

/* The segments of one family, for decide(). */
static bool build_family(struct cdir *cd, struct pool_builder *pb, int family, size_t *mem)
{
	int bits = family == AF_INET6 ? 128 : 32;
	struct lpm *m = family == AF_INET6 ? &cd->v6 : &cd->v4;
	struct build_arg ba = {cd, pb, {0}};
	bool ok = false;
	struct seg_builder sb = {0};
	if (!sweep(cd, family, 0, cd->nrules, true, build_segment, &ba))
		goto out;
	sb = ba.sb;
	ba.sb = (struct seg_builder){0};
	m->n = sb.n;
	if (sb.n >= L1_MAX_SEGMENTS)
		goto out;
	uint32_t maxset = 0;
	for (size_t i = 0; i < sb.n; i++)
		maxset = sb.sets[i] > maxset ? sb.sets[i] : maxset;
	if (maxset >= L1W_ONE)
		goto out;
	if (m->n >= L1_MIN_SEGMENTS && !build_l1(m, &sb, bits, mem))
		goto out;
	ok = store_segments(m, &sb, family, maxset, mem);
out:
	free(ba.sb.starts);
	free(ba.sb.sets);
	free(sb.starts);
	free(sb.sets);
	return ok;
}

/* The first-level bucket of an address: SIZE_MAX when the address lies outside the prefix that
 * all starts but the first share, *set then being the list of the first or the last segment. IPv4
 * is computed on 32 bits, IPv6 on two 64-bit words. */
static inline size_t l1_bucket4(const struct lpm *m, uint32_t a, uint32_t *set)
{
	if ((a ^ m->base_lo) & m->pmask_lo) {
		*set = seg_set(m, a < m->base_lo ? 0 : m->n - 1);
		return SIZE_MAX;
	}
	return a >> m->shift & m->l1mask;
}

static inline size_t l1_bucket6(const struct lpm *m, u128 a, uint32_t *set)
{
	uint64_t hi = (uint64_t)(a >> 64), lo = (uint64_t)a;
	if (((hi ^ m->base_hi) & m->pmask_hi) | ((lo ^ m->base_lo) & m->pmask_lo)) {
		*set = seg_set(m, a < m->base ? 0 : m->n - 1);
		return SIZE_MAX;
	}
	/* the bucket's bits usually lie in the high word */
	size_t b = m->shift >= 64 ? (size_t)(hi >> (m->shift - 64)) : (size_t)(a >> m->shift);
	return b & m->l1mask;
}

/* Narrows [lo, hi) to bucket b's segments; returns the rule list when its entry already decides,
 * UINT32_MAX otherwise. The entry and its group's word are read together. */
static inline uint32_t l1_range(const struct lpm *m, size_t b, size_t *lo, size_t *hi)
{
	uint32_t e = m->l1[b], g = m->grp[b >> L1_GROUP_BITS];
	if (!(g & L1_WIDE)) {
		if (e & L1_ONE)
			return e & ~L1_ONE;
		*lo = g + (e >> L1_SEG);
		*hi = *lo + (e & L1_CNT);
	} else {
		e = m->wide[(g & ~L1_WIDE) + (b & (L1_GROUP - 1))];
		if (e & L1W_ONE)
			return e & ~L1W_ONE;
		size_t first = e >> L1W_SEG, cnt = e & L1W_CNT;
		*lo = cnt ? first : m->big[first].lo;
		*hi = cnt ? first + cnt : m->big[first].hi;
	}
	/* the bucket holds a few segments: fetch what the search reads last (a packed bucket's
	 * last record, which may lie on the next cache line) or after it (the rule lists) while it
	 * reads the first */
	if (m->rec4)
		__builtin_prefetch(&m->rec4[*hi - 1]);
	else if (m->rec6)
		__builtin_prefetch(&m->rec6[*hi - 1]);
	else
		__builtin_prefetch(m->sets16 ? (const void *)&m->sets16[*lo]
					     : (const void *)&m->sets32[*lo]);
	return UINT32_MAX;
}

/* The index of the last of the n sorted starts from st that is <= a (st[0] <= a), by a search
 * without branches on the data, whose outcome a CPU cannot predict. */
static inline size_t last_le4(const uint32_t *st, size_t n, uint32_t a)
{
	const uint32_t *b = st;
	for (; n > 1; n -= n / 2)
		b = b[n / 2] <= a ? b + n / 2 : b;
	return (size_t)(b - st);
}

static inline size_t last_le6(const u128 *st, size_t n, u128 a)
{
	const u128 *b = st;
	for (; n > 1; n -= n / 2)
		b = b[n / 2] <= a ? b + n / 2 : b;
	return (size_t)(b - st);
}

/* The same over packed records, on the bits below the bucket's (those the records keep). */
static inline uint32_t last_le_rec4(const struct rec4 *r, size_t n, uint32_t a)
{
	uint16_t k = (uint16_t)a;
	for (; n > 1; n -= n / 2)
		r = r[n / 2].key <= k ? r + n / 2 : r;
	return r->set;
}

static inline u128 rec6_key(const struct rec6 *r)
{
	uint64_t lo;
	memcpy(&lo, r->key, sizeof(lo));
	return (u128)r->key[4] << 64 | lo;
}

static inline uint32_t last_le_rec6(const struct rec6 *r, size_t n, u128 a)
{
	u128 k = a & (((u128)1 << REC6_BITS) - 1);
	for (; n > 1; n -= n / 2)
		r = rec6_key(&r[n / 2]) <= k ? r + n / 2 : r;
	return r->set;
}

/* The rule list of the segment that holds the address. */
static uint32_t lpm_lookup(const struct lpm *m, int family, const uint8_t *addr)
{
	size_t lo = 0, hi = m->n;
	uint32_t set;
	size_t b;
	if (family == AF_INET) {
		uint32_t a = load_addr4(addr);
		if (m->l1) {
			if ((b = l1_bucket4(m, a, &set)) == SIZE_MAX ||
			    (set = l1_range(m, b, &lo, &hi)) != UINT32_MAX)
				return set;
			if (m->rec4)
				return last_le_rec4(m->rec4 + lo, hi - lo, a);
		} else if (!m->n) {
			return 0;
		}
		return seg_set(m, lo + last_le4(m->starts4 + lo, hi - lo, a));
	}
	u128 a = load_addr(AF_INET6, addr);
	if (m->l1) {
		if ((b = l1_bucket6(m, a, &set)) == SIZE_MAX ||
		    (set = l1_range(m, b, &lo, &hi)) != UINT32_MAX)
			return set;
		if (m->rec6)
			return last_le_rec6(m->rec6 + lo, hi - lo, a);
	} else if (!m->n) {
		return 0;
	}
	return seg_set(m, lo + last_le6(m->starts6 + lo, hi - lo, a));
}

/* ---- names ---- */

struct name_item {
	const char *name;
	uint32_t rule;
};

static int name_item_cmp(const void *a, const void *b)
{
	const struct name_item *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->rule > y->rule) - (x->rule < y->rule);
}

/* Each name's list is its own rules merged with those of "*" (any_name, nany sorted rules), so
 * that a name that hits one slot needs no other list. */
static bool build_ntab(struct ntab *t, struct name_item *items, size_t n, const uint32_t *any_name,
		       size_t nany, struct pool_builder *pb, size_t *mem)
{
	if (!n)
		return true;
	qsort(items, n, sizeof(*items), name_item_cmp);
	size_t distinct = 0, bytes = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(items[i].name, items[i - 1].name)) {
			size_t len = strlen(items[i].name);
			distinct++;
			bytes += len > NENT_SHORT ? len - NENT_LONG : 0; /* the arena: long names' tails */
		}
	t->cap = 16;
	while (t->cap < distinct + distinct / 2)
		t->cap *= 2;
	t->v = aligned_alloc(64, t->cap * sizeof(*t->v));
	if (t->v)
		memset(t->v, 0, t->cap * sizeof(*t->v)); /* names padded with zeros */
	t->ctrl = calloc(t->cap + NGROUP - 1, 1);
	t->names = malloc(bytes + 1);
	uint32_t *list = malloc((n + nany) * sizeof(*list));
	if (!t->v || !t->ctrl || !t->names || !list) {
		free(list);
		return false;
	}
	*mem += t->cap * (sizeof(*t->v) + 1) + NGROUP - 1 + bytes + 1;
	size_t noff = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i, k = 0, a = 0;
		for (; j < n && strcmp(items[j].name, items[i].name) == 0; j++) {
			uint32_t r = items[j].rule;
			for (; a < nany && any_name[a] < r; a++)
				list[k++] = any_name[a];
			a += a < nany && any_name[a] == r;
			if (!k || list[k - 1] != r)
				list[k++] = r;
		}
		for (; a < nany; a++)
			list[k++] = any_name[a];
		size_t len = strlen(items[i].name), labels = 1;
		for (size_t c = 0; c < len; c++)
			labels += items[i].name[c] == '.';
		t->labels |= 1ull << label_bit(labels);
		char padded[256 + NAME_PAD] = {0};
		memcpy(padded, items[i].name, len);
		uint64_t h = nhash(padded, len);
		size_t s = h & (t->cap - 1);
		while (t->ctrl[s])
			s = (s + 1) & (t->cap - 1);
		t->ctrl[s] = ctrl_byte(h);
		if (s < NGROUP - 1)
			t->ctrl[t->cap + s] = ctrl_byte(h);
		struct nent *e = &t->v[s];
		e->tag = nent_tag(h, len);
		e->list = pb_intern(pb, list, (uint32_t)k);
		if (len <= NENT_SHORT) {
			memcpy(e->u.name, items[i].name, len);
		} else {
			memcpy(e->u.lng.head, items[i].name, NENT_LONG);
			e->u.lng.off = (uint32_t)noff;
			e->u.lng.len = (uint32_t)len;
			memcpy(t->names + noff, items[i].name + NENT_LONG, len - NENT_LONG);
			noff += len - NENT_LONG;
		}
		i = j;
	}
	free(list);
	return !pb->nomem;
}

/* The slots from s on (NGROUP of them) whose byte is c, up to the first empty one, as a mask;
 * *end tells whether an empty one was among them. */
HOT unsigned ctrl_match(const struct ntab *t, size_t s, uint8_t c, bool *end)
{
	unsigned match = 0, empty = 0;
#ifdef SN_SSE2_NAMES
	__m128i g = _mm_loadu_si128((const __m128i *)(t->ctrl + s));
	match = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(g, _mm_set1_epi8((char)c)));
	empty = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(g, _mm_setzero_si128()));
#else
	for (unsigned i = 0; i < NGROUP; i++) {
		match |= (unsigned)(t->ctrl[s + i] == c) << i;
		empty |= (unsigned)(t->ctrl[s + i] == 0) << i;
	}
#endif
	*end = empty != 0;
	return empty ? match & ((empty & -empty) - 1) : match;
}

/* name: len bytes followed by NAME_PAD zero bytes. Only a probe calls it, and a table gets probes
 * only when some name of it has the probe's label count: the table is not empty (and, at most two
 * thirds full, has an empty slot). */
HOT uint32_t ntab_get(const struct ntab *t, const char *name, size_t len, uint64_t h)
{
	uint32_t tag = nent_tag(h, len);
	for (size_t s = h & (t->cap - 1);; s = (s + NGROUP) & (t->cap - 1)) {
		bool end;
		for (unsigned m = ctrl_match(t, s, ctrl_byte(h), &end); m; m &= m - 1) {
			size_t slot = (s + (unsigned)__builtin_ctz(m)) & (t->cap - 1);
			const struct nent *e = &t->v[slot];
			if (e->tag != tag)
				continue;
			uint64_t diff = (load64(e->u.name) ^ load64(name)) |
					(load64(e->u.name + 8) ^ load64(name + 8));
			if (len <= NENT_SHORT) {
				if (!(diff | (load64(e->u.name + 16) ^ load64(name + 16))))
					return e->list;
			} else if (!diff && e->u.lng.len == len &&
				   memcmp(t->names + e->u.lng.off, name + NENT_LONG,
					  len - NENT_LONG) == 0) {
				return e->list;
			}
		}
		if (end)
			return 0;
	}
}

/* ---- render lists ---- */

static int cidr_sort_cmp(const void *a, const void *b)
{
	const struct sn_cidr *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);
	return c ? c : (int)x->plen - (int)y->plen;
}

/* Sorts prefixes and drops those inside an earlier one: the result is disjoint. */
static size_t disjoint_prefixes(struct sn_cidr *v, size_t n)
{
	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), cidr_sort_cmp);
	size_t w = 1;
	for (size_t i = 1; i < n; i++)
		if (!sn_cidr_contains(&v[w - 1], v[i].family, v[i].addr))
			v[w++] = v[i];
	return w;
}

static int port_sort_cmp(const void *a, const void *b)
{
	const struct sn_port_range *x = a, *y = b;
	return (int)x->lo - (int)y->lo;
}

static size_t merge_ports(struct sn_port_range *v, size_t n)
{
	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), port_sort_cmp);
	size_t w = 1;
	for (size_t i = 1; i < n; i++) {
		if ((uint32_t)v[i].lo <= (uint32_t)v[w - 1].hi + 1) {
			if (v[i].hi > v[w - 1].hi)
				v[w - 1].hi = v[i].hi;
		} else {
			v[w++] = v[i];
		}
	}
	return w;
}

/* ---- verdict rows ----
 * A row entry is 16 bits: its kind << ROW_KIND (the verdict, or ROW_MODE) and the deciding rule
 * + 1 (0: the mode). A query's class is its protocol and, for TCP and UDP, its port's class: the
 * ports that no rule's ranges tell apart share one. Rows are built when there are at most
 * MAX_PORT_CLASSES, so that a row (two entries per port class, and two) stays within a cache line
 * or two, and while the pool with them stays within ROW_POOL_WORDS: its offsets then still fit the
 * first-level table's narrow entries, and filling the rows (a walk per list and class) stays
 * cheap. A direction whose pool would not fit is compiled again without rows. */
#define MAX_PORT_CLASSES 16
#define ROW_POOL_WORDS ((size_t)1 << 15)
#define ROW_KIND 14
#define ROW_MODE 3u
_Static_assert(SN_LIMIT_RULES < (1u << ROW_KIND) - 1, "a row entry holds a rule + 1");
_Static_assert(SN_VERDICT_NEED_NAME < ROW_MODE, "a row entry's kind is a verdict or the mode");

/* The first port of every port class but the first (port 0's), sorted, into bounds (room for
 * MAX_PORT_CLASSES - 1); returns how many, or -1 when there are more. */
static int port_bounds(const struct cdir *cd, uint32_t *bounds)
{
	int n = 0;
	for (size_t i = 0; i < cd->nrules; i++)
		for (uint32_t j = 0; j < cd->rules[i].nports; j++) {
			const struct sn_port_range *pr = &cd->rules[i].ports[j];
			uint32_t edge[2] = {pr->lo, pr->hi + 1u};
			for (int e = 0; e < 2; e++) {
				int at = 0;
				while (at < n && bounds[at] < edge[e])
					at++;
				if (edge[e] == 0 || edge[e] > UINT16_MAX ||
				    (at < n && bounds[at] == edge[e]))
					continue;
				if (n == MAX_PORT_CLASSES - 1)
					return -1;
				memmove(bounds + at + 1, bounds + at,
					(size_t)(n - at) * sizeof(*bounds));
				bounds[at] = edge[e];
				n++;
			}
		}
	return n;
}

static uint32_t port_class(const uint32_t *bounds, int nb, uint32_t port)
{
	uint32_t c = 0;
	while ((int)c < nb && bounds[c] <= port)
		c++;
	return c;
}

/* The class tables and a row's layout for nb bounds: pclass2 holds a byte per class (for the
 * high bytes that hold no bound), then 256 for each high byte that holds one. */
static bool port_classes(struct cdir *cd, const uint32_t *bounds, int nb, size_t *mem)
{
	uint32_t nclass = (uint32_t)nb + 1, nsplit = 0;
	bool split[256] = {0};
	for (int i = 0; i < nb; i++)
		if (bounds[i] & 0xff && !split[bounds[i] >> 8]) {
			split[bounds[i] >> 8] = true;
			nsplit++;
		}
	size_t size = nclass + 256 * nsplit;
	cd->pclass1 = malloc(256 * sizeof(*cd->pclass1));
	cd->pclass2 = malloc(size);
	if (!cd->pclass1 || !cd->pclass2)
		return false;
	*mem += 256 * sizeof(*cd->pclass1) + size;
	for (uint32_t c = 0; c < nclass; c++)
		cd->pclass2[c] = (uint8_t)c;
	uint32_t off = nclass;
	for (uint32_t h = 0; h < 256; h++) {
		if (!split[h]) {
			cd->pclass1[h] = port_class(bounds, nb, h << 8) << 8;
			continue;
		}
		for (uint32_t l = 0; l < 256; l++)
			cd->pclass2[off + l] = (uint8_t)port_class(bounds, nb, h << 8 | l);
		cd->pclass1[h] = off << 8 | 0xff;
		off += 256;
	}
	/* TCP's classes, UDP's, then ICMP and any other protocol one each */
	cd->pentry[SN_PROTO_TCP] = 0xffff;
	cd->pentry[SN_PROTO_UDP] = nclass << 16 | 0xffff;
	cd->pentry[SN_PROTO_ICMP] = 2 * nclass << 16;
	cd->pentry[SN_PROTO_ANY] = (2 * nclass + 1) << 16;
	cd->rowlen = (2 * nclass + 2 + 1) / 2;
	return true;
}

static void fill_rows(struct cdir *cd, const uint32_t *bounds, int nb);

/* Compiles a direction, with verdict rows when rows is set and the ports allow them; *rows_full
 * tells that it failed for the rows alone (the pool would outgrow ROW_POOL_WORDS). */
static bool compile_dir_rows(struct cdir *cd, const struct sn_dir_policy *dp, size_t *mem,
			     bool rows, bool *rows_full)
{
	cd->mode = dp->mode;
	cd->nrules = dp->nrules;
	size_t ncidr = 0, nport = 0, nname = 0;
	for (size_t i = 0; i < dp->nrules; i++) {
		nport += dp->rules[i].nports;
		for (size_t j = 0; j < dp->rules[i].npeers; j++)
			if (dp->rules[i].peers[j].kind == SN_ENTRY_CIDR)
				ncidr++;
			else
				nname++;
	}
	cd->rules = calloc(dp->nrules + 1, sizeof(*cd->rules));
	cd->render = calloc(dp->nrules + 1, sizeof(*cd->render));
	cd->cidrs = malloc((ncidr + 1) * sizeof(*cd->cidrs));
	cd->ports = malloc((nport + 1) * sizeof(*cd->ports));
	struct name_item *exact = malloc((nname + 1) * sizeof(*exact));
	struct name_item *wild = malloc((nname + 1) * sizeof(*wild));
	uint32_t *any_dest = malloc((dp->nrules + 1) * sizeof(*any_dest));
	uint32_t *any_name = malloc((dp->nrules + 1) * sizeof(*any_name));
	uint32_t *named = malloc((dp->nrules + 1) * sizeof(*named));
	struct pool_builder pb = {0};
	bool ok = cd->rules && cd->render && cd->cidrs && cd->ports && exact && wild && any_dest &&
		  any_name && named;
	if (!ok)
		goto out;
	*mem += (dp->nrules + 1) * (sizeof(*cd->rules) + sizeof(*cd->render)) +
		(ncidr + 1) * sizeof(*cd->cidrs) + (nport + 1) * sizeof(*cd->ports);
	size_t nexact = 0, nwild = 0, nany_dest = 0, nany_name = 0, nnamed = 0;
	size_t co = 0, po = 0;
	for (size_t i = 0; i < dp->nrules; i++) {
		const struct sn_rule *r = &dp->rules[i];
		struct sn_rule_render *rr = &cd->render[i];
		struct crule *cr = &cd->rules[i];
		rr->action = r->action;
		rr->proto = r->proto;
		rr->any_dest = r->peers == NULL;
		if (rr->any_dest)
			any_dest[nany_dest++] = (uint32_t)i;
		/* addresses, by family and by host/prefix: hosts4, nets4, hosts6, nets6 */
		struct sn_cidr *base = cd->cidrs + co;
		size_t counts[4] = {0};
		for (int pass = 0; pass < 4; pass++) {
			int fam = pass < 2 ? AF_INET : AF_INET6;
			unsigned full = fam == AF_INET ? 32 : 128;
			bool host = pass % 2 == 0;
			struct sn_cidr *start = cd->cidrs + co;
			for (size_t j = 0; j < r->npeers; j++) {
				const struct sn_entry *e = &r->peers[j];
				if (e->kind == SN_ENTRY_CIDR && e->cidr.family == fam &&
				    (e->cidr.plen == full) == host)
					cd->cidrs[co++] = e->cidr;
			}
			counts[pass] = (size_t)(cd->cidrs + co - start);
		}
		/* drop hosts covered by a prefix of the same rule, and nested prefixes */
		struct sn_cidr *h4 = base, *n4 = base + counts[0], *h6 = n4 + counts[1],
			       *n6 = h6 + counts[2];
		counts[1] = disjoint_prefixes(n4, counts[1]);
		counts[3] = disjoint_prefixes(n6, counts[3]);
		for (int fam = 0; fam < 2; fam++) {
			struct sn_cidr *h = fam ? h6 : h4, *nets = fam ? n6 : n4;
			size_t *hc = &counts[fam ? 2 : 0], nn = counts[fam ? 3 : 1];
			qsort(h, *hc, sizeof(*h), cidr_sort_cmp);
			size_t w = 0;
			for (size_t j = 0; j < *hc; j++) {
				bool covered = false;
				for (size_t lo = 0, hi = nn; lo < hi && !covered;) {
					/* nets are sorted and disjoint: find the last start <= host */
					size_t mid = (lo + hi) / 2;
					if (memcmp(nets[mid].addr, h[j].addr, 16) <= 0) {
						covered = sn_cidr_contains(&nets[mid], h[j].family,
									   h[j].addr);
						lo = mid + 1;
					} else {
						hi = mid;
					}
				}
				if (!covered)
					h[w++] = h[j];
			}
			*hc = w;
		}
		rr->hosts4 = h4, rr->nhosts4 = counts[0];
		rr->nets4 = n4, rr->nnets4 = counts[1];
		rr->hosts6 = h6, rr->nhosts6 = counts[2];
		rr->nets6 = n6, rr->nnets6 = counts[3];
		/* names */
		bool has_names = false;
		for (size_t j = 0; j < r->npeers; j++) {
			const struct sn_entry *e = &r->peers[j];
			if (e->kind == SN_ENTRY_NAME)
				exact[nexact++] = (struct name_item){e->name, (uint32_t)i};
			else if (e->kind == SN_ENTRY_WILDCARD)
				wild[nwild++] = (struct name_item){e->name, (uint32_t)i};
			else if (e->kind == SN_ENTRY_ANY_NAME && !(nany_name &&
								   any_name[nany_name - 1] == i))
				any_name[nany_name++] = (uint32_t)i;
			has_names |= e->kind != SN_ENTRY_CIDR;
		}
		rr->has_names = has_names;
		if (has_names)
			named[nnamed++] = (uint32_t)i;
		/* ports */
		if (r->ports) {
			memcpy(cd->ports + po, r->ports, r->nports * sizeof(*r->ports));
			rr->ports = cd->ports + po;
			rr->nports = merge_ports(cd->ports + po, r->nports);
			po += r->nports;
		}
		cr->action = (uint8_t)r->action;
		cr->proto = (uint8_t)r->proto;
		cr->terminal = !r->ports && r->proto == SN_PROTO_ANY;
		cr->ports = rr->ports;
		cr->nports = (uint32_t)rr->nports;
	}
	uint32_t bounds[MAX_PORT_CLASSES - 1];
	int nb = rows ? port_bounds(cd, bounds) : -1;
	if ((nb >= 0 && !port_classes(cd, bounds, nb, mem)) ||
	    !pb_init(&pb, cd->rowlen, cd->rowlen ? ROW_POOL_WORDS : SIZE_MAX)) {
		ok = false;
		goto out;
	}
	cd->any_dest = pb_intern(&pb, any_dest, (uint32_t)nany_dest);
	cd->any_name = pb_intern(&pb, any_name, (uint32_t)nany_name);
	cd->named = pb_intern(&pb, named, (uint32_t)nnamed);
	cd->first_named = cd->named ? pb.v[cd->named + cd->rowlen + 1] : UINT32_MAX;
	ok = !pb.nomem && build_family(cd, &pb, AF_INET, mem) &&
	     build_family(cd, &pb, AF_INET6, mem) && build_ntab(&cd->exact, exact, nexact, any_name, nany_name, &pb, mem) &&
	     build_ntab(&cd->wild, wild, nwild, any_name, nany_name, &pb, mem);
	if (ok) {
		uint32_t *fit = realloc(pb.v, pb.n * sizeof(*pb.v));
		cd->pool = fit ? fit : pb.v;
		cd->npool = pb.n;
		pb.v = NULL;
		*mem += cd->npool * sizeof(*cd->pool);
		fill_rows(cd, bounds, nb);
	}
	*rows_full = pb.full;
out:
	free(pb.v);
	free(pb.ht);
	free(exact);
	free(wild);
	free(any_dest);
	free(any_name);
	free(named);
	return ok;
}

static void lpm_clear(struct lpm *m)
{
	free(m->rec4);
	free(m->rec6);
	free(m->starts4);
	free(m->starts6);
	free(m->sets16);
	free(m->sets32);
	free(m->l1);
	free(m->grp);
	free(m->wide);
	free(m->big);
}

static void cdir_clear(struct cdir *cd)
{
	free(cd->rules);
	free(cd->render);
	free(cd->cidrs);
	free(cd->ports);
	free(cd->pool);
	free(cd->pclass1);
	free(cd->pclass2);
	lpm_clear(&cd->v4);
	lpm_clear(&cd->v6);
	free(cd->exact.v);
	free(cd->exact.ctrl);
	free(cd->exact.names);
	free(cd->wild.v);
	free(cd->wild.ctrl);
	free(cd->wild.names);
}

static bool compile_dir(struct cdir *cd, const struct sn_dir_policy *dp, size_t *mem)
{
	size_t mem0 = *mem;
	bool full = false;
	if (compile_dir_rows(cd, dp, mem, true, &full))
		return true;
	if (!full)
		return false;
	/* the rows would take the pool past ROW_POOL_WORDS: again without them */
	cdir_clear(cd);
	memset(cd, 0, sizeof(*cd));
	*mem = mem0;
	return compile_dir_rows(cd, dp, mem, false, &full);
}

struct sn_snapshot *sn_snapshot_compile(const struct sn_policy *p)
{
	struct sn_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);
	s->memory = sizeof(*s);
	if (!compile_dir(&s->dir[SN_EGRESS], &p->egress, &s->memory) ||
	    !compile_dir(&s->dir[SN_INGRESS], &p->ingress, &s->memory)) {
		s->refs = 1;
		sn_snapshot_unref(s);
		return NULL;
	}
	return s;
}

struct sn_snapshot *sn_snapshot_ref(struct sn_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void sn_snapshot_unref(struct sn_snapshot *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	cdir_clear(&s->dir[0]);
	cdir_clear(&s->dir[1]);
	free(s);
}

size_t sn_snapshot_memory(const struct sn_snapshot *s)
{
	return s->memory;
}

size_t sn_snapshot_nrules(const struct sn_snapshot *s, enum sn_dir dir)
{
	return s->dir[dir].nrules;
}

enum sn_mode sn_snapshot_mode(const struct sn_snapshot *s, enum sn_dir dir)
{
	return s->dir[dir].mode;
}

const struct sn_rule_render *sn_snapshot_rule(const struct sn_snapshot *s, enum sn_dir dir,
					      size_t i)
{
	return i < s->dir[dir].nrules ? &s->dir[dir].render[i] : NULL;
}

/* ---- decide ---- */

#define MAX_LISTS 132 /* exact + "*" + one per label of a 253-byte name + any-dest + address */

struct cursor {
	const uint32_t *p, *end;
	bool definite; /* a rule from this list matches the destination for sure */
};

static bool port_match(const struct crule *r, uint16_t port)
{
	if (!r->ports)
		return true;
	const struct sn_port_range *v = r->ports;
	size_t lo = 0, hi = r->nports;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].hi < port)
			lo = mid + 1;
		else if (v[mid].lo > port)
			hi = mid;
		else
			return true;
	}
	return false;
}

static bool proto_port_match(const struct crule *r, enum sn_proto proto, uint16_t port)
{
	if (r->proto != SN_PROTO_ANY && r->proto != proto)
		return false;
	if (r->ports)
		return (proto == SN_PROTO_TCP || proto == SN_PROTO_UDP) && port_match(r, port);
	return true;
}

/* The list at pool offset off: its count, then its rules. */
static inline const uint32_t *list_at(const struct cdir *cd, uint32_t off)
{
	return cd->pool + off + cd->rowlen;
}

static void add_list(const struct cdir *cd, struct cursor *c, size_t *n, uint32_t off,
		     bool definite)
{
	if (!off || *n >= MAX_LISTS)
		return;
	const uint32_t *l = list_at(cd, off);
	c[*n] = (struct cursor){l + 1, l + 1 + *l, definite};
	(*n)++;
}

/* Name lookups run in two phases so that their cache misses overlap with each other:
 * name_probes() hashes the suffixes worth looking up (those with as many labels as
 * some pattern has) and prefetches their slots; add_name_lists() then reads them. */
struct name_probe {
	const struct ntab *t;
	const char *s;
	size_t len;
	uint64_t h;
};

/* One pass over name: lower-cases it into buf (one trailing dot dropped, NAME_PAD zero bytes
 * after it), validates it and notes where its dots are; then hashes the suffixes worth looking up
 * (those with as many labels as some pattern has) and prefetches their slots. Returns the number of
 * probes, -1 when name is not a valid domain name, -2 when more than cap probes are needed. It
 * reads sixteen bytes at a time (SSE2, part of every x86-64), and branches on the dots alone. */
#define MAX_PROBES 128 /* a 253-byte name has at most 127 labels */
#define NAME_BUF (256 + NAME_PAD)

/* Adds the probe of table t for the len bytes at s and fetches its slot; false when cap probes
 * are there already. */
HOT bool add_probe(struct name_probe *pr, int *k, int cap, const struct ntab *t, const char *s,
		   size_t len)
{
	if (*k == cap)
		return false;
	uint64_t h = nhash(s, len);
	pr[(*k)++] = (struct name_probe){t, s, len, h};
	/* where the name is if it is there (usually its first slot, or the next): fetched at once,
	 * rather than after its control bytes, so that the misses of several probes overlap */
	__builtin_prefetch(&t->v[h & (t->cap - 1)]);
	return true;
}

#ifdef SN_SSE2_NAMES
/* the bytes of v in [lo, hi] (unsigned), as 0xff: v - lo, saturated down by hi - lo, is zero */
static inline __m128i in_range(__m128i v, unsigned char lo, unsigned char hi)
{
	__m128i d = _mm_subs_epu8(_mm_sub_epi8(v, _mm_set1_epi8((char)lo)),
				  _mm_set1_epi8((char)(hi - lo)));
	return _mm_cmpeq_epi8(d, _mm_setzero_si128());
}

/* The n < 16 bytes at s as the low bytes of a vector, the rest zero; every load stays inside s. */
static inline __m128i load_short(const char *s, size_t n)
{
	uint64_t lo, hi = 0;
	uint32_t a, b;
	if (n >= 8) {
		lo = load64(s);
		if (n > 8)
			hi = load64(s + n - 8) >> (8 * (16 - n));
	} else if (n >= 4) {
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		lo = a | (uint64_t)b << (8 * (n - 4));
	} else {
		lo = (uint8_t)s[0] | (uint64_t)(uint8_t)s[n / 2] << (8 * (n / 2)) |
		     (uint64_t)(uint8_t)s[n - 1] << (8 * (n - 1));
	}
	return _mm_set_epi64x((long long)hi, (long long)lo);
}
#endif

#ifdef SN_SSE2_NAMES
/* Lower-cases the sixteen bytes v into buf and validates them (bad gets a bit for every byte of
 * live outside letters, digits, '-', '_' and '.'); returns the dots of live as a mask. */
static inline unsigned scan16(__m128i v, unsigned live, char *buf, unsigned *bad)
{
	/* a letter of either case is a byte that 0x20 turns into 'a'..'z' (no other byte does) */
	__m128i letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z');
	v = _mm_or_si128(v, _mm_and_si128(letter, _mm_set1_epi8(0x20)));
	__m128i dots = _mm_cmpeq_epi8(v, _mm_set1_epi8('.'));
	/* '-', '.', '/' and the digits are 0x2d..0x39: all of them but '/' */
	__m128i punct = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('/')),
					 in_range(v, '-', '9'));
	__m128i ok = _mm_or_si128(_mm_or_si128(letter, punct),
				  _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
	*bad |= ~(unsigned)_mm_movemask_epi8(ok) & live; /* also every byte of 0x80 and up */
	_mm_storeu_si128((__m128i *)buf, v);
	return (unsigned)_mm_movemask_epi8(dots) & live;
}

/* Scans the block of name (n bytes) that starts at i, a multiple of sixteen, the bytes before it
 * being scanned already, into buf (scan16); returns its dots as a mask of bits from *at. Blocks
 * are read from name itself (copying it first would cost a stall on every load); the last block is
 * the name's last sixteen bytes, of which only those not yet seen count, or, for a shorter name,
 * the name padded with zeros. */
static inline unsigned scan_block(const char *name, size_t n, size_t i, char *buf, unsigned *bad,
				  size_t *at)
{
	*at = i;
	if (n - i >= 16)
		return scan16(_mm_loadu_si128((const __m128i *)(name + i)), 0xffff, buf + i, bad);
	if (n >= 16) {
		*at = n - 16;
		return scan16(_mm_loadu_si128((const __m128i *)(name + *at)),
			      0xffff << (i - *at) & 0xffff, buf + *at, bad);
	}
	return scan16(load_short(name, n), (1u << n) - 1, buf, bad);
}

/* name_probes() for a name of up to 64 bytes: its dots fit one word, whose bits then tell the
 * labels' sizes (no label of such a name is over 63 bytes but a whole 64-byte one), and whose
 * dots, taken from the last, end suffixes of one label more each. */
HOT int name_probes_short(const struct cdir *cd, const char *name, size_t n, char *buf,
			  struct name_probe *pr, int cap)
{
	uint64_t dm = 0;
	unsigned bad = 0;
	size_t i = 0;
	for (; i + 16 <= n; i += 16)
		dm |= (uint64_t)scan16(_mm_loadu_si128((const __m128i *)(name + i)), 0xffff,
				       buf + i, &bad) << i;
	if (i < n) {
		size_t at;
		uint64_t m = scan_block(name, n, i, buf, &bad, &at);
		dm |= m << at;
	}
	memset(buf + n, 0, NAME_PAD);
	/* a bad byte, an empty first, last or inner label, one label of 64 bytes */
	if (bad || (dm & 1) || (dm >> (n - 1) & 1) || (dm & dm >> 1) || (n == 64 && !dm))
		return -1;
	int k = 0;
	unsigned labels = 1;
	for (; dm; dm &= ~((uint64_t)1 << (63 - __builtin_clzll(dm))), labels++)
		if (cd->wild.labels >> (labels - 1) & 1) { /* the suffix after this dot */
			size_t d = (size_t)(63 - __builtin_clzll(dm));
			if (!add_probe(pr, &k, cap, &cd->wild, buf + d + 1, n - d - 1))
				return -2;
		}
	if (cd->exact.labels >> (labels - 1) & 1 && !add_probe(pr, &k, cap, &cd->exact, buf, n))
		return -2;
	return k;
}
#endif

HOT int name_probes(const struct cdir *cd, const char *name, char *buf, struct name_probe *pr,
		    int cap)
{
	size_t n = strnlen(name, 256);
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
#ifdef SN_SSE2_NAMES
	if (n <= 64)
		return name_probes_short(cd, name, n, buf, pr, cap);
#endif
	uint8_t dot[256];
	size_t nd = 0, start = 0; /* start: where the current label begins */
	unsigned bad = 0;
#ifdef SN_SSE2_NAMES
	for (size_t i = 0, at; i < n; i += 16) {
		for (unsigned dm = scan_block(name, n, i, buf, &bad, &at); dm; dm &= dm - 1) {
			size_t d = at + (size_t)__builtin_ctz(dm); /* labels of 1 to 63 bytes */
			bad |= d == start || d - start > 63;
			dot[nd++] = (uint8_t)d;
			start = d + 1;
		}
	}
#else
	for (size_t i = 0; i < n; i++) {
		unsigned c = (unsigned char)name[i];
		c |= (unsigned)(c >= 'A' && c <= 'Z') << 5;
		bad |= !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			 c == '.');
		buf[i] = (char)c;
		if (c == '.') { /* labels of 1 to 63 bytes */
			bad |= i == start || i - start > 63;
			dot[nd++] = (uint8_t)i;
			start = i + 1;
		}
	}
#endif
	memset(buf + n, 0, NAME_PAD);
	if (bad || n == start || n - start > 63)
		return -1;
	int k = 0;
	for (size_t d = 0; d < nd; d++) /* "*.suffix": the suffix after dot d has nd - d labels */
		if (cd->wild.labels >> label_bit(nd - d) & 1 &&
		    !add_probe(pr, &k, cap, &cd->wild, buf + dot[d] + 1, n - dot[d] - 1))
			return -2;
	if (cd->exact.labels >> label_bit(nd + 1) & 1 &&
	    !add_probe(pr, &k, cap, &cd->exact, buf, n))
		return -2;
	return k;
}

/* Adds the lists of the name entries that match: exact, every "*.suffix", and "*" (which every
 * other name list includes). */
static void add_name_lists(const struct cdir *cd, struct cursor *c, size_t *n,
			   const struct name_probe *pr, int k)
{
	size_t n0 = *n;
	for (int i = 0; i < k; i++)
		add_list(cd, c, n, ntab_get(pr[i].t, pr[i].s, pr[i].len, pr[i].h), true);
	if (*n == n0)
		add_list(cd, c, n, cd->any_name, true);
}

/* Pops the smallest rule index across the cursors; *definite tells whether any list that held
 * it matches the destination for sure. Returns false when all are empty. */
static bool next_rule(struct cursor *c, size_t n, uint32_t *rule, bool *definite)
{
	uint32_t best = UINT32_MAX;
	for (size_t i = 0; i < n; i++)
		if (c[i].p < c[i].end && *c[i].p < best)
			best = *c[i].p;
	if (best == UINT32_MAX)
		return false;
	*definite = false;
	for (size_t i = 0; i < n; i++)
		if (c[i].p < c[i].end && *c[i].p == best) {
			*definite |= c[i].definite;
			c[i].p++;
		}
	*rule = best;
	return true;
}

static const char reason_rule[] = "the first matching rule decides",
		  reason_named[] = "a rule that matches names decides, and the connection's name "
				   "is not known",
		  reason_block[] = "no rule matched: mode block-all",
		  reason_allow[] = "no rule matched: mode allow-all";

static struct sn_decision verdict(const struct cdir *cd, uint32_t r, bool definite)
{
	if (!definite)
		return (struct sn_decision){SN_VERDICT_NEED_NAME, (int)r, reason_named};
	return (struct sn_decision){cd->rules[r].action == SN_DENY ? SN_VERDICT_DENY
								   : SN_VERDICT_ALLOW,
				    (int)r, reason_rule};
}

static struct sn_decision by_mode(const struct cdir *cd)
{
	if (cd->mode == SN_MODE_BLOCK_ALL)
		return (struct sn_decision){SN_VERDICT_DENY, SN_RULE_NONE, reason_block};
	return (struct sn_decision){SN_VERDICT_ALLOW, SN_RULE_NONE, reason_allow};
}

/* The decision over any number of lists, merged in rule order. */
static struct sn_decision decide_merge(const struct cdir *cd, const struct sn_query *q,
				       struct cursor *c, size_t n)
{
	uint32_t r;
	bool definite;
	while (next_rule(c, n, &r, &definite))
		if (proto_port_match(&cd->rules[r], q->proto, q->port))
			return verdict(cd, r, definite);
	return by_mode(cd);
}

/* The decision once the address's list a is known and its first skip rules (all before the
 * first rule with names) did not match; nprobes is -1 without a (valid) name, else pr holds the
 * name's probes. The address's list (which holds the rules without a destination) and at most one
 * list for the name (which holds those of "*") are walked side by side; a name that matches
 * several entries takes the general merge. */
HOT struct sn_decision decide(const struct cdir *cd, const struct sn_query *q, uint32_t a,
			      uint32_t skip, int nprobes, const struct name_probe *pr)
{
	uint32_t b = q->name ? 0 : cd->named;
	bool bdef = false;
	if (nprobes >= 0) {
		b = cd->any_name, bdef = true;
		for (int i = 0, hits = 0; i < nprobes; i++) {
			uint32_t l = ntab_get(pr[i].t, pr[i].s, pr[i].len, pr[i].h);
			if (l && hits++) {
				struct cursor c[MAX_LISTS];
				size_t n = 0;
				add_list(cd, c, &n, a, true);
				add_name_lists(cd, c, &n, pr, nprobes);
				return decide_merge(cd, q, c, n);
			}
			b = l ? l : b;
		}
	}
	const uint32_t *la = list_at(cd, a), *lb = list_at(cd, b);
	const uint32_t *x = la + 1 + skip, *xe = la + 1 + *la;
	const uint32_t *y = lb + 1, *ye = y + *lb;
	if (x == xe) { /* usual: the address's rules were all before the first with names */
		for (; y < ye; y++)
			if (proto_port_match(&cd->rules[*y], q->proto, q->port))
				return verdict(cd, *y, bdef);
		return by_mode(cd);
	}
	while (x < xe || y < ye) {
		uint32_t rx = x < xe ? *x : UINT32_MAX, ry = y < ye ? *y : UINT32_MAX;
		uint32_t r = rx < ry ? rx : ry;
		bool definite = rx == r || bdef;
		x += rx == r;
		y += ry == r;
		if (proto_port_match(&cd->rules[r], q->proto, q->port))
			return verdict(cd, r, definite);
	}
	return by_mode(cd);
}

static const struct cdir *query_dir(const struct sn_snapshot *s, const struct sn_query *q)
{
	return &s->dir[q->dir == SN_INGRESS ? SN_INGRESS : SN_EGRESS];
}

/* A named query's part of sn_decide(), apart so that a query without a name needs no room for
 * the name's probes. */
static __attribute__((noinline)) struct sn_decision
decide_named(const struct cdir *cd, const struct sn_query *q, uint32_t a, uint32_t skip)
{
	char buf[NAME_BUF];
	struct name_probe pr[MAX_PROBES];
	return decide(cd, q, a, skip, name_probes(cd, q->name, buf, pr, MAX_PROBES), pr);
}

/* A query without a name, from the verdict row before its address's list a (cd->rowlen > 0,
 * q->proto < 4). */
HOT struct sn_decision by_row(const struct cdir *cd, const struct sn_query *q, uint32_t a)
{
	uint32_t p1 = cd->pclass1[q->port >> 8], pe = cd->pentry[q->proto];
	uint32_t i = (pe >> 16) + (cd->pclass2[(p1 >> 8) + (q->port & p1 & 0xff)] & pe);
	uint16_t e;
	memcpy(&e, (const char *)(cd->pool + a) + 2 * i, sizeof(e));
	const struct row_out *o = &cd->row_out[e >> ROW_KIND];
	return (struct sn_decision){o->verdict, (int)(e & ((1u << ROW_KIND) - 1)) - 1, o->reason};
}

/* Sets what a row entry's kind stands for and, when the lists have rows, writes every list's: the
 * decision for a query without a name of each class, its port the first of its class. */
static void fill_rows(struct cdir *cd, const uint32_t *bounds, int nb)
{
	struct sn_decision m = by_mode(cd);
	cd->row_out[SN_VERDICT_ALLOW] = (struct row_out){SN_VERDICT_ALLOW, reason_rule};
	cd->row_out[SN_VERDICT_DENY] = (struct row_out){SN_VERDICT_DENY, reason_rule};
	cd->row_out[SN_VERDICT_NEED_NAME] = (struct row_out){SN_VERDICT_NEED_NAME, reason_named};
	cd->row_out[ROW_MODE] = (struct row_out){m.verdict, m.reason};
	for (uint32_t off = 0; cd->rowlen && off < cd->npool;
	     off += cd->rowlen + 1 + *list_at(cd, off)) {
		char *row = (char *)(cd->pool + off);
		for (unsigned proto = 0; proto < 4; proto++)
			for (int c = 0; c <= (cd->pentry[proto] & 0xffff ? nb : 0); c++) {
				struct sn_query q = {.port = (uint16_t)(c ? bounds[c - 1] : 0),
						     .proto = (enum sn_proto)proto};
				struct sn_decision d = decide(cd, &q, off, 0, -1, NULL);
				unsigned kind = d.rule == SN_RULE_NONE ? ROW_MODE : d.verdict;
				uint16_t e = (uint16_t)(kind << ROW_KIND | (unsigned)(d.rule + 1));
				memcpy(row + 2 * ((cd->pentry[proto] >> 16) + c), &e, sizeof(e));
			}
	}
}

struct sn_decision sn_decide(const struct sn_snapshot *s, const struct sn_query *q)
{
	const struct cdir *cd = query_dir(s, q);
	uint32_t a = q->family == AF_INET6 ? lpm_lookup(&cd->v6, AF_INET6, q->addr)
					   : lpm_lookup(&cd->v4, AF_INET, q->addr);
	if (!q->name && cd->rowlen && (unsigned)q->proto < 4)
		return by_row(cd, q, a);
	/* A rule before the first with names decides whatever the name is: the name is read only
	 * when no such rule of the address's list matches (while the address's cache misses are
	 * awaited, the CPU runs ahead into the name). */
	const uint32_t *l = list_at(cd, a), *x = l + 1;
	uint32_t skip = 0;
	for (; skip < *l && x[skip] < cd->first_named; skip++)
		if (proto_port_match(&cd->rules[x[skip]], q->proto, q->port))
			return verdict(cd, x[skip], true);
	if (q->name)
		return decide_named(cd, q, a, skip);
	return decide(cd, q, a, skip, -1, NULL);
}

bool sn_dns_allowed(const struct sn_snapshot *s, const char *name, int *rule)
{
	const struct cdir *cd = &s->dir[SN_EGRESS];
	if (rule)
		*rule = SN_RULE_NONE;
	char buf[NAME_BUF];
	struct name_probe pr[MAX_PROBES];
	int nprobes = name ? name_probes(cd, name, buf, pr, MAX_PROBES) : -1;
	if (nprobes < 0)
		return false;
	struct cursor c[MAX_LISTS];
	size_t n = 0;
	add_list(cd, c, &n, cd->any_dest, true);
	add_name_lists(cd, c, &n, pr, nprobes);
	uint32_t r;
	bool definite;
	while (next_rule(c, n, &r, &definite)) {
		const struct crule *cr = &cd->rules[r];
		if (cr->action == SN_DENY && !cr->terminal)
			continue; /* a narrower deny: the name may be reachable on other ports */
		if (rule)
			*rule = (int)r;
		return cr->action == SN_ALLOW;
	}
	return cd->mode == SN_MODE_ALLOW_ALL;
}

int sn_snapshot_name_rules(const struct sn_snapshot *s, const char *name, uint32_t *out,
			   size_t max)
{
	const struct cdir *cd = &s->dir[SN_EGRESS];
	char buf[NAME_BUF];
	struct name_probe pr[MAX_PROBES];
	int nprobes = name ? name_probes(cd, name, buf, pr, MAX_PROBES) : -1;
	if (nprobes < 0)
		return -1;
	struct cursor c[MAX_LISTS];
	size_t n = 0, k = 0;
	add_name_lists(cd, c, &n, pr, nprobes);
	uint32_t r;
	bool definite;
	while (k < max && next_rule(c, n, &r, &definite))
		if (cd->rules[r].action == SN_ALLOW)
			out[k++] = r;
	return (int)k;
}

const char *sn_verdict_name(enum sn_verdict v)
{
	switch (v) {
	case SN_VERDICT_ALLOW: return "allow";
	case SN_VERDICT_DENY: return "deny";
	case SN_VERDICT_NEED_NAME: return "need-name";
	}
	return "?";
}

/* ---- partitions for the kernel ---- */

struct part_out {
	struct sn_part_elem *v;
	size_t n, cap;
	bool nomem;
};

static void part_emit(struct part_out *o, int family, u128 lo, u128 hi, int cls, uint16_t plo,
		      uint16_t phi, uint32_t rule)
{
	if (o->nomem)
		return;
	if (o->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 256;
		struct sn_part_elem *nv = realloc(o->v, nc * sizeof(*nv));
		if (!nv) {
			o->nomem = true;
			return;
		}
		o->v = nv;
		o->cap = nc;
	}
	struct sn_part_elem *e = &o->v[o->n++];
	memset(e, 0, sizeof(*e));
	int bytes = family == AF_INET6 ? 16 : 4;
	for (int i = bytes - 1; i >= 0; i--) {
		e->lo[i] = (uint8_t)lo;
		e->hi[i] = (uint8_t)hi;
		lo >>= 8;
		hi >>= 8;
	}
	e->cls = (uint8_t)cls;
	e->plo = plo;
	e->phi = phi;
	e->rule = rule;
}

struct prange {
	uint32_t lo, hi;
};

/* The decisions for one address segment whose covering rules, in order, are list[0..k). */
static void part_segment(const struct cdir *cd, const uint32_t *list, size_t k, int family,
			 u128 lo, u128 hi, struct part_out *o)
{
	static const int port_cls[2] = {SN_PART_TCP, SN_PART_UDP};
	static const enum sn_proto port_proto[2] = {SN_PROTO_TCP, SN_PROTO_UDP};
	for (int c = 0; c < 2; c++) {
		/* the ports no earlier rule took, as sorted disjoint ranges */
		struct prange un[512], next[512];
		size_t nun = 1;
		un[0] = (struct prange){0, 65535};
		for (size_t i = 0; i < k && nun; i++) {
			const struct crule *r = &cd->rules[list[i]];
			if (r->proto != SN_PROTO_ANY && r->proto != port_proto[c])
				continue;
			if (!r->ports) {
				for (size_t u = 0; u < nun; u++)
					part_emit(o, family, lo, hi, port_cls[c], (uint16_t)un[u].lo,
						  (uint16_t)un[u].hi, list[i]);
				nun = 0;
				break;
			}
			/* un & ports -> this rule; un - ports -> what is left */
			size_t nn = 0;
			for (size_t u = 0; u < nun; u++) {
				uint32_t at = un[u].lo;
				for (size_t p = 0; p < r->nports && at <= un[u].hi; p++) {
					uint32_t plo = r->ports[p].lo, phi = r->ports[p].hi;
					if (phi < at || plo > un[u].hi)
						continue;
					if (plo > at && nn < 512)
						next[nn++] = (struct prange){at, plo - 1};
					uint32_t a = plo > at ? plo : at;
					uint32_t b = phi < un[u].hi ? phi : un[u].hi;
					part_emit(o, family, lo, hi, port_cls[c], (uint16_t)a, (uint16_t)b,
						  list[i]);
					at = b + 1;
				}
				if (at <= un[u].hi && nn < 512)
					next[nn++] = (struct prange){at, un[u].hi};
			}
			if (nn == 512) {
				/* too fragmented to track: fail rather than be wrong */
				o->nomem = true;
				return;
			}
			memcpy(un, next, nn * sizeof(*un));
			nun = nn;
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct crule *r = &cd->rules[list[i]];
		if (!r->ports && (r->proto == SN_PROTO_ANY || r->proto == SN_PROTO_ICMP)) {
			part_emit(o, family, lo, hi, SN_PART_ICMP, 0, 0, list[i]);
			break;
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct crule *r = &cd->rules[list[i]];
		if (!r->ports && r->proto == SN_PROTO_ANY) {
			part_emit(o, family, lo, hi, SN_PART_OTHER, 0, 0, list[i]);
			break;
		}
	}
}

struct part_arg {
	const struct cdir *cd;
	int family;
	struct part_out o;
};

static bool part_fn(u128 start, u128 end, const uint32_t *active, size_t nactive, void *arg)
{
	struct part_arg *a = arg;
	if (nactive)
		part_segment(a->cd, active, nactive, a->family, start, end, &a->o);
	return !a->o.nomem;
}

int sn_snapshot_partition(const struct sn_snapshot *s, enum sn_dir dir, size_t first, size_t last,
			  int family, struct sn_part_elem **out, size_t *nout)
{
	const struct cdir *cd = &s->dir[dir];
	*out = NULL;
	*nout = 0;
	if (last > cd->nrules || first > last)
		return -EINVAL;
	for (size_t r = first; r < last; r++)
		if (cd->render[r].has_names)
			return -EINVAL;
	struct part_arg a = {cd, family, {0}};
	if (!sweep(cd, family, first, last, true, part_fn, &a)) {
		free(a.o.v);
		return -ENOMEM;
	}
	*out = a.o.v;
	*nout = a.o.n;
	return 0;
}

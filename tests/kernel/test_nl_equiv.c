/* The netlink encoder (src/kernel/nlenc.c) against the text one, in the kernel: each sandbox's
 * generation is loaded as nft text through libnftables in one network namespace and as libnftnl
 * objects through elems.c in another, and `nft list table` must read the same from both, byte for
 * byte (the learned elements' remaining lifetimes aside). Then an update that replaces the
 * generation and removes the old one, both ways. Both namespaces are the process's own
 * (unshare), gone with it. Needs root: skipped (77) otherwise. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nftables/libnftables.h>

#include "elems.h"
#include "encode.h"
#include "nft_fixtures.h"
#include "render.h"

static int ns_text = -1, ns_nl = -1;

static void enter(int fd)
{
	if (setns(fd, CLONE_NEWNET))
		fail_msg("setns: %s", strerror(errno));
}

static char *nft(const char *cmd)
{
	struct nft_ctx *c = nft_ctx_new(NFT_CTX_DEFAULT);
	assert_non_null(c);
	nft_ctx_buffer_output(c);
	nft_ctx_buffer_error(c);
	if (nft_run_cmd_from_buffer(c, cmd))
		fail_msg("nft: %s\n%.2000s", nft_ctx_get_error_buffer(c), cmd);
	char *out = strdup(nft_ctx_get_output_buffer(c));
	nft_ctx_free(c);
	return out;
}

/* The table's listing without the learned elements' "expires" parts, which run on. */
static char *listing(void)
{
	char *s = nft("list table inet " SN_NFT_TABLE);
	char *w = s;
	for (const char *r = s; *r;) {
		if (strncmp(r, " expires ", 9) == 0) {
			r += 9;
			while (*r && *r != ',' && *r != ' ' && *r != '\n')
				r++;
			continue;
		}
		*w++ = *r++;
	}
	*w = 0;
	return s;
}

static struct sn_nft_config config(bool proxy)
{
	static struct sn_cidr guard[2];
	guard[0] = cidr("10.200.0.0/16");
	guard[1] = cidr("fd00:5a::/64");
	return (struct sn_nft_config){.dns_port = 15053,
	                              .proxy_port = 15001,
	                              .guard = guard,
	                              .nguard = 2,
	                              .pools = guard,
	                              .npools = 2,
	                              .proxy_enabled = proxy,
	                              .nflog_group = 5301};
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("not root: skipped\n");
		exit(77);
	}
	struct sn_nft_config cfg = config(true);
	struct sn_text t = {0};
	assert_int_equal(sn_nft_render_table(&t, &cfg), 0);
	int *fds[2] = {&ns_text, &ns_nl};
	for (int i = 0; i < 2; i++) {
		if (unshare(CLONE_NEWNET))
			fail_msg("unshare: %s", strerror(errno));
		*fds[i] = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		assert_true(*fds[i] >= 0);
		free(nft(t.s));
	}
	sn_text_clear(&t);
	return 0;
}

static void compare(const char *what)
{
	enter(ns_text);
	char *a = listing();
	enter(ns_nl);
	char *b = listing();
	if (strcmp(a, b) != 0) {
		size_t i = 0, line = 1;
		for (; a[i] && a[i] == b[i]; i++)
			line += a[i] == '\n';
		fprintf(stderr, "text:\n%s\nnetlink:\n%s\n", a, b);
		const char *la = a + i, *lb = b + i;
		while (la > a && la[-1] != '\n')
			la--, lb--;
		fprintf(stderr,
		        "%s: the listings differ at line %zu:\n text:    %.*s\n netlink: %.*s\n",
		        what, line, (int)strcspn(la, "\n"), la, (int)strcspn(lb, "\n"), lb);
		fail();
	}
	free(a);
	free(b);
}

/* Deletes sb's generation rev of s over netlink, as sandnetd does. */
static void delete_generation(struct sn_elems *e, const struct sn_nft_sandbox *sb,
                              const struct sn_snapshot *s, uint64_t rev)
{
	struct sn_nft_sandbox o = *sb;
	o.rev = rev;
	assert_int_equal(sn_elems_delete_generation(e, &o, s), 0);
}

/* Applies t in the text namespace; returns a netlink handle in the other, to do the same. */
static struct sn_elems *both_ways(struct sn_text *t)
{
	assert_false(t->failed);
	enter(ns_text);
	free(nft(t->s));
	sn_text_clear(t);
	enter(ns_nl);
	struct sn_elems *e;
	assert_int_equal(sn_elems_open(&e), 0);
	return e;
}

/* Loads generation sb->rev of s both ways (replacing old, at old_rev, when not NULL) and compares
 * the listings. */
static void load(const struct sn_nft_config *cfg, struct sn_nft_sandbox *sb,
                 const struct sn_snapshot *s, const struct sn_snapshot *old, uint64_t old_rev,
                 const char *what)
{
	struct sn_text t = {0};
	assert_int_equal(sn_nft_render_sandbox(&t, cfg, sb, s, old, old_rev), 0);
	struct sn_elems *e = both_ways(&t);
	struct sn_nl_list nl = {0};
	assert_int_equal(sn_nft_build_generation(&nl, cfg, sb, s), 0);
	char chain[128];
	snprintf(chain, sizeof(chain), "sb-%s-%llu", sb->id, (unsigned long long)sb->rev);
	int rc = sn_elems_load(e, &nl, sb, chain, old != NULL);
	if (rc)
		fail_msg("%s: loading over netlink: %s", what, strerror(-rc));
	sn_nl_list_clear(&nl);
	if (old)
		delete_generation(e, sb, old, old_rev);
	sn_elems_close(e);
	compare(what);
}

/* intervals at the edges of the key space, adjacent ones, ports to 65535, one rule alone between
 * rules with names (sets, not maps), then a run with every protocol class */
static const char *const edges =
    "egress:\n"
    "  mode: allow-all\n"
    "  rules:\n"
    "    - {action: deny, to: [a.example]}\n"
    "    - {action: deny, to: [0.0.0.0/1, 240.0.0.0/4, 192.168.0.0/25, 192.168.0.128/25,"
    " \"::/3\", \"ffff::/16\"], ports: [1, \"10-20\", \"60000-65535\"]}\n"
    "    - {action: allow, to: [b.example, 198.51.100.7, \"2001:db8::7\"], ports: [8443]}\n"
    "    - {action: deny, to: [203.0.113.0/24], protocol: udp, ports: [\"1000-2000\"]}\n"
    "    - {action: allow, to: [203.0.113.0/25, \"2001:db8:5::/48\"], protocol: tcp}\n"
    "    - {action: deny, to: [\"198.18.0.0/15\"], protocol: icmp}\n"
    "    - {action: deny, to: [\"100.64.0.0/10\"]}\n"
    "    - {action: allow, ports: [\"1-65535\"]}\n";

/* Removes sb (generation sb->rev of s) both ways and compares the listings. */
static void removed(const struct sn_nft_sandbox *sb, const struct sn_snapshot *s, const char *what)
{
	struct sn_text t = {0};
	assert_int_equal(sn_nft_render_delete(&t, sb, s), 0);
	struct sn_elems *e = both_ways(&t);
	assert_int_equal(sn_elems_remove(e, sb), 0);
	delete_generation(e, sb, s, sb->rev);
	sn_elems_close(e);
	compare(what);
}

static void test_generations(void **state)
{
	(void)state;
	struct sn_nft_config cfg = config(true);
	struct sn_snapshot *empty = compile("{}"), *m = compile(mixed_policy), *ed = compile(edges);

	struct sn_nft_sandbox sb = sandbox("eq1", "sh-eq1", 1);
	load(&cfg, &sb, empty, NULL, 0, "empty policy");
	sb.rev = 2;
	load(&cfg, &sb, m, empty, 1, "update to the mixed policy");
	sb.rev = 3;
	struct sn_nft_learned learned[3] = {{.rule = 1, .family = AF_INET, .timeout_s = 300},
	                                    {.rule = 1, .family = AF_INET, .timeout_s = 30},
	                                    {.rule = 1, .family = AF_INET6, .timeout_s = 60}};
	inet_pton(AF_INET, "140.82.121.4", learned[0].addr);
	inet_pton(AF_INET, "185.199.108.133", learned[1].addr);
	inet_pton(AF_INET6, "2606:50c0:8000::154", learned[2].addr);
	sb.learned = learned;
	sb.nlearned = 3;
	load(&cfg, &sb, m, m, 2, "learned addresses carried");
	sb.learned = NULL;
	sb.nlearned = 0;
	sb.rev = 4;
	load(&cfg, &sb, ed, m, 3, "edges of the key space");
	sb.rev = 5;
	sb.paused = true;
	load(&cfg, &sb, ed, ed, 4, "paused");
	sb.rev = 6;
	sb.paused = false;
	sb.was_paused = true;
	load(&cfg, &sb, m, ed, 5, "resumed");
	sb.rev = 7;
	sb.paused = true;
	sb.was_paused = false;
	load(&cfg, &sb, m, m, 6, "paused again");
	removed(&sb, m, "deleted while paused");

	struct sn_nft_config closed = config(false);
	struct sn_nft_sandbox v4 = sandbox("eq2", "sh-eq2", 1);
	v4.has6 = false;
	load(&closed, &v4, m, NULL, 0, "no IPv6, no proxy");

	/* big: prefixes split into hash sets per length, hosts in a hash set, a map of 3,000
	 * rules' elements (several messages) */
	size_t cap = 1 << 20, w = 0;
	char *doc = malloc(cap);
	w += (size_t)snprintf(doc + w, cap - w,
	                      "{\"egress\":{\"mode\":\"block-all\",\"rules\":["
	                      "{\"action\":\"allow\",\"to\":[\"x.example\",");
	for (int i = 0; i < 600; i++)
		w += (size_t)snprintf(doc + w, cap - w, "\"100.%d.%d.0/24\",", i / 200, i % 200);
	for (int i = 0; i < 300; i++)
		w += (size_t)snprintf(doc + w, cap - w, "\"2001:db8:%x::/48\",\"101.%d.%d.9\",", i,
		                      i / 200, i % 200);
	w += (size_t)snprintf(doc + w, cap - w, "\"172.16.0.0/20\"]}");
	for (int i = 0; i < 3000; i++)
		w += (size_t)snprintf(
		    doc + w, cap - w,
		    ",{\"action\":\"%s\",\"to\":[\"102.%d.%d.0/24\"],\"ports\":[%d]}",
		    i % 3 ? "allow" : "deny", i / 200, i % 200, 1000 + i);
	snprintf(doc + w, cap - w, "]}}");
	struct sn_snapshot *big = compile(doc);
	free(doc);
	struct sn_nft_sandbox b = sandbox("eq3", "sh-eq3", 1);
	load(&cfg, &b, big, NULL, 0, "big policy");
	b.rev = 2;
	load(&cfg, &b, empty, big, 1, "big policy replaced");
	removed(&b, empty, "deleted");

	sn_snapshot_unref(big);
	sn_snapshot_unref(empty);
	sn_snapshot_unref(m);
	sn_snapshot_unref(ed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_generations)};
	return cmocka_run_group_tests(tests, setup, NULL);
}

/* Golden-file tests of the nftables renderer (src/kernel/render.c): the table skeleton, a sandbox
 * on an empty policy, a policy with every kind of rule, an update that retires the older revision,
 * a paused sandbox, a delete. SN_UPDATE_GOLDEN=1 rewrites tests/golden/nft/. The files are also
 * checked against the kernel by tests/kernel/nft_check.sh. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libnftnl/set.h>

#include "encode.h"
#include "nft_fixtures.h"
#include "render.h"

#ifndef GOLDEN_DIR
#error GOLDEN_DIR must name tests/golden/nft
#endif

static void golden(const char *name, const struct sn_text *t)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	assert_false(t->failed);
	if (getenv("SN_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fwrite(t->s, 1, t->len, f);
		fclose(f);
		return;
	}
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("%s missing; run with SN_UPDATE_GOLDEN=1", path);
	char *want = calloc(1, 1 << 20);
	size_t n = fread(want, 1, (1 << 20) - 1, f);
	fclose(f);
	if (n != t->len || memcmp(want, t->s, n) != 0)
		fail_msg("%s differs; got:\n%s", path, t->s);
	free(want);
}

static size_t count_lines(const struct sn_text *t, const char *prefix)
{
	size_t n = 0;
	for (const char *p = t->s; p && *p;) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : p + strlen(p);
	}
	return n;
}

static struct sn_nft_config config(void)
{
	static struct sn_cidr guard[3], pools[2];
	guard[0] = cidr("10.200.0.0/16");
	guard[1] = cidr("192.0.2.10");
	guard[2] = cidr("fd00:5a::/64");
	pools[0] = guard[0];
	pools[1] = guard[2];
	return (struct sn_nft_config){.dns_port = 15053,
				      .proxy_port = 15001,
				      .guard = guard,
				      .nguard = 3,
				      .pools = pools,
				      .npools = 2,
				      .proxy_enabled = false,
				      .dns_rate = 2000,
				      .max_flows = 32768};
}

static void test_table(void **state)
{
	(void)state;
	struct sn_nft_config cfg = config();
	struct sn_text t = {0};
	assert_int_equal(sn_nft_render_table(&t, &cfg), 0);
	golden("table.nft", &t);
	sn_text_clear(&t);
	/* what the guard sets hold, as the DNS forwarder and the denial reader ask it */
	uint8_t a[16] = {0};
	static const struct {
		int family;
		const char *addr;
		bool guarded;
	} g[] = {{AF_INET, "127.0.0.1", true},       {AF_INET, "169.254.169.254", true},
		 {AF_INET, "10.200.3.4", true},      {AF_INET, "192.0.2.10", true},
		 {AF_INET, "198.51.100.1", false},   {AF_INET6, "::ffff:1.2.3.4", true},
		 {AF_INET6, "fe80::1", true},        {AF_INET6, "fd00:5a::9", true},
		 {AF_INET6, "2001:db8::1", false}};
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		assert_int_equal(inet_pton(g[i].family, g[i].addr, a), 1);
		if (sn_nft_guarded(&cfg, g[i].family, a) != g[i].guarded)
			fail_msg("%s: guarded should be %d", g[i].addr, g[i].guarded);
	}
}

static void test_sandboxes(void **state)
{
	(void)state;
	struct sn_nft_config cfg = config();
	struct sn_snapshot *empty = compile("{}"), *mixed = compile(mixed_policy);
	struct sn_nft_sandbox sb = sandbox("abc123", "sh-abc123", 1);
	struct sn_text t = {0};

	assert_int_equal(sn_nft_render_sandbox(&t, &cfg, &sb, empty, NULL, 0), 0);
	golden("sandbox-1-empty.nft", &t);
	sn_text_clear(&t);

	sb.rev = 2;
	assert_int_equal(sn_nft_render_sandbox(&t, &cfg, &sb, mixed, empty, 1), 0);
	golden("sandbox-2-mixed.nft", &t);
	sn_text_clear(&t);

	sb.rev = 3;
	cfg.proxy_enabled = true;
	assert_int_equal(sn_nft_render_sandbox(&t, &cfg, &sb, mixed, mixed, 2), 0);
	golden("sandbox-3-proxy.nft", &t);
	sn_text_clear(&t);

	sb.rev = 4;
	sb.paused = true;
	assert_int_equal(sn_nft_render_sandbox(&t, &cfg, &sb, mixed, mixed, 3), 0);
	golden("sandbox-4-paused.nft", &t);
	sn_text_clear(&t);

	assert_int_equal(sn_nft_render_delete(&t, &sb, mixed), 0);
	golden("sandbox-5-delete.nft", &t);
	sn_text_clear(&t);

	/* big rules: prefixes split into one hash set per length (300 /24s, 100 /16s, 300 IPv6
	 * /48s, one /20), 300 hosts in a rule with a name
	 * (so that the two are not one run of verdict maps); as text, then with the big sets
	 * listed for netlink instead */
	char *doc = malloc(1 << 16);
	size_t w = (size_t)snprintf(doc, 1 << 16, "{\"egress\":{\"mode\":\"block-all\",\"rules\":["
					      "{\"action\":\"allow\",\"ports\":[443],\"to\":[");
	for (int i = 0; i < 300; i++)
		w += (size_t)snprintf(doc + w, (1 << 16) - w, "\"100.%d.%d.0/24\",", i / 200, i % 200);
	for (int i = 0; i < 100; i++)
		w += (size_t)snprintf(doc + w, (1 << 16) - w, "\"101.%d.0.0/16\",", i);
	for (int i = 0; i < 300; i++)
		w += (size_t)snprintf(doc + w, (1 << 16) - w, "\"2001:db8:%x::/48\",", i);
	w += (size_t)snprintf(doc + w, (1 << 16) - w, "\"172.16.0.0/20\"]},"
						 "{\"action\":\"deny\",\"to\":[\"evil.example\",");
	for (int i = 0; i < 300; i++)
		w += (size_t)snprintf(doc + w, (1 << 16) - w, "%s\"102.0.%d.%d\"", i ? "," : "",
				      i / 200, i % 200 + 1);
	snprintf(doc + w, (1 << 16) - w, "]}]}}");
	struct sn_snapshot *big = compile(doc);
	free(doc);
	sb = sandbox("abc123", "sh-abc123", 6);
	assert_int_equal(sn_nft_render_sandbox(&t, &cfg, &sb, big, NULL, 0), 0);
	golden("sandbox-6-split.nft", &t);
	assert_non_null(strstr(t.s, "ip daddr & 255.255.255.0 @s-abc123-6-r0-n4-24 meta l4proto"));
	assert_non_null(strstr(t.s, "ip6 daddr & ffff:ffff:ffff:: @s-abc123-6-r0-n6-48"));
	sn_text_clear(&t);
	assert_int_equal(sn_nft_render_delete(&t, &sb, big), 0);
	golden("sandbox-7-split-delete.nft", &t);
	sn_text_clear(&t);
	/* the netlink encoder makes the same objects: a set per "add set|map" line, a rule per
	 * "add rule" line, every element (tests/kernel/nl_equiv.sh compares the kernel's listing) */
	assert_int_equal(sn_nft_render_generation(&t, &cfg, &sb, big), 0);
	struct sn_nl_list nl = {0};
	assert_int_equal(sn_nft_build_generation(&nl, &cfg, &sb, big), 0);
	size_t counts[4] = {0}, elems = 0;
	for (size_t i = 0; i < nl.n; i++) {
		counts[nl.v[i].kind]++;
		if (nl.v[i].kind == SN_NL_ELEMS) {
			struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(nl.v[i].obj);
			while (nftnl_set_elems_iter_next(it))
				elems++;
			nftnl_set_elems_iter_destroy(it);
		}
	}
	assert_int_equal(counts[SN_NL_SET], count_lines(&t, "add set ") + count_lines(&t, "add map "));
	assert_int_equal(counts[SN_NL_CHAIN], 1);
	assert_int_equal(counts[SN_NL_RULE], count_lines(&t, "add rule "));
	/* 300 /24s, 100 /16s, one /20, 300 /48s and 300 hosts in hash sets; port 443 as an
	 * interval: the closing element at zero, its start and the key after it */
	assert_int_equal(elems, 1001 + 3);
	sn_nl_list_clear(&nl);
	sn_text_clear(&t);
	sn_snapshot_unref(big);

	/* without IPv6 the sandbox's IPv6 is dropped outright */
	sb = sandbox("abc123", "sh-abc123", 1);
	sb.has6 = false;
	sb.id = "nov6";
	sb.ifname = "sh-nov6";
	assert_int_equal(sn_nft_render_sandbox(&t, &cfg, &sb, mixed, NULL, 0), 0);
	assert_non_null(strstr(t.s, "meta nfproto ipv6 drop"));
	sn_text_clear(&t);

	sn_snapshot_unref(empty);
	sn_snapshot_unref(mixed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_sandboxes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Test helper: renders sandnet's nftables state for given parameters and prints it or applies it
 * to the current network namespace through libnftables (the daemon's own path).
 *
 *   nft_tool table   [--guard CIDR]... [--pool CIDR]... [--proxy] [--apply]
 *   nft_tool sandbox --id ID --ifname IF --addr4 A [--addr6 A] --rev N --policy FILE
 *                    [--old-policy FILE --old-rev N] [--paused] [--was-paused] [--proxy]
 *                    [--apply]
 *   nft_tool delete  --id ID --ifname IF --rev N --policy FILE [--apply]
 * Exit: 0 done, 1 refused (message on stderr), 2 usage. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft.h"
#include "render.h"

static struct sn_snapshot *load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(2);
	}
	static char buf[1 << 22];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	struct sn_policy *p;
	struct sn_errs errs;
	sn_errs_init(&errs);
	if (sn_policy_parse(buf, n, 0, 0, &p, &errs)) {
		fprintf(stderr, "%s: %s: %s\n", path, errs.e[0].path, errs.e[0].msg);
		exit(1);
	}
	struct sn_snapshot *s = sn_snapshot_compile(p);
	sn_policy_free(p);
	return s;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	struct sn_cidr guard[16], pools[4];
	struct sn_nft_config cfg = {.dns_port = 15053, .proxy_port = 15001, .guard = guard,
				    .pools = pools};
	struct sn_nft_sandbox sb = {0};
	const char *policy = NULL, *old_policy = NULL;
	uint64_t old_rev = 0;
	bool apply = false;
	char msg[256];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--apply") == 0) {
			apply = true;
			continue;
		}
		if (strcmp(a, "--proxy") == 0) {
			cfg.proxy_enabled = true;
			continue;
		}
		if (strcmp(a, "--was-paused") == 0) {
			sb.was_paused = true;
			continue;
		}
		if (strcmp(a, "--paused") == 0) {
			sb.paused = true;
			continue;
		}
		if (!v)
			return 2;
		i++;
		if (strcmp(a, "--guard") == 0 && cfg.nguard < 16) {
			if (sn_cidr_parse(v, &guard[cfg.nguard++], msg, sizeof(msg)))
				return 2;
		} else if (strcmp(a, "--pool") == 0 && cfg.npools < 4) {
			if (sn_cidr_parse(v, &pools[cfg.npools++], msg, sizeof(msg)))
				return 2;
		} else if (strcmp(a, "--dns-port") == 0) {
			cfg.dns_port = (uint16_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--proxy-port") == 0) {
			cfg.proxy_port = (uint16_t)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--id") == 0) {
			sb.id = v;
		} else if (strcmp(a, "--ifname") == 0) {
			sb.ifname = v;
		} else if (strcmp(a, "--addr4") == 0) {
			if (inet_pton(AF_INET, v, sb.addr4) != 1)
				return 2;
			/* the host side is the address below the sandbox's (its /30 or /126) */
			memcpy(sb.host4, sb.addr4, 4);
			sb.host4[3]--;
		} else if (strcmp(a, "--addr6") == 0) {
			if (inet_pton(AF_INET6, v, sb.addr6) != 1)
				return 2;
			memcpy(sb.host6, sb.addr6, 16);
			sb.host6[15]--;
			sb.has6 = true;
		} else if (strcmp(a, "--rev") == 0) {
			sb.rev = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--policy") == 0) {
			policy = v;
		} else if (strcmp(a, "--old-policy") == 0) {
			old_policy = v;
		} else if (strcmp(a, "--old-rev") == 0) {
			old_rev = strtoull(v, NULL, 10);
		} else {
			return 2;
		}
	}
	struct sn_text t = {0};
	struct sn_snapshot *s = NULL, *old = NULL;
	int rc;
	if (strcmp(argv[1], "table") == 0) {
		rc = sn_nft_render_table(&t, &cfg);
	} else if (strcmp(argv[1], "sandbox") == 0 || strcmp(argv[1], "delete") == 0) {
		if (!sb.id || !sb.ifname || !policy || !sb.rev)
			return 2;
		s = load(policy);
		if (old_policy)
			old = load(old_policy);
		rc = strcmp(argv[1], "sandbox") == 0
			     ? sn_nft_render_sandbox(&t, &cfg, &sb, s, old, old_rev)
			     : sn_nft_render_delete(&t, &sb, s);
	} else {
		return 2;
	}
	if (rc)
		return 1;
	if (!apply) {
		fwrite(t.s, 1, t.len, stdout);
	} else {
		struct sn_nft *n;
		if (sn_nft_open(&n))
			return 1;
		char err[512];
		rc = sn_nft_apply(n, t.s, err, sizeof(err));
		sn_nft_close(n);
		if (rc) {
			fprintf(stderr, "nft_tool: %s\n", err);
			return 1;
		}
	}
	sn_text_clear(&t);
	sn_snapshot_unref(s);
	sn_snapshot_unref(old);
	return 0;
}

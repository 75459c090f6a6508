/* sandnetd's flags (DESIGN.md section 3, "Daemon flags") and its log. Daemon layer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "daemon.h"

enum sn_log_level sn_log_threshold = SN_LOG_INFO;

void sn_log(enum sn_log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	if (level < sn_log_threshold)
		return;
	char ts[32];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ %s %s\n", ts, now.tv_nsec / 1000000, names[level], msg);
}

static void usage(FILE *f)
{
	fputs("usage: sandnetd --state-dir DIR [options]\n"
	      "  --listen ADDR:PORT          REST API (127.0.0.1:7080; IPv6: [ADDR]:PORT)\n"
	      "  --ingress-listen ADDR:PORT  ingress proxy (127.0.0.1:7081)\n"
	      "  --ingress-domain NAME       <port>-<id>.NAME routes to a sandbox (sandnet.localhost)\n"
	      "  --pool4 CIDR                sandbox IPv4 addresses, a /30 each (10.200.0.0/16)\n"
	      "  --pool6 CIDR                sandbox IPv6 addresses, a /126 each (none)\n"
	      "  --dns-upstream IP[:PORT]    (first nameserver of /etc/resolv.conf)\n"
	      "  --proxy-port N              transparent proxy (15001)\n"
	      "  --dns-port N                DNS forwarder (15053)\n"
	      "  --dns-rate N                a sandbox's DNS queries a second, dropped beyond (2000;\n"
	      "                              0: no limit)\n"
	      "  --max-flows N               connections tracked per sandbox, new ones rejected\n"
	      "                              beyond (32768; 0: no limit)\n"
	      "  --exec-user sandbox|UID[:GID]  who runs an exec's command (sandbox: a user of its\n"
	      "                              own per sandbox; 0 is root, who could take the host)\n"
	      "  --exec-pids-max N           processes and threads a sandbox's commands may have at\n"
	      "                              once (1024; 0: no limit)\n"
	      "  --exec-memory-max SIZE      memory they may use, in bytes or with K, M or G\n"
	      "                              (0: no limit, the default)\n"
	      "  --exec-cpu-max CORES        CPU time they may use, in cores (\"0.5\": half of one;\n"
	      "                              0: no limit, the default; a sandbox's commands share\n"
	      "                              one sandbox's share of the CPU either way)\n"
	      "  --exec-max-running N        commands running at once, all sandboxes' (128: half\n"
	      "                              the API's connections); more get 503\n"
	      "  --api-keys FILE             lines \"<key> <team>\" (else DIR/api-key, team default)\n"
	      "  --guard-deny CIDR           never reachable from a sandbox (repeatable)\n"
	      "  --trusted-proxy CIDR        ingress peers whose X-Forwarded-For counts (repeatable)\n"
	      "  --control-port N            sandbox port always reachable through ingress\n"
	      "  --strict-names on|off       an SNI or Host counts only for its own addresses (on)\n"
	      "  --proxy-peek-timeout MS     wait for a ClientHello or request head (1000)\n"
	      "  --proxy-max-conns N         open proxied connections per sandbox (1024)\n"
	      "  --proxy-max-conns-total N   and of all sandboxes (an eighth of the descriptor limit)\n"
	      "  --proxy-idle-timeout S      proxied connections idle longer are closed (300)\n"
	      "  --learn-ttl-min S           learned addresses live at least (5)\n"
	      "  --learn-ttl-max S           and at most (3600) seconds, else their DNS TTL\n"
	      "  --workers N                 proxy worker threads (one per core it may run on)\n"
	      "  --nflog-group N             NFLOG group of kernel rejects, per netns (5301)\n"
	      "  --ingress-header-timeout S  a request head must arrive within (10)\n"
	      "  --ingress-idle-timeout S    idle ingress connections are closed after (60)\n"
	      "  --ingress-upstream-timeout S  a sandbox must answer within (30), else 504\n"
	      "  --ingress-max-conns N       client connections at once; more wait in the kernel's\n"
	      "                              queue (a quarter of the descriptor limit)\n"
	      "  --ingress-max-conns-per-client N  of them from one address, more are reset (0: no\n"
	      "                              limit, the default; a --trusted-proxy has none)\n"
	      "  --log-level debug|info|warn|error\n",
	      f);
}

/* The n bytes at s as a number in [lo, hi]: decimal digits only (strtol would take a sign or
 * blanks: "-0" is not a number here). */
static bool parse_uint_n(const char *s, size_t n, unsigned lo, unsigned hi, unsigned *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || (v = v * 10 + (unsigned)(s[i] - '0')) > hi)
			return false;
	}
	if (n == 0 || v < lo)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	return parse_uint_n(s, strlen(s), lo, hi, out);
}

static bool parse_port(const char *s, uint16_t *port)
{
	unsigned p;
	if (!parse_uint(s, 1, 65535, &p))
		return false;
	*port = (uint16_t)p;
	return true;
}

/* ADDR:PORT, or [IPV6]:PORT */
static bool parse_hostport(const char *s, char *host, size_t hsize, uint16_t *port)
{
	bool bracket = *s == '[';
	const char *h = s + bracket, *end = bracket ? strstr(s, "]:") : strrchr(s, ':');
	if (!end || end == h || (size_t)(end - h) >= hsize || !parse_port(end + 1 + bracket, port))
		return false;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = 0;
	return !bracket || strchr(host, ':'); /* brackets hold an IPv6 address */
}

/* Bytes, or a number of K, M or G (1024-based); 0, or at least 1M. */
static bool parse_size(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	const char *unit = n ? strchr("KMG", s[n - 1]) : NULL;
	unsigned v;
	if (!parse_uint_n(s, n - (unit != NULL), 0, 0xffffffffu, &v))
		return false;
	*out = (uint64_t)v << (unit ? 10 * (unit - "KMG" + 1) : 0);
	return *out == 0 || *out >= (1u << 20);
}

/* Cores, with up to three decimals ("0.5", "2"), as thousandths; 0, or at least 0.01. */
static bool parse_cores(const char *s, uint64_t *out)
{
	const char *dot = strchr(s, '.');
	size_t nf = dot ? strlen(dot + 1) : 0;
	unsigned w, f = 0;
	if (!parse_uint_n(s, dot ? (size_t)(dot - s) : strlen(s), 0, 4096, &w) ||
	    (dot && (nf > 3 || !parse_uint_n(dot + 1, nf, 0, 999, &f))))
		return false;
	for (size_t i = nf; i < 3; i++)
		f *= 10;
	*out = (uint64_t)w * 1000 + f;
	return *out == 0 || *out >= 10;
}

/* UID[:GID] (the group defaults to the uid's number; -1 is no id) */
static bool parse_user(const char *s, unsigned *uid, unsigned *gid)
{
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);
	return parse_uint_n(s, n, 0, 0xfffffffeu, uid) &&
	       (colon ? parse_uint(colon + 1, 0, 0xfffffffeu, gid) : (*gid = *uid, true));
}

static void default_upstream(char *out, size_t size)
{
	snprintf(out, size, "127.0.0.1:53");
	FILE *f = fopen("/etc/resolv.conf", "r");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		char ns[128];
		if (sscanf(line, " nameserver %127s", ns) == 1) {
			snprintf(out, size, "%s", ns);
			break;
		}
	}
	fclose(f);
}

bool sn_config_parse(struct sn_config *cfg, int argc, char **argv)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen_addr, sizeof(cfg->listen_addr), "127.0.0.1");
	cfg->listen_port = 7080;
	snprintf(cfg->ingress_addr, sizeof(cfg->ingress_addr), "127.0.0.1");
	cfg->ingress_port = 7081;
	cfg->ingress_domain = "sandnet.localhost";
	char msg[256];
	sn_cidr_parse("10.200.0.0/16", &cfg->pool4, msg, sizeof(msg));
	default_upstream(cfg->dns_upstream, sizeof(cfg->dns_upstream));
	cfg->proxy_port = 15001;
	cfg->dns_port = 15053;
	cfg->log_level = SN_LOG_INFO;
	cfg->strict_names = true;
	cfg->peek_timeout_ms = 1000;
	cfg->max_conns = 1024;
	cfg->idle_timeout_s = 300;
	cfg->learn_ttl_min = 5;
	cfg->learn_ttl_max = 3600;
	cfg->nflog_group = 5301;
	cfg->dns_rate = 2000;
	cfg->max_flows = 32768;
	cfg->exec_uid = cfg->exec_gid = SN_EXEC_USER_SANDBOX;
	cfg->exec_limit[SN_CG_PIDS] = 1024;
	cfg->exec_max_running = 128;
	cfg->ingress_header_timeout_s = 10;
	cfg->ingress_idle_timeout_s = 60;
	cfg->ingress_upstream_timeout_s = 30;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "sandnetd: %s needs a value\n", a);
			usage(stderr);
			return false;
		}
		i++;
		bool ok = true;
		if (strcmp(a, "--state-dir") == 0)
			cfg->state_dir = v;
		else if (strcmp(a, "--listen") == 0)
			ok = parse_hostport(v, cfg->listen_addr, sizeof(cfg->listen_addr),
					    &cfg->listen_port);
		else if (strcmp(a, "--ingress-listen") == 0)
			ok = parse_hostport(v, cfg->ingress_addr, sizeof(cfg->ingress_addr),
					    &cfg->ingress_port);
		else if (strcmp(a, "--ingress-domain") == 0)
			cfg->ingress_domain = v;
		else if (strcmp(a, "--pool4") == 0)
			ok = sn_cidr_parse(v, &cfg->pool4, msg, sizeof(msg)) == 0 &&
			     cfg->pool4.family == AF_INET && cfg->pool4.plen <= 29;
		else if (strcmp(a, "--pool6") == 0)
			ok = (cfg->has_pool6 = sn_cidr_parse(v, &cfg->pool6, msg, sizeof(msg)) == 0 &&
					       cfg->pool6.family == AF_INET6 &&
					       cfg->pool6.plen <= 124);
		else if (strcmp(a, "--dns-upstream") == 0)
			snprintf(cfg->dns_upstream, sizeof(cfg->dns_upstream), "%s", v);
		else if (strcmp(a, "--proxy-port") == 0)
			ok = parse_port(v, &cfg->proxy_port);
		else if (strcmp(a, "--dns-port") == 0)
			ok = parse_port(v, &cfg->dns_port);
		else if (strcmp(a, "--control-port") == 0)
			ok = parse_port(v, &cfg->control_port);
		else if (strcmp(a, "--api-keys") == 0)
			cfg->api_keys_file = v;
		else if (strcmp(a, "--guard-deny") == 0)
			ok = cfg->nguard_deny < SN_MAX_GUARD &&
			     sn_cidr_parse(v, &cfg->guard_deny[cfg->nguard_deny++], msg,
					   sizeof(msg)) == 0;
		else if (strcmp(a, "--trusted-proxy") == 0)
			ok = cfg->ntrusted < SN_MAX_GUARD &&
			     sn_cidr_parse(v, &cfg->trusted[cfg->ntrusted++], msg, sizeof(msg)) == 0;
		else if (strcmp(a, "--strict-names") == 0)
			ok = (cfg->strict_names = strcmp(v, "on") == 0) || strcmp(v, "off") == 0;
		else if (strcmp(a, "--proxy-peek-timeout") == 0)
			ok = parse_uint(v, 10, 60000, &cfg->peek_timeout_ms);
		else if (strcmp(a, "--proxy-max-conns") == 0)
			ok = parse_uint(v, 1, 1000000, &cfg->max_conns);
		else if (strcmp(a, "--proxy-max-conns-total") == 0)
			ok = parse_uint(v, 1, 16777216, &cfg->proxy_max_total);
		else if (strcmp(a, "--proxy-idle-timeout") == 0)
			ok = parse_uint(v, 1, 86400, &cfg->idle_timeout_s);
		else if (strcmp(a, "--learn-ttl-min") == 0)
			ok = parse_uint(v, 1, 86400, &cfg->learn_ttl_min);
		else if (strcmp(a, "--learn-ttl-max") == 0)
			ok = parse_uint(v, 1, 604800, &cfg->learn_ttl_max);
		else if (strcmp(a, "--ingress-header-timeout") == 0)
			ok = parse_uint(v, 1, 3600, &cfg->ingress_header_timeout_s);
		else if (strcmp(a, "--ingress-idle-timeout") == 0)
			ok = parse_uint(v, 1, 86400, &cfg->ingress_idle_timeout_s);
		else if (strcmp(a, "--ingress-max-conns") == 0)
			ok = parse_uint(v, 1, 16777216, &cfg->ingress_max_conns);
		else if (strcmp(a, "--ingress-max-conns-per-client") == 0)
			ok = parse_uint(v, 0, 16777216, &cfg->ingress_max_conns_per_client);
		else if (strcmp(a, "--ingress-upstream-timeout") == 0)
			ok = parse_uint(v, 1, 3600, &cfg->ingress_upstream_timeout_s);
		else if (strcmp(a, "--nflog-group") == 0)
			ok = parse_uint(v, 1, 65535, &cfg->nflog_group);
		else if (strcmp(a, "--dns-rate") == 0)
			ok = parse_uint(v, 0, 1000000, &cfg->dns_rate);
		else if (strcmp(a, "--max-flows") == 0)
			ok = parse_uint(v, 0, 16777216, &cfg->max_flows);
		else if (strcmp(a, "--exec-user") == 0)
			ok = strcmp(v, "sandbox") == 0
				     ? (cfg->exec_uid = cfg->exec_gid = SN_EXEC_USER_SANDBOX, true)
				     : parse_user(v, &cfg->exec_uid, &cfg->exec_gid);
		else if (strcmp(a, "--exec-pids-max") == 0) {
			unsigned n = 0;
			ok = parse_uint(v, 0, 4194304, &n);
			cfg->exec_limit[SN_CG_PIDS] = n;
			cfg->exec_limit_set[SN_CG_PIDS] = true;
		} else if (strcmp(a, "--exec-memory-max") == 0) {
			ok = parse_size(v, &cfg->exec_limit[SN_CG_MEMORY]);
			cfg->exec_limit_set[SN_CG_MEMORY] = true;
		} else if (strcmp(a, "--exec-max-running") == 0) {
			ok = parse_uint(v, 1, 1024, &cfg->exec_max_running);
		} else if (strcmp(a, "--exec-cpu-max") == 0) {
			ok = parse_cores(v, &cfg->exec_limit[SN_CG_CPU]);
			cfg->exec_limit_set[SN_CG_CPU] = true;
		} else if (strcmp(a, "--workers") == 0)
			ok = parse_uint(v, 1, 256, &cfg->workers);
		else if (strcmp(a, "--log-level") == 0) {
			static const char *const lv[] = {"debug", "info", "warn", "error"};
			ok = false;
			for (int l = 0; l < 4; l++)
				if (strcmp(v, lv[l]) == 0) {
					cfg->log_level = (enum sn_log_level)l;
					ok = true;
				}
		} else {
			fprintf(stderr, "sandnetd: unknown option %s\n", a);
			usage(stderr);
			return false;
		}
		if (!ok) {
			fprintf(stderr, "sandnetd: %s: bad value \"%s\"\n", a, v);
			return false;
		}
	}
	if (!cfg->state_dir) {
		fprintf(stderr, "sandnetd: --state-dir is required\n");
		usage(stderr);
		return false;
	}
	if (cfg->learn_ttl_min > cfg->learn_ttl_max) {
		fprintf(stderr, "sandnetd: --learn-ttl-min is above --learn-ttl-max\n");
		return false;
	}
	sn_log_threshold = cfg->log_level;
	return true;
}

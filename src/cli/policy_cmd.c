/* sandnet policy check|convert|explain: the offline policy commands. CLI layer. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <sandnet/policy.h>
#include <sandnet/snapshot.h>

#include "cli.h"

void usage_policy(FILE *f)
{
	fputs("usage: sandnet policy check FILE|-\n"
	      "       sandnet policy convert --from e2b|sandbox0|native FILE|-\n"
	      "       sandnet policy explain FILE --dst IP --port N --proto tcp|udp|icmp "
	      "[--name NAME]\n"
	      "       sandnet policy explain FILE --ingress --src IP --port N [--proto tcp]\n"
	      "       sandnet policy get ID\n"
	      "       sandnet policy set ID --policy FILE\n"
	      "\n"
	      "check    validates a policy in JSON or YAML, in any dialect (detected from its\n"
	      "         fields), and prints the normalised native policy. Exit 0 when valid,\n"
	      "         1 when invalid, with one \"path: message\" line per problem on stderr.\n"
	      "convert  the same, with the dialect named instead of detected.\n"
	      "explain  decides one connection (egress: to --dst; ingress: from --src) and prints\n"
	      "         {\"verdict\": allow|deny|need-name, \"rule\": index or null, \"reason\"}.\n"
	      "         need-name: the answer depends on the connection's name (give --name).\n"
	      "get      the policy in force in a sandbox, with its revision (needs sandnetd).\n"
	      "set      validates FILE here, then makes it the sandbox's policy (needs sandnetd).\n",
	      f);
}

/* Reads a whole file (or stdin for "-"), up to one byte past the document limit so that the
 * parser can report the limit. Returns 0 or -errno. */
static int read_input(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 65536, n = 0, max = (size_t)SN_LIMIT_DOC_BYTES + 1;
	char *buf = malloc(cap);
	int rc = 0;
	while (buf) {
		if (n == cap) {
			if (cap == max)
				break; /* one byte past the limit: the parser reports it */
			size_t ncap = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, ncap);
			if (!nb) { /* never a document cut short */
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f))
				rc = errno ? -errno : -EIO; /* a directory: EISDIR */
			break;
		}
	}
	if (!buf)
		rc = -ENOMEM;
	if (f != stdin)
		fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static void print_errs(const char *file, const struct sn_errs *errs)
{
	char line[SN_ERR_PATH_MAX + SN_ERR_MSG_MAX + 4];
	(void)file;
	for (unsigned i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", sn_err_line(&errs->e[i], line, sizeof(line)));
	if (errs->dropped)
		fprintf(stderr, "(%u more errors not shown)\n", errs->dropped);
}

int cli_load_policy(const char *file, enum sn_dialect dialect, struct sn_policy **p)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = read_input(file, &buf, &len);
	if (rc) {
		fprintf(stderr, "sandnet: %s: %s\n", file, strerror(-rc));
		return EXIT_USAGE;
	}
	struct sn_errs *errs = malloc(sizeof(*errs));
	if (!errs) {
		free(buf);
		fprintf(stderr, "sandnet: out of memory\n");
		return EXIT_USAGE;
	}
	sn_errs_init(errs);
	rc = sn_policy_parse(buf, len, SN_FORMAT_AUTO, dialect, p, errs);
	free(buf);
	if (rc) {
		print_errs(file, errs);
		free(errs);
		return EXIT_REFUSED;
	}
	free(errs);
	return 0;
}

static int print_policy(const struct sn_policy *p)
{
	char *s = sn_policy_format(p, 2);
	if (!s) {
		fprintf(stderr, "sandnet: out of memory\n");
		return EXIT_USAGE;
	}
	puts(s);
	free(s);
	return EXIT_OK;
}

static bool want_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static int cmd_check(int argc, char **argv, bool convert)
{
	enum sn_dialect dialect = SN_DIALECT_AUTO;
	const char *file = NULL;
	for (int i = 0; i < argc; i++) {
		if (convert && strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
			if (!sn_dialect_parse(argv[++i], &dialect)) {
				fprintf(stderr, "sandnet: --from takes e2b, sandbox0 or native, not %s\n",
					argv[i]);
				return EXIT_USAGE;
			}
		} else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			file = argv[i];
		} else {
			fprintf(stderr, "sandnet: unexpected argument %s\n", argv[i]);
			usage_policy(stderr);
			return EXIT_USAGE;
		}
	}
	if (!file || (convert && dialect == SN_DIALECT_AUTO)) {
		fprintf(stderr, "sandnet: policy %s needs %s\n", convert ? "convert" : "check",
			convert ? "--from DIALECT and FILE (or - for stdin)" : "FILE (or - for stdin)");
		usage_policy(stderr);
		return EXIT_USAGE;
	}
	struct sn_policy *p;
	int rc = cli_load_policy(file, dialect, &p);
	if (rc)
		return rc;
	rc = print_policy(p);
	sn_policy_free(p);
	return rc;
}

static bool parse_ip(const char *s, int *family, uint8_t *addr)
{
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		*family = AF_INET6;
		/* ::ffff:a.b.c.d is that IPv4 address: what a socket sends to it, and how the ingress
		 * reads such a client */
		sn_addr_unmap(family, addr);
		return true;
	}
	return false;
}

static int cmd_explain(int argc, char **argv)
{
	const char *file = NULL, *dst = NULL, *src = NULL, *port_s = NULL, *proto_s = NULL,
		   *name = NULL;
	bool ingress = false;
	for (int i = 0; i < argc; i++) {
		const char **opt = NULL;
		if (strcmp(argv[i], "--dst") == 0)
			opt = &dst;
		else if (strcmp(argv[i], "--src") == 0)
			opt = &src;
		else if (strcmp(argv[i], "--port") == 0)
			opt = &port_s;
		else if (strcmp(argv[i], "--proto") == 0)
			opt = &proto_s;
		else if (strcmp(argv[i], "--name") == 0)
			opt = &name;
		else if (strcmp(argv[i], "--ingress") == 0) {
			ingress = true;
			continue;
		} else if (!file && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			file = argv[i];
			continue;
		} else {
			fprintf(stderr, "sandnet: unexpected argument %s\n", argv[i]);
			return EXIT_USAGE;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "sandnet: %s needs a value\n", argv[i]);
			return EXIT_USAGE;
		}
		*opt = argv[++i];
	}
	struct sn_query q = {.dir = ingress ? SN_INGRESS : SN_EGRESS};
	uint8_t addr[16] = {0};
	const char *ip = ingress ? src : dst;
	if (!file || !ip) {
		fprintf(stderr, "sandnet: policy explain needs FILE and %s\n",
			ingress ? "--src IP (with --ingress)" : "--dst IP");
		usage_policy(stderr);
		return EXIT_USAGE;
	}
	if (!parse_ip(ip, &q.family, addr)) {
		fprintf(stderr, "sandnet: %s: \"%s\" is not an IP address\n",
			ingress ? "--src" : "--dst", ip);
		return EXIT_USAGE;
	}
	q.addr = addr;
	if (!proto_s)
		proto_s = "tcp";
	if (strcmp(proto_s, "tcp") == 0)
		q.proto = SN_PROTO_TCP;
	else if (strcmp(proto_s, "udp") == 0)
		q.proto = SN_PROTO_UDP;
	else if (strcmp(proto_s, "icmp") == 0)
		q.proto = SN_PROTO_ICMP;
	else {
		fprintf(stderr, "sandnet: --proto takes tcp, udp or icmp, not %s\n", proto_s);
		return EXIT_USAGE;
	}
	if (q.proto != SN_PROTO_ICMP) {
		char *end;
		long v = port_s ? strtol(port_s, &end, 10) : 0;
		if (!port_s || *end || v < 1 || v > 65535) {
			fprintf(stderr, "sandnet: --port needs a port 1-65535 for %s\n", proto_s);
			return EXIT_USAGE;
		}
		q.port = (uint16_t)v;
	}
	char nbuf[256];
	if (name) {
		char msg[SN_ERR_MSG_MAX];
		enum sn_entry_kind kind;
		if (sn_name_normalize(name, nbuf, sizeof(nbuf), &kind, msg, sizeof(msg)) != 0 ||
		    kind != SN_ENTRY_NAME) {
			fprintf(stderr, "sandnet: --name: %s\n",
				kind != SN_ENTRY_NAME ? "give a name, not a pattern" : msg);
			return EXIT_USAGE;
		}
		q.name = nbuf;
	}
	struct sn_policy *p;
	int rc = cli_load_policy(file, SN_DIALECT_AUTO, &p);
	if (rc)
		return rc;
	struct sn_snapshot *s = sn_snapshot_compile(p);
	if (!s) {
		sn_policy_free(p);
		fprintf(stderr, "sandnet: out of memory\n");
		return EXIT_USAGE;
	}
	struct sn_decision d = sn_decide(s, &q);
	const struct sn_dir_policy *dp = ingress ? &p->ingress : &p->egress;
	const char *dname = ingress ? "ingress" : "egress";
	char reason[512];
	if (d.rule == SN_RULE_NONE) {
		snprintf(reason, sizeof(reason), "no %s rule matched; the mode %s decides", dname,
			 sn_mode_name(dp->mode));
	} else {
		const char *rname = dp->rules[d.rule].name;
		char label[200] = "";
		if (rname)
			snprintf(label, sizeof(label), " (%s)", rname);
		if (d.verdict == SN_VERDICT_NEED_NAME)
			snprintf(reason, sizeof(reason),
				 "%s rule %d%s matches by name and the connection's name is not "
				 "known (give --name)",
				 dname, d.rule, label);
		else
			snprintf(reason, sizeof(reason), "%s rule %d%s is the first that matches: %s",
				 dname, d.rule, label, sn_action_name(dp->rules[d.rule].action));
	}
	json_t *o = json_pack("{s:s, s:o, s:s}", "verdict", sn_verdict_name(d.verdict), "rule",
			      d.rule == SN_RULE_NONE ? json_null() : json_integer(d.rule), "reason",
			      reason);
	char *out = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
	if (out)
		puts(out);
	free(out);
	json_decref(o);
	sn_snapshot_unref(s);
	sn_policy_free(p);
	return out ? EXIT_OK : EXIT_USAGE;
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		usage_policy(argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : EXIT_OK;
	}
	if (want_help(argc - 1, argv + 1)) {
		usage_policy(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc - 1, argv + 1, false);
	if (strcmp(argv[0], "convert") == 0)
		return cmd_check(argc - 1, argv + 1, true);
	if (strcmp(argv[0], "explain") == 0)
		return cmd_explain(argc - 1, argv + 1);
	if (strcmp(argv[0], "get") == 0 || strcmp(argv[0], "set") == 0)
		return cmd_policy_online(cli, argc, argv);
	fprintf(stderr, "sandnet: unknown policy command \"%s\"\n", argv[0]);
	usage_policy(stderr);
	return EXIT_USAGE;
}

/* sandnet's online commands: sandboxes, policies and exec through sandnetd's REST API (libcurl).
 * CLI layer. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sandnet/policy.h>

#include "cli.h"

struct resp {
	char *data;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	char *nd = realloc(r->data, r->len + size * n + 1);
	if (!nd)
		return 0;
	r->data = nd;
	memcpy(r->data + r->len, p, size * n);
	r->len += size * n;
	r->data[r->len] = 0;
	return size * n;
}

/* One request. Returns the HTTP status, or -1 after printing a connection error. *out gets the
 * parsed JSON body (or NULL). */
static long request(const struct cli *cli, const char *method, const char *path, const char *body,
		    json_t **out)
{
	*out = NULL;
	CURL *h = curl_easy_init();
	if (!h) {
		fprintf(stderr, "sandnet: cannot start libcurl\n");
		return -1;
	}
	char url[2048], hdr[512];
	snprintf(url, sizeof(url), "%s%s", cli->api, path);
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (cli->api_key) {
		snprintf(hdr, sizeof(hdr), "X-API-Key: %s", cli->api_key);
		headers = curl_slist_append(headers, hdr);
	}
	struct resp r = {0};
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 660L); /* an exec may run 600 s */
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	CURLcode rc = curl_easy_perform(h);
	long status = -1;
	if (rc != CURLE_OK)
		fprintf(stderr, "sandnet: %s: %s\n", cli->api, curl_easy_strerror(rc));
	else
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (r.data && r.len)
		*out = json_loadb(r.data, r.len, 0, NULL);
	free(r.data);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	return status;
}

/* Prints an API error body ("path: message") and returns the exit code for it. */
static int refused(long status, json_t *j)
{
	json_t *e = json_object_get(j, "error");
	const char *path = json_string_value(json_object_get(e, "path"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (msg)
		fprintf(stderr, "%s%s%s\n", path && *path ? path : "", path && *path ? ": " : "", msg);
	else
		fprintf(stderr, "sandnet: HTTP %ld\n", status);
	json_decref(j);
	return EXIT_REFUSED;
}

/* A request whose answer must be a success: 0 with *out set (the caller frees it), or the exit
 * code after printing why not. */
static int call(const struct cli *cli, const char *method, const char *path, const char *body,
		json_t **out)
{
	long st = request(cli, method, path, body, out);
	if (st < 0) {
		json_decref(*out);
		*out = NULL;
		return EXIT_USAGE;
	}
	if (st < 200 || st >= 300) {
		int rc = refused(st, *out);
		*out = NULL;
		return rc;
	}
	return 0;
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2));
	if (s)
		puts(s);
	free(s);
}

static void print_sandbox_row(const json_t *sb, bool header)
{
	if (header)
		printf("%-32s %-8s %-16s %-8s %s\n", "ID", "STATE", "IPV4", "REVISION", "CREATED");
	json_t *net = json_object_get(sb, "network");
	printf("%-32s %-8s %-16s %-8lld %s\n", json_string_value(json_object_get(sb, "id")),
	       json_string_value(json_object_get(sb, "state")),
	       json_string_value(json_object_get(json_object_get(sb, "address"), "ipv4")),
	       (long long)json_integer_value(json_object_get(net, "revision")),
	       json_string_value(json_object_get(sb, "created_at")));
}

/* A policy file, read and validated locally, as the canonical JSON the API takes (free()); NULL,
 * with *exit_code set, when it cannot be read or is not valid (both said on stderr). */
static char *load_policy_json(const char *file, int *exit_code)
{
	struct sn_policy *p = NULL;
	int rc = cli_load_policy(file, SN_DIALECT_AUTO, &p);
	if (rc) {
		*exit_code = rc;
		return NULL;
	}
	char *out = sn_policy_format(p, 0);
	sn_policy_free(p);
	if (!out) {
		fprintf(stderr, "sandnet: out of memory\n");
		*exit_code = EXIT_USAGE;
	}
	return out;
}

static bool valid_id_arg(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > 32 || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != n) {
		fprintf(stderr, "sandnet: \"%s\" is not a sandbox id\n", id);
		return false;
	}
	return true;
}

void usage_sandbox(FILE *f)
{
	fputs("usage: sandnet sandbox create [--id ID] [--policy FILE]\n"
	      "       sandnet sandbox list\n"
	      "       sandnet sandbox get|delete|pause|resume ID\n"
	      "Talks to sandnetd (--api, SANDNET_API; --api-key, SANDNET_API_KEY). Prints a table,\n"
	      "or JSON with -o json. Exit 0 done, 1 refused by the API, 2 usage or connection error.\n",
	      f);
}

int cmd_sandbox(struct cli *cli, int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
		usage_sandbox(argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : EXIT_OK;
	}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0) {
			usage_sandbox(stdout);
			return EXIT_OK;
		}
	const char *sub = argv[0];
	json_t *j;
	if (strcmp(sub, "create") == 0) {
		const char *id = NULL, *file = NULL;
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--id") == 0 && i + 1 < argc)
				id = argv[++i];
			else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc)
				file = argv[++i];
			else {
				usage_sandbox(stderr);
				return EXIT_USAGE;
			}
		}
		if (id && !valid_id_arg(id))
			return EXIT_USAGE;
		int ec = 0;
		char *pol = file ? load_policy_json(file, &ec) : NULL;
		if (file && !pol)
			return ec;
		json_t *body = json_object();
		if (id)
			json_object_set_new(body, "id", json_string(id));
		if (pol)
			json_object_set_new(body, "network", json_loads(pol, 0, NULL));
		free(pol);
		char *b = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		int rc = call(cli, "POST", "/v1/sandboxes", b, &j);
		free(b);
		if (rc)
			return rc;
		if (cli->json_output)
			print_json(j);
		else
			print_sandbox_row(j, true);
		json_decref(j);
		return EXIT_OK;
	}
	if (strcmp(sub, "list") == 0) {
		if (argc != 1) {
			usage_sandbox(stderr);
			return EXIT_USAGE;
		}
		int rc = call(cli, "GET", "/v1/sandboxes", NULL, &j);
		if (rc)
			return rc;
		if (cli->json_output) {
			print_json(j);
		} else {
			json_t *arr = json_object_get(j, "sandboxes");
			size_t i;
			json_t *sb;
			printf("%-32s %-8s %-16s %-8s %s\n", "ID", "STATE", "IPV4", "REVISION",
			       "CREATED");
			json_array_foreach(arr, i, sb) print_sandbox_row(sb, false);
		}
		json_decref(j);
		return EXIT_OK;
	}
	static const char *const one[][3] = {{"get", "GET", ""},
					     {"delete", "DELETE", ""},
					     {"pause", "POST", "/pause"},
					     {"resume", "POST", "/resume"}};
	for (size_t k = 0; k < 4; k++) {
		if (strcmp(sub, one[k][0]) != 0)
			continue;
		if (argc != 2 || !valid_id_arg(argv[1])) {
			usage_sandbox(stderr);
			return EXIT_USAGE;
		}
		char path[128];
		snprintf(path, sizeof(path), "/v1/sandboxes/%s%s", argv[1], one[k][2]);
		int rc = call(cli, one[k][1], path, NULL, &j);
		if (rc)
			return rc;
		if (j) {
			if (cli->json_output)
				print_json(j);
			else
				print_sandbox_row(j, true);
		}
		json_decref(j);
		return EXIT_OK;
	}
	fprintf(stderr, "sandnet: unknown sandbox command \"%s\"\n", sub);
	usage_sandbox(stderr);
	return EXIT_USAGE;
}

/* sandnet policy get ID / policy set ID --policy FILE */
int cmd_policy_online(struct cli *cli, int argc, char **argv)
{
	json_t *j;
	int rc;
	char path[128];
	if (strcmp(argv[0], "get") == 0) {
		if (argc != 2 || !valid_id_arg(argv[1]))
			return EXIT_USAGE;
		snprintf(path, sizeof(path), "/v1/sandboxes/%s/network", argv[1]);
		rc = call(cli, "GET", path, NULL, &j);
	} else {
		const char *file = NULL;
		if (argc == 4 && strcmp(argv[2], "--policy") == 0)
			file = argv[3];
		if (!file || !valid_id_arg(argv[1])) {
			fprintf(stderr, "usage: sandnet policy set ID --policy FILE\n");
			return EXIT_USAGE;
		}
		int ec = 0;
		char *pol = load_policy_json(file, &ec);
		if (!pol)
			return ec;
		snprintf(path, sizeof(path), "/v1/sandboxes/%s/network", argv[1]);
		rc = call(cli, "PUT", path, pol, &j);
		free(pol);
	}
	if (rc)
		return rc;
	print_json(j);
	json_decref(j);
	return EXIT_OK;
}

void usage_exec(FILE *f)
{
	fputs("usage: sandnet exec [--timeout MS] ID -- CMD [ARGS...]\n"
	      "Runs CMD inside the sandbox; prints its stdout and stderr and exits with its exit\n"
	      "code (2 on a usage or connection error, 1 when the API refuses).\n",
	      f);
}

int cmd_exec(struct cli *cli, int argc, char **argv)
{
	const char *id = NULL;
	long timeout = 0;
	int i = 0;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage_exec(stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = strtol(argv[++i], NULL, 10);
		else if (!id)
			id = argv[i];
		else {
			usage_exec(stderr);
			return EXIT_USAGE;
		}
	}
	if (!id || i >= argc - 1 || !valid_id_arg(id)) {
		usage_exec(stderr);
		return EXIT_USAGE;
	}
	json_t *args = json_array();
	for (int k = i + 1; k < argc; k++)
		json_array_append_new(args, json_string(argv[k]));
	json_t *body = json_pack("{s:o}", "argv", args);
	if (timeout > 0)
		json_object_set_new(body, "timeout_ms", json_integer(timeout));
	char *b = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	char path[128];
	snprintf(path, sizeof(path), "/v1/sandboxes/%s/exec", id);
	json_t *j;
	int rc = call(cli, "POST", path, b, &j);
	free(b);
	if (rc)
		return rc;
	if (cli->json_output) {
		print_json(j);
	} else {
		fputs(json_string_value(json_object_get(j, "stdout")) ?: "", stdout);
		fputs(json_string_value(json_object_get(j, "stderr")) ?: "", stderr);
		if (json_is_true(json_object_get(j, "timed_out")))
			fprintf(stderr, "sandnet: the command was killed at its deadline\n");
	}
	int code = (int)json_integer_value(json_object_get(j, "exit_code"));
	json_decref(j);
	return code;
}

void usage_denials(FILE *f)
{
	fputs("usage: sandnet denials ID [--since SEQ]\n"
	      "Shows what the sandbox's policy refused, oldest first: kernel rejects, proxy\n"
	      "denials and refused DNS names, with the deciding rule (or the mode). --since shows\n"
	      "only denials after that sequence number. Exit 0, 1 refused by the API, 2 usage or\n"
	      "connection error.\n",
	      f);
}

int cmd_denials(struct cli *cli, int argc, char **argv)
{
	const char *id = NULL, *since = "0";
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage_denials(stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
			since = argv[++i];
		else if (!id && argv[i][0] != '-')
			id = argv[i];
		else {
			usage_denials(stderr);
			return EXIT_USAGE;
		}
	}
	if (!id || !valid_id_arg(id) || strspn(since, "0123456789") != strlen(since) || !*since) {
		usage_denials(stderr);
		return EXIT_USAGE;
	}
	char path[160];
	snprintf(path, sizeof(path), "/v1/sandboxes/%s/network/denials?since=%s", id, since);
	json_t *j;
	int rc = call(cli, "GET", path, NULL, &j);
	if (rc)
		return rc;
	if (cli->json_output) {
		print_json(j);
	} else {
		printf("%-6s %-24s %-6s %-5s %-40s %-5s %-5s %s\n", "SEQ", "TIME", "SOURCE", "PROTO",
		       "DESTINATION", "PORT", "RULE", "REASON");
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "denials"), i, e)
		{
			const char *addr = json_string_value(json_object_get(e, "address"));
			const char *name = json_string_value(json_object_get(e, "name"));
			char dest[300];
			snprintf(dest, sizeof(dest), "%s%s%s%s", name ? name : "",
				 name && addr ? " (" : "", addr ? addr : (name ? "" : "-"),
				 name && addr ? ")" : "");
			json_t *rule = json_object_get(e, "rule");
			char r[16];
			if (json_is_integer(rule))
				snprintf(r, sizeof(r), "%lld", (long long)json_integer_value(rule));
			else
				snprintf(r, sizeof(r), "mode");
			printf("%-6lld %-24s %-6s %-5s %-40s %-5lld %-5s %s\n",
			       (long long)json_integer_value(json_object_get(e, "seq")),
			       json_string_value(json_object_get(e, "time")),
			       json_string_value(json_object_get(e, "source")),
			       json_string_value(json_object_get(e, "protocol")), dest,
			       (long long)json_integer_value(json_object_get(e, "port")), r,
			       json_string_value(json_object_get(e, "reason")));
		}
	}
	json_decref(j);
	return EXIT_OK;
}

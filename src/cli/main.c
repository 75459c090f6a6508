/* sandnet: the command-line interface. Offline policy commands run the core directly; online
 * commands talk to sandnetd's REST API. CLI layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: sandnet [--api URL] [--api-key KEY] [-o json] COMMAND ...\n"
	      "\n"
	      "Policy commands (offline, no daemon needed):\n"
	      "  policy check FILE|-        validate a policy (any dialect), print it normalised\n"
	      "  policy convert --from e2b|sandbox0|native FILE|-\n"
	      "                             convert a peer's policy to the native form\n"
	      "  policy explain FILE --dst IP --port N --proto tcp|udp|icmp [--name NAME]\n"
	      "                 [--ingress --src IP]\n"
	      "                             show which rule decides a connection\n"
	      "\n"
	      "Online commands (talk to sandnetd):\n"
	      "  sandbox create [--id ID] [--policy FILE]\n"
	      "  sandbox list | get ID | delete ID | pause ID | resume ID\n"
	      "  policy get ID | policy set ID --policy FILE\n"
	      "  exec [--timeout MS] ID -- CMD [ARGS...]\n"
	      "  denials ID [--since SEQ]   what the sandbox's policy refused\n"
	      "\n"
	      "Options:\n"
	      "  --api URL       sandnetd's API (env SANDNET_API, default http://127.0.0.1:7080)\n"
	      "  --api-key KEY   API key (env SANDNET_API_KEY)\n"
	      "  -o json         print JSON instead of tables\n"
	      "  -h, --help      this text; COMMAND --help for a command's own\n"
	      "\n"
	      "Exit codes: 0 success, 1 refused (invalid policy, API error), 2 usage or connection "
	      "error.\n",
	      f);
}

int main(int argc, char **argv)
{
	struct cli cli = {
		.api = getenv("SANDNET_API") ? getenv("SANDNET_API") : "http://127.0.0.1:7080",
		.api_key = getenv("SANDNET_API_KEY"),
	};
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			puts("sandnet 0.1.0");
			return EXIT_OK;
		} else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
			cli.api = argv[++i];
		} else if (strcmp(argv[i], "--api-key") == 0 && i + 1 < argc) {
			cli.api_key = argv[++i];
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			if (strcmp(argv[++i], "json") != 0) {
				fprintf(stderr, "sandnet: -o takes json\n");
				return EXIT_USAGE;
			}
			cli.json_output = 1;
		} else {
			fprintf(stderr, "sandnet: unknown option %s\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "policy") == 0)
		return cmd_policy(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "sandbox") == 0)
		return cmd_sandbox(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "exec") == 0)
		return cmd_exec(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "denials") == 0)
		return cmd_denials(&cli, argc - i - 1, argv + i + 1);
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	fprintf(stderr, "sandnet: unknown command \"%s\"\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}

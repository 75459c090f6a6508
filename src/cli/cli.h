/* sandnet CLI: shared declarations of the command modules. CLI layer. */
#ifndef SN_CLI_H
#define SN_CLI_H

#include <stdio.h>

#include <sandnet/policy.h>

/* Exit codes of DESIGN.md section 3. */
enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1, /* the request (or the policy) was refused */
	EXIT_USAGE = 2,   /* usage or connection error */
};

struct cli {
	const char *api;
	const char *api_key;
	int json_output; /* -o json */
};

/* Reads and parses a policy file ("-": stdin), printing what is wrong with it. Returns 0, or the
 * exit code to leave with: EXIT_USAGE when the file cannot be read, EXIT_REFUSED when the policy
 * is not valid. */
int cli_load_policy(const char *file, enum sn_dialect dialect, struct sn_policy **p);
int cmd_policy(struct cli *cli, int argc, char **argv);
void usage_policy(FILE *f);
int cmd_policy_online(struct cli *cli, int argc, char **argv);
int cmd_sandbox(struct cli *cli, int argc, char **argv);
void usage_sandbox(FILE *f);
int cmd_exec(struct cli *cli, int argc, char **argv);
void usage_exec(FILE *f);
int cmd_denials(struct cli *cli, int argc, char **argv);
void usage_denials(FILE *f);

#endif

/* sandnet CLI: shared declarations of the command modules. CLI layer. */
#ifndef SN_CLI_H
#define SN_CLI_H

#include <stdio.h>

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

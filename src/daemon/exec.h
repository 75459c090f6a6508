/* Exec in a sandbox; see exec.c. Daemon layer. */
#ifndef SN_DAEMON_EXEC_H
#define SN_DAEMON_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "cgroup.h"

#define SN_EXEC_OUTPUT_MAX (1024 * 1024) /* per stream; the rest is dropped and flagged */

struct sn_exec_req {
	char *const *argv; /* NULL-terminated */
	const char *stdin_data;
	size_t stdin_len;
	int timeout_ms;
	char netns[48];
	char resolv[128];
	const struct sn_cgroups *cgroups;
	char cgroup[48];
	unsigned uid, gid; /* who runs it (0: root, less three capabilities) */
};

struct sn_exec_out {
	char *data;
	size_t len;
	bool truncated;
};

struct sn_exec_res {
	int exit_code; /* 128 + signal when killed; 127/126 when argv[0] cannot be run */
	bool timed_out;
	struct sn_exec_out out, err;
	char setup_error[160]; /* when sn_exec_run fails: the stage and why */
};

/* Runs the command to its end or its deadline. Returns 0 (res filled; clear it) or -errno when it
 * could not be started. */
int sn_exec_run(const struct sn_exec_req *rq, struct sn_exec_res *res);
void sn_exec_res_clear(struct sn_exec_res *res);

#endif

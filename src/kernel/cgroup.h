/* Sandboxes' cgroups: one per sandbox, <cgroup2 root>/sandnet/<name>, for exec'd processes;
 * frozen while the sandbox is paused, killed whole on delete. The pids, memory and cpu controllers
 * bound what its processes hold at once (the cpu controller also gives each sandbox one share of
 * the CPU, however many processes it runs): cgroup v2's when the v2 hierarchy has them, else those
 * of their cgroup v1 hierarchies (a hybrid mount), where the sandbox gets a group of the same
 * name. Kernel layer. Functions return 0 or -errno. */
#ifndef SN_KERNEL_CGROUP_H
#define SN_KERNEL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sn_cg_ctl { SN_CG_PIDS, SN_CG_MEMORY, SN_CG_CPU, SN_CG_NCTL };

#define SN_CG_PATH  256
#define SN_CG_PROCS (SN_CG_NCTL + 1) /* the cgroup.procs files a process enters */

struct sn_cgroups {
	char base[SN_CG_PATH]; /* <cgroup2 root>/sandnet */
	/* per controller: where it is (not at all, in v2, or in the v1 hierarchy whose sandnet
	 * group is v1) and the limit put on every sandbox's group (0: none): processes and
	 * threads, bytes, thousandths of a core */
	enum { SN_CG_NONE, SN_CG_V2, SN_CG_V1 } where[SN_CG_NCTL];
	char v1[SN_CG_NCTL][SN_CG_PATH];
	uint64_t limit[SN_CG_NCTL];
};

/* The controller's name, as cgroup.controllers and mountinfo say it. */
const char *sn_cgroup_ctl_name(enum sn_cg_ctl c);

/* Finds the cgroup2 mount and creates <root>/sandnet, then finds each controller and makes it
 * usable below: a controller that is nowhere, or cannot be enabled, is left SN_CG_NONE (the caller
 * decides whether its limit may then go unenforced). */
int sn_cgroup_init(struct sn_cgroups *cg, const uint64_t limit[SN_CG_NCTL]);
/* <base>/<name> (and its v1 groups): created (existing is fine) with the limits written, frozen or
 * thawed, killed and removed. */
int sn_cgroup_create(const struct sn_cgroups *cg, const char *name);
int sn_cgroup_freeze(const struct sn_cgroups *cg, const char *name, bool frozen);
int sn_cgroup_remove(const struct sn_cgroups *cg, const char *name);
/* Kills every process in the cgroup. */
int sn_cgroup_kill(const struct sn_cgroups *cg, const char *name);
/* The cgroup.procs files that a process writes "0" into to enter the sandbox's groups (the v1
 * ones first, the v2 one last); returns how many. For a child after fork, which may then only make
 * async-signal-safe calls: sn_cgroup_enter(). */
int sn_cgroup_procs(const struct sn_cgroups *cg, const char *name, char out[][SN_CG_PATH + 64]);
int sn_cgroup_enter(char procs[][SN_CG_PATH + 64], int n);

#endif

/* Sandboxes' cgroups (cgroup v2, pure or hybrid mount): one per sandbox under <root>/sandnet/, for
 * exec'd processes; frozen while the sandbox is paused, killed whole on delete. Kernel layer.
 * Functions return 0 or -errno. */
#ifndef SN_KERNEL_CGROUP_H
#define SN_KERNEL_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

/* Finds the cgroup2 mount and creates <root>/sandnet; writes its path into base. */
int sn_cgroup_init(char *base, size_t size);
/* <base>/<name>: created (existing is fine), frozen or thawed, killed and removed. */
int sn_cgroup_create(const char *base, const char *name);
int sn_cgroup_freeze(const char *base, const char *name, bool frozen);
int sn_cgroup_remove(const char *base, const char *name);
/* Moves the calling process into the cgroup (async-signal-safe: for a child after fork). */
int sn_cgroup_enter(const char *base, const char *name);
/* Kills every process in the cgroup. */
int sn_cgroup_kill(const char *base, const char *name);

#endif

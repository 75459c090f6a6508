/* Sandboxes' cgroups; see cgroup.h. Kernel layer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, value, strlen(value));
	int rc = n < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static const char *const ctl_names[SN_CG_NCTL] = {"pids", "memory", "cpu"};
/* the file of a group that holds a controller's limit, in v2 and in v1 */
static const char *const limit_file[SN_CG_NCTL][2] = {
	{"pids.max", "pids.max"},
	{"memory.max", "memory.limit_in_bytes"},
	{"cpu.max", "cpu.cfs_quota_us"}, /* microseconds of CPU per period (100 ms by default) */
};

/* What a limit file of controller c takes for limit (0: none). */
static void limit_value(char *out, size_t size, enum sn_cg_ctl c, bool v1, uint64_t limit)
{
	if (c == SN_CG_CPU)
		limit *= 100; /* thousandths of a core -> microseconds per 100 ms */
	if (limit)
		snprintf(out, size, "%llu", (unsigned long long)limit);
	else
		snprintf(out, size, "%s", v1 && c != SN_CG_PIDS ? "-1" : "max");
}

const char *sn_cgroup_ctl_name(enum sn_cg_ctl c)
{
	return ctl_names[c];
}

/* Whether the space-separated word list in file (one line) holds word. */
static bool file_has_word(const char *file, const char *word)
{
	char line[512];
	FILE *f = fopen(file, "re");
	if (!f)
		return false;
	bool found = false;
	if (fgets(line, sizeof(line), f))
		for (char *save, *w = strtok_r(line, " \n", &save); w && !found;
		     w = strtok_r(NULL, " \n", &save))
			found = strcmp(w, word) == 0;
	fclose(f);
	return found;
}

/* From /proc/self/mountinfo ("id parent dev root mount-point options ... - type source
 * super-options"): the cgroup2 mount into v2, and for each controller the cgroup v1 mount whose
 * super options name it into v1[c]. */
static int find_mounts(char *v2, char v1[][SN_CG_PATH])
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char line[1024];
	while (fgets(line, sizeof(line), f)) {
		char mnt[SN_CG_PATH], type[16], opts[256];
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(sep + 3, "%15s %*s %255s", type, opts) != 2)
			continue;
		if (strcmp(type, "cgroup2") == 0 && !v2[0]) {
			snprintf(v2, SN_CG_PATH, "%s", mnt);
			continue;
		}
		if (strcmp(type, "cgroup") != 0)
			continue;
		char *save;
		for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
			for (int c = 0; c < SN_CG_NCTL; c++)
				if (strcmp(o, ctl_names[c]) == 0 && !v1[c][0])
					snprintf(v1[c], SN_CG_PATH, "%s", mnt);
	}
	fclose(f);
	return v2[0] ? 0 : -ENOENT;
}

int sn_cgroup_init(struct sn_cgroups *cg, const uint64_t limit[SN_CG_NCTL])
{
	char root[SN_CG_PATH] = "", v1[SN_CG_NCTL][SN_CG_PATH] = {{0}};
	memset(cg, 0, sizeof(*cg));
	int rc = find_mounts(root, v1);
	if (rc)
		return rc;
	snprintf(cg->base, sizeof(cg->base), "%s/sandnet", root);
	if (mkdir(cg->base, 0755) != 0 && errno != EEXIST)
		return -errno;
	char p[SN_CG_PATH + 32], what[32];
	for (int c = 0; c < SN_CG_NCTL; c++) {
		cg->limit[c] = limit[c];
		snprintf(p, sizeof(p), "%s/cgroup.controllers", root);
		if (file_has_word(p, ctl_names[c])) {
			/* enabled for the children of the root and of sandnet (which holds no
			 * process of its own, as v2 wants of a group that enables one) */
			snprintf(what, sizeof(what), "+%s", ctl_names[c]);
			snprintf(p, sizeof(p), "%s/cgroup.subtree_control", root);
			if (write_file(p, what) == 0) {
				snprintf(p, sizeof(p), "%s/cgroup.subtree_control", cg->base);
				if (write_file(p, what) == 0)
					cg->where[c] = SN_CG_V2;
			}
		} else if (v1[c][0]) {
			snprintf(cg->v1[c], sizeof(cg->v1[c]), "%.*s/sandnet", SN_CG_PATH - 16,
			         v1[c]);
			if (mkdir(cg->v1[c], 0755) == 0 || errno == EEXIST)
				cg->where[c] = SN_CG_V1;
		}
	}
	return 0;
}

static void path_of(char *buf, size_t size, const char *base, const char *name, const char *file)
{
	snprintf(buf, size, "%s/%s%s%s", base, name, file ? "/" : "", file ? file : "");
}

/* rmdir, waiting for the kernel to reap the processes just killed (a group that holds one is
 * busy) */
static int remove_dir(const char *p)
{
	for (int i = 0; i < 200; i++) {
		if (rmdir(p) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

int sn_cgroup_create(const struct sn_cgroups *cg, const char *name)
{
	char p[SN_CG_PATH + 96];
	path_of(p, sizeof(p), cg->base, name, NULL);
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		return -errno;
	for (int c = 0; c < SN_CG_NCTL; c++) {
		if (cg->where[c] == SN_CG_NONE)
			continue;
		bool v1 = cg->where[c] == SN_CG_V1;
		if (v1) {
			path_of(p, sizeof(p), cg->v1[c], name, NULL);
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return -errno;
		}
		/* written every time: a limit changed across a restart applies to the sandboxes
		 * there are */
		char value[24];
		limit_value(value, sizeof(value), c, v1, cg->limit[c]);
		path_of(p, sizeof(p), v1 ? cg->v1[c] : cg->base, name, limit_file[c][v1]);
		int rc = write_file(p, value);
		if (rc)
			return rc;
	}
	return 0;
}

int sn_cgroup_freeze(const struct sn_cgroups *cg, const char *name, bool frozen)
{
	char p[SN_CG_PATH + 96];
	path_of(p, sizeof(p), cg->base, name, "cgroup.freeze");
	return write_file(p, frozen ? "1" : "0");
}

int sn_cgroup_kill(const struct sn_cgroups *cg, const char *name)
{
	char p[SN_CG_PATH + 96];
	path_of(p, sizeof(p), cg->base, name, "cgroup.kill");
	return write_file(p, "1");
}

int sn_cgroup_remove(const struct sn_cgroups *cg, const char *name)
{
	char p[SN_CG_PATH + 96];
	path_of(p, sizeof(p), cg->base, name, NULL);
	int rc = 0;
	if (access(p, F_OK) == 0) {
		sn_cgroup_freeze(cg, name, false);
		sn_cgroup_kill(cg, name);
		rc = remove_dir(p);
	}
	/* the v1 groups hold the same processes, gone once the v2 group is */
	for (int c = 0; c < SN_CG_NCTL; c++)
		if (cg->where[c] == SN_CG_V1) {
			path_of(p, sizeof(p), cg->v1[c], name, NULL);
			int r = remove_dir(p);
			rc = rc ? rc : r;
		}
	return rc;
}

int sn_cgroup_procs(const struct sn_cgroups *cg, const char *name, char out[][SN_CG_PATH + 64])
{
	int n = 0;
	for (int c = 0; c < SN_CG_NCTL; c++)
		if (cg->where[c] == SN_CG_V1)
			path_of(out[n++], SN_CG_PATH + 64, cg->v1[c], name, "cgroup.procs");
	path_of(out[n++], SN_CG_PATH + 64, cg->base, name, "cgroup.procs");
	return n;
}

int sn_cgroup_enter(char procs[][SN_CG_PATH + 64], int n)
{
	for (int i = 0; i < n; i++) {
		int rc = write_file(procs[i], "0");
		if (rc)
			return rc;
	}
	return 0;
}

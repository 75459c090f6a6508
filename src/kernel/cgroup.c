/* cgroup v2 files; see cgroup.h. Kernel layer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

int sn_cgroup_init(char *base, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -errno;
	char line[1024], root[512] = "";
	while (fgets(line, sizeof(line), f)) {
		/* "... mount-point ... - cgroup2 ..." */
		char mnt[512];
		const char *sep = strstr(line, " - cgroup2 ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1)
			continue;
		snprintf(root, sizeof(root), "%s", mnt);
		break;
	}
	fclose(f);
	if (!root[0])
		return -ENOENT;
	snprintf(base, size, "%s/sandnet", root);
	if (mkdir(base, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void path_of(char *buf, size_t size, const char *base, const char *name, const char *file)
{
	snprintf(buf, size, "%s/%s%s%s", base, name, file ? "/" : "", file ? file : "");
}

int sn_cgroup_create(const char *base, const char *name)
{
	char p[512];
	path_of(p, sizeof(p), base, name, NULL);
	return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int sn_cgroup_freeze(const char *base, const char *name, bool frozen)
{
	char p[512];
	path_of(p, sizeof(p), base, name, "cgroup.freeze");
	return write_file(p, frozen ? "1" : "0");
}

int sn_cgroup_kill(const char *base, const char *name)
{
	char p[512];
	path_of(p, sizeof(p), base, name, "cgroup.kill");
	return write_file(p, "1");
}

int sn_cgroup_remove(const char *base, const char *name)
{
	char p[512];
	path_of(p, sizeof(p), base, name, NULL);
	if (access(p, F_OK) != 0)
		return 0;
	sn_cgroup_freeze(base, name, false);
	sn_cgroup_kill(base, name);
	/* the kernel needs a moment to reap what it killed before the directory can go */
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

int sn_cgroup_enter(const char *base, const char *name)
{
	char p[512];
	path_of(p, sizeof(p), base, name, "cgroup.procs");
	return write_file(p, "0");
}

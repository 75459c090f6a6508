/* POST /v1/sandboxes/{id}/exec: runs argv inside a sandbox's network namespace (with its
 * resolv.conf) and cgroup, as an unprivileged user without any capability (--exec-user; root
 * keeps all but CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN), with an environment of its own and
 * a deadline, returning the exit code and bounded stdout and stderr. Daemon layer; runs on the
 * request's thread without the control lock. Limits: docs/DAEMON.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "exec.h"
#include "link.h"

static const int dropped_caps[] = {CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN};

/* Setup stages, reported by the child through a close-on-exec pipe when one fails. */
enum stage {
	ST_NETNS = 1,
	ST_MOUNTNS,
	ST_RESOLV,
	ST_CGROUP,
	ST_CAPS,
	ST_USER,
	ST_STDIO,
	ST_FDS,
	ST_EXEC,
	ST_COUNT
};
static const char *const stage_name[ST_COUNT] = {"",
						 "entering the namespace",
						 "a mount namespace",
						 "resolv.conf",
						 "the cgroup",
						 "dropping capabilities",
						 "the user",
						 "stdio",
						 "closing the daemon's descriptors",
						 "exec"};

/* The command's whole environment: nothing of the daemon's. */
static char *exec_env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				 "HOME=/", "LANG=C.UTF-8", NULL};

struct report {
	int stage, err;
};

static void fail(int pe, int stage)
{
	struct report r = {stage, errno};
	if (write(pe, &r, sizeof(r)) < 0)
		_exit(127);
	_exit(127);
}

/* In the child, after fork: only async-signal-safe calls. */
static void child(const struct sn_exec_req *rq, char procs[][SN_CG_PATH + 64], int nprocs,
                  int netns_fd, int in, int out, int err, int pe)
{
	if (setns(netns_fd, CLONE_NEWNET) != 0)
		fail(pe, ST_NETNS);
	/* a mount namespace of its own, where the sandbox's resolv.conf is /etc/resolv.conf */
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) != 0)
		fail(pe, ST_MOUNTNS);
	if (access(rq->resolv, R_OK) == 0 && access("/etc/resolv.conf", F_OK) == 0 &&
	    mount(rq->resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) != 0)
		fail(pe, ST_RESOLV);
	if (sn_cgroup_enter(procs, nprocs) != 0)
		fail(pe, ST_CGROUP);
	/* the network stays as sandnet made it: no NET_ADMIN, NET_RAW or SYS_ADMIN, now or later;
	 * another user than root gets no capability at all, ever (the bounding set emptied: the
	 * kernel's capabilities are numbered from 0 up to the first it refuses) */
	for (size_t i = 0; i < sizeof(dropped_caps) / sizeof(dropped_caps[0]); i++)
		if (prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) != 0)
			fail(pe, ST_CAPS);
	for (int c = 0; rq->uid && c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
			if (errno != EINVAL || c == 0)
				fail(pe, ST_CAPS);
			break;
		}
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) != 0)
		fail(pe, ST_CAPS);
	for (size_t i = 0; i < sizeof(dropped_caps) / sizeof(dropped_caps[0]); i++) {
		int c = dropped_caps[i];
		data[c / 32].effective &= ~(1u << (c % 32));
		data[c / 32].permitted &= ~(1u << (c % 32));
		data[c / 32].inheritable &= ~(1u << (c % 32));
	}
	if (syscall(SYS_capset, &hdr, data) != 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fail(pe, ST_CAPS);
	/* root on a host it shares every file with could still take the host (or the daemon, and
	 * through it the network) in a hundred ways: by default the command runs as a user of its
	 * sandbox's own, and that change of user also clears the capabilities left */
	if (chdir("/") != 0)
		fail(pe, ST_USER);
	if (rq->uid && (setgroups(0, NULL) != 0 || setresgid(rq->gid, rq->gid, rq->gid) != 0 ||
			setresuid(rq->uid, rq->uid, rq->uid) != 0))
		fail(pe, ST_USER);
	environ = exec_env;
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		fail(pe, ST_STDIO);
	/* nothing of the daemon's goes with it: some libraries open their sockets without
	 * close-on-exec (libnetfilter_log's, which receives every sandbox's kernel denials), and no
	 * other thread's descriptor opened since is known here. Marked, not closed: pe reports a
	 * failed exec. Fails closed on a kernel without close_range (before 5.11). */
	if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
		fail(pe, ST_FDS);
	/* its own process group, and default signal handling */
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	execvp(rq->argv[0], rq->argv);
	fail(pe, ST_EXEC);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append(struct sn_exec_out *o, const char *buf, size_t n)
{
	size_t room = SN_EXEC_OUTPUT_MAX - o->len;
	if (n > room) {
		o->truncated = true;
		n = room;
	}
	memcpy(o->data + o->len, buf, n);
	o->len += n;
}

int sn_exec_run(const struct sn_exec_req *rq, struct sn_exec_res *res)
{
	memset(res, 0, sizeof(*res));
	res->out.data = malloc(SN_EXEC_OUTPUT_MAX);
	res->err.data = malloc(SN_EXEC_OUTPUT_MAX);
	if (!res->out.data || !res->err.data)
		return -ENOMEM;
	/* the paths are made before the fork: a child of a threaded process may only make
	 * async-signal-safe calls */
	char procs[SN_CG_PROCS][SN_CG_PATH + 64];
	int nprocs = sn_cgroup_procs(rq->cgroups, rq->cgroup, procs);
	int netns = sn_netns_open(rq->netns);
	if (netns < 0)
		return netns;
	int pin[2], pout[2], perr[2], pe[2];
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC) ||
	    pipe2(pe, O_CLOEXEC)) {
		close(netns);
		return -errno;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(netns);
		return -e;
	}
	if (pid == 0)
		child(rq, procs, nprocs, netns, pin[0], pout[1], perr[1], pe[1]);
	close(netns);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	close(pe[1]);
	/* the report pipe closes at exec: nothing read means the command runs */
	struct report rep = {0, 0};
	ssize_t got;
	while ((got = read(pe[0], &rep, sizeof(rep))) < 0 && errno == EINTR)
		;
	close(pe[0]);
	if (got == (ssize_t)sizeof(rep)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		if (rep.stage == ST_EXEC) {
			/* like a shell: 127 not found, 126 not executable */
			res->exit_code = rep.err == ENOENT ? 127 : 126;
			char msg[256];
			int n = snprintf(msg, sizeof(msg), "sandnet: %s: %s\n", rq->argv[0],
					 strerror(rep.err));
			append(&res->err, msg, (size_t)n);
			return 0;
		}
		snprintf(res->setup_error, sizeof(res->setup_error), "%s: %s",
			 stage_name[rep.stage > 0 && rep.stage < ST_COUNT ? rep.stage : 0],
			 strerror(rep.err));
		return rep.err ? -rep.err : -EIO;
	}
	fcntl(pin[1], F_SETFL, O_NONBLOCK);
	size_t in_off = 0;
	if (!rq->stdin_len) {
		close(pin[1]);
		pin[1] = -1;
	}
	int64_t deadline = now_ms() + rq->timeout_ms;
	int open_fds = 2;
	while (open_fds > 0) {
		struct pollfd p[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pin[1], POLLOUT, 0}};
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			res->timed_out = true;
			break;
		}
		int n = poll(p, 3, (int)(left > 1000 ? 1000 : left));
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[16384];
			ssize_t r = read(p[i].fd, buf, sizeof(buf));
			if (r > 0) {
				append(i == 0 ? &res->out : &res->err, buf, (size_t)r);
			} else if (r == 0 || errno != EAGAIN) {
				close(p[i].fd);
				if (i == 0)
					pout[0] = -1;
				else
					perr[0] = -1;
				open_fds--;
			}
		}
		if (pin[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(pin[1], rq->stdin_data + in_off, rq->stdin_len - in_off);
			if (w > 0)
				in_off += (size_t)w;
			if ((w < 0 && errno != EAGAIN) || in_off == rq->stdin_len) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
	}
	if (res->timed_out) {
		/* the command and everything it started */
		sn_cgroup_kill(rq->cgroups, rq->cgroup);
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	if (pin[1] >= 0)
		close(pin[1]);
	if (pout[0] >= 0)
		close(pout[0]);
	if (perr[0] >= 0)
		close(perr[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		res->exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		res->exit_code = 128 + WTERMSIG(status);
	return 0;
}

void sn_exec_res_clear(struct sn_exec_res *res)
{
	free(res->out.data);
	free(res->err.data);
	memset(res, 0, sizeof(*res));
}

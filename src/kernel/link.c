/* rtnetlink plumbing with libmnl; see link.h. Kernel layer. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <stdbool.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "link.h"

/* A netlink route socket in netns_fd: created after switching this thread into it, then the thread
 * switches back; the socket stays in the namespace it was created in. */
static struct mnl_socket *nl_open(int netns_fd)
{
	int self = -1;
	if (netns_fd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0)
			return NULL;
		if (setns(netns_fd, CLONE_NEWNET) != 0) {
			int e = errno;
			close(self);
			errno = e;
			return NULL;
		}
	}
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	int e = errno;
	if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		mnl_socket_close(nl);
		nl = NULL;
	}
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) != 0)
			abort(); /* the control thread must never stay in a sandbox's namespace */
		close(self);
	}
	errno = e;
	return nl;
}

/* Sends one request and waits for its acknowledgement; returns 0 or -errno from the kernel. */
static int nl_talk(struct mnl_socket *nl, struct nlmsghdr *nlh)
{
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	int rc = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(nl), NULL, NULL);
	return rc < 0 ? -errno : 0;
}

static int with_socket(int netns_fd, int (*fn)(struct mnl_socket *nl, void *arg), void *arg)
{
	struct mnl_socket *nl = nl_open(netns_fd);
	if (!nl)
		return -errno;
	int rc = fn(nl, arg);
	mnl_socket_close(nl);
	return rc;
}

/* ifindex of a name inside the socket's namespace (if_nametoindex would ask ours). */
static int ifindex(struct mnl_socket *nl, const char *name, unsigned *out)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	struct nlmsghdr *r = (struct nlmsghdr *)buf;
	if (r->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = mnl_nlmsg_get_payload(r);
		return e->error ? e->error : -ENODEV;
	}
	if (r->nlmsg_type != RTM_NEWLINK)
		return -EPROTO;
	struct ifinfomsg *got = mnl_nlmsg_get_payload(r);
	*out = (unsigned)got->ifi_index;
	return 0;
}

int sn_netns_open(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), SN_NETNS_RUN_DIR "/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int sn_netns_socket(const char *name, int self, int domain, int type)
{
	int ns = sn_netns_open(name);
	if (ns < 0)
		return ns;
	int rc = setns(ns, CLONE_NEWNET) != 0 ? -errno : 0;
	close(ns);
	if (rc)
		return rc;
	int fd = socket(domain, type, 0);
	int e = errno;
	if (setns(self, CLONE_NEWNET) != 0)
		abort();
	return fd < 0 ? -e : fd;
}

/* /run/netns as ip-netns(8) sets it up: a shared mount point, so that the bind mounts made in it
 * propagate to every mount namespace. */
static int run_dir_ready(void)
{
	if (mkdir(SN_NETNS_RUN_DIR, 0755) != 0 && errno != EEXIST)
		return -errno;
	if (mount("", SN_NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	/* not a mount point yet: bind it onto itself first */
	if (mount(SN_NETNS_RUN_DIR, SN_NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) != 0)
		return -errno;
	if (mount("", SN_NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) != 0)
		return -errno;
	return 0;
}

static int lo_up(struct mnl_socket *nl, void *arg)
{
	(void)arg;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = 1; /* lo */
	ifm->ifi_flags = IFF_UP;
	ifm->ifi_change = IFF_UP;
	return nl_talk(nl, nlh);
}

int sn_netns_add(const char *name)
{
	int rc = run_dir_ready();
	if (rc)
		return rc;
	char path[256];
	snprintf(path, sizeof(path), SN_NETNS_RUN_DIR "/%s", name);
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	/* a child enters a new namespace and pins it on the file; the daemon's threads stay put */
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		unlink(path);
		return rc;
	}
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) != 0)
			_exit(1);
		if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) != 0)
			_exit(2);
		_exit(0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			unlink(path);
			return -errno;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(path);
		return WIFEXITED(status) && WEXITSTATUS(status) == 1 ? -EPERM : -EIO;
	}
	int ns = sn_netns_open(name);
	if (ns < 0) {
		sn_netns_del(name);
		return ns;
	}
	rc = with_socket(ns, lo_up, NULL);
	close(ns);
	if (rc)
		sn_netns_del(name);
	return rc;
}

int sn_netns_del(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), SN_NETNS_RUN_DIR "/%s", name);
	if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlink(path) != 0)
		return -errno;
	return 0;
}

struct veth_arg {
	const char *host_if, *peer_if;
	int peer_netns_fd;
};

static int veth(struct mnl_socket *nl, void *arg)
{
	struct veth_arg *a = arg;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, a->host_if);
	struct nlattr *linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
	struct nlattr *data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	struct nlattr *peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
	struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*pifm));
	pifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, a->peer_if);
	if (a->peer_netns_fd >= 0)
		mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, (uint32_t)a->peer_netns_fd);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, linkinfo);
	return nl_talk(nl, nlh);
}

int sn_link_add_veth(const char *host_if, const char *peer_if, int peer_netns_fd)
{
	struct veth_arg a = {host_if, peer_if, peer_netns_fd};
	return with_socket(-1, veth, &a);
}

struct link_arg {
	const char *ifname;
	int op; /* 0 delete, 1 up */
};

static int link_op(struct mnl_socket *nl, void *arg)
{
	struct link_arg *a = arg;
	unsigned idx;
	int rc = ifindex(nl, a->ifname, &idx);
	if (rc)
		return rc;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = a->op ? RTM_NEWLINK : RTM_DELLINK;
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)idx;
	if (a->op) {
		ifm->ifi_flags = IFF_UP;
		ifm->ifi_change = IFF_UP;
	}
	return nl_talk(nl, nlh);
}

int sn_link_del(int netns_fd, const char *ifname)
{
	struct link_arg a = {ifname, 0};
	return with_socket(netns_fd, link_op, &a);
}

int sn_link_up(int netns_fd, const char *ifname)
{
	struct link_arg a = {ifname, 1};
	return with_socket(netns_fd, link_op, &a);
}

struct addr_arg {
	const char *ifname;
	int family;
	const uint8_t *addr;
	unsigned plen;
	bool route; /* default route via addr instead of an address */
};

static int addr_op(struct mnl_socket *nl, void *arg)
{
	struct addr_arg *a = arg;
	unsigned idx;
	int rc = ifindex(nl, a->ifname, &idx);
	if (rc)
		return rc;
	size_t alen = a->family == AF_INET6 ? 16 : 4;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	if (!a->route) {
		nlh->nlmsg_type = RTM_NEWADDR;
		struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = (uint8_t)a->family;
		ifa->ifa_prefixlen = (uint8_t)a->plen;
		ifa->ifa_index = idx;
		ifa->ifa_scope = RT_SCOPE_UNIVERSE;
		mnl_attr_put(nlh, IFA_LOCAL, alen, a->addr);
		mnl_attr_put(nlh, IFA_ADDRESS, alen, a->addr);
		if (a->family == AF_INET6)
			mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
	} else {
		nlh->nlmsg_type = RTM_NEWROUTE;
		struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = (uint8_t)a->family;
		rtm->rtm_dst_len = 0;
		rtm->rtm_table = RT_TABLE_MAIN;
		rtm->rtm_protocol = RTPROT_STATIC;
		rtm->rtm_scope = RT_SCOPE_UNIVERSE;
		rtm->rtm_type = RTN_UNICAST;
		mnl_attr_put(nlh, RTA_GATEWAY, alen, a->addr);
		mnl_attr_put_u32(nlh, RTA_OIF, idx);
	}
	return nl_talk(nl, nlh);
}

int sn_addr_add(int netns_fd, const char *ifname, int family, const uint8_t *addr, unsigned plen)
{
	struct addr_arg a = {ifname, family, addr, plen, false};
	return with_socket(netns_fd, addr_op, &a);
}

int sn_route_add_default(int netns_fd, const char *ifname, int family, const uint8_t *gw)
{
	struct addr_arg a = {ifname, family, gw, 0, true};
	return with_socket(netns_fd, addr_op, &a);
}

int sn_sysctl_set(int netns_fd, const char *key, const char *value)
{
	/* /proc/sys/net shows the namespace of the thread that opens it */
	int self = -1;
	if (netns_fd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0 || setns(netns_fd, CLONE_NEWNET) != 0) {
			int e = errno;
			if (self >= 0)
				close(self);
			return -e;
		}
	}
	char path[256];
	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0)
		rc = -errno;
	else {
		if (write(fd, value, strlen(value)) < 0)
			rc = -errno;
		close(fd);
	}
	if (self >= 0) {
		if (setns(self, CLONE_NEWNET) != 0)
			abort();
		close(self);
	}
	return rc;
}

struct exists_arg {
	const char *ifname;
};

static int exists_op(struct mnl_socket *nl, void *arg)
{
	unsigned idx;
	return ifindex(nl, ((struct exists_arg *)arg)->ifname, &idx);
}

int sn_link_exists(int netns_fd, const char *ifname)
{
	struct exists_arg a = {ifname};
	int rc = with_socket(netns_fd, exists_op, &a);
	return rc == 0 ? 1 : rc == -ENODEV ? 0 : rc;
}

/* Sandbox plumbing over rtnetlink (libmnl): named network namespaces that ip-netns(8) sees, veth
 * pairs, addresses, routes. Kernel layer. Functions return 0 or -errno captured right after the
 * failing call. netns_fd -1 means the calling thread's namespace. Control thread only: operations
 * inside another namespace switch the calling thread into it for the socket's creation. */
#ifndef SN_KERNEL_LINK_H
#define SN_KERNEL_LINK_H

#include <stdint.h>

#include <sandnet/policy.h>

#define SN_NETNS_RUN_DIR "/run/netns"

/* Creates SN_NETNS_RUN_DIR/<name> holding a new namespace, with its loopback up. -EEXIST when the
 * name is taken. */
int sn_netns_add(const char *name);
/* Removes the name (the namespace goes when its last process leaves). -ENOENT when absent. */
int sn_netns_del(const char *name);
/* Opens a namespace by name; returns an fd (close it) or -errno. */
int sn_netns_open(const char *name);
/* A socket made inside the named namespace, from any thread: the thread switches into it for
 * socket() and back into self (an fd of its own namespace); the socket stays in the namespace it
 * was made in. Returns the socket or -errno. Aborts when the thread cannot switch back: a thread
 * left in a sandbox's namespace would make its next sockets there. */
int sn_netns_socket(const char *name, int self, int domain, int type);

/* Creates a veth pair: host_if here (down), peer_if inside peer_netns_fd. */
int sn_link_add_veth(const char *host_if, const char *peer_if, int peer_netns_fd);
/* Deletes a link (a veth takes its peer with it). -ENODEV when absent. */
int sn_link_del(int netns_fd, const char *ifname);
int sn_link_up(int netns_fd, const char *ifname);
/* 1 when the link exists, 0 when not, or -errno. */
int sn_link_exists(int netns_fd, const char *ifname);
/* Adds addr/plen to ifname (IPv6 without duplicate address detection). */
int sn_addr_add(int netns_fd, const char *ifname, int family, const uint8_t *addr, unsigned plen);
/* Adds the default route via gw on ifname. */
int sn_route_add_default(int netns_fd, const char *ifname, int family, const uint8_t *gw);
/* Writes a sysctl under /proc/sys inside netns_fd ("net/ipv4/ip_forward", "1"). */
int sn_sysctl_set(int netns_fd, const char *key, const char *value);

#endif

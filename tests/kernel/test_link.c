/* Tests of the rtnetlink plumbing (src/kernel/link.c) against the real kernel: a named namespace
 * that ip-netns(8) sees, a veth pair across it, addresses, routes, a sysctl, traffic across, and
 * removal that leaves nothing. Run inside a network namespace of its own (ctest uses unshare -n);
 * the names are PID-suffixed and removed even when a check fails. Needs root: skipped (77)
 * otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "link.h"

static char ns[64], hif[16];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int teardown(void **state)
{
	(void)state;
	sn_link_del(-1, hif);
	sn_netns_del(ns);
	return 0;
}

static void test_plumbing(void **state)
{
	(void)state;
	uint8_t h4[4], s4[4], h6[16], s6[16];
	inet_pton(AF_INET, "10.250.0.1", h4);
	inet_pton(AF_INET, "10.250.0.2", s4);
	inet_pton(AF_INET6, "fd00:250::1", h6);
	inet_pton(AF_INET6, "fd00:250::2", s6);

	assert_int_equal(sn_netns_add(ns), 0);
	assert_int_equal(sn_netns_add(ns), -EEXIST);
	assert_int_equal(sh("ip netns list | grep -qw %s", ns), 0);
	int fd = sn_netns_open(ns);
	assert_true(fd >= 0);

	assert_int_equal(sn_link_add_veth(hif, "eth0", fd), 0);
	assert_int_equal(sn_link_add_veth(hif, "eth0", fd), -EEXIST);
	assert_int_equal(sn_addr_add(-1, hif, AF_INET, h4, 30), 0);
	assert_int_equal(sn_addr_add(-1, hif, AF_INET6, h6, 64), 0);
	assert_int_equal(sn_link_up(-1, hif), 0);
	assert_int_equal(sn_addr_add(fd, "eth0", AF_INET, s4, 30), 0);
	assert_int_equal(sn_addr_add(fd, "eth0", AF_INET6, s6, 64), 0);
	assert_int_equal(sn_link_up(fd, "eth0"), 0);
	assert_int_equal(sn_route_add_default(fd, "eth0", AF_INET, h4), 0);
	assert_int_equal(sn_route_add_default(fd, "eth0", AF_INET6, h6), 0);
	assert_int_equal(sn_addr_add(fd, "nope0", AF_INET, s4, 30), -ENODEV);
	assert_int_equal(sn_sysctl_set(fd, "net/ipv4/ip_forward", "1"), 0);

	/* what ip(8) sees, and traffic both ways */
	assert_int_equal(sh("ip -n %s addr show eth0 | grep -q 'inet 10.250.0.2/30'", ns), 0);
	assert_int_equal(sh("ip -n %s -6 route | grep -q 'default via fd00:250::1'", ns), 0);
	assert_int_equal(sh("ip -n %s link show lo | grep -q UP", ns), 0);
	assert_int_equal(sh("test \"$(ip netns exec %s sysctl -n net.ipv4.ip_forward)\" = 1", ns), 0);
	assert_int_equal(sh("ip netns exec %s ping -c1 -W2 10.250.0.1 >/dev/null", ns), 0);
	assert_int_equal(sh("ip netns exec %s ping -c1 -W2 1.2.3.4 >/dev/null 2>&1", ns) != 0, 1);
	assert_int_equal(sh("ping -c1 -W2 10.250.0.2 >/dev/null"), 0);
	assert_int_equal(sh("ip netns exec %s ping -6 -c1 -W2 fd00:250::1 >/dev/null", ns), 0);
	/* our own namespace never moved */
	assert_int_equal(sh("ip link show %s >/dev/null 2>&1", hif), 0);
	close(fd);

	/* removal: the veth takes its peer, the name goes */
	assert_int_equal(sn_link_del(-1, hif), 0);
	assert_int_equal(sn_link_del(-1, hif), -ENODEV);
	assert_int_equal(sh("ip -n %s link show eth0 >/dev/null 2>&1", ns) != 0, 1);
	assert_int_equal(sn_netns_del(ns), 0);
	assert_int_equal(sn_netns_del(ns), -ENOENT);
	assert_int_equal(sh("ip netns list | grep -qw %s", ns) != 0, 1);
}

int main(void)
{
	if (geteuid() != 0) {
		puts("not root: skipped");
		return 77;
	}
	snprintf(ns, sizeof(ns), "sn-test-link-%d", (int)getpid());
	snprintf(hif, sizeof(hif), "tl%d", (int)getpid() % 1000000);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_plumbing, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

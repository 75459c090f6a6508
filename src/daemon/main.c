/* sandnetd: the sandnet daemon. Parses flags, checks privileges and kernel features, reconciles the
 * kernel with the store, serves the REST API until SIGTERM or SIGINT. Daemon layer. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "api.h"
#include "daemon.h"

int main(int argc, char **argv)
{
	static struct sn_daemon d;
	if (!sn_config_parse(&d.cfg, argc, argv))
		return 2;
	pthread_mutex_init(&d.lock, NULL);
	pthread_mutex_init(&d.kernel_lock, NULL);
	/* a proxied connection holds two to six descriptors, an ingress one one or two */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sn_fd_reserve_init();
	/* signals are taken synchronously below, by sigwait */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char err[1024];
	if (sn_daemon_start(&d, err, sizeof(err))) {
		sn_log(SN_LOG_ERROR, "cannot start: %s", err);
		sn_daemon_stop(&d);
		return 1;
	}
	/* a daemon killed a moment ago may still hold the DNS and proxy ports: wait up to 5 s */
	int rc = 0;
	for (int i = 0; i < 25; i++) {
		if (!d.dnsfwd && (rc = sn_dnsfwd_start(&d, &d.dnsfwd, err, sizeof(err))))
			d.dnsfwd = NULL;
		if (!rc && !d.eproxy && (rc = sn_eproxy_start(&d, &d.eproxy, err, sizeof(err))))
			d.eproxy = NULL;
		if (rc != -EADDRINUSE)
			break;
		struct timespec ts = {.tv_nsec = 200000000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; !rc && i < 25; i++) {
		if (!(rc = sn_ingress_start(&d, &d.ingress, err, sizeof(err))) || rc != -EADDRINUSE)
			break;
		struct timespec ts = {.tv_nsec = 200000000};
		nanosleep(&ts, NULL);
	}
	if (rc || sn_kdeny_start(&d, &d.kdeny, err, sizeof(err))) {
		sn_log(SN_LOG_ERROR, "cannot start: %s", err);
		sn_ingress_stop(d.ingress);
		sn_eproxy_stop(d.eproxy);
		sn_dnsfwd_stop(d.dnsfwd);
		sn_daemon_stop(&d);
		return 1;
	}
	struct MHD_Daemon *api = sn_api_start(&d, err, sizeof(err));
	if (!api) {
		sn_log(SN_LOG_ERROR, "cannot start: %s", err);
		sn_daemon_stop(&d);
		return 1;
	}
	sn_log(SN_LOG_INFO, "listening on %s:%u (state %s)", d.cfg.listen_addr, d.cfg.listen_port,
	       d.cfg.state_dir);
	int sig = 0;
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		;
	sn_log(SN_LOG_INFO, "signal %d: stopping (kernel rules stay in force)", sig);
	MHD_stop_daemon(api);
	pthread_mutex_lock(&d.lock);
	sn_kdeny_stop(d.kdeny);
	sn_ingress_stop(d.ingress);
	sn_eproxy_stop(d.eproxy);
	sn_dnsfwd_stop(d.dnsfwd);
	sn_daemon_stop(&d);
	return 0;
}

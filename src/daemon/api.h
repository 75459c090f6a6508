/* sandnetd's REST API. Daemon layer. */
#ifndef SN_DAEMON_API_H
#define SN_DAEMON_API_H

#include <arpa/inet.h>
#include <microhttpd.h>

#include "daemon.h"

/* Starts serving on cfg.listen; NULL (err says why) when it cannot. Stop with MHD_stop_daemon. */
struct MHD_Daemon *sn_api_start(struct sn_daemon *d, char *err, size_t errsize);

#endif

/* The name a client says it wants, read from the first bytes of a connection: the SNI of a TLS
 * ClientHello (reassembled across records and segments) or the host of an HTTP/1 request head: the
 * authority of an absolute-form target ("GET http://name/ HTTP/1.1", which a server must obey over
 * Host) or of CONNECT's target, else the Host field (which must be there once, even then).
 * Proxy layer; pure, allocation-free, resumable: call again with more bytes.
 *
 * Return convention (STYLE.md, incremental parsers): > 0 the name's length, written to name
 * (lower-cased, NUL-terminated); 0 need more bytes; < 0: -ENOENT a complete message without a
 * name, -EPROTO not this protocol, -EINVAL malformed, -E2BIG over the cap. */
#ifndef SN_PROXY_SNIFF_H
#define SN_PROXY_SNIFF_H

#include <stddef.h>
#include <stdint.h>

#define SN_SNIFF_TLS_MAX 16384 /* handshake bytes reassembled at most (post-quantum hellos ~1.6 KB) */
#define SN_SNIFF_HTTP_MAX 8192 /* request head bytes at most */

int sn_sniff_tls_sni(const uint8_t *buf, size_t len, char *name, size_t size);
int sn_sniff_http_host(const uint8_t *buf, size_t len, char *name, size_t size);

#endif

/* Tests of the SNI and Host sniffers (src/proxy/sniff.c): ClientHellos built here, with and
 * without SNI, a 1.6 KB post-quantum-sized one, split across records and fed byte by byte;
 * HTTP heads with ports, case, duplicates, literals and garbage. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sniff.h"

struct b {
	uint8_t v[20000];
	size_t n;
};

static void u8(struct b *b, unsigned x)
{
	b->v[b->n++] = (uint8_t)x;
}
static void u16(struct b *b, unsigned x)
{
	u8(b, x >> 8);
	u8(b, x & 255);
}
static void bytes(struct b *b, const void *p, size_t n)
{
	memcpy(b->v + b->n, p, n);
	b->n += n;
}

/* A ClientHello handshake message (no record header). sni NULL: no server_name. */
static void client_hello(struct b *hs, const char *sni, size_t key_share)
{
	struct b body = {.n = 0}, ext = {.n = 0};
	u16(&body, 0x0303);
	for (int i = 0; i < 32; i++)
		u8(&body, (unsigned)i);
	u8(&body, 32);
	for (int i = 0; i < 32; i++)
		u8(&body, 0xaa);
	u16(&body, 4);
	u16(&body, 0x1301);
	u16(&body, 0x1302);
	u8(&body, 1);
	u8(&body, 0);
	/* an extension before SNI, SNI, then a large key_share */
	u16(&ext, 0x000b);
	u16(&ext, 2);
	u8(&ext, 1);
	u8(&ext, 0);
	if (sni) {
		size_t l = strlen(sni);
		u16(&ext, 0);
		u16(&ext, (unsigned)(l + 5));
		u16(&ext, (unsigned)(l + 3));
		u8(&ext, 0);
		u16(&ext, (unsigned)l);
		bytes(&ext, sni, l);
	}
	if (key_share) {
		u16(&ext, 0x0033);
		u16(&ext, (unsigned)key_share);
		for (size_t i = 0; i < key_share; i++)
			u8(&ext, 0x42);
	}
	u16(&body, (unsigned)ext.n);
	bytes(&body, ext.v, ext.n);
	hs->n = 0;
	u8(hs, 1);
	u8(hs, (unsigned)(body.n >> 16));
	u16(hs, (unsigned)(body.n & 0xffff));
	bytes(hs, body.v, body.n);
}

/* Wraps a handshake message in records of at most rec bytes each. */
static void records(struct b *out, const struct b *hs, size_t rec)
{
	out->n = 0;
	for (size_t off = 0; off < hs->n; off += rec) {
		size_t l = hs->n - off < rec ? hs->n - off : rec;
		u8(out, 22);
		u16(out, 0x0301);
		u16(out, (unsigned)l);
		bytes(out, hs->v + off, l);
	}
}

static void test_tls(void **state)
{
	(void)state;
	static struct b hs, wire;
	char name[256];
	client_hello(&hs, "API.GitHub.com", 0);
	records(&wire, &hs, 16384);
	assert_int_equal(sn_sniff_tls_sni(wire.v, wire.n, name, sizeof(name)), 14);
	assert_string_equal(name, "api.github.com");
	/* every prefix asks for more */
	for (size_t n = 0; n < wire.n; n++)
		assert_int_equal(sn_sniff_tls_sni(wire.v, n, name, sizeof(name)), 0);
	/* a 1.6 KB post-quantum key share, the message split over three records */
	client_hello(&hs, "example.com", 1216 + 400);
	records(&wire, &hs, 600);
	assert_true(wire.n > 1600);
	assert_int_equal(sn_sniff_tls_sni(wire.v, wire.n, name, sizeof(name)), 11);
	assert_string_equal(name, "example.com");
	for (size_t n = 0; n < wire.n; n += 7)
		assert_int_equal(sn_sniff_tls_sni(wire.v, n, name, sizeof(name)), 0);
	/* no SNI */
	client_hello(&hs, NULL, 100);
	records(&wire, &hs, 16384);
	assert_int_equal(sn_sniff_tls_sni(wire.v, wire.n, name, sizeof(name)), -ENOENT);
	/* not TLS, not a ClientHello, malformed lengths, bad names */
	assert_int_equal(sn_sniff_tls_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name, 256),
			 -EPROTO);
	client_hello(&hs, "a.com", 0);
	hs.v[0] = 2; /* ServerHello */
	records(&wire, &hs, 16384);
	assert_int_equal(sn_sniff_tls_sni(wire.v, wire.n, name, sizeof(name)), -EPROTO);
	client_hello(&hs, "a.com", 0);
	hs.v[4 + 2 + 32] = 33; /* session id longer than 32 */
	records(&wire, &hs, 16384);
	assert_int_equal(sn_sniff_tls_sni(wire.v, wire.n, name, sizeof(name)), -EINVAL);
	client_hello(&hs, "bad name.com", 0);
	records(&wire, &hs, 16384);
	assert_int_equal(sn_sniff_tls_sni(wire.v, wire.n, name, sizeof(name)), -EINVAL);
	/* a message longer than the reassembly cap */
	uint8_t big[9] = {22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00};
	assert_int_equal(sn_sniff_tls_sni(big, sizeof(big), name, sizeof(name)), -E2BIG);
}

static int http(const char *req, char *name)
{
	return sn_sniff_http_host((const uint8_t *)req, strlen(req), name, 256);
}

static void test_http(void **state)
{
	(void)state;
	char name[256];
	assert_int_equal(http("GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n", name), 11);
	assert_string_equal(name, "example.com");
	assert_int_equal(http("POST /x HTTP/1.1\r\nUser-Agent: t\r\nhOsT:   a.b:8080  \r\n\r\nbody", name),
			 3);
	assert_string_equal(name, "a.b");
	assert_int_equal(http("GET / HTTP/1.1\r\nHost: a.com\r\n", name), 0); /* head not ended */
	assert_int_equal(http("GET", name), 0);
	assert_int_equal(http("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", name), -ENOENT);
	assert_int_equal(http("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", name), -ENOENT);
	assert_int_equal(http("GET / HTTP/1.1\r\nHost: a.com\r\nHost: b.com\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("GET / HTTP/1.1\r\nHost: a.com:x\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("GET / FTP/1.0\r\nHost: a.com\r\n\r\n", name), -EINVAL);
	/* an absolute-form target: its authority, not Host, names the host (RFC 9112 3.2.2) */
	assert_int_equal(http("GET http://Other.Test/x HTTP/1.1\r\nHost: a.com\r\n\r\n", name), 10);
	assert_string_equal(name, "other.test");
	assert_int_equal(http("GET HTTPS://u:p@b.c:8080?q HTTP/1.1\r\nHost: a.com\r\n\r\n", name), 3);
	assert_string_equal(name, "b.c");
	assert_int_equal(http("GET http://b.c HTTP/1.1\r\n\r\n", name), 3);
	assert_int_equal(http("GET http://[::1]/ HTTP/1.1\r\nHost: a.com\r\n\r\n", name), -ENOENT);
	assert_int_equal(http("GET http:///x HTTP/1.1\r\nHost: a.com\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("GET http://b.c:8x/ HTTP/1.1\r\nHost: a.com\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("GET http://b.c/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", name),
			 -EINVAL);
	assert_int_equal(http("GET http:// HTTP/1.1\r\nHost: a.com\r\n\r\n", name), 5);
	assert_string_equal(name, "a.com"); /* "http://" alone is no absolute-form */
	assert_int_equal(http("GET HTTP/1.1\r\nHost: a.com\r\n\r\n", name), 5);
	assert_int_equal(http("GET /http://b.c HTTP/1.1\r\nHost: a.com\r\n\r\n", name), 5);
	/* so does CONNECT's authority-form target (RFC 9112 3.2.3) */
	assert_int_equal(http("CONNECT Other.Test:443 HTTP/1.1\r\nHost: a.com\r\n\r\n", name), 10);
	assert_string_equal(name, "other.test");
	assert_int_equal(http("CONNECT [::1]:443 HTTP/1.1\r\nHost: a.com\r\n\r\n", name), -ENOENT);
	assert_int_equal(http("CONNECT HTTP/1.1\r\nHost: a.com\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("CONNECT b.c:x HTTP/1.1\r\nHost: a.com\r\n\r\n", name), -EINVAL);
	assert_int_equal(http("\x16\x03\x01", name), -EPROTO);
	assert_int_equal(http("get / HTTP/1.1\r\n\r\n", name), -EPROTO);
	static char big[SN_SNIFF_HTTP_MAX + 100];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /", 5);
	assert_int_equal(http(big, name), -E2BIG);
}

/* A real ClientHello, as Python's ssl module (OpenSSL) sends it. */
static void test_real_hello(void **state)
{
	(void)state;
	FILE *f = fopen(CORPUS_DIR "/sniff_tls/real-clienthello-example.com.bin", "rb");
	assert_non_null(f);
	static uint8_t buf[4096];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	char name[256];
	assert_int_equal(sn_sniff_tls_sni(buf, n, name, sizeof(name)), 11);
	assert_string_equal(name, "example.com");
	for (size_t k = 0; k < n; k++)
		assert_int_equal(sn_sniff_tls_sni(buf, k, name, sizeof(name)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_tls), cmocka_unit_test(test_http),
					   cmocka_unit_test(test_real_hello)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

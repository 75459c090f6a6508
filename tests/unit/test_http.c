/* Tests of the HTTP/1 message wrapper (src/proxy/http.c): which heads pass and which are refused,
 * above all the framings a server behind the proxy could read otherwise (request smuggling), and
 * where bodies end: Content-Length, chunked, until close, HEAD responses, bytes given one at a
 * time, and heads that arrive in pieces. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

static struct sn_http_head head;

static ssize_t parse(struct sn_http_msg *m, bool response, bool head_req, const char *text)
{
	sn_http_init(m, response, head_req);
	return sn_http_head(m, &head, (const uint8_t *)text, strlen(text));
}

struct head_case {
	const char *text;
	ssize_t want; /* > 0: accepted, its length being the whole text */
};

#define OK   1
#define R(x) "POST / HTTP/1.1\r\nHost: a\r\n" x "\r\n"

static const struct head_case requests[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"GET / HTTP/1.0\r\n\r\n", OK},
    {"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"GET / HTTP/1.1\nHost: a\n\n", OK}, /* bare LF: read the same by both hops */
    {R("Content-Length: 3\r\n"), OK},
    {R("Transfer-Encoding: chunked\r\n"), OK},
    {R("Transfer-Encoding: CHUNKED \r\n"), OK},
    {R("Transfer-Encoding: gzip, chunked\r\n"), OK},
    {R("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), OK},
    {R("X-Weird: a b\tc \r\n"), OK},
    {R("!#$%&'*+-.^_`|~09azAZ: x\r\n"), OK},
    /* framing a server could read otherwise */
    {R("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"), -EINVAL},
    {R("Content-Length: 3\r\nContent-Length: 3\r\n"), -EINVAL},
    {R("Content-Length: 3\r\nContent-Length: 4\r\n"), -EINVAL},
    {R("Content-Length: 3, 3\r\n"), -EINVAL},
    {R("Content-Length: 3x\r\n"), -EINVAL},
    {R("Content-Length: -1\r\n"), -EINVAL},
    {R("Content-Length: +3\r\n"), -EINVAL},
    {R("Content-Length : 3\r\n"), -EINVAL},
    {R("Transfer-Encoding : chunked\r\n"), -EINVAL},
    {R("Transfer-Encoding\t: chunked\r\n"), -EINVAL},
    {R("Transfer-Encoding:\r\n chunked\r\n"), -EINVAL},
    {R("X-A: b\r\n c\r\n"), -EINVAL},
    {R("X-A: b\r\n\tc\r\n"), -EINVAL},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", -EINVAL},
    {R("Transfer-Encoding: gzip\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked, gzip\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked, chunked\r\n"), -EINVAL},
    {R("Transfer-Encoding: xchunked\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked x\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked;q=1\r\n"), -EINVAL},
    {R("Transfer-Encoding: , chunked\r\n"), -EINVAL},
    {R("Transfer-Encoding: chunked,\r\n"), -EINVAL},
    {R("Transfer-Encoding: \r\n"), -EINVAL},
    {R("Transfer-Encoding: \vchunked\r\n"), -EINVAL},
    {R("X-A: b\rc\r\n"), -EINVAL},
    {R("X-A: b\001c\r\n"), -EINVAL},
    {R("X A: b\r\n"), -EINVAL},
    {R("X\"A: b\r\n"), -EINVAL},
    {R(": b\r\n"), -EINVAL},
    {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", -EINVAL},
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", -EPROTONOSUPPORT},
    {"GET / HTTP/0.9\r\nHost: a\r\n\r\n", -EPROTONOSUPPORT},
};

static void check_heads(const struct head_case *c, size_t n, bool response)
{
	for (size_t i = 0; i < n; i++) {
		struct sn_http_msg m;
		ssize_t got = parse(&m, response, false, c[i].text);
		ssize_t want = c[i].want == OK ? (ssize_t)strlen(c[i].text) : c[i].want;
		if (got != want)
			fail_msg("%s %zu: got %zd, want %zd: %s", response ? "response" : "request",
			         i, got, want, c[i].text);
	}
}

static void test_request_heads(void **state)
{
	(void)state;
	check_heads(requests, sizeof(requests) / sizeof(requests[0]), false);
}

/* Whether a request's head announces a body: what decides if it may be sent again. */
static void test_request_body_known(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		bool body;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
	    {R("Content-Length: 0\r\n"), false},
	    {R("Content-Length: 3\r\n"), true},
	    {R("Transfer-Encoding: chunked\r\n"), true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sn_http_msg m;
		assert_int_equal(parse(&m, false, false, cases[i].text), strlen(cases[i].text));
		assert_int_equal(m.body, cases[i].body);
	}
}

/* Responses come from a sandbox's server, as untrusted as any client. */
static void test_response_heads(void **state)
{
	(void)state;
	static const struct head_case responses[] = {
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", OK},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", OK}, /* until close */
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", OK},
	    {"HTTP/1.0 200 OK\r\n\r\n", OK},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", -EINVAL},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", -EINVAL},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	     -EINVAL},
	    {"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n", -EINVAL},
	    {"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n", -EINVAL},
	    {"HTTP/1.1 2000 OK\r\n\r\n", -EINVAL},
	};
	check_heads(responses, sizeof(responses) / sizeof(responses[0]), true);
}

/* A head that arrives in pieces: 0 (more needed) until the last byte, then its length. */
static void test_head_in_pieces(void **state)
{
	(void)state;
	const char *text = "GET /x HTTP/1.1\r\nHost: 8080-a.example\r\nX-A: 1\r\n\r\n";
	size_t len = strlen(text);
	for (size_t k = 1; k < len; k++) {
		struct sn_http_msg m;
		sn_http_init(&m, false, false);
		assert_int_equal(sn_http_head(&m, &head, (const uint8_t *)text, k), 0);
	}
	struct sn_http_msg m;
	assert_int_equal(parse(&m, false, false, text), (ssize_t)len);
	assert_int_equal(head.nf, 2);
	assert_string_equal(head.method, "GET");
	assert_int_equal(head.tlen, 2);
	const struct sn_http_field *f = sn_http_field(&head, "HOST");
	assert_non_null(f);
	assert_int_equal(f->vlen, strlen("8080-a.example"));
	assert_memory_equal(f->value, "8080-a.example", f->vlen);
	assert_null(sn_http_field(&head, "x-b"));
}

/* Feeds body to a parsed head, step bytes at a time; returns the bytes that belonged to the
 * message, or -1 when it was refused. */
/* Hop-by-hop fields (RFC 9110 7.6.1): Connection, what its fields name (over several fields,
 * any case, empty and malformed elements skipped), the fixed ones, never the framing; 32 options
 * at most. */
static void test_hop_by_hop(void **state)
{
	(void)state;
	struct sn_http_msg m;
	const char *text = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-A,, x-b\r\n"
			   "X-A: 1\r\nx-b: 2\r\nX-C: 3\r\n"
			   "Connection: \"q\", Content-Length , X-D\r\nX-D: 4\r\nKeep-Alive: 5\r\n"
			   "Proxy-Connection: x\r\nTE: trailers\r\nUpgrade: y\r\nContent-Length: 0\r\n"
			   "X-Keep-Alive: 6\r\n\r\n";
	assert_int_equal(parse(&m, false, false, text), (ssize_t)strlen(text));
	assert_int_equal(head.nconn, 5);
	static const char *const hop[] = {"Connection", "X-A", "x-b", "Connection", "X-D",
					  "Keep-Alive", "Proxy-Connection", "TE", "Upgrade"};
	static const char *const end[] = {"Host", "X-C", "Content-Length", "X-Keep-Alive"};
	size_t nhop = 0, nend = 0;
	for (size_t i = 0; i < head.nf; i++) {
		const struct sn_http_field *f = &head.f[i];
		if (sn_http_hop_by_hop(&head, f)) {
			assert_true(nhop < 9);
			assert_int_equal(f->nlen, strlen(hop[nhop]));
			assert_memory_equal(f->name, hop[nhop], f->nlen);
			nhop++;
		} else {
			assert_true(nend < 4);
			assert_int_equal(f->nlen, strlen(end[nend]));
			assert_memory_equal(f->name, end[nend], f->nlen);
			nend++;
		}
	}
	assert_int_equal(nhop, 9);
	assert_int_equal(nend, 4);
	/* 32 options pass, 33 are refused, also over two fields */
	char big[1024];
	int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nConnection: o0");
	for (int i = 1; i < 32; i++)
		n += snprintf(big + n, sizeof(big) - (size_t)n, ", o%d", i);
	snprintf(big + n, sizeof(big) - (size_t)n, "\r\n\r\n");
	assert_true(parse(&m, false, false, big) > 0);
	assert_int_equal(head.nconn, 32);
	snprintf(big + n, sizeof(big) - (size_t)n, "\r\nConnection: one-more\r\n\r\n");
	assert_int_equal(parse(&m, false, false, big), -EINVAL);
	/* a response's Connection is not read (its head goes on unchanged) */
	snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nConnection: %s\r\nContent-Length: 0\r\n\r\n",
		 "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,0,1,2,3,4,5,6,7,8,9");
	assert_true(parse(&m, true, false, big) > 0);
	assert_int_equal(head.nconn, 0);
}

/* Absolute-form targets: the authority and the origin-form rest, other forms left alone, and the
 * ones a gateway refuses. */
static void test_absolute_form(void **state)
{
	(void)state;
	static const struct {
		const char *t;
		int want;
		const char *auth, *path;
	} cases[] = {
	    {"http://a.example/x?y", 1, "a.example", "/x?y"},
	    {"HTTPS://a.example:8443", 1, "a.example:8443", ""},
	    {"http://[2001:db8::1]:80?q", 1, "[2001:db8::1]:80", "?q"},
	    {"http://a#f", 1, "a", "#f"},
	    {"/x", 0, NULL, NULL},
	    {"*", 0, NULL, NULL},
	    {"a.example:443", 0, NULL, NULL},
	    {"1http://a/", 0, NULL, NULL},
	    {"http:/a/", 0, NULL, NULL},
	    {"ftp://a/", -1, NULL, NULL},
	    {"web+x://a/", -1, NULL, NULL},
	    {"http://u:p@a/", -1, NULL, NULL},
	    {"http:///x", -1, NULL, NULL},
	    {"http://:80/x", -1, NULL, NULL},
	    {"http://", -1, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sn_http_field auth = {0};
		const char *path = NULL;
		size_t plen = 0;
		int r = sn_http_absolute_form(cases[i].t, strlen(cases[i].t), &auth, &path, &plen);
		if (r != cases[i].want)
			fail_msg("%s: %d, want %d", cases[i].t, r, cases[i].want);
		if (r == 1) {
			assert_int_equal(auth.vlen, strlen(cases[i].auth));
			assert_memory_equal(auth.value, cases[i].auth, auth.vlen);
			assert_int_equal(plen, strlen(cases[i].path));
			assert_memory_equal(path, cases[i].path, plen);
		}
	}
}

/* The client behind a trusted proxy: the rightmost untrusted X-Forwarded-For entry over all the
 * fields, the leftmost when all are trusted, IPv4-mapped read as IPv4, and anything that is not a
 * list of addresses refused. */
static void test_xff_client(void **state)
{
	(void)state;
	struct sn_cidr trusted;
	char msg[128];
	assert_int_equal(sn_cidr_parse("10.99.1.0/24", &trusted, msg, sizeof(msg)), 0);
	static const struct {
		const char *fields; /* the X-Forwarded-For lines */
		bool ok;
		const char *want; /* NULL: left alone */
	} cases[] = {
	    {"", true, NULL},
	    {"X-Forwarded-For: 1.2.3.4\r\n", true, "1.2.3.4"},
	    {"X-Forwarded-For: 10.99.2.2, 10.99.1.2\r\n", true, "10.99.2.2"},
	    {"X-Forwarded-For: 10.99.1.2 ,\t10.99.2.2\r\n", true, "10.99.2.2"},
	    {"X-Forwarded-For: 10.99.1.3, 10.99.1.2\r\n", true, "10.99.1.3"},
	    {"X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 10.99.1.2\r\n", true, "1.1.1.1"},
	    {"X-Forwarded-For: ::ffff:10.99.2.2\r\n", true, "10.99.2.2"},
	    {"X-Forwarded-For: ::ffff:10.99.1.9, 2001:db8::1\r\n", true, "2001:db8::1"},
	    {"X-Forwarded-For: 2001:db8::1, ::ffff:10.99.1.9\r\n", true, "2001:db8::1"},
	    {"X-Forwarded-For: garbage\r\n", false, NULL},
	    {"X-Forwarded-For: 1.2.3.4,,\r\n", false, NULL},
	    {"X-Forwarded-For:\r\n", false, NULL},
	    {"X-Forwarded-For: 1.2.3.4:80\r\n", false, NULL},
	    {"X-Forwarded-For: [2001:db8::1]\r\n", false, NULL},
	    {"X-Forwarded-For: unknown, 10.99.1.2\r\n", false, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n",
			 cases[i].fields);
		struct sn_http_msg m;
		assert_true(parse(&m, false, false, text) > 0);
		int family = -1;
		uint8_t addr[16] = {0};
		bool ok = sn_http_xff_client(&head, &trusted, 1, &family, addr);
		if (ok != cases[i].ok)
			fail_msg("%s: %d, want %d", cases[i].fields, ok, cases[i].ok);
		if (!ok)
			continue;
		if (!cases[i].want) {
			assert_int_equal(family, -1);
			continue;
		}
		char got[64];
		assert_non_null(inet_ntop(family, addr, got, sizeof(got)));
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: %s, want %s", cases[i].fields, got, cases[i].want);
	}
}

static ssize_t feed(struct sn_http_msg *m, const char *body, size_t step)
{
	size_t len = strlen(body), off = 0;
	while (off < len && !m->done) {
		size_t k = len - off < step ? len - off : step;
		ssize_t n = sn_http_body(m, (const uint8_t *)body + off, k);
		if (n < 0)
			return -1;
		assert_true((size_t)n <= k);
		off += (size_t)n;
		if ((size_t)n < k)
			assert_true(m->done);
	}
	if (!m->done && sn_http_body(m, (const uint8_t *)"", 0) < 0)
		return -1;
	return (ssize_t)off;
}

static void test_bodies(void **state)
{
	(void)state;
	static const struct {
		const char *head, *body;
		bool response, head_req;
		ssize_t want; /* bytes of body that belong to the message; -1 refused */
		bool done;
	} cases[] = {
	    {R("Content-Length: 3\r\n"), "abcGET / HTTP/1.1\r\n", false, false, 3, true},
	    {R("Transfer-Encoding: chunked\r\n"), "3\r\nabc\r\n0\r\n\r\nNEXT", false, false, 13,
	     true},
	    {R("Transfer-Encoding: chunked\r\n"), "3;ext=1\r\nabc\r\n0\r\nT: x\r\n\r\nN", false,
	     false, 25, true},
	    {R("Transfer-Encoding: chunked\r\n"), "g\r\nabc\r\n0\r\n\r\n", false, false, -1, false},
	    {R("Transfer-Encoding: chunked\r\n"), "fffffffffffffffff\r\n", false, false, -1, false},
	    {R("Transfer-Encoding: chunked\r\n"), "3\r\nabcd\r\n", false, false, -1, false},
	    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\n", false, false, 0, true},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "okHTTP", true, false, 2, true},
	    {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 204", true, true, 0, true},
	    {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 200", true, false, 0, true},
	    {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "HTTP/1.1 200", true, false, 0,
	     true},
	    {"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "HTTP", true, false, 0,
	     true},
	    {"HTTP/1.1 200 OK\r\n\r\n", "until the end", true, false, 13, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t step = 1; step <= 64; step *= 4) {
			struct sn_http_msg m;
			ssize_t h = parse(&m, cases[i].response, cases[i].head_req, cases[i].head);
			assert_int_equal(h, (ssize_t)strlen(cases[i].head));
			ssize_t got = feed(&m, cases[i].body, step);
			if (got != cases[i].want || (got >= 0 && m.done != cases[i].done))
				fail_msg("body %zu, step %zu: got %zd done %d, want %zd done %d", i,
				         step, got, m.done, cases[i].want, cases[i].done);
		}
	/* a body that runs until close ends when the peer closes */
	struct sn_http_msg m;
	parse(&m, true, false, "HTTP/1.1 200 OK\r\n\r\n");
	assert_int_equal(sn_http_body(&m, (const uint8_t *)"ab", 2), 2);
	assert_false(m.done);
	assert_int_equal(sn_http_body(&m, NULL, 0), 0);
	assert_true(m.done);
	/* a Content-Length body cut by the peer is malformed */
	parse(&m, false, false, R("Content-Length: 3\r\n"));
	assert_int_equal(sn_http_body(&m, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(sn_http_body(&m, NULL, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_heads),
	    cmocka_unit_test(test_request_body_known),
	    cmocka_unit_test(test_response_heads),
	    cmocka_unit_test(test_head_in_pieces),
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_hop_by_hop),
	    cmocka_unit_test(test_absolute_form),
	    cmocka_unit_test(test_xff_client),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

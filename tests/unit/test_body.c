/* Unit tests of the REST API's request bodies (src/daemon/body.c): what each body gives, and for
 * each refusal its status, code and path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "body.h"
#include "utf8check.h"

struct refusal {
	const char *body;
	int status;
	const char *code, *path;
};

static const struct refusal create_bad[] = {
	{"{", 400, "invalid_json", ""},
	{"{\"id\":\"a\"} x", 400, "invalid_json", ""},
	{"{\"id\":\"a\",\"id\":\"b\"}", 400, "invalid_json", ""},
	{"{\"id\":\"a\\u0000b\"}", 400, "invalid_json", ""},
	{"[]", 400, "invalid_request", ""},
	{"\"x\"", 400, "invalid_json", ""}, /* jansson takes an object or an array only */
	{"{\"color\":\"red\"}", 400, "invalid_request", "color"},
	{"{\"id\":7}", 400, "invalid_request", "id"},
	{"{\"id\":null}", 400, "invalid_request", "id"},
	{"{\"labels\":[]}", 400, "invalid_request", "labels"},
	{"{\"labels\":{\"job\":\"t\",\"n\":1}}", 400, "invalid_request", "labels.n"},
	/* jansson's error holds the first byte of a two-byte character */
	{"{\"id\":\"\\\xc7\x80\"}", 400, "invalid_json", ""},
	/* an unknown field comes first, whatever else is wrong */
	{"{\"id\":7,\"x\":1}", 400, "invalid_request", "x"},
};

static const struct refusal exec_bad[] = {
	{"", 400, "invalid_json", ""},
	{"{\"argv\":", 400, "invalid_json", ""},
	{"[\"true\"]", 400, "invalid_request", ""},
	{"{}", 400, "invalid_request", "argv"},
	{"{\"argv\":[]}", 400, "invalid_request", "argv"},
	{"{\"argv\":\"true\"}", 400, "invalid_request", "argv"},
	{"{\"argv\":[\"sh\",1]}", 400, "invalid_request", "argv[1]"},
	{"{\"argv\":[\"true\"],\"env\":{}}", 400, "invalid_request", "env"},
	{"{\"argv\":[\"true\"],\"timeout_ms\":0}", 400, "invalid_request", "timeout_ms"},
	{"{\"argv\":[\"true\"],\"timeout_ms\":600001}", 400, "invalid_request", "timeout_ms"},
	{"{\"argv\":[\"true\"],\"timeout_ms\":1.5}", 400, "invalid_request", "timeout_ms"},
	{"{\"argv\":[\"true\"],\"stdin\":5}", 400, "invalid_request", "stdin"},
	{"{\"x\":1}", 400, "invalid_request", "x"},
};

static void test_create(void **state)
{
	(void)state;
	struct sn_create_body b;
	struct sn_result err;
	assert_true(sn_body_create(NULL, 0, &b, &err)); /* empty: {} */
	assert_null(b.id);
	assert_null(b.network);
	assert_null(b.labels);
	const char *full = "{\"id\":\"demo\",\"network\":{\"allowOut\":[\"1.1.1.1\"]},"
			   "\"labels\":{\"job\":\"t\"}}";
	assert_true(sn_body_create(full, strlen(full), &b, &err));
	assert_string_equal(b.id, "demo");
	assert_string_equal(b.network, "{\"allowOut\":[\"1.1.1.1\"]}");
	assert_string_equal(b.labels, "{\"job\":\"t\"}");
	sn_body_create_clear(&b);
	/* a network value that is not an object is passed on for the policy parser to refuse */
	assert_true(sn_body_create("{\"network\":5}", 13, &b, &err));
	assert_string_equal(b.network, "5");
	sn_body_create_clear(&b);
	for (size_t i = 0; i < sizeof(create_bad) / sizeof(create_bad[0]); i++) {
		const struct refusal *r = &create_bad[i];
		memset(&b, 0x5a, sizeof(b));
		if (sn_body_create(r->body, strlen(r->body), &b, &err))
			fail_msg("accepted: %s", r->body);
		assert_null(b.id);
		assert_int_equal(err.status, r->status);
		assert_string_equal(err.code, r->code);
		assert_string_equal(err.path, r->path);
		assert_true(err.message[0]);
		assert_true(utf8_valid(err.message, strlen(err.message)));
	}
}

static void test_exec(void **state)
{
	(void)state;
	struct sn_exec_body b;
	struct sn_result err;
	const char *full = "{\"argv\":[\"sh\",\"-c\",\"cat\"],\"timeout_ms\":600000,"
			   "\"stdin\":\"a\\nb\"}";
	assert_true(sn_body_exec(full, strlen(full), &b, &err));
	assert_int_equal(b.argc, 3);
	assert_string_equal(b.argv[0], "sh");
	assert_string_equal(b.argv[2], "cat");
	assert_null(b.argv[3]);
	assert_int_equal(b.timeout_ms, 600000);
	assert_int_equal(b.stdin_len, 3);
	assert_memory_equal(b.stdin_data, "a\nb", 4);
	sn_body_exec_clear(&b);
	assert_true(sn_body_exec("{\"argv\":[\"true\"]}", 17, &b, &err));
	assert_int_equal(b.timeout_ms, SN_EXEC_TIMEOUT_DEFAULT);
	assert_null(b.stdin_data);
	sn_body_exec_clear(&b);
	for (size_t i = 0; i < sizeof(exec_bad) / sizeof(exec_bad[0]); i++) {
		const struct refusal *r = &exec_bad[i];
		memset(&b, 0x5a, sizeof(b));
		if (sn_body_exec(r->body, strlen(r->body), &b, &err))
			fail_msg("accepted: %s", r->body);
		assert_null(b.argv);
		assert_int_equal(err.status, r->status);
		assert_string_equal(err.code, r->code);
		assert_string_equal(err.path, r->path);
	}
	/* 256 arguments are taken, 257 are not */
	char big[16 + 257 * 4] = "{\"argv\":[\"a\"";
	size_t o = strlen(big);
	for (int i = 1; i < 257; i++, o += 4)
		memcpy(big + o, ",\"a\"", 4);
	memcpy(big + o, "]}", 3);
	assert_false(sn_body_exec(big, strlen(big), &b, &err));
	assert_string_equal(err.path, "argv");
	memcpy(strrchr(big, ','), "]}", 3);
	assert_true(sn_body_exec(big, strlen(big), &b, &err));
	assert_int_equal(b.argc, 256);
	sn_body_exec_clear(&b);
}

/* A key longer than the path buffer, of two-byte characters: cut at a character's end. */
static void test_long_key(void **state)
{
	(void)state;
	char body[4 + 2 * 100 + 8] = "{\"";
	size_t o = 2;
	for (int i = 0; i < 100; i++, o += 2)
		memcpy(body + o, "\xc3\xa9", 2);
	memcpy(body + o, "\":1}", 5);
	struct sn_create_body b;
	struct sn_result err;
	assert_false(sn_body_create(body, strlen(body), &b, &err));
	/* the buffer holds 159 bytes: 79 characters and the first byte of the 80th, which goes */
	assert_int_equal(strlen(err.path), 158);
	assert_memory_equal(err.path + 156, "\xc3\xa9", 2);
}

static void test_string(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"", ""},
		{"ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		 "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
		{"a\xff" "b", "a\xef\xbf\xbd" "b"},
		{"\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = sn_body_string(cases[i].in, strlen(cases[i].in));
		assert_non_null(j);
		assert_string_equal(json_string_value(j), cases[i].out);
		json_decref(j);
	}
	json_t *j = sn_body_string("a\0b", 3); /* a NUL byte is a character */
	assert_int_equal(json_string_length(j), 3);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_long_key),
		cmocka_unit_test(test_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

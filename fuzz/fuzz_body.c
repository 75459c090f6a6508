/* libFuzzer target for the REST API's request bodies (src/daemon/body.c). The input's first byte
 * picks the reader: a create body, an exec body, or bytes made into a JSON string (a command's
 * output); the rest is its input. Properties: a refusal fills a status, a code and a UTF-8 path
 * and message, and gives nothing back; an accepted create body's network and labels are JSON
 * again (labels an object of strings); an accepted exec body has 1-256 arguments, a timeout of
 * 1-600000 ms and at most 1 MiB of input, each NUL-terminated; a JSON string is always made, and
 * is the input itself when the input is UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "utf8check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(const struct sn_result *e)
{
	if ((e->status != 400 && e->status != 500) || !e->code[0] ||
	    !utf8_valid(e->path, strlen(e->path)) || !utf8_valid(e->message, strlen(e->message)) ||
	    !e->message[0])
		abort();
}

static void check_json(const char *text, bool labels)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!j || (labels && !json_is_object(j)))
		abort();
	const char *k;
	json_t *v;
	if (labels)
		json_object_foreach(j, k, v) if (!json_is_string(v)) abort();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	struct sn_result err;
	if (data[0] % 3 == 0) {
		struct sn_create_body b;
		if (!sn_body_create(in, n, &b, &err)) {
			check_refusal(&err);
			if (b.id || b.network || b.labels)
				abort();
			return 0;
		}
		if (b.network)
			check_json(b.network, false);
		if (b.labels)
			check_json(b.labels, true);
		sn_body_create_clear(&b);
	} else if (data[0] % 3 == 1) {
		struct sn_exec_body b;
		if (!sn_body_exec(in, n, &b, &err)) {
			check_refusal(&err);
			if (b.argv || b.argc || b.stdin_data)
				abort();
			return 0;
		}
		if (b.argc < 1 || b.argc > SN_EXEC_ARGS_MAX || b.argv[b.argc] ||
		    b.timeout_ms < 1 || b.timeout_ms > SN_EXEC_TIMEOUT_MAX ||
		    b.stdin_len > SN_EXEC_STDIN_MAX || (b.stdin_data && b.stdin_data[b.stdin_len]))
			abort();
		for (size_t i = 0; i < b.argc; i++)
			if (!b.argv[i])
				abort();
		sn_body_exec_clear(&b);
	} else {
		json_t *j = sn_body_string(in, n);
		if (!j)
			abort();
		if (utf8_valid(in, n) &&
		    (json_string_length(j) != n || memcmp(json_string_value(j), in, n) != 0))
			abort();
		json_decref(j);
	}
	return 0;
}

/* The REST API's request bodies, read into plain values; see body.h. Daemon layer, pure.
 * jansson refuses "\u0000" in a document (no JSON_ALLOW_NUL), so no string read here holds a NUL
 * byte. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"

void sn_result_set(struct sn_result *r, int status, const char *code, const char *path,
		   const char *fmt, ...)
{
	r->status = status;
	snprintf(r->code, sizeof(r->code), "%s", code);
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	sn_err_utf8_trim(r->path);
	sn_err_utf8_trim(r->message);
}

static void out_of_memory(struct sn_result *err)
{
	sn_result_set(err, 500, "internal", "", "out of memory");
}

/* The body as a JSON object (an empty one as {} when empty_ok); NULL once *err is filled. */
static json_t *object(const char *buf, size_t len, bool empty_ok, struct sn_result *err)
{
	json_t *o;
	if (!len && empty_ok) {
		if (!(o = json_object()))
			out_of_memory(err);
		return o;
	}
	json_error_t je;
	if (!(o = json_loadb(len ? buf : "", len, JSON_REJECT_DUPLICATES, &je))) {
		char text[sizeof(je.text)]; /* it may hold the body's bytes */
		sn_result_set(err, 400, "invalid_json", "",
			      "JSON syntax error at line %d, column %d: %s", je.line, je.column,
			      sn_err_clean(je.text, text, sizeof(text)));
	} else if (!json_is_object(o)) {
		json_decref(o);
		o = NULL;
		sn_result_set(err, 400, "invalid_request", "", "the body must be a JSON object");
	}
	return o;
}

/* The first key of o that known (NULL-terminated) lacks; NULL when there is none. */
static const char *unknown_key(json_t *o, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		size_t i = 0;
		while (known[i] && strcmp(key, known[i]))
			i++;
		if (!known[i])
			return key;
	}
	return NULL;
}

static bool labels_ok(json_t *labels, struct sn_result *err)
{
	static const char msg[] = "labels must be an object of strings";
	bool ok = json_is_object(labels);
	if (!ok)
		sn_result_set(err, 400, "invalid_request", "labels", msg);
	const char *key;
	json_t *v;
	json_object_foreach(labels, key, v) if (ok && !json_is_string(v))
	{
		char path[SN_ERR_PATH_MAX];
		snprintf(path, sizeof(path), "labels.%s", key);
		sn_result_set(err, 400, "invalid_request", path, msg);
		ok = false;
	}
	return ok;
}

bool sn_body_create(const char *buf, size_t len, struct sn_create_body *out,
		    struct sn_result *err)
{
	static const char *const known[] = {"id", "network", "labels", NULL};
	memset(out, 0, sizeof(*out));
	json_t *o = object(buf, len, true, err);
	if (!o)
		return false;
	const char *key = unknown_key(o, known);
	json_t *id = json_object_get(o, "id"), *net = json_object_get(o, "network"),
	       *labels = json_object_get(o, "labels");
	bool ok = false;
	if (key) {
		sn_result_set(err, 400, "invalid_request", key,
			      "unknown field; a sandbox has id, network and labels");
	} else if (id && !json_is_string(id)) {
		sn_result_set(err, 400, "invalid_request", "id", "must be a string");
	} else if (!labels || labels_ok(labels, err)) {
		out->id = id ? strdup(json_string_value(id)) : NULL;
		out->network = net ? json_dumps(net, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		out->labels = labels ? json_dumps(labels, JSON_COMPACT) : NULL;
		ok = (!id || out->id) && (!net || out->network) && (!labels || out->labels);
		if (!ok) {
			sn_body_create_clear(out);
			out_of_memory(err);
		}
	}
	json_decref(o);
	return ok;
}

void sn_body_create_clear(struct sn_create_body *b)
{
	free(b->id);
	free(b->network);
	free(b->labels);
	memset(b, 0, sizeof(*b));
}

/* Copies the checked exec body's values into out. */
static bool exec_copy(json_t *argv, json_t *jt, json_t *jin, struct sn_exec_body *out,
		      struct sn_result *err)
{
	out->argc = json_array_size(argv);
	out->timeout_ms = jt ? (int)json_integer_value(jt) : SN_EXEC_TIMEOUT_DEFAULT;
	bool ok = (out->argv = calloc(out->argc + 1, sizeof(*out->argv))) != NULL;
	for (size_t i = 0; ok && i < out->argc; i++)
		ok = (out->argv[i] = strdup(json_string_value(json_array_get(argv, i)))) != NULL;
	if (ok && jin) {
		out->stdin_len = json_string_length(jin);
		ok = (out->stdin_data = malloc(out->stdin_len + 1)) != NULL;
		if (ok)
			memcpy(out->stdin_data, json_string_value(jin), out->stdin_len + 1);
	}
	if (!ok) {
		sn_body_exec_clear(out);
		out_of_memory(err);
	}
	return ok;
}

bool sn_body_exec(const char *buf, size_t len, struct sn_exec_body *out, struct sn_result *err)
{
	static const char *const known[] = {"argv", "timeout_ms", "stdin", NULL};
	memset(out, 0, sizeof(*out));
	json_t *o = object(buf, len, false, err);
	if (!o)
		return false;
	const char *key = unknown_key(o, known);
	json_t *argv = json_object_get(o, "argv"), *jt = json_object_get(o, "timeout_ms"),
	       *jin = json_object_get(o, "stdin");
	size_t argc = json_array_size(argv), bad = 0;
	while (bad < argc && json_is_string(json_array_get(argv, bad)))
		bad++;
	json_int_t timeout = json_integer_value(jt);
	bool ok = false;
	if (key) {
		sn_result_set(err, 400, "invalid_request", key,
			      "unknown field; exec takes argv, timeout_ms and stdin");
	} else if (!json_is_array(argv) || argc == 0 || argc > SN_EXEC_ARGS_MAX) {
		sn_result_set(err, 400, "invalid_request", "argv", "must be a list of 1-%d strings",
			      SN_EXEC_ARGS_MAX);
	} else if (bad < argc) {
		char path[32];
		snprintf(path, sizeof(path), "argv[%zu]", bad);
		sn_result_set(err, 400, "invalid_request", path, "must be a string");
	} else if (jt && (!json_is_integer(jt) || timeout < 1 || timeout > SN_EXEC_TIMEOUT_MAX)) {
		sn_result_set(err, 400, "invalid_request", "timeout_ms",
			      "must be a number of milliseconds, 1-%d", SN_EXEC_TIMEOUT_MAX);
	} else if (jin && (!json_is_string(jin) || json_string_length(jin) > SN_EXEC_STDIN_MAX)) {
		sn_result_set(err, 400, "invalid_request", "stdin",
			      "must be a string of at most 1 MiB");
	} else {
		ok = exec_copy(argv, jt, jin, out, err);
	}
	json_decref(o);
	return ok;
}

void sn_body_exec_clear(struct sn_exec_body *b)
{
	for (size_t i = 0; b->argv && i < b->argc; i++)
		free(b->argv[i]);
	free(b->argv);
	free(b->stdin_data);
	memset(b, 0, sizeof(*b));
}

json_t *sn_body_string(const char *s, size_t n)
{
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t len = sn_err_utf8_char(s + i, n - i);
		if (len) {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(out, o);
	free(out);
	return j;
}

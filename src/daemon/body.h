/* The REST API's request bodies (DESIGN.md section 3) read into plain values, the error outcome
 * every call answers with, and bytes made into a JSON string. Pure (jansson only), so that the
 * fuzzer and the unit tests reach them without a daemon. Daemon layer. */
#ifndef SN_DAEMON_BODY_H
#define SN_DAEMON_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <sandnet/err.h>

#define SN_EXEC_STDIN_MAX (1024 * 1024)
#define SN_EXEC_TIMEOUT_DEFAULT 30000
#define SN_EXEC_TIMEOUT_MAX 600000
#define SN_EXEC_ARGS_MAX 256

/* Error outcome of a daemon operation (a refused body among them): an HTTP status and the error
 * body's fields. */
struct sn_result {
	int status; /* 0: success */
	char code[32];
	char path[SN_ERR_PATH_MAX];
	char message[512];
};

/* Fills r; message is a printf format. A character that a field's length cuts is dropped, so that
 * path and message stay UTF-8 when what they hold was. */
void sn_result_set(struct sn_result *r, int status, const char *code, const char *path,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* POST /v1/sandboxes: {"id"?, "network"?, "labels"?}; an empty body stands for {}. */
struct sn_create_body {
	char *id;      /* NULL: none given */
	char *network; /* the policy (any dialect) as JSON text; NULL: none given */
	char *labels;  /* an object of strings as JSON text; NULL: none given */
};

/* POST /v1/sandboxes/{id}/exec: {"argv", "timeout_ms"?, "stdin"?}. */
struct sn_exec_body {
	char **argv; /* argc strings, then NULL */
	size_t argc;
	int timeout_ms;
	char *stdin_data; /* NULL: none given */
	size_t stdin_len;
};

/* Read the len bytes at buf. true and *out filled (clear it), or false with *err filled (status
 * 400, code "invalid_json" or "invalid_request"; 500, "internal", when out of memory) and *out
 * empty. The first error found is the one reported: an unknown field, then the fields in the
 * order above. */
bool sn_body_create(const char *buf, size_t len, struct sn_create_body *out,
		    struct sn_result *err);
void sn_body_create_clear(struct sn_create_body *b);
bool sn_body_exec(const char *buf, size_t len, struct sn_exec_body *out, struct sn_result *err);
void sn_body_exec_clear(struct sn_exec_body *b);

/* The n bytes at s (a command's output, say) as a JSON string, each byte that is not part of a
 * UTF-8 character replaced by U+FFFD. A new reference; NULL when out of memory. */
json_t *sn_body_string(const char *s, size_t n);

#endif

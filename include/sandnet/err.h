/* User-facing errors of libsandnet: a code, the path of the offending field and a sentence.
 * Core layer. Callers own struct sn_errs; functions append to it and never free it. */
#ifndef SANDNET_ERR_H
#define SANDNET_ERR_H

#include <stdbool.h>
#include <stddef.h>

#define SN_ERR_PATH_MAX 160
#define SN_ERR_MSG_MAX  256
/* At most this many errors are kept; later ones are only counted (sn_errs.dropped). */
#define SN_ERRS_MAX 64

enum sn_errc {
	SN_OK = 0,
	SN_ERR_SYNTAX,  /* the document is not well-formed JSON or YAML */
	SN_ERR_INVALID, /* well-formed, but a field is wrong */
	SN_ERR_LIMIT,   /* over a documented limit */
	SN_ERR_NOMEM,   /* out of memory */
};

struct sn_err {
	enum sn_errc code;
	char path[SN_ERR_PATH_MAX]; /* "egress.rules[2].to[0]", may be empty */
	char msg[SN_ERR_MSG_MAX];
};

struct sn_errs {
	unsigned n;       /* errors in e[] */
	unsigned dropped; /* errors past SN_ERRS_MAX, counted only */
	struct sn_err e[SN_ERRS_MAX];
};

void sn_errs_init(struct sn_errs *errs);
bool sn_errs_any(const struct sn_errs *errs);
/* Appends one error; path and msg are printf formats. errs may be NULL (the error is dropped). */
void sn_errs_add(struct sn_errs *errs, enum sn_errc code, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Stable lower-case name of a code ("invalid", "limit", ...) for APIs and logs. */
const char *sn_errc_name(enum sn_errc code);
/* Writes "path: message" (or "message" when the path is empty) into buf; returns buf. */
char *sn_err_line(const struct sn_err *e, char *buf, size_t size);

/* A value as a message quotes it: in double quotes, '"' and '\\' escaped with a backslash, control
 * characters and bytes that are not UTF-8 as \xNN, and, past SN_QUOTE_BYTES bytes of that, cut at
 * the end of a character and marked "...". So a long value cannot push the sentence that follows
 * it out of the message. Writes into buf (size at least 8) and returns it. */
#define SN_QUOTE_BYTES 64
#define SN_QUOTE_MAX (SN_QUOTE_BYTES + sizeof("\"...\""))
const char *sn_err_quote(const char *s, char *buf, size_t size);
/* The same without the quotes (and with '"' and '\\' as they are), cut to fit size: for text made
 * of a document's bytes, such as a JSON parser's error. */
const char *sn_err_clean(const char *s, char *buf, size_t size);
/* sn_err_quote() into a buffer of the enclosing block's lifetime, for a format's argument. */
#define SN_QUOTE(s) sn_err_quote((s), (char[SN_QUOTE_MAX]){0}, SN_QUOTE_MAX)
/* The length (1-4) of the UTF-8 character that the avail bytes at s start with; 0 when they do
 * not start with one (overlong forms, surrogates and code points past U+10FFFF are not). */
size_t sn_err_utf8_char(const char *s, size_t avail);
/* Cuts s before a UTF-8 character that a length limit left incomplete at its end. */
void sn_err_utf8_trim(char *s);

#endif

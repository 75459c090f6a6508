/* A growing text buffer that tests and benchmarks print generated policy documents into. */
#ifndef SN_TEST_DOCBUF_H
#define SN_TEST_DOCBUF_H

#include <stddef.h>

struct docbuf {
	char *p; /* NUL-terminated once anything was put; free() it */
	size_t n, cap;
};

/* Appends printf-style text; aborts when out of memory. */
void docbuf_put(struct docbuf *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

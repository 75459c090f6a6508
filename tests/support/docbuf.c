/* See docbuf.h. */
#include "docbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void docbuf_put(struct docbuf *d, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int w = vsnprintf(d->p ? d->p + d->n : NULL, d->cap - d->n, fmt, ap);
		va_end(ap);
		if (w < 0)
			abort();
		if ((size_t)w < d->cap - d->n) {
			d->n += (size_t)w;
			return;
		}
		d->cap = 2 * d->cap + (size_t)w + 1;
		d->p = realloc(d->p, d->cap);
		if (!d->p)
			abort();
	}
}

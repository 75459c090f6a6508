/* Whether n bytes are UTF-8, by the core's reader of a character: for the tests and fuzz targets
 * that require messages and strings to be. */
#ifndef SN_TEST_UTF8CHECK_H
#define SN_TEST_UTF8CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <sandnet/err.h>

static inline bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0, k; i < n; i += k)
		if (!(k = sn_err_utf8_char(s + i, n - i)))
			return false;
	return true;
}

#endif

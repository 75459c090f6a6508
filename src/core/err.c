/* Error list of the core: every bad entry of a document is reported, up to SN_ERRS_MAX.
 * Core layer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sandnet/err.h>

void sn_errs_init(struct sn_errs *errs)
{
	errs->n = 0;
	errs->dropped = 0;
}

bool sn_errs_any(const struct sn_errs *errs)
{
	return errs && (errs->n || errs->dropped);
}

void sn_errs_add(struct sn_errs *errs, enum sn_errc code, const char *path, const char *fmt, ...)
{
	if (!errs)
		return;
	if (errs->n >= SN_ERRS_MAX) {
		errs->dropped++;
		return;
	}
	struct sn_err *e = &errs->e[errs->n++];
	e->code = code;
	snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

const char *sn_errc_name(enum sn_errc code)
{
	switch (code) {
	case SN_OK: return "ok";
	case SN_ERR_SYNTAX: return "syntax";
	case SN_ERR_INVALID: return "invalid";
	case SN_ERR_LIMIT: return "limit";
	case SN_ERR_NOMEM: return "nomem";
	}
	return "unknown";
}

char *sn_err_line(const struct sn_err *e, char *buf, size_t size)
{
	if (e->path[0])
		snprintf(buf, size, "%s: %s", e->path, e->msg);
	else
		snprintf(buf, size, "%s", e->msg);
	return buf;
}

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
	sn_err_utf8_trim(e->path);
	sn_err_utf8_trim(e->msg);
}

size_t sn_err_utf8_char(const char *p, size_t avail)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t n = 0;
	if (avail && s[0] < 0x80)
		n = 1;
	else if (avail && s[0] >= 0xc2 && s[0] < 0xf5) /* 0x80-0xc1: no first byte, or overlong */
		n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (!n || n > avail)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong three- and four-byte forms, surrogates, past U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return n;
}

/* s into buf as sn_err_quote() writes a value, without the quotes ('"' and '\\' escaped only when
 * quoted): at most room bytes of it, then "..." after a cut (buf has room + 4 bytes). Returns the
 * bytes written. */
static size_t escape(const char *s, char *buf, size_t room, bool quoted)
{
	size_t len = strlen(s), o = 0;
	for (size_t i = 0; i < len;) {
		char esc[8];
		const char *out = esc;
		size_t n = sn_err_utf8_char(s + i, len - i), olen = n;
		unsigned char c = (unsigned char)s[i];
		if (quoted && (c == '"' || c == '\\'))
			olen = (size_t)snprintf(esc, sizeof(esc), "\\%c", c);
		else if (!n || c < 0x20 || c == 0x7f)
			olen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c), n = 1;
		else
			out = s + i;
		if (o + olen > room) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, out, olen);
		o += olen;
		i += n;
	}
	buf[o] = 0;
	return o;
}

const char *sn_err_quote(const char *s, char *buf, size_t size)
{
	buf[0] = '"';
	size_t o = 1 + escape(s, buf + 1, size - sizeof("\"...\""), true);
	memcpy(buf + o, "\"", 2);
	return buf;
}

const char *sn_err_clean(const char *s, char *buf, size_t size)
{
	escape(s, buf, size - sizeof("..."), false);
	return buf;
}

void sn_err_utf8_trim(char *s)
{
	size_t n = strlen(s), lead = n;
	while (lead > 0 && n - lead < 4 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80)
		lead--;
	/* the last character's first byte: is the character whole? */
	if (lead > 0 && (unsigned char)s[lead - 1] >= 0xc0 &&
	    !sn_err_utf8_char(s + lead - 1, n - lead + 1))
		s[lead - 1] = 0;
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

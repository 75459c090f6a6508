/* Domain names and patterns: case, trailing dot, IDNA (libidn2, UTS #46 non-transitional), label
 * and length rules. Core layer. */
#include <errno.h>
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sandnet/policy.h>

#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

static bool is_name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Checks an ASCII, lower-cased name without wildcard. */
static int check_ascii(const char *orig, const char *n, char *msg, size_t msgsize)
{
	size_t len = strlen(n);
	if (len == 0) {
		snprintf(msg, msgsize, "%s is not a name: it is empty", SN_QUOTE(orig));
		return -EINVAL;
	}
	if (len > NAME_MAX_LEN) {
		snprintf(msg, msgsize, "name is %zu bytes long; a name is at most %d bytes", len,
			 NAME_MAX_LEN);
		return -EINVAL;
	}
	const char *label = n, *last = n;
	for (const char *p = n;; p++) {
		if (*p == '.' || *p == 0) {
			size_t ll = (size_t)(p - label);
			if (ll == 0) {
				snprintf(msg, msgsize, "%s has an empty label", SN_QUOTE(orig));
				return -EINVAL;
			}
			if (ll > LABEL_MAX_LEN) {
				snprintf(msg, msgsize,
					 "%s has a label of %zu bytes; a label is at most %d bytes",
					 SN_QUOTE(orig), ll, LABEL_MAX_LEN);
				return -EINVAL;
			}
			last = label;
			if (*p == 0)
				break;
			label = p + 1;
			continue;
		}
		if (*p == '*') {
			snprintf(msg, msgsize,
				 "%s: '*' is allowed only as the whole first label, as in "
				 "\"*.example.com\", or alone",
				 SN_QUOTE(orig));
			return -EINVAL;
		}
		if (!is_name_char((unsigned char)*p)) {
			unsigned char c = (unsigned char)*p;
			if (c >= 0x20 && c < 0x7f)
				snprintf(msg, msgsize,
					 "%s: '%c' is not allowed in a name (letters, digits, "
					 "'-', '_')",
					 SN_QUOTE(orig), c);
			else
				snprintf(msg, msgsize,
					 "%s: byte 0x%02x is not allowed in a name (letters, "
					 "digits, '-', '_')",
					 SN_QUOTE(orig), c);
			return -EINVAL;
		}
	}
	if (strspn(last, "0123456789") == strlen(last)) {
		snprintf(msg, msgsize,
			 "%s is neither an IP address nor a name (the last label of a name is not "
			 "all digits)",
			 SN_QUOTE(orig));
		return -EINVAL;
	}
	return 0;
}

int sn_name_normalize(const char *in, char *out, size_t outsize, enum sn_entry_kind *kind, char *msg,
		      size_t msgsize)
{
	if (strcmp(in, "*") == 0) {
		*kind = SN_ENTRY_ANY_NAME;
		if (outsize)
			out[0] = 0;
		return 0;
	}
	const char *base = in;
	*kind = SN_ENTRY_NAME;
	if (strncmp(base, "**.", 3) == 0) {
		base += 3;
		*kind = SN_ENTRY_WILDCARD;
	} else if (strncmp(base, "*.", 2) == 0) {
		base += 2;
		*kind = SN_ENTRY_WILDCARD;
	}
	char buf[1024];
	size_t len = strlen(base);
	if (len >= sizeof(buf)) {
		snprintf(msg, msgsize, "name is %zu bytes long; a name is at most %d bytes", len,
			 NAME_MAX_LEN);
		return -EINVAL;
	}
	memcpy(buf, base, len + 1);
	if (len > 1 && buf[len - 1] == '.')
		buf[--len] = 0;
	bool ascii = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c >= 0x80)
			ascii = false;
		else if (c >= 'A' && c <= 'Z')
			buf[i] = (char)(c + 32);
	}
	if (!ascii) {
		char *a = NULL;
		int rc = idn2_to_ascii_8z(buf, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
		if (rc != IDN2_OK) {
			snprintf(msg, msgsize, "%s is not a valid internationalised name: %s",
				 SN_QUOTE(in),
				 idn2_strerror(rc));
			return -EINVAL;
		}
		size_t alen = strlen(a);
		if (alen >= sizeof(buf)) {
			idn2_free(a);
			snprintf(msg, msgsize, "name is %zu bytes long; a name is at most %d bytes",
				 alen, NAME_MAX_LEN);
			return -EINVAL;
		}
		memcpy(buf, a, alen + 1);
		idn2_free(a);
		for (char *p = buf; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
	}
	int rc = check_ascii(in, buf, msg, msgsize);
	if (rc)
		return rc;
	if (strlen(buf) >= outsize) {
		snprintf(msg, msgsize, "name too long");
		return -EINVAL;
	}
	memcpy(out, buf, strlen(buf) + 1);
	return 0;
}

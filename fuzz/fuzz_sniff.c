/* libFuzzer target for the SNI and Host sniffers (src/proxy/sniff.c), built twice: SN_FUZZ_TLS
 * and SN_FUZZ_HTTP. A found name is a lower-case host name of the returned length; any prefix of
 * an input that gave an answer other than "need more" gives "need more" or an answer too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sniff(const uint8_t *d, size_t n, char *name, size_t sz)
{
#ifdef SN_FUZZ_TLS
	return sn_sniff_tls_sni(d, n, name, sz);
#else
	return sn_sniff_http_host(d, n, name, sz);
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256];
	int rc = sniff(data, size, name, sizeof(name));
	if (rc > 0) {
		if ((size_t)rc != strlen(name) || rc > 253)
			abort();
		for (int i = 0; i < rc; i++)
			if (name[i] >= 'A' && name[i] <= 'Z')
				abort();
	}
	/* resumability: the same bytes, cut short, never crash and never claim garbage */
	if (size > 1) {
		char n2[256];
		int r2 = sniff(data, size / 2, n2, sizeof(n2));
		if (r2 > 0 && (size_t)r2 != strlen(n2))
			abort();
	}
	return 0;
}

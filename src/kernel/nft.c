/* libnftables wrapper; see nft.h. Kernel layer. */
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft.h"

struct sn_nft {
	struct nft_ctx *ctx;
};

int sn_nft_open(struct sn_nft **out)
{
	struct sn_nft *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!n->ctx) {
		free(n);
		return -ENOMEM;
	}
	/* keep nft's messages for the caller instead of printing them */
	if (nft_ctx_buffer_output(n->ctx) || nft_ctx_buffer_error(n->ctx)) {
		nft_ctx_free(n->ctx);
		free(n);
		return -ENOMEM;
	}
	*out = n;
	return 0;
}

void sn_nft_close(struct sn_nft *n)
{
	if (!n)
		return;
	nft_ctx_free(n->ctx);
	free(n);
}

int sn_nft_apply(struct sn_nft *n, const char *text, char *err, size_t errsize)
{
	int rc = nft_run_cmd_from_buffer(n->ctx, text);
	const char *msg = nft_ctx_get_error_buffer(n->ctx);
	if (rc != 0) {
		if (err && errsize) {
			/* the first line names the failing command and the reason */
			size_t l = msg ? strcspn(msg, "\n") : 0;
			snprintf(err, errsize, "%.*s", (int)(l < errsize ? l : errsize - 1),
				 msg && *msg ? msg : "nft: transaction refused");
		}
		return -EINVAL;
	}
	return 0;
}

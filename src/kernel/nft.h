/* Applying nft text to the kernel through libnftables: one call, one netlink transaction, all or
 * nothing. Kernel layer. Not thread-safe: one struct sn_nft per thread (the control thread). */
#ifndef SN_KERNEL_NFT_H
#define SN_KERNEL_NFT_H

#include <stddef.h>

struct sn_nft;

/* Returns 0 or -errno. */
int sn_nft_open(struct sn_nft **out);
void sn_nft_close(struct sn_nft *n);
/* Runs text as one transaction. Returns 0, or -EINVAL with nft's own message in err (the kernel
 * state is unchanged then), or -ENOMEM. */
int sn_nft_apply(struct sn_nft *n, const char *text, char *err, size_t errsize);

#endif

/* Loading libcrypto on first use: see crypto.h. */
#include "base/crypto.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sw_crypto_fns sw_crypto;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[256]; /* empty once loaded */

#define LIBCRYPTO "libcrypto.so.3"

static void load(void)
{
    static const struct sys_sym syms[] = {
#define FN(f, name) {name, offsetof(struct sw_crypto_fns, f)}
        FN(md_ctx_new, "EVP_MD_CTX_new"),
        FN(md_ctx_free, "EVP_MD_CTX_free"),
        FN(digest_init_ex, "EVP_DigestInit_ex"),
        FN(digest_update, "EVP_DigestUpdate"),
        FN(digest_final_ex, "EVP_DigestFinal_ex"),
        FN(digest, "EVP_Digest"),
        FN(sha256, "EVP_sha256"),
        FN(md5, "EVP_md5"),
        FN(encode_block, "EVP_EncodeBlock"),
        FN(hmac, "HMAC"),
#undef FN
    };
    struct sw_crypto_fns f;
    if (sys_load_table(LIBCRYPTO, syms, sizeof(syms) / sizeof(*syms), &f, "install libssl3",
                       "OpenSSL 3 is needed", why, sizeof(why)) == 0)
        sw_crypto = f;
}

int sw_crypto_load(struct sw_err *err)
{
    pthread_once(&once, load);
    return why[0] ? sw_err_set(err, SW_EIO, "%s", why) : 0;
}

void sw_crypto_need(void)
{
    pthread_once(&once, load);
    if (why[0]) {
        fprintf(stderr, "slipway: %s\n", why);
        exit(1);
    }
}

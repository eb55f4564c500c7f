/*
 * libcrypto (OpenSSL), loaded when first needed (dlopen) instead of linked:
 * its relocations cost every command 2.5 ms of its start on this machine
 * (`slipway --version` 8.5 ms against 6), and most commands never hash. Include
 * this after the OpenSSL headers a file needs: the names below then call into
 * the loaded library, once sw_crypto_need has returned. base's third header,
 * for the files that call OpenSSL themselves (src/base/hash.c,
 * src/store/sigv4.c, src/store/bucket_io.c); everything else hashes through
 * base.h's sha256_*.
 */
#ifndef SW_BASE_CRYPTO_H
#define SW_BASE_CRYPTO_H

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/base.h"

struct sw_crypto_fns {
    __typeof__(EVP_MD_CTX_new) *md_ctx_new;
    __typeof__(EVP_MD_CTX_free) *md_ctx_free;
    __typeof__(EVP_DigestInit_ex) *digest_init_ex;
    __typeof__(EVP_DigestUpdate) *digest_update;
    __typeof__(EVP_DigestFinal_ex) *digest_final_ex;
    __typeof__(EVP_Digest) *digest;
    __typeof__(EVP_sha256) *sha256;
    __typeof__(EVP_md5) *md5;
    __typeof__(EVP_EncodeBlock) *encode_block;
    __typeof__(HMAC) *hmac;
};
extern struct sw_crypto_fns sw_crypto;

/* Loads libcrypto.so.3, once for the process (thread-safe): 0, or SW_EIO
 * saying what is missing, every call after. */
int sw_crypto_load(struct sw_err *err);
/* sw_crypto_load for callers that cannot go on without it (a hash is a
 * content address): on failure, says why on stderr and exits 1, as a
 * command that fails does. */
void sw_crypto_need(void);

#define EVP_MD_CTX_new sw_crypto.md_ctx_new
#define EVP_MD_CTX_free sw_crypto.md_ctx_free
#define EVP_DigestInit_ex sw_crypto.digest_init_ex
#define EVP_DigestUpdate sw_crypto.digest_update
#define EVP_DigestFinal_ex sw_crypto.digest_final_ex
#define EVP_Digest sw_crypto.digest
#define EVP_sha256 sw_crypto.sha256
#define EVP_md5 sw_crypto.md5
#define EVP_EncodeBlock sw_crypto.encode_block
#define HMAC sw_crypto.hmac

#endif

/*
 * SHA-256 through OpenSSL's EVP interface, which picks the SHA-NI / AVX2 code
 * paths at run time; every content address and ETag in slipway comes from here.
 */
#include "base/base.h"

#include "base/crypto.h"
#include <stdio.h>
#include <stdlib.h>

struct sha256_ctx {
    EVP_MD_CTX *md;
};

struct sha256_ctx *sha256_new(void)
{
    sw_crypto_need();
    struct sha256_ctx *c = xmalloc(sizeof(*c));
    c->md = EVP_MD_CTX_new();
    if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        fputs("slipway: OpenSSL SHA-256 unavailable\n", stderr);
        abort();
    }
    return c;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
    EVP_DigestUpdate(c->md, data, len);
}

void sha256_final_hex(struct sha256_ctx *c, char hex[SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(c->md, md, &n);
    hex_encode(md, 32, hex);
    EVP_MD_CTX_free(c->md);
    free(c);
}

uint64_t hash_fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
    unsigned char md[32];
    sw_crypto_need();
    EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
    hex_encode(md, 32, hex);
}

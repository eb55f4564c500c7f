/*
 * The store a unit test runs on, for the tests that run on both backends
 * (test_store.c, test_release.c, test_deploy.c). By default a directory in the
 * test's temporary directory, as before; with SLIPWAY_TEST_S3 set to an s3://
 * URL of an existing bucket, a fresh prefix of it for every store a test opens,
 * so each test starts empty there too:
 *
 *   SLIPWAY_TEST_S3='s3://suite?endpoint=http://127.0.0.1:PORT&region=us-east-1' \
 *       build/test/unit/test_store          # tests/e2e/410-store-s3.sh does this on moto
 *
 * A test that is about the fs backend itself (temporary files, syncfs batches,
 * inotify notices, file:// URLs) calls SF_FS_ONLY("why") first and is reported
 * as skipped on s3 with the reason, never as passed. What another writer does
 * behind slipway's back (a forged, truncated or removed object) goes through
 * the store's own put and delete, which on fs write the file as before.
 *
 * Header-only, static: a test program includes it once. The prefixes are left
 * in the bucket (the moto of a test run is thrown away with it).
 */
#ifndef SW_TEST_STORE_FIXTURE_H
#define SW_TEST_STORE_FIXTURE_H

#include "store/store.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The s3 base URL the tests run on, or NULL for fs. */
static inline const char *sf_s3(void)
{
    const char *u = getenv("SLIPWAY_TEST_S3");
    return u && *u ? u : NULL;
}

/* Skips the calling test on the other backend, saying why (cmocka's skip:
 * "# SKIP" in TAP, counted apart from passes). */
#define SF_FS_ONLY(why)                                                                            \
    do {                                                                                           \
        if (sf_s3()) {                                                                             \
            print_message("# fs only: %s\n", why);                                                 \
            skip();                                                                                \
        }                                                                                          \
    } while (0)
#define SF_S3_ONLY(why)                                                                            \
    do {                                                                                           \
        if (!sf_s3()) {                                                                            \
            print_message("# s3 only (set SLIPWAY_TEST_S3 to run it): %s\n", why);                 \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The URL of a new, empty store (caller frees): on fs dir/name (dir itself
 * when name is NULL); on s3 SLIPWAY_TEST_S3 with a prefix no other store of
 * any test run has, "<its prefix>/t-<pid>-<time>-<n>". */
static inline char *sf_store_url(const char *dir, const char *name)
{
    const char *base = sf_s3();
    if (!base)
        return name ? path_join(dir, name) : xstrdup(dir);
    static unsigned counter;
    const char *q = strchr(base, '?');
    size_t blen = q ? (size_t)(q - base) : strlen(base);
    while (blen > 5 && base[blen - 1] == '/')
        blen--;
    return xasprintf("%.*s/t-%ld-%lld-%u%s", (int)blen, base, (long)getpid(),
                     (long long)time_now_ms(), counter++, q ? q : "");
}

/* Another writer puts data under key (a forged or damaged object, a document
 * put back): must succeed. */
static inline void sf_put(struct store *st, const char *key, const void *data, size_t len)
{
    struct sw_err err = {0};
    int rc = store_put(st, key, data, len, 0, NULL, &err);
    if (rc)
        fail_msg("put %s: %s", key, err.msg);
}

static inline void sf_put_str(struct store *st, const char *key, const char *s)
{
    sf_put(st, key, s, strlen(s));
}

/* Another writer removes key: must exist. */
static inline void sf_delete(struct store *st, const char *key)
{
    struct sw_err err = {0};
    int rc = store_delete(st, key, NULL, &err);
    if (rc)
        fail_msg("delete %s: %s", key, err.msg);
}

/* key's modification time as the store reports it. */
static inline int64_t sf_mtime_ms(struct store *st, const char *key)
{
    struct store_stat sb;
    struct sw_err err = {0};
    int rc = store_head(st, key, &sb, 0, &err);
    if (rc)
        fail_msg("head %s: %s", key, err.msg);
    return sb.mtime_ms;
}

/* Makes key of the store at url look older than anything written from now
 * on: on fs its mtime goes two hours back; S3 has no way to set
 * Last-Modified, which counts whole seconds, so this waits until the clock
 * is in a later second than the object's. Either way a write from now on
 * gives a later modification time than sf_mtime_ms(key) returns after it. */
static inline void sf_age(struct store *st, const char *url, const char *key)
{
    if (!sf_s3()) {
        char *path = path_join(url, key);
        struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
        if (utimensat(AT_FDCWD, path, old, 0) != 0)
            fail_msg("utimensat %s failed", path);
        free(path);
        return;
    }
    int64_t then = sf_mtime_ms(st, key);
    for (int i = 0; i < 300 && time_now_ms() / 1000 <= then / 1000; i++)
        usleep(10000);
    if (time_now_ms() / 1000 <= then / 1000)
        fail_msg("%s: its Last-Modified is not in the past", key);
}

#endif

/* Unit tests for release_cache_policy: which names are content-hashed and may
 * be cached for a year. One case per bundler with the names it really emits,
 * then the other direction: ordinary names (versions, dates, sizes, camel-case
 * words with digits, UUIDs) that must stay revalidated, because a wrong
 * "immutable" keeps a stale file in browsers for a year. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "release/release.h"

#include <stdio.h>
#include <string.h>

#define IMMUTABLE "public, max-age=31536000, immutable"
#define REVALIDATE "public, max-age=300"

struct expect {
    const char *path;
    const char *policy;
};

/* Checks every case and reports every mismatch before failing. */
static void check(const struct expect *v, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const char *got = release_cache_policy(v[i].path);
        if (strcmp(got, v[i].policy) != 0) {
            print_message("# %s: got '%s', expected '%s'\n", v[i].path, got, v[i].policy);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

#define CHECK(v) check(v, sizeof(v) / sizeof(*(v)))

/* Vite builds with Rollup: assets/[name]-[hash][extname], 8 characters of
 * base64url ([A-Za-z0-9_-]), so '-' and '_' may be part of the hash. */
static void test_vite(void **state)
{
    static const struct expect v[] = {
        {"assets/index-BxK3f9a2.js", IMMUTABLE},
        {"assets/index-BxK3f9a2.js.map", IMMUTABLE},
        {"assets/index-Dp4xQ7mZ.css", IMMUTABLE},
        {"assets/logo-C9aVx2Lk.svg", IMMUTABLE},
        {"assets/Inter-Bold-aB3xY9kQ.woff2", IMMUTABLE},
        {"assets/index-legacy-Cz3kT8wQ.js", IMMUTABLE},
        {"assets/vendor-B-xK3f9a.js", IMMUTABLE},    /* '-' inside the hash */
        {"assets/vendor--xK3f9a2.js", IMMUTABLE},    /* hash starting with '-' */
        {"assets/polyfills-KgBoV_T7.js", IMMUTABLE}, /* '_' inside the hash */
        {"assets/jquery.min-JApCN0-o.js", IMMUTABLE},
        {"assets/index-D8b4DHJx.js", IMMUTABLE},
        {"index.html", "no-cache"},
    };
    CHECK(v);
}

/* webpack: [name].[contenthash].js, hex, 20 characters by default, 16 with
 * xxhash64, or cut with [contenthash:8]; [id] is often a number. */
static void test_webpack(void **state)
{
    static const struct expect v[] = {
        {"main.3f2a9c1b.js", IMMUTABLE},
        {"js/app.86f7e437faa5a7fce15d.js", IMMUTABLE},
        {"js/vendors.e9d71f5ee7c92d6d.js", IMMUTABLE},
        {"js/123.84a516841ba77a5b4648.js", IMMUTABLE},
        {"js/3c363836cf4e16666669.js", IMMUTABLE}, /* [contenthash].js */
        {"css/main.58e6b3a414a1e090.css", IMMUTABLE},
        {"images/logo.5d5d9eef.svg", IMMUTABLE},
        {"fonts/roboto-v30-latin-regular.4a0a1921.woff2", IMMUTABLE},
        {"main.3f2a9c1b.js.map", IMMUTABLE},
        {"main.js", REVALIDATE},
    };
    CHECK(v);
}

/* Create React App: static/js/[name].[contenthash:8].chunk.js and friends. */
static void test_cra(void **state)
{
    static const struct expect v[] = {
        {"static/js/main.8f3a2b1c.chunk.js", IMMUTABLE},
        {"static/js/2.8e5f1a3b.chunk.js", IMMUTABLE},
        {"static/js/787.c4b3d2e1.chunk.js", IMMUTABLE},
        {"static/js/main.8f3a2b1c.js", IMMUTABLE},
        {"static/js/main.8f3a2b1c.js.LICENSE.txt", IMMUTABLE},
        {"static/js/runtime-main.5f4e3d2c.js", IMMUTABLE},
        {"static/css/main.073c9b0a.css", IMMUTABLE},
        {"static/css/main.073c9b0a.chunk.css.map", IMMUTABLE},
        {"static/media/logo.6ce24c58023cc2f8fd88fe9d219db6c6.svg", IMMUTABLE},
        {"asset-manifest.json", REVALIDATE},
        {"manifest.json", REVALIDATE},
        {"index.html", "no-cache"},
    };
    CHECK(v);
}

/* esbuild: [name]-[hash], the first 8 characters of a base32 digest
 * (A-Z and 2-7). */
static void test_esbuild(void **state)
{
    static const struct expect v[] = {
        {"out-5ZBYMYRM.js", IMMUTABLE},
        {"chunk-5GY4LHWQ.js", IMMUTABLE},
        {"assets/image-CQFGD2NG.png", IMMUTABLE},
        {"main-WNHKT3RF.css", IMMUTABLE},
        {"chunks/chunk-CWD4CCSD.js", IMMUTABLE},
        {"out-5ZBYMYRM.js.map", IMMUTABLE},
        {"out.js", REVALIDATE},
    };
    CHECK(v);
}

/* Parcel: [name].[hash].[ext], 8 hex characters. */
static void test_parcel(void **state)
{
    static const struct expect v[] = {
        {"index.1a2b3c4d.js", IMMUTABLE}, {"index.975ef6c8.css", IMMUTABLE},
        {"logo.4e5f6a7b.svg", IMMUTABLE}, {"index.975ef6c8.js.map", IMMUTABLE},
        {"index.html", "no-cache"},
    };
    CHECK(v);
}

/* Plain Rollup: [name]-[hash].js with the same 8 base64url characters as Vite. */
static void test_rollup(void **state)
{
    static const struct expect v[] = {
        {"dist/main-BxYz12Ab.js", IMMUTABLE},   {"dist/chunk-7DFoL95W.js", IMMUTABLE},
        {"dist/shared-hE7MCBZO.js", IMMUTABLE}, {"dist/util-M4QsAgRf.mjs", IMMUTABLE},
        {"dist/bundle.js", REVALIDATE},
    };
    CHECK(v);
}

/* Hugo pipes: resources.Fingerprint appends the SHA-256 (or md5, sha512) in hex. */
static void test_hugo(void **state)
{
    static const struct expect v[] = {
        {"css/main.min.928f8ef12735c60b1dc8b4e5f874eef2c90c9ea3a781525147a86c137d4238c4.css",
         IMMUTABLE},
        {"js/bundle.53a51af29d60885a03d6ceefad46547696e0387c7459a40530a7c8ac0345ae08.js",
         IMMUTABLE},
        {"css/style.f75cdbcea8034badbb1b7f8097fcb138.css", IMMUTABLE}, /* md5 */
        {"css/main.min.css", REVALIDATE},
        {"index.xml", REVALIDATE},
    };
    CHECK(v);
}

/* Next.js: everything under _next/static/ is content-hashed or under the build
 * id, and Next.js itself serves it as immutable. */
static void test_nextjs(void **state)
{
    static const struct expect v[] = {
        {"_next/static/chunks/framework-2c79e2a64abdb08b.js", IMMUTABLE},
        {"_next/static/chunks/4bd1b696-e1ee501b1f3528ba.js", IMMUTABLE},
        {"_next/static/chunks/pages/_app-0b8371040a489192.js", IMMUTABLE},
        {"_next/static/chunks/app/layout-48df224b81605655.js", IMMUTABLE},
        {"_next/static/css/9e3b1f2a4c5d6e7f.css", IMMUTABLE},
        {"_next/static/media/inter.a64ecd8c.woff2", IMMUTABLE},
        {"_next/static/media/569ce4b8f30dc480-s.p.woff2", IMMUTABLE},
        {"_next/static/CYl0ZLeVbM_8WwUcVtSyd/_buildManifest.js", IMMUTABLE},
        {"_next/static/CYl0ZLeVbM_8WwUcVtSyd/_ssgManifest.js", IMMUTABLE},
        {"docs/_next/static/chunks/main-3f2a9c1b4d5e6f7a.js", IMMUTABLE}, /* under a basePath */
        /* Not the _next/static/ directory. */
        {"_next/data/CYl0ZLeVbM_8WwUcVtSyd/index.json", REVALIDATE},
        {"my_next/static/app.js", REVALIDATE},
        {"_next/staticfile.js", REVALIDATE},
        {"static/_next/app.js", REVALIDATE},
        {"_next/static/page.html", "no-cache"}, /* HTML never is */
    };
    CHECK(v);
}

/* Names people write. Every one of these was immutable under the old rule or
 * is one character away from a name that was. */
static void test_ordinary_names(void **state)
{
    static const struct expect v[] = {
        /* camel-case words with digits in the place of an 8-character hash */
        {"chart-Q3Report.png", REVALIDATE},
        {"user-Profile1.png", REVALIDATE},
        {"Inter-Bold2023.woff2", REVALIDATE},
        {"logo-v2final1.svg", REVALIDATE},
        {"photo-IMG12345.jpg", REVALIDATE},
        {"api-v1beta12.json", REVALIDATE},
        {"email.compat32-message.rst.txt", REVALIDATE},
        {"setup-Win10x64.zip", REVALIDATE},
        {"phone-iPhone13.png", REVALIDATE},
        {"screenshot-iOS17App.png", REVALIDATE},
        {"ipad-iPad2Air.png", REVALIDATE},
        {"brand-MacOS13x.svg", REVALIDATE},
        {"show-S01E02v2.mp4", REVALIDATE},
        {"og-1200x630.png", REVALIDATE},
        {"hero-Bg1920px.jpg", REVALIDATE},
        {"guide-ES2015js.pdf", REVALIDATE},
        {"photo-DSCN0042.jpg", REVALIDATE},
        {"Roboto-Light300.woff2", REVALIDATE},
        {"deal-Top10Tip.png", REVALIDATE},
        /* the same in capitals, which is esbuild's alphabet when the digits are 2-7 */
        {"chart-Q3REPORT.png", REVALIDATE},
        {"chapter-V2FINAL3.pdf", REVALIDATE},
        {"banner-TOP5TIPS.png", REVALIDATE},
        {"page-PAGE2OF3.png", REVALIDATE},
        {"notes-CHAPTER2.pdf", REVALIDATE},
        /* versions are not content hashes */
        {"jquery-3.7.1.min.js", REVALIDATE},
        {"jquery-3.6.0.min.js", REVALIDATE},
        {"bootstrap-5.3.2.min.css", REVALIDATE},
        {"react-18.2.0.production.min.js", REVALIDATE},
        {"release-v1.2.3.tar.gz", REVALIDATE},
        /* dates, times and sizes */
        {"photo-20240101.jpg", REVALIDATE},
        {"backup-20240101123045.tar.gz", REVALIDATE},
        {"export-1700000000000.json", REVALIDATE},
        {"IMG_20240101_123045.jpg", REVALIDATE},
        {"DSC01234.JPG", REVALIDATE},
        {"report-2024-Q3.pdf", REVALIDATE},
        {"favicon-32x32.png", REVALIDATE},
        {"android-chrome-192x192.png", REVALIDATE},
        {"apple-touch-icon-180x180.png", REVALIDATE},
        {"banner-1920x1080.jpg", REVALIDATE},
        /* hex-looking words and numbers, UUIDs (an identifier, not the content's hash) */
        {"menu-cafe2024.pdf", REVALIDATE},
        {"deadbeef.png", REVALIDATE},
        {"test-abcd1234.png", REVALIDATE},
        {"avatar-550e8400-e29b-41d4-a716-446655440000.png", REVALIDATE},
        {"550e8400-e29b-41d4-a716-446655440000.jpg", REVALIDATE},
        {"uploads/9b2c1f0e-3a4d-4e5f-8a6b-7c8d9e0f1a2b.pdf", REVALIDATE},
        /* plain names; a service worker above all must never be immutable */
        {"app.js", REVALIDATE},
        {"style.css", REVALIDATE},
        {"sw.js", REVALIDATE},
        {"service-worker.js", REVALIDATE},
        {"logo.png", REVALIDATE},
        {"my-function.js", REVALIDATE},
        {"Roboto-Regular.ttf", REVALIDATE},
        {"robots.txt", REVALIDATE},
        {"sitemap.xml", REVALIDATE},
        {"site.webmanifest", REVALIDATE},
        {"LICENSE", REVALIDATE},
        {".htaccess", REVALIDATE},
        {"index.html", "no-cache"},
        {"docs/index.html", "no-cache"},
        {"app.3f9a2c1d.html", "no-cache"}, /* HTML is never immutable: its URL is stable */
    };
    CHECK(v);
}

/* Real hashes the rule does not recognise: they are revalidated, which is
 * slower but never stale. Pinned so that a change in either direction is seen. */
static void test_unrecognised_hashes_revalidate(void **state)
{
    static const struct expect v[] = {
        {"assets/index-DiwrgTda.css", REVALIDATE}, /* no digit */
        {"assets/index-Xq9wer2T.js", REVALIDATE},  /* "wer": three lower-case letters */
        {"index-4QTUNIID.js", REVALIDATE},         /* esbuild, but reads like a word */
        {"main.20481937.js", REVALIDATE},          /* hex that is all digits */
    };
    CHECK(v);
}

/* Empty, degenerate and oversized names, and bytes outside ASCII. */
static void test_edges(void **state)
{
    static const struct expect v[] = {
        {"", REVALIDATE},
        {".", REVALIDATE},
        {"-", REVALIDATE},
        {"-.js", REVALIDATE},
        {"a-.js", REVALIDATE},
        {"-BxK3f9a2.js", REVALIDATE}, /* no name before the hash */
        {"BxK3f9a2.js", REVALIDATE},
        {"a-BxK3f9a2", REVALIDATE}, /* no extension: the hash is not followed by '.' */
        {"a-BxK3f9a2.", REVALIDATE},
        {"a-BxK3f9a2.js", IMMUTABLE},
        {"a-xBxK3f9a2.js", REVALIDATE}, /* 9 characters */
        {"a-BxK3f9a.js", REVALIDATE},   /* 7 characters */
        {"3f2a9c1b", REVALIDATE},
        {"3f2a9c1b.", REVALIDATE},
        {"a.3f2a9c1.js", REVALIDATE},         /* 7 hex digits */
        {"a.3F2A9C1B.js", REVALIDATE},        /* bundlers write hex in lower case */
        {"a.abcde12345.js", REVALIDATE},      /* below 12: a hex word and a number */
        {"main.0123456789ab.css", IMMUTABLE}, /* from 12 on a letter and a digit do */
        {"a.201801011230.js", REVALIDATE},    /* but never digits alone */
        {"3f2a9c1b/app.js", REVALIDATE},      /* a hashed directory is not a hashed name */
        {"assets/a-BxK3f9a2.js/", REVALIDATE},
        {"caf\xc3\xa9-BxK3f9a2.js", IMMUTABLE},
        {"a-BxK3f9\xc3\xa9.js", REVALIDATE},
        {"a-BxK3f9a\xff.js", REVALIDATE},
        {"550e8400-e29b-41d4-a716-44665544000.js", IMMUTABLE}, /* not a UUID: 11 digits */
    };
    CHECK(v);

    /* Long names: a hash after 4000 characters of name, and 4000 characters
     * of separators and digits with no hash at all. */
    static char name[4096 + 32];
    size_t n = 0;
    for (; n < 4000; n += 2)
        memcpy(name + n, "a-", 2);
    snprintf(name + n, sizeof(name) - n, "BxK3f9a2.js");
    assert_string_equal(release_cache_policy(name), IMMUTABLE);
    for (n = 0; n < 4000; n += 2)
        memcpy(name + n, "1.", 2);
    snprintf(name + n, sizeof(name) - n, "js");
    assert_string_equal(release_cache_policy(name), REVALIDATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vite),
        cmocka_unit_test(test_webpack),
        cmocka_unit_test(test_cra),
        cmocka_unit_test(test_esbuild),
        cmocka_unit_test(test_parcel),
        cmocka_unit_test(test_rollup),
        cmocka_unit_test(test_hugo),
        cmocka_unit_test(test_nextjs),
        cmocka_unit_test(test_ordinary_names),
        cmocka_unit_test(test_unrecognised_hashes_revalidate),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests_name("cache_policy", tests, NULL, NULL);
}

/* Unit tests for base: buffers, errors, hashing, time and durations, files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_buf_grows(void **state)
{
    struct buf b = BUF_INIT;
    for (int i = 0; i < 10000; i++)
        buf_addf(&b, "%d,", i);
    assert_true(b.len > 40000);
    assert_int_equal(b.data[b.len], '\0');
    assert_true(str_starts_with(b.data, "0,1,2,"));
    assert_true(str_ends_with(b.data, "9999,"));
    size_t len;
    char *s = buf_detach(&b, &len);
    assert_null(b.data);
    assert_int_equal(strlen(s), len);
    free(s);
    char *e = buf_detach(&b, NULL); /* empty buffer detaches as "" */
    assert_string_equal(e, "");
    free(e);
}

/* buf_add_u64 writes what printf's %llu writes, at the edges of the range too. */
static void test_buf_add_u64(void **state)
{
    static const uint64_t v[] = {
        0, 1, 9, 10, 99, 100, 65535, 1234567890123ULL, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct buf a = BUF_INIT, b = BUF_INIT;
        buf_adds(&a, "x");
        buf_add_u64(&a, v[i]);
        buf_addf(&b, "x%llu", (unsigned long long)v[i]);
        assert_string_equal(a.data, b.data);
        assert_int_equal(a.len, b.len);
        buf_free(&a);
        buf_free(&b);
    }
}

static void test_err_prefix(void **state)
{
    struct sw_err err = {0};
    assert_int_equal(sw_err_set(&err, SW_EINVAL, "bad %s", "key"), SW_EINVAL);
    sw_err_prefix(&err, "file %s", "a.yml");
    assert_string_equal(err.msg, "file a.yml: bad key");
    assert_int_equal(sw_err_sys(&err, 2, "open x"), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "open x: No such file"));
    assert_int_equal(sw_err_set(NULL, SW_EIO, "ignored"), SW_EIO);
}

static void test_sha256_vectors(void **state)
{
    char hex[65];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    struct sha256_ctx *c = sha256_new();
    sha256_update(c, "a", 1);
    sha256_update(c, "bc", 2);
    sha256_final_hex(c, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_time_roundtrip(void **state)
{
    char s[32];
    time_format_iso(1764059106123LL, s, sizeof(s));
    assert_string_equal(s, "2025-11-25T08:25:06.123Z");
    int64_t ms;
    assert_int_equal(time_parse_iso(s, &ms), 0);
    assert_int_equal(ms, 1764059106123LL);
    assert_int_equal(time_parse_iso("2025-11-25T08:25:06Z", &ms), 0);
    assert_int_equal(ms, 1764059106000LL);
    assert_int_equal(time_parse_iso("yesterday", &ms), SW_EINVAL);
    assert_int_equal(time_parse_iso("2025-11-25T08:25:06+01:00", &ms), SW_EINVAL);
}

static void test_durations(void **state)
{
    int64_t ms;
    assert_int_equal(duration_parse("24h", &ms), 0);
    assert_int_equal(ms, 24LL * 3600 * 1000);
    assert_int_equal(duration_parse("1h30m", &ms), 0);
    assert_int_equal(ms, 90LL * 60 * 1000);
    assert_int_equal(duration_parse("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(duration_parse("7d", &ms), 0);
    assert_int_equal(ms, 7LL * 86400 * 1000);
    assert_int_equal(duration_parse("", &ms), SW_EINVAL);
    assert_int_equal(duration_parse("h", &ms), SW_EINVAL);
    assert_int_equal(duration_parse("10", &ms), SW_EINVAL);
    assert_int_equal(duration_parse("10y", &ms), SW_EINVAL);
    assert_int_equal(duration_parse("-5m", &ms), SW_EINVAL);
    assert_int_equal(duration_parse("99999999999h", &ms), SW_EINVAL);
    /* Many parts, each in bounds, must not add up past the bound (or overflow). */
    struct buf many = BUF_INIT;
    for (int i = 0; i < 2000; i++)
        buf_adds(&many, "99999999d");
    assert_int_equal(duration_parse(many.data, &ms), SW_EINVAL);
    buf_free(&many);
    assert_int_equal(duration_parse("36500d", &ms), 0);
    assert_int_equal(duration_parse("36501d", &ms), SW_EINVAL);
    char out[32];
    duration_format(90061000, out, sizeof(out));
    assert_string_equal(out, "1d1h");
    duration_format(5000, out, sizeof(out));
    assert_string_equal(out, "5s");
}

static void test_sizes(void **state)
{
    uint64_t n = 7;
    assert_int_equal(size_parse("10G", &n), 0);
    assert_true(n == 10ULL << 30);
    assert_int_equal(size_parse("512MiB", &n), 0);
    assert_true(n == 512ULL << 20);
    assert_int_equal(size_parse("64k", &n), 0);
    assert_true(n == 65536);
    assert_int_equal(size_parse("2GB", &n), 0);
    assert_true(n == 2ULL << 30);
    assert_int_equal(size_parse("1048576", &n), 0);
    assert_true(n == 1048576);
    assert_int_equal(size_parse("100B", &n), 0);
    assert_true(n == 100);
    assert_int_equal(size_parse("0", &n), 0);
    assert_true(n == 0);
    assert_int_equal(size_parse("15E", &n), 0);
    assert_true(n == 15ULL << 60);
    assert_int_equal(size_parse("18446744073709551615", &n), 0);
    assert_true(n == UINT64_MAX);
    n = 7;
    const char *bad[] = {"",
                         "G",
                         "-1G",
                         "+1G",
                         "1.5G",
                         "10 G",
                         "10X",
                         "10Gi",
                         "10GiBs",
                         "1KK",
                         "16E",
                         "18446744073709551616",
                         "99999999999999999999999T",
                         " 10G"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(size_parse(bad[i], &n), SW_EINVAL);
        assert_true(n == 7);
    }
    char out[32];
    size_format(10ULL << 30, out, sizeof(out));
    assert_string_equal(out, "10 GiB");
    size_format(1536ULL << 10, out, sizeof(out));
    assert_string_equal(out, "1.5 MiB");
    size_format(512, out, sizeof(out));
    assert_string_equal(out, "512 bytes");
    size_format(200ULL << 20, out, sizeof(out));
    assert_string_equal(out, "200 MiB");
}

static void test_files(void **state)
{
    char dir[] = "/tmp/sw-base-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *deep = xasprintf("%s/a/b/c", dir);
    assert_int_equal(fs_mkdir_p(deep, NULL), 0);
    assert_int_equal(fs_mkdir_p(deep, NULL), 0); /* idempotent */
    char *f = path_join(deep, "x.txt");
    assert_int_equal(fs_write_atomic(f, "hello", 5, NULL), 0);
    assert_int_equal(fs_write_atomic(f, "bye", 3, NULL), 0);
    char *data;
    size_t len;
    assert_int_equal(file_read_all(f, &data, &len, NULL), 0);
    assert_int_equal(len, 3);
    assert_string_equal(data, "bye");
    free(data);
    struct sw_err err = {0};
    char *missing = path_join(dir, "nope");
    assert_int_equal(file_read_all(missing, &data, &len, &err), SW_ENOTFOUND);
    assert_non_null(strstr(err.msg, "nope"));
    /* mkdir -p through a regular file is an error, not a crash */
    char *through = path_join(f, "sub");
    assert_int_not_equal(fs_mkdir_p(through, &err), 0);
    char *cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd), free(through), free(missing), free(f), free(deep);
}

/* fs_remove_tree removes a tree of files, directories and links, never what
 * a link points to; a missing path is fine; too deep a tree is an error. */
static void test_remove_tree(void **state)
{
    char dir[] = "/tmp/sw-base-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *outside = path_join(dir, "outside");
    char *kept = path_join(outside, "kept.txt");
    char *tree = path_join(dir, "tree");
    char *cmd = xasprintf("set -e; cd %s; mkdir -p outside tree/a/b/c tree/empty; "
                          "echo k > outside/kept.txt; touch tree/f tree/a/g tree/a/b/c/h; "
                          "for i in $(seq 300); do touch tree/a/many$i; done; "
                          "ln -s ../outside tree/a/to-outside; ln -s %s/outside/kept.txt tree/abs; "
                          "ln -s loop tree/loop",
                          dir, dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    struct sw_err err = {0};
    int rc = fs_remove_tree(tree, &err);
    if (rc)
        print_message("# %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(access(tree, F_OK), -1);
    assert_int_equal(access(kept, F_OK), 0); /* links were removed, not followed */
    assert_int_equal(fs_remove_tree(tree, &err), 0);
    /* a file alone */
    assert_int_equal(fs_remove_tree(kept, &err), 0);
    assert_int_equal(access(kept, F_OK), -1);
    /* deeper than it goes: an error naming the path, and the caller falls back */
    struct buf deep = BUF_INIT;
    buf_adds(&deep, tree);
    for (int i = 0; i < 140; i++)
        buf_adds(&deep, "/d");
    assert_int_equal(fs_mkdir_p(deep.data, NULL), 0);
    assert_int_not_equal(fs_remove_tree(tree, &err), 0);
    assert_non_null(strstr(err.msg, tree));
    buf_free(&deep);
    cmd = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd), free(tree), free(kept), free(outside);
}

static char *escaped(const char *s)
{
    struct buf b = BUF_INIT;
    buf_add_escaped(&b, s);
    return buf_detach(&b, NULL);
}

#define assert_escapes(in, want)                                                                   \
    do {                                                                                           \
        char *got_ = escaped(in);                                                                  \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_escape_cases(void **state)
{
    assert_escapes("", "");
    assert_escapes("r-20261125-082506-123-9f3a1c", "r-20261125-082506-123-9f3a1c");
    assert_escapes("line1\nnot ok - forged", "line1\\nnot ok - forged");
    assert_escapes("x\rEVIL", "x\\rEVIL");
    assert_escapes("a\tb", "a\\tb");
    assert_escapes("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    assert_escapes("\x01\x7f", "\\x01\\x7f");
    /* a backslash is escaped too, so "\n" typed as two characters stays distinguishable */
    assert_escapes("a\\nb", "a\\\\nb");
    /* UTF-8 text is kept as it is */
    assert_escapes("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\x80",
                   "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\x80");
    /* bytes that are not UTF-8: stray, truncated, overlong, surrogate, beyond U+10FFFF */
    assert_escapes("\xff", "\\xff");
    assert_escapes("\x80x", "\\x80x");
    assert_escapes("\xe6\x97", "\\xe6\\x97");
    assert_escapes("\xc0\xaf", "\\xc0\\xaf");
    assert_escapes("\xed\xa0\x80", "\\xed\\xa0\\x80");
    assert_escapes("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
    /* C1 CSI, the line separator and a right-to-left override are escaped */
    assert_escapes("\xc2\x9b"
                   "2J",
                   "\\u009b2J");
    assert_escapes("a\xe2\x80\xa8"
                   "b",
                   "a\\u2028b");
    assert_escapes("evil\xe2\x80\xaetxt.exe", "evil\\u202etxt.exe");
    /* it appends */
    struct buf b = BUF_INIT;
    buf_adds(&b, "msg: ");
    buf_add_escaped(&b, "a\nb");
    assert_string_equal(b.data, "msg: a\\nb");
    buf_free(&b);
}

/* Reverses buf_add_escaped; returns NULL when the text is not one of its outputs. */
static char *unescape(const char *s)
{
    struct buf b = BUF_INIT;
    buf_add(&b, "", 0);
    for (const char *p = s; *p; p++) {
        if (*p != '\\') {
            buf_add(&b, p, 1);
            continue;
        }
        unsigned v;
        char c;
        switch (*++p) {
        case '\\':
            c = '\\';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        case 'x':
            if (sscanf(p + 1, "%2x", &v) != 1)
                goto bad;
            c = (char)v;
            p += 2;
            break;
        case 'u':
            if (sscanf(p + 1, "%4x", &v) != 1)
                goto bad;
            p += 4;
            if (v < 0x800) {
                char u[2] = {(char)(0xc0 | v >> 6), (char)(0x80 | (v & 0x3f))};
                buf_add(&b, u, 2);
            } else {
                char u[3] = {(char)(0xe0 | v >> 12), (char)(0x80 | ((v >> 6) & 0x3f)),
                             (char)(0x80 | (v & 0x3f))};
                buf_add(&b, u, 3);
            }
            continue;
        default:
            goto bad;
        }
        buf_add(&b, &c, 1);
    }
    return buf_detach(&b, NULL);
bad:
    buf_free(&b);
    return NULL;
}

/* Whatever the input: the output holds no C0 control or DEL, and it decodes
 * back to the input (no two inputs print alike, so none can pass for another). */
static void test_escape_invariants(void **state)
{
    unsigned seed = 42;
    char in[64];
    for (int t = 0; t < 20000; t++) {
        size_t n = (size_t)(rand_r(&seed) % 24);
        for (size_t i = 0; i < n; i++) {
            /* mostly the interesting bytes: controls, backslash, UTF-8 lead/continuation */
            static const char pick[] = "\n\r\t\x1b\x7f\\\xc2\x9b\xe2\x80\xae\xf0\x9f\xff"
                                       "aZ ";
            int r = rand_r(&seed);
            in[i] = (char)(r % 3 ? pick[(unsigned)r / 3 % (sizeof(pick) - 1)] : 1 + r / 3 % 255);
        }
        in[n] = '\0';
        char *out = escaped(in);
        for (const unsigned char *p = (const unsigned char *)out; *p; p++)
            assert_true(*p >= 0x20 && *p != 0x7f);
        char *back = unescape(out);
        assert_non_null(back);
        assert_string_equal(back, in);
        free(back);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows),      cmocka_unit_test(test_buf_add_u64),
        cmocka_unit_test(test_err_prefix),     cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_time_roundtrip), cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),          cmocka_unit_test(test_files),
        cmocka_unit_test(test_escape_cases),   cmocka_unit_test(test_escape_invariants),
        cmocka_unit_test(test_remove_tree),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}

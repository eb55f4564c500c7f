/* Unit tests for the pure half of multipart uploads (src/store/s3multi.c):
 * the part size at every bound S3 sets (16 MiB parts, 10,000 parts, 5 TiB),
 * hashing a file whole and part by part in one read (parts checked against
 * sha256 of the same bytes, a file larger than its size hint, empty files),
 * the CompleteMultipartUpload document read back with the XML reader, the
 * upload id taken from CreateMultipartUpload's answer (and every refusal), and
 * what a 200 answer to CompleteMultipartUpload means: a result, or an error
 * document to retry (InternalError, SlowDown), a precondition that failed, or
 * a failure. The requests themselves run against moto in
 * tests/e2e/415-s3-multipart.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/s3multi.h"
#include "store/s3xml.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIB (1ULL << 20)

static void test_part_size(void **state)
{
    (void)state;
    assert_int_equal(s3multi_part_size(0), 16 * MIB);
    assert_int_equal(s3multi_part_size(16 * MIB + 1), 16 * MIB);
    assert_int_equal(s3multi_part_size(40 * MIB), 16 * MIB);
    /* 10,000 parts of 16 MiB hold 156.25 GiB; one byte more needs 17 MiB parts. */
    assert_int_equal(s3multi_part_size(10000 * 16 * MIB), 16 * MIB);
    assert_int_equal(s3multi_part_size(10000 * 16 * MIB + 1), 17 * MIB);
    /* 5 TiB: 525 MiB parts (S3's maximum part is 5 GiB). */
    assert_int_equal(s3multi_part_size(S3MULTI_OBJECT_MAX), 525 * MIB);
    assert_int_equal(s3multi_part_size(S3MULTI_OBJECT_MAX + 1), 0);
    /* Every size: whole MiB, at least 16 MiB, and at most 10,000 parts. */
    uint64_t sizes[] = {1,
                        16 * MIB,
                        17 * MIB,
                        1ULL << 30,
                        100ULL << 30,
                        (1ULL << 40) + 12345,
                        (3ULL << 40) - 1,
                        S3MULTI_OBJECT_MAX - 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
        uint64_t p = s3multi_part_size(sizes[i]);
        assert_true(p >= S3MULTI_PART_MIN);
        assert_int_equal(p % MIB, 0);
        assert_true((sizes[i] + p - 1) / p <= S3MULTI_PARTS_MAX);
        assert_true(p <= 5ULL << 30);
    }
}

/* A file of size bytes of a known pattern; returns its descriptor. */
static int pattern_file(char *path, size_t pathlen, uint64_t size)
{
    snprintf(path, pathlen, "/tmp/sw-s3multi-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *b = xmalloc(MIB);
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < MIB ? (size_t)(size - off) : MIB;
        for (size_t i = 0; i < n; i++)
            b[i] = (char)((off + i) * 2654435761u >> 13);
        assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
        off += n;
    }
    free(b);
    return fd;
}

static void sha_of_range(int fd, uint64_t off, uint64_t len, char hex[SHA256_HEX_LEN + 1])
{
    char *b = xmalloc(len ? len : 1);
    assert_int_equal(pread(fd, b, len, (off_t)off), (ssize_t)len);
    sha256_hex(b, len, hex);
    free(b);
}

static void check_parts(uint64_t size, uint64_t hint, size_t want_parts)
{
    char path[64], hex[SHA256_HEX_LEN + 1];
    int fd = pattern_file(path, sizeof(path), size);
    struct s3multi_file f;
    struct sw_err err = {0};
    assert_int_equal(s3multi_hash(fd, hint, &f, &err), 0);
    assert_int_equal(f.size, size);
    assert_int_equal(f.part, s3multi_part_size(hint));
    assert_int_equal(f.nparts, want_parts);
    sha_of_range(fd, 0, size, hex);
    assert_string_equal(f.sha, hex);
    for (size_t i = 0; i < f.nparts; i++) {
        uint64_t off = i * f.part, len = size - off < f.part ? size - off : f.part;
        sha_of_range(fd, off, len, hex);
        assert_string_equal(f.part_sha[i], hex);
    }
    s3multi_file_free(&f);
    close(fd);
    unlink(path);
}

static void test_hash_parts(void **state)
{
    (void)state;
    check_parts(40 * MIB, 40 * MIB, 3);         /* 16 + 16 + 8 */
    check_parts(32 * MIB, 32 * MIB, 2);         /* a whole number of parts: no empty third */
    check_parts(16 * MIB + 1, 16 * MIB + 1, 2); /* a last part of one byte */
    check_parts(50 * MIB + 7, 17 * MIB, 4);     /* grew past its hint: the part list grows */
    check_parts(0, 0, 0);                       /* nothing to read: no part */
}

static void test_hash_errors(void **state)
{
    (void)state;
    struct s3multi_file f;
    struct sw_err err = {0};
    assert_int_equal(s3multi_hash(-1, 20 * MIB, &f, &err), SW_EIO);
    assert_null(f.part_sha);
    assert_int_equal(s3multi_hash(0, S3MULTI_OBJECT_MAX + 1, &f, &err), SW_EINVAL);
    assert_non_null(strstr(err.msg, "5 TiB"));
}

static void test_complete_doc(void **state)
{
    (void)state;
    const char *etags[] = {"0123456789abcdef0123456789abcdef", "a&b<c>\"d'", "x"};
    struct buf b = BUF_INIT;
    s3multi_complete_doc(etags, 3, &b);
    struct s3xml_node *doc = NULL;
    struct sw_err err = {0};
    assert_int_equal(s3xml_parse(b.data, b.len, &doc, &err), 0);
    assert_string_equal(doc->name, "CompleteMultipartUpload");
    assert_int_equal(doc->n_kids, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct s3xml_node *p = doc->kids[i];
        char num[8], quoted[64];
        snprintf(num, sizeof(num), "%zu", i + 1);
        snprintf(quoted, sizeof(quoted), "\"%s\"", etags[i]);
        assert_string_equal(p->name, "Part");
        assert_string_equal(s3xml_text(p, "PartNumber"), num);
        assert_string_equal(s3xml_text(p, "ETag"), quoted);
    }
    s3xml_free(doc);
    buf_free(&b);
}

static void test_upload_id(void **state)
{
    (void)state;
    char *id = NULL;
    struct sw_err err = {0};
    const char *good =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Bucket>example-bucket</Bucket><Key>example-object</Key>"
        "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
        "</InitiateMultipartUploadResult>";
    assert_int_equal(s3multi_upload_id(good, strlen(good), &id, &err), 0);
    assert_string_equal(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    free(id);

    char *big = xmalloc(S3MULTI_ID_MAX + 200);
    int n = snprintf(big, 200, "<InitiateMultipartUploadResult><UploadId>");
    memset(big + n, 'a', S3MULTI_ID_MAX + 1);
    snprintf(big + n + S3MULTI_ID_MAX + 1, 100, "</UploadId></InitiateMultipartUploadResult>");
    const char *bad[] = {
        "",
        "not xml",
        "<Error><Code>AccessDenied</Code></Error>",
        "<InitiateMultipartUploadResult><Key>k</Key></InitiateMultipartUploadResult>",
        "<ListPartsResult><UploadId>a</UploadId></ListPartsResult>",
        "<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>",
        "<InitiateMultipartUploadResult><UploadId>a b</UploadId></InitiateMultipartUploadResult>",
        "<InitiateMultipartUploadResult><UploadId>a&#10;b</UploadId>"
        "</InitiateMultipartUploadResult>",
        "<!DOCTYPE x><InitiateMultipartUploadResult><UploadId>a</UploadId>"
        "</InitiateMultipartUploadResult>",
        big,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        id = (char *)1;
        assert_int_equal(s3multi_upload_id(bad[i], strlen(bad[i]), &id, &err), SW_EIO);
        assert_null(id);
        assert_null(strchr(err.msg, '\n'));
    }
    /* the bound itself is accepted */
    big[n + S3MULTI_ID_MAX] = '<';
    snprintf(big + n + S3MULTI_ID_MAX, 100, "</UploadId></InitiateMultipartUploadResult>");
    assert_int_equal(s3multi_upload_id(big, strlen(big), &id, &err), 0);
    assert_int_equal(strlen(id), S3MULTI_ID_MAX);
    free(id);
    free(big);
}

static int complete(const char *body, char etag[S3_ETAG_MAX], char code[64], struct sw_err *err)
{
    return s3multi_complete_result(body, strlen(body), etag, code, err);
}

static void test_complete_result(void **state)
{
    (void)state;
    char etag[S3_ETAG_MAX], code[64];
    struct sw_err err = {0};
    const char *result =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key>"
        "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag></CompleteMultipartUploadResult>";
    assert_int_equal(complete(result, etag, code, &err), 0);
    assert_string_equal(etag, "3858f62230ac3c915f300c664312c11f-9");
    assert_string_equal(code, "");

    /* moto names the root ...Response. */
    assert_int_equal(complete("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<CompleteMultipartUpload"
                              "Response><Key>t1</Key><ETag>\"b86583435871b60756e260201377bb9c-1\""
                              "</ETag></CompleteMultipartUploadResponse>",
                              etag, code, &err),
                     0);
    assert_string_equal(etag, "b86583435871b60756e260201377bb9c-1");

    /* The whitespace S3 sends while it works comes before the document. */
    struct buf b = BUF_INIT;
    buf_adds(&b, "   \n \r\n\t ");
    buf_adds(&b, result);
    assert_int_equal(complete(b.data, etag, code, &err), 0);
    buf_free(&b);

    /* A 200 whose body is an error: S3's documented failure after the status went out. */
    const char *internal = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n  <Error><Code>"
                           "InternalError</Code><Message>We encountered an internal error. "
                           "Please try again.</Message><RequestId>656c76696e6727732072657175657374"
                           "</RequestId></Error>";
    assert_int_equal(complete(internal, etag, code, &err), S3MULTI_ERETRY);
    assert_string_equal(code, "InternalError");
    assert_non_null(strstr(err.msg, "InternalError: We encountered an internal error"));
    assert_int_equal(complete("<Error><Code>SlowDown</Code></Error>", etag, code, &err),
                     S3MULTI_ERETRY);
    assert_int_equal(complete("<Error><Code>ServiceUnavailable</Code></Error>", etag, code, &err),
                     S3MULTI_ERETRY);
    assert_int_equal(complete("<Error><Code>PreconditionFailed</Code></Error>", etag, code, &err),
                     SW_ECONFLICT);
    assert_int_equal(err.code, SW_ECONFLICT);
    assert_int_equal(complete("<Error><Code>InvalidPart</Code><Message>One or more of the "
                              "specified parts could not be found.</Message></Error>",
                              etag, code, &err),
                     SW_EIO);
    assert_string_equal(code, "InvalidPart");
    assert_non_null(strstr(err.msg, "InvalidPart: One or more"));

    /* The service's text is shown on one line, and a code that is no code is not one. */
    assert_int_equal(complete("<Error><Code>Bad Code&#10;x</Code><Message>line1&#10;line2"
                              "</Message></Error>",
                              etag, code, &err),
                     SW_EIO);
    assert_string_equal(code, "");
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "(no code)"));

    /* Neither: an empty answer, whitespace only, garbage, another document. */
    const char *bad[] = {"", "   \n", "<html>busy</html>", "<CompleteMultipartUploadResult>",
                         "\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(complete(bad[i], etag, code, &err), SW_EIO);
        assert_null(strchr(err.msg, '\n'));
    }
    /* An ETag too long to keep is left out, not cut. */
    struct buf longer = BUF_INIT;
    buf_adds(&longer, "<CompleteMultipartUploadResult><ETag>");
    for (int i = 0; i < S3_ETAG_MAX; i++)
        buf_adds(&longer, "e");
    buf_adds(&longer, "</ETag></CompleteMultipartUploadResult>");
    assert_int_equal(complete(longer.data, etag, code, &err), 0);
    assert_string_equal(etag, "");
    buf_free(&longer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_part_size),   cmocka_unit_test(test_hash_parts),
        cmocka_unit_test(test_hash_errors), cmocka_unit_test(test_complete_doc),
        cmocka_unit_test(test_upload_id),   cmocka_unit_test(test_complete_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the secret scan (src/scan/): for each rule, values it must
 * report and look-alikes it must not; redaction and fingerprints; binary
 * files; the allow-list's syntax and globs; the walk (links, .git, FIFOs, the
 * size bound); and hostile lines that would make a naive matcher quadratic.
 *
 * Every secret-shaped string is assembled at run time from pieces and from
 * generated characters (cat(), gen()), so this file holds no literal secret
 * and `slipway scan` over the repository does not report it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "scan/scan.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- strings made at run time, freed after each test -------------------------------------- */

static char *made[4096];
static size_t nmade;

static char *keep(char *s)
{
    assert_true(nmade < sizeof(made) / sizeof(*made));
    return made[nmade++] = s;
}

/* The concatenation of the arguments up to NULL. */
static char *cat(const char *first, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        buf_adds(&b, s);
    va_end(ap);
    buf_adds(&b, "");
    return keep(buf_detach(&b, NULL));
}
#define CAT(...) cat(__VA_ARGS__, (const char *)NULL)

static unsigned long long rng = 88172645463325252ULL;

/* n characters drawn from alphabet (xorshift: the same on every run). */
static char *gen(size_t n, const char *alphabet)
{
    size_t an = strlen(alphabet);
    char *s = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        s[i] = alphabet[rng % an];
    }
    s[n] = '\0';
    return keep(s);
}
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define B64 ALNUM "+/"
#define B32 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

static char *b64url(const char *s)
{
    static const char t[] = ALNUM "-_";
    size_t n = strlen(s);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        char out[4] = {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
        buf_add(&b, out, i + 2 < n ? 4 : i + 1 < n ? 3 : 2);
    }
    buf_adds(&b, "");
    return keep(buf_detach(&b, NULL));
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nmade; i++)
        free(made[i]);
    nmade = 0;
    return 0;
}

/* ---- scanning helpers ---------------------------------------------------------------------- */

static struct scan_report *scan_with(const char *path, const char *text, size_t len,
                                     const struct scan_opts *o)
{
    struct scan_report *r = scan_report_new();
    struct sw_err err = {0};
    assert_int_equal(scan_buffer(path, text, len, o, r, &err), 0);
    return r;
}

static struct scan_report *scan(const char *path, const char *text)
{
    return scan_with(path, text, strlen(text), NULL);
}

/* How many findings text gives in a file named path (any rule). */
static size_t count(const char *path, const char *text)
{
    struct scan_report *r = scan(path, text);
    size_t n = r->n;
    scan_report_free(r);
    return n;
}

/* text gives exactly one finding, of rule at line, redacted as redacted (NULL: any). */
static void one(const char *path, const char *text, const char *rule, size_t line,
                const char *redacted)
{
    struct scan_report *r = scan(path, text);
    if (r->n != 1)
        fail_msg("%s: %zu findings, expected one %s in [%s]", path, r->n, rule, text);
    assert_string_equal(r->findings[0].rule, rule);
    assert_int_equal(r->findings[0].line, line);
    if (redacted)
        assert_string_equal(r->findings[0].redacted, redacted);
    assert_string_equal(r->findings[0].path, path);
    assert_int_equal(strlen(r->findings[0].fingerprint), SCAN_FINGERPRINT_LEN);
    scan_report_free(r);
}

#define NONE(path, text)                                                                           \
    do {                                                                                           \
        const char *t_ = (text);                                                                   \
        if (count((path), t_))                                                                     \
            fail_msg("%s: reported [%s]", (path), t_);                                             \
    } while (0)

/* ---- rules ------------------------------------------------------------------------------- */

static void test_private_key(void **state)
{
    (void)state;
    char *body = gen(64, B64);
    const char *kinds[] = {"", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED "};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(*kinds); i++) {
        char *pem = CAT("# key\n-----", "BEGIN ", kinds[i], "PRIVATE KEY-----\n", body, "\n",
                        gen(64, B64), "\n-----END ", kinds[i], "PRIVATE KEY-----\n");
        char four[9];
        memcpy(four, body, 4);
        memcpy(four + 4, "****", 5);
        one("k.pem", pem, "private-key", 2, four);
    }
    /* PGP: armor headers and a blank line before the material */
    one("k.asc", CAT("-----", "BEGIN PGP PRIVATE KEY BLOCK-----\n", "Version: x\n\n", body, "\n"),
        "private-key", 1, NULL);
    /* traditional encrypted PEM headers */
    one("k.pem",
        CAT("-----", "BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,",
            gen(32, "0123456789ABCDEF"), "\n\n", body, "\n"),
        "private-key", 1, NULL);
    /* inside a JSON string, with \n escapes */
    one("sa.json",
        CAT("{\"private_key\": \"-----", "BEGIN PRIVATE KEY-----\\n", body, "\\n-----END\"}"),
        "private-key", 1, NULL);
    /* look-alikes */
    NONE("doc.md", CAT("a line: -----", "BEGIN RSA PRIVATE KEY-----\n...\n"));
    NONE("doc.md", CAT("-----", "BEGIN RSA PRIVATE KEY-----\n"));
    NONE("pub.pem", CAT("-----", "BEGIN PUBLIC KEY-----\n", body, "\n"));
    NONE("cert.pem", CAT("-----", "BEGIN CERTIFICATE-----\n", body, "\n"));
    NONE("x.pem", CAT("-----", "BEGIN FOO PRIVATE KEY-----\n", body, "\n"));
}

static void test_aws(void **state)
{
    (void)state;
    char *id = CAT("AK", "IA", gen(16, B32)), *sid = CAT("AS", "IA", gen(16, B32));
    char *secret = CAT("Ab1", gen(37, B64));
    char *four = CAT("AKIA****");
    /* the key id, and the secret by the assignment rule */
    struct scan_report *r = scan("cfg.ini", CAT("[default]\naws_access_key_id = ", id,
                                                "\naws_secret_access_key = ", secret, "\n"));
    assert_int_equal(r->n, 2);
    assert_string_equal(r->findings[0].rule, "aws-access-key");
    assert_int_equal(r->findings[0].line, 2);
    assert_string_equal(r->findings[0].redacted, four);
    assert_string_equal(r->findings[1].rule, "secret-assignment");
    assert_int_equal(r->findings[1].line, 3);
    scan_report_free(r);
    /* the secret a few lines before, and on the same line */
    one("a.sh", CAT("S=", secret, "\n\n\n\nI=", sid, "\n"), "aws-access-key", 5, NULL);
    one("a.py", CAT("creds = ('", id, "', '", secret, "')\n"), "aws-access-key", 1, NULL);
    /* a key id alone is an identifier, not a leak */
    NONE("a.txt", CAT("key id ", id, "\n"));
    /* the secret too far away */
    NONE("a.txt", CAT(id, "\n1\n2\n3\n4\n5\n6\n", secret, "\n"));
    /* a 40-character value without both cases and digits (a SHA-1) is not a secret */
    NONE("a.txt", CAT(id, "\n", gen(40, "0123456789abcdef"), "\n"));
    /* AWS's documentation key, part of a longer word, wrong alphabet */
    NONE("a.txt", CAT("AK", "IAIOSFODNN7", "EXAMPLE\n", secret, "\n"));
    NONE("a.txt", CAT("X", id, "\n", secret, "\n"));
    NONE("a.txt", CAT("AK", "IA", gen(15, B32), "1\n", secret, "\n"));
}

static void test_github_gitlab(void **state)
{
    (void)state;
    const char *pre[] = {"p_", "o_", "u_", "s_", "r_"};
    for (size_t i = 0; i < 5; i++) {
        char *tok = CAT("gh", pre[i], gen(36, ALNUM));
        char four[9];
        memcpy(four, tok, 4);
        memcpy(four + 4, "****", 5);
        one("ci.yml", CAT("x\n  GH: ", tok, "\n"), "github-token", 2, four);
    }
    one("a", CAT("url=https://x:", "github_", "pat_", gen(82, ALNUM "_"), "@github.com"),
        "github-token", 1, "gith****");
    NONE("a", CAT("gh", "p_", gen(35, ALNUM)));
    NONE("a", CAT("gh", "p_", gen(37, ALNUM)));
    NONE("a", CAT("xgh", "p_", gen(36, ALNUM)));
    NONE("a", CAT("gh", "x_", gen(36, ALNUM)));
    NONE("a", CAT("github_", "pat_", gen(81, ALNUM)));

    one("a", CAT("GITLAB=", "gl", "pat-", gen(20, ALNUM "-_"), "\n"), "gitlab-token", 1,
        "glpa****");
    NONE("a", CAT("gl", "pat-", gen(19, ALNUM)));
    NONE("a", CAT("gl", "pat-", "xxxxxxxxxxxxxxxxxxxxxxxx"));
}

static void test_slack(void **state)
{
    (void)state;
    const char *k = "baprs";
    for (size_t i = 0; i < 5; i++) {
        char x[2] = {k[i], 0};
        one("a", CAT("token: xo", "x", x, "-", gen(12, "0123456789"), "-", gen(24, ALNUM)),
            "slack-token", 1, NULL);
    }
    NONE("a", CAT("xo", "xz-", gen(12, "0123456789"), "-", gen(24, ALNUM)));
    NONE("a", CAT("xo", "xb-", "abcdefghijklmnop")); /* no digit: a word */
    one("notify.sh",
        CAT("curl https://hooks", ".slack.com/services/T", gen(8, "0123456789ABCDEFGHIJ"), "/B",
            gen(8, "0123456789ABCDEFGHIJ"), "/", gen(24, ALNUM), "\n"),
        "slack-webhook", 1, NULL);
    NONE("doc.md", CAT("https://hooks", ".slack.com/services/T00000000/B00000000/",
                       "XXXXXXXXXXXXXXXXXXXXXXXX"));
}

static void test_jwt(void **state)
{
    (void)state;
    char *h = b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    char *p = b64url("{\"sub\":\"1234567890\",\"iat\":1516239022}");
    char *jwt = CAT(h, ".", p, ".", gen(43, ALNUM "-_"));
    one("app.js", CAT("const t = '", jwt, "';\n"), "jwt", 1, "eyJh****");
    one("t", CAT("Authorization: Bearer ", h, ".", p, ".\n"), "jwt", 1, NULL); /* alg none */
    NONE("t", CAT(b64url("{\"typ\":\"JWT\"}"), ".", p, ".", gen(43, ALNUM)));
    NONE("t", CAT(b64url("{\"alg\" is not json"), ".", p, ".", gen(43, ALNUM)));
    NONE("t", CAT(h, ".", p));                                           /* two parts */
    NONE("t", CAT(h, ".", p, ".", gen(10, ALNUM), ".", gen(10, ALNUM))); /* four */
}

static void test_assignment(void **state)
{
    (void)state;
    char *v = CAT("Zq", gen(18, ALNUM), "9");
    char four[9];
    memcpy(four, v, 4);
    memcpy(four + 4, "****", 5);
    const char *forms[] = {
        "password = %s",        "password: %s",     "\"password\": \"%s\"", "DB_PASSWORD=%s",
        "export API_TOKEN=%s",  "apiKey: '%s'",     "api_key := \"%s\"",    "$secret = '%s';",
        "client_secret => %s,", "privateKey: `%s`", "--passwd=%s",          "APIKEY: %s",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(*forms); i++) {
        char line[256];
        snprintf(line, sizeof(line), forms[i], v);
        one("conf", CAT("a = 1\n", line, "\n"), "secret-assignment", 2, four);
    }
    const char *neg[] = {
        "password = changeme",
        "password = ${DB_PASSWORD}",
        "password: <your-password-here>",
        "token: xxxxxxxxxxxxxxxxxxxx",
        "api_key = 'EXAMPLEKEY1234567890'",
        "token = os.environ[\"TOKEN\"]",
        "token = process.env.GITHUB_TOKEN",
        "token = self.tokenValue",
        "secret = aaaaaaaaaaaaaaaaaaaa",
        "password = Ab1",
        "password_file = /etc/app/pw9.txt",
        "if (token == Q3x9ZkLm2PwR7tYv) {",
        "token: the token to use for uploads",
        "token = strtok_r(s, \",\", &save);",
        "secret_name: my-app-production",
        "password: '{{ vault_password_2024 }}'",
        "token = $(cat /run/secrets/t1)",
        "max_tokens: 4096",
        "PASSWORD=%DB_PASS_1%",
    };
    for (size_t i = 0; i < sizeof(neg) / sizeof(*neg); i++)
        NONE("conf", neg[i]);
    /* a token of a known shape is reported once, by its own rule */
    char *gh = CAT("gh", "p_", gen(36, ALNUM));
    one("env.sh", CAT("GITHUB_TOKEN=", gh), "github-token", 1, NULL);
}

static void test_files_by_name(void **state)
{
    (void)state;
    const char *env = "# local\n\nDATABASE_URL=postgres://app@db/app\nDEBUG=1\n";
    one(".env", env, "env-file", 3, NULL);
    one("svc/.env.production", env, "env-file", 3, NULL);
    NONE(".env.example", env);
    NONE("svc/.env.sample", env);
    NONE(".env.template", env);
    NONE(".env", "# nothing set\nA=\nB=${B}\n");
    NONE("env", env);

    one(".aws/credentials", CAT("[default]\naws_access_key_id = ", "AK", "IA", gen(16, B32), "\n"),
        "credentials-file", 2, NULL);
    NONE("credentials.md", "user = me\n");

    NONE(".npmrc", "registry=https://r.example.org/\n//r.example.org/:_authToken=${NPM_TOKEN}\n");
    one(".npmrc", CAT("registry=x\n//registry.npmjs.org/:_auth", "Token=", gen(36, ALNUM), "\n"),
        "npmrc-token", 2, NULL);
    NONE(".npmrc", "registry=https://registry.npmjs.org/\n");

    one(".netrc", CAT("machine api.example.org\n  login me\n  pass", "word ", gen(12, ALNUM)),
        "netrc-file", 3, NULL);
    NONE(".netrc", "machine a login b\n");

    /* a private key file: reported once, by its content */
    char *key = CAT("-----", "BEGIN OPENSSH PRIVATE KEY-----\n", gen(70, B64), "\n");
    one("home/.ssh/id_ed25519", key, "private-key", 1, NULL);
    /* ... and by its name when its content is in no known format */
    one("id_rsa", CAT(gen(70, B64), "\n"), "ssh-key-file", 1, NULL);
    NONE("id_rsa.pub", CAT("ssh-ed25519 ", gen(68, B64), " me@host\n"));
}

static void test_binary(void **state)
{
    (void)state;
    char *tok = CAT("gh", "p_", gen(36, ALNUM));
    char data[200];
    size_t n = strlen(tok);
    memset(data, 'a', sizeof(data));
    memcpy(data + 10, tok, n);
    data[100] = '\0';
    struct scan_report *r = scan_with("img.png", data, sizeof(data), NULL);
    assert_int_equal(r->n, 0);
    assert_int_equal(r->files_skipped_binary, 1);
    assert_int_equal(r->files_scanned, 0);
    scan_report_free(r);
    /* invalid UTF-8 everywhere: binary */
    for (size_t i = 0; i < sizeof(data); i += 3)
        data[i] = (char)0xff;
    data[100] = 'a';
    assert_true(scan_is_binary(data, sizeof(data)));
    /* Latin-1 text with a few accents is still text, and scanned */
    char *latin = CAT("caf\xe9 ", tok, " na\xefve\n");
    assert_false(scan_is_binary(latin, strlen(latin)));
    r = scan("menu.txt", latin);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->files_scanned, 1);
    scan_report_free(r);
    /* a multi-byte character cut by the end of the 8 KiB window is not a fault */
    char *big = xmalloc(SCAN_SNIFF_BYTES + 16);
    memset(big, 'a', SCAN_SNIFF_BYTES + 16);
    memcpy(big + SCAN_SNIFF_BYTES - 1, "\xe2\x82\xac", 3);
    assert_false(scan_is_binary(big, SCAN_SNIFF_BYTES + 16));
    free(big);
    assert_false(scan_is_binary("", 0));
}

static void test_redaction_fingerprint(void **state)
{
    (void)state;
    char *tok = CAT("gh", "p_", gen(36, ALNUM));
    struct scan_report *a = scan("src/a.c", CAT("x\n", tok, "\n"));
    struct scan_report *b = scan("src/a.c", CAT("\n\n\n\n", tok, "\n"));
    struct scan_report *c = scan("src/b.c", CAT(tok, "\n"));
    assert_int_equal(a->n, 1);
    /* the redacted form never holds more than 4 characters of the value */
    assert_string_equal(a->findings[0].redacted, "ghp_****");
    assert_null(strstr(a->findings[0].redacted, tok + 4));
    /* documented: the first 16 hex digits of sha256(rule NUL path NUL value) */
    struct buf in = BUF_INIT;
    buf_add(&in, "github-token", 13);
    buf_add(&in, "src/a.c", 8);
    buf_adds(&in, tok);
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex(in.data, in.len, hex);
    hex[SCAN_FINGERPRINT_LEN] = '\0';
    assert_string_equal(a->findings[0].fingerprint, hex);
    /* a line moved keeps its fingerprint; another file has another */
    assert_string_equal(a->findings[0].fingerprint, b->findings[0].fingerprint);
    assert_int_equal(b->findings[0].line, 5);
    assert_string_not_equal(a->findings[0].fingerprint, c->findings[0].fingerprint);
    buf_free(&in);
    scan_report_free(a);
    scan_report_free(b);
    scan_report_free(c);
}

/* ---- the allow-list ------------------------------------------------------------------------ */

static struct scan_ignore *ig_parse(const char *text)
{
    struct scan_ignore *ig = NULL;
    struct sw_err err = {0};
    if (scan_ignore_parse("scan-ignore", text, strlen(text), &ig, &err))
        fail_msg("%s", err.msg);
    return ig;
}

static void ig_bad(const char *text, const char *msg)
{
    struct scan_ignore *ig = NULL;
    struct sw_err err = {0};
    assert_int_equal(scan_ignore_parse("IGN", text, strlen(text), &ig, &err), SCAN_EIGNORE);
    assert_null(ig);
    if (!strstr(err.msg, msg))
        fail_msg("[%s] gave [%s], wanted [%s]", text, err.msg, msg);
}

static int covers(const char *pattern, const char *path)
{
    struct scan_ignore *ig = ig_parse(pattern);
    int m = scan_ignore_path(ig, path, 0);
    scan_ignore_free(ig);
    return m;
}

static void test_ignore_globs(void **state)
{
    (void)state;
    assert_true(covers("tests/data/**", "tests/data/a"));
    assert_true(covers("tests/data/**", "tests/data/a/b/c.txt"));
    assert_false(covers("tests/data/**", "tests/database/a"));
    assert_false(covers("tests/data/**", "x/tests/data/a"));
    assert_true(covers("tests/data", "tests/data/a/b")); /* a directory covers its files */
    assert_true(covers("/tests/data/", "tests/data/a"));
    assert_false(covers("tests/data/", "tests/data")); /* trailing '/': directories only */
    assert_true(covers("*.pem", "a/b/c.pem"));         /* no '/': any depth */
    assert_true(covers("*.pem", "c.pem"));
    assert_false(covers("*.pem", "c.pem.txt"));
    assert_true(covers("fixtures", "a/fixtures/x/y"));
    assert_true(covers("src/*.c", "src/a.c"));
    assert_false(covers("src/*.c", "src/x/a.c")); /* '*' stays within a segment */
    assert_true(covers("a/**/b", "a/b"));
    assert_true(covers("a/**/b", "a/x/y/b"));
    assert_false(covers("a/**/b", "a/xb"));
    assert_true(covers("**/secret?.txt", "deep/er/secret1.txt"));
    assert_false(covers("**/secret?.txt", "secret12.txt"));
    assert_true(covers("**", "anything/at/all"));
    assert_true(covers("a\\*b", "a*b"));
    assert_false(covers("a\\*b", "axb"));
    assert_true(covers("# comment\n\n  docs/*.md  \r\n", "docs/x.md"));
    assert_false(covers("# docs/x.md", "docs/x.md"));
    /* a pattern that would backtrack badly elsewhere */
    char pat[600], path[4000];
    size_t i;
    for (i = 0; i + 2 < sizeof(pat); i += 2)
        memcpy(pat + i, "*a", 2);
    pat[i] = 'b', pat[i + 1] = '\0';
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    clock_t t0 = clock();
    assert_false(covers(pat, path));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5);
}

static void test_ignore_bad(void **state)
{
    (void)state;
    ig_bad("ok/**\nfingerprint:123\n", "IGN:2: a fingerprint is 16 hex digits");
    ig_bad("fingerprint:0123456789abcdeg", "IGN:1: a fingerprint");
    ig_bad("\n\na**b", "IGN:3: '**' must be a whole path segment");
    ig_bad("!keep.txt", "IGN:1: '!' (re-including) is not supported");
    ig_bad("a\\", "IGN:1: a trailing '\\' escapes nothing");
    ig_bad("a//b", "IGN:1: empty path segment");
    ig_bad("../x", "IGN:1: '.' and '..' segments");
    ig_bad("/", "IGN:1: empty pattern");
    ig_bad("a\tb\x01", "IGN:1: control character");
}

static void test_ignore_fingerprints(void **state)
{
    (void)state;
    char *tok = CAT("gh", "p_", gen(36, ALNUM));
    struct scan_report *r = scan("a.txt", CAT(tok, "\n", "gl", "pat-", gen(20, ALNUM), "\n"));
    assert_int_equal(r->n, 2);
    struct scan_ignore *ig =
        ig_parse(CAT("# the test token\nfingerprint:", r->findings[0].fingerprint, "\n"));
    struct scan_opts o = {.ignore = ig};
    char *text = CAT(tok, "\n", "gl", "pat-", gen(20, ALNUM), "\n");
    struct scan_report *r2 = scan_with("a.txt", text, strlen(text), &o);
    assert_int_equal(r2->n, 1);
    assert_string_equal(r2->findings[0].rule, "gitlab-token");
    assert_int_equal(r2->findings_ignored, 1);
    /* upper-case hex is read as the same fingerprint */
    char up[SCAN_FINGERPRINT_LEN + 1];
    for (size_t i = 0; i <= SCAN_FINGERPRINT_LEN; i++)
        up[i] = (char)(r->findings[0].fingerprint[i] >= 'a' ? r->findings[0].fingerprint[i] - 32
                                                            : r->findings[0].fingerprint[i]);
    struct scan_ignore *ig2 = ig_parse(CAT("fingerprint: ", up));
    assert_true(scan_ignore_fingerprint(ig2, r->findings[0].fingerprint));
    /* a path glob skips the file unread */
    struct scan_ignore *ig3 = ig_parse("*.txt\n");
    o.ignore = ig3;
    struct scan_report *r3 = scan_with("d/a.txt", text, strlen(text), &o);
    assert_int_equal(r3->n, 0);
    assert_int_equal(r3->files_ignored, 1);
    assert_int_equal(r3->files_scanned, 0);
    scan_ignore_free(ig);
    scan_ignore_free(ig2);
    scan_ignore_free(ig3);
    scan_report_free(r);
    scan_report_free(r2);
    scan_report_free(r3);
}

/* ---- bounds and hostile input -------------------------------------------------------------- */

static void test_bounds(void **state)
{
    (void)state;
    /* only max_file_bytes are read, and a note says so */
    struct buf b = BUF_INIT;
    for (int i = 0; i < 100; i++)
        buf_adds(&b, "just text\n");
    buf_adds(&b, CAT("gh", "p_", gen(36, ALNUM), "\n"));
    struct scan_opts o = {.max_file_bytes = 1000};
    struct scan_report *r = scan_with("big.txt", b.data, b.len, &o);
    assert_int_equal(r->n, 0);
    assert_int_equal(r->nnotes, 1);
    assert_non_null(strstr(r->notes[0], "big.txt: only the first"));
    scan_report_free(r);
    o.max_file_bytes = 0;
    r = scan_with("big.txt", b.data, b.len, &o);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->findings[0].line, 101);
    scan_report_free(r);
    buf_free(&b);
    /* findings per file are capped, the rest counted in a note */
    for (int i = 0; i < SCAN_MAX_FINDINGS_PER_FILE + 5; i++)
        buf_adds(&b, CAT("gh", "p_", gen(36, ALNUM), "\n"));
    r = scan_with("many.txt", b.data, b.len, NULL);
    assert_int_equal(r->n, SCAN_MAX_FINDINGS_PER_FILE);
    assert_int_equal(r->nnotes, 1);
    assert_non_null(strstr(r->notes[0], "many.txt: 5 more findings not listed"));
    scan_report_free(r);
    buf_free(&b);
}

/* CPU seconds to scan one line of n bytes repeating unit. */
static double line_secs(char *s, size_t n, const char *unit)
{
    size_t ul = strlen(unit);
    for (size_t i = 0; i < n; i++)
        s[i] = unit[i % ul];
    clock_t t0 = clock();
    struct scan_report *r = scan_with("hostile.txt", s, n, NULL);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    scan_report_free(r);
    return secs;
}

static void test_hostile_lines(void **state)
{
    (void)state;
    /* one line repeating a unit built to make a naive matcher rescan from
     * every candidate: four times the bytes must cost about four times the
     * time (a quadratic matcher costs sixteen) */
    const char *units[] = {"eyJ",
                           "eyJ-",
                           "eyJa.",
                           "token=",
                           "password=\"",
                           "glpat-",
                           "-glpat",
                           "AKIA",
                           "xoxb-",
                           "gh",
                           "-----BEGIN ",
                           "a:",
                           "hooks.slack.com/services/"};
    size_t n = SCAN_MAX_FILE_BYTES;
    char *s = xmalloc(n);
    for (size_t u = 0; u < sizeof(units) / sizeof(*units); u++) {
        double small = line_secs(s, n / 4, units[u]), big = line_secs(s, n, units[u]);
        if (big > 6 * small + 0.3)
            fail_msg("unit [%s]: %.2f s for 1 MiB, %.2f s for 4 MiB", units[u], small, big);
    }
    free(s);
}

/* ---- the walk ----------------------------------------------------------------------------------
 */

static void put(const char *dir, const char *rel, const char *text)
{
    char *p = path_join(dir, rel), *slash = strrchr(p, '/');
    struct sw_err err = {0};
    *slash = '\0';
    assert_int_equal(fs_mkdir_p(p, &err), 0);
    *slash = '/';
    assert_int_equal(fs_write_atomic(p, text, strlen(text), &err), 0);
    free(p);
}

static void test_tree(void **state)
{
    (void)state;
    char dir[] = "/tmp/sw-scan-XXXXXX", out[] = "/tmp/sw-scan-out-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_non_null(mkdtemp(out));
    char *tok = CAT("gh", "p_", gen(36, ALNUM));
    put(dir, "b/z.txt", CAT("1\n", tok, "\n"));
    put(dir, "a.txt", CAT(tok, "\n"));
    put(dir, ".git/config", CAT("url = https://", tok, "@github.com/x\n"));
    put(dir, "skip/me.txt", CAT(tok, "\n"));
    put(out, "outside.txt", CAT(tok, "\n"));
    char *link = path_join(dir, "b/link.txt"), *dlink = path_join(dir, "dlink");
    char *target = path_join(out, "outside.txt"), *fifo = path_join(dir, "b/fifo");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(symlink(out, dlink), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);

    struct scan_report *r = NULL;
    struct sw_err err = {0};
    assert_int_equal(scan_tree(dir, NULL, &r, &err), 0);
    /* sorted walk; links, .git and the FIFO not read */
    assert_int_equal(r->n, 3);
    assert_string_equal(r->findings[0].path, "a.txt");
    assert_string_equal(r->findings[1].path, "b/z.txt");
    assert_int_equal(r->findings[1].line, 2);
    assert_string_equal(r->findings[2].path, "skip/me.txt");
    assert_int_equal(r->files_scanned, 3);
    scan_report_free(r);

    /* the default allow-list */
    put(dir, ".slipway/scan-ignore", "# fixtures\nskip/\n");
    assert_int_equal(scan_tree(dir, NULL, &r, &err), 0);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->files_ignored, 1); /* a directory is skipped whole, unread */
    assert_int_equal(r->files_scanned, 3); /* a.txt, b/z.txt and the allow-list */
    scan_report_free(r);

    /* one given instead, and a bad one */
    char *ign = path_join(out, "ign");
    put(out, "ign", "a.txt\nb\n");
    struct scan_opts o = {.ignore_file = ign};
    assert_int_equal(scan_tree(dir, &o, &r, &err), 0);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->findings[0].path, "skip/me.txt");
    scan_report_free(r);
    put(dir, ".slipway/scan-ignore", "ok\nfingerprint:zz\n");
    assert_int_equal(scan_tree(dir, NULL, &r, &err), SCAN_EIGNORE);
    assert_non_null(strstr(err.msg, "/.slipway/scan-ignore:2: a fingerprint"));
    scan_report_free(r);
    /* the tree's own allow-list is someone else's file: no link out, no FIFO, bounded */
    char *ignp = path_join(dir, ".slipway/scan-ignore"), *ign_link = path_join(out, "ign");
    assert_int_equal(unlink(ignp), 0);
    assert_int_equal(symlink(ign_link, ignp), 0);
    assert_int_equal(scan_tree(dir, NULL, &r, &err), SCAN_EIGNORE);
    assert_non_null(strstr(err.msg, ".slipway/scan-ignore: a symbolic link, not followed"));
    scan_report_free(r);
    assert_int_equal(unlink(ignp), 0);
    assert_int_equal(mkfifo(ignp, 0600), 0);
    assert_int_equal(scan_tree(dir, NULL, &r, &err), SCAN_EIGNORE);
    assert_non_null(strstr(err.msg, ".slipway/scan-ignore: not a regular file"));
    scan_report_free(r);
    assert_int_equal(unlink(ignp), 0);
    struct buf huge = BUF_INIT;
    while (huge.len <= (1 << 20))
        buf_adds(&huge, "# a comment line that goes on and on\n");
    assert_int_equal(fs_write_atomic(ignp, huge.data, huge.len, &err), 0);
    buf_free(&huge);
    assert_int_equal(scan_tree(dir, NULL, &r, &err), SCAN_EIGNORE);
    assert_non_null(strstr(err.msg, ".slipway/scan-ignore: larger than 1 MiB"));
    scan_report_free(r);
    put(dir, ".slipway/scan-ignore", "ok\nfingerprint:zz\n");
    free(ign_link);
    o.ignore_file = "/nonexistent/ignore";
    assert_int_equal(scan_tree(dir, &o, &r, &err), SW_ENOTFOUND);
    scan_report_free(r);

    /* a file alone, named as given */
    char *file = path_join(dir, "a.txt");
    assert_int_equal(scan_tree(file, NULL, &r, &err), 0);
    assert_int_equal(r->n, 1);
    assert_string_equal(r->findings[0].path, file);
    scan_report_free(r);
    assert_int_equal(scan_tree("/nonexistent/x", NULL, &r, &err), SW_ENOTFOUND);
    scan_report_free(r);
    assert_int_equal(scan_tree(fifo, NULL, &r, &err), SW_EINVAL);
    scan_report_free(r);

    /* an unreadable file fails the scan (unless running as root, who reads it anyway) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(file, 0), 0);
        o.ignore_file = NULL;
        assert_int_equal(unlink(ignp), 0);
        assert_int_equal(scan_tree(dir, NULL, &r, &err), SW_EACCES);
        scan_report_free(r);
    }
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, out);
    assert_int_equal(system(cmd), 0);
    free(link), free(dlink), free(target), free(fifo), free(ign), free(file), free(ignp);
}

int main(void)
{
#define T(fn) cmocka_unit_test_teardown(fn, teardown)
    const struct CMUnitTest tests[] = {
        T(test_private_key),   T(test_aws),           T(test_github_gitlab),
        T(test_slack),         T(test_jwt),           T(test_assignment),
        T(test_files_by_name), T(test_binary),        T(test_redaction_fingerprint),
        T(test_ignore_globs),  T(test_ignore_bad),    T(test_ignore_fingerprints),
        T(test_bounds),        T(test_hostile_lines), T(test_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

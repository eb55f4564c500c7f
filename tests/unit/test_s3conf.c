/* Unit tests for the s3 backend's configuration (src/store/s3conf.c): the URL,
 * the precedence of the URL, the environment and the AWS shared files for the
 * endpoint, the region and the credentials, path style against virtual
 * hosting, the INI dialect of the shared files, and the refusals, none of
 * whose messages may show a secret. The environment is a table given to the
 * parser as its lookup function; the files live in a mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/s3conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Secrets in the style of AWS's documentation examples; every error message
 * is checked not to hold any of them, nor a telling part of them. */
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SECRET2 "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
#define TOKEN "FwoGZXIvYXdzEXAMPLETOKENd0n0tpr1nt"
#define AK "AKIAIOSFODNN7EXAMPLE"
#define AK2 "AKIAI44QH8DHBEXAMPLE"
static const char *const secret_parts[] = {SECRET,          SECRET2,      TOKEN,
                                           "wJalrXUtnFEMI", "K7MDENG",    "je7MtGb",
                                           "FwoGZX",        "EXAMPLEKEY", "d0n0tpr1nt"};

/* ---- the fake environment and the temporary directory --------------------------------- */

#define ENV_MAX 32
static const char *env_names[ENV_MAX];
static char *env_values[ENV_MAX];
static size_t env_n;
static char tmpdir[64];

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; i < env_n; i++)
        if (!strcmp(env_names[i], name))
            return env_values[i];
    return NULL;
}

static void env_set(const char *name, const char *value)
{
    for (size_t i = 0; i < env_n; i++)
        if (!strcmp(env_names[i], name)) {
            free(env_values[i]);
            env_values[i] = xstrdup(value);
            return;
        }
    assert_true(env_n < ENV_MAX);
    env_names[env_n] = name;
    env_values[env_n++] = xstrdup(value);
}

static void env_unset(const char *name)
{
    for (size_t i = 0; i < env_n; i++)
        if (!strcmp(env_names[i], name)) {
            free(env_values[i]);
            env_names[i] = env_names[env_n - 1];
            env_values[i] = env_values[env_n - 1];
            env_n--;
            return;
        }
}

static void env_clear(void)
{
    for (size_t i = 0; i < env_n; i++)
        free(env_values[i]);
    env_n = 0;
}

static void env_creds(void)
{
    env_set("AWS_ACCESS_KEY_ID", AK);
    env_set("AWS_SECRET_ACCESS_KEY", SECRET);
    env_set("AWS_SESSION_TOKEN", TOKEN);
}

/* Writes text to tmpdir/name (making tmpdir/.aws when the name is under it);
 * returns the path (caller frees). */
static char *put(const char *name, const char *text)
{
    char *aws = xasprintf("%s/.aws", tmpdir);
    mkdir(aws, 0700);
    free(aws);
    char *path = xasprintf("%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sw-s3conf-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    env_clear();
    /* No file unless a test writes one: $HOME/.aws does not exist yet. */
    env_set("HOME", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    struct sw_err err = {0};
    env_clear();
    return fs_remove_tree(tmpdir, &err);
}

/* ---- helpers ------------------------------------------------------------------------- */

static void no_secret(const char *s)
{
    for (size_t i = 0; i < sizeof(secret_parts) / sizeof(*secret_parts); i++)
        if (strstr(s, secret_parts[i]))
            fail_msg("'%s' shows a secret (%s)", s, secret_parts[i]);
}

/* Parses url, which must succeed, into *c. */
static void ok(const char *url, struct s3conf *c)
{
    struct sw_err err = {0};
    int rc = s3conf_parse(url, fake_getenv, c, &err);
    if (rc)
        fail_msg("%s: %d %s", url, rc, err.msg);
}

/* Parses url, which must fail with SW_EINVAL and a message holding want (and
 * each further non-NULL want2), without a secret; the struct stays zeroed. */
static void bad2(const char *url, const char *want, const char *want2)
{
    struct sw_err err = {0};
    struct s3conf c;
    memset(&c, 0xa5, sizeof(c));
    int rc = s3conf_parse(url, fake_getenv, &c, &err);
    if (rc != SW_EINVAL)
        fail_msg("%s: expected SW_EINVAL, got %d (%s)", url, rc, err.msg);
    if (!strstr(err.msg, want) || (want2 && !strstr(err.msg, want2)))
        fail_msg("%s: message '%s' lacks '%s'%s%s", url, err.msg, want, want2 ? " or " : "",
                 want2 ? want2 : "");
    no_secret(err.msg);
    assert_null(c.bucket);
    assert_null(c.secret_key);
}

static void bad(const char *url, const char *want)
{
    bad2(url, want, NULL);
}

/* ---- the URL ---------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct s3conf c;
    env_creds();
    ok("s3://my-bucket", &c);
    assert_string_equal(c.bucket, "my-bucket");
    assert_string_equal(c.prefix, "");
    assert_string_equal(c.region, "us-east-1");
    assert_string_equal(c.endpoint, "https://s3.us-east-1.amazonaws.com");
    assert_string_equal(c.host, "my-bucket.s3.us-east-1.amazonaws.com");
    assert_string_equal(c.base_url, "https://my-bucket.s3.us-east-1.amazonaws.com");
    assert_int_equal(c.path_style, 0);
    assert_string_equal(c.sse, "AES256");
    assert_null(c.kms_key_id);
    assert_string_equal(c.access_key, AK);
    assert_string_equal(c.secret_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    assert_string_equal(c.cred_source, "environment");
    s3conf_free(&c);
    assert_null(c.secret_key);
    s3conf_free(&c); /* a zeroed struct is fine, and so is NULL */
    s3conf_free(NULL);

    env_unset("AWS_SESSION_TOKEN");
    ok("s3://my-bucket", &c);
    assert_null(c.session_token);
    s3conf_free(&c);
}

static void test_prefix(void **state)
{
    static const struct {
        const char *url, *prefix;
    } cases[] = {
        {"s3://bkt", ""},
        {"s3://bkt/", ""},
        {"s3://bkt/site", "site/"},
        {"s3://bkt/site/prod", "site/prod/"},
        {"s3://bkt/site/prod/", "site/prod/"},
        {"s3://bkt/site/prod?region=eu-west-1", "site/prod/"},
        {"s3://bkt/.hidden/x~y_z-1", ".hidden/x~y_z-1/"},
    };
    env_creds();
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct s3conf c;
        ok(cases[i].url, &c);
        assert_string_equal(c.bucket, "bkt");
        assert_string_equal(c.prefix, cases[i].prefix);
        s3conf_free(&c);
    }
}

static void test_bad_bucket(void **state)
{
    char long_name[80];
    env_creds();
    bad("s3://", "bucket '' must be 3 to 63");
    bad("s3://ab", "bucket 'ab' must be 3 to 63");
    snprintf(long_name, sizeof(long_name), "s3://%064d", 0);
    bad(long_name, "must be 3 to 63");
    bad("s3://My-Bucket", "bucket 'My-Bucket' may hold only lowercase");
    bad("s3://my_bucket", "may hold only lowercase");
    bad("s3://-bucket", "must start and end with a letter or digit");
    bad("s3://bucket-", "must start and end with a letter or digit");
    bad("s3://bucket.", "must start and end");
    bad("s3://a..b", "may not hold \"..\"");
    bad("s3://a.-b", "may not have '-' next to '.'");
    bad("s3://192.168.5.4", "may not be an IP address");
    bad("s3://bkt%2Fx", "may hold only lowercase");
    bad("s3://bkt\x1b[31m", "bucket 'bkt\\x1b[31m'");
    bad("http://bkt", "expected s3://BUCKET");
    bad("S3://bkt", "expected s3://BUCKET");
    /* A key and secret in the URL: refused without showing them. */
    bad("s3://" AK ":" SECRET "@bkt", "credentials in the URL are not supported");
    bad("s3://" SECRET "@bkt", "credentials in the URL are not supported");
    bad("s3://bkt/team@site", "credentials in the URL are not supported");
    /* A bucket 3 and 63 long is fine, and so is a number that is not an address. */
    struct s3conf c;
    ok("s3://abc", &c);
    s3conf_free(&c);
    snprintf(long_name, sizeof(long_name), "s3://%063d", 0);
    ok(long_name, &c);
    s3conf_free(&c);
    ok("s3://192.168.5", &c);
    s3conf_free(&c);
}

static void test_bad_prefix(void **state)
{
    env_creds();
    bad("s3://bkt/a//b", "prefix 'a//b' has an empty component");
    bad("s3://bkt//", "has an empty component");
    bad("s3://bkt//a", "has an empty component");
    bad("s3://bkt/../x", "prefix '../x' has a \".\" or \"..\" component");
    bad("s3://bkt/a/./b", "has a \".\" or \"..\" component");
    bad("s3://bkt/a/..", "has a \".\" or \"..\" component");
    bad("s3://bkt/.", "has a \".\" or \"..\" component");
    bad("s3://bkt/a\\b", "may hold only printable ASCII");
    bad("s3://bkt/a b", "may hold only printable ASCII");
    bad("s3://bkt/a\tb", "prefix 'a\\x09b'");
    bad("s3://bkt/caf\xc3\xa9", "may hold only printable ASCII");
    char *long_prefix = xmalloc(S3CONF_PREFIX_MAX + 32);
    memcpy(long_prefix, "s3://bkt/", 9);
    memset(long_prefix + 9, 'p', S3CONF_PREFIX_MAX + 1);
    long_prefix[9 + S3CONF_PREFIX_MAX + 1] = '\0';
    bad(long_prefix, "is too long");
    free(long_prefix);
}

static void test_bad_query(void **state)
{
    env_creds();
    bad("s3://bkt?foo=1", "unknown parameter 'foo'");
    bad("s3://bkt?Region=x", "unknown parameter 'Region'");
    bad("s3://bkt?region=eu-west-1&region=eu-west-2", "parameter region given twice");
    bad("s3://bkt?path_style=true&path_style=true", "parameter path_style given twice");
    bad("s3://bkt?endpoint=http://a&endpoint=http://b", "parameter endpoint given twice");
    bad("s3://bkt?sse=aws:kms&sse=aws:kms", "parameter sse given twice");
    bad("s3://bkt?path_style=maybe", "path_style='maybe': expected true or false");
    bad("s3://bkt?path_style=TRUE", "path_style='TRUE'");
    bad("s3://bkt?sse=bogus", "sse='bogus': expected AES256 or aws:kms");
    bad("s3://bkt?sse=aes256", "sse='aes256'");
    bad("s3://bkt?kms_key_id=alias/k", "kms_key_id needs sse=aws:kms");
    bad("s3://bkt?sse=AES256&kms_key_id=alias/k", "kms_key_id needs sse=aws:kms");
    bad("s3://bkt?region=", "parameter region has no value");
    bad("s3://bkt?endpoint", "parameter endpoint has no value");
    bad("s3://bkt?region=eu%zz", "parameter region: '%' not followed by two hex digits");
    bad("s3://bkt?region=eu%2", "'%' not followed");
    bad("s3://bkt?region=eu%20west", "parameter region: a space, control or non-ASCII byte");
    bad("s3://bkt?region=eu%0d%0aX-Injected:1", "a space, control or non-ASCII byte");
    bad("s3://bkt?region=eu.west", "region 'eu.west' (from the URL): expected letters");
    /* Empty pairs are nothing; '+' is a plus, not a space. */
    struct s3conf c;
    ok("s3://bkt?&region=eu-west-1&&", &c);
    assert_string_equal(c.region, "eu-west-1");
    s3conf_free(&c);
    ok("s3://bkt?", &c);
    s3conf_free(&c);
}

static void test_bad_endpoint(void **state)
{
    env_creds();
    bad("s3://bkt?endpoint=ftp://h", "endpoint 'ftp://h' (from the URL): expected http://");
    bad("s3://bkt?endpoint=h:9000", "expected http:// or https://");
    bad("s3://bkt?endpoint=http://h/path", "without a path or query");
    bad("s3://bkt?endpoint=http://h//", "without a path");
    bad("s3://bkt?endpoint=http://h%3Fx", "without a path or query");
    bad("s3://bkt?endpoint=http://h:0", "bad port");
    bad("s3://bkt?endpoint=http://h:65536", "bad port");
    bad("s3://bkt?endpoint=http://h:", "bad port");
    bad("s3://bkt?endpoint=http://h:9x", "bad port");
    bad("s3://bkt?endpoint=http://h_x", "bad host name");
    bad("s3://bkt?endpoint=http://", "bad host name");
    bad("s3://bkt?endpoint=http://.h", "bad host name");
    bad("s3://bkt?endpoint=http://a..b", "bad host name");
    bad("s3://bkt?endpoint=http://[::1", "bad IPv6 address");
    bad("s3://bkt?endpoint=http://[]:1", "bad IPv6 address");
    bad("s3://bkt?endpoint=http://[::g]", "bad IPv6 address");
    bad("s3://bkt?endpoint=http://[::1]x", "bad host name");
    /* User information may be a password: refused, not shown. */
    bad("s3://bkt?endpoint=http://" AK ":" SECRET "@h", "user information");
    bad("s3://bkt?endpoint=http://" SECRET "@h", "user information");
    /* Virtual hosting needs a name to put the bucket in front of. */
    bad("s3://bkt?endpoint=http://127.0.0.1:9000&path_style=false", "is an IP address");
    bad("s3://bkt?endpoint=http://[::1]:9000&path_style=false", "is an IP address");
    char *long_ep = xmalloc(1200);
    snprintf(long_ep, 1200, "s3://bkt?endpoint=http://%01100d", 0);
    bad(long_ep, "longer than");
    free(long_ep);
}

static void test_kms(void **state)
{
    struct s3conf c;
    env_creds();
    ok("s3://"
       "bkt?sse=aws:kms&kms_key_id=arn%3Aaws%3Akms%3Aus-east-1%3A111122223333%3Akey%2F1234abcd",
       &c);
    assert_string_equal(c.sse, "aws:kms");
    assert_string_equal(c.kms_key_id, "arn:aws:kms:us-east-1:111122223333:key/1234abcd");
    s3conf_free(&c);
    /* The key id may come before sse; the raw spelling is taken too. */
    ok("s3://bkt?kms_key_id=alias/slipway&sse=aws%3Akms", &c);
    assert_string_equal(c.kms_key_id, "alias/slipway");
    s3conf_free(&c);
    ok("s3://bkt?sse=aws:kms", &c);
    assert_string_equal(c.sse, "aws:kms");
    assert_null(c.kms_key_id);
    s3conf_free(&c);
    ok("s3://bkt?sse=AES256", &c);
    assert_string_equal(c.sse, "AES256");
    s3conf_free(&c);
}

/* The CAs to trust over https: AWS_CA_BUNDLE, else the profile's ca_bundle,
 * as the AWS CLI takes them; a path that is no file is refused, naming where
 * it came from. */
static void test_ca_bundle(void **state)
{
    struct s3conf c;
    env_creds();
    ok("s3://bkt", &c);
    assert_null(c.ca_bundle);
    s3conf_free(&c);
    char *pem = put("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    char *conf = put(".aws/config", "[default]\nca_bundle = /nonexistent/ca.pem\n");
    bad("s3://bkt", "ca_bundle '/nonexistent/ca.pem' (from");
    bad("s3://bkt", "/.aws/config:2): not a file");
    char *text = xasprintf("[default]\nca_bundle = %s\n", pem);
    free(put(".aws/config", text));
    ok("s3://bkt", &c);
    assert_string_equal(c.ca_bundle, pem);
    s3conf_free(&c);
    /* The environment comes first. */
    env_set("AWS_CA_BUNDLE", tmpdir);
    bad("s3://bkt", "(from AWS_CA_BUNDLE): not a file");
    env_set("AWS_CA_BUNDLE", pem);
    free(put(".aws/config", "[default]\nca_bundle = /nonexistent/ca.pem\n"));
    ok("s3://bkt", &c);
    assert_string_equal(c.ca_bundle, pem);
    s3conf_free(&c);
    free(text);
    free(conf);
    free(pem);
}

/* ---- path style and virtual hosting --------------------------------------------------------- */

static void test_addressing(void **state)
{
    static const struct {
        const char *url, *endpoint, *host, *base_url;
        int path_style;
    } cases[] = {
        /* An endpoint given: path style unless said otherwise (MinIO, moto). */
        {"s3://bkt?endpoint=http://127.0.0.1:9000", "http://127.0.0.1:9000", "127.0.0.1:9000",
         "http://127.0.0.1:9000/bkt", 1},
        {"s3://bkt?endpoint=http://127.0.0.1:9000/", "http://127.0.0.1:9000", "127.0.0.1:9000",
         "http://127.0.0.1:9000/bkt", 1},
        {"s3://bkt?endpoint=http%3A%2F%2F127.0.0.1%3A9000", "http://127.0.0.1:9000",
         "127.0.0.1:9000", "http://127.0.0.1:9000/bkt", 1},
        /* The scheme's own port is left out; any other is kept. */
        {"s3://bkt?endpoint=http://127.0.0.1:80", "http://127.0.0.1", "127.0.0.1",
         "http://127.0.0.1/bkt", 1},
        {"s3://bkt?endpoint=http://minio:443", "http://minio:443", "minio:443",
         "http://minio:443/bkt", 1},
        {"s3://bkt?endpoint=https://minio.example.com", "https://minio.example.com",
         "minio.example.com", "https://minio.example.com/bkt", 1},
        {"s3://bkt?endpoint=HTTPS://MinIO.Example.COM:443/", "https://minio.example.com",
         "minio.example.com", "https://minio.example.com/bkt", 1},
        {"s3://bkt?endpoint=http://[::1]:9000", "http://[::1]:9000", "[::1]:9000",
         "http://[::1]:9000/bkt", 1},
        /* Virtual hosting asked for on a given endpoint. */
        {"s3://bkt?endpoint=https://minio.example.com:9443&path_style=false",
         "https://minio.example.com:9443", "bkt.minio.example.com:9443",
         "https://bkt.minio.example.com:9443", 0},
        {"s3://bkt?endpoint=https://s3.example.com:443&path_style=false", "https://s3.example.com",
         "bkt.s3.example.com", "https://bkt.s3.example.com", 0},
        {"s3://bkt?endpoint=http://localhost:9000&path_style=false", "http://localhost:9000",
         "bkt.localhost:9000", "http://bkt.localhost:9000", 0},
        {"s3://bkt?endpoint=http://s3.local:80&path_style=false", "http://s3.local", "bkt.s3.local",
         "http://bkt.s3.local", 0},
        /* AWS: virtual-hosted unless said otherwise. */
        {"s3://bkt?region=eu-west-1", "https://s3.eu-west-1.amazonaws.com",
         "bkt.s3.eu-west-1.amazonaws.com", "https://bkt.s3.eu-west-1.amazonaws.com", 0},
        {"s3://bkt?region=eu-west-1&path_style=false", "https://s3.eu-west-1.amazonaws.com",
         "bkt.s3.eu-west-1.amazonaws.com", "https://bkt.s3.eu-west-1.amazonaws.com", 0},
        {"s3://bkt?region=eu-west-1&path_style=true", "https://s3.eu-west-1.amazonaws.com",
         "s3.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com/bkt", 1},
        {"s3://bkt?endpoint=https://s3.eu-west-1.amazonaws.com&path_style=false",
         "https://s3.eu-west-1.amazonaws.com", "bkt.s3.eu-west-1.amazonaws.com",
         "https://bkt.s3.eu-west-1.amazonaws.com", 0},
        /* A dotted bucket under TLS goes in the path, whatever was asked. */
        {"s3://my.bkt?region=eu-west-1", "https://s3.eu-west-1.amazonaws.com",
         "s3.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com/my.bkt", 1},
        {"s3://my.bkt?endpoint=https://s3.example.com&path_style=false", "https://s3.example.com",
         "s3.example.com", "https://s3.example.com/my.bkt", 1},
        /* ... but not over plain HTTP, where no certificate must match. */
        {"s3://my.bkt?endpoint=http://s3.example.com&path_style=false", "http://s3.example.com",
         "my.bkt.s3.example.com", "http://my.bkt.s3.example.com", 0},
    };
    env_creds();
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct s3conf c;
        ok(cases[i].url, &c);
        if (strcmp(c.endpoint, cases[i].endpoint) || strcmp(c.host, cases[i].host) ||
            strcmp(c.base_url, cases[i].base_url) || c.path_style != cases[i].path_style)
            fail_msg("%s: got endpoint %s host %s base_url %s path_style %d", cases[i].url,
                     c.endpoint, c.host, c.base_url, c.path_style);
        s3conf_free(&c);
    }
}

/* ---- precedence --------------------------------------------------------------------------- */

static void expect_endpoint(const char *url, const char *endpoint, int path_style)
{
    struct s3conf c;
    ok(url, &c);
    if (strcmp(c.endpoint, endpoint) || c.path_style != path_style)
        fail_msg("%s: endpoint %s path_style %d, expected %s %d", url, c.endpoint, c.path_style,
                 endpoint, path_style);
    s3conf_free(&c);
}

static void expect_region(const char *url, const char *region)
{
    struct s3conf c;
    ok(url, &c);
    if (strcmp(c.region, region))
        fail_msg("%s: region %s, expected %s", url, c.region, region);
    s3conf_free(&c);
}

static void test_endpoint_precedence(void **state)
{
    env_creds();
    free(put(".aws/config", "[default]\nendpoint_url = http://from-config:1\n"));
    env_set("AWS_ENDPOINT_URL", "http://aws-endpoint-url:2");
    env_set("AWS_ENDPOINT_URL_S3", "http://aws-endpoint-url-s3:3");
    env_set("SLIPWAY_S3_ENDPOINT", "http://slipway:4");
    expect_endpoint("s3://bkt?endpoint=http://url:5", "http://url:5", 1);
    expect_endpoint("s3://bkt", "http://slipway:4", 1);
    env_unset("SLIPWAY_S3_ENDPOINT");
    expect_endpoint("s3://bkt", "http://aws-endpoint-url-s3:3", 1);
    env_set("AWS_ENDPOINT_URL_S3", ""); /* empty is unset */
    expect_endpoint("s3://bkt", "http://aws-endpoint-url:2", 1);
    env_unset("AWS_ENDPOINT_URL");
    expect_endpoint("s3://bkt", "http://from-config:1", 1);
    expect_endpoint("s3://bkt?path_style=false", "http://from-config:1", 0);
    free(put(".aws/config", "[default]\nregion = ap-south-1\n"));
    expect_endpoint("s3://bkt", "https://s3.ap-south-1.amazonaws.com", 0);

    /* Each source is named when its value is bad. */
    env_set("SLIPWAY_S3_ENDPOINT", "ftp://x");
    bad("s3://bkt", "(from SLIPWAY_S3_ENDPOINT)");
    env_unset("SLIPWAY_S3_ENDPOINT");
    env_set("AWS_ENDPOINT_URL_S3", "http://h/p");
    bad("s3://bkt", "(from AWS_ENDPOINT_URL_S3)");
    env_unset("AWS_ENDPOINT_URL_S3");
    env_set("AWS_ENDPOINT_URL", "http://h:99999");
    bad("s3://bkt", "(from AWS_ENDPOINT_URL)");
    env_unset("AWS_ENDPOINT_URL");
    char *conf = put(".aws/config", "# mine\n[default]\nregion = eu-west-1\nendpoint_url = nope\n");
    char *want = xasprintf("endpoint 'nope' (from %s:4)", conf);
    bad("s3://bkt", want);
    free(want);
    free(conf);
    /* A region that cannot be in an AWS host name needs an endpoint. */
    free(put(".aws/config", "[default]\n"));
    bad("s3://bkt?region=My_Region", "cannot be part of an AWS host name");
    expect_endpoint("s3://bkt?region=My_Region&endpoint=http://ceph:7480", "http://ceph:7480", 1);
}

static void test_region_precedence(void **state)
{
    env_creds();
    char *conf = put(".aws/config", "[default]\nregion = from-config\n");
    env_set("AWS_DEFAULT_REGION", "aws-default-region");
    env_set("AWS_REGION", "aws-region");
    expect_region("s3://bkt?region=from-url", "from-url");
    expect_region("s3://bkt", "aws-region");
    env_set("AWS_REGION", "");
    expect_region("s3://bkt", "aws-default-region");
    env_unset("AWS_DEFAULT_REGION");
    expect_region("s3://bkt", "from-config");
    unlink(conf);
    expect_region("s3://bkt", "us-east-1");

    /* The profile's own section, not another's. */
    env_set("AWS_PROFILE", "dev");
    free(put(".aws/config", "[default]\nregion = eu-west-1\n[profile dev]\nregion = eu-north-1\n"));
    expect_region("s3://bkt", "eu-north-1");
    env_unset("AWS_PROFILE");
    expect_region("s3://bkt", "eu-west-1");

    env_set("AWS_REGION", "eu west");
    bad("s3://bkt", "region 'eu west' (from AWS_REGION)");
    env_unset("AWS_REGION");
    env_set("AWS_DEFAULT_REGION", "eu/west");
    bad("s3://bkt", "region 'eu/west' (from AWS_DEFAULT_REGION)");
    env_unset("AWS_DEFAULT_REGION");
    free(put(".aws/config", "[default]\n\nregion = us-east-1 # the usual\n"));
    char *want = xasprintf("(from %s:3)", conf);
    bad2("s3://bkt", "region 'us-east-1 # the usual'", want);
    free(want);
    free(conf);
}

/* ---- credentials ------------------------------------------------------------------------- */

static void expect_creds(const char *ak, const char *sk, const char *token, const char *source)
{
    struct s3conf c;
    ok("s3://bkt", &c);
    assert_string_equal(c.access_key, ak);
    assert_string_equal(c.secret_key, sk);
    if (token)
        assert_string_equal(c.session_token, token);
    else
        assert_null(c.session_token);
    assert_string_equal(c.cred_source, source);
    no_secret(c.cred_source);
    char *d = s3conf_describe(&c);
    no_secret(d);
    assert_null(strstr(d, ak));
    free(d);
    s3conf_free(&c);
}

static void test_credentials_files(void **state)
{
    char *cred = put(".aws/credentials", "[default]\n"
                                         "aws_access_key_id = " AK "\n"
                                         "aws_secret_access_key = " SECRET "\n"
                                         "\n"
                                         "[dev]\n"
                                         "aws_access_key_id=" AK2 "\n"
                                         "aws_secret_access_key=" SECRET2 "\n"
                                         "aws_session_token=" TOKEN "\n");
    char *conf = put(".aws/config", "[default]\n"
                                    "region = eu-west-1\n"
                                    "[profile dev]\n"
                                    "region = eu-central-1\n"
                                    "[profile ops]\n"
                                    "aws_access_key_id = AKIAOPS\n"
                                    "aws_secret_access_key = " SECRET "\n");
    char *src_default = xasprintf("%s [profile default]", cred);
    char *src_dev = xasprintf("%s [profile dev]", cred);
    char *src_ops = xasprintf("%s [profile ops]", conf);

    /* The credentials file, [default] or the profile's section. */
    expect_creds(AK, SECRET, NULL, src_default);
    env_set("AWS_PROFILE", "dev");
    expect_creds(AK2, SECRET2, TOKEN, src_dev);
    expect_region("s3://bkt", "eu-central-1");
    /* The config file's [profile ops], the credentials file having no [ops]. */
    env_set("AWS_PROFILE", "ops");
    expect_creds("AKIAOPS", SECRET, NULL, src_ops);
    /* The environment first: its token goes only with its keys. */
    env_set("AWS_PROFILE", "dev");
    env_set("AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set("AWS_SECRET_ACCESS_KEY", "envsecret");
    expect_creds("AKIAENV", "envsecret", NULL, "environment");
    env_set("AWS_SESSION_TOKEN", "envtoken");
    expect_creds("AKIAENV", "envsecret", "envtoken", "environment");
    env_unset("AWS_ACCESS_KEY_ID");
    env_unset("AWS_SECRET_ACCESS_KEY");
    expect_creds(AK2, SECRET2, TOKEN, src_dev); /* a token alone is not credentials */
    env_unset("AWS_SESSION_TOKEN");

    /* The credentials file before the config file, for the same profile. */
    free(put(".aws/config", "[profile dev]\naws_access_key_id = AKIACONF\n"
                            "aws_secret_access_key = confsecret\n"));
    expect_creds(AK2, SECRET2, TOKEN, src_dev);
    /* A section without keys there: the config file's keys. */
    free(put(".aws/credentials", "[dev]\n# moved to the config file\n"));
    char *src_conf_dev = xasprintf("%s [profile dev]", conf);
    expect_creds("AKIACONF", "confsecret", NULL, src_conf_dev);
    free(src_conf_dev);

    /* [default] in the config file for the default profile ([profile default] too). */
    env_unset("AWS_PROFILE");
    unlink(cred);
    free(put(".aws/config", "[default]\naws_access_key_id = AKIACONF\n"
                            "aws_secret_access_key = confsecret\n"
                            "aws_session_token = conftoken\n"));
    char *src_conf_default = xasprintf("%s [profile default]", conf);
    expect_creds("AKIACONF", "confsecret", "conftoken", src_conf_default);
    free(put(".aws/config", "[profile default]\naws_access_key_id = AKIACONF\n"
                            "aws_secret_access_key = confsecret\n"));
    expect_creds("AKIACONF", "confsecret", NULL, src_conf_default);
    free(src_conf_default);

    free(src_default);
    free(src_dev);
    free(src_ops);
    free(cred);
    free(conf);
}

static void test_file_locations(void **state)
{
    /* $AWS_SHARED_CREDENTIALS_FILE and $AWS_CONFIG_FILE instead of ~/.aws, "~/" expanded. */
    free(put(".aws/credentials", "[default]\naws_access_key_id = AKIAHOME\n"
                                 "aws_secret_access_key = homesecret\n"));
    free(put(".aws/config", "[default]\nregion = eu-west-1\n"));
    char *cred = put("creds", "[default]\naws_access_key_id = AKIAVAR\n"
                              "aws_secret_access_key = varsecret\n");
    char *conf = put("conf", "[default]\nregion = sa-east-1\n");
    env_set("AWS_SHARED_CREDENTIALS_FILE", "~/creds");
    env_set("AWS_CONFIG_FILE", conf);
    char *src = xasprintf("%s [profile default]", cred);
    expect_creds("AKIAVAR", "varsecret", NULL, src);
    expect_region("s3://bkt", "sa-east-1");
    free(src);
    /* A variable naming a missing file: no file, not ~/.aws. */
    env_set("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds");
    env_set("AWS_CONFIG_FILE", "/nonexistent/conf");
    bad("s3://bkt", "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or ");
    env_creds();
    expect_region("s3://bkt", "us-east-1");
    /* No HOME and no variable: no files at all. */
    env_clear();
    bad2("s3://bkt", "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or ",
         "HOME and AWS_SHARED_CREDENTIALS_FILE are not set");
    /* A directory where a file should be. */
    env_set("AWS_SHARED_CREDENTIALS_FILE", tmpdir);
    char *want = xasprintf("%s: not a regular file", tmpdir);
    bad("s3://bkt", want);
    free(want);
    free(cred);
    free(conf);
}

static void test_credentials_errors(void **state)
{
    char *cred = put(".aws/credentials", "[default]\naws_access_key_id = " AK "\n"
                                         "aws_secret_access_key = " SECRET "\n");
    char *conf = put(".aws/config", "[default]\nregion = eu-west-1\n");

    /* Half the keys in the environment. */
    env_set("AWS_ACCESS_KEY_ID", AK);
    bad("s3://bkt", "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    env_unset("AWS_ACCESS_KEY_ID");
    env_set("AWS_SECRET_ACCESS_KEY", SECRET);
    bad("s3://bkt", "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    env_set("AWS_ACCESS_KEY_ID", "");
    bad("s3://bkt", "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    /* Values that cannot be signed. */
    env_set("AWS_ACCESS_KEY_ID", "AKIA/X");
    bad("s3://bkt", "AWS_ACCESS_KEY_ID: expected");
    env_set("AWS_ACCESS_KEY_ID", AK);
    env_set("AWS_SECRET_ACCESS_KEY", SECRET " x");
    bad("s3://bkt", "AWS_SECRET_ACCESS_KEY: expected");
    env_set("AWS_SECRET_ACCESS_KEY", SECRET);
    env_set("AWS_SESSION_TOKEN", TOKEN "\n");
    bad("s3://bkt", "AWS_SESSION_TOKEN: expected");
    env_unset("AWS_SESSION_TOKEN");

    /* A named profile in neither file: both files named. */
    env_set("AWS_PROFILE", "nope");
    bad2("s3://bkt", "profile 'nope' (from AWS_PROFILE) is in neither", cred);
    bad2("s3://bkt", "[nope]", conf);
    bad("s3://bkt", "[profile nope]");
    unlink(conf);
    bad2("s3://bkt", "[profile nope], missing", conf);
    env_set("AWS_PROFILE", "a b");
    bad("s3://bkt", "AWS_PROFILE 'a b': expected");
    env_unset("AWS_PROFILE");
    env_unset("AWS_ACCESS_KEY_ID");
    env_unset("AWS_SECRET_ACCESS_KEY");

    /* Half the keys in a file, or a bad value: FILE:LINE and the key, never the value. */
    free(put(".aws/credentials", "[default]\n\naws_secret_access_key = " SECRET "\n"));
    char *want =
        xasprintf("%s:3: [default] has aws_secret_access_key but no aws_access_key_id", cred);
    bad("s3://bkt", want);
    free(want);
    free(put(".aws/credentials", "[default]\naws_access_key_id = " AK "\n"));
    want = xasprintf("%s:2: [default] has aws_access_key_id but no aws_secret_access_key", cred);
    bad("s3://bkt", want);
    free(want);
    free(put(".aws/credentials", "[default]\naws_access_key_id = " AK "\n"
                                 "aws_secret_access_key = " SECRET " " SECRET2 "\n"));
    want = xasprintf("%s:3: aws_secret_access_key: expected", cred);
    bad("s3://bkt", want);
    free(want);
    free(put(".aws/credentials", "[default]\naws_access_key_id = " AK "\n"
                                 "aws_secret_access_key = " SECRET "\n"
                                 "aws_session_token = " TOKEN " " TOKEN "\n"));
    want = xasprintf("%s:4: aws_session_token: expected", cred);
    bad("s3://bkt", want);
    free(want);

    /* Nothing anywhere. */
    unlink(cred);
    bad2("s3://bkt", "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or ",
         "(missing)");
    /* A profile that gets its keys some other way. */
    env_set("AWS_PROFILE", "sso");
    free(put(".aws/config", "[profile sso]\nregion = eu-west-1\nrole_arn = arn:aws:iam::1:role/x\n"
                            "source_profile = default\n"));
    want = xasprintf("%s:3: role_arn is not supported", conf);
    bad2("s3://bkt", "no AWS credentials: ", want);
    free(want);
    free(cred);
    free(conf);
}

/* ---- the INI dialect ------------------------------------------------------------------------ */

static void test_ini_tolerance(void **state)
{
    /* CRLF, comments, blank lines, blanks around '=', ':' as configparser takes it,
     * key names in any case, nested settings, [profile   dev] with several blanks. */
    char *cred = put(".aws/credentials", "# written on Windows\r\n"
                                         "; another comment\r\n"
                                         "\r\n"
                                         "  [dev]   # trailing comment\r\n"
                                         "AWS_ACCESS_KEY_ID   =   " AK2 "   \r\n"
                                         "aws_secret_access_key\t=\t" SECRET2 "\r\n"
                                         "  # indented comment\r\n"
                                         "aws_session_token: " TOKEN "\r\n"
                                         "\r\n");
    free(put(".aws/config", "[profile   dev]\r\n"
                            "region=eu-west-3\r\n"
                            "s3 =\r\n"
                            "    addressing_style = path\r\n"
                            "    max_concurrent_requests = 20\r\n"
                            "output = json\r\n"
                            "[sso-session corp]\n"
                            "sso_region = eu-west-1\n"
                            "[services local]\n"
                            "s3 =\n"
                            "  endpoint_url = http://localhost:4566\n"));
    env_set("AWS_PROFILE", "dev");
    char *src = xasprintf("%s [profile dev]", cred);
    expect_creds(AK2, SECRET2, TOKEN, src);
    expect_region("s3://bkt", "eu-west-3");
    free(src);
    free(cred);
}

static void test_ini_garbage(void **state)
{
    static const struct {
        const char *text, *want;
        int line;
    } cases[] = {
        /* A pasted secret on its own line: said, never shown. */
        {"[default]\naws_access_key_id = " AK "\n" SECRET "\n",
         "expected '[section]', 'key = value' or a comment", 3},
        {"[default]\n" SECRET2 " " SECRET "\n", "expected '[section]', 'key = value'", 2},
        {"[default]\n= " SECRET "\n", "expected '[section]', 'key = value'", 2},
        {"[default]\naws secret access key = " SECRET "\n", "expected '[section]'", 2},
        {"aws_secret_access_key = " SECRET "\n", "expected a [section] before the first key", 1},
        {"[default\naws_secret_access_key = " SECRET "\n", "expected '[section]'", 1},
        {"[default] x\n", "expected '[section]'", 1},
        {"[ ]\n", "empty section name", 1},
        {"[default]\n  aws_secret_access_key = " SECRET "\n",
         "expected 'key = value' at the start of the line", 2},
        {"[default]\nregion = x\n  aws_secret_access_key = " SECRET "\n",
         "expected 'key = value' at the start of the line", 3},
        {"[default]\naws_secret_access_key = " SECRET "\naws_secret_access_key = " SECRET2 "\n",
         "key aws_secret_access_key repeated in [default] (first at line 2)", 3},
        {"[default]\nAWS_Secret_Access_Key = " SECRET "\naws_secret_access_key = " SECRET2 "\n",
         "key aws_secret_access_key repeated", 3},
        /* An unknown repeated key may be a pasted secret: not named. */
        {"[default]\n"
         "wJalrXUtnFEMI = 1\n"
         "wJalrXUtnFEMI = 2\n",
         "a key repeated in [default] (first at line 2)", 3},
        {"[default]\nregion = a\n[default]\n", "section [default] repeated (first at line 1)", 3},
        {"[default]\naws_secret_access_key = " SECRET "\x01\n", "control character", 2},
        {"[default]\naws_secret_access_key = " SECRET "\0x\n", "control character", 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        /* Written with its length: one case holds a NUL. */
        const char *t = cases[i].text;
        size_t len = strlen(t);
        if (strstr(cases[i].want, "control") && !strchr(t, '\x01'))
            len += 3;
        char *path = xasprintf("%s/.aws/credentials", tmpdir);
        free(put(".aws/credentials", ""));
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(t, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        char *want = xasprintf("%s:%d: %s", path, cases[i].line, cases[i].want);
        bad("s3://bkt", want);
        free(want);
        free(path);
    }
    /* The config file is checked the same way, even when the environment has keys. */
    env_creds();
    char *cred = xasprintf("%s/.aws/credentials", tmpdir);
    unlink(cred);
    free(cred);
    char *conf = put(".aws/config", "[default]\nregion\n");
    char *want = xasprintf("%s:2: expected", conf);
    bad("s3://bkt", want);
    free(want);
    free(conf);
}

static void test_ini_size(void **state)
{
    /* Exactly 1 MiB of comments and a section is read; one byte more is refused unread. */
    size_t n = S3CONF_FILE_MAX;
    char *text = xmalloc(n + 2);
    memset(text, '#', n);
    memcpy(text, "[default]\nregion = eu-west-1\n", 29);
    for (size_t i = 100; i < n; i += 100)
        text[i] = '\n';
    text[n - 1] = '\n';
    text[n] = '\0';
    char *conf = put(".aws/config", text);
    env_creds();
    expect_region("s3://bkt", "eu-west-1");
    text[n] = '\n';
    text[n + 1] = '\0';
    free(put(".aws/config", text));
    char *want = xasprintf("%s: larger than %d bytes", conf, S3CONF_FILE_MAX);
    bad("s3://bkt", want);
    free(want);
    free(conf);
    free(text);
}

/* ---- describe ------------------------------------------------------------------------------ */

static void test_describe(void **state)
{
    static const struct {
        const char *url, *described;
    } cases[] = {
        {"s3://bkt", "s3://bkt?endpoint=https://s3.us-east-1.amazonaws.com&region=us-east-1"
                     "&path_style=false"},
        {"s3://bkt/site/prod/?endpoint=http%3A%2F%2F127.0.0.1%3A9000",
         "s3://bkt/site/prod?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true"},
        {"s3://my.bkt/a?region=eu-west-1&sse=aws:kms&kms_key_id=arn:aws:kms:k%26x",
         "s3://my.bkt/a?endpoint=https://s3.eu-west-1.amazonaws.com&region=eu-west-1"
         "&path_style=true&sse=aws:kms&kms_key_id=arn:aws:kms:k%26x"},
        {"s3://bkt/p%41?endpoint=https://minio.example.com:9443&path_style=false",
         "s3://bkt/p%41?endpoint=https://minio.example.com:9443&region=us-east-1"
         "&path_style=false"},
    };
    env_creds();
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct s3conf c, again;
        ok(cases[i].url, &c);
        char *d = s3conf_describe(&c);
        assert_string_equal(d, cases[i].described);
        no_secret(d);
        /* Read again, with a different environment, it names the same place. */
        env_set("AWS_REGION", "sa-east-1");
        env_set("SLIPWAY_S3_ENDPOINT", "http://elsewhere:1");
        ok(d, &again);
        env_unset("AWS_REGION");
        env_unset("SLIPWAY_S3_ENDPOINT");
        assert_string_equal(again.prefix, c.prefix);
        assert_string_equal(again.endpoint, c.endpoint);
        assert_string_equal(again.host, c.host);
        assert_string_equal(again.base_url, c.base_url);
        assert_string_equal(again.region, c.region);
        assert_int_equal(again.path_style, c.path_style);
        assert_string_equal(again.sse, c.sse);
        if (c.kms_key_id)
            assert_string_equal(again.kms_key_id, c.kms_key_id);
        free(d);
        s3conf_free(&again);
        s3conf_free(&c);
    }
    struct s3conf zero = {0};
    char *d = s3conf_describe(&zero);
    assert_non_null(d);
    free(d);
}

/* NULL as the lookup is the process environment. */
static void test_process_env(void **state)
{
    static const char *const clear[] = {"AWS_PROFILE",         "AWS_REGION",
                                        "AWS_DEFAULT_REGION",  "AWS_ENDPOINT_URL",
                                        "AWS_ENDPOINT_URL_S3", "AWS_SHARED_CREDENTIALS_FILE",
                                        "AWS_CONFIG_FILE",     "AWS_SESSION_TOKEN"};
    for (size_t i = 0; i < sizeof(clear) / sizeof(*clear); i++)
        assert_int_equal(unsetenv(clear[i]), 0);
    assert_int_equal(setenv("HOME", tmpdir, 1), 0);
    assert_int_equal(setenv("AWS_ACCESS_KEY_ID", AK, 1), 0);
    assert_int_equal(setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1), 0);
    assert_int_equal(setenv("SLIPWAY_S3_ENDPOINT", "http://127.0.0.1:5000", 1), 0);
    struct s3conf c;
    struct sw_err err = {0};
    assert_int_equal(s3conf_parse("s3://bkt", NULL, &c, &err), 0);
    assert_string_equal(c.cred_source, "environment");
    assert_string_equal(c.secret_key, SECRET);
    assert_string_equal(c.base_url, "http://127.0.0.1:5000/bkt");
    s3conf_free(&c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("SLIPWAY_S3_ENDPOINT");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_prefix),
        T(test_bad_bucket),
        T(test_bad_prefix),
        T(test_bad_query),
        T(test_bad_endpoint),
        T(test_kms),
        T(test_ca_bundle),
        T(test_addressing),
        T(test_endpoint_precedence),
        T(test_region_precedence),
        T(test_credentials_files),
        T(test_file_locations),
        T(test_credentials_errors),
        T(test_ini_tolerance),
        T(test_ini_garbage),
        T(test_ini_size),
        T(test_describe),
        T(test_process_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Private to the store module (its one public header is store.h): how an
 * s3:// store URL, the environment and the AWS shared files (credentials and
 * config) become the s3 backend's configuration, found as the AWS CLI finds
 * it. docs/store.md ("Configuring an S3 store") is the user's view of it.
 *
 * Every error names where the bad value came from (the URL, an environment
 * variable, FILE:LINE) and never shows a secret access key or a session
 * token, not even when the line holding one is malformed.
 */
#ifndef SW_STORE_S3CONF_H
#define SW_STORE_S3CONF_H

#include "base/base.h"

/* The shared files are small; anything larger is refused unread. */
#define S3CONF_FILE_MAX (1024 * 1024)
/* A prefix leaves room for store keys (S3 keys are at most 1024 bytes). */
#define S3CONF_PREFIX_MAX 512

struct s3conf {
    char *bucket;     /* DNS-compatible bucket name, validated: 3-63 chars of [a-z0-9.-], starts and
                         ends with letter/digit, no "..", not an IP address */
    char *prefix;     /* "" or a store-key-like prefix WITH a trailing '/', e.g. "site/prod/"
                         (validated: no empty, "." or ".." component, printable ASCII, no backslash) */
    char *endpoint;   /* "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com":
                         scheme://host[:port], no path, no trailing slash */
    char *host;       /* the Host header value for requests: with path_style "127.0.0.1:9000";
                         virtual-hosted "BUCKET.s3.eu-west-1.amazonaws.com" (port kept when not the
                         scheme's default) */
    char *base_url;   /* what a key path is appended to: path style "http://127.0.0.1:9000/BUCKET",
                         virtual "https://BUCKET.s3.REGION.amazonaws.com" */
    char *region;     /* "us-east-1" when nothing says otherwise */
    int path_style;   /* 1 when ?path_style=true, or when an endpoint was given and path_style not
                         said (S3-compatibles: MinIO, moto), or when the bucket has a '.' and the
                         scheme is https */
    char *sse;        /* "AES256" (default) or "aws:kms" */
    char *kms_key_id; /* NULL unless sse=aws:kms&kms_key_id=... */
    char *ca_bundle;  /* the CA certificates (a PEM file) to trust instead of the system's, as
                         the AWS CLI takes them: $AWS_CA_BUNDLE, else the profile's ca_bundle;
                         NULL: the system's (a private CA's MinIO or Ceph over https) */
    char *access_key, *secret_key, *session_token; /* session_token may be NULL */
    char *cred_source; /* where the credentials came from, for messages: "environment",
                          "/root/.aws/credentials [profile dev]", ... never a secret */
};

/* Parses
 * "s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true|false&sse=AES256|aws:kms&kms_key_id=ID]"
 * (query values percent-decoded; unknown parameter or a repeated one: error naming it), then fills
 * what the URL does not say from the environment and the AWS shared files, as the AWS CLI does:
 *  endpoint: URL param, then $SLIPWAY_S3_ENDPOINT, then $AWS_ENDPOINT_URL_S3, then
 *   $AWS_ENDPOINT_URL, then the config file's endpoint_url, else https://s3.REGION.amazonaws.com
 *   (virtual-hosted).
 *  region: URL param, $AWS_REGION, $AWS_DEFAULT_REGION, config file `region`, else us-east-1.
 *  credentials: $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY (+ $AWS_SESSION_TOKEN) — both or an
 *   error naming the missing one; else the shared credentials file ($AWS_SHARED_CREDENTIALS_FILE
 *   or ~/.aws/credentials via $HOME) section [PROFILE]; else the config file ($AWS_CONFIG_FILE or
 *   ~/.aws/config) section [profile PROFILE] ([default] for the default profile) with
 *   aws_access_key_id/aws_secret_access_key/aws_session_token; PROFILE is $AWS_PROFILE or
 *   "default". A named profile that exists in neither file is an error naming it and both files.
 *   No credentials anywhere: SW_EINVAL "no AWS credentials: set AWS_ACCESS_KEY_ID and
 *   AWS_SECRET_ACCESS_KEY or ...".
 *  ca_bundle: $AWS_CA_BUNDLE, else the config file's ca_bundle; a path that is not a regular
 *   file is an error naming where it came from.
 *  INI parsing of those files: strict enough to say "FILE:LINE: expected ..." for garbage,
 *   tolerant of comments (# ;), blank lines, spaces around '=', CRLF. Files at most 1 MiB.
 *  An environment variable set to "" counts as unset; a file that does not exist is skipped.
 * env is passed in as a lookup function so tests need not setenv (NULL: getenv(3)). */
typedef const char *(*s3conf_getenv_fn)(const char *name);

/* NULL when bucket is a valid bucket name (the rules above), else what is
 * wrong with it ("must be 3 to 63 characters long"): for names given
 * elsewhere than in a URL (the logs bucket of .slipway/infra.yml). */
const char *s3conf_bucket_problem(const char *bucket);

/* Fills *out (zeroed first; on failure left zeroed) with memory the caller frees with
 * s3conf_free. 0, or SW_EINVAL (a bad value or file: the message says where) or SW_EIO /
 * SW_EACCES (a file that exists but cannot be read). Thread-safe when getenv_fn is. */
int s3conf_parse(const char *url, s3conf_getenv_fn getenv_fn, struct s3conf *out,
                 struct sw_err *err);
void s3conf_free(struct s3conf *c); /* wipes the secret before freeing; a zeroed struct is fine */
/* "s3://BUCKET/PREFIX?..." without any secret: for messages and store_url-like output. Caller
 * frees. It names the endpoint, region and addressing style found (and the encryption when it is
 * not AES256), so parsing it again with an empty environment gives the same place. */
char *s3conf_describe(const struct s3conf *c);

#endif

/*
 * libFuzzer target for the secret scan (src/scan/): the input's first byte
 * picks what it is, the rest is the bytes. Even first bytes: one file's
 * content, scanned under a name from a list (so the rules on .env, .npmrc,
 * .netrc, credentials and id_rsa files run too); odd: an allow-list, parsed
 * and matched against a few paths. Beyond the sanitizers, it checks what the
 * CLI and the gates rely on: a file is counted exactly once (scanned, binary
 * or ignored); every finding names the file it was given and a line inside
 * the content; its rule is one of the documented ids; its redacted value is
 * at most 4 printable ASCII characters that occur in the content, then
 * "****"; its fingerprint is 16 lowercase hex digits; scanning is
 * deterministic; and an allow-list naming a finding's fingerprint removes
 * exactly that finding.
 */
#include "fuzz.h"
#include "scan/scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"a.txt",      ".env",          ".env.production", ".npmrc",
                                    ".netrc",     "x/credentials", "id_rsa",          "id_ed25519",
                                    "config.yml", "k.pem"};
static const char *const rules[] = {
    "private-key",  "aws-access-key",   "github-token", "gitlab-token",
    "slack-token",  "slack-webhook",    "jwt",          "secret-assignment",
    "env-file",     "credentials-file", "npmrc-token",  "netrc-file",
    "ssh-key-file",
};

static int known_rule(const char *r)
{
    for (size_t i = 0; i < sizeof(rules) / sizeof(*rules); i++)
        if (!strcmp(rules[i], r))
            return 1;
    return 0;
}

static void check_content(const char *name, const uint8_t *p, size_t len)
{
    struct sw_err err = {0};
    struct scan_report *a = scan_report_new(), *b = scan_report_new();
    CHECK(scan_buffer(name, p, len, NULL, a, &err) == 0);
    CHECK(scan_buffer(name, p, len, NULL, b, &err) == 0);
    CHECK(a->files_scanned + a->files_skipped_binary + a->files_ignored == 1);
    CHECK(a->n <= SCAN_MAX_FINDINGS_PER_FILE);
    CHECK(a->n == 0 || a->files_scanned == 1);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += p[i] == '\n';
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        const struct scan_finding *f = &a->findings[i];
        CHECK(!strcmp(f->path, name));
        CHECK(f->line >= 1 && f->line <= lines);
        CHECK(known_rule(f->rule));
        size_t rl = strlen(f->redacted);
        CHECK(rl >= 4 && rl <= 8 && !strcmp(f->redacted + rl - 4, "****"));
        for (size_t k = 0; k + 4 < rl; k++)
            CHECK(f->redacted[k] > 0x20 && f->redacted[k] < 0x7f);
        CHECK(rl == 4 || memmem(p, len, f->redacted, rl - 4) != NULL);
        CHECK(hex_lower_valid(f->fingerprint, SCAN_FINGERPRINT_LEN));
        CHECK(f->line == b->findings[i].line && !strcmp(f->rule, b->findings[i].rule) &&
              !strcmp(f->fingerprint, b->findings[i].fingerprint));
        if (i > 0)
            CHECK(f->line >= a->findings[i - 1].line);
    }
    if (a->n) {
        /* allowing the first finding's fingerprint removes it (and its twins) only */
        char text[64];
        snprintf(text, sizeof(text), "fingerprint:%s\n", a->findings[0].fingerprint);
        struct scan_ignore *ig = NULL;
        CHECK(scan_ignore_parse("ig", text, strlen(text), &ig, &err) == 0);
        struct scan_opts o = {.ignore = ig};
        struct scan_report *c = scan_report_new();
        CHECK(scan_buffer(name, p, len, &o, c, &err) == 0);
        size_t same = 0;
        for (size_t i = 0; i < a->n; i++)
            same += !strcmp(a->findings[i].fingerprint, a->findings[0].fingerprint);
        CHECK(c->findings_ignored == same && c->n == a->n - same);
        scan_report_free(c);
        scan_ignore_free(ig);
    }
    scan_report_free(a);
    scan_report_free(b);
}

static void check_ignore(const uint8_t *p, size_t len)
{
    static const char *const paths[] = {
        "a", "a/b", "tests/data/x.txt", "fuzz/corpus/scan/s1", ".env", "deep/er/x.pem"};
    struct scan_ignore *ig = NULL;
    struct sw_err err = {0};
    int rc = scan_ignore_parse("fuzz-ignore", (const char *)p, len, &ig, &err);
    if (rc) {
        CHECK(rc == SCAN_EIGNORE && ig == NULL);
        CHECK(!strncmp(err.msg, "fuzz-ignore:", 12));
        return;
    }
    for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
        int m = scan_ignore_path(ig, paths[i], 0);
        CHECK(m == 0 || m == 1);
        CHECK(scan_ignore_path(ig, paths[i], 0) == m);
        /* a glob covering a directory covers what is under it */
        if (scan_ignore_path(ig, paths[i], 1)) {
            char sub[64];
            snprintf(sub, sizeof(sub), "%s/f", paths[i]);
            CHECK(scan_ignore_path(ig, sub, 0));
        }
    }
    scan_ignore_free(ig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        check_ignore(data + 1, size - 1);
    else
        check_content(names[(data[0] >> 1) % (sizeof(names) / sizeof(*names))], data + 1, size - 1);
    return 0;
}

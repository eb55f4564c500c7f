/*
 * libFuzzer target for the artifact manifest parser (pipeline_artifact_parse
 * in src/pipeline/artifact.c): every input is a
 * runs/<run>/artifacts/<name>/manifest.json someone else wrote into a shared
 * bucket, and its paths become files on disk. It is read under the key of the
 * name it holds (when that is a valid name), so real documents pass; the same
 * document under another run's or another name's key is refused. An accepted
 * manifest must keep what a download relies on: a valid name whose key is the
 * one read, every path one artifact_path_check accepts (relative, normal form,
 * no "..", never leaving the target directory), sorted and unique, blobs of 64
 * lowercase hex digits, sizes and modes bounded, bytes their sum; and writing
 * it back gives a document that parses again and dumps to the same bytes. A
 * refused document names the key and says why.
 */
#include "fuzz.h"
#include "pipeline/artifact_internal.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char RUN[] = "run-20261205-142233-512-9f3a1c";
static const char OTHER[] = "run-20260101-000000-000-000000";

static int parse(const char *key, const char *run, const char *data, size_t len,
                 struct pipeline_artifact **out)
{
    struct sw_err err;
    memset(&err, 0, sizeof(err));
    *out = NULL;
    int rc = pipeline_artifact_parse(key, run, data, len, out, &err);
    if (rc) {
        CHECK(rc == SW_EINVAL && err.code == rc);
        CHECK(*out == NULL);
        CHECK(strncmp(err.msg, key, strlen(key)) == 0 && err.msg[strlen(key)] == ':');
        CHECK(!strchr(err.msg, '\n'));
    }
    return rc;
}

static void check(const struct pipeline_artifact *a, const char *key)
{
    CHECK(pipeline_artifact_name_check(a->name, NULL) == 0);
    char *k = pipeline_artifact_key(a->run, a->name);
    CHECK(strcmp(k, key) == 0);
    free(k);
    CHECK(a->nfiles <= PIPELINE_ARTIFACT_FILES_MAX);
    CHECK(a->retention_days >= 1 && a->retention_days <= PIPELINE_ARTIFACT_RETENTION_MAX);
    uint64_t sum = 0;
    for (size_t i = 0; i < a->nfiles; i++) {
        const struct pipeline_artifact_file *f = &a->files[i];
        CHECK(artifact_path_check(f->path, NULL) == 0);

        for (const char *p = f->path; (p = strstr(p, "..")) != NULL; p += 2)
            CHECK(!((p == f->path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0')));
        CHECK(i == 0 || strcmp(a->files[i - 1].path, f->path) < 0);
        CHECK(hex_lower_valid(f->blob, SHA256_HEX_LEN));
        CHECK(f->mode <= 0777);
        sum += f->size;
    }
    CHECK(sum == a->bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pipeline_artifact *a = NULL, *b = NULL;
    char *name = NULL;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    const char *n = json_string_value(json_object_get(doc, "name"));
    if (n && pipeline_artifact_name_check(n, NULL) == 0)
        name = strdup(n);
    json_decref(doc);
    char *key = pipeline_artifact_key(RUN, name ? name : "x");
    if (parse(key, RUN, (const char *)data, size, &a) == 0) {
        check(a, key);
        size_t len = 0;
        char *d1 = pipeline_artifact_dump(a, &len);
        CHECK(d1);
        CHECK(parse(key, RUN, d1, len, &b) == 0);
        char *d2 = pipeline_artifact_dump(b, NULL);
        CHECK(d2 && strcmp(d1, d2) == 0);
        free(d1);
        free(d2);
        pipeline_artifact_free(b);
        /* the same document is not another run's, nor another name's */
        char *k2 = pipeline_artifact_key(OTHER, a->name);
        CHECK(parse(k2, OTHER, (const char *)data, size, &b) != 0);
        free(k2);
        k2 = pipeline_artifact_key(RUN, strcmp(a->name, "y") ? "y" : "z");
        CHECK(parse(k2, RUN, (const char *)data, size, &b) != 0);
        free(k2);
        pipeline_artifact_free(a);
    }
    free(key);
    free(name);
    return 0;
}

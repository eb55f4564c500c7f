/*
 * libFuzzer target for the on.push filter patterns (src/pipeline/filter.c): the input's lines
 * are patterns someone else wrote into a workflow, except the last, which is a branch name or
 * path to match. Beyond the sanitizers, it checks: a pattern list compiles or is refused with a
 * message naming the pattern, matching is deterministic and 0 or 1, an -ignore list decides
 * the opposite of the same include list, and each pattern, with every character escaped, matches
 * exactly itself (so escaping makes any text literal).
 */
#include "fuzz.h"
#include "pipeline/pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LINES = 16 };

static void check_literal(const char *s)
{
    size_t n = strlen(s);
    char *escaped = malloc(2 * n + 2), *other = malloc(n + 2);
    const char *list[1] = {escaped};
    struct pipeline_filter *f = NULL;
    struct sw_err err = {0};

    CHECK(escaped && other);
    for (size_t i = 0; i < n; i++) {
        escaped[2 * i] = '\\';
        escaped[2 * i + 1] = s[i];
    }
    escaped[2 * n] = '\0';
    CHECK(pipeline_filter_new(list, 1, &f, &err) == 0 || 2 * n > 4096);
    if (f) {
        CHECK(pipeline_filter_match(f, s) == 1);
        memcpy(other, s, n);
        other[n] = 'x';
        other[n + 1] = '\0';
        CHECK(pipeline_filter_match(f, other) == 0);
        pipeline_filter_free(f);
    }
    free(escaped);
    free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *lines[MAX_LINES + 1];
    const char *patterns[MAX_LINES];
    size_t n = 0;
    struct pipeline_filter *f = NULL;
    struct sw_err err = {0};
    int rc;

    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    /* lines; a NUL ends the input as a C string would */
    for (char *p = text; n <= MAX_LINES;) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (!p)
            break;
        *p++ = '\0';
    }
    if (n < 2) {
        free(text);
        return 0;
    }
    for (size_t i = 0; i + 1 < n; i++)
        patterns[i] = lines[i];
    const char *name = lines[n - 1];

    rc = pipeline_filter_new(patterns, n - 1, &f, &err);
    if (rc) {
        CHECK(rc == PIPELINE_ESYNTAX && f == NULL);
        CHECK(strncmp(err.msg, "bad filter", 10) == 0);
    } else {
        int m = pipeline_filter_match(f, name);
        CHECK(m == 0 || m == 1);
        CHECK(pipeline_filter_match(f, name) == m);
        CHECK(pipeline_filter_ref(f, 0, name) == m && pipeline_filter_ref(f, 1, name) == !m);
        CHECK(pipeline_filter_paths(f, 0, &name, 1) == m);
        CHECK(pipeline_filter_paths(f, 1, &name, 1) == !m);
        pipeline_filter_free(f);
    }
    for (size_t i = 0; i < n; i++)
        check_literal(lines[i]);
    free(text);
    return 0;
}

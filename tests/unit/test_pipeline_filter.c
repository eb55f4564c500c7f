/*
 * Unit tests for the on.push filters (src/pipeline/filter.c): the conformance
 * cases of ../shared/conformance/gha-filters.json (GitHub's cheat sheet and
 * examples, nektos/act's pattern tests), read at run time and skipped with a
 * note when absent, then bad patterns and hostile ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pipeline/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int matches(const char *pattern, const char *name)
{
    struct pipeline_filter *f = NULL;
    struct sw_err err = {0};
    int m;

    assert_int_equal(pipeline_filter_new(&pattern, 1, &f, &err), 0);
    m = pipeline_filter_match(f, name);
    pipeline_filter_free(f);
    return m;
}

/* The error message for a list of one pattern, or NULL when it compiles. */
static const char *bad(const char *pattern)
{
    static struct sw_err err;
    struct pipeline_filter *f = NULL;
    int rc = pipeline_filter_new(&pattern, 1, &f, &err);

    pipeline_filter_free(f);
    if (rc == 0)
        return NULL;
    assert_int_equal(rc, PIPELINE_ESYNTAX);
    assert_null(f);
    return err.msg;
}

static void test_conformance(void **state)
{
    const char *dir = getenv("SLIPWAY_CONFORMANCE");
    char path[4096];
    json_error_t jerr;
    json_t *cases, *c;
    size_t i, passed = 0;

    snprintf(path, sizeof(path), "%s/gha-filters.json", dir ? dir : "../shared/conformance");
    cases = json_load_file(path, 0, &jerr);
    if (!cases) {
        printf("# conformance folder absent: skipped (%s)\n", path);
        skip();
    }
    json_array_foreach(cases, i, c)
    {
        const json_t *pats = json_object_get(c, "patterns"), *changed;
        const char *list[64], *ref = json_string_value(json_object_get(c, "ref_or_path"));
        int ignore = strcmp(json_string_value(json_object_get(c, "filter")), "ignore") == 0;
        int want_match = json_is_true(json_object_get(c, "matches"));
        int want_runs = json_is_true(json_object_get(c, "workflow_runs"));
        struct pipeline_filter *f = NULL;
        struct sw_err err = {0};
        size_t k, n = json_array_size(pats);
        int got_match, got_runs;

        assert_true(n < 64);
        for (k = 0; k < n; k++)
            list[k] = json_string_value(json_array_get(pats, k));
        if (pipeline_filter_new(list, n, &f, &err) != 0) {
            printf("# FAIL case %zu: %s\n", i, err.msg);
            continue;
        }
        if (ref) {
            got_match = pipeline_filter_match(f, ref);
            got_runs = pipeline_filter_ref(f, ignore, ref);
        } else {
            const char *paths[64];
            changed = json_object_get(c, "changed_paths");
            for (k = 0; k < json_array_size(changed) && k < 64; k++)
                paths[k] = json_string_value(json_array_get(changed, k));
            got_runs = pipeline_filter_paths(f, ignore, paths, k);
            /* an include list matched when one path did; an ignore list when all did */
            got_match = ignore ? !got_runs : got_runs;
        }
        pipeline_filter_free(f);
        if (got_match == want_match && got_runs == want_runs)
            passed++;
        else
            printf("# FAIL case %zu (%s, %s): %s: matches %d runs %d, wanted %d %d\n", i,
                   json_string_value(json_object_get(c, "kind")), ignore ? "ignore" : "include",
                   ref ? ref : "(changed paths)", got_match, got_runs, want_match, want_runs);
    }
    printf("# conformance: filters %zu/%zu passed\n", passed, json_array_size(cases));
    assert_int_equal(json_array_size(cases), 148);
    assert_int_equal(passed, json_array_size(cases));
    json_decref(cases);
}

static void test_patterns(void **state)
{
    /* '*' stops at '/', '**' does not, '**' '/' may match nothing */
    assert_true(matches("a/*/c", "a/b/c"));
    assert_false(matches("a/*/c", "a/b/x/c"));
    assert_true(matches("a/**/c", "a/c"));
    assert_true(matches("a/**/c", "a/b/x/c"));
    assert_false(matches("a/**/c", "a//c"));
    assert_true(matches("a**", "a/b"));
    assert_false(matches("**/x", "/x"));
    /* '?' and '+' repeat the preceding character or class */
    assert_true(matches("v[0-9]+.x?", "v10."));
    assert_true(matches("v[0-9]+.x?", "v1.x"));
    assert_false(matches("v[0-9]+.x?", "v.x"));
    assert_false(matches("v[0-9]+.x?", "v1.xx"));
    assert_true(matches("colou?r", "color"));
    /* at the start they are characters; "*?" is "*" */
    assert_true(matches("+x", "+x"));
    assert_true(matches("?x", "?x"));
    assert_true(matches("a*?", "abc"));
    assert_true(matches("a??", "a"));
    /* escapes, and a '!' that is not first */
    assert_true(matches("\\*x\\[", "*x["));
    assert_false(matches("\\*x", "ax"));
    assert_true(matches("a!b", "a!b"));
    /* case matters; '.' is an ordinary character */
    assert_false(matches("Main", "main"));
    assert_false(matches("v1.0", "v1x0"));
    /* classes: A-z includes the few ASCII between Z and a */
    assert_true(matches("[_]x", "_x"));
    assert_false(matches("[a-c]", "d"));
    /* the last matching pattern decides */
    const char *list[] = {"**", "!docs/**", "docs/keep.md"};
    struct pipeline_filter *f = NULL;
    struct sw_err err = {0};
    assert_int_equal(pipeline_filter_new(list, 3, &f, &err), 0);
    assert_true(pipeline_filter_match(f, "src/a.c"));
    assert_false(pipeline_filter_match(f, "docs/a.md"));
    assert_true(pipeline_filter_match(f, "docs/keep.md"));
    const char *changed[] = {"docs/a.md", "docs/b.md"};
    assert_false(pipeline_filter_paths(f, 0, changed, 2));
    assert_true(pipeline_filter_paths(f, 1, changed, 2));
    assert_false(pipeline_filter_paths(f, 0, changed, 0));
    assert_false(pipeline_filter_paths(f, 1, changed, 0));
    assert_false(pipeline_filter_ref(f, 1, "src/a.c"));
    pipeline_filter_free(f);
    /* an empty list matches nothing */
    assert_int_equal(pipeline_filter_new(NULL, 0, &f, &err), 0);
    assert_false(pipeline_filter_match(f, ""));
    pipeline_filter_free(f);
}

static void test_bad_patterns(void **state)
{
    assert_null(bad("release/v[0-9]+"));
    assert_string_equal(bad("v[12"), "bad filter pattern 'v[12': missing ']' after '[' (column 2)");
    assert_string_equal(bad("x[]"), "bad filter pattern 'x[]': empty brackets '[]' (column 3)");
    assert_string_equal(bad("[a-9]"), "bad filter pattern '[a-9]': ranges may only be within "
                                      "a-z, A-Z or 0-9, lowest first (column 2)");
    assert_string_equal(bad("[z-a]"), "bad filter pattern '[z-a]': ranges may only be within "
                                      "a-z, A-Z or 0-9, lowest first (column 2)");
    assert_string_equal(bad("[-a]"), "bad filter pattern '[-a]': a range needs a character on "
                                     "each side of '-' (column 2)");
    assert_string_equal(bad("[a.]"), "bad filter pattern '[a.]': brackets may only hold a-z, "
                                     "A-Z, 0-9 and ranges of them (column 3)");
    assert_string_equal(bad("!a\\"),
                        "bad filter pattern '!a\\': missing character after '\\' (column 3)");
    assert_string_equal(bad("a*+"), "bad filter pattern 'a*+': '+' cannot follow '*', '**' or "
                                    "another '?' or '+' (column 3)");
    assert_non_null(strstr(bad("a++"), "(column 3)"));
    /* one pattern alone, with the offset of the fault */
    struct sw_err err = {0};
    size_t at = 99;
    assert_int_equal(pipeline_filter_check("!v[12", &at, &err), PIPELINE_ESYNTAX);
    assert_int_equal(at, 2);
    assert_string_equal(err.msg, "bad filter pattern '!v[12': missing ']' after '[' (column 3)");
    assert_int_equal(pipeline_filter_check("!main", &at, &err), 0);
    assert_string_equal(bad("!main"), "bad filter: every pattern starts with '!'; at least one "
                                      "pattern without '!' is needed (or use the -ignore filter)");
    char *huge = malloc(5000);
    memset(huge, 'a', 4999);
    huge[4999] = '\0';
    assert_non_null(strstr(bad(huge), "longer than 4096 bytes"));
    free(huge);
}

/* A pattern built to make a backtracking matcher take exponential time is
 * matched in linear time here. */
static void test_hostile(void **state)
{
    char pattern[4097], name[4097];
    size_t i;
    clock_t t0 = clock();

    for (i = 0; i + 3 < sizeof(pattern); i += 2)
        memcpy(pattern + i, "*a", 2);
    pattern[i] = 'b';
    pattern[i + 1] = '\0';
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_false(matches(pattern, name));
    for (i = 0; i + 3 < sizeof(pattern); i += 3)
        memcpy(pattern + i, "**/", 3);
    pattern[i] = '\0';
    for (i = 0; i + 2 < sizeof(name); i += 2)
        memcpy(name + i, "a/", 2);
    name[i] = '\0';
    assert_true(matches(pattern, name));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

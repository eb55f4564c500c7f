/*
 * libFuzzer target for the workflow loader (src/pipeline/workflow.c, wf_*.c,
 * matrix.c): every input is a workflow file someone else wrote. Each is
 * loaded twice without options and once with `unsupported: skip`. Beyond the
 * sanitizers (and ASan's leak check), it checks what `workflow check` and
 * the runner rely on: every error and warning is "fuzz.yml:LINE:COL: ..."
 * with its position inside the input (lines as libyaml counts them, columns
 * in characters, at most one past a line's end); the result code agrees with
 * the error list, which stays within its bound; loading is deterministic;
 * skip mode only ever turns errors into warnings; the model is consistent
 * (needs point at jobs of the workflow with those ids, steps and jobs within
 * their bounds, a `uses:` kind only with a `uses:`); a matrix written out in
 * full expands to at most 256 legs; and the trigger decision is 0 or 1.
 */
#include "fuzz.h"
#include "pipeline/pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz.yml"

struct lines {
    size_t n;      /* lines: breaks + 1 */
    size_t *chars; /* characters on each line */
};

/* Splits the input into lines as libyaml does, counting characters. */
static void lines_of(const uint8_t *p, size_t len, struct lines *l)
{
    l->n = 1;
    l->chars = xcalloc(len + 1, sizeof(*l->chars));
    for (size_t i = 0; i < len; i++) {
        size_t brk = p[i] == '\r' && i + 1 < len && p[i + 1] == '\n'   ? 2
                     : p[i] == '\n' || p[i] == '\r'                    ? 1
                     : p[i] == 0xc2 && i + 1 < len && p[i + 1] == 0x85 ? 2
                     : p[i] == 0xe2 && i + 2 < len && p[i + 1] == 0x80 &&
                             (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)
                         ? 3
                         : 0;
        if (brk) {
            l->n++;
            i += brk - 1;
        } else if ((p[i] & 0xc0) != 0x80) {
            l->chars[l->n - 1]++;
        }
    }
}

static void check_diags(const struct pipeline_diag *d, size_t n, const struct lines *l)
{
    char prefix[64];

    CHECK(n <= PIPELINE_WF_MAX_ERRORS);
    for (size_t i = 0; i < n; i++) {
        CHECK(d[i].line >= 1 && d[i].line <= l->n);
        CHECK(d[i].col >= 1 && d[i].col <= l->chars[d[i].line - 1] + 1);
        snprintf(prefix, sizeof(prefix), NAME ":%zu:%zu: ", d[i].line, d[i].col);
        CHECK(strncmp(d[i].text, prefix, strlen(prefix)) == 0);
        CHECK(i == 0 || d[i - 1].line < d[i].line ||
              (d[i - 1].line == d[i].line && d[i - 1].col <= d[i].col));
    }
}

static void check_same(const struct pipeline_workflow *a, const struct pipeline_workflow *b)
{
    CHECK(a->n_errors == b->n_errors && a->n_errors_dropped == b->n_errors_dropped);
    CHECK(a->n_warnings == b->n_warnings && a->n_jobs == b->n_jobs);
    for (size_t i = 0; i < a->n_errors; i++)
        CHECK(strcmp(a->errors[i].text, b->errors[i].text) == 0);
    for (size_t i = 0; i < a->n_warnings; i++)
        CHECK(strcmp(a->warnings[i].text, b->warnings[i].text) == 0);
}

static void check_job(const struct pipeline_workflow *wf, const struct pipeline_job *job)
{
    CHECK(job->id != NULL);
    CHECK(job->n_steps <= PIPELINE_WF_MAX_STEPS);
    for (size_t k = 0; k < job->n_needs; k++) {
        CHECK(job->needs_index[k] < wf->n_jobs);
        CHECK(strcmp(wf->jobs[job->needs_index[k]].id, job->needs[k]) == 0);
    }
    CHECK((job->uses.raw.s != NULL) == (job->uses.kind != PIPELINE_USES_NONE) || wf->n_errors);
    for (size_t s = 0; s < job->n_steps; s++) {
        const struct pipeline_step *st = &job->steps[s];
        CHECK(st->index == s);
        CHECK(st->uses.kind == PIPELINE_USES_NONE || st->uses.raw.s != NULL);
        CHECK(!st->skipped || st->skip_reason != NULL);
    }
    CHECK(!job->skipped || job->skip_reason != NULL);
    if (!wf->n_errors && job->strategy.matrix && !job->strategy.matrix_expr) {
        json_t *legs = NULL;
        struct sw_err err = {0};
        CHECK(pipeline_matrix_expand(job->strategy.matrix, &legs, &err) == 0);
        CHECK(json_array_size(legs) >= 1 && json_array_size(legs) <= PIPELINE_WF_MAX_MATRIX);
        json_decref(legs);
    }
}

static struct pipeline_workflow *load(const uint8_t *data, size_t size, unsigned flags)
{
    struct pipeline_load_opts o = {flags};
    struct pipeline_workflow *wf = NULL;
    struct sw_err err = {0};
    int rc = pipeline_workflow_parse((const char *)data, size, NAME, &o, &wf, &err);

    CHECK(wf != NULL);
    CHECK(rc == 0 ? wf->n_errors == 0 : rc == PIPELINE_ELOAD && wf->n_errors > 0);
    CHECK(rc == 0 || strncmp(err.msg, NAME ":", strlen(NAME) + 1) == 0 ||
          strstr(err.msg, "errors, the first: " NAME ":") != NULL);
    return wf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const refs[] = {"refs/heads/main", "refs/tags/v1.2.3", "refs/heads/a/b"};
    const char *paths[] = {"src/a.c", "docs/x.md"};
    struct lines l;
    struct pipeline_workflow *a = load(data, size, 0), *b = load(data, size, 0);
    struct pipeline_workflow *s = load(data, size, PIPELINE_LOAD_SKIP_UNSUPPORTED);

    lines_of(data, size, &l);
    check_diags(a->errors, a->n_errors, &l);
    check_diags(a->warnings, a->n_warnings, &l);
    check_diags(s->errors, s->n_errors, &l);
    check_diags(s->warnings, s->n_warnings, &l);
    check_same(a, b);
    CHECK(s->n_errors + s->n_errors_dropped <= a->n_errors + a->n_errors_dropped);
    CHECK(a->n_warnings == 0);
    CHECK(a->n_jobs <= PIPELINE_WF_MAX_JOBS);
    for (size_t j = 0; j < a->n_jobs; j++)
        check_job(a, &a->jobs[j]);
    for (size_t j = 0; j < s->n_jobs; j++)
        check_job(s, &s->jobs[j]);
    for (size_t r = 0; r < sizeof(refs) / sizeof(refs[0]); r++) {
        int t = pipeline_workflow_triggered(a, "push", refs[r], paths, 2);
        CHECK(t == 0 || t == 1);
        CHECK(t == pipeline_workflow_triggered(b, "push", refs[r], paths, 2));
        CHECK(t == 0 || a->on.push.present);
    }
    free(l.chars);
    pipeline_workflow_free(a);
    pipeline_workflow_free(b);
    pipeline_workflow_free(s);
    return 0;
}

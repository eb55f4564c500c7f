/*
 * libFuzzer target for the action loader (src/pipeline/action.c): every
 * input is an action.yml someone else committed, loaded by the runner when
 * a step says `uses: ./path`. Each is loaded twice without options and once
 * with `unsupported: skip`. Beyond the sanitizers (and ASan's leak check), it
 * checks what the runner relies on: every error and warning is
 * "fuzz/action.yml:LINE:COL: ..." inside the input (lines as libyaml counts
 * them, columns in characters, at most one past a line's end), in file
 * order; the result code agrees with the error list, which stays within its
 * bound; loading is deterministic; skip mode only turns errors into
 * warnings; and the model is consistent: an action without errors runs
 * composite steps (at least one, within the bound, each a run: step with a
 * shell or a uses: step), its inputs and outputs are named and every output
 * has a value.
 */
#include "fuzz.h"
#include "pipeline/pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "fuzz/action.yml"

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

static void check_same(const struct pipeline_action *a, const struct pipeline_action *b)
{
    CHECK(a->n_errors == b->n_errors && a->n_errors_dropped == b->n_errors_dropped);
    CHECK(a->n_warnings == b->n_warnings && a->n_steps == b->n_steps);
    CHECK(a->n_inputs == b->n_inputs && a->n_outputs == b->n_outputs);
    for (size_t i = 0; i < a->n_errors; i++)
        CHECK(strcmp(a->errors[i].text, b->errors[i].text) == 0);
    for (size_t i = 0; i < a->n_warnings; i++)
        CHECK(strcmp(a->warnings[i].text, b->warnings[i].text) == 0);
}

static void check_model(const struct pipeline_action *a)
{
    CHECK(a->n_steps <= PIPELINE_WF_MAX_STEPS);
    for (size_t i = 0; i < a->n_inputs; i++)
        CHECK(a->inputs[i].name && a->inputs[i].name[0]);
    for (size_t i = 0; i < a->n_outputs; i++)
        CHECK(a->outputs[i].name && a->outputs[i].name[0]);
    for (size_t s = 0; s < a->n_steps; s++) {
        const struct pipeline_step *st = &a->steps[s];
        CHECK(st->index == s);
        CHECK(st->uses.kind == PIPELINE_USES_NONE || st->uses.raw.s != NULL);
        CHECK(!st->skipped || st->skip_reason != NULL);
    }
    if (a->n_errors)
        return;
    /* what the runner may take for granted of an action that loaded */
    CHECK(a->using.s && strcmp(a->using.s, "composite") == 0);
    CHECK(a->n_steps >= 1);
    for (size_t i = 0; i < a->n_outputs; i++)
        CHECK(a->outputs[i].value.s != NULL);
    for (size_t s = 0; s < a->n_steps; s++) {
        const struct pipeline_step *st = &a->steps[s];
        CHECK((st->run.s != NULL) != (st->uses.kind != PIPELINE_USES_NONE));
        CHECK(!st->run.s || st->shell.s);
        CHECK(st->skipped || st->uses.kind == PIPELINE_USES_NONE ||
              st->uses.builtin != PIPELINE_BUILTIN_NONE);
        CHECK(st->uses.builtin != PIPELINE_BUILTIN_LOCAL_ACTION ||
              (st->uses.path && strncmp(st->uses.path, "./", 2) == 0));
    }
}

static struct pipeline_action *load(const uint8_t *data, size_t size, unsigned flags)
{
    struct pipeline_load_opts o = {flags};
    struct pipeline_action *a = NULL;
    struct sw_err err = {0};
    int rc = pipeline_action_parse((const char *)data, size, NAME, &o, &a, &err);

    CHECK(a != NULL);
    CHECK(rc == 0 ? a->n_errors == 0 : rc == PIPELINE_ELOAD && a->n_errors > 0);
    CHECK(rc == 0 || strncmp(err.msg, NAME ":", strlen(NAME) + 1) == 0 ||
          strstr(err.msg, "errors, the first: " NAME ":") != NULL);
    return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lines l;
    struct pipeline_action *a = load(data, size, 0), *b = load(data, size, 0);
    struct pipeline_action *s = load(data, size, PIPELINE_LOAD_SKIP_UNSUPPORTED);

    lines_of(data, size, &l);
    check_diags(a->errors, a->n_errors, &l);
    check_diags(a->warnings, a->n_warnings, &l);
    check_diags(s->errors, s->n_errors, &l);
    check_diags(s->warnings, s->n_warnings, &l);
    check_same(a, b);
    CHECK(s->n_errors + s->n_errors_dropped <= a->n_errors + a->n_errors_dropped);
    CHECK(s->n_warnings >= a->n_warnings);
    check_model(a);
    check_model(s);
    free(l.chars);
    pipeline_action_free(a);
    pipeline_action_free(b);
    pipeline_action_free(s);
    return 0;
}

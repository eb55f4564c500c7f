/*
 * libFuzzer target for the `${{ }}` expression language (src/pipeline/): every input is an
 * expression someone else wrote into a workflow. Each is parsed (allowing every name, and
 * allowing none), evaluated on an empty context, and also read as a template string and as an
 * `if:` condition. Beyond the sanitizers (the input is not NUL-terminated, so any read past it
 * is caught), it checks what callers rely on: a syntax error carries GitHub's message and an
 * offset within the input, and a position in the message within its characters; parsing and
 * evaluating are deterministic; restricting the names never turns an error into a success; a
 * condition is 0 or 1; and a value written as JSON (toJSON's text) is valid JSON that reads
 * back, through fromJSON's loader, to a value written the same way.
 */
#include "fuzz.h"
#include "pipeline/pipeline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outcome {
    int rc;
    size_t at;
    char msg[1024];
    char *text; /* the value as text, then as JSON; NULL after an error */
    char *json;
    size_t text_len, json_len;
    enum pipeline_kind kind;
};

/* Characters of s[0..n) are at least its bytes that do not continue a UTF-8
 * sequence, and at most its bytes. */
static size_t lead_bytes(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static void check_syntax_error(const char *src, size_t len, int rc, size_t at,
                               const struct sw_err *err)
{
    static const char mark[] = ". Located at position ";
    int found = 0;

    CHECK(rc == PIPELINE_ESYNTAX);
    CHECK(at <= len);
    CHECK(err->msg[0] != '\0');
    if (len > PIPELINE_EXPR_MAX_LENGTH) {
        CHECK(strcmp(err->msg, "Exceeded max expression length 21000") == 0);
        return;
    }
    /* "... Located at position N within expression: ...", N - 1 counting the
     * characters before the fault. The quoted token and the expression echoed
     * may hold the same words, so one of the marks must be consistent. */
    for (const char *p = strstr(err->msg, mark); p && !found; p = strstr(p + 1, mark)) {
        char *end;
        unsigned long n = strtoul(p + sizeof(mark) - 1, &end, 10);
        found = n >= 1 && n - 1 <= at && n - 1 >= lead_bytes(src, at) &&
                strncmp(end, " within expression: ", 20) == 0;
    }
    CHECK(found);
}

static void run(const char *src, size_t len, const char *const *names, struct outcome *o)
{
    struct pipeline_expr_opts opts = {names, 0};
    struct pipeline_expr_ctx ctx = {0};
    struct pipeline_expr *e = NULL;
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    struct sw_err err = {0};

    memset(o, 0, sizeof(*o));
    o->at = SIZE_MAX;
    o->rc = pipeline_expr_parse(src, len, &opts, &e, &o->at, &err);
    if (o->rc) {
        CHECK(e == NULL);
        check_syntax_error(src, len, o->rc, o->at, &err);
        memcpy(o->msg, err.msg, sizeof(o->msg));
        return;
    }
    CHECK(e != NULL);
    o->rc = pipeline_expr_eval(e, &ctx, &v, &err);
    if (o->rc) {
        CHECK(o->rc == PIPELINE_EEVAL || o->rc < 0);
        CHECK(err.msg[0] != '\0');
        CHECK(v.kind == PIPELINE_NULL && v.str == NULL && v.json == NULL);
        memcpy(o->msg, err.msg, sizeof(o->msg));
    } else {
        o->kind = v.kind;
        o->text = pipeline_value_to_string(&v, &o->text_len);
        o->json = pipeline_value_to_json_text(&v, &o->json_len);
        CHECK(strlen(o->json) == o->json_len); /* JSON text escapes NUL */
        CHECK(pipeline_value_truthy(&v) == 0 || pipeline_value_truthy(&v) == 1);
    }
    pipeline_value_clear(&v);
    pipeline_expr_free(e);
}

static void outcome_free(struct outcome *o)
{
    free(o->text);
    free(o->json);
}

/* toJSON's text reads back as JSON and is written the same way again. */
static void check_round_trip(const struct outcome *o)
{
    json_error_t jerr;
    json_t *j = pipeline_json_load(o->json, o->json_len, &jerr);
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    size_t len;
    char *again;

    CHECK(j != NULL);
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        v.kind = json_is_array(j) ? PIPELINE_ARRAY : PIPELINE_OBJECT;
        v.json = json_incref(j);
        break;
    case JSON_STRING:
        v.kind = PIPELINE_STRING;
        v.len = json_string_length(j);
        v.str = malloc(v.len + 1);
        CHECK(v.str != NULL);
        memcpy(v.str, json_string_value(j), v.len + 1);
        break;
    case JSON_REAL:
    case JSON_INTEGER:
        v.kind = PIPELINE_NUMBER;
        v.number = json_number_value(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v.kind = PIPELINE_BOOLEAN;
        v.boolean = json_is_true(j);
        break;
    default:
        break;
    }
    again = pipeline_value_to_json_text(&v, &len);
    CHECK(len == o->json_len && memcmp(again, o->json, len) == 0);
    free(again);
    pipeline_value_clear(&v);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    static const char *const none[] = {NULL};
    struct outcome any, again, restricted;
    struct sw_err err = {0};
    size_t at = SIZE_MAX;
    int rc, result = -1;

    run(src, size, NULL, &any);
    run(src, size, NULL, &again);
    /* deterministic: the same result, or the same error at the same place */
    CHECK(any.rc == again.rc && any.at == again.at && strcmp(any.msg, again.msg) == 0);
    CHECK(any.kind == again.kind && any.text_len == again.text_len &&
          (!any.text || memcmp(any.text, again.text, any.text_len) == 0));
    CHECK(any.json_len == again.json_len &&
          (!any.json || memcmp(any.json, again.json, any.json_len) == 0));
    /* fewer names can only refuse more */
    run(src, size, none, &restricted);
    if (restricted.rc == 0)
        CHECK(any.rc == 0);
    if (any.json)
        check_round_trip(&any);
    outcome_free(&any);
    outcome_free(&again);
    outcome_free(&restricted);

    /* the same bytes as a template and as a condition */
    rc = pipeline_expr_template_check(src, size, NULL, &at, &err);
    CHECK(rc == 0 || (rc == PIPELINE_ESYNTAX && at <= size));
    at = SIZE_MAX;
    rc = pipeline_expr_condition(src, size, NULL, NULL, &result, &at, &err);
    CHECK(rc == 0 ? result == 0 || result == 1 : at <= size);
    return 0;
}

/* The runner's small evaluations: a workflow's value (a template or plain
 * text) into text, JSON or an object of strings, with the contexts a caller
 * hands over; and the names the record keeps, cleaned and masked, since the
 * record is read without masks. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 1000 /* job and step names kept in the record */

/* A name fit for the record: control characters become spaces, bounded. */
static char *clean_name(const char *s)
{
    struct buf b = BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && b.len < NAME_MAX_BYTES;
         p++)
        buf_add(&b, (*p < 0x20 || *p == 0x7f) ? " " : (const char *)p, 1);
    buf_add(&b, "", 0);
    char *out = buf_detach(&b, NULL);
    if (!utf8_valid(out, 1)) {
        free(out);
        return xstrdup("job");
    }
    return out;
}

/* clean_name of s with every mask replaced by "***": names go into the
 * record, which is not masked when read. */
char *runner_masked_name(const struct pipeline_step_list *masks, const char *s)
{
    struct buf b = BUF_INIT;
    pipeline_step_mask(masks, s ? s : "", s ? strlen(s) : 0, &b);
    buf_add(&b, "", 1);
    char *out = clean_name(b.data);
    buf_free(&b);
    return out;
}

/* A JSON value as GitHub shows it in a leg's name or as text. */
void runner_json_text(struct buf *b, const json_t *v)
{
    if (json_is_string(v))
        buf_add(b, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        buf_addf(b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == (double)(long long)d && d > -1e15 && d < 1e15)
            buf_addf(b, "%lld", (long long)d);
        else
            buf_addf(b, "%.15g", d);
    } else if (json_is_true(v))
        buf_adds(b, "true");
    else if (json_is_false(v))
        buf_adds(b, "false");
    else if (json_is_object(v) || json_is_array(v)) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_adds(b, t ? t : "");
        free(t);
    }
}

char *pipeline_runner_leg_name(const char *name, const json_t *leg)
{
    struct buf b = BUF_INIT;
    const char *k;
    json_t *v;
    int first = 1;

    buf_adds(&b, name);
    if (json_is_object(leg) && json_object_size(leg) > 0) {
        buf_adds(&b, " (");
        json_object_foreach((json_t *)leg, k, v)
        {
            if (!first)
                buf_adds(&b, ", ");
            first = 0;
            runner_json_text(&b, v);
        }
        buf_adds(&b, ")");
    }
    buf_add(&b, "", 0);
    return buf_detach(&b, NULL);
}

/* Evaluates a template (or takes the text as is) into a string (caller frees). */
int runner_eval_text(const struct pipeline_val *v, const json_t *values, enum pipeline_status st,
                     const char *workspace, char **out, struct sw_err *err)
{
    struct pipeline_expr_ctx ctx = {values, st, 0, PIPELINE_STATUS_NONE, workspace, 0};
    struct pipeline_value val = PIPELINE_VALUE_INIT;

    *out = NULL;
    if (!v->s) {
        *out = xstrdup("");
        return 0;
    }
    if (!v->expr) {
        *out = xstrdup(v->s);
        return 0;
    }
    int rc = pipeline_expr_template(v->s, strlen(v->s), NULL, &ctx, &val, NULL, err);
    if (rc < 0)
        return sw_err_prefix(err, "line %zu: ", v->line);
    *out = pipeline_value_to_string(&val, NULL);
    pipeline_value_clear(&val);
    return 0;
}

/* Evaluates a template into a JSON value (caller decrefs). */
int runner_eval_json(const char *s, const json_t *values, json_t **out, struct sw_err *err)
{
    struct pipeline_expr_ctx ctx = {values, PIPELINE_STATUS_NONE, 0, PIPELINE_STATUS_NONE, NULL, 0};
    struct pipeline_value val = PIPELINE_VALUE_INIT;
    int rc = pipeline_expr_template(s, strlen(s), NULL, &ctx, &val, NULL, err);
    if (rc < 0)
        return rc;
    *out = pipeline_value_to_json(&val);
    pipeline_value_clear(&val);
    return 0;
}

/* A mapping (env, outputs) evaluated into an object of strings, added to obj. */
int runner_eval_map(const struct pipeline_map *m, const json_t *values, enum pipeline_status st,
                    const char *workspace, json_t *obj, struct sw_err *err)
{
    if (m->expr.s) {
        json_t *v = NULL;
        int rc = runner_eval_json(m->expr.s, values, &v, err);
        if (rc < 0)
            return rc;
        if (!json_is_object(v)) {
            json_decref(v);
            return sw_err_set(err, PIPELINE_EEVAL, "line %zu: expected a mapping", m->expr.line);
        }
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            struct buf b = BUF_INIT;
            runner_json_text(&b, x);
            buf_add(&b, "", 0);
            json_object_set_new(obj, k, json_string(b.data));
            buf_free(&b);
        }
        json_decref(v);
        return 0;
    }
    for (size_t i = 0; i < m->n; i++) {
        char *s = NULL;
        int rc = runner_eval_text(&m->items[i].val, values, st, workspace, &s, err);
        if (rc < 0)
            return rc;
        json_t *js = utf8_valid(s, 0) ? json_string(s) : json_string("");
        json_object_set_new(obj, m->items[i].key, js);
        free(s);
    }
    return 0;
}

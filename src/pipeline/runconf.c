/* The runner's configuration file, .slipway/runner.yml: the labels runs-on is
 * matched against, what to do with steps slipway cannot run, and how many jobs
 * run at once. The idea: the file only says what it sets (every field has a
 * "not given" value), so the command line can override it key by key, and its
 * schema is closed: an unknown key, a wrong type or a bad label is an error at
 * its FILE:LINE:COL, never a silent default. */
#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 100
#define LABELS_MAX 100
#define JOBS_MAX 64

int pipeline_runner_label_valid(const char *label)
{
    /* A label is one word as GitHub shows it: printable, no blank or comma
     * (runs-on lists are written with both), not empty. */
    if (!label || !*label || !text_valid(label, LABEL_MAX, 0))
        return 0;
    for (const char *p = label; *p; p++)
        if (*p == ' ' || *p == ',' || *p == '\t')
            return 0;
    return 1;
}

static int want_labels(struct pipeline_runner_config *c, const struct yaml_node *v,
                       struct sw_err *err)
{
    if (v->kind != YAML_NODE_SEQ)
        return yaml_err(err, v, "labels: expected a list of labels, such as [self-hosted, linux]");
    if (v->len == 0)
        return yaml_err(err, v, "labels: expected at least one label");
    if (v->len > LABELS_MAX)
        return yaml_err(err, v, "labels: at most %d labels", LABELS_MAX);
    c->labels = xcalloc(v->len + 1, sizeof(*c->labels));
    for (size_t i = 0; i < v->len; i++) {
        const char *s = yaml_scalar(v->items[i]);
        if (!s || !pipeline_runner_label_valid(s))
            return yaml_err(err, v->items[i],
                            "labels: expected a label (1 to %d printable characters, no blank or "
                            "comma), got '%s'",
                            LABEL_MAX, s ? s : "(not a scalar)");
        c->labels[i] = xstrdup(s);
    }
    return 0;
}

int pipeline_runner_config_load(const char *path, struct pipeline_runner_config *out,
                                struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    struct pipeline_runner_config c = {NULL, -1, 0};
    struct yaml_limits lim = {64 << 10, 1000, 8, 4096};
    int rc = yaml_doc_load(path, &lim, &doc, err);

    *out = c;
    if (rc == SW_ENOTFOUND) {
        *err = (struct sw_err){0};
        return 0;
    }
    if (rc < 0)
        return rc;
    const struct yaml_node *root = doc->root;
    if (yaml_is_null(root))
        goto out;
    if (root->kind != YAML_NODE_MAP) {
        rc = yaml_err(err, root, "expected a mapping of settings (labels, unsupported, jobs)");
        goto out;
    }
    for (size_t i = 0; i < root->len && rc == 0; i++) {
        const struct yaml_node *k = root->pairs[i].key, *v = root->pairs[i].value;
        const char *s = yaml_scalar(v);
        if (!strcmp(k->str, "labels"))
            rc = want_labels(&c, v, err);
        else if (!strcmp(k->str, "unsupported")) {
            if (s && !strcmp(s, "skip"))
                c.unsupported = 1;
            else if (s && !strcmp(s, "error"))
                c.unsupported = 0;
            else
                rc = yaml_err(err, v, "unsupported: expected skip or error, got '%s'",
                              s ? s : "(not a scalar)");
        } else if (!strcmp(k->str, "jobs")) {
            int64_t n = 0;
            if (yaml_int(v, 1, JOBS_MAX, &n) < 0)
                rc = yaml_err(err, v, "jobs: expected a whole number from 1 to %d, got '%s'",
                              JOBS_MAX, s ? s : "(not a scalar)");
            c.jobs = (int)n;
        } else
            /* the key is what is wrong: point at it */
            rc =
                yaml_err(err, k, "unknown key '%s' (expected labels, unsupported or jobs)", k->str);
    }
out:
    yaml_doc_free(doc);
    if (rc < 0)
        pipeline_runner_config_free(&c);
    else
        *out = c;
    return rc;
}

void pipeline_runner_config_free(struct pipeline_runner_config *c)
{
    for (size_t i = 0; c->labels && c->labels[i]; i++)
        free(c->labels[i]);
    free(c->labels);
    c->labels = NULL;
}

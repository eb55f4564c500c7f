/*
 * Workflow files: the loader's entry point, the top-level keys, freeing, and
 * the trigger decision for a push.
 *
 * The one idea: loading never stops at the first fault. The YAML layer
 * refuses what is not YAML (and duplicate keys) with one error; after that,
 * every key of the tree is read against GitHub's workflow schema
 * (actions/languageservices' workflow-v1.0.json: which keys, which types,
 * which contexts each expression may name) and every fault is recorded at
 * its file:line:col, so one `workflow check` lists them all. The model keeps
 * no pointer into the tree: the document is freed before returning.
 */
#include "pipeline/internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const n_giv[] = {"github", "inputs", "vars", NULL};
static const char *const n_givs[] = {"github", "inputs", "vars", "secrets", NULL};

static const struct wf_ctx ctx_run_name = {n_giv,
                                           PIPELINE_EXPR_NO_STATUS | PIPELINE_EXPR_NO_HASHFILES};
static const struct wf_ctx ctx_env = {n_givs, PIPELINE_EXPR_NO_STATUS | PIPELINE_EXPR_NO_HASHFILES};

/* A tag other than YAML's own (!!str...) is almost always an `if: !expr`
 * that YAML read as the tag "!expr": GitHub refuses it too. */
void wf_check_tags(struct wf_ld *ld, const struct yaml_node *n, int depth)
{
    if (depth > PIPELINE_WF_MAX_DEPTH)
        return;
    if (n->tag && !str_starts_with(n->tag, "tag:yaml.org,2002:"))
        wf_error(ld, n,
                 "'%s' is read by YAML as a tag: write an expression that starts with '!' "
                 "inside ${{ }} or quote the value",
                 n->tag);
    for (size_t i = 0; n->kind == YAML_NODE_SEQ && i < n->len; i++)
        wf_check_tags(ld, n->items[i], depth + 1);
    for (size_t i = 0; n->kind == YAML_NODE_MAP && i < n->len; i++)
        wf_check_tags(ld, n->pairs[i].value, depth + 1);
}

void wf_load_defaults(struct wf_ld *ld, const struct yaml_node *n, const struct wf_ctx *c,
                      struct pipeline_defaults *d)
{
    static const char *const keys[] = {"run", NULL};
    static const char *const run_keys[] = {"shell", "working-directory", NULL};
    const struct yaml_node *run;

    if (!n || wf_keys(ld, n, "defaults", keys))
        return;
    if (!(run = yaml_map_get(n, "run")) || wf_keys(ld, run, "defaults.run", run_keys))
        return;
    wf_val(ld, yaml_map_get(run, "shell"), WF_TEXT, c, &d->shell);
    wf_val(ld, yaml_map_get(run, "working-directory"), WF_TEXT, c, &d->working_directory);
}

void wf_load_concurrency(struct wf_ld *ld, const struct yaml_node *n, const struct wf_ctx *c,
                         struct pipeline_concurrency *cc)
{
    static const char *const keys[] = {"group", "cancel-in-progress", NULL};

    if (!n)
        return;
    if (n->kind == YAML_NODE_SCALAR) {
        wf_val(ld, n, WF_TEXT, c, &cc->group);
        return;
    }
    if (wf_keys(ld, n, "concurrency", keys))
        return;
    if (!yaml_map_get(n, "group"))
        wf_error(ld, n, "concurrency needs a group");
    wf_val(ld, yaml_map_get(n, "group"), WF_TEXT, c, &cc->group);
    wf_val(ld, yaml_map_get(n, "cancel-in-progress"), WF_BOOL, c, &cc->cancel_in_progress);
}

/* permissions: accepted and ignored, but checked as GitHub does. */
void wf_check_permissions(struct wf_ld *ld, const struct yaml_node *n)
{
    static const char *const scopes[] = {"actions",
                                         "attestations",
                                         "checks",
                                         "contents",
                                         "deployments",
                                         "discussions",
                                         "id-token",
                                         "issues",
                                         "models",
                                         "packages",
                                         "pages",
                                         "pull-requests",
                                         "repository-projects",
                                         "security-events",
                                         "statuses",
                                         "artifact-metadata",
                                         NULL};

    if (!n)
        return;
    if (n->kind == YAML_NODE_SCALAR) {
        if (strcmp(n->str, "read-all") != 0 && strcmp(n->str, "write-all") != 0)
            wf_error(ld, n, "permissions must be read-all, write-all or a mapping, not '%s'",
                     n->str);
        return;
    }
    if (wf_keys(ld, n, "permissions", scopes))
        return;
    for (size_t i = 0; i < n->len; i++) {
        const struct yaml_node *v = n->pairs[i].value;
        const char *s = yaml_scalar(v);
        if (!s || (strcmp(s, "read") && strcmp(s, "write") && strcmp(s, "none")))
            wf_error(ld, v, "permission '%s' must be read, write or none", n->pairs[i].key->str);
    }
}

static void load_root(struct wf_ld *ld, const struct yaml_node *root)
{
    static const char *const keys[] = {"name",        "run-name",    "on",   "env", "defaults",
                                       "concurrency", "permissions", "jobs", NULL};
    struct pipeline_workflow *wf = ld->wf;

    if (wf_keys(ld, root, "a workflow", keys))
        return;
    wf_check_tags(ld, root, 0);
    wf_val(ld, yaml_map_get(root, "name"), WF_TEXT, NULL, &wf->name);
    wf_val(ld, yaml_map_get(root, "run-name"), WF_TEXT, &ctx_run_name, &wf->run_name);
    if (!yaml_map_get(root, "on"))
        wf_error(ld, root, "a workflow needs on: (the events that trigger it)");
    else
        wf_load_on(ld, yaml_map_get(root, "on"));
    wf_map(ld, yaml_map_get(root, "env"), "env", &ctx_env, 0, &wf->env);
    wf_load_defaults(ld, yaml_map_get(root, "defaults"), NULL, &wf->defaults);
    wf_load_concurrency(ld, yaml_map_get(root, "concurrency"), &ctx_run_name, &wf->concurrency);
    wf_check_permissions(ld, yaml_map_get(root, "permissions"));
    if (!yaml_map_get(root, "jobs"))
        wf_error(ld, root, "a workflow needs jobs:");
    else
        wf_load_jobs(ld, yaml_map_get(root, "jobs"));
}

/* "NAME:LINE:COL: msg" from the YAML layer, kept as one diagnostic. */
void wf_yaml_failed(struct wf_ld *ld, const char *name, const struct sw_err *err)
{
    const char *p = err->msg;
    size_t nl = strlen(name), line = 1, col = 1;
    char *end;

    if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
        line = strtoul(p + nl + 1, &end, 10);
        if (*end == ':')
            col = strtoul(end + 1, &end, 10);
        if (*end == ':' && end[1] == ' ')
            p = end + 2;
    }
    /* `if: !contains(...)`: YAML reads "!contains(..." as a tag */
    wf_diag(ld, 0, line ? line : 1, col ? col : 1, "%s%s", p,
            strstr(p, "while scanning a tag")
                ? " (a value that starts with '!' is a YAML tag: write such an expression "
                  "inside ${{ }})"
                : "");
}

/* Errors in file order; those at one position in the order they were found. */
void wf_sort_diags(struct pipeline_diag *d, size_t n)
{
    /* insertion sort: stable, and n is at most PIPELINE_WF_MAX_ERRORS */
    for (size_t i = 1; i < n; i++) {
        struct pipeline_diag t = d[i];
        size_t j = i;
        while (j > 0 &&
               (d[j - 1].line > t.line || (d[j - 1].line == t.line && d[j - 1].col > t.col))) {
            d[j] = d[j - 1];
            j--;
        }
        d[j] = t;
    }
}

/* Line starts, with libyaml's line breaks (LF, CR, CR LF, NEL, LS, PS), so
 * that line numbers of the tree index them. */
void wf_index_lines(struct wf_ld *ld)
{
    ld->lines = xcalloc(ld->len + 1, sizeof(*ld->lines));
    ld->n_lines = 0;
    ld->lines[ld->n_lines++] = 0;
    for (size_t i = 0, b; i < ld->len; i++)
        if ((b = wf_break(ld->data, ld->len, i))) {
            i += b - 1;
            ld->lines[ld->n_lines++] = i + 1;
        }
}

int pipeline_workflow_parse(const char *data, size_t len, const char *name,
                            const struct pipeline_load_opts *opts, struct pipeline_workflow **out,
                            struct sw_err *err)
{
    const struct yaml_limits lim = {PIPELINE_WF_MAX_BYTES, 100000, PIPELINE_WF_MAX_DEPTH,
                                    256 * 1024};
    struct pipeline_workflow *wf = xcalloc(1, sizeof(*wf));
    struct wf_ld ld = {wf, data, len, NULL, 0, opts ? opts->flags : 0};
    struct yaml_doc *doc = NULL;
    struct sw_err yerr = {0};

    wf->file = xstrdup(name);
    *out = wf;
    if (yaml_doc_parse(data, len, name, &lim, &doc, &yerr) != 0) {
        wf_yaml_failed(&ld, name, &yerr);
    } else {
        wf_index_lines(&ld);
        load_root(&ld, doc->root);
    }
    yaml_doc_free(doc);
    free(ld.lines);
    wf_sort_diags(wf->errors, wf->n_errors);
    wf_sort_diags(wf->warnings, wf->n_warnings);
    if (!wf->n_errors)
        return 0;
    sw_err_set(err, PIPELINE_ELOAD, "%s", wf->errors[0].text);
    if (wf->n_errors + wf->n_errors_dropped > 1)
        sw_err_prefix(err, "%zu errors, the first", wf->n_errors + wf->n_errors_dropped);
    return PIPELINE_ELOAD;
}

int pipeline_workflow_load(const char *path, const struct pipeline_load_opts *opts,
                           struct pipeline_workflow **out, struct sw_err *err)
{
    char *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = file_read_all(path, &data, &len, err)))
        return rc;
    rc = pipeline_workflow_parse(data, len, path, opts, out, err);
    free(data);
    return rc;
}

void pipeline_workflow_free(struct pipeline_workflow *wf)
{
    if (!wf)
        return;
    free(wf->file);
    wf_val_free(&wf->name);
    wf_val_free(&wf->run_name);
    wf_on_free(&wf->on);
    wf_map_free(&wf->env);
    wf_val_free(&wf->defaults.shell);
    wf_val_free(&wf->defaults.working_directory);
    wf_val_free(&wf->concurrency.group);
    wf_val_free(&wf->concurrency.cancel_in_progress);
    for (size_t i = 0; i < wf->n_jobs; i++)
        wf_job_free(&wf->jobs[i]);
    free(wf->jobs);
    for (size_t i = 0; i < wf->n_errors; i++)
        free(wf->errors[i].text);
    free(wf->errors);
    for (size_t i = 0; i < wf->n_warnings; i++)
        free(wf->warnings[i].text);
    free(wf->warnings);
    free(wf);
}

const struct pipeline_job *pipeline_workflow_job(const struct pipeline_workflow *wf, const char *id)
{
    for (size_t i = 0; i < wf->n_jobs; i++)
        if (strcmp(wf->jobs[i].id, id) == 0)
            return &wf->jobs[i];
    return NULL;
}

/* ---- triggers ------------------------------------------------------------------------ */

static int push_branch(const struct pipeline_push *p, const char *name, const char *const *paths,
                       size_t n)
{
    int ok = p->branches          ? pipeline_filter_ref(p->branches, 0, name)
             : p->branches_ignore ? pipeline_filter_ref(p->branches_ignore, 1, name)
                                  /* only tag filters: branch pushes do not trigger */
                                  : !(p->tags || p->tags_ignore);
    if (!ok)
        return 0;
    /* branches and paths must both let the push through */
    if (p->paths)
        return pipeline_filter_paths(p->paths, 0, paths, n);
    if (p->paths_ignore)
        return pipeline_filter_paths(p->paths_ignore, 1, paths, n);
    return 1;
}

/* Paths are not evaluated for tag pushes (GitHub's documented rule). */
static int push_tag(const struct pipeline_push *p, const char *name)
{
    if (p->tags)
        return pipeline_filter_ref(p->tags, 0, name);
    if (p->tags_ignore)
        return pipeline_filter_ref(p->tags_ignore, 1, name);
    return !(p->branches || p->branches_ignore);
}

int pipeline_workflow_triggered(const struct pipeline_workflow *wf, const char *event,
                                const char *ref, const char *const *paths, size_t n)
{
    if (!wf || !event)
        return 0;
    if (strcmp(event, "workflow_dispatch") == 0)
        return wf->on.dispatch;
    if (strcmp(event, "push") != 0 || !wf->on.push.present || !ref)
        return 0;
    if (str_starts_with(ref, "refs/heads/") && ref[11])
        return push_branch(&wf->on.push, ref + 11, paths, n);
    if (str_starts_with(ref, "refs/tags/") && ref[10])
        return push_tag(&wf->on.push, ref + 10);
    return 0;
}

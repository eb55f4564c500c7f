/* Reusable workflows: what a job that calls a local reusable workflow (`uses:
 * ./.github/workflows/x.yml`) hands to it and gets back. The runner expands
 * such a job, once its needs are done, into the called workflow's jobs; this
 * file reads the called file and applies GitHub's rules at the boundary: the
 * caller's `with` is typed against on.workflow_call.inputs (a boolean input
 * takes a Boolean, not the text "true"), unknown and missing inputs and
 * secrets are errors of one line, and the outputs are expressions over the
 * called jobs (the `jobs` context). */
#include "pipeline/call_internal.h"
#include "pipeline/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *call_file(const struct pipeline_uses *u)
{
    const char *p = u->path ? u->path : "";
    while (str_starts_with(p, "./"))
        p += 2;
    return xstrdup(p);
}

/* Loads data[0..len) as the called workflow file: it must load without
 * error and have on.workflow_call. */
static int call_parse(const char *data, size_t len, const char *file, unsigned flags,
                      struct pipeline_workflow **out, struct sw_err *err)
{
    struct pipeline_load_opts lo = {flags};
    struct pipeline_workflow *wf = NULL;

    *out = NULL;
    if (pipeline_workflow_parse(data, len, file, &lo, &wf, err) < 0) {
        /* err holds the first error, and how many more */
        pipeline_workflow_free(wf);
        return PIPELINE_ELOAD;
    }
    if (!wf->on.call) {
        pipeline_workflow_free(wf);
        return sw_err_set(err, PIPELINE_ELOAD,
                          "%s is not a reusable workflow: its on: has no workflow_call", file);
    }
    *out = wf;
    return 0;
}

int call_load(const char *repo, const char *sha, const char *file, unsigned flags,
              struct pipeline_workflow **out, struct sw_err *err)
{
    struct proc_opts po = {0};
    struct proc_result pr = {0};
    char *spec = NULL;
    int rc;

    *out = NULL;
    if (!repo)
        return sw_err_set(err, SW_EINVAL, "%s: this runner has no repository to read it from",
                          file);
    /* file comes from a loaded uses: (./.github/workflows/NAME.yml, no '..'):
     * never an option of git */
    if (!*file || file[0] == '-' || strchr(file, '\n'))
        return sw_err_set(err, SW_EINVAL, "'%s' is not a workflow file", file);
    spec = xasprintf("%s:%s", sha, file);
    const char *argv[] = {"git", "-C", repo, "show", spec, NULL};
    po.argv = argv;
    po.max_output = PIPELINE_WF_MAX_BYTES + 1;
    if ((rc = proc_run(&po, &pr, err)) < 0)
        goto out;
    if (!(pr.exited && pr.exit_code == 0)) {
        rc = sw_err_set(err, SW_ENOTFOUND, "%s is not in the repository at %s", file, sha);
        goto out;
    }
    if (pr.out_truncated) {
        rc = sw_err_set(err, PIPELINE_ELOAD, "%s: larger than %d bytes", file,
                        PIPELINE_WF_MAX_BYTES);
        goto out;
    }
    rc = call_parse(pr.out, pr.out_len, file, flags, out, err);
out:
    proc_result_free(&pr);
    free(spec);
    return rc;
}

static const char *type_name(enum pipeline_input_type t)
{
    return t == PIPELINE_INPUT_BOOLEAN  ? "Boolean"
           : t == PIPELINE_INPUT_NUMBER ? "Number"
                                        : "String";
}

/* A number as YAML writes it plainly: decimal, optional sign and exponent. */
static int number_text(const char *s, double *d)
{
    char *end;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return 0;
    errno = 0;
    *d = strtod(s, &end);
    return !errno && *end == 0 && isfinite(*d);
}

/* A boolean as YAML's core schema writes one plainly (yaml_bool's words). */
static int bool_text(const char *s, int *b)
{
    static const char *const words[] = {"false", "False", "FALSE", "true", "True", "TRUE"};
    for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
        if (strcmp(s, words[i]) == 0) {
            *b = i >= 3;
            return 1;
        }
    return 0;
}

int call_input_value(const struct pipeline_input *in, const struct pipeline_value *v, int literal,
                     json_t **out, struct sw_err *err)
{
    const char *s = v->kind == PIPELINE_STRING && v->str ? v->str : "";
    double d;
    int yes;

    *out = NULL;
    switch (in->type) {
    case PIPELINE_INPUT_BOOLEAN:
        if (v->kind == PIPELINE_BOOLEAN)
            *out = json_boolean(v->boolean);
        else if (literal && v->kind == PIPELINE_STRING && bool_text(s, &yes))
            *out = json_boolean(yes);
        break;
    case PIPELINE_INPUT_NUMBER:
        if (v->kind == PIPELINE_NUMBER && isfinite(v->number))
            *out = json_real(v->number);
        else if (literal && v->kind == PIPELINE_STRING && number_text(s, &d))
            *out = json_real(d);
        break;
    default:
        if (v->kind == PIPELINE_NULL)
            *out = json_string("");
        else if (v->kind != PIPELINE_ARRAY && v->kind != PIPELINE_OBJECT) {
            char *t = pipeline_value_to_string(v, NULL);
            /* the inputs context is JSON text: bytes that are not UTF-8 go */
            *out = utf8_valid(t, 0) ? json_string(t) : json_string("");
            free(t);
        }
        break;
    }
    if (*out)
        return 0;
    char *shown = v->kind == PIPELINE_ARRAY    ? xstrdup("Array")
                  : v->kind == PIPELINE_OBJECT ? xstrdup("Object")
                                               : pipeline_value_to_string(v, NULL);
    struct buf b = BUF_INIT;
    /* one line, bounded: the value may be anything a job printed */
    for (const char *p = shown; *p && b.len < 200; p++)
        buf_add(&b, (*p == '\n' || *p == '\r') ? " " : p, 1);
    buf_add(&b, "", 0);
    sw_err_set(err, PIPELINE_EEVAL, "input '%s': Unexpected type of value '%s', expected type: %s.",
               in->name, b.data, type_name(in->type));
    buf_free(&b);
    free(shown);
    return PIPELINE_EEVAL;
}

/* Evaluates a with: or secrets: value (a template, or text as is). */
static int eval_val(const struct pipeline_val *val, const json_t *values,
                    struct pipeline_value *out, struct sw_err *err)
{
    struct pipeline_expr_ctx ctx = {values, PIPELINE_STATUS_NONE, 0, PIPELINE_STATUS_NONE, NULL, 0};

    if (!val->expr) {
        out->kind = PIPELINE_STRING;
        out->str = xstrdup(val->s ? val->s : "");
        out->len = strlen(out->str);
        return 0;
    }
    int rc = pipeline_expr_template(val->s, strlen(val->s), NULL, &ctx, out, NULL, err);
    return rc < 0 ? sw_err_prefix(err, "line %zu: ", val->line) : 0;
}

int call_inputs(const struct pipeline_workflow *called, const struct pipeline_job *caller,
                const json_t *values, json_t **out, struct sw_err *err)
{
    const struct pipeline_on *on = &called->on;
    json_t *in = json_object();
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; i < caller->with.n; i++) {
        const struct pipeline_kv *kv = &caller->with.items[i];
        const struct pipeline_input *decl = NULL;
        for (size_t k = 0; k < on->n_call_inputs && !decl; k++)
            if (strcmp(on->call_inputs[k].name, kv->key) == 0)
                decl = &on->call_inputs[k];
        if (!decl) {
            rc =
                sw_err_set(err, PIPELINE_EEVAL,
                           "Invalid input, %s is not defined in the referenced workflow.", kv->key);
            goto out;
        }
        struct pipeline_value v = PIPELINE_VALUE_INIT;
        json_t *x = NULL;
        if ((rc = eval_val(&kv->val, values, &v, err)) < 0 ||
            (rc = call_input_value(decl, &v, !kv->val.expr && !kv->val.quoted, &x, err)) < 0) {
            pipeline_value_clear(&v);
            goto out;
        }
        pipeline_value_clear(&v);
        json_object_set_new(in, decl->name, x);
    }
    for (size_t k = 0; k < on->n_call_inputs; k++) {
        const struct pipeline_input *decl = &on->call_inputs[k];
        if (json_object_get(in, decl->name))
            continue;
        if (decl->required) {
            rc = sw_err_set(err, PIPELINE_EEVAL,
                            "Input %s is required, but not provided while calling.", decl->name);
            goto out;
        }
        json_t *x = NULL;
        if (decl->def.s && decl->def.expr) {
            struct pipeline_value v = PIPELINE_VALUE_INIT;
            if ((rc = eval_val(&decl->def, values, &v, err)) < 0 ||
                (rc = call_input_value(decl, &v, 0, &x, err)) < 0) {
                pipeline_value_clear(&v);
                sw_err_prefix(err, "the default of ");
                goto out;
            }
            pipeline_value_clear(&v);
        } else if (decl->type == PIPELINE_INPUT_BOOLEAN)
            x = json_boolean(decl->def.s && decl->def.b);
        else if (decl->type == PIPELINE_INPUT_NUMBER)
            x = json_real(decl->def.s ? decl->def.n : 0);
        else
            x = json_string(decl->def.s && utf8_valid(decl->def.s, 0) ? decl->def.s : "");
        json_object_set_new(in, decl->name, x);
    }
    *out = in;
    in = NULL;
out:
    json_decref(in);
    return rc;
}

int call_secrets(const struct pipeline_workflow *called, const struct pipeline_job *caller,
                 const json_t *values, json_t **out, struct sw_err *err)
{
    const struct pipeline_on *on = &called->on;
    const json_t *mine = json_object_get(values, "secrets");
    json_t *s = json_object();
    int rc = 0;

    *out = NULL;
    if (caller->secrets_inherit) {
        if (json_is_object(mine))
            json_object_update(s, (json_t *)mine);
        goto done;
    }
    for (size_t i = 0; i < caller->secrets.n; i++) {
        const struct pipeline_kv *kv = &caller->secrets.items[i];
        int known = 0;
        for (size_t k = 0; k < on->n_call_secrets && !known; k++)
            known = strcmp(on->call_secrets[k].name, kv->key) == 0;
        if (!known) {
            rc = sw_err_set(err, PIPELINE_EEVAL,
                            "Invalid secret, %s is not defined in the referenced workflow.",
                            kv->key);
            goto out;
        }
        struct pipeline_value v = PIPELINE_VALUE_INIT;
        if ((rc = eval_val(&kv->val, values, &v, err)) < 0)
            goto out;
        char *t = pipeline_value_to_string(&v, NULL);
        pipeline_value_clear(&v);
        json_object_set_new(s, kv->key, json_string(utf8_valid(t, 0) ? t : ""));
        free(t);
    }
    for (size_t k = 0; k < on->n_call_secrets; k++)
        if (on->call_secrets[k].required && !json_object_get(s, on->call_secrets[k].name)) {
            rc = sw_err_set(err, PIPELINE_EEVAL,
                            "Secret %s is required, but not provided while calling.",
                            on->call_secrets[k].name);
            goto out;
        }
done:
    /* GitHub gives every workflow, called ones too, its token */
    if (!json_object_get(s, "GITHUB_TOKEN")) {
        const json_t *t = json_object_get(mine, "GITHUB_TOKEN");
        json_object_set_new(s, "GITHUB_TOKEN",
                            json_is_string(t) ? json_copy((json_t *)t) : json_string(""));
    }
    *out = s;
    s = NULL;
out:
    json_decref(s);
    return rc;
}

int call_outputs(const struct pipeline_workflow *called, const json_t *values, json_t *out,
                 struct sw_err *err)
{
    for (size_t i = 0; i < called->on.n_call_outputs; i++) {
        const struct pipeline_call_output *o = &called->on.call_outputs[i];
        struct pipeline_value v = PIPELINE_VALUE_INIT;
        if (!o->value.s)
            continue;
        if (eval_val(&o->value, values, &v, err) < 0)
            return sw_err_prefix(err, "output '%s': ", o->name);
        char *t = pipeline_value_to_string(&v, NULL);
        pipeline_value_clear(&v);
        json_object_set_new(out, o->name, json_string(utf8_valid(t, 0) ? t : ""));
        free(t);
    }
    return 0;
}

/* ---- workflow check ------------------------------------------------------------------------ */

/* The repository the file at path is in: the nearest directory, from the
 * file's own upward, holding .git or .github. NULL when there is none.
 * Caller frees. */
static char *repo_root(const char *path)
{
    char *dir = realpath(path, NULL);
    char *slash;

    if (!dir)
        return NULL;
    while ((slash = strrchr(dir, '/'))) {
        *slash = 0; /* "/a/b" -> "/a" -> "" (the root) */
        for (int i = 0; i < 2; i++) {
            struct stat st;
            char *p = xasprintf("%s/%s", dir, i ? ".github" : ".git");
            int found = lstat(p, &st) == 0;
            free(p);
            if (found) {
                if (!*dir) {
                    free(dir);
                    return xstrdup("/");
                }
                return dir;
            }
        }
    }
    free(dir);
    return NULL;
}

/* Reads file (from the repository at root) as the runner would at a
 * commit. SW_ENOTFOUND when it is not there. */
static int read_called(const char *root, const char *file, unsigned flags,
                       struct pipeline_workflow **out, struct sw_err *err)
{
    char *full = path_join(root, file), *data = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    *out = NULL;
    if (stat(full, &st) != 0) {
        rc = errno == ENOENT || errno == ENOTDIR
                 ? sw_err_set(err, SW_ENOTFOUND, "%s is not in the repository at %s", file, root)
                 : sw_err_sys(err, errno, "%s", full);
        goto out;
    }
    /* bounded before it is read: a FIFO or a huge file is no workflow */
    if (!S_ISREG(st.st_mode)) {
        rc = sw_err_set(err, PIPELINE_ELOAD, "%s is not a regular file", file);
        goto out;
    }
    if (st.st_size > PIPELINE_WF_MAX_BYTES) {
        rc = sw_err_set(err, PIPELINE_ELOAD, "%s: larger than %d bytes", file,
                        PIPELINE_WF_MAX_BYTES);
        goto out;
    }
    if ((rc = file_read_all(full, &data, &len, err)) < 0)
        goto out;
    rc = call_parse(data, len, file, flags, out, err);
out:
    free(data);
    free(full);
    return rc;
}

/* The faults of job's call of called that are known without running it:
 * with: entries not declared, literals of the wrong type, required inputs
 * not given, secrets not declared or required ones not passed. */
static void check_call(struct wf_ld *ld, const struct pipeline_job *job,
                       const struct pipeline_workflow *called)
{
    const struct pipeline_on *on = &called->on;
    const struct pipeline_val *at = &job->uses.raw;

    for (size_t i = 0; i < job->with.n; i++) {
        const struct pipeline_kv *kv = &job->with.items[i];
        const struct pipeline_input *decl = NULL;
        for (size_t k = 0; k < on->n_call_inputs && !decl; k++)
            if (strcmp(on->call_inputs[k].name, kv->key) == 0)
                decl = &on->call_inputs[k];
        if (!decl) {
            wf_diag(ld, 0, kv->line, kv->col,
                    "job %s: Invalid input, %s is not defined in the referenced workflow.", job->id,
                    kv->key);
            continue;
        }
        if (kv->val.expr) /* known only when the run makes the call */
            continue;
        struct pipeline_value v = PIPELINE_VALUE_INIT;
        struct sw_err err = {0};
        json_t *x = NULL;
        v.kind = PIPELINE_STRING;
        v.str = kv->val.s ? kv->val.s : (char *)"";
        v.len = strlen(v.str);
        if (call_input_value(decl, &v, !kv->val.quoted, &x, &err) < 0)
            wf_diag(ld, 0, kv->val.line, kv->val.col, "job %s: %s", job->id, err.msg);
        json_decref(x);
    }
    for (size_t k = 0; k < on->n_call_inputs; k++)
        if (on->call_inputs[k].required && !pipeline_map_get(&job->with, on->call_inputs[k].name))
            wf_diag(ld, 0, at->line, at->col,
                    "job %s: Input %s is required, but not provided while calling.", job->id,
                    on->call_inputs[k].name);
    if (job->secrets_inherit)
        return;
    for (size_t i = 0; i < job->secrets.n; i++) {
        const struct pipeline_kv *kv = &job->secrets.items[i];
        int known = 0;
        for (size_t k = 0; k < on->n_call_secrets && !known; k++)
            known = strcmp(on->call_secrets[k].name, kv->key) == 0;
        if (!known)
            wf_diag(ld, 0, kv->line, kv->col,
                    "job %s: Invalid secret, %s is not defined in the referenced workflow.",
                    job->id, kv->key);
    }
    for (size_t k = 0; k < on->n_call_secrets; k++)
        if (on->call_secrets[k].required &&
            !pipeline_map_get(&job->secrets, on->call_secrets[k].name))
            wf_diag(ld, 0, at->line, at->col,
                    "job %s: Secret %s is required, but not provided while calling.", job->id,
                    on->call_secrets[k].name);
}

size_t pipeline_workflow_check_calls(struct pipeline_workflow *wf, const char *path,
                                     const struct pipeline_load_opts *opts)
{
    struct wf_ld ld = {0};
    size_t before = wf->n_errors + wf->n_errors_dropped;
    char *root = NULL;
    int looked = 0;

    ld.wf = wf;
    for (size_t j = 0; j < wf->n_jobs; j++) {
        const struct pipeline_job *job = &wf->jobs[j];
        const struct pipeline_val *at = &job->uses.raw;
        struct pipeline_workflow *called = NULL;
        struct sw_err err = {0};

        if (job->uses.builtin != PIPELINE_BUILTIN_LOCAL_WORKFLOW || job->skipped)
            continue;
        if (!looked) {
            root = repo_root(path);
            looked = 1;
        }
        char *file = call_file(&job->uses);
        if (!root)
            wf_diag(&ld, 1, at->line, at->col,
                    "job %s: no repository (.git or .github) around %s: its call of %s is not "
                    "checked",
                    job->id, path, file);
        else if (read_called(root, file, opts ? opts->flags : 0, &called, &err) == SW_ENOTFOUND)
            /* it may be there at the commit the run will have */
            wf_diag(&ld, 1, at->line, at->col, "job %s: %s: the call is not checked", job->id,
                    err.msg);
        else if (!called)
            wf_diag(&ld, 0, at->line, at->col, "job %s: %s", job->id, err.msg);
        else
            check_call(&ld, job, called);
        pipeline_workflow_free(called);
        free(file);
    }
    free(root);
    return wf->n_errors + wf->n_errors_dropped - before;
}

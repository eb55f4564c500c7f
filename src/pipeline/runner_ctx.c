/* The contexts a run starts with, read once before its first job: github
 * (and the event file GITHUB_EVENT_PATH names), vars and secrets from the
 * runner's project and environment, inputs of a dispatch, runner. Secrets'
 * values become the run's masks here, before any line is written. */
#include "pipeline/pipeline.h"
#include "pipeline/runner_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* Writes a file of the run's scratch directory, which no one reads yet and
 * which goes with the run: no fsync (no durability is owed), no rename. */
static int scratch_write(const char *path, const char *data, size_t len, struct sw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int e = fd_write_all(fd, data, len);
    if (close(fd) < 0 && !e)
        e = -errno;
    return e ? sw_err_sys(err, -e, "%s", path) : 0;
}

/* A YAML mapping of names to scalars (.slipway/vars.yml, secrets.yml) into
 * obj; a missing file is no entry. */
static int yaml_kv_load(const char *path, json_t *obj, struct sw_err *err)
{
    struct yaml_doc *doc = NULL;
    int rc = yaml_doc_load(path, NULL, &doc, err);

    if (rc == SW_ENOTFOUND) {
        *err = (struct sw_err){0};
        return 0;
    }
    if (rc < 0)
        return rc;
    const struct yaml_node *root = doc->root;
    if (root->kind == YAML_NODE_MAP) {
        for (size_t i = 0; i < root->len; i++) {
            const char *k = yaml_scalar(root->pairs[i].key), *v = yaml_scalar(root->pairs[i].value);
            if (!k || !v) {
                rc = yaml_err(err, root->pairs[i].value, "expected NAME: value");
                goto out;
            }
            if (utf8_valid(v, 0))
                json_object_set_new(obj, k, json_string(v));
        }
    } else if (!yaml_is_null(root)) {
        rc = yaml_err(err, root, "expected a mapping of names to values");
        goto out;
    }
out:
    yaml_doc_free(doc);
    return rc;
}

int pipeline_vars_load(const char *project, json_t *vars, struct sw_err *err)
{
    char *dir = path_join(project, ".slipway");
    char *path = path_join(dir, "vars.yml");
    int rc = yaml_kv_load(path, vars, err);
    free(dir);
    free(path);
    return rc;
}

static int secrets_load(struct runner *rn, json_t *secrets, struct sw_err *err)
{
    if (rn->o->project) {
        char *dir = path_join(rn->o->project, ".slipway");
        char *path = path_join(dir, "secrets.yml");
        struct stat sb;
        int rc = 0;
        if (stat(path, &sb) == 0 && (sb.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH)))
            rc = sw_err_set(err, SW_EACCES,
                            "%s is readable or writable by others (mode %03o): refusing its "
                            "secrets; chmod 600 it",
                            path, (unsigned)(sb.st_mode & 0777));
        else
            rc = yaml_kv_load(path, secrets, err);
        free(dir);
        free(path);
        if (rc < 0)
            return rc;
    }
    for (char **e = environ; e && *e; e++)
        if (str_starts_with(*e, "SLIPWAY_SECRET_") && strchr(*e, '=')) {
            const char *name = *e + 15, *eq = strchr(*e, '=');
            char *k = xstrndup(name, (size_t)(eq - name));
            if (*k && utf8_valid(eq + 1, 0))
                json_object_set_new(secrets, k, json_string(eq + 1));
            free(k);
        }
    /* GitHub gives every workflow one */
    if (!json_object_get(secrets, "GITHUB_TOKEN"))
        json_object_set_new(secrets, "GITHUB_TOKEN", json_string(""));
    const char *k;
    json_t *v;
    json_object_foreach(secrets, k, v)
    {
        if (json_string_length(v))
            pipeline_step_list_add(&rn->masks, json_string_value(v), json_string_length(v));
    }
    atomic_store(&rn->nmasks, rn->masks.n);
    return 0;
}

/* head_commit as the push event has it, read from the repository. */
static json_t *head_commit(const char *repo, const char *sha)
{
    struct proc_opts po = {0};
    struct proc_result pr = {0};
    struct sw_err err = {0};
    json_t *c = json_pack("{s:s}", "id", sha);

    if (!repo)
        return c;
    const char *argv[] = {"git", "log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", sha, "--", NULL};
    po.argv = argv;
    po.cwd = repo;
    po.max_output = 1 << 16;
    if (proc_run(&po, &pr, &err) == 0 && pr.exited && pr.exit_code == 0) {
        const char *f[4] = {0};
        const char *p = pr.out, *end = pr.out + pr.out_len;
        for (int i = 0; i < 4 && p < end; i++) {
            f[i] = p;
            p += strlen(p) + 1;
        }
        if (f[3]) {
            size_t n = strlen(f[3]);
            while (n && f[3][n - 1] == '\n')
                n--;
            char *msg = xstrndup(f[3], n);
            if (utf8_valid(f[0], 0) && utf8_valid(f[1], 0) && utf8_valid(msg, 0))
                json_object_update_new(c, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}",
                                                    "message", msg, "timestamp", f[2], "author",
                                                    "name", f[0], "email", f[1], "committer",
                                                    "name", f[0], "email", f[1]));
            free(msg);
        }
    }
    proc_result_free(&pr);
    return c;
}

/* The inputs context: for a dispatch, the run's inputs over the workflow's
 * defaults; for any other event, empty, as on GitHub (a push sees no
 * defaults: `inputs.x || 'fallback'` takes the fallback). */
static json_t *inputs_ctx(const struct pipeline_run *run, const struct pipeline_workflow *wf)
{
    json_t *in = json_object();
    if (strcmp(run->event ? run->event : "", "workflow_dispatch") != 0)
        return in;
    for (size_t i = 0; i < wf->on.n_dispatch_inputs; i++) {
        const struct pipeline_input *p = &wf->on.dispatch_inputs[i];
        if (!p->def.s || p->def.expr)
            continue;
        if (p->type == PIPELINE_INPUT_BOOLEAN)
            json_object_set_new(in, p->name, json_boolean(p->def.b));
        else if (p->type == PIPELINE_INPUT_NUMBER)
            json_object_set_new(in, p->name, json_real(p->def.n));
        else
            json_object_set_new(in, p->name, json_string(p->def.s));
    }
    if (json_is_object(run->inputs))
        json_object_update(in, run->inputs);
    return in;
}

/* github.event.inputs of a dispatch: the inputs context with every value as
 * text, as GitHub's event payload holds them (`'true'`, not true). Takes in. */
static json_t *event_inputs(json_t *in)
{
    json_t *out = json_object(), *v;
    const char *k;
    json_object_foreach(in, k, v)
    {
        struct pipeline_value pv = PIPELINE_VALUE_INIT;
        if (json_is_string(v)) {
            json_object_set(out, k, v);
            continue;
        }
        if (json_is_boolean(v)) {
            pv.kind = PIPELINE_BOOLEAN;
            pv.boolean = json_is_true(v);
        } else if (json_is_number(v)) {
            pv.kind = PIPELINE_NUMBER;
            pv.number = json_number_value(v);
        }
        char *t = pipeline_value_to_string(&pv, NULL);
        json_object_set_new(out, k, json_string(t));
        free(t);
    }
    json_decref(in);
    return out;
}

static json_t *github_ctx(struct runner *rn)
{
    const struct pipeline_run *run = rn->run;
    const char *ref = run->ref ? run->ref : "";
    const char *ref_name = ref;
    char *abs = rn->o->repo ? realpath(rn->o->repo, NULL) : NULL;
    const char *base = abs && strrchr(abs, '/') ? strrchr(abs, '/') + 1 : "repository";
    char *repo = xasprintf("local/%s", *base ? base : "repository");
    const char *actor = run->actor ? run->actor : "";

    if (str_starts_with(ref, "refs/heads/"))
        ref_name = ref + 11;
    else if (str_starts_with(ref, "refs/tags/"))
        ref_name = ref + 10;
    /* A push the hook recorded brings its own head_commit and commits, which
     * replace these below: reading them from git too would only cost a process
     * before the first step. */
    int recorded = run->push && strcmp(run->event ? run->event : "", "push") == 0 &&
                   json_object_get(run->push, "head_commit") &&
                   json_object_get(run->push, "commits");
    json_t *hc = head_commit(recorded ? NULL : abs, run->sha);
    json_t *event = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, s:O, s:[O], s:{s:s, s:s}, s:b, s:b, s:b}",
        "ref", ref, "before",
        run->before ? run->before : "0000000000000000000000000000000000000000", "after",
        run->after ? run->after : run->sha, "repository", "name", base, "full_name", repo,
        "default_branch", "main", "owner", "login", "local", "head_commit", hc, "commits", hc,
        "pusher", "name", actor, "email", "", "created", 0, "deleted", 0, "forced", 0);
    /* what the hook recorded of the push (pusher, commits...) over what the
     * runner derives */
    if (run->push && strcmp(run->event ? run->event : "", "push") == 0)
        json_object_update(event, run->push);
    if (strcmp(run->event ? run->event : "", "workflow_dispatch") == 0)
        json_object_set_new(event, "inputs", event_inputs(inputs_ctx(run, rn->wf)));
    json_t *gh =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
                  "s:s, s:s, s:s, s:s, s:o}",
                  "event_name", run->event ? run->event : "push", "ref", ref, "ref_name", ref_name,
                  "ref_type", str_starts_with(ref, "refs/tags/") ? "tag" : "branch", "sha",
                  run->sha, "repository", repo, "repository_owner", "local", "run_id", run->id,
                  "run_number", "1", "run_attempt", "1", "actor", actor, "triggering_actor", actor,
                  "workflow", run->workflow ? run->workflow : "", "server_url", "", "api_url", "",
                  "base_ref", "", "head_ref", "", "event", event);
    json_decref(hc);
    free(abs);
    rn->repository = repo;
    return gh;
}

int runner_contexts(struct runner *rn, struct sw_err *err)
{
    const struct pipeline_runner_opts *o = rn->o;
    json_t *secrets = json_object(), *vars = json_object();
    int rc;

    if ((rc = secrets_load(rn, secrets, err)) < 0)
        goto out;
    if (o->project && (rc = pipeline_vars_load(o->project, vars, err)) < 0)
        goto out;
    rn->base = json_object();
    json_t *gh = github_ctx(rn);
    char *ev = path_join(rn->run_dir, "event.json");
    char *evtext = json_dumps(json_object_get(gh, "event"), JSON_INDENT(2));
    rc = scratch_write(ev, evtext ? evtext : "{}", evtext ? strlen(evtext) : 2, err);
    free(ev);
    free(evtext);
    json_object_set_new(rn->base, "github", gh);
    if (rc < 0)
        goto out;
    json_object_set_new(rn->base, "vars", vars);
    json_object_set_new(rn->base, "secrets", secrets);
    vars = secrets = NULL;
    json_object_set_new(rn->base, "inputs", inputs_ctx(rn->run, rn->wf));
    json_object_set_new(rn->base, "runner",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "os", "Linux", "arch", rn->arch,
                                  "name", o->runner_name ? o->runner_name : "slipway", "temp",
                                  rn->run_dir, "tool_cache", rn->run_dir));
    json_object_set_new(rn->base, "env", json_object());
    json_object_set_new(rn->base, "jobs", json_object());
out:
    json_decref(secrets);
    json_decref(vars);
    return rc;
}

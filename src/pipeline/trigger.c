/*
 * Triggers: what queues a run. A run is queued from a workflow file and what
 * started it (a push, a dispatch); pipeline_run_prepare gives both ways the
 * same workflow name, title (run-name) and concurrency group, evaluated with
 * the same values (vars too), and pipeline_push_queue is the
 * git push trigger a post-receive hook calls, one pushed ref at a time.
 *
 * The one idea: everything a push trigger reads comes from the pushed commit
 * in the repository pushed to (the pipelines under .slipway/pipelines/, the
 * changed paths, the commits), through git plumbing with --git-dir, so a hook
 * running inside git (GIT_DIR set, cwd the repository) and a test calling it
 * from elsewhere read the same thing. Ref names, hashes and commit texts come
 * from whoever pushed: each is checked or made valid UTF-8 and bounded before
 * it goes into a run record.
 */
#include "pipeline/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what is evaluated when a run is queued ------------------------------------------------ */

/* What expressions evaluated when a run is queued (run-name, concurrency) see,
 * as on GitHub: github (what is known before the run: workflow, ref, sha,
 * event, repository, actor), inputs and vars. NULL when a value is not text.
 * Caller decrefs. */
static json_t *queue_values(const struct pipeline_run *spec, const char *repo_name,
                            const json_t *vars)
{
    const char *ref_name = spec->ref;
    if (str_starts_with(ref_name, "refs/heads/"))
        ref_name += 11;
    else if (str_starts_with(ref_name, "refs/tags/"))
        ref_name += 10;
    char *repo = xasprintf("local/%s", repo_name);
    json_t *values = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:o, s:o}",
                               "github", "workflow", spec->workflow, "ref", spec->ref, "ref_name",
                               ref_name, "sha", spec->sha, "event_name", spec->event, "repository",
                               repo, "actor", spec->actor, "head_ref", "", "base_ref", "", "inputs",
                               spec->inputs ? json_incref(spec->inputs) : json_object(), "vars",
                               vars ? json_deep_copy(vars) : json_object());
    free(repo);
    return values;
}

/* The workflow's run-name evaluated when the run is queued, as one line of at
 * most 1024 bytes (control characters become spaces); NULL without one. */
static int title_eval(const struct pipeline_workflow *wf, const json_t *values, char **title,
                      struct sw_err *err)
{
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    struct pipeline_expr_ctx ctx = {values, PIPELINE_STATUS_NONE, 0, PIPELINE_STATUS_NONE, NULL, 0};
    int rc;

    *title = NULL;
    if (!wf->run_name.s)
        return 0;
    rc = pipeline_expr_template(wf->run_name.s, strlen(wf->run_name.s), NULL, &ctx, &v, NULL, err);
    if (rc < 0) {
        sw_err_prefix(err, "run-name: ");
        return rc;
    }
    size_t len = 0;
    char *t = pipeline_value_to_string(&v, &len);
    pipeline_value_clear(&v);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            t[i] = ' ';
    if (len > 1024) { /* cut at a character boundary */
        len = 1024;
        while (len && ((unsigned char)t[len] & 0xc0) == 0x80)
            len--;
        t[len] = '\0';
    }
    if (*t && text_valid(t, 1024, 0))
        *title = t;
    else
        free(t);
    return 0;
}

/* The workflow's concurrency group and cancel-in-progress, evaluated as
 * GitHub does when the run is queued (see queue_values). */
static int concurrency_eval(const struct pipeline_workflow *wf, const json_t *values, char **group,
                            int *cip, struct sw_err *err)
{
    struct pipeline_expr_ctx ctx = {values, PIPELINE_STATUS_NONE, 0, PIPELINE_STATUS_NONE, NULL, 0};
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    const struct pipeline_val *g = &wf->concurrency.group, *c = &wf->concurrency.cancel_in_progress;
    int rc = 0;

    *group = NULL;
    *cip = 0;
    if ((rc = pipeline_expr_template(g->s, strlen(g->s), NULL, &ctx, &v, NULL, err)) < 0)
        goto out;
    char *text = pipeline_value_to_string(&v, NULL);
    pipeline_value_clear(&v);
    if (*text && text_valid(text, 1024, 0))
        *group = text;
    else {
        rc = sw_err_set(err, SW_EINVAL,
                        "concurrency.group: '%s' is not a group name (a line of at most 1024 "
                        "bytes)",
                        text);
        free(text);
        goto out;
    }
    if (c->s && !c->expr)
        *cip = c->b;
    else if (c->s) {
        if ((rc = pipeline_expr_template(c->s, strlen(c->s), NULL, &ctx, &v, NULL, err)) < 0)
            goto out;
        *cip = pipeline_value_truthy(&v);
        pipeline_value_clear(&v);
    }
out:
    if (rc < 0) {
        free(*group);
        *group = NULL;
        sw_err_prefix(err, "concurrency: ");
    }
    return rc;
}

int pipeline_run_prepare(const struct pipeline_workflow *wf, struct pipeline_run *spec,
                         const char *repo_name, const json_t *vars, struct sw_err *err)
{
    json_t *values = NULL;
    int rc = 0;

    free(spec->workflow);
    if (wf->name.s && !wf->name.expr && text_valid(wf->name.s, 1024, 0))
        spec->workflow = xstrdup(wf->name.s);
    else {
        const char *f = spec->workflow_file ? spec->workflow_file : "workflow";
        const char *b = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;
        size_t n = strlen(b);
        if (str_ends_with(b, ".yml"))
            n -= 4;
        else if (str_ends_with(b, ".yaml"))
            n -= 5;
        spec->workflow = xstrndup(b, n);
    }
    free(spec->group);
    spec->group = NULL;
    spec->cancel_in_progress = 0;
    free(spec->display_title);
    spec->display_title = NULL;
    if (!wf->concurrency.group.s && !wf->run_name.s)
        return 0;
    values = queue_values(spec, repo_name && *repo_name ? repo_name : "repository", vars);
    if (!values)
        return sw_err_set(err, SW_EINVAL, "%s: the run's values are not text",
                          wf->run_name.s ? "run-name" : "concurrency");
    if (wf->concurrency.group.s &&
        (rc = concurrency_eval(wf, values, &spec->group, &spec->cancel_in_progress, err)) < 0)
        goto out;
    if ((rc = title_eval(wf, values, &spec->display_title, err)) < 0) {
        free(spec->group);
        spec->group = NULL;
        spec->cancel_in_progress = 0;
    }
out:
    json_decref(values);
    return rc;
}

/* ---- what git tells a post-receive hook ------------------------------------------------------ */

int pipeline_push_zero(const char *hex)
{
    if (!*hex)
        return 0;
    for (; *hex; hex++)
        if (*hex != '0')
            return 0;
    return 1;
}

/* git's check-ref-format rules, and printable UTF-8: a ref name becomes a
 * line of output and a field of the run record. */
static const char *ref_fault(const char *ref, size_t len)
{
    if (!str_starts_with(ref, "refs/"))
        return "not under refs/";
    if (len > PIPELINE_PUSH_REF_MAX)
        return "longer than 1024 bytes";
    if (!utf8_valid(ref, 1))
        return "not printable UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (c < 0x20 || c == 0x7f || strchr(" ~^:?*[\\", c))
            return "a character git refuses in ref names";
    }
    if (strstr(ref, "..") || strstr(ref, "@{") || strstr(ref, "//") || strstr(ref, "/.") ||
        ref[len - 1] == '/' || ref[len - 1] == '.' || str_ends_with(ref, ".lock") ||
        strstr(ref, ".lock/"))
        return "not a ref name git accepts";
    return NULL;
}

/* n lowercase hex digits at s (not necessarily NUL-terminated there) */
static int hex_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int pipeline_push_line_parse(const char *line, size_t len, struct pipeline_push_update *u,
                             struct sw_err *err)
{
    const char *why = NULL;
    const char *sp1, *sp2;
    size_t h;

    memset(u, 0, sizeof(*u));
    if (len > PIPELINE_PUSH_LINE_MAX)
        return sw_err_set(err, SW_EINVAL, "a line of more than %d bytes", PIPELINE_PUSH_LINE_MAX);
    if (memchr(line, '\0', len))
        return sw_err_set(err, SW_EINVAL, "a line holding a NUL byte");
    sp1 = memchr(line, ' ', len);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp2) {
        why = "expected 'OLD NEW REF'";
        goto bad;
    }
    h = (size_t)(sp1 - line);
    if ((h != 40 && h != 64) || (size_t)(sp2 - sp1 - 1) != h || !hex_at(line, h) ||
        !hex_at(sp1 + 1, h)) {
        why = "OLD and NEW are not commit hashes (40 or 64 lowercase hex digits)";
        goto bad;
    }
    memcpy(u->before, line, h);
    memcpy(u->after, sp1 + 1, h);
    size_t rl = len - (size_t)(sp2 + 1 - line);
    if (rl > PIPELINE_PUSH_REF_MAX) {
        why = "the ref is longer than 1024 bytes";
        goto bad;
    }
    memcpy(u->ref, sp2 + 1, rl);
    u->ref[rl] = '\0';
    const char *rf = rl ? ref_fault(u->ref, rl) : "empty";
    if (rf) {
        /* the line is someone else's: escaped before it is quoted */
        struct buf b = BUF_INIT;
        buf_add_escaped(&b, u->ref);
        sw_err_set(err, SW_EINVAL, "ref '%s': %s", b.data ? b.data : "", rf);
        buf_free(&b);
        memset(u, 0, sizeof(*u));
        return SW_EINVAL;
    }
    return 0;
bad:
    memset(u, 0, sizeof(*u));
    return sw_err_set(err, SW_EINVAL, "%s", why);
}

/* ---- git ------------------------------------------------------------------------------------ */

/* Runs `git --git-dir=REPO ARGS...`; 0 with pr filled when it exited 0, else
 * SW_EIO with its first line of stderr (pr freed). */
static int git(const char *repo, const char *const *args, size_t max, struct proc_result *pr,
               struct sw_err *err)
{
    const char *argv[16];
    size_t n = 0;
    argv[n++] = "git";
    argv[n++] = "--git-dir";
    argv[n++] = repo;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct proc_opts po = {
        .argv = argv, .max_output = max ? max : 1 << 16, .timeout_ms = 60 * 1000};
    int rc = proc_run(&po, pr, err);
    if (rc < 0)
        return rc;
    if (!pr->exited || pr->exit_code != 0) {
        size_t l = strcspn(pr->err, "\n");
        char *line = xstrndup(pr->err, l);
        struct buf b = BUF_INIT;
        buf_add_escaped(&b, line);
        sw_err_set(err, SW_EIO, "git %s: %s", args[0], b.data ? b.data : "failed");
        buf_free(&b);
        free(line);
        proc_result_free(pr);
        return SW_EIO;
    }
    return 0;
}

/* The first line git prints, or NULL when it fails. */
static char *git_line(const char *repo, const char *const *args)
{
    struct proc_result pr = {0};
    struct sw_err err = {0};
    char *line = NULL;
    if (git(repo, args, 0, &pr, &err) == 0) {
        size_t l = strcspn(pr.out, "\n");
        if (l)
            line = xstrndup(pr.out, l);
        proc_result_free(&pr);
    }
    return line;
}

/* A JSON string of s[0..len) cut to at most max bytes: bytes that are not
 * UTF-8 become U+FFFD, and a cut never splits a character. */
static json_t *jtext(const char *s, size_t len, size_t max)
{
    struct buf b = BUF_INIT;
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        size_t k = expr_utf8_next((const unsigned char *)s + i, len - i, &cp);
        int bad = cp >= 0xdc80 && cp <= 0xdcff;
        if (b.len + (bad ? 3 : k) > max)
            break;
        if (bad)
            buf_adds(&b, "\xef\xbf\xbd");
        else
            buf_add(&b, s + i, k);
        i += k;
    }
    json_t *j = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return j;
}

#define COMMIT_FIELDS 9
#define COMMIT_TEXT_MAX 256
#define COMMIT_MESSAGE_MAX 4096

/* Commits as GitHub's push event lists them, from `git log` of range (at most
 * max, newest first from git, oldest first in the array). */
static json_t *commits_of(const char *repo, const char *range, size_t max)
{
    char count[32];
    snprintf(count, sizeof(count), "--max-count=%zu", max);
    const char *args[] = {"log",
                          "-z",
                          "--no-show-signature",
                          count,
                          "--format=%H%x00%T%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B",
                          range,
                          "--",
                          NULL};
    struct proc_result pr = {0};
    struct sw_err err = {0};
    json_t *a = json_array();
    if (git(repo, args, (COMMIT_MESSAGE_MAX + 8 * 1024) * (max + 1) + (1 << 20), &pr, &err) < 0)
        return a;
    const char *p = pr.out, *end = pr.out + pr.out_len;
    while (p < end && json_array_size(a) < max) {
        const char *f[COMMIT_FIELDS];
        size_t fl[COMMIT_FIELDS];
        int i;
        for (i = 0; i < COMMIT_FIELDS && p < end; i++) {
            f[i] = p;
            fl[i] = strnlen(p, (size_t)(end - p));
            p += fl[i] + 1;
        }
        /* a field that is not where it should be (a message holding a NUL,
         * output cut short): stop rather than misread the rest */
        if (i < COMMIT_FIELDS || !((fl[0] == 40 || fl[0] == 64) && hex_lower_valid(f[0], fl[0])))
            break;
        size_t ml = fl[8];
        while (ml && f[8][ml - 1] == '\n')
            ml--;
        json_t *c = json_pack(
            "{s:s%, s:s%, s:o, s:o, s:{s:o, s:o}, s:{s:o, s:o}, s:b}", "id", f[0], fl[0], "tree_id",
            f[1], fl[1] <= 64 ? fl[1] : 0, "message", jtext(f[8], ml, COMMIT_MESSAGE_MAX),
            "timestamp", jtext(f[4], fl[4], 64), "author", "name",
            jtext(f[2], fl[2], COMMIT_TEXT_MAX), "email", jtext(f[3], fl[3], COMMIT_TEXT_MAX),
            "committer", "name", jtext(f[5], fl[5], COMMIT_TEXT_MAX), "email",
            jtext(f[6], fl[6], COMMIT_TEXT_MAX), "distinct", 1);
        if (c)
            json_array_insert_new(a, 0, c); /* git lists newest first */
    }
    proc_result_free(&pr);
    return a;
}

/* ---- the paths a push changed -------------------------------------------------------------- */

struct paths {
    char **v;
    size_t n;
    int known; /* computed (a ref needing no paths never computes them) */
};

static void paths_free(struct paths *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof(*p));
}

/* NUL-separated names into p, at most PIPELINE_PUSH_MAX_PATHS. */
static void paths_take(struct paths *p, const char *out, size_t len)
{
    const char *s = out, *end = out + len;
    while (s < end && p->n < PIPELINE_PUSH_MAX_PATHS) {
        size_t l = strnlen(s, (size_t)(end - s));
        if (l && s + l < end) { /* a name cut by the output bound is not a name */
            p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
            p->v[p->n++] = xstrndup(s, l);
        }
        s += l + 1;
    }
}

/* Every file of commit (a branch with nothing to compare with). */
static int paths_all(const char *repo, const char *commit, struct paths *p, struct sw_err *err)
{
    const char *args[] = {"ls-tree", "-r", "-z", "--name-only", commit, NULL};
    struct proc_result pr = {0};
    int rc = git(repo, args, 4 << 20, &pr, err);
    if (rc == 0) {
        paths_take(p, pr.out, pr.out_len);
        proc_result_free(&pr);
    }
    return rc;
}

static int paths_diff(const char *repo, const char *from, const char *to, struct paths *p,
                      struct sw_err *err)
{
    const char *args[] = {"diff", "--name-only", "-z", "--no-renames", from, to, "--", NULL};
    struct proc_result pr = {0};
    int rc = git(repo, args, 4 << 20, &pr, err);
    if (rc == 0) {
        paths_take(p, pr.out, pr.out_len);
        proc_result_free(&pr);
    }
    return rc;
}

/* The base a new branch is compared with: the merge base of the repository's
 * default branch (HEAD) and commit, when that branch exists and is not the
 * pushed one. NULL: compare with nothing (every file is new). */
static char *new_branch_base(const char *repo, const char *ref, const char *commit)
{
    const char *sym[] = {"symbolic-ref", "-q", "HEAD", NULL};
    char *def = git_line(repo, sym), *base = NULL;
    if (def && strcmp(def, ref) != 0) {
        char *what = xasprintf("%s^{commit}", def);
        const char *rp[] = {"rev-parse", "-q", "--verify", what, NULL};
        char *tip = git_line(repo, rp);
        if (tip) {
            const char *mb[] = {"merge-base", tip, commit, NULL};
            base = git_line(repo, mb);
        }
        free(tip);
        free(what);
    }
    free(def);
    if (base && !(hex_lower_valid(base, 40) || hex_lower_valid(base, 64))) {
        free(base);
        base = NULL;
    }
    return base;
}

/* ---- one pushed ref ------------------------------------------------------------------------- */

struct pushed {
    const struct pipeline_push_opts *o;
    const struct pipeline_push_update *u;
    char *commit; /* after, peeled to its commit */
    int tag;
    struct paths paths;
    char *base; /* what a branch is compared with (before, or a new branch's base), or NULL */
    json_t *push;
};

static void note_run(const struct pushed *p, enum pipeline_push_note kind, const char *file,
                     const struct pipeline_run *run, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void note_run(const struct pushed *p, enum pipeline_push_note kind, const char *file,
                     const struct pipeline_run *run, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    if (!p->o->note)
        return;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    p->o->note(p->o->ctx, kind, p->u->ref, file, b.data ? b.data : "", run);
    buf_free(&b);
}
#define note(p, kind, file, ...) note_run(p, kind, file, NULL, __VA_ARGS__)

/* The push's paths, computed the first time a pipeline filters on them. */
static const struct paths *pushed_paths(struct pushed *p)
{
    struct sw_err err = {0};
    if (p->paths.known)
        return &p->paths;
    p->paths.known = 1;
    int rc = p->base ? paths_diff(p->o->repo, p->base, p->commit, &p->paths, &err)
                     : paths_all(p->o->repo, p->commit, &p->paths, &err);
    if (rc < 0) {
        /* a paths filter then sees nothing changed: it does not trigger */
        note(p, PIPELINE_PUSH_ERROR, NULL, "cannot list the paths the push changed: %s", err.msg);
        paths_free(&p->paths);
        p->paths.known = 1;
    }
    return &p->paths;
}

static int filters_paths(const struct pipeline_workflow *wf)
{
    return wf->on.push.paths || wf->on.push.paths_ignore;
}

/* The push event's fields a run records (pipeline_run.push). */
static json_t *push_payload(struct pushed *p)
{
    const char *range = NULL;
    char *r = NULL;
    json_t *commits, *head;
    int created = pipeline_push_zero(p->u->before), forced = 0;

    if (!p->tag) {
        if (p->base)
            range = r = xasprintf("%s..%s", p->base, p->commit);
        else
            range = p->commit;
        if (!created) {
            const char *anc[] = {"merge-base", "--is-ancestor", p->u->before, p->commit, NULL};
            struct proc_result pr = {0};
            struct sw_err err = {0};
            if (git(p->o->repo, anc, 0, &pr, &err) == 0)
                proc_result_free(&pr);
            else
                forced = 1;
        }
        commits = commits_of(p->o->repo, range, PIPELINE_PUSH_MAX_COMMITS);
    } else
        commits = json_array();
    free(r);
    json_t *h = commits_of(p->o->repo, p->commit, 1);
    head = json_array_size(h) ? json_incref(json_array_get(h, 0)) : json_null();
    json_decref(h);
    const char *email = p->o->pusher_email;
    if (!email && json_is_object(head))
        email = json_string_value(json_object_get(json_object_get(head, "committer"), "email"));
    return json_pack("{s:{s:o, s:o}, s:o, s:o, s:b, s:b}", "pusher", "name",
                     jtext(p->o->pusher_name, strlen(p->o->pusher_name), COMMIT_TEXT_MAX), "email",
                     jtext(email ? email : "", email ? strlen(email) : 0, COMMIT_TEXT_MAX),
                     "head_commit", head, "commits", commits, "created", created, "forced", forced);
}

/* One pipeline file of the pushed commit: loaded, matched, queued. */
static void pipeline_one(struct store *st, struct pushed *p, const char *path, const char *oid,
                         size_t *queued)
{
    const char *args[] = {"cat-file", "blob", oid, NULL};
    struct proc_result pr = {0};
    struct sw_err err = {0};
    struct pipeline_workflow *wf = NULL;
    struct pipeline_run spec = {0}, *run = NULL;
    int rc;

    if (git(p->o->repo, args, PIPELINE_WF_MAX_BYTES + 1, &pr, &err) < 0) {
        note(p, PIPELINE_PUSH_ERROR, path, "%s: %s", path, err.msg);
        return;
    }
    if (pr.out_truncated) {
        note(p, PIPELINE_PUSH_ERROR, path, "%s: larger than %d bytes", path, PIPELINE_WF_MAX_BYTES);
        goto out;
    }
    rc = pipeline_workflow_parse(pr.out, pr.out_len, path, p->o->load, &wf, &err);
    if (rc < 0) {
        if (!wf)
            note(p, PIPELINE_PUSH_ERROR, path, "%s", err.msg);
        for (size_t i = 0; wf && i < wf->n_errors; i++)
            note(p, PIPELINE_PUSH_ERROR, path, "%s", wf->errors[i].text);
        if (wf && wf->n_errors_dropped)
            note(p, PIPELINE_PUSH_ERROR, path, "%s: %zu more errors not shown", path,
                 wf->n_errors_dropped);
        goto out;
    }
    const struct paths *ps = NULL;
    if (!p->tag && filters_paths(wf))
        ps = pushed_paths(p);
    if (!pipeline_workflow_triggered(wf, "push", p->u->ref, ps ? (const char *const *)ps->v : NULL,
                                     ps ? ps->n : 0)) {
        note(p, PIPELINE_PUSH_UNMATCHED, path, "%s", path);
        goto out;
    }
    if (!p->push)
        p->push = push_payload(p);
    spec.workflow_file = (char *)path;
    spec.event = "push";
    spec.ref = (char *)p->u->ref;
    spec.sha = p->commit;
    spec.before = (char *)p->u->before;
    spec.after = (char *)p->u->after;
    spec.actor = (char *)p->o->pusher_name;
    spec.repository = (char *)p->o->repo;
    spec.push = p->push;
    const char *base = strrchr(p->o->repo, '/') ? strrchr(p->o->repo, '/') + 1 : p->o->repo;
    size_t bl = strlen(base);
    char *name = xstrndup(base, str_ends_with(base, ".git") && bl > 4 ? bl - 4 : bl);
    rc = pipeline_run_prepare(wf, &spec, name, p->o->vars, &err);
    free(name);
    if (rc == 0)
        rc = pipeline_run_create(st, &spec, &run, &err);
    if (rc < 0)
        note(p, PIPELINE_PUSH_ERROR, path, "%s: %s", path, err.msg);
    else {
        note_run(p, PIPELINE_PUSH_QUEUED, path, run, "%s", run->id);
        (*queued)++;
    }
    free(spec.workflow);
    free(spec.group);
    free(spec.display_title);
out:
    pipeline_run_free(run);
    pipeline_workflow_free(wf);
    proc_result_free(&pr);
}

int pipeline_push_queue(struct store *st, const struct pipeline_push_opts *o,
                        const struct pipeline_push_update *u, size_t *queued, struct sw_err *err)
{
    struct pushed p = {o, u, NULL, 0, {0}, NULL, NULL};
    struct proc_result pr = {0};
    int rc = 0;

    *queued = 0;
    if (pipeline_push_zero(u->after)) {
        note(&p, PIPELINE_PUSH_SKIPPED, NULL, "deleted");
        return 0;
    }
    if (str_starts_with(u->ref, "refs/tags/") && u->ref[10])
        p.tag = 1;
    else if (!(str_starts_with(u->ref, "refs/heads/") && u->ref[11])) {
        note(&p, PIPELINE_PUSH_SKIPPED, NULL, "not a branch or a tag");
        return 0;
    }
    char *what = xasprintf("%s^{commit}", u->after);
    const char *peel[] = {"rev-parse", "-q", "--verify", what, NULL};
    p.commit = git_line(o->repo, peel);
    free(what);
    if (!p.commit || !(hex_lower_valid(p.commit, 40) || hex_lower_valid(p.commit, 64))) {
        rc = sw_err_set(err, SW_ENOTFOUND, "%s is not a commit in %s", u->after, o->repo);
        goto out;
    }
    if (!p.tag) {
        if (!pipeline_push_zero(u->before))
            p.base = xstrdup(u->before);
        else
            p.base = new_branch_base(o->repo, u->ref, p.commit);
    }
    /* the pipelines are those of the pushed commit itself */
    const char *ls[] = {"ls-tree", "-z", p.commit, "--", ".slipway/pipelines/", NULL};
    if ((rc = git(o->repo, ls, 1 << 20, &pr, err)) < 0)
        goto out;
    size_t n = 0;
    for (const char *s = pr.out, *end = pr.out + pr.out_len; s < end;) {
        size_t l = strnlen(s, (size_t)(end - s));
        /* "MODE TYPE OID\tPATH": regular files only (a link is not followed) */
        const char *tab = memchr(s, '\t', l);
        char mode[8] = "", type[8] = "", oid[65] = "";
        if (tab && sscanf(s, "%7s %7s %64s", mode, type, oid) == 3 && !strcmp(type, "blob") &&
            (!strcmp(mode, "100644") || !strcmp(mode, "100755"))) {
            char *path = xstrndup(tab + 1, l - (size_t)(tab + 1 - s));
            if ((str_ends_with(path, ".yml") || str_ends_with(path, ".yaml")) &&
                !strchr(path + strlen(".slipway/pipelines/"), '/')) {
                if (++n > PIPELINE_PUSH_MAX_PIPELINES)
                    note(&p, PIPELINE_PUSH_ERROR, path,
                         "%s: more than %d pipelines; the rest are not read", path,
                         PIPELINE_PUSH_MAX_PIPELINES);
                else
                    pipeline_one(st, &p, path, oid, queued);
            }
            free(path);
            if (n > PIPELINE_PUSH_MAX_PIPELINES)
                break;
        }
        s += l + 1;
    }
    proc_result_free(&pr);
out:
    free(p.commit);
    free(p.base);
    paths_free(&p.paths);
    json_decref(p.push);
    return rc;
}

/*
 * One `run:` step, run as GitHub's runner runs it (ScriptHandler,
 * OutputManager, ActionCommandManager, FileCommandManager): the script in a
 * file of the temp directory, the shell on it in a process group of its own,
 * an environment built only from what the caller lists, the output read line
 * by line for workflow commands and masked into the log, the file commands
 * read back at the end.
 *
 * The one idea: every line the step prints passes through one place,
 * handle_line(), in the order printed (stderr is merged into stdout, as the
 * runner's two readers feed one command manager). A line is first a
 * candidate command; if it is not one (or commands are stopped) it is masked
 * and logged. Memory stays bounded whatever the step prints: a line is held
 * whole up to LINE_MAX and written in masked pieces beyond it (cut where no
 * secret can be split), the log is capped (the rest discarded while the step
 * runs on), and annotations, outputs and masks are bounded too.
 */
#include "pipeline/internal.h"
#include "pipeline/step_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_HELD ((size_t)1 << 20)  /* a line longer than this is written in pieces */
#define OUTPUTS_MAX ((size_t)4 << 20)    /* bytes of a step's outputs (names and values) */
#define MASKS_MAX 10000                  /* masks a step may hold ... */
#define MASK_BYTES_MAX ((size_t)4 << 20) /* ... and their bytes */
#define ENVIRON_MAX ((size_t)4 << 20)    /* bytes of /proc/PID/environ read by the cleanup */

static const char DEPRECATED[] =
    "The `%s` command is deprecated and will be disabled soon. Please upgrade to using "
    "Environment Files. For more information see: "
    "https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-"
    "output-commands/";
static const char DISABLED[] =
    "The `%s` command is disabled. Please upgrade to using Environment Files or opt into "
    "unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment "
    "variable to `true`. For more information see: "
    "https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-"
    "commands/";
static const char BAD_STOP_TOKEN[] =
    "You cannot use a endToken that is an empty string, the string 'pause-logging', or another "
    "workflow command. For more information see: "
    "https://docs.github.com/actions/learn-github-actions/"
    "workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands or opt "
    "into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` "
    "environment variable to `true`.";
static const char SUMMARY_TOO_BIG[] =
    "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of %zuk, got %zuk. For "
    "more information see: https://docs.github.com/actions/using-workflows/"
    "workflow-commands-for-github-actions#adding-a-markdown-summary";

const char *pipeline_step_log_prefix(enum pipeline_step_log_kind kind)
{
    switch (kind) {
    case PIPELINE_LOG_GROUP:
        return "##[group]";
    case PIPELINE_LOG_ENDGROUP:
        return "##[endgroup]";
    case PIPELINE_LOG_DEBUG:
        return "##[debug]";
    case PIPELINE_LOG_NOTICE:
        return "##[notice]";
    case PIPELINE_LOG_WARNING:
        return "##[warning]";
    case PIPELINE_LOG_ERROR:
        return "##[error]";
    case PIPELINE_LOG_OUTPUT:
        break;
    }
    return "";
}

const char *pipeline_step_outcome_name(enum pipeline_step_outcome o)
{
    static const char *const names[] = {"success", "failure", "cancelled", "skipped"};
    return (unsigned)o < 4 ? names[o] : "failure";
}

/* ---- the state of one run ---------------------------------------------------------------- */

struct step {
    const struct pipeline_step_spec *spec;
    struct pipeline_step_result *r;
    struct step_masker mask;
    uint64_t max_log;
    int capped;
    /* the line being read */
    struct buf pend;
    int after_cr;    /* the last line ended at a '\r': a '\n' right after it ends nothing */
    int overlong;    /* pend is a line longer than LINE_MAX_HELD, written in pieces */
    size_t pend_pre; /* bytes at pend's start a mask covered in the piece before */
    /* workflow commands */
    char *stop_token; /* commands are stopped until ::stop_token:: */
    int echo;
    int allow_unsecure, allow_unsecure_stop;
    size_t kept[3];      /* annotations kept, by level */
    size_t outputs_size; /* bytes of r->outputs */
    int masks_full;      /* too many masks: output is discarded from then on */
    int failed;          /* a command or a file command failed */
    struct buf tmp;      /* scratch: a masked line */
};

/* Hands one masked line (no '\n' or '\r' in it) to the sink, within the cap
 * unless forced (the runner's own closing lines always get through). */
static void sink(struct step *s, enum pipeline_step_log_kind kind, const char *t, size_t n,
                 int forced)
{
    if (!forced && s->capped)
        return;
    if (!forced && s->r->bytes_logged + n + 1 > s->max_log) {
        char size[32], msg[160];
        s->capped = s->r->log_capped = 1;
        size_format(s->max_log, size, sizeof(size));
        snprintf(msg, sizeof(msg),
                 "slipway: this step's log reached %s; the rest of its output is discarded "
                 "while it runs on",
                 size);
        sink(s, PIPELINE_LOG_WARNING, msg, strlen(msg), 1);
        return;
    }
    s->r->bytes_logged += n + 1;
    if (s->spec->log)
        s->spec->log(s->spec->log_ctx, time_now_ms(), kind, t, n);
}

/* Masks text and logs it, a line of the log for each of its lines. */
static void emit(struct step *s, enum pipeline_step_log_kind kind, const char *text, size_t len,
                 int forced)
{
    struct buf m = BUF_INIT;
    if (s->masks_full && !forced)
        return;
    step_masker_write(&s->mask, text, len, 0, len, &m);
    const char *p = m.data ? m.data : "";
    size_t n = m.len;
    do {
        size_t k = 0;
        while (k < n && p[k] != '\n' && p[k] != '\r')
            k++;
        sink(s, kind, p, k, forced);
        if (k < n && p[k] == '\r' && k + 1 < n && p[k + 1] == '\n')
            k++;
        p += k + (k < n), n -= k + (k < n);
    } while (n > 0);
    buf_free(&m);
}

static void emitf(struct step *s, enum pipeline_step_log_kind kind, int forced, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
static void emitf(struct step *s, enum pipeline_step_log_kind kind, int forced, const char *fmt,
                  ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    emit(s, kind, b.data, b.len, forced);
    buf_free(&b);
}

/* ---- annotations ---------------------------------------------------------------------------- */

static char *masked_copy(struct step *s, const char *v, size_t len, size_t max)
{
    struct buf b = BUF_INIT;
    if (!v)
        return NULL;
    step_masker_write(&s->mask, v, len, 0, len, &b);
    if (b.len > max) { /* cut at a character boundary */
        size_t n = max;
        while (n > 0 && ((unsigned char)b.data[n] & 0xc0) == 0x80)
            n--;
        b.len = n;
        b.data[n] = '\0';
    }
    return b.data ? buf_detach(&b, NULL) : xstrdup("");
}

/* ExecutionContext.AddIssue: logged whole, counted, kept (message masked and
 * cut to 4096) while fewer than 100 of its level are. props: a command's. */
static void annotate(struct step *s, enum pipeline_step_level level, const char *msg, size_t len,
                     const struct pipeline_step_vars *props, int forced)
{
    static const enum pipeline_step_log_kind kinds[] = {PIPELINE_LOG_NOTICE, PIPELINE_LOG_WARNING,
                                                        PIPELINE_LOG_ERROR};
    struct pipeline_step_result *r = s->r;
    emit(s, kinds[level], msg, len, forced);
    *(level == PIPELINE_ERROR     ? &r->errors
      : level == PIPELINE_WARNING ? &r->warnings
                                  : &r->notices) += 1;
    if (s->kept[level] >= PIPELINE_STEP_ANNOTATIONS_MAX)
        return;
    s->kept[level]++;
    r->annotations = xrealloc(r->annotations, (r->nannotations + 1) * sizeof(*r->annotations));
    struct pipeline_step_annotation *a = &r->annotations[r->nannotations++];
    memset(a, 0, sizeof(*a));
    a->level = level;
    a->message = masked_copy(s, msg, len, PIPELINE_STEP_MESSAGE_MAX);
    if (!props)
        return;
    const char *names[] = {"title", "file", "line", "endLine", "col", "endColumn"};
    char **fields[] = {&a->title, &a->file, &a->line, &a->end_line, &a->col, &a->end_column};
    for (size_t i = 0; i < 6; i++) {
        const struct pipeline_step_var *v = pipeline_step_vars_get(props, names[i]);
        if (v)
            *fields[i] = masked_copy(s, v->value, v->value_len, PIPELINE_STEP_MESSAGE_MAX);
    }
}

static void errorf(struct step *s, int forced, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errorf(struct step *s, int forced, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    annotate(s, PIPELINE_ERROR, b.data, b.len, NULL, forced);
    buf_free(&b);
}

static void warnf(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(struct step *s, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vaddf(&b, fmt, ap);
    va_end(ap);
    annotate(s, PIPELINE_WARNING, b.data, b.len, NULL, 0);
    buf_free(&b);
}

/* ---- workflow commands ----------------------------------------------------------------------- */

/* int.TryParse(s) with NumberStyles.Integer: optional white space around,
 * an optional sign, ASCII digits, within int32. */
static int net_int(const char *s, long *v)
{
    long n = 0;
    int neg = 0, digits = 0;
    if (!s)
        return 0;
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        n = n * 10 + (*s - '0');
        if (n > 2147483648L)
            return 0;
    }
    while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
        s++;
    if (!digits || *s || (!neg && n > 2147483647L))
        return 0;
    *v = neg ? -n : n;
    return 1;
}

static void prop_del(struct pipeline_step_vars *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++) {
        if (!strcmp(p->v[i].name, name)) {
            free(p->v[i].name);
            free(p->v[i].value);
            p->v[i] = p->v[--p->n];
            return;
        }
    }
}

/* The annotation properties under GitHub's names (the parser kept the
 * spelling written; lookups ignore case), then IssueCommandExtension's
 * ValidateLinesAndColumns. */
static void issue_props(struct step *s, const struct pipeline_step_command *c,
                        struct pipeline_step_vars *p)
{
    static const char *const names[] = {"title", "file", "line", "endLine", "col", "endColumn"};
    for (size_t i = 0; i < 6; i++) {
        const char *v = pipeline_step_command_prop(c, names[i]);
        if (v)
            pipeline_step_vars_set(p, names[i], strlen(names[i]), v, strlen(v));
    }
    const struct pipeline_step_var *l = pipeline_step_vars_get(p, "line");
    const struct pipeline_step_var *el = pipeline_step_vars_get(p, "endLine");
    const struct pipeline_step_var *co = pipeline_step_vars_get(p, "col");
    const struct pipeline_step_var *ec = pipeline_step_vars_get(p, "endColumn");
    long ln = 0, eln = 0, cn = 0, ecn = 0;
    int has_l = net_int(l ? l->value : NULL, &ln), has_el = net_int(el ? el->value : NULL, &eln);
    int has_c = net_int(co ? co->value : NULL, &cn), has_ec = net_int(ec ? ec->value : NULL, &ecn);
    int has_col = has_c || has_ec;
    char *line = l ? xstrdup(l->value) : NULL;
    char *end_line = el ? xstrdup(el->value) : NULL;

    if (has_el && !has_l) {
        pipeline_step_vars_set(p, "line", 4, end_line, strlen(end_line));
        free(line);
        line = xstrdup(end_line);
        has_l = 1;
    }
    if (has_ec && !has_c) {
        const struct pipeline_step_var *e = pipeline_step_vars_get(p, "endColumn");
        char *v = xstrdup(e->value);
        pipeline_step_vars_set(p, "col", 3, v, strlen(v));
        free(v);
        has_c = 1;
    }
    if ((!has_l && has_col) || (has_el && strcmp(line, end_line) && has_col)) {
        prop_del(p, "col");
        prop_del(p, "endColumn");
    }
    if (has_l && has_el && eln < ln) {
        prop_del(p, "line");
        prop_del(p, "endLine");
    }
    if (has_c && has_ec && ecn < cn) {
        prop_del(p, "col");
        prop_del(p, "endColumn");
    }
    free(line);
    free(end_line);
    /* IssueCommandExtension: a file inside the workspace is named relative to it. */
    const struct pipeline_step_var *f = pipeline_step_vars_get(p, "file");
    const char *ws = s->spec->workspace;
    size_t wl = ws ? strlen(ws) : 0;
    while (wl > 1 && ws[wl - 1] == '/')
        wl--;
    if (f && wl && f->value_len > wl + 1 && !strncmp(f->value, ws, wl) && f->value[wl] == '/') {
        char *rel = xstrdup(f->value + wl + 1);
        pipeline_step_vars_set(p, "file", 4, rel, strlen(rel));
        free(rel);
    }
}

/* The catch around an extension: "Unable to process command …", the
 * reason, and the step fails. */
static void command_failed(struct step *s, const struct pipeline_step_command *c, const char *line,
                           size_t len, int omit_echo, const char *why)
{
    if (omit_echo)
        errorf(s, 0, "Unable to process command '%s' successfully.", c->name);
    else
        errorf(s, 0, "Unable to process command '%.*s' successfully.", (int)len, line);
    errorf(s, 0, "%s", why);
    s->failed = 1;
}

static void add_mask(struct step *s, const char *v, size_t len)
{
    size_t before = s->mask.values.n;
    if (s->mask.values.n >= MASKS_MAX || s->mask.bytes + len > MASK_BYTES_MAX) {
        if (!s->masks_full)
            errorf(s, 1,
                   "slipway: this step added more masks than it may (%d, or %zu MiB); the rest of "
                   "its output is discarded",
                   MASKS_MAX, MASK_BYTES_MAX >> 20);
        s->masks_full = s->failed = 1;
        return;
    }
    step_masker_add(&s->mask, v, len);
    for (size_t i = before; i < s->mask.values.n; i++)
        pipeline_step_list_add(&s->r->masks, s->mask.values.v[i], strlen(s->mask.values.v[i]));
}

/* AddMaskCommandExtension: the value as given, and each of its lines trimmed. */
static void add_mask_command(struct step *s, const char *v, size_t len)
{
    add_mask(s, v, len);
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && v[i] != '\r' && v[i] != '\n')
            continue;
        size_t n = i - start;
        const char *p = step_trim(v + start, &n);
        if (n)
            add_mask(s, p, n);
        start = i + 1;
    }
}

static void set_output(struct step *s, const char *name, size_t nlen, const char *v, size_t vlen)
{
    const struct pipeline_step_var *old = NULL;
    for (size_t i = 0; i < s->r->outputs.n; i++)
        if (strlen(s->r->outputs.v[i].name) == nlen && !memcmp(s->r->outputs.v[i].name, name, nlen))
            old = &s->r->outputs.v[i];
    size_t size = s->outputs_size - (old ? nlen + old->value_len : 0) + nlen + vlen;
    if (size > OUTPUTS_MAX) {
        errorf(s, 0, "slipway keeps at most %zu MiB of a step's outputs: output '%.*s' is dropped",
               OUTPUTS_MAX >> 20, (int)(nlen > 256 ? 256 : nlen), name);
        s->failed = 1;
        return;
    }
    s->outputs_size = size;
    pipeline_step_vars_set(&s->r->outputs, name, nlen, v, vlen);
}

static int is_secret_name(const char *name, size_t len)
{
    return len >= 15 && !memcmp(name, "SLIPWAY_SECRET_", 15);
}

static int is_blocked_env(const char *name, size_t len)
{
    return expr_eq_fold(name, len, "NODE_OPTIONS", 12);
}

/* The commands that change the step's results or the log (after echo). */
static void run_command(struct step *s, const struct pipeline_step_command *c, const char *line,
                        size_t len)
{
    const char *n = c->name, *name;
    if (!strcmp(n, "set-output") || !strcmp(n, "save-state")) {
        /* SetOutputCommandExtension and SaveStateCommandExtension warn at
         * every use (github.com has their deprecation flag on). */
        warnf(s, DEPRECATED, n);
        name = pipeline_step_command_prop(c, "name");
        if (!name || !*name) {
            char why[96];
            snprintf(why, sizeof(why), "Required field 'name' is missing in ##[%s] command.", n);
            command_failed(s, c, line, len, 0, why);
        } else if (!strcmp(n, "set-output")) {
            set_output(s, name, strlen(name), c->data, c->data_len);
        }
    } else if (!strcmp(n, "add-mask")) {
        size_t dl = c->data_len;
        step_trim(c->data, &dl);
        if (dl == 0) {
            warnf(s, "Can't add secret mask for empty string in ##[add-mask] command.");
        } else {
            if (s->echo)
                emit(s, PIPELINE_LOG_OUTPUT, "::add-mask::***", 15, 0);
            add_mask_command(s, c->data, c->data_len);
        }
    } else if (!strcmp(n, "set-env") || !strcmp(n, "add-path")) {
        char why[512];
        if (!s->allow_unsecure) {
            snprintf(why, sizeof(why), DISABLED, n);
            command_failed(s, c, line, len, 0, why);
        } else if (!strcmp(n, "set-env")) {
            name = pipeline_step_command_prop(c, "name");
            if (!name || !*name)
                command_failed(s, c, line, len, 0,
                               "Required field 'name' is missing in ##[set-env] command.");
            else if (is_blocked_env(name, strlen(name)))
                errorf(s, 0,
                       "Can't update NODE_OPTIONS environment variable using ::set-env:: "
                       "command.");
            else if (is_secret_name(name, strlen(name)))
                errorf(s, 0,
                       "slipway never passes SLIPWAY_SECRET_* variables to steps: '%s' is "
                       "not set",
                       name);
            else
                pipeline_step_vars_set(&s->r->env, name, strlen(name), c->data, c->data_len);
        } else if (c->data_len == 0) {
            command_failed(s, c, line, len, 0, "Value cannot be null. (Parameter 'path')");
        } else {
            pipeline_step_list_add(&s->r->path, c->data, c->data_len);
        }
    } else if (!strcmp(n, "debug")) {
        if (s->spec->debug)
            emit(s, PIPELINE_LOG_DEBUG, c->data, c->data_len, 0);
    } else if (!strcmp(n, "error") || !strcmp(n, "warning") || !strcmp(n, "notice")) {
        struct pipeline_step_vars p = PIPELINE_STEP_VARS_INIT;
        issue_props(s, c, &p);
        annotate(s,
                 n[0] == 'e'   ? PIPELINE_ERROR
                 : n[0] == 'w' ? PIPELINE_WARNING
                               : PIPELINE_NOTICE,
                 c->data, c->data_len, &p, 0);
        pipeline_step_vars_free(&p);
    } else if (!strcmp(n, "group")) {
        emit(s, PIPELINE_LOG_GROUP, c->data, c->data_len, 0);
    } else if (!strcmp(n, "endgroup")) {
        emit(s, PIPELINE_LOG_ENDGROUP, "", 0, 0);
    } else if (!strcmp(n, "echo")) {
        size_t dl = c->data_len;
        const char *d = step_trim(c->data, &dl);
        if (c->data_len == 0)
            command_failed(s, c, line, len, 0, "Value cannot be null. (Parameter 'value')");
        else if (expr_eq_fold(d, dl, "on", 2))
            s->echo = 1;
        else if (expr_eq_fold(d, dl, "off", 3))
            s->echo = 0;
        else {
            struct buf why = BUF_INIT;
            buf_addf(&why,
                     "Invalid echo command value. Possible values can be: 'on', 'off'. Current "
                     "value is: '%.*s'.",
                     (int)(c->data_len > 512 ? 512 : c->data_len), c->data);
            command_failed(s, c, line, len, 0, why.data);
            buf_free(&why);
        }
    } else if (s->spec->debug) { /* add-matcher, remove-matcher */
        emitf(s, PIPELINE_LOG_DEBUG, 0, "slipway runs no problem matchers: ::%s:: is ignored", n);
    }
}

/* A token's length as .NET counts it (UTF-16 code units). */
static size_t utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += expr_utf8_next((const unsigned char *)s + i, n - i, &cp);
        units += cp >= 0x10000 ? 2 : 1;
    }
    return units;
}

/* ActionCommandManager.TryProcessCommand: 1 when the line was a command
 * (and is not logged as output). */
static int process_command(struct step *s, const struct pipeline_step_command *c, const char *line,
                           size_t len)
{
    static const char *const omit[] = {"add-mask", "debug", "warning", "error", "notice", NULL};
    if (s->stop_token) {
        if (!c->is_stop_token)
            return 0;
        emit(s, PIPELINE_LOG_OUTPUT, line, len, 0);
        free(s->stop_token);
        s->stop_token = NULL;
        return 1;
    }
    if (!strcmp(c->name, "stop-commands")) {
        int bad = c->data_len == 0 || step_is_command(c->data, c->data_len) ||
                  expr_eq_fold(c->data, c->data_len, "pause-logging", 13) ||
                  memchr(c->data, '\0', c->data_len);
        if (bad && !s->allow_unsecure_stop) {
            /* ValidateStopToken throws outside the extension's catch: the
             * command is refused and the step fails. */
            errorf(s, 0, "%s", BAD_STOP_TOKEN);
            s->failed = 1;
            return 1;
        }
        if (utf16_len(c->data, c->data_len) > 6)
            add_mask(s, c->data, c->data_len);
        s->stop_token = xstrndup(c->data, c->data_len);
        emit(s, PIPELINE_LOG_OUTPUT, line, len, 0);
        return 1;
    }
    int omit_echo = 0;
    for (const char *const *o = omit; *o; o++)
        omit_echo |= !strcmp(*o, c->name);
    if (s->echo && !omit_echo)
        emit(s, PIPELINE_LOG_OUTPUT, line, len, 0);
    run_command(s, c, line, len);
    return 1;
}

/* One whole line of output (no '\n' or '\r'). */
static void handle_line(struct step *s, const char *line, size_t len)
{
    struct pipeline_step_command c;
    if (pipeline_step_command_parse(line, len, s->stop_token, &c)) {
        int done = process_command(s, &c, line, len);
        pipeline_step_command_free(&c);
        if (done)
            return;
    }
    if (s->masks_full)
        return;
    buf_reset(&s->tmp);
    step_masker_write(&s->mask, line, len, 0, len, &s->tmp);
    sink(s, PIPELINE_LOG_OUTPUT, s->tmp.data ? s->tmp.data : "", s->tmp.len, 0);
}

/* ---- reading lines --------------------------------------------------------------------------- */

/* Writes what can be written of an overlong line: all of it when final,
 * else all but what could still be the start of a secret. */
static void write_piece(struct step *s, int final)
{
    size_t keep = s->mask.longest_line ? s->mask.longest_line - 1 : 0;
    size_t cut = final ? s->pend.len : s->pend.len > keep ? s->pend.len - keep : 0;
    if (cut == 0)
        return; /* nothing yet, or the end of a line already written whole */
    buf_reset(&s->tmp);
    s->pend_pre = step_masker_write(&s->mask, s->pend.data, s->pend.len, s->pend_pre, cut, &s->tmp);
    if (!s->masks_full)
        sink(s, PIPELINE_LOG_OUTPUT, s->tmp.data ? s->tmp.data : "", s->tmp.len, 0);
    memmove(s->pend.data, s->pend.data + cut, s->pend.len - cut);
    s->pend.len -= cut;
    s->pend.data[s->pend.len] = '\0';
}

static void line_done(struct step *s)
{
    if (s->overlong)
        write_piece(s, 1);
    else
        handle_line(s, s->pend.data ? s->pend.data : "", s->pend.len);
    buf_reset(&s->pend);
    s->overlong = 0;
    s->pend_pre = 0;
}

/* Lines end at '\n', '\r' or "\r\n", as .NET's ReadLine ends them. */
static void feed(struct step *s, const char *d, size_t n, int ends)
{
    while (n) {
        const char *cr = memchr(d, '\r', n);
        size_t take = cr ? (size_t)(cr - d) : n;
        if (take || !cr)
            s->after_cr = 0;
        buf_add(&s->pend, d, take);
        if (s->pend.len > LINE_MAX_HELD) {
            s->overlong = 1;
            write_piece(s, 0);
        }
        if (!cr)
            break;
        line_done(s);
        s->after_cr = 1;
        d = cr + 1, n -= take + 1;
    }
    if (!ends)
        return;
    if (!(s->pend.len == 0 && !s->overlong && s->after_cr))
        line_done(s);
    s->after_cr = 0;
}

/* proc_run's callback: a line, or a PROC_LINE_MAX piece of a longer one. */
static void on_line(void *ctx, int stream, const char *line, size_t len)
{
    feed(ctx, line, len, len != PROC_LINE_MAX);
}

/* ---- the shell ------------------------------------------------------------------------------- */

/* .NET's ParseArgumentsIntoList (Process.Start on Unix): blanks separate,
 * double quotes group, backslashes escape a quote. */
static void split_args(const char *a, struct pipeline_step_list *out)
{
    size_t n = strlen(a), i = 0;
    struct buf cur = BUF_INIT;
    while (i < n) {
        while (i < n && (a[i] == ' ' || a[i] == '\t'))
            i++;
        if (i == n)
            break;
        int quoted = 0;
        buf_reset(&cur);
        buf_add(&cur, "", 0);
        while (i < n) {
            size_t bs = 0;
            while (i < n && a[i] == '\\')
                i++, bs++;
            if (bs) {
                if (i >= n || a[i] != '"') {
                    for (size_t k = 0; k < bs; k++)
                        buf_add(&cur, "\\", 1);
                } else {
                    for (size_t k = 0; k < bs / 2; k++)
                        buf_add(&cur, "\\", 1);
                    if (bs % 2)
                        buf_add(&cur, "\"", 1), i++;
                }
                continue;
            }
            if (a[i] == '"') {
                if (quoted && i + 1 < n && a[i + 1] == '"')
                    buf_add(&cur, "\"", 1), i++;
                else
                    quoted = !quoted;
                i++;
                continue;
            }
            if ((a[i] == ' ' || a[i] == '\t') && !quoted)
                break;
            buf_add(&cur, a + i, 1);
            i++;
        }
        pipeline_step_list_add(out, cur.data, cur.len);
    }
    buf_free(&cur);
}

/* WhichUtil.Which: a name with a '/' as it is (relative to dir), else the
 * first executable regular file of that name along path. Caller frees. */
static char *which(const char *cmd, const char *path, const char *dir)
{
    struct stat st;
    if (strchr(cmd, '/')) {
        char *p = cmd[0] == '/' ? xstrdup(cmd) : path_join(dir, cmd);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0)
            return p;
        free(p);
        return NULL;
    }
    for (const char *d = path; d && *d;) {
        const char *e = strchr(d, ':');
        size_t n = e ? (size_t)(e - d) : strlen(d);
        if (n) {
            char *dn = xstrndup(d, n), *p = path_join(dn, cmd);
            free(dn);
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0)
                return p;
            free(p);
        }
        d = e ? e + 1 : NULL;
    }
    return NULL;
}

struct shell {
    char *cmd;    /* as named: "bash", "python", "perl" */
    char *path;   /* resolved */
    char *argfmt; /* "-e {0}" */
    const char *ext;
    int unsupported;
};

static void shell_free(struct shell *sh)
{
    free(sh->cmd);
    free(sh->path);
    free(sh->argfmt);
}

static const char *default_args(const char *cmd)
{
    static const char *const map[][2] = {
        {"bash", "--noprofile --norc -e -o pipefail {0}"},
        {"sh", "-e {0}"},
        {"python", "{0}"},
        {"pwsh", "-command \". '{0}'\""},
        {"powershell", "-command \". '{0}'\""},
        {"cmd", "/D /E:ON /V:OFF /S /C \"CALL \"{0}\"\""},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i][0], cmd))
            return map[i][1];
    return "";
}

/* ScriptHandler's choice of shell. The message (error) is one log line. */
static int shell_resolve(const struct pipeline_step_spec *spec, const char *path, struct shell *sh,
                         struct buf *error)
{
    memset(sh, 0, sizeof(*sh));
    if (!spec->shell || !*spec->shell) {
        /* Unspecified: "sh" arguments run by bash when there is one. */
        sh->cmd = xstrdup("sh");
        sh->argfmt = xstrdup(default_args("sh"));
        sh->path = which("bash", path, spec->working_directory);
        if (!sh->path)
            sh->path = which("sh", path, spec->working_directory);
        if (!sh->path) {
            buf_adds(error, "sh: command not found");
            return -1;
        }
        sh->ext = ".sh";
        return 0;
    }
    /* ParseShellOptionString: Split(" ", 2, RemoveEmptyEntries). */
    const char *s = spec->shell;
    while (*s == ' ')
        s++;
    const char *sp = strchr(s, ' ');
    if (!*s) {
        buf_addf(error, "Failed to parse COMMAND [..ARGS] from %s", spec->shell);
        return -1;
    }
    sh->cmd = sp ? xstrndup(s, (size_t)(sp - s)) : xstrdup(s);
    const char *args = sp ? sp + 1 : "";
    size_t k;
    while ((k = expr_space_len((const unsigned char *)args, strlen(args))) > 0)
        args += k; /* TrimStart */
    sh->argfmt = *args ? xstrdup(args) : xstrdup(default_args(sh->cmd));
    const char *base = strrchr(sh->cmd, '/') ? strrchr(sh->cmd, '/') + 1 : sh->cmd;
    if (!strcmp(base, "pwsh") || !strcmp(base, "powershell") || !strcmp(base, "cmd")) {
        sh->unsupported = 1;
        buf_addf(error,
                 "The shell '%s' is not supported: slipway runs bash, sh, python and command "
                 "templates with {0} (`unsupported: skip` skips such steps)",
                 sh->cmd);
        return -1;
    }
    if (!strstr(sh->argfmt, "{0}")) {
        buf_adds(error, "Invalid shell option. Shell must be a valid built-in (bash, sh, cmd, "
                        "powershell, pwsh) or a format string containing '{0}'");
        return -1;
    }
    sh->path = which(sh->cmd, path, spec->working_directory);
    /* Debian has no `python` unless python-is-python3 is installed; GitHub's
     * images have it, as python3. */
    if (!sh->path && !strcmp(sh->cmd, "python"))
        sh->path = which("python3", path, spec->working_directory);
    if (!sh->path) {
        buf_addf(error, "%s: command not found", sh->cmd);
        return -1;
    }
    sh->ext = !strcmp(sh->cmd, "python") ? ".py" : ".sh";
    return 0;
}

/* string.Format(argfmt, script): "{0}" is the script, "{{" and "}}" braces;
 * any other brace is a format error. */
static int shell_format(const char *fmt, const char *script, struct buf *out, struct buf *error)
{
    for (const char *p = fmt; *p; p++) {
        if (!strncmp(p, "{0}", 3)) {
            for (const char *q = script; *q; q++)
                buf_adds(out, *q == '"' ? "\\\"" : (char[]){*q, 0});
            p += 2;
        } else if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            buf_add(out, p, 1);
            p++;
        } else if (*p == '{' || *p == '}') {
            buf_addf(error, "Invalid shell option: '%s' is not a format string of {0}", fmt);
            return -1;
        } else {
            buf_add(out, p, 1);
        }
    }
    return 0;
}

/* ---- the environment
 * ------------------------------------------------------------------------------ */

static void env_layer(struct step *s, struct pipeline_step_vars *e,
                      const struct pipeline_step_vars *layer, int quiet)
{
    for (size_t i = 0; layer && i < layer->n; i++) {
        const struct pipeline_step_var *v = &layer->v[i];
        size_t nl = strlen(v->name);
        if (is_secret_name(v->name, nl)) {
            if (!quiet)
                emitf(s, PIPELINE_LOG_WARNING, 0,
                      "slipway never passes SLIPWAY_SECRET_* variables to steps: %s is not "
                      "passed",
                      v->name);
            continue;
        }
        if (nl == 0 || strchr(v->name, '=')) {
            if (!quiet)
                emitf(s, PIPELINE_LOG_WARNING, 0,
                      "'%s' cannot name an environment variable: it is not passed", v->name);
            continue;
        }
        pipeline_step_vars_set(e, v->name, nl, v->value, v->value_len);
    }
}

static void env_set(struct pipeline_step_vars *e, const char *name, const char *value)
{
    pipeline_step_vars_set(e, name, strlen(name), value, strlen(value));
}

/* The step's whole environment (see pipeline_step_spec); quiet: without
 * logging what is left out (a first look, for the PATH). */
static void env_build(struct step *s, struct pipeline_step_vars *e, const char *const files[5],
                      const char *tracking, int quiet)
{
    static const char *const names[] = {"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH",
                                        "GITHUB_STATE", "GITHUB_STEP_SUMMARY"};
    const struct pipeline_step_spec *spec = s->spec;
    const char *v;
    if ((v = getenv("PATH")) != NULL)
        env_set(e, "PATH", v);
    if ((v = getenv("HOME")) != NULL)
        env_set(e, "HOME", v);
    env_set(e, "CI", "true");
    env_layer(s, e, spec->env, quiet);
    env_layer(s, e, spec->runner_env, quiet);
    if (!pipeline_step_vars_get(e, "RUNNER_TEMP"))
        env_set(e, "RUNNER_TEMP", spec->temp_dir);
    if (tracking)
        env_set(e, "RUNNER_TRACKING_ID", tracking);
    for (int i = 0; i < 5; i++)
        env_set(e, names[i], files[i]);
    if (spec->path && spec->path->n) {
        /* PathUtil.PrependPath: the job's directories newest first. */
        struct buf p = BUF_INIT;
        for (size_t i = spec->path->n; i-- > 0;)
            buf_addf(&p, "%s%s", spec->path->v[i], i ? ":" : "");
        const struct pipeline_step_var *old = pipeline_step_vars_get(e, "PATH");
        if (old && old->value_len)
            buf_addf(&p, ":%s", old->value);
        env_set(e, "PATH", p.data);
        buf_free(&p);
    }
}

/* ---- files
 * ------------------------------------------------------------------------------------------ */

static int make_file(const char *path, const char *data, size_t len, mode_t mode,
                     struct sw_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return sw_err_sys(err, errno, "%s", path);
    int w = len ? fd_write_all(fd, data, len) : 0;
    if (close(fd) < 0 && !w)
        w = -errno;
    if (w)
        return sw_err_sys(err, -w, "%s", path);
    return 0;
}

/* Reads a file the step may have replaced by anything: a regular file only
 * (a FIFO would block, a device never end), at most max bytes. 0 with
 * *data NULL when it is gone; 1 when it is larger than max (*size set). */
static int read_back(const char *path, size_t max, char **data, size_t *len, size_t *size,
                     struct buf *error)
{
    struct stat st;
    *data = NULL, *len = 0, *size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        buf_addf(error, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        buf_addf(error, "%s is not a regular file any more", path);
        close(fd);
        return -1;
    }
    *size = (size_t)st.st_size;
    if ((size_t)st.st_size > max) {
        close(fd);
        return 1;
    }
    struct buf b = BUF_INIT;
    for (;;) {
        buf_grow(&b, 65536);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            buf_addf(error, "%s: %s", path, strerror(errno));
            buf_free(&b);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
        if (b.len > max) { /* it grew while read: something still writes it */
            *size = b.len;
            buf_free(&b);
            close(fd);
            return 1;
        }
    }
    close(fd);
    *data = buf_detach(&b, len);
    return 0;
}

struct pairs {
    struct step *s;
    int kind; /* 0 output, 1 env, 2 state */
};

static void on_pair(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen,
                    const char *delim, size_t dlen)
{
    struct pairs *p = ctx;
    struct step *s = p->s;
    if (p->kind == 0) {
        set_output(s, name, nlen, value, vlen);
    } else if (p->kind == 1) {
        if (is_blocked_env(name, nlen))
            errorf(s, 0, "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.");
        else if (is_secret_name(name, nlen))
            errorf(s, 0,
                   "slipway never passes SLIPWAY_SECRET_* variables to steps: '%.*s' from "
                   "$GITHUB_ENV is not set",
                   (int)(nlen > 256 ? 256 : nlen), name);
        else
            pipeline_step_vars_set(&s->r->env, name, nlen, value, vlen);
    }
}

/* FileCommandManager.ProcessFiles: each file's faults as GitHub reports them. */
static void file_commands(struct step *s, const char *const files[5])
{
    static const char *const ctx_names[] = {"output", "env", "path", "state", "step_summary"};
    static const char *const var_names[] = {"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH",
                                            "GITHUB_STATE", "GITHUB_STEP_SUMMARY"};
    static const int order[] = {2, 1, 4, 3,
                                0}; /* the runner's: path, env, summary, state, output */
    size_t max = s->spec->max_file ? s->spec->max_file : PIPELINE_STEP_FILE_MAX;
    for (int k = 0; k < 5; k++) {
        int i = order[k];
        char *data;
        size_t len, size;
        struct buf error = BUF_INIT;
        struct sw_err err = {0};
        size_t limit = i == 4 ? PIPELINE_STEP_SUMMARY_MAX : max;
        int rc = read_back(files[i], limit, &data, &len, &size, &error);
        size_t bom =
            rc == 0 && data && (i == 2 || i == 4) && len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3)
                ? 3
                : 0; /* .NET's readers drop a UTF-8 byte order mark */
        if (rc == 1 && i == 4) {
            errorf(s, 1, SUMMARY_TOO_BIG, limit / 1024, size / 1024);
        } else if (rc == 1) {
            char lim[32];
            size_format(limit, lim, sizeof(lim));
            buf_addf(&error, "%s holds %zu bytes, more than the %s slipway reads", var_names[i],
                     size, lim);
        } else if (rc == 0 && data && i == 2) {
            /* File.ReadAllLines: lines end at "\r\n", '\n' or '\r'; empty ones skipped. */
            for (size_t a = bom, b = bom; b <= len; b++) {
                if (b < len && data[b] != '\n' && data[b] != '\r')
                    continue;
                if (b > a)
                    pipeline_step_list_add(&s->r->path, data + a, b - a);
                if (b + 1 < len && data[b] == '\r' && data[b + 1] == '\n')
                    b++;
                a = b + 1;
            }
        } else if (rc == 0 && data && i == 4 && len) {
            /* Masked line by line and written back with '\n' ends. */
            struct buf out = BUF_INIT;
            for (size_t a = bom, b = bom; b <= len; b++) {
                if (b < len && data[b] != '\n' && data[b] != '\r')
                    continue;
                if (b == len && a == len)
                    break;
                step_masker_write(&s->mask, data + a, b - a, 0, b - a, &out);
                buf_add(&out, "\n", 1);
                if (b + 1 < len && data[b] == '\r' && data[b + 1] == '\n')
                    b++;
                a = b + 1;
            }
            if (out.len)
                s->r->summary = buf_detach(&out, &s->r->summary_len);
            buf_free(&out);
        } else if (rc == 0 && data) {
            struct pairs p = {s, i == 0 ? 0 : i == 1 ? 1 : 2};
            if (pipeline_step_file_parse(data, len, on_pair, &p, &err))
                buf_adds(&error, err.msg);
        }
        if (error.len && i == 4) {
            /* CreateStepSummaryCommand reports its faults without failing. */
            errorf(s, 1, "Failed to create step summary using 'GITHUB_STEP_SUMMARY': %s",
                   error.data);
        } else if (error.len) {
            errorf(s, 1, "Unable to process file command '%s' successfully.", ctx_names[i]);
            errorf(s, 1, "%s", error.data);
            s->failed = 1;
        }
        free(data);
        buf_free(&error);
    }
}

/* ---- running
 * ------------------------------------------------------------------------------------------ */

/* ScriptHandler.PrintActionDetails: the script, the shell and the env. */
static void header(struct step *s, const struct shell *sh)
{
    const char *c = s->spec->script;
    while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n')
        c++;
    emitf(s, PIPELINE_LOG_GROUP, 0, "Run %.*s", (int)strcspn(c, "\r\n"), c);
    size_t n = strlen(s->spec->script);
    while (n && (s->spec->script[n - 1] == '\n' || s->spec->script[n - 1] == '\r'))
        n--;
    emit(s, PIPELINE_LOG_OUTPUT, s->spec->script, n, 0);
    emitf(s, PIPELINE_LOG_OUTPUT, 0, "shell: %s %s", sh->path, sh->argfmt);
    const struct pipeline_step_vars *e = s->spec->env;
    if (e && e->n) {
        emit(s, PIPELINE_LOG_OUTPUT, "env:", 4, 0);
        for (size_t i = 0; i < e->n; i++)
            if (!is_secret_name(e->v[i].name, strlen(e->v[i].name)))
                emitf(s, PIPELINE_LOG_OUTPUT, 0, "  %s: %.*s", e->v[i].name, (int)e->v[i].value_len,
                      e->v[i].value);
    }
    emit(s, PIPELINE_LOG_ENDGROUP, "", 0, 0);
}

/* An opt-in of the env context: bool.TryParse ("true", any case, blanks
 * around), and with numbers StringUtil.ConvertToBoolean ("1", "$true" too). */
static int env_true(const struct pipeline_step_vars *e, const char *name, int numbers)
{
    const struct pipeline_step_var *v = pipeline_step_vars_get(e, name);
    if (!v)
        return 0;
    size_t n = v->value_len;
    const char *t = numbers ? v->value : step_trim(v->value, &n);
    return expr_eq_fold(t, n, "true", 4) ||
           (numbers && ((n == 1 && t[0] == '1') || expr_eq_fold(t, n, "$true", 5)));
}

static char **envp_of(const struct pipeline_step_vars *e)
{
    char **envp = xcalloc(e->n + 1, sizeof(*envp));
    for (size_t i = 0; i < e->n; i++)
        envp[i] = xasprintf("%s=%s", e->v[i].name, e->v[i].value);
    return envp;
}

static void envp_free(char **envp)
{
    for (char **p = envp; p && *p; p++)
        free(*p);
    free(envp);
}

/* Sets the outcome and writes the runner's closing errors. */
static void conclude(struct step *s, const struct proc_result *pr)
{
    struct pipeline_step_result *r = s->r;
    r->exited = pr->exited;
    r->signal = pr->signal;
    /* .NET reports a process a signal ended as 128 + the signal. */
    r->exit_code = pr->exited ? pr->exit_code : 128 + pr->signal;
    r->timed_out = pr->timed_out;
    r->cancelled = pr->cancelled;
    if (pr->cancelled) {
        errorf(s, 1, "The operation was canceled.");
        r->outcome = PIPELINE_STEP_CANCELLED;
        return;
    }
    if (pr->timed_out) {
        errorf(s, 1, "The action '%s' has timed out after %g minutes.",
               s->spec->name ? s->spec->name : "run", (double)s->spec->timeout_ms / 60000.0);
        r->outcome = PIPELINE_STEP_FAILURE;
        return;
    }
    if (r->exit_code != 0) {
        errorf(s, 1, "Process completed with exit code %d.", r->exit_code);
        r->outcome = PIPELINE_STEP_FAILURE;
        return;
    }
    r->outcome = s->failed ? PIPELINE_STEP_FAILURE : PIPELINE_STEP_SUCCESS;
}

static int run(struct step *s, const struct shell *sh, const char *tracking, struct sw_err *err)
{
    const struct pipeline_step_spec *spec = s->spec;
    char id[ID_LEN(1) + 1], *files[5] = {0}, *dir = NULL, *script = NULL, **envp = NULL;
    static const char *const prefixes[] = {"set_output_", "set_env_", "add_path_", "save_state_",
                                           "step_summary_"};
    struct pipeline_step_vars env = PIPELINE_STEP_VARS_INIT;
    struct pipeline_step_list argv = PIPELINE_STEP_LIST_INIT;
    struct buf args = BUF_INIT, error = BUF_INIT;
    struct proc_result pr;
    int rc;

    if ((rc = id_new("s", id, sizeof(id))) != 0) {
        sw_err_set(err, rc, "cannot make a step id");
        goto out;
    }
    dir = path_join(spec->temp_dir, "_runner_file_commands");
    if ((rc = fs_mkdir_p(dir, err)) != 0)
        goto out;
    for (int i = 0; i < 5; i++) {
        files[i] = xasprintf("%s/%s%s", dir, prefixes[i], id);
        if ((rc = make_file(files[i], NULL, 0, 0644, err)) != 0)
            goto out;
    }
    script = xasprintf("%s/%s%s", spec->temp_dir, id, sh->ext);
    /* 0600: the script holds the values of its expressions, secrets included. */
    if ((rc = make_file(script, spec->script, strlen(spec->script), 0600, err)) != 0)
        goto out;

    env_build(s, &env, (const char *const *)files, tracking, 0);
    envp = envp_of(&env);
    pipeline_step_list_add(&argv, sh->path, strlen(sh->path));
    if (shell_format(sh->argfmt, script, &args, &error) == 0)
        split_args(args.data ? args.data : "", &argv);
    pipeline_step_list_add(&argv, "", 0);
    free(argv.v[argv.n - 1]);
    argv.v[--argv.n] = NULL; /* NULL-terminated for proc_run; n counts the words */
    if (error.len) {
        errorf(s, 1, "%s", error.data);
        s->r->outcome = PIPELINE_STEP_FAILURE;
        goto files;
    }

    struct proc_opts o = {
        .argv = (const char *const *)argv.v,
        .cwd = spec->working_directory,
        .env = (const char *const *)envp,
        .flags = PROC_MERGE | PROC_NO_CAPTURE,
        .timeout_ms = spec->timeout_ms,
        .kill_grace_ms = spec->kill_grace_ms > 0 ? spec->kill_grace_ms : PIPELINE_STEP_GRACE_MS,
        .cancel = spec->cancel,
        .on_line = on_line,
        .ctx = s,
    };
    struct sw_err perr = {0};
    if (proc_run(&o, &pr, &perr) != 0) {
        /* The workflow's fault (a working-directory that is not there), not
         * the runner's: the step fails. */
        errorf(s, 1, "%s", perr.msg);
        s->r->outcome = PIPELINE_STEP_FAILURE;
        goto files;
    }
    if (s->pend.len || s->overlong)
        line_done(s);
    if (spec->orphans == PIPELINE_ORPHANS_STEP)
        pipeline_step_cleanup(tracking, o.kill_grace_ms, NULL, NULL);
    s->r->duration_ms = pr.duration_ms;
    file_commands(s, (const char *const *)files);
    conclude(s, &pr);
    proc_result_free(&pr);
files:
    rc = 0;
out:
    for (int i = 0; i < 5; i++) {
        if (files[i])
            unlink(files[i]);
        free(files[i]);
    }
    if (script)
        unlink(script);
    free(script);
    free(dir);
    envp_free(envp);
    pipeline_step_vars_free(&env);
    for (size_t i = 0; i < argv.n; i++)
        free(argv.v[i]);
    free(argv.v);
    buf_free(&args);
    buf_free(&error);
    return rc;
}

int pipeline_step_run(const struct pipeline_step_spec *spec, struct pipeline_step_result *r,
                      struct sw_err *err)
{
    struct step s = {0};
    struct shell sh = {0};
    struct buf error = BUF_INIT;
    char tracking[ID_LEN(6) + 1];
    const char *track = spec ? spec->tracking_id : NULL;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    if (!spec || !spec->script || !spec->temp_dir || !spec->working_directory)
        return sw_err_set(err, SW_EINVAL, "a step needs a script, a temp dir and a directory");
    if (!track && spec->orphans == PIPELINE_ORPHANS_STEP) {
        if ((rc = id_new("github", tracking, sizeof(tracking))) != 0)
            return sw_err_set(err, rc, "cannot make a tracking id");
        track = tracking;
    }
    s.spec = spec;
    s.r = r;
    s.max_log = spec->max_log ? spec->max_log : PIPELINE_STEP_LOG_MAX;
    s.echo = spec->debug;
    s.allow_unsecure = env_true(spec->env, "ACTIONS_ALLOW_UNSECURE_COMMANDS", 0);
    s.allow_unsecure_stop = env_true(spec->env, "ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS", 1);
    for (size_t i = 0; spec->masks && i < spec->masks->n; i++)
        step_masker_add_secret(&s.mask, spec->masks->v[i], strlen(spec->masks->v[i]));

    /* The shell is found along the PATH the step will have. */
    struct pipeline_step_vars probe = PIPELINE_STEP_VARS_INIT;
    const char *none[5] = {"", "", "", "", ""};
    env_build(&s, &probe, none, NULL, 1);
    const struct pipeline_step_var *pv = pipeline_step_vars_get(&probe, "PATH");
    int shell_rc = shell_resolve(spec, pv ? pv->value : "", &sh, &error);
    pipeline_step_vars_free(&probe);

    if (shell_rc != 0 && sh.unsupported && spec->unsupported_skip) {
        warnf(&s, "Skipped: the shell '%s' is not supported by slipway (unsupported: skip)",
              sh.cmd);
        r->outcome = PIPELINE_STEP_SKIPPED;
    } else if (shell_rc != 0) {
        errorf(&s, 1, "%s", error.data);
        r->outcome = PIPELINE_STEP_FAILURE;
    } else {
        header(&s, &sh);
        rc = run(&s, &sh, track, err);
    }
    shell_free(&sh);
    buf_free(&error);
    buf_free(&s.pend);
    buf_free(&s.tmp);
    free(s.stop_token);
    step_masker_free(&s.mask);
    if (rc)
        pipeline_step_result_free(r);
    return rc;
}

void pipeline_step_result_free(struct pipeline_step_result *r)
{
    if (!r)
        return;
    pipeline_step_vars_free(&r->outputs);
    pipeline_step_vars_free(&r->env);
    pipeline_step_list_free(&r->path);
    pipeline_step_list_free(&r->masks);
    free(r->summary);
    for (size_t i = 0; i < r->nannotations; i++) {
        struct pipeline_step_annotation *a = &r->annotations[i];
        free(a->message);
        free(a->title);
        free(a->file);
        free(a->line);
        free(a->end_line);
        free(a->col);
        free(a->end_column);
    }
    free(r->annotations);
    memset(r, 0, sizeof(*r));
}

/* ---- orphans
 * ------------------------------------------------------------------------------------------ */

/* 1 when /proc/PID/environ holds the entry exactly. */
static int environ_has(pid_t pid, const char *entry)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct buf b = BUF_INIT;
    for (;;) {
        buf_grow(&b, 65536);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (b.len += (size_t)n) > ENVIRON_MAX)
            break;
    }
    close(fd);
    int found = 0;
    size_t el = strlen(entry);
    for (size_t i = 0; i < b.len && !found;) {
        size_t k = strnlen(b.data + i, b.len - i);
        found = k == el && !memcmp(b.data + i, entry, el);
        i += k + 1;
    }
    buf_free(&b);
    return found;
}

struct victims {
    int *fd;
    pid_t *pid;
    size_t n, cap;
};

/* Every live process of ours holding entry, each with a pidfd opened before
 * its environment was read and checked alive after: so the process read is
 * the one signalled, even if pids are reused meanwhile. */
static void scan(const char *entry, struct victims *v)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    pid_t self = getpid();
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        int fd = pidfd_open((pid_t)pid, 0);
        if (fd < 0)
            continue;
        struct pollfd pf = {fd, POLLIN, 0};
        if (!environ_has((pid_t)pid, entry) || poll(&pf, 1, 0) != 0) {
            close(fd);
            continue;
        }
        if (v->n == v->cap) {
            v->cap = v->cap ? 2 * v->cap : 16;
            v->fd = xrealloc(v->fd, v->cap * sizeof(*v->fd));
            v->pid = xrealloc(v->pid, v->cap * sizeof(*v->pid));
        }
        v->fd[v->n] = fd;
        v->pid[v->n++] = (pid_t)pid;
    }
    closedir(d);
}

/* Waits until every process of v has exited or ms have passed. */
static void wait_gone(struct victims *v, int64_t ms)
{
    int64_t until = time_mono_ms() + ms;
    for (size_t i = 0; i < v->n; i++) {
        struct pollfd pf = {v->fd[i], POLLIN, 0};
        int64_t left;
        while ((left = until - time_mono_ms()) > 0 &&
               poll(&pf, 1, (int)(left > 1000 ? 1000 : left)) == 0)
            ;
    }
}

static void victims_close(struct victims *v)
{
    for (size_t i = 0; i < v->n; i++)
        close(v->fd[i]);
    v->n = 0;
}

int pipeline_step_cleanup(const char *tracking_id, int64_t grace_ms, size_t *killed,
                          struct sw_err *err)
{
    struct victims v = {0};
    pid_t *seen = NULL;
    size_t nseen = 0;
    if (killed)
        *killed = 0;
    if (!tracking_id || !*tracking_id)
        return sw_err_set(err, SW_EINVAL, "no tracking id");
    char *entry = xasprintf("RUNNER_TRACKING_ID=%s", tracking_id);
    /* SIGTERM first (and SIGCONT, so a stopped one sees it); then SIGKILL,
     * again and again, for what they started meanwhile. */
    for (int round = 0; round < 20; round++) {
        int sig = round == 0 && grace_ms > 0 ? SIGTERM : SIGKILL;
        scan(entry, &v);
        if (v.n == 0)
            break;
        for (size_t i = 0; i < v.n; i++) {
            pidfd_send_signal(v.fd[i], sig, NULL, 0);
            if (sig == SIGTERM)
                pidfd_send_signal(v.fd[i], SIGCONT, NULL, 0);
            size_t k = 0;
            while (k < nseen && seen[k] != v.pid[i])
                k++;
            if (k == nseen) {
                seen = xrealloc(seen, (nseen + 1) * sizeof(*seen));
                seen[nseen++] = v.pid[i];
            }
        }
        wait_gone(&v, sig == SIGTERM ? grace_ms : 1000);
        victims_close(&v);
    }
    if (killed)
        *killed = nseen;
    free(v.fd);
    free(v.pid);
    free(seen);
    free(entry);
    return 0;
}

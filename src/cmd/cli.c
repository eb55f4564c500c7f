/*
 * Shared plumbing of the commands: the option parser (tables of options, as
 * git's parse-options, with the global options as one more table so they work
 * before or after the command name), the escaped output every line goes
 * through, finding the project, opening the store.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- escaped output --------------------------------------------------------- */

/* buf_vaddf, with every %s and %c argument escaped. The format is walked one
 * conversion at a time so each argument is read with its own type; the
 * printf format attribute on the callers keeps those types checked. */
static void vaddf_escaped(struct buf *out, const char *fmt, va_list ap)
{
    struct buf arg = BUF_INIT;
    char spec[48];
    const char *p = fmt;
    while (*p) {
        const char *pct = strchr(p, '%');
        if (!pct) {
            buf_adds(out, p);
            break;
        }
        buf_add(out, p, (size_t)(pct - p));
        const char *q = pct + 1;
        size_t k = 0;
        spec[k++] = '%';
        /* flags, width, precision; a '*' is replaced by its argument */
        while (*q && strchr("-+ #0123456789.*", *q) && k < sizeof(spec) - 16) {
            if (*q == '*')
                k += (size_t)snprintf(spec + k, sizeof(spec) - k, "%d", va_arg(ap, int));
            else
                spec[k++] = *q;
            q++;
        }
        char len[3] = "";
        for (size_t n = 0; n < 2 && *q && strchr("hlzjtL", *q); n++)
            len[n] = spec[k++] = *q++;
        spec[k++] = *q;
        spec[k] = '\0';
        int ll = !strcmp(len, "ll"), l = !strcmp(len, "l"), z = !strcmp(len, "z");
        switch (*q) {
        case '%':
            buf_add(out, "%", 1);
            break;
        case 's':
        case 'c': {
            char c[2] = {0, 0};
            const char *s = *q == 'c' ? (c[0] = (char)va_arg(ap, int), c) : va_arg(ap, char *);
            buf_reset(&arg);
            buf_add_escaped(&arg, s ? s : "(null)");
            spec[k - 1] = 's';
            buf_addf(out, spec, arg.data);
            break;
        }
        case 'd':
        case 'i':
            if (ll)
                buf_addf(out, spec, va_arg(ap, long long));
            else if (l)
                buf_addf(out, spec, va_arg(ap, long));
            else if (z)
                buf_addf(out, spec, va_arg(ap, ssize_t));
            else if (!len[0] || len[0] == 'h')
                buf_addf(out, spec, va_arg(ap, int));
            else
                abort(); /* a length the CLI does not use */
            break;
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            if (ll)
                buf_addf(out, spec, va_arg(ap, unsigned long long));
            else if (l)
                buf_addf(out, spec, va_arg(ap, unsigned long));
            else if (z)
                buf_addf(out, spec, va_arg(ap, size_t));
            else if (!len[0] || len[0] == 'h')
                buf_addf(out, spec, va_arg(ap, unsigned));
            else
                abort();
            break;
        case 'f':
        case 'e':
        case 'g':
            if (len[0])
                abort();
            buf_addf(out, spec, va_arg(ap, double));
            break;
        default:
            abort(); /* %n, %p and the rest: nothing in the CLI prints them */
        }
        p = *q ? q + 1 : q;
    }
    buf_free(&arg);
}

static void vprint(FILE *f, const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT;
    vaddf_escaped(&b, fmt, ap);
    if (b.len)
        fwrite(b.data, 1, b.len, f);
    buf_free(&b);
}

void cli_printf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint(f, fmt, ap);
    va_end(ap);
}

int cli_usage_error(struct cli *cli, const char *fmt, ...)
{
    const char *cmd = cli->cmd ? cli->cmd : "";
    const char *sp = cli->cmd ? " " : "";
    struct buf b = BUF_INIT;
    buf_addf(&b, "slipway%s%s: ", sp, cmd);
    va_list ap;
    va_start(ap, fmt);
    vaddf_escaped(&b, fmt, ap);
    va_end(ap);
    /* "...; did you mean '--switch'? See 'slipway deploy --help'." */
    if (b.data[b.len - 1] == '?')
        buf_addf(&b, " See 'slipway%s%s --help'.\n", sp, cmd);
    else
        buf_addf(&b, "; see 'slipway%s%s --help'\n", sp, cmd);
    fwrite(b.data, 1, b.len, stderr);
    buf_free(&b);
    return EXIT_USAGE;
}

int cli_fail(const struct sw_err *err)
{
    cli_printf(stderr, "slipway: %s\n", err->msg[0] ? err->msg : "failed");
    return EXIT_FAIL;
}

void cli_say(struct cli *cli, const char *fmt, ...)
{
    if (cli->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprint(stdout, fmt, ap);
    va_end(ap);
}

/* ---- option parsing ------------------------------------------------------------ */

enum { NGLOBAL = 6 };

/* The global options: one table, consulted after the command's own, so they
 * are accepted before the command name (parsed by main) and after it. */
static void global_options(struct cli *cli, struct cli_option g[NGLOBAL])
{
    const struct cli_option t[NGLOBAL] = {
        OPT_STRING(0, "project", &cli->project_opt, "DIR",
                   "the project (default: nearest directory upward with .slipway/)"),
        OPT_STRING(0, "store", &cli->store_opt, "URL",
                   "the store: file:///abs/path or a path (default: $SLIPWAY_STORE,\n"
                   "else <project>/.slipway/data)"),
        OPT_BOOL(0, "json", &cli->json, "machine-readable output (see docs/cli.md)"),
        OPT_BOOL('q', "quiet", &cli->quiet, "print only what scripts need"),
        OPT_HELP(),
        OPT_END(),
    };
    memcpy(g, t, sizeof(t));
}

struct parser {
    struct cli *cli;
    const struct cli_usage *u;
    const struct cli_option *tables[2]; /* the command's options, then the global ones */
    struct cli_option globals[NGLOBAL];
};

#define FOR_EACH_OPTION(ps, o)                                                                     \
    for (int t_ = 0; t_ < 2; t_++)                                                                 \
        for (const struct cli_option *o = (ps)->tables[t_]; o && o->type != CLI_OPT_END; o++)

/* Distance between two words, counting an insertion, a deletion, a
 * substitution or a swap of neighbours as one (optimal string alignment). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *cli_closest(const char *word, const char *const *words, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3; /* at most two edits, and at most one per two letters */
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, words[i]);
        if (d < best_d && 2 * d <= strlen(word))
            best = words[i], best_d = d;
    }
    return best;
}

static int unknown_long(struct parser *ps, const char *name)
{
    const char *words[64];
    size_t n = 0;
    FOR_EACH_OPTION(ps, o)
    {
        if (o->long_name && n < 64)
            words[n++] = o->long_name;
    }
    const char *near = cli_closest(name, words, n);
    if (near)
        return cli_usage_error(ps->cli, "unknown option '--%s'; did you mean '--%s'?", name, near);
    return cli_usage_error(ps->cli, "unknown option '--%s'", name);
}

/* Finds --name (len bytes of it): exact, else the one option it abbreviates. */
static int find_long(struct parser *ps, const char *name, size_t len, const struct cli_option **out)
{
    const struct cli_option *found = NULL;
    struct buf all = BUF_INIT;
    int matches = 0;
    FOR_EACH_OPTION(ps, o)
    {
        if (!o->long_name || strncmp(o->long_name, name, len) != 0)
            continue;
        if (!o->long_name[len]) {
            buf_free(&all);
            *out = o;
            return 0;
        }
        buf_addf(&all, "%s--%s", matches ? ", " : "", o->long_name);
        found = o;
        matches++;
    }
    char *n = xstrndup(name, len);
    int rc = 0;
    if (matches == 1)
        *out = found;
    else if (matches > 1)
        rc = cli_usage_error(ps->cli, "option '--%s' is ambiguous (%s)", n, all.data);
    else
        rc = unknown_long(ps, n);
    free(n);
    buf_free(&all);
    return rc ? CLI_EXIT(rc) : 0;
}

static const struct cli_option *find_short(struct parser *ps, int c)
{
    FOR_EACH_OPTION(ps, o)
    {
        if (o->short_name == c)
            return o;
    }
    return NULL;
}

/* Stores arg for option o (named flag in messages). 0 or CLI_EXIT(code). */
static int set_value(struct parser *ps, const struct cli_option *o, const char *flag,
                     const char *arg)
{
    char *end = NULL;
    int64_t ms;
    switch (o->type) {
    case CLI_OPT_BOOL:
        *(int *)o->value = 1;
        return 0;
    case CLI_OPT_STRING:
        *(const char **)o->value = arg;
        return 0;
    case CLI_OPT_INT: {
        errno = 0;
        long long v = strtoll(arg, &end, 10);
        if (!*arg || *end || errno || v < o->min || v > o->max) {
            if (o->max == INT_MAX)
                return CLI_EXIT(cli_usage_error(
                    ps->cli, "%s: expected a whole number of at least %lld, got '%s'", flag,
                    (long long)o->min, arg));
            return CLI_EXIT(cli_usage_error(ps->cli, "%s: expected %lld..%lld, got '%s'", flag,
                                            (long long)o->min, (long long)o->max, arg));
        }
        *(int *)o->value = (int)v;
        return 0;
    }
    case CLI_OPT_DURATION:
        if (duration_parse(arg, &ms) != 0 || ms < o->min)
            return CLI_EXIT(cli_usage_error(ps->cli,
                                            "%s: expected a duration such as %s30m or 1h, got '%s'",
                                            flag, o->min > 0 ? "250ms, " : "0s, ", arg));
        *(int64_t *)o->value = ms;
        return 0;
    case CLI_OPT_SIZE: {
        uint64_t n;
        if (size_parse(arg, &n) != 0 || n < (uint64_t)o->min)
            return CLI_EXIT(cli_usage_error(
                ps->cli, "%s: expected a size such as 512M or 10G (powers of 1024), got '%s'", flag,
                arg));
        *(uint64_t *)o->value = n;
        return 0;
    }
    case CLI_OPT_LIST: {
        struct cli_list *l = o->value;
        l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n++] = arg;
        return 0;
    }
    case CLI_OPT_HELP:
        cli_print_help(ps->cli, ps->u, ps->tables[0], stdout);
        return CLI_EXIT(EXIT_OK);
    case CLI_OPT_END:
        break;
    }
    abort();
}

static int takes_value(const struct cli_option *o)
{
    return o->type != CLI_OPT_BOOL && o->type != CLI_OPT_HELP;
}

/* argv[*i] is "--name" or "--name=value". */
static int parse_long(struct parser *ps, int argc, char **argv, int *i)
{
    const char *name = argv[*i] + 2, *eq = strchr(name, '=');
    const struct cli_option *o = NULL;
    int rc = find_long(ps, name, eq ? (size_t)(eq - name) : strlen(name), &o);
    if (rc)
        return rc;
    char *flag = xasprintf("--%s", o->long_name);
    const char *arg = NULL;
    if (!takes_value(o) && eq)
        rc = CLI_EXIT(cli_usage_error(ps->cli, "option '%s' takes no value", flag));
    else if (takes_value(o) && eq)
        arg = eq + 1;
    else if (takes_value(o) && *i + 1 < argc)
        arg = argv[++*i];
    else if (takes_value(o))
        rc = CLI_EXIT(
            cli_usage_error(ps->cli, "option '%s' needs a value (%s %s)", flag, flag, o->argh));
    if (!rc)
        rc = set_value(ps, o, flag, arg);
    free(flag);
    return rc;
}

/* argv[*i] is "-x", "-xvalue" or bundled flags "-qs". */
static int parse_short(struct parser *ps, int argc, char **argv, int *i)
{
    for (const char *p = argv[*i] + 1; *p; p++) {
        const struct cli_option *o = find_short(ps, (unsigned char)*p);
        if (!o)
            return CLI_EXIT(cli_usage_error(ps->cli, "unknown option '-%c'", *p));
        char flag[3] = {'-', *p, '\0'};
        const char *arg = NULL;
        if (takes_value(o)) {
            if (p[1])
                arg = p + 1;
            else if (*i + 1 < argc)
                arg = argv[++*i];
            else
                return CLI_EXIT(cli_usage_error(ps->cli, "option '%s' needs a value (%s %s)", flag,
                                                flag, o->argh));
        }
        int rc = set_value(ps, o, flag, arg);
        if (rc || arg)
            return rc;
    }
    return 0;
}

static int count_error(struct parser *ps, int n, char **operands)
{
    const struct cli_usage *u = ps->u;
    if (u->max_args >= 0 && n > u->max_args)
        return cli_usage_error(ps->cli, "unexpected argument '%s' (usage: %s)",
                               operands[u->max_args], u->usage);
    if (u->max_args == u->min_args)
        return cli_usage_error(ps->cli, "expected %d argument%s, got %d (usage: %s)", u->min_args,
                               u->min_args == 1 ? "" : "s", n, u->usage);
    return cli_usage_error(ps->cli, "expected at least %d argument%s, got %d (usage: %s)",
                           u->min_args, u->min_args == 1 ? "" : "s", n, u->usage);
}

int cli_parse_options(struct cli *cli, const struct cli_usage *u, const struct cli_option *opts,
                      int argc, char **argv)
{
    struct parser ps = {cli, u, {opts, NULL}, {{0}}};
    global_options(cli, ps.globals);
    ps.tables[1] = ps.globals;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) { /* an operand; "-" is one too */
            if (u->flags & CLI_TOP) {
                while (i < argc)
                    argv[n++] = argv[i++];
                break;
            }
            argv[n++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            while (++i < argc)
                argv[n++] = argv[i];
            break;
        }
        int rc = a[1] == '-' ? parse_long(&ps, argc, argv, &i) : parse_short(&ps, argc, argv, &i);
        if (rc)
            return rc;
    }
    argv[n] = NULL;
    if (n < u->min_args || (u->max_args >= 0 && n > u->max_args))
        return CLI_EXIT(count_error(&ps, n, argv));
    return n;
}

/* "  -e, --env ENV" */
static void option_left(const struct cli_option *o, int indent_long, struct buf *b)
{
    buf_reset(b);
    if (o->short_name)
        buf_addf(b, "  -%c, --%s", o->short_name, o->long_name);
    else
        buf_addf(b, "  %s--%s", indent_long ? "    " : "", o->long_name);
    if (o->argh)
        buf_addf(b, " %s", o->argh);
}

static void print_table(const struct cli_option *const *tables, size_t ntables, FILE *f)
{
    struct buf left = BUF_INIT;
    size_t width = 0;
    int shorts = 0;
    for (size_t t = 0; t < ntables; t++)
        for (const struct cli_option *o = tables[t]; o->type != CLI_OPT_END; o++)
            shorts |= o->short_name != 0;
    for (size_t t = 0; t < ntables; t++)
        for (const struct cli_option *o = tables[t]; o->type != CLI_OPT_END; o++) {
            option_left(o, shorts, &left);
            if (left.len > width)
                width = left.len;
        }
    for (size_t t = 0; t < ntables; t++)
        for (const struct cli_option *o = tables[t]; o->type != CLI_OPT_END; o++) {
            option_left(o, shorts, &left);
            fprintf(f, "%-*s", (int)width + 3, left.data);
            for (const char *h = o->help; *h;) {
                size_t n = strcspn(h, "\n");
                fprintf(f, "%.*s\n", (int)n, h);
                h += n;
                if (*h == '\n' && *++h)
                    fprintf(f, "%*s", (int)width + 3, "");
            }
        }
    buf_free(&left);
}

void cli_print_help(struct cli *cli, const struct cli_usage *u, const struct cli_option *opts,
                    FILE *f)
{
    struct cli_option g[NGLOBAL];
    global_options(cli, g);
    fprintf(f, "usage: %s\n", u->usage);
    if (u->about)
        fprintf(f, "\n%s", u->about);
    if (u->flags & CLI_TOP) {
        const struct cli_option *tables[] = {g, opts};
        fputs("\nGlobal options (accepted before or after COMMAND):\n", f);
        print_table(tables, opts ? 2 : 1, f);
    } else if (opts && opts->type != CLI_OPT_END) {
        fputc('\n', f);
        print_table(&opts, 1, f);
    }
    if (u->epilog)
        fprintf(f, "\n%s", u->epilog);
    if (!(u->flags & CLI_TOP)) {
        fputs("\nGlobal options (see 'slipway --help'):", f);
        for (const struct cli_option *o = g; o->type != CLI_OPT_END; o++)
            if (o->type != CLI_OPT_HELP)
                fprintf(f, "%s --%s%s%s", o == g ? "" : ",", o->long_name, o->argh ? " " : "",
                        o->argh ? o->argh : "");
        fputs(".\n", f);
    }
}

void cli_print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(doc);
}

void cli_human_size(uint64_t n, char *out, size_t outlen)
{
    if (n < 1024)
        snprintf(out, outlen, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, outlen, "%.1f KiB", n / 1024.0);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(out, outlen, "%.1f MiB", n / (1024.0 * 1024));
    else
        snprintf(out, outlen, "%.2f GiB", n / (1024.0 * 1024 * 1024));
}

static int is_project(const char *dir)
{
    char *p = path_join(dir, ".slipway");
    struct stat sb;
    int ok = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
    free(p);
    return ok;
}

char *cli_cache_path(struct cli *cli, const char *prefix, const char *key)
{
    char *path = xasprintf("%s/.slipway/cache/%s%016llx", cli->project, prefix,
                           (unsigned long long)hash_fnv1a(key, strlen(key)));
    /* Named by SHA-256's first 16 hex digits before: taken over once. */
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        char hex[SHA256_HEX_LEN + 1];
        sha256_hex(key, strlen(key), hex);
        char *old = xasprintf("%s/.slipway/cache/%s%.16s", cli->project, prefix, hex);
        rename(old, path); /* best effort: usually there is none */
        free(old);
    }
    return path;
}

char *cli_manifest_copies(struct cli *cli)
{
    /* A local store's manifests are local files already. */
    if (!cli->store || !store_is_remote(cli->store) || cli_project(cli, NULL) != 0)
        return NULL;
    /* Per store: two stores may both hold a release of one id (one copied from the other)
     * that are not the same manifest. */
    return cli_cache_path(cli, "manifests/", store_url(cli->store));
}

char *cli_head_copy(struct cli *cli)
{
    /* A local store's head is a local file already. */
    if (!cli->store || !store_is_remote(cli->store) || cli_project(cli, NULL) != 0)
        return NULL;
    return cli_cache_path(cli, "head-", store_url(cli->store));
}

int cli_project(struct cli *cli, struct sw_err *err)
{
    if (cli->project)
        return 0;
    if (cli->project_opt) {
        char *real = realpath(cli->project_opt, NULL);
        if (!real)
            return sw_err_sys(err, errno, "--project %s", cli->project_opt);
        if (!is_project(real)) {
            free(real);
            return sw_err_set(err, SW_ENOTFOUND,
                              "%s is not a slipway project (no .slipway/ folder); run 'slipway "
                              "init %s'",
                              cli->project_opt, cli->project_opt);
        }
        cli->project = real;
        return 0;
    }
    char *dir = getcwd(NULL, 0);
    if (!dir)
        return sw_err_sys(err, errno, "getcwd");
    for (;;) {
        if (is_project(dir)) {
            cli->project = dir;
            return 0;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            if (slash && dir[1] && (dir[1] = '\0', is_project(dir))) {
                cli->project = dir;
                return 0;
            }
            break;
        }
        *slash = '\0';
    }
    free(dir);
    return sw_err_set(err, SW_ENOTFOUND,
                      "not in a slipway project (no .slipway/ here or in any parent); run "
                      "'slipway init' or pass --project DIR");
}

/* Where the store URL came from, for messages: --store, $SLIPWAY_STORE, or
 * NULL for the project's own store. */
static const char *store_from(const struct cli *cli)
{
    if (cli->store_opt && *cli->store_opt)
        return "--store";
    const char *env = getenv("SLIPWAY_STORE");
    return env && *env ? "$SLIPWAY_STORE" : NULL;
}

/* A store that is not there: says where the URL came from and what creates one. */
static int store_missing(struct cli *cli, int rc, struct sw_err *err)
{
    if (rc != SW_ENOTFOUND || !err)
        return rc;
    char msg[sizeof(err->msg)];
    snprintf(msg, sizeof(msg), "%s", err->msg);
    const char *from = store_from(cli);
    const char *url = !from                      ? NULL
                      : !strcmp(from, "--store") ? cli->store_opt
                                                 : getenv("SLIPWAY_STORE");
    /* An S3 bucket is made by 'slipway infra apply' (which the message names), by no
     * other command, reading or writing. */
    if (from && str_starts_with(url, "s3://"))
        sw_err_set(err, rc, "%s (from %s)", msg, from);
    else if (from)
        sw_err_set(err, rc, "%s (from %s; a command that only reads creates no store)", msg, from);
    else
        sw_err_set(err, rc, "%s (the project's store; 'slipway init %s' creates it)", msg,
                   cli->project);
    return rc;
}

int cli_store(struct cli *cli, enum cli_store_mode mode, struct sw_err *err)
{
    if (cli->store)
        return 0;
    const char *from = store_from(cli), *url = NULL;
    if (from)
        url = !strcmp(from, "--store") ? cli->store_opt : getenv("SLIPWAY_STORE");
    char *path = NULL;
    int rc;
    if (!url) {
        if ((rc = cli_project(cli, err)))
            return rc;
        url = path = path_join(cli->project, ".slipway/data");
    }
    if (mode == CLI_STORE_WRITE_DEFERRED)
        rc = store_open_deferred(url, 1, &cli->store, err);
    else if (mode == CLI_STORE_WRITE)
        rc = store_open(url, &cli->store, err);
    else
        rc = store_open_existing(url, &cli->store, err);
    free(path);
    /* A project keeps the proof of its remote store's conditional writes. */
    if (!rc && store_is_remote(cli->store) && cli_project(cli, NULL) == 0) {
        char *proof = cli_cache_path(cli, "cas-proof-", store_url(cli->store));
        store_keep_cas_proof(cli->store, proof);
        free(proof);
    }
    return store_missing(cli, rc, err);
}

int cli_store_ready(struct cli *cli, struct sw_err *err)
{
    return store_missing(cli, store_ready(cli->store, err), err);
}

static char *envs_dir(struct cli *cli)
{
    return path_join(cli->project, ".slipway/environments");
}

int cli_envs(struct cli *cli, struct env_config ***out, size_t *n, struct sw_err *err)
{
    int rc = cli_project(cli, err);
    if (rc)
        return rc;
    char *dir = envs_dir(cli);
    rc = env_configs_load_dir(dir, out, n, err);
    free(dir);
    return rc;
}

int cli_env(struct cli *cli, const char *name, struct env_config **out, struct sw_err *err)
{
    int rc = env_name_check(name, err);
    if (rc || (rc = cli_project(cli, err)))
        return rc;
    char *dir = envs_dir(cli);
    rc = env_config_find(dir, name, out, err);
    free(dir);
    return rc;
}

void cli_free(struct cli *cli)
{
    store_free(cli->store);
    free(cli->project);
}

void cli_print_change(struct cli *cli, const struct env_config *env, const char *release,
                      const struct deploy_result *r)
{
    const char *slot = deploy_slot_name(r->slot);
    if (cli->json) {
        cli_print_json(json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:I, s:b}", "env", env->name,
                                 "action", r->action, "release",
                                 release ? json_string(release) : json_null(), "from",
                                 r->from ? json_string(r->from) : json_null(), "to",
                                 r->to ? json_string(r->to) : json_null(), "slot",
                                 slot ? json_string(slot) : json_null(), "switched", r->switched,
                                 "generation", (json_int_t)r->generation, "changed", 1));
        return;
    }
    const char *from = r->from ? r->from : "(nothing)";
    if (!r->switched) {
        cli_say(cli,
                "%s: %s deployed to the idle %s slot%s%s; live is still %s.\n"
                "Run 'slipway switch %s' to make it live.\n",
                env->name, release, slot, env->preview ? ", preview on " : "",
                env->preview ? env->preview : "", from, env->name);
        return;
    }
    const char *verb = !strcmp(r->action, "rollback") ? "rolled back"
                       : !strcmp(r->action, "switch") ? "switched"
                                                      : "deployed";
    if (slot)
        cli_say(cli, "%s: %s %s -> %s (live slot: %s)\n", env->name, verb, from, r->to, slot);
    else
        cli_say(cli, "%s: %s %s -> %s\n", env->name, verb, from, r->to);
}

int cli_run_subcommand(struct cli *cli, const char *command, const char *about,
                       const struct cli_subcommand *v, size_t n, int argc, char **argv)
{
    struct buf list = BUF_INIT, usage = BUF_INIT;
    const char **names = xcalloc(n ? n : 1, sizeof(*names));
    const struct cli_option none[] = {OPT_END()};
    int rc;

    buf_addf(&usage, "slipway %s SUBCOMMAND [ARGS]", command);
    buf_adds(&list, "Subcommands:\n");
    for (size_t i = 0; i < n; i++) {
        buf_addf(&list, "  %-8s %s\n", v[i].name, v[i].summary);
        names[i] = v[i].name;
    }
    buf_addf(&list, "\n'slipway %s SUBCOMMAND --help' shows its options.\n", command);
    struct cli_usage u = {
        .usage = usage.data, .about = about, .epilog = list.data, .min_args = 1, .max_args = -1};
    /* only what comes before the subcommand is ours: --help, or nothing */
    if (argc < 2 || argv[1][0] == '-') {
        rc = cli_parse_options(cli, &u, none, argc < 2 ? argc : 2, argv);
        rc = rc < 0 ? CLI_EXIT(rc) : cli_usage_error(cli, "expected a subcommand");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[1], v[i].name) == 0) {
            /* messages and --help name the subcommand: "slipway workflow check: ..." */
            cli->cmd = v[i].cmd;
            rc = v[i].fn(argc - 1, argv + 1, cli);
            goto out;
        }
    const char *near = cli_closest(argv[1], names, n);
    rc = near ? cli_usage_error(cli, "unknown subcommand '%s'; did you mean '%s'?", argv[1], near)
              : cli_usage_error(cli, "unknown subcommand '%s'", argv[1]);
out:
    free(names);
    buf_free(&usage);
    buf_free(&list);
    return rc;
}

/* slipway expr EXPR: evaluates one GitHub Actions expression as the runner would. */
#include "cmd/cmd.h"
#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct cli_usage usage = {
    .usage = "slipway expr [--context FILE.json] [--job-status S] [--action-status S] [--] EXPR",
    .about = "Evaluates EXPR, the text of a ${{ }} expression without the ${{ }}, with\n"
             "GitHub's semantics, and prints the value: text as it is, numbers as GitHub\n"
             "prints them, null, true and false as words, arrays and objects as JSON.\n"
             "Without --context the expression may name no context; with it, the file's\n"
             "top-level keys (\"github\", \"env\", ...) are exactly the names it may use.\n"
             "hashFiles() hashes files under the current directory.\n"
             "An expression that begins with '-' goes after '--'.\n"
             "--json prints {\"value\": ...} or {\"error\": \"...\"} (NaN and infinities\n"
             "are null there). Exit 1 when the expression does not parse or fails.\n",
    .epilog = "Statuses: success, failure, cancelled, skipped. --job-status feeds success(),\n"
              "failure() and cancelled(); --action-status evaluates as a step inside a\n"
              "composite action, where success() and failure() follow the action's status.\n",
    .min_args = 1,
    .max_args = 1,
};

static int status_opt(struct cli *cli, const char *flag, const char *s, enum pipeline_status *out)
{
    if (s && pipeline_status_parse(s, out) != 0)
        return CLI_EXIT(cli_usage_error(
            cli, "%s: expected success, failure, cancelled or skipped, got '%s'", flag, s));
    return 0;
}

static int load_context(const char *file, json_t **out, struct sw_err *err)
{
    char *data = NULL;
    size_t len = 0;
    json_error_t jerr;
    int rc = file_read_all(file, &data, &len, err);

    *out = NULL;
    if (rc)
        return rc;
    *out = pipeline_json_load(data, len, &jerr);
    free(data);
    if (!*out)
        return sw_err_set(err, SW_EINVAL, "%s: line %d, column %d: %s", file, jerr.line,
                          jerr.column, jerr.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return sw_err_set(err, SW_EINVAL,
                          "%s: the context must be a JSON object of named values, such as "
                          "{\"github\": {...}, \"env\": {...}}",
                          file);
    }
    return 0;
}

/* {"error": msg}; a message quoting an expression that is not UTF-8 is
 * escaped first, as JSON text must be UTF-8. */
static void print_error_json(const char *msg)
{
    struct buf b = BUF_INIT;

    if (!utf8_valid(msg, 0))
        buf_add_escaped(&b, msg);
    cli_print_json(json_pack("{s:s}", "error", b.data ? b.data : msg));
    buf_free(&b);
}

/* Arrays and objects as JSON text (as toJSON() writes them; JSON text holds no
 * control character), everything else as GitHub turns it into text. */
static void print_value(const struct pipeline_value *v, int json)
{
    char *s;
    size_t len;

    if (json) {
        /* {"value": ...}, the value's text indented under the key */
        s = pipeline_value_to_json_text(v, &len);
        fputs("{\n  \"value\": ", stdout);
        for (const char *p = s, *end = s + len; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            fwrite(p, 1, n, stdout);
            if (nl)
                fputs("  ", stdout);
            p += n;
        }
        fputs("\n}\n", stdout);
    } else if (v->kind == PIPELINE_ARRAY || v->kind == PIPELINE_OBJECT) {
        s = pipeline_value_to_json_text(v, &len);
        fwrite(s, 1, len, stdout);
        fputc('\n', stdout);
    } else if (v->kind == PIPELINE_NULL) {
        s = NULL;
        cli_printf(stdout, "null\n");
    } else {
        s = pipeline_value_to_string(v, NULL);
        cli_printf(stdout, "%s\n", s);
    }
    free(s);
}

int cmd_expr(int argc, char **argv, struct cli *cli)
{
    const char *context_file = NULL, *job = NULL, *action = NULL;
    const struct cli_option opts[] = {
        OPT_STRING('c', "context", &context_file, "FILE",
                   "a JSON object: the named values and their data"),
        OPT_STRING(0, "job-status", &job, "S", "the job's status so far (default: success)"),
        OPT_STRING(0, "action-status", &action, "S",
                   "the composite action's status so far (evaluates inside one)"),
        OPT_END(),
    };
    struct pipeline_expr_ctx ctx = {0};
    struct pipeline_expr_opts popts = {NULL, 0};
    struct pipeline_expr *e = NULL;
    struct pipeline_value v = PIPELINE_VALUE_INIT;
    struct sw_err err = {0};
    json_t *values = NULL;
    const char **names = NULL;
    char *cwd = NULL;
    size_t n = 0;
    int rc;

    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if ((rc = status_opt(cli, "--job-status", job, &ctx.job_status)) ||
        (rc = status_opt(cli, "--action-status", action, &ctx.action_status)))
        return CLI_EXIT(rc);
    ctx.in_composite = action != NULL;
    if (context_file && load_context(context_file, &values, &err) != 0)
        return cli_fail(&err);
    /* the named values are the context's keys: none without one */
    names = xcalloc(json_object_size(values) + 1, sizeof(*names));
    if (values) {
        const char *k;
        json_t *val;
        json_object_foreach(values, k, val)
        {
            names[n++] = k;
        }
    }
    popts.names = names;
    ctx.values = values;
    if (!(cwd = getcwd(NULL, 0))) {
        rc = sw_err_sys(&err, errno, "getcwd");
        goto out;
    }
    ctx.workspace = cwd;
    rc = pipeline_expr_parse(argv[0], strlen(argv[0]), &popts, &e, NULL, &err);
    if (!rc)
        rc = pipeline_expr_eval(e, &ctx, &v, &err);
out:
    if (rc && cli->json)
        print_error_json(err.msg);
    else if (rc)
        cli_fail(&err);
    else
        print_value(&v, cli->json);
    pipeline_value_clear(&v);
    pipeline_expr_free(e);
    free(names);
    free(cwd);
    json_decref(values);
    return rc ? EXIT_FAIL : EXIT_OK;
}

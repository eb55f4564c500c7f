/* slipway diff A B: paths added, removed and changed between two releases. */
#include "cmd/cmd.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>

static const struct cli_usage usage = {
    .usage = "slipway diff A B",
    .about = "Lists the paths added (+), removed (-) and changed (~) from release A to\n"
             "release B, with sizes. A and B are release ids or unique prefixes/suffixes.\n"
             "--json prints {\"from\", \"to\", "
             "\"changes\":[{\"kind\":\"added\"|\"removed\"|\"changed\",\n"
             "\"path\", \"old_size\", \"new_size\"}]}.\n",
    .min_args = 2,
    .max_args = 2,
};

static int load(struct cli *cli, const char *name, struct release **r, struct sw_err *err)
{
    char *id = NULL;
    int rc = release_resolve(cli->store, name, &id, err);
    if (!rc)
        rc = release_load(cli->store, id, r, err);
    free(id);
    return rc;
}

int cmd_diff(int argc, char **argv, struct cli *cli)
{
    const struct cli_option opts[] = {OPT_END()};
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    struct sw_err err = {0};
    struct release *a = NULL, *b = NULL;
    int rc = cli_store(cli, CLI_STORE_READ, &err);
    if (rc || (rc = load(cli, argv[0], &a, &err)) || (rc = load(cli, argv[1], &b, &err))) {
        release_free(a);
        return cli_fail(&err);
    }
    struct release_change *ch;
    size_t n;
    release_diff(a, b, &ch, &n);
    json_t *arr = json_array();
    size_t counts[3] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *kind = ch[i].kind == '+' ? "added" : ch[i].kind == '-' ? "removed" : "changed";
        counts[ch[i].kind == '+' ? 0 : ch[i].kind == '-' ? 1 : 2]++;
        if (cli->json)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I}", "kind", kind, "path",
                                                 ch[i].path, "old_size", (json_int_t)ch[i].old_size,
                                                 "new_size", (json_int_t)ch[i].new_size));
        else if (ch[i].kind == '~')
            cli_printf(stdout, "~ %s (%llu -> %llu bytes)\n", ch[i].path,
                       (unsigned long long)ch[i].old_size, (unsigned long long)ch[i].new_size);
        else
            cli_printf(stdout, "%c %s (%llu bytes)\n", ch[i].kind, ch[i].path,
                       (unsigned long long)(ch[i].kind == '+' ? ch[i].new_size : ch[i].old_size));
    }
    if (cli->json)
        cli_print_json(json_pack("{s:s, s:s, s:o}", "from", a->id, "to", b->id, "changes", arr));
    else {
        json_decref(arr);
        cli_say(cli, "%zu added, %zu removed, %zu changed\n", counts[0], counts[1], counts[2]);
    }
    free(ch);
    release_free(a);
    release_free(b);
    return EXIT_OK;
}

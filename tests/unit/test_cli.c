/* Unit tests for the CLI's option parser (src/cmd/cli.c): option tables, the
 * global options mixed in, operands and their count, and typo suggestions;
 * and the upload progress line (src/cmd/progress.c): its text for given
 * counters, what it drops to fit a narrow terminal, and its bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>

struct opts {
    const char *env, *message;
    int do_switch, workers;
    int64_t grace;
    uint64_t cache;
};

static const struct cli_usage one_arg = {.usage = "slipway t X", .min_args = 1, .max_args = 1};
static const struct cli_usage any_args = {.usage = "slipway t [X...]", .max_args = -1};

/* Parses the NULL-terminated words (argv[0] is the command) into *o. */
static int parse(struct cli *cli, struct opts *o, const struct cli_usage *u, char **argv)
{
    const struct cli_option table[] = {
        OPT_STRING('e', "env", &o->env, "ENV", "the environment"),
        OPT_BOOL('s', "switch", &o->do_switch, "switch"),
        OPT_STRING('m', "message", &o->message, "M", "a note"),
        OPT_INT(0, "workers", &o->workers, "N", 1, 64, "threads"),
        OPT_DURATION(0, "grace", &o->grace, "D", 0, "minimum age"),
        OPT_SIZE(0, "cache-max", &o->cache, "SIZE", 1, "bound"),
        OPT_END(),
    };
    int argc = 0;
    while (argv[argc])
        argc++;
    cli->cmd = "t";
    return cli_parse_options(cli, u, table, argc, argv);
}

#define ARGV(...) ((char *[]){"t", __VA_ARGS__, NULL})

static void test_long_and_short_forms(void **state)
{
    struct cli cli = {0};
    struct opts o = {0};
    char **v = ARGV("--env=dev", "R", "--message", "hello", "-s");
    assert_int_equal(parse(&cli, &o, &one_arg, v), 1);
    assert_string_equal(v[0], "R");
    assert_null(v[1]);
    assert_string_equal(o.env, "dev");
    assert_string_equal(o.message, "hello");
    assert_int_equal(o.do_switch, 1);

    struct opts p = {0};
    v = ARGV("-estaging", "-m", "-not-an-option", "R");
    assert_int_equal(parse(&cli, &p, &one_arg, v), 1);
    assert_string_equal(p.env, "staging");
    assert_string_equal(p.message, "-not-an-option"); /* a value is taken as it is */

    struct opts q = {0};
    v = ARGV("-qse", "dev", "R"); /* bundled flags, the last one taking the next word */
    assert_int_equal(parse(&cli, &q, &one_arg, v), 1);
    assert_int_equal(cli.quiet, 1);
    assert_int_equal(q.do_switch, 1);
    assert_string_equal(q.env, "dev");
}

static void test_global_options_anywhere(void **state)
{
    struct cli cli = {0};
    struct opts o = {0};
    char **v = ARGV("R", "--json", "--store", "/tmp/s", "--project=/p", "-q");
    assert_int_equal(parse(&cli, &o, &one_arg, v), 1);
    assert_int_equal(cli.json, 1);
    assert_int_equal(cli.quiet, 1);
    assert_string_equal(cli.store_opt, "/tmp/s");
    assert_string_equal(cli.project_opt, "/p");
}

static void test_double_dash_ends_options(void **state)
{
    struct cli cli = {0};
    struct opts o = {0};
    char **v = ARGV("a", "--", "--env", "-s", "-");
    assert_int_equal(parse(&cli, &o, &any_args, v), 4);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "--env");
    assert_string_equal(v[2], "-s");
    assert_string_equal(v[3], "-");
    assert_null(o.env);
    assert_int_equal(o.do_switch, 0);
}

static void test_abbreviations(void **state)
{
    struct cli cli = {0};
    struct opts o = {0};
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("--mess=hi", "R")), 1);
    assert_string_equal(o.message, "hi");
    /* --s is --switch or --store: ambiguous, a usage error */
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("--s", "R")), CLI_EXIT(EXIT_USAGE));
}

static void test_typed_values(void **state)
{
    struct cli cli = {0};
    struct opts o = {0};
    assert_int_equal(parse(&cli, &o, &any_args, ARGV("--workers", "8", "--grace=1h30m")), 0);
    assert_int_equal(o.workers, 8);
    assert_int_equal(o.grace, 90LL * 60 * 1000);
    assert_int_equal(parse(&cli, &o, &any_args, ARGV("--grace", "0s")), 0);
    assert_int_equal(o.grace, 0);
    const char *bad[] = {"0", "65", "8x", "", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        o.workers = 8;
        char *w = xstrdup(bad[i]);
        assert_int_equal(parse(&cli, &o, &any_args, ARGV("--workers", w)), CLI_EXIT(EXIT_USAGE));
        assert_int_equal(o.workers, 8);
        free(w);
    }
    assert_int_equal(parse(&cli, &o, &any_args, ARGV("--grace=soon")), CLI_EXIT(EXIT_USAGE));
    assert_int_equal(parse(&cli, &o, &any_args, ARGV("--cache-max", "512M")), 0);
    assert_true(o.cache == 512ULL << 20);
    assert_int_equal(parse(&cli, &o, &any_args, ARGV("--cache-max=10GiB")), 0);
    assert_true(o.cache == 10ULL << 30);
    const char *bad_sizes[] = {"0", "1.5G", "10X", "", "-1"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(*bad_sizes); i++) {
        char *w = xstrdup(bad_sizes[i]);
        assert_int_equal(parse(&cli, &o, &any_args, ARGV("--cache-max", w)), CLI_EXIT(EXIT_USAGE));
        assert_true(o.cache == 10ULL << 30);
        free(w);
    }
}

static void test_usage_errors(void **state)
{
    struct cli cli = {0};
    struct opts o = {0};
    const int usage = CLI_EXIT(EXIT_USAGE);
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("--bogus", "R")), usage);
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("-x", "R")), usage);
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("R", "--env")), usage);      /* needs a value */
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("R", "-e")), usage);         /* needs a value */
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("R", "--switch=1")), usage); /* takes none */
    assert_int_equal(parse(&cli, &o, &one_arg, ARGV("R", "S")), usage);          /* one too many */
    char *none[] = {"t", NULL};
    assert_int_equal(parse(&cli, &o, &one_arg, none), usage); /* one too few */
}

static void test_top_level_stops_at_the_command(void **state)
{
    struct cli cli = {0};
    int version = 0;
    const struct cli_option table[] = {OPT_BOOL(0, "version", &version, "v"), OPT_END()};
    const struct cli_usage top = {.usage = "slipway COMMAND", .max_args = -1, .flags = CLI_TOP};
    char *v[] = {"slipway", "--json", "deploy", "--env", "dev", "R", NULL};
    assert_int_equal(cli_parse_options(&cli, &top, table, 6, v), 4);
    assert_int_equal(cli.json, 1);
    assert_string_equal(v[0], "deploy");
    assert_string_equal(v[1], "--env"); /* left for the command's own table */
    assert_string_equal(v[3], "R");
    assert_null(v[4]);
}

static void test_repeatable(void **state)
{
    struct cli cli = {0};
    struct cli_list changed = {NULL, 0};
    const struct cli_option table[] = {
        OPT_LIST('c', "changed", &changed, "PATH", "a path (repeatable)"),
        OPT_END(),
    };
    char **v = ARGV("--changed", "a", "X", "-cb", "--changed=c d", "--chan", "e");
    int argc = 0;
    while (v[argc])
        argc++;
    cli.cmd = "t";
    assert_int_equal(cli_parse_options(&cli, &one_arg, table, argc, v), 1);
    assert_string_equal(v[0], "X");
    assert_int_equal(changed.n, 4); /* every value, in order */
    assert_string_equal(changed.v[0], "a");
    assert_string_equal(changed.v[1], "b");
    assert_string_equal(changed.v[2], "c d");
    assert_string_equal(changed.v[3], "e");
    free(changed.v);
}

static void test_closest(void **state)
{
    const char *cmds[] = {"init", "release", "releases", "deploy", "status", "gc", "serve"};
    size_t n = sizeof(cmds) / sizeof(*cmds);
    assert_string_equal(cli_closest("deplyo", cmds, n), "deploy");
    assert_string_equal(cli_closest("stauts", cmds, n), "status");
    assert_string_equal(cli_closest("relase", cmds, n), "release");
    assert_string_equal(cli_closest("gd", cmds, n), "gc");
    assert_null(cli_closest("frobnicate", cmds, n));
    assert_null(cli_closest("x", cmds, n));
    assert_null(cli_closest("", cmds, n));
}

/* The progress line for v at width, checked to be one line that fits. */
static void line_is(const struct cli_progress_view *v, int width, const char *want)
{
    struct buf b = BUF_INIT;
    cli_progress_line(v, width, &b);
    if (strcmp(b.data ? b.data : "", want) != 0)
        print_message("# width %d\n#  want '%s'\n#   got '%s'\n", width, want, b.data);
    assert_string_equal(b.data ? b.data : "", want);
    assert_true(b.len < (size_t)(width > 1 ? width : 80));
    assert_null(strchr(b.data, '\n'));
    assert_null(strchr(b.data, '\r'));
    buf_free(&b);
}

static void test_progress_line(void **state)
{
    (void)state;
    /* Half way after 2 s: the bar half full, the rate of what was sent, 2 s to go. */
    struct cli_progress_view v = {.files_done = 2,
                                  .files_total = 4,
                                  .bytes_done = 50,
                                  .bytes_total = 100,
                                  .sent = 1 << 20,
                                  .elapsed_ms = 2000,
                                  .counted = 1};
    line_is(&v, 100, "[##########----------] 2/4 files  1.0 MiB sent  512.0 KiB/s  ETA 0:02");
    line_is(&v, 0, "[##########----------] 2/4 files  1.0 MiB sent  512.0 KiB/s  ETA 0:02");
    /* Narrower: the bar goes, then the ETA, then the rate, then the line is cut. */
    line_is(&v, 70, "[##########----------] 2/4 files  1.0 MiB sent  512.0 KiB/s  ETA 0:02");
    line_is(&v, 69, "2/4 files  1.0 MiB sent  512.0 KiB/s  ETA 0:02");
    line_is(&v, 47, "2/4 files  1.0 MiB sent  512.0 KiB/s  ETA 0:02");
    line_is(&v, 46, "2/4 files  1.0 MiB sent  512.0 KiB/s");
    line_is(&v, 37, "2/4 files  1.0 MiB sent  512.0 KiB/s");
    line_is(&v, 36, "2/4 files  1.0 MiB sent");
    line_is(&v, 10, "2/4 files");
    line_is(&v, 2, "2");

    /* Before the count is over: no total, no bar, no ETA. */
    struct cli_progress_view early = {.files_done = 3, .sent = 0, .elapsed_ms = 0};
    line_is(&early, 80, "3 files  0 B sent  0 B/s");

    /* Counted, nothing done yet: no ETA to give. */
    struct cli_progress_view none = {
        .files_total = 7, .bytes_total = 900, .elapsed_ms = 500, .counted = 1};
    line_is(&none, 80, "[--------------------] 0/7 files  0 B sent  0 B/s  ETA --:--");

    /* More done than the estimate said (links, x.gz): the total follows. */
    struct cli_progress_view over = {.files_done = 5,
                                     .files_total = 3,
                                     .bytes_done = 500,
                                     .bytes_total = 300,
                                     .sent = 2048,
                                     .elapsed_ms = 1000,
                                     .counted = 1};
    line_is(&over, 80, "[####################] 5/5 files  2.0 KiB sent  2.0 KiB/s  ETA 0:00");

    /* Only empty files: progress by files. */
    struct cli_progress_view empty = {
        .files_done = 1, .files_total = 4, .elapsed_ms = 1000, .counted = 1};
    line_is(&empty, 80, "[#####---------------] 1/4 files  0 B sent  0 B/s  ETA 0:03");

    /* Hours, and beyond what is worth a number. */
    struct cli_progress_view slow = {.files_done = 1,
                                     .files_total = 2,
                                     .bytes_done = 1,
                                     .bytes_total = 2,
                                     .sent = 1,
                                     .elapsed_ms = 3723000,
                                     .counted = 1};
    line_is(&slow, 80, "[##########----------] 1/2 files  1 B sent  0 B/s  ETA 1:02:03");
    slow.bytes_total = 1000000000;
    slow.elapsed_ms = 1000;
    line_is(&slow, 80, "[--------------------] 1/2 files  1 B sent  1 B/s  ETA >99h");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_and_short_forms),
        cmocka_unit_test(test_global_options_anywhere),
        cmocka_unit_test(test_double_dash_ends_options),
        cmocka_unit_test(test_abbreviations),
        cmocka_unit_test(test_typed_values),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_top_level_stops_at_the_command),
        cmocka_unit_test(test_repeatable),
        cmocka_unit_test(test_closest),
        cmocka_unit_test(test_progress_line),
    };
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}

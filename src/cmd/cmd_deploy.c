/* slipway deploy (DIR | RELEASE) --env ENV [--switch] [--message M] */
#include "cmd/cmd.h"
#include "release/release.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct cli_usage usage = {
    .usage = "slipway deploy (DIR | RELEASE) --env ENV [--switch] [--message M]",
    .about = "Deploys to environment ENV. A DIR is first made into a release (as\n"
             "'slipway release create', with its progress line on a terminal); a RELEASE\n"
             "is an id or a unique prefix/suffix.\n"
             "direct: the release goes live at once.\n"
             "blue-green: the release goes into the idle slot (served on the preview\n"
             "address) and goes live with --switch or a later 'slipway switch ENV'.\n"
             "The first deploy to an empty blue-green environment goes live at once.\n",
    .epilog = "Deploying the release that is already live changes nothing and says so\n"
              "(exit 0); so does a DIR holding exactly the live release (the same\n"
              "files, times, message and source commit): no new release is stored.\n"
              "--switch on a direct environment is a usage error.\n"
              "Two changes to one environment never interleave: the second fails with\n"
              "'locked' and changes nothing.\n",
    .min_args = 1,
    .max_args = 1,
};

/* Deploying the live release changes nothing: deploy_release says so and
 * writes nothing (no generation, no event). That is a success, not a failure.
 * known: the state as read before (optional; else it is read). */
static int already_live(struct cli *cli, const struct env_config *env, const char *id,
                        const struct sw_err *why, const struct env_state *known)
{
    if (!cli->json) {
        cli_say(cli, "%s\n", why->msg);
        return EXIT_OK;
    }
    struct env_state *loaded = NULL;
    struct sw_err err = {0};
    if (!known && deploy_state_load(cli->store, env->name, &loaded, &err))
        return cli_fail(&err);
    const struct env_state *s = known ? known : loaded;
    const char *slot = env->strategy == STRATEGY_BLUE_GREEN ? deploy_slot_name(s->live_slot) : NULL;
    cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:I, s:b}", "env", env->name,
                             "action", "deploy", "release", id, "from", id, "to", id, "slot",
                             slot ? json_string(slot) : json_null(), "switched", 0, "generation",
                             (json_int_t)s->generation, "changed", 0));
    env_state_free(loaded);
    return EXIT_OK;
}

/* The environment's state, read for deploy DIR (its live release is keep_id,
 * release_create_opts): on a remote store on a thread of its own, from the
 * start, so that the store's open and this read overlap the walk of DIR; else
 * when release_create first asks. Best effort: a state that cannot be read is
 * no live release. */
struct live_fetch {
    struct store *st;
    const struct env_config *env;
    pthread_t th;
    int running, done;
    struct env_state *state;
    struct deploy_ahead *ahead; /* the change begun when a new release is coming */
    const char *head_copy;      /* deploy_opts.head_copy */
    atomic_int ahead_begun;
    /* read: the state is in (state, or NULL when it could not be read), for
     * the change begun ahead, which waits for it on its own thread. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int read;
};

static void *live_fetch_main(void *arg)
{
    struct live_fetch *f = arg;
    if (deploy_state_load(f->st, f->env->name, &f->state, NULL) != 0)
        f->state = NULL;
    pthread_mutex_lock(&f->mu);
    f->read = 1;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* deploy_known_fn: the state this read, for the change begun ahead, which
 * then reads no state of its own (one request fewer). */
static struct env_state *live_known(void *arg)
{
    struct live_fetch *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->read)
        pthread_cond_wait(&f->cond, &f->mu);
    pthread_mutex_unlock(&f->mu);
    return f->state ? env_state_dup(f->state) : NULL;
}

static void live_fetch_join(struct live_fetch *f)
{
    if (f->running)
        pthread_join(f->th, NULL);
    else if (!f->done)
        live_fetch_main(f);
    f->running = 0;
    f->done = 1;
}

/* release_create_opts.on_change and on_new: a new release is likely, or
 * coming, so its deploy's lock and reads start now, while the scan goes on or
 * the manifest uploads (a remote store's round trips; on fs they cost nothing
 * worth a thread). Once, from whichever thread calls first; f->ahead is read
 * after release_create has joined its threads. */
static void change_ahead(void *arg)
{
    struct live_fetch *f = arg;
    if (store_is_remote(f->st) && !atomic_exchange(&f->ahead_begun, 1)) {
        struct deploy_ahead_opts o = {live_known, f, DEPLOY_LEASE_AFTER_MS, f->head_copy};
        f->ahead = deploy_ahead_start(f->st, f->env, "deploy", &o);
    }
}

/* release_create_opts.keep_id_wait: called from release_create's thread only. */
static int live_wait(void *arg, const char **id)
{
    struct live_fetch *f = arg;
    live_fetch_join(f);
    *id = f->state ? f->state->live_release : NULL;
    return 0;
}

int cmd_deploy(int argc, char **argv, struct cli *cli)
{
    const char *env_name = NULL, *message = NULL;
    int do_switch = 0, follow = 0, force = 0;
    const struct cli_option opts[] = {
        OPT_STRING('e', "env", &env_name, "ENV", "the environment (.slipway/environments/ENV.yml)"),
        OPT_BOOL('s', "switch", &do_switch, "blue-green: make it live in the same change"),
        OPT_STRING('m', "message", &message, "M", "a note kept in the history"),
        OPT_BOOL(0, "force", &force,
                 "even a release an automatic rollback rejected on this environment"),
        OPT_BOOL(0, "follow-symlinks", &follow,
                 "DIR: store what a symbolic link pointing outside DIR points to"),
        OPT_BOOL(0, "pack", &cli->pack,
                 "DIR: store bodies of 64 KiB or less together, a few MiB an object\n"
                 "(the default on a remote (s3) store)"),
        OPT_BOOL(0, "no-pack", &cli->no_pack, "DIR: a blob of its own for every body"),
        OPT_INT(0, "concurrency", &cli->concurrency, "N", 1, STORE_CONCURRENCY_MAX,
                "DIR: uploads at once to a remote (s3) store (default 16)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0)
        return CLI_EXIT(argc);
    if (!env_name)
        return cli_usage_error(cli, "missing --env ENV");
    if (cli->pack && cli->no_pack)
        return cli_usage_error(cli, "--pack and --no-pack together");
    struct sw_err err = {0};
    struct env_config *env = NULL;
    struct deploy_result res = {0};
    struct env_state *state = NULL;
    struct deploy_ahead *ahead = NULL;
    const char *live = NULL;
    char *id = NULL, *head_copy = NULL;
    const char *what = argv[0];
    /* Outlives the change begun ahead, which may call live_known until
     * deploy_release or deploy_ahead_free joins it. */
    struct live_fetch lf = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    struct stat sb;
    int code = EXIT_OK, rc = cli_env(cli, env_name, &env, &err);
    if (rc)
        goto out;
    if (do_switch && env->strategy != STRATEGY_BLUE_GREEN) {
        code = cli_usage_error(cli,
                               "--switch: %s is a direct environment, where a deploy goes live "
                               "at once (there is no idle slot)",
                               env->name);
        goto out;
    }
    int is_dir = stat(what, &sb) == 0 && S_ISDIR(sb.st_mode);
    /* Deferred either way: an S3 store's first request proves the bucket, no HEAD of its own. */
    if ((rc = cli_store(cli, CLI_STORE_WRITE_DEFERRED, &err)))
        goto out;
    head_copy = cli_head_copy(cli);
    lf.head_copy = head_copy;
    int made = 0;
    if (is_dir) {
        /* The live release, best effort: a hint that saves requests and a
         * release that would change nothing (release_create_opts.keep_id). */
        lf.st = cli->store;
        lf.env = env;
        lf.running =
            store_is_remote(cli->store) && pthread_create(&lf.th, NULL, live_fetch_main, &lf) == 0;
        rc = cmd_release_create_dir(cli, what, message, follow, NULL, live_wait, change_ahead, &lf,
                                    &id, &err);
        live_fetch_join(&lf);
        ahead = lf.ahead;
        state = lf.state;
        live = state ? state->live_release : NULL;
        /* A store that did not open: that, as cli_store says it, not what it
         * made of the first operation that needed it. */
        struct sw_err open_err = {0};
        int orc = cli_store_ready(cli, &open_err);
        if (orc) {
            rc = orc;
            err = open_err;
        }
        made = 1;
    } else if (strchr(what, '/')) {
        rc = sw_err_set(&err, SW_ENOTFOUND, "%s: no such directory", what);
    } else {
        rc = release_resolve(cli->store, what, &id, &err);
        struct sw_err open_err = {0};
        int orc = rc ? cli_store_ready(cli, &open_err) : 0;
        if (orc) {
            rc = orc;
            err = open_err;
        }
        /* The live release deploys nothing, and one read of the state says so:
         * no check of its bodies, no lock. Best effort (a state that cannot be
         * read is read again by the change); on a remote store the change
         * begun here takes this read instead of its own. */
        if (!rc && deploy_state_load(cli->store, env->name, &state, NULL) == 0) {
            live = state->live_release;
            lf.state = state;
            lf.read = 1;
            if (store_is_remote(cli->store) && !(live && !strcmp(id, live))) {
                struct deploy_ahead_opts ao = {live_known, &lf, 0, head_copy};
                ahead = deploy_ahead_start(cli->store, env, "deploy", &ao);
            }
        }
    }
    if (rc)
        goto out;
    if (live && !strcmp(id, live)) {
        sw_err_set(&err, DEPLOY_ENOTHING, "release %s is already live on %s; nothing changed", id,
                   env->name);
        code = already_live(cli, env, id, &err, state);
        goto out;
    }
    struct deploy_opts o = {.force = force,
                            .message = message,
                            .do_switch = do_switch,
                            .made = made,
                            .head_copy = head_copy,
                            .ahead = ahead};
    rc = deploy_release(cli->store, env, id, &o, &res, &err);
    if (rc == DEPLOY_ENOTHING) {
        rc = 0;
        code = already_live(cli, env, id, &err, NULL);
    } else if (!rc) {
        cli_print_change(cli, env, id, &res);
    }
out:
    deploy_ahead_free(ahead); /* a lock no change took is given back */
    env_state_free(state);
    deploy_result_free(&res);
    env_config_free(env);
    free(id);
    free(head_copy);
    return rc ? cli_fail(&err) : code;
}

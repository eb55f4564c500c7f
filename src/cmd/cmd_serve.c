/* slipway serve: the edge server over the project's environments. */
#include "cmd/cmd.h"
#include "edge/edge.h"
#include "monitor/monitor.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_usage usage = {
    .usage = "slipway serve [--admin ADDR] [--access-log PATH] [--workers N] [options]",
    .about = "Serves every environment in .slipway/environments/: the live slot on its\n"
             "'listen' address and, for blue-green, the idle slot on its 'preview' address.\n"
             "Deploys, switches and rollbacks made by any slipway process are picked up\n"
             "within one poll interval (at once when made on this host, fs store),\n"
             "without dropping a request.\n"
             "\n"
             "Several nodes can serve one S3 store (--store s3://BUCKET/PREFIX): each\n"
             "follows the environments' state with conditional GETs every --poll (1s\n"
             "there) and keeps large bodies in its own --cache-dir. While the store\n"
             "cannot be reached a node serves what it has, /_slipway/ready stays 200\n"
             "and /_slipway/health says the store is degraded; it catches up when the\n"
             "store is back.\n"
             "\n"
             "/_slipway/health and /_slipway/ready (for load balancers) answer on every\n"
             "listener; /_slipway/metrics (Prometheus text format), ready with the reason\n"
             "an environment failed and health with the store's last error, only on the\n"
             "--admin address. An address another process holds is refused (exit 1),\n"
             "never shared.\n"
             "\n"
             "A monitor samples every environment once a second, judges each live slot\n"
             "by the alert rules of .slipway/alerts.yml (or the defaults) and keeps 24h\n"
             "of history in .slipway/cache/monitor/ ('slipway metrics ENV' prints it);\n"
             "what it sees is rewritten there every interval as status.json, which\n"
             "'slipway alerts' and 'slipway top' read. --no-monitor turns it off (the\n"
             "edge still counts: metrics are served). Each alert's firing, notifications,\n"
             "rollback (or why not) and resolution are appended to incidents.jsonl there,\n"
             "which 'slipway incidents' reads.\n",
    .epilog = "Signals: SIGTERM/SIGINT stop accepting and finish in-flight requests (up to\n"
              "10s) then exit 0; SIGHUP reloads the environment files and alert rules.\n",
    .max_args = 0,
};

/* The edge's own lines (a release that failed to load, its recovery), from
 * any of its threads: escaped like every other line slipway prints. */
static void log_line(void *arg, const char *line)
{
    (void)arg;
    cli_printf(stderr, "slipway serve: %s\n", line);
}

/* The process and host figures at the end of /_slipway/metrics. */
static void metrics_extra(struct buf *b, void *arg)
{
    monitor_proc_render(arg, b);
}

/* ---- monitor: sampler, alert rules, history (src/monitor/sampler.c) ---- */
struct serve_monitor {
    char *alerts, *history; /* under the project */
    char *status;           /* MONITOR_STATUS_FILE: what `slipway alerts` and `top` read */
    int64_t interval_ms;
    int off; /* --no-monitor: no sampler thread, so no alerts judged, no history */
    struct monitor_notify *notify; /* where transitions go; NULL: nowhere */
    /* The automatic rollback: critical alerts go to it. Set once the sampler
     * it asks is running; the hooks that read it may run before. */
    _Atomic(struct monitor_watch *) watch;
    /* The incident journal (MONITOR_INCIDENTS_FILE): fired and resolved from
     * the sampler, deliveries from the notifier, rollbacks and verdicts from
     * the watch, each on its own thread. NULL: not kept (it could not be opened). */
    struct monitor_journal *journal;
    atomic_int journal_failing; /* the last append failed: said once, until one works */
};

/* Appends e to the journal; a failure is logged once, not per event. */
static void journal_add(struct serve_monitor *sm, struct monitor_journal_event *e)
{
    struct sw_err err = {0};
    if (!sm->journal)
        return;
    if (monitor_journal_append(sm->journal, e, &err)) {
        if (!atomic_exchange(&sm->journal_failing, 1))
            cli_printf(stderr, "slipway serve: incidents: %s\n", err.msg);
    } else if (atomic_load(&sm->journal_failing)) {
        atomic_store(&sm->journal_failing, 0);
    }
}

/* An alert of slipway's own rules fired or resolved. */
static void journal_transition(struct serve_monitor *sm, const char *env,
                               const struct monitor_transition *t)
{
    if (t->kind != MONITOR_TRANSITION_FIRING && t->kind != MONITOR_TRANSITION_RESOLVED)
        return;
    if (!t->rule)
        return;
    struct monitor_journal_event e = {0};
    e.kind =
        t->kind == MONITOR_TRANSITION_FIRING ? MONITOR_JOURNAL_FIRED : MONITOR_JOURNAL_RESOLVED;
    e.at_ms = t->kind == MONITOR_TRANSITION_RESOLVED && t->ends_ms ? t->ends_ms : t->at_ms;
    snprintf(e.env, sizeof(e.env), "%s", env);
    e.rule = t->rule->name;
    e.severity = (int)t->rule->severity;
    memcpy(e.fingerprint, t->fingerprint, sizeof(e.fingerprint));
    e.fired_ms = t->starts_ms;
    /* fired: the value that fired it; resolved: the value it resolved at */
    e.value = t->kind == MONITOR_TRANSITION_FIRING ? t->value : t->last;
    e.release = t->release;
    e.text = t->summary;
    journal_add(sm, &e); /* the strings are borrowed: e is not cleared */
}

/* The notifier delivered a firing alert to a target, or gave up. */
static void journal_delivery(void *arg, const struct monitor_notify_delivery *d)
{
    struct monitor_journal_event e = {0};
    e.kind = d->delivered ? MONITOR_JOURNAL_NOTIFIED : MONITOR_JOURNAL_LOST;
    e.at_ms = d->at_ms;
    snprintf(e.env, sizeof(e.env), "%s", d->env);
    e.rule = (char *)d->rule;
    snprintf(e.fingerprint, sizeof(e.fingerprint), "%s", d->fingerprint);
    e.fired_ms = d->starts_ms;
    e.value = NAN;
    e.target = (char *)d->target;
    e.text = (char *)d->why;
    journal_add(arg, &e);
}

/* The watch rolled back, did not and said why, or ended a window. */
static void journal_watch(void *arg, const struct monitor_watch_event *w)
{
    static const enum monitor_journal_kind kind[] = {
        [MONITOR_WATCH_EVENT_ROLLED_BACK] = MONITOR_JOURNAL_ROLLED_BACK,
        [MONITOR_WATCH_EVENT_SKIPPED] = MONITOR_JOURNAL_ROLLBACK_SKIPPED,
        [MONITOR_WATCH_EVENT_VERDICT] = MONITOR_JOURNAL_VERDICT,
    };
    struct monitor_journal_event e = {0};
    e.kind = kind[w->kind];
    e.at_ms = w->at_ms;
    snprintf(e.env, sizeof(e.env), "%s", w->env);
    e.rule = (char *)w->rule;
    e.source = (char *)w->source;
    e.fired_ms = w->alert_ms;
    e.value = NAN;
    e.release = (char *)w->release;
    e.to = (char *)w->to;
    e.text = (char *)w->text;
    journal_add(arg, &e);
}

/* A critical alert of slipway's own rules goes to the watch. */
static void to_watch(struct serve_monitor *sm, const char *env, const struct monitor_transition *t)
{
    struct monitor_watch *w = atomic_load(&sm->watch);
    const struct monitor_rule *r = t->rule;
    if (!w || t->kind != MONITOR_TRANSITION_FIRING || !r || r->severity != MONITOR_CRITICAL)
        return;
    char detail[256], d[32];
    duration_format(r->for_ms, d, sizeof(d));
    snprintf(detail, sizeof(detail), "%s %g %s %g for %s over %llu requests",
             monitor_signal_name(r->signal), t->value, monitor_op_name(r->op), r->threshold, d,
             (unsigned long long)t->requests);
    struct monitor_critical c = {env, r->name, "slipway", detail, t->release, t->at_ms};
    monitor_watch_critical(w, &c);
}

/* Every transition goes to the incident journal (firing and resolved ones)
 * and to the notifier, which sends what Alertmanager and
 * webhooks take (firing, resolved, events) and drops the rest, and a
 * critical one that fires to the watch. */
static void on_transition(void *arg, const char *env, const struct monitor_transition *t)
{
    struct serve_monitor *sm = arg;
    journal_transition(sm, env, t); /* first: its delivery and rollback come after it */
    monitor_notify_push(sm->notify, t);
    to_watch(sm, env, t);
}

static int monitor_start(const struct serve_monitor *sm, const struct edge_opts *o, struct edge *e,
                         struct monitor_sampler **out, struct sw_err *err)
{
    struct monitor_sampler_opts mo;
    monitor_sampler_opts_init(&mo);
    mo.edge = e;
    mo.envs_dir = o->envs_dir;
    mo.alerts_file = sm->alerts;
    mo.history_file = sm->history;
    mo.status_file = sm->status;
    mo.interval_ms = sm->interval_ms;
    mo.log = log_line;
    mo.on_transition = on_transition;
    mo.hook_arg = (void *)sm;
    return monitor_sampler_start(&mo, out, err);
}

static int watch_start(struct serve_monitor *sm, struct cli *cli, const struct edge_opts *o,
                       struct monitor_sampler *ms, char *actor, struct sw_err *err)
{
    struct monitor_watch_opts wo;
    struct monitor_watch *w = NULL;
    monitor_watch_opts_init(&wo);
    wo.store = cli->store;
    wo.envs_dir = o->envs_dir;
    wo.sampler = ms;
    wo.actor = actor;
    wo.interval_ms = sm->interval_ms;
    wo.log = log_line;
    wo.on_event = journal_watch;
    wo.event_arg = sm;
    int rc = monitor_watch_start(&wo, &w, err);
    if (!rc)
        atomic_store(&sm->watch, w);
    return rc;
}
/* ---- end monitor ---- */

/* ---- notifications (issue 13) ---------------------------------------------------------
 * .slipway/monitor.yml: alerts out (the notifier: deployment events now, the
 * sampler's transitions through the same monitor_notify_push) and the
 * Alertmanager hook in (on the admin listener). docs/monitor.md. */
struct serve_notify {
    struct monitor_config *cfg;
    struct monitor_rules *rules;   /* whose deployment rules say who hears of a deploy */
    struct monitor_notify *notify; /* NULL: no Alertmanager, no webhook */
    struct monitor_hook *hook;     /* NULL: no webhook_token_file */
    struct serve_monitor *sm;      /* its watch */
};

static void notify_log(void *arg, const char *line)
{
    (void)arg;
    cli_printf(stderr, "slipway serve: %s\n", line);
}

/* A critical alert from Alertmanager (a rule Prometheus evaluated) is
 * logged and goes to the watch as slipway's own do. */
static void on_critical(void *arg, const char *env, const char *alertname, const char *fingerprint,
                        const char *value)
{
    struct serve_notify *sn = arg;
    cli_printf(stderr,
               "slipway serve: critical alert from Alertmanager: %s on %s (fingerprint %s, "
               "value %s)\n",
               alertname, env, fingerprint, value ? value : "none");
    char detail[256];
    snprintf(detail, sizeof(detail), "value %s, fingerprint %s", value ? value : "none",
             fingerprint);
    struct monitor_critical c = {env, alertname, "alertmanager", detail, NULL, time_now_ms()};
    monitor_watch_critical(atomic_load(&sn->sm->watch), &c);
}

/* The edge's watcher saw a deploy, switch or rollback (by any process); a
 * watch's verdict is not a deployment. */
static void on_change(void *arg, const char *env, const char *action, const char *release,
                      int64_t at_ms)
{
    struct serve_notify *sn = arg;
    if (strcmp(action, "verdict") != 0)
        monitor_notify_deployed(sn->notify, sn->rules, env, action, release, at_ms);
}

static int on_hook(void *arg, const char *path, const struct http_request *req, struct buf *out)
{
    struct serve_notify *sn = arg;
    if (strcmp(path, "/_slipway/hooks/alertmanager") != 0) {
        buf_adds(out, "{\"error\":\"no such hook\"}\n");
        return 404;
    }
    int h = http_find_header(req, "Authorization");
    return monitor_hook_handle(sn->hook, h >= 0 ? req->headers[h].value : NULL,
                               h >= 0 ? req->headers[h].value_len : 0, req->body, req->body_len,
                               out);
}

static int notify_setup(struct cli *cli, struct edge_opts *o, struct serve_notify *sn,
                        struct sw_err *err)
{
    char *path = path_join(cli->project, ".slipway/monitor.yml");
    char *alerts = path_join(cli->project, ".slipway/alerts.yml");
    int rc = monitor_config_load(path, cli->project, &sn->cfg, err);
    if (!rc && sn->cfg->nalertmanager + sn->cfg->nwebhooks > 0 &&
        !(rc = monitor_rules_load(alerts, &sn->rules, err))) {
        sn->notify = monitor_notify_new(sn->cfg, notify_log, NULL);
        monitor_notify_on_delivery(sn->notify, journal_delivery, sn->sm);
        if (!(rc = monitor_notify_start(sn->notify, err))) {
            o->on_change = on_change;
            o->on_change_arg = sn;
        }
    }
    if (!rc && sn->cfg->webhook_token_file &&
        !(rc = monitor_hook_new(sn->cfg, on_critical, sn, &sn->hook, err))) {
        o->hook = on_hook;
        o->hook_arg = sn;
        if (!o->admin)
            cli_printf(stderr,
                       "slipway serve: %s: webhook_token_file is set, but the hook is "
                       "only served on --admin\n",
                       sn->cfg->file);
    }
    free(path);
    free(alerts);
    return rc;
}

/* After the edge stopped: nothing calls the hooks any more. */
static void notify_teardown(struct serve_notify *sn)
{
    monitor_notify_free(sn->notify);
    monitor_hook_free(sn->hook);
    monitor_rules_free(sn->rules);
    monitor_config_free(sn->cfg);
}
/* ---- end of notifications ---------------------------------------------------------------- */

/* Runs the edge until SIGTERM or SIGINT; SIGHUP reloads. This thread handles
 * the signals: they are blocked before the edge starts its threads, which
 * inherit the mask. */
struct serve_runner {
    struct cli *cli;
    const struct cmd_runner_settings *rs;
    int64_t poll_ms;
};

/* The runner of `serve --runner`: queued runs, one at a time, until SIGTERM. */
static void *runner_thread(void *arg)
{
    struct serve_runner *sr = arg;
    char name[40];
    snprintf(name, sizeof(name), "serve-%ld", (long)getpid());
    (void)cmd_runner_loop(sr->cli, name, sr->cli->project, sr->rs, 0, sr->poll_ms, stderr);
    return NULL;
}

static int serve(struct cli *cli, const struct edge_opts *o, const struct cmd_runner_settings *rs,
                 int64_t runner_poll_ms, struct serve_monitor *sm, struct sw_err *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Only the admin listener serves metrics: without one, nothing reads
     * them. Made before the edge starts, so it is registered a moment after. */
    struct monitor_proc *mp = o->admin ? monitor_proc_new(NULL) : NULL;
    struct edge *e = NULL;
    int rc = edge_start(o, &e, err);
    if (rc) {
        monitor_proc_free(mp);
        return rc;
    }
    struct monitor_sampler *ms = NULL; /* monitor: a bad alerts.yml stops serve */
    if (!sm->off && (rc = monitor_start(sm, o, e, &ms, err))) {
        edge_stop(e);
        monitor_proc_free(mp);
        return rc;
    }
    char *actor = xasprintf("slipway-monitor@%s", sys_host());
    if ((rc = watch_start(sm, cli, o, ms, actor, err))) {
        monitor_sampler_stop(ms);
        edge_stop(e);
        monitor_proc_free(mp);
        free(actor);
        return rc;
    }
    if (mp)
        edge_set_metrics_extra(e, metrics_extra, mp);
    struct serve_runner sr = {cli, rs, runner_poll_ms};
    pthread_t runner;
    int running = rs && pthread_create(&runner, NULL, runner_thread, &sr) == 0;
    if (!cli->quiet)
        cli_printf(stderr, "slipway serve: ready (project %s, store %s)\n", cli->project,
                   store_url(cli->store));
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGHUP) {
            struct sw_err rerr = {0};
            size_t n = 0;
            if (edge_reload(e, &n, &rerr))
                cli_printf(stderr,
                           "slipway serve: reload failed, keeping the running configuration: %s\n",
                           rerr.msg);
            else
                cli_printf(stderr, "slipway serve: reloaded %zu environments\n", n);
            /* monitor: its environments (one the edge refused is not found
             * there, so not sampled) and alert rules, whatever the edge did */
            monitor_sampler_reload(ms);
        } else if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }
    if (running) {
        /* the run it runs is cancelled, its steps stopped, its record ended */
        cmd_runner_stop();
        pthread_join(runner, NULL);
    }
    /* The watch's thread first: it asks the sampler. Its memory stays until
     * the edge's workers (the hook) and the sampler cannot queue to it. */
    struct monitor_watch *w = atomic_exchange(&sm->watch, NULL);
    monitor_watch_stop(w);
    monitor_sampler_stop(ms); /* monitor: before the edge it reads; saves the history */
    edge_stop(e);             /* joins the workers: no scrape is using mp after it */
    monitor_watch_free(w);
    monitor_proc_free(mp);
    free(actor);
    return 0;
}

int cmd_serve(int argc, char **argv, struct cli *cli)
{
    struct edge_opts o;
    int runner_jobs = 0;
    int64_t runner_poll_ms = 0; /* 0: not given (the option's minimum is 1 ms) */
    struct serve_monitor sm = {.interval_ms = MONITOR_INTERVAL_MS};
    const char *unsupported = NULL, *balance = NULL;
    struct cli_list labels = {NULL, 0};
    struct cmd_runner_settings rs = {0};
    const char *cache_dir = NULL;
    edge_opts_init(&o);
    o.poll_ms = 0; /* not given: chosen by the store (the option's minimum is 1 ms) */
    const struct cli_option opts[] = {
        OPT_STRING(0, "admin", &o.admin, "ADDR",
                   "the operators' address (HOST:PORT) for metrics and details; none by default"),
        OPT_STRING(0, "access-log", &o.access_log, "PATH",
                   "one line per request to PATH ('-' for stdout; 'store': batches\n"
                   "into the store under logs/access/); off by default"),
        OPT_INT(0, "workers", &o.http.workers, "N", 1, 64,
                "worker threads (default: one per core)"),
        OPT_STRING(0, "balance", &balance, "HOW",
                   "how new connections are shared between workers: cpu (default)\n"
                   "gives each to the worker of the CPU that received it, hash\n"
                   "spreads them by their addresses"),
        OPT_DURATION(0, "header-timeout", &o.http.header_timeout_ms, "D", 1,
                     "a request head must arrive within D (default 10s)"),
        OPT_DURATION(0, "idle-timeout", &o.http.idle_timeout_ms, "D", 1,
                     "idle keep-alive connections close after D (default 60s)"),
        OPT_INT(0, "max-connections", &o.http.max_connections, "N", 1, INT_MAX,
                "beyond N open connections answer 503 (default 10000)"),
        OPT_DURATION(0, "poll", &o.poll_ms, "D", 1,
                     "how often environment state is checked (default 50ms on an fs\n"
                     "store, 1s on S3, where each check is a request)"),
        OPT_STRING(0, "cache-dir", &cache_dir, "DIR",
                   "the local cache of bodies over 64 KiB, this process's alone\n"
                   "(default: <project>/.slipway/cache/blobs; nodes sharing a host\n"
                   "each need their own)"),
        OPT_SIZE(0, "cache-max", &o.cache_max, "SIZE", 1,
                 "bound of the local cache of bodies over 64 KiB, such as 512M\n"
                 "or 10G (default 10G); a release needing more is not loaded"),
        OPT_INT(0, "runner", &runner_jobs, "N", 0, 64,
                "also run queued workflow runs, N jobs at once (default 0: no runner)"),
        OPT_LIST(0, "runner-label", &labels, "L",
                 "with --runner: a label runs-on is matched against (repeatable;\n"
                 "replaces runner.yml's labels and the default set)"),
        OPT_STRING(0, "runner-unsupported", &unsupported, "MODE",
                   "with --runner: skip steps and jobs slipway cannot run (skip)\n"
                   "or fail them (error; default: runner.yml's, else error)"),
        OPT_DURATION(0, "runner-poll", &runner_poll_ms, "D", 1,
                     "with --runner: look for queued runs every D (default 1s; a run\n"
                     "queued in an fs store, by a push's hook too, wakes it at once)"),
        OPT_DURATION(0, "monitor-interval", &sm.interval_ms, "D", 10,
                     "how often the monitor samples (default 1s; for tests: alerts judge\n"
                     "the last 60 samples, history keeps a step per 10)"),
        OPT_BOOL(0, "no-monitor", &sm.off,
                 "no monitor thread: no alert rules judged, no history kept\n"
                 "(metrics are still counted and served on --admin)"),
        OPT_END(),
    };
    if ((argc = cli_parse_options(cli, &usage, opts, argc, argv)) < 0) {
        free(labels.v);
        return CLI_EXIT(argc);
    }
    int rc = EXIT_OK;
    if (balance && strcmp(balance, "cpu") != 0 && strcmp(balance, "hash") != 0)
        rc = cli_usage_error(cli, "--balance: expected cpu or hash, got '%s'", balance);
    else if (unsupported && strcmp(unsupported, "skip") != 0 && strcmp(unsupported, "error") != 0)
        rc = cli_usage_error(cli, "--runner-unsupported: expected skip or error, got '%s'",
                             unsupported);
    else if ((labels.n || unsupported || runner_poll_ms) && !runner_jobs)
        rc = cli_usage_error(cli, "--runner-label, --runner-unsupported and --runner-poll need "
                                  "--runner N");
    else
        rc = cmd_runner_labels_check(cli, "--runner-label", &labels);
    if (balance && strcmp(balance, "hash") == 0)
        o.http.balance = HTTP_BALANCE_HASH;
    if (rc != EXIT_OK) {
        free(labels.v);
        return rc;
    }
    struct sw_err err = {0};
    rc = cli_project(cli, &err);
    /* the runner's settings are read before anything starts: a bad
     * runner.yml stops serve with its FILE:LINE:COL, not a runner later */
    if (!rc && runner_jobs)
        rc = cmd_runner_settings_load(cli, &labels, runner_jobs, unsupported, &rs, &err);
    if (!rc)
        rc = cli_store(cli, CLI_STORE_READ, &err);
    /* The edge's own handle on the store, failing fast: its watcher's next
     * poll is its retry, and one poll stuck in a 30 s retry on a dead store
     * would delay every environment's switches by as much. The monitor's
     * rollbacks and the runner keep the patient one. Its status is what
     * /_slipway/health reports. */
    struct store *edge_store = NULL;
    if (!rc && !(rc = store_open_existing(store_url(cli->store), &edge_store, &err)))
        store_set_fail_fast(edge_store, 1);
    struct serve_notify sn = {.sm = &sm};
    if (!rc) { /* not kept is no reason not to serve: said, and served */
        char *journal = path_join(cli->project, MONITOR_INCIDENTS_FILE);
        struct sw_err jerr = {0};
        if (monitor_journal_open(journal, 0, &sm.journal, &jerr))
            cli_printf(stderr, "slipway serve: incidents are not recorded: %s\n", jerr.msg);
        free(journal);
    }
    if (!rc)
        rc = notify_setup(cli, &o, &sn, &err); /* a bad monitor.yml stops serve here */
    if (rc) {
        notify_teardown(&sn);
        monitor_journal_close(sm.journal);
        cmd_runner_settings_free(&rs);
        store_free(edge_store);
        free(labels.v);
        return cli_fail(&err);
    }
    char *envs = path_join(cli->project, ".slipway/environments");
    char *cache = cache_dir ? xstrdup(cache_dir) : path_join(cli->project, ".slipway/cache/blobs");
    o.envs_dir = envs;
    o.cache_dir = cache;
    o.store = edge_store;
    /* fs: a change on this host wakes the watcher at once, and a check is a
     * read of a local file; S3: every check is a request, billed and
     * rate-limited, and nothing wakes it. */
    if (!o.poll_ms)
        o.poll_ms = strcmp(store_scheme(edge_store), "s3") ? 50 : 1000;
    o.log = log_line;
    sm.alerts = path_join(cli->project, ".slipway/alerts.yml");
    sm.history = path_join(cli->project, MONITOR_HISTORY_FILE);
    sm.status = path_join(cli->project, MONITOR_STATUS_FILE);
    sm.notify = sn.notify;
    rc = serve(cli, &o, runner_jobs ? &rs : NULL,
               runner_poll_ms ? runner_poll_ms : CMD_RUNNER_POLL_MS, &sm, &err);
    free(sm.alerts);
    free(sm.history);
    free(sm.status);
    notify_teardown(&sn); /* its last deliveries and losses are journalled */
    monitor_journal_close(sm.journal);
    cmd_runner_settings_free(&rs);
    free(labels.v);
    free(envs);
    free(cache);
    store_free(edge_store);
    return rc ? cli_fail(&err) : EXIT_OK;
}

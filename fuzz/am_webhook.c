/*
 * libFuzzer target for Alertmanager's webhook as the inbound hook reads it
 * (src/monitor/hook.c): every input is a request body from the network.
 * Beyond the sanitizers it checks what the hook relies on: a refusal is
 * SW_EINVAL with one printable line and no result; an accepted webhook stays
 * within its bounds (alerts, labels sorted by name and unique, printable
 * bounded strings, a 16-hex-digit fingerprint, a startsAt from 1970 on);
 * what was accepted, written back as JSON, parses to the same thing; and the
 * hook itself answers 401 to a wrong token whatever the body, 200 exactly
 * when the body parses (else 400), calls back at most once per alert, and a
 * second delivery of the same body triggers nothing new.
 */
#include "fuzz.h"
#include "monitor/monitor.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "fuzz-token-0123456789abcdef"

static struct monitor_hook *hook;
static size_t calls;

static void on_critical(void *arg, const char *env, const char *alertname, const char *fingerprint,
                        const char *value)
{
    CHECK(env && *env && alertname && fingerprint && strlen(fingerprint) == 16);
    CHECK(!value || text_valid(value, 256, 0));
    calls++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/fuzz-am-webhook.XXXXXX";
    struct monitor_config *c = NULL;
    struct sw_err err = {0};
    const char yaml[] = "webhook_token_file: token\n";
    CHECK(mkdtemp(dir));
    char *path = path_join(dir, "token");
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(TOKEN "\n", f) >= 0 && fclose(f) == 0);
    CHECK(monitor_config_parse(yaml, strlen(yaml), "m.yml", dir, &c, &err) == 0);
    CHECK(monitor_hook_new(c, on_critical, NULL, &hook, &err) == 0);
    monitor_config_free(c);
    unlink(path);
    rmdir(dir);
    free(path);
    return 0;
}

static void check_alert(const struct monitor_am_alert *a)
{
    CHECK(a->firing == 0 || a->firing == 1);
    CHECK(a->nlabels <= MONITOR_AM_LABELS_MAX);
    for (size_t j = 0; j < a->nlabels; j++) {
        CHECK(a->labels[j].name[0] && text_valid(a->labels[j].name, 256, 0));
        CHECK(text_valid(a->labels[j].value, 4096, 0));
        if (j)
            CHECK(strcmp(a->labels[j - 1].name, a->labels[j].name) < 0);
    }
    CHECK(strlen(a->fingerprint) == 16 && hex_lower_valid(a->fingerprint, 16));
    CHECK(a->starts_ms >= 0 && a->starts_ms <= JSON_TIME_MAX_MS);
    CHECK(!a->value || text_valid(a->value, 256, 0));
}

/* w written back as a webhook: what a second parse must read alike. */
static char *encode(const struct monitor_am_webhook *w)
{
    json_t *alerts = json_array(), *o = json_object();
    for (size_t i = 0; i < w->nalerts; i++) {
        const struct monitor_am_alert *a = &w->alerts[i];
        json_t *x = json_object(), *labels = json_object(), *ann = json_object();
        for (size_t j = 0; j < a->nlabels; j++)
            json_object_set_new(labels, a->labels[j].name, json_string(a->labels[j].value));
        if (a->value)
            json_object_set_new(ann, "value", json_string(a->value));
        json_object_set_new(x, "status", json_string(a->firing ? "firing" : "resolved"));
        json_object_set_new(x, "labels", labels);
        json_object_set_new(x, "annotations", ann);
        json_object_set_new(x, "fingerprint", json_string(a->fingerprint));
        if (a->starts_ms) {
            char when[40];
            time_format_iso(a->starts_ms, when, sizeof(when));
            json_object_set_new(x, "startsAt", json_string(when));
        }
        json_array_append_new(alerts, x);
    }
    json_object_set_new(o, "version", json_string("4"));
    json_object_set_new(o, "status", json_string(w->firing ? "firing" : "resolved"));
    json_object_set_new(o, "alerts", alerts);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    CHECK(s);
    return s;
}

static void same(const struct monitor_am_webhook *a, const struct monitor_am_webhook *b)
{
    CHECK(a->firing == b->firing && a->nalerts == b->nalerts);
    for (size_t i = 0; i < a->nalerts; i++) {
        const struct monitor_am_alert *x = &a->alerts[i], *y = &b->alerts[i];
        CHECK(x->firing == y->firing && x->nlabels == y->nlabels);
        CHECK(!strcmp(x->fingerprint, y->fingerprint) && x->starts_ms == y->starts_ms);
        CHECK((!x->value && !y->value) || (x->value && y->value && !strcmp(x->value, y->value)));
        for (size_t j = 0; j < x->nlabels; j++)
            CHECK(!strcmp(x->labels[j].name, y->labels[j].name) &&
                  !strcmp(x->labels[j].value, y->labels[j].value));
    }
}

/* 1 when some fingerprint is both firing and resolved in w: then the order
 * of the alerts decides what is remembered, and a second delivery may
 * trigger again. */
static int contradicts(const struct monitor_am_webhook *w)
{
    for (size_t i = 0; i < w->nalerts; i++)
        for (size_t j = 0; j < w->nalerts; j++)
            if (w->alerts[i].firing && !w->alerts[j].firing &&
                !strcmp(w->alerts[i].fingerprint, w->alerts[j].fingerprint))
                return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct monitor_am_webhook *w = NULL, *again = NULL;
    struct sw_err err = {0};
    struct buf out = BUF_INIT;
    const char *body = (const char *)data;
    int rc = monitor_am_webhook_parse(body, size, &w, &err);
    if (rc) {
        CHECK(rc == SW_EINVAL && w == NULL && err.msg[0] &&
              text_valid(err.msg, sizeof(err.msg), 0));
    } else {
        CHECK(w && w->nalerts <= MONITOR_AM_ALERTS_MAX);
        for (size_t i = 0; i < w->nalerts; i++)
            check_alert(&w->alerts[i]);
        char *s = encode(w);
        CHECK(monitor_am_webhook_parse(s, strlen(s), &again, &err) == 0);
        same(w, again);
        monitor_am_webhook_free(again);
        free(s);
    }

    /* The hook: nothing passes a wrong token, and nothing is called then. */
    size_t before = calls;
    CHECK(monitor_hook_handle(hook, "Bearer " TOKEN "x", strlen(TOKEN) + 8, body, size, &out) ==
          401);
    CHECK(calls == before);
    buf_reset(&out);
    int status = monitor_hook_handle(hook, "Bearer " TOKEN, strlen(TOKEN) + 7, body, size, &out);
    CHECK(status == (rc ? 400 : 200));
    CHECK(out.data && text_valid(out.data, (size_t)-1, 1));
    CHECK(calls - before <= (w ? w->nalerts : 0));
    if (w && !contradicts(w)) {
        size_t once = calls;
        buf_reset(&out);
        CHECK(monitor_hook_handle(hook, "Bearer " TOKEN, strlen(TOKEN) + 7, body, size, &out) ==
              200);
        CHECK(calls == once);
    }
    buf_free(&out);
    monitor_am_webhook_free(w);
    return 0;
}

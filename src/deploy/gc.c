/*
 * Garbage collection. The keep set is computed from every environment's state
 * and history (this is why gc lives in deploy and not in release: only deploy
 * knows what is deployed); everything outside it and older than the grace
 * period goes, manifests first and then the blobs and packs no kept manifest
 * references (a file's body or one of its compressed variants, or a pack
 * holding one: a pack goes only when no kept release has a body in it).
 * The grace period protects a release being created right now, whose blobs
 * exist before its manifest does. Blobs that other modules' documents name (a
 * run's artifacts) come in as roots from the caller: deploy does not read them.
 */
#include "deploy/internal.h"
#include "release/release.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strset {
    char **v;
    size_t n, cap;
    int sorted;
};

static void set_add(struct strset *s, const char *x)
{
    if (!x)
        return;
    if (s->n == s->cap)
        s->v = xrealloc(s->v, (s->cap = s->cap ? s->cap * 2 : 64) * sizeof(char *));
    s->v[s->n++] = xstrdup(x);
    s->sorted = 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int set_has(struct strset *s, const char *x)
{
    if (!s->sorted) {
        if (s->n)
            qsort(s->v, s->n, sizeof(char *), cmp_strp);
        s->sorted = 1;
    }
    return s->n && bsearch(&x, s->v, s->n, sizeof(char *), cmp_strp) != NULL;
}

static void set_free(struct strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

void gc_report_free(struct gc_report *r)
{
    for (size_t i = 0; i < r->nreleases; i++)
        free(r->releases[i]);
    free(r->releases);
    for (size_t i = 0; i < r->nunreadable; i++)
        free(r->unreadable[i]);
    free(r->unreadable);
    memset(r, 0, sizeof(*r));
}

/* Adds what one environment must keep. cfg may be NULL (no file any more). */
static int keep_env(struct store *st, const char *env, const struct env_config *cfg,
                    struct strset *keep, struct sw_err *err)
{
    struct env_state *s = NULL;
    int rc = deploy_state_load(st, env, &s, err);
    if (rc)
        return rc;
    int64_t keep_prev = cfg ? cfg->keep_previous_ms : 24LL * 3600 * 1000;
    int retain = cfg ? cfg->retain_releases : 20;
    set_add(keep, s->live_release);
    set_add(keep, s->slot_release[0]);
    set_add(keep, s->slot_release[1]);
    if (s->previous_release && time_now_ms() - s->previous_since_ms <= keep_prev)
        set_add(keep, s->previous_release);
    env_state_free(s);

    struct deploy_event *ev;
    size_t n;
    if ((rc = deploy_history(st, env, &ev, &n, err)))
        return rc;
    struct strset seen = {0};
    for (size_t i = n; i-- > 0 && (int)seen.n < retain;) {
        const char *id = ev[i].to;
        if (id && !set_has(&seen, id)) {
            set_add(&seen, id);
            set_add(keep, id);
        }
    }
    set_free(&seen);
    deploy_events_free(ev, n);
    return 0;
}

/* Every environment that has a state document, plus every configured one. */
static int env_names(struct store *st, struct env_config *const *envs, size_t nenvs,
                     struct strset *names, struct sw_err *err)
{
    struct store_list l;
    int rc = store_list_all(st, "envs/", &l, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < l.n; i++)
        if (str_ends_with(l.keys[i], "/state.json")) {
            char *name = xstrndup(l.keys[i] + 5, strlen(l.keys[i]) - 5 - 11);
            if (!set_has(names, name))
                set_add(names, name);
            free(name);
        }
    store_list_free(&l);
    for (size_t i = 0; i < nenvs; i++)
        if (!set_has(names, envs[i]->name))
            set_add(names, envs[i]->name);
    return 0;
}

static int young(struct store *st, const char *key, int64_t grace_ms, uint64_t *size)
{
    struct store_stat sb;
    if (store_head(st, key, &sb, 0, NULL) != 0)
        return 1; /* vanished or unreadable: leave it alone */
    if (size)
        *size = sb.size;
    return time_now_ms() - sb.mtime_ms < grace_ms;
}

int deploy_gc(struct store *st, struct env_config *const *envs, size_t nenvs,
              const struct gc_roots *roots, int apply, int64_t grace_ms, struct gc_report *rep,
              struct sw_err *err)
{
    struct strset names = {0}, keep = {0}, blobs = {0};
    char **ids = NULL;
    size_t nids = 0;
    struct store_list bl = {0};
    memset(rep, 0, sizeof(*rep));
    int rc = env_names(st, envs, nenvs, &names, err);
    for (size_t i = 0; !rc && i < names.n; i++) {
        const struct env_config *cfg = NULL;
        for (size_t j = 0; j < nenvs; j++)
            if (!strcmp(envs[j]->name, names.v[i]))
                cfg = envs[j];
        rc = keep_env(st, names.v[i], cfg, &keep, err);
    }
    if (rc || (rc = release_list(st, &ids, &nids, err)))
        goto out;
    rep->releases = xcalloc(nids + 1, sizeof(char *));
    rep->unreadable = xcalloc(nids + 1, sizeof(char *));
    /* 1 kept, 0 not (so far), -1 gone or unreadable. A release written over
     * another (format 3) keeps that one and the manifests below it: they are
     * older, so read before it, and taken back in a second round. */
    signed char *state = xcalloc(nids + 1, 1);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < nids; i++) {
            if (round == 1 && (state[i] != 0 || !set_has(&keep, ids[i])))
                continue;
            /* Every manifest is read, kept or not: one that cannot be is kept
             * and reported, never deleted, since nobody can say what it is. */
            struct release *r = NULL;
            struct sw_err lerr = {0};
            int lrc = release_load(st, ids[i], &r, &lerr);
            if (lrc == SW_ENOTFOUND) {
                state[i] = -1; /* deleted meanwhile */
                continue;
            }
            if (lrc == SW_EINVAL) {
                rep->unreadable[rep->nunreadable++] = xstrdup(lerr.msg);
                state[i] = -1;
                continue;
            }
            if (lrc) {
                rc = sw_err_set(err, lrc, "%s", lerr.msg);
                free(state);
                goto out;
            }
            char *key = xasprintf("releases/%s.json", ids[i]);
            if (round == 1 || set_has(&keep, ids[i]) || young(st, key, grace_ms, NULL)) {
                state[i] = 1;
                rep->kept++;
                for (size_t c = 0; c < r->nchain; c++)
                    set_add(&keep, r->chain[c]);
                /* A variant is as much a body of the release as the file's own:
                 * the edge loads it, and would refuse the release without it.
                 * A packed body keeps its pack (named by its own hash, like a
                 * blob, so one set holds both). */
                for (size_t f = 0; f < r->nfiles; f++) {
                    struct release_body bv[RELEASE_VARIANTS + 1];
                    size_t nbv = release_file_bodies(&r->files[f], bv);
                    for (size_t j = 0; j < nbv; j++)
                        set_add(&blobs, bv[j].pack ? bv[j].pack : bv[j].blob);
                }
            }
            free(key);
            release_free(r);
        }
    }
    for (size_t i = 0; i < nids; i++)
        if (state[i] == 0)
            rep->releases[rep->nreleases++] = xstrdup(ids[i]);
    free(state);
    /* Manifests go before blobs: an interrupted gc then leaves unreferenced
     * blobs (removed next time), never a manifest whose bodies are gone. */
    for (size_t i = 0; apply && i < rep->nreleases; i++)
        if ((rc = release_delete(st, rep->releases[i], err)) && rc != SW_ENOTFOUND)
            goto out;
    rc = 0;
    /* The bodies an unreadable manifest names are unknown: delete none. */
    if (rep->nunreadable || (roots && roots->incomplete))
        goto cleanup;
    for (size_t i = 0; roots && i < roots->nblobs; i++)
        set_add(&blobs, roots->blobs[i]);
    for (int p = 0; p < 2; p++) {
        store_list_free(&bl);
        if ((rc = store_list_all(st, p ? RELEASE_PACK_PREFIX : RELEASE_BLOB_PREFIX, &bl, err)))
            goto out;
        for (size_t i = 0; i < bl.n; i++) {
            const char *hex = strrchr(bl.keys[i], '/') + 1;
            uint64_t size = 0;
            if (set_has(&blobs, hex) || young(st, bl.keys[i], grace_ms, &size))
                continue;
            rep->blobs++;
            rep->bytes += size;
            if (apply && (rc = store_delete(st, bl.keys[i], NULL, err)) && rc != SW_ENOTFOUND)
                goto out;
            rc = 0;
        }
    }
cleanup:
    if (apply)
        rc = store_cleanup(st, grace_ms, &rep->temporaries, err);
out:
    store_list_free(&bl);
    release_ids_free(ids, nids);
    set_free(&names);
    set_free(&keep);
    set_free(&blobs);
    if (rc)
        gc_report_free(rep);
    return rc;
}

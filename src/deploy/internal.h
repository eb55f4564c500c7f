/* Private to the deploy module. */
#ifndef SW_DEPLOY_INTERNAL_H
#define SW_DEPLOY_INTERNAL_H

#include "deploy/deploy.h"

#include <jansson.h>

/* A lease held: the state as its write left it (NULL: none held). */
struct env_lock {
    struct env_state *locked;
};

/* Takes the environment's lease in *s, the state as the caller read it (a
 * never-deployed environment's with the strategy it will have): written in by
 * compare-and-swap, so the write also proves *s current; when another writer
 * moved the state, *s is read again (replaced) and the lease tried once more,
 * a few times. DEPLOY_ELOCKED names the holder of a lease still running. On
 * success *s holds the lease and its new ETag. */
int deploy_lock(struct store *st, const char *action, struct env_state **s, struct env_lock *lk,
                struct sw_err *err);
/* The change's own write left the lease out: nothing to give back. */
void deploy_lock_consumed(struct env_lock *lk);
/* Gives the lease back: the state as it was before, written by compare-and-
 * swap on the lease's write (best effort: a lease that cannot be given back
 * runs out). */
void deploy_unlock(struct store *st, struct env_lock *lk);
void env_lease_clear(struct env_lease *l);
/* A lease nobody can still be using: past its expiry, or taken on this host by
 * a process that no longer exists. */
int deploy_lease_stale(const struct env_lease *l);

/* Writes s with compare-and-swap on s->etag (updated on success), then
 * notifies "envs" (store_notify), which wakes the edges of this host. */
int deploy_state_save(struct store *st, struct env_state *s, struct sw_err *err);
char *deploy_state_dump(const struct env_state *s);
void env_change_clear(struct env_change *c);

/* Text a person or a host supplied (actors, messages): UTF-8 without control
 * characters, bounded; multiline allows line breaks and tabs. In documents
 * they are read with json_field_str and these bounds. */
#define DEPLOY_ACTOR_MAX 256
#define DEPLOY_MESSAGE_MAX 65536
#define DEPLOY_REASON_MAX 1024 /* a rejection's reason: one line */
int deploy_text_ok(const char *t, int multiline);
/* An optional release id field of o (caller frees); a field present but not
 * a valid release id is counted in f. */
char *deploy_release_field(struct json_fields *f, json_t *o, const char *k);
/* "deploy", "switch" or "rollback". */
int deploy_action_valid(const char *a);

/* Parses the audit head document (see history.c); *envs is a new reference;
 * hash receives the newest event's hash; event (optional) receives its
 * document (caller frees), NULL from a head that names it by hash only. */
int deploy_head_parse(const char *data, size_t len, int64_t *seq, char hash[SHA256_HEX_LEN + 1],
                      json_t **envs, char **event, struct sw_err *err);

/* The audit head as one append left it, for the next append of the same
 * change: it saves reading the head again (its ETag still guards the write,
 * so a head moved meanwhile costs a round, never a wrong append). Zeroed
 * when empty; free with deploy_head_memo_clear. */
struct deploy_head_memo {
    int have;
    int64_t seq;
    char hash[SHA256_HEX_LEN + 1];
    char *event; /* the newest event's document; NULL when the head only names it */
    int stored;  /* 1: events/<seq>.json is known to exist */
    json_t *envs;
    char etag[SHA256_HEX_LEN + 1];
    int from_copy;    /* read from the local copy (deploy_opts.head_copy), not the store */
    int copy_refused; /* an append found the copy behind the head */
};
void deploy_head_memo_clear(struct deploy_head_memo *m);
/* Reads the audit head into memo (zeroed first), so that a change can read it
 * beside its state instead of after it, and stores the event it holds as an
 * object of its own, which the change's append would otherwise do after the
 * change's state write. copy (optional): the local copy to start from
 * instead of reading, when it holds one. Leaves memo empty where the head is missing or
 * cannot be read: deploy_event_append then reads it itself. */
void deploy_head_prefetch(struct store *st, const char *copy, struct deploy_head_memo *memo);
/* Keeps memo, the head as a change left it, in the local copy at path (NULL:
 * none): or a pause, when the change found the copy behind the head. */
void deploy_head_copy_save(struct store *st, const char *path, const struct deploy_head_memo *memo);
/* The local copy's document (history.c, "the head's local copy"): parsed into
 * h (0: have, from_copy and stored set; token: the line's word, "-" for none),
 * or -1 with h cleared; formatted from h (caller frees; NULL when h holds no
 * ETag or lacks its event). */
int deploy_head_copy_parse(const char *data, size_t len, struct deploy_head_memo *h,
                           char token[STORE_ETAG_TOKEN_MAX]);
char *deploy_head_copy_format(const struct deploy_head_memo *h, const char *token);

/* Appends s->last to the audit log unless it is there already. memo
 * (optional): the head to start from, if it holds one; on return, the head
 * as this call left it. */
int deploy_event_append(struct store *st, const struct env_state *s, struct deploy_head_memo *memo,
                        struct sw_err *err);

#endif

/* Private to the deploy module. */
#ifndef SW_DEPLOY_INTERNAL_H
#define SW_DEPLOY_INTERNAL_H

#include "deploy/deploy.h"

struct env_lock {
    char *key;
    char etag[SHA256_HEX_LEN + 1];
};

/* Takes the environment's lease lock; DEPLOY_ELOCKED names the holder. */
int deploy_lock(struct store *st, const char *env, const char *action, struct env_lock *lk,
                struct sw_err *err);
void deploy_unlock(struct store *st, struct env_lock *lk);

/* Writes s with compare-and-swap on s->etag (updated on success). */
int deploy_state_save(struct store *st, struct env_state *s, struct sw_err *err);
char *deploy_state_dump(const struct env_state *s);
void env_change_clear(struct env_change *c);

/* Appends s->last to the audit log unless it is there already. */
int deploy_event_append(struct store *st, const struct env_state *s, struct sw_err *err);

#endif

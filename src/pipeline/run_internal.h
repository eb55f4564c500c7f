/* Private to src/pipeline/: what the run record (run.c), the queue (queue.c)
 * and the run logs (runlog.c) share. */
#ifndef SW_PIPELINE_RUN_INTERNAL_H
#define SW_PIPELINE_RUN_INTERNAL_H

#include "pipeline/pipeline.h"
#include "store/store.h"

#include <stdint.h>

/* Bounds of the text fields of a run document (bytes). */
#define RUN_TEXT_MAX 1024   /* names, ref, group */
#define RUN_ACTOR_MAX 256   /* actor, cancelled_by */
#define RUN_REASON_MAX 4096 /* reason */
#define RUN_LEASE_MAX_MS (24LL * 3600 * 1000)
#define RUN_GATE_TIMEOUT_MAX_MS (30LL * 24 * 3600 * 1000) /* environment files allow 30d */

/* A GitHub identifier: [A-Za-z_][A-Za-z0-9_-]*, at most max bytes. */
int run_name_valid(const char *s, size_t max);
void run_claim_clear(struct pipeline_run_claim *c);
/* Replaces *dst by a copy of s (NULL allowed). */
void run_set_str(char **dst, const char *s);

/* Reads key whole into *data (NUL-terminated, caller frees) without ever
 * holding more than max bytes: a forged huge object is SW_EINVAL naming the
 * key, not an allocation of its size. etag (optional) is that of the bytes. */
int run_get_bounded(struct store *st, const char *key, size_t max, char **data, size_t *len,
                    char etag[SHA256_HEX_LEN + 1], struct sw_err *err);

#endif

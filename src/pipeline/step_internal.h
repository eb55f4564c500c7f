/* Private to src/pipeline/: what step.c (running a step) shares with
 * stepcmd.c (the parsers and the masker). */
#ifndef SW_PIPELINE_STEP_INTERNAL_H
#define SW_PIPELINE_STEP_INTERNAL_H

#include "pipeline/pipeline.h"

/* GitHub's workflow command names (ActionCommandManager registers these). */
extern const char *const step_commands[];
/* 1 when name[0..len) is one of them, any case. */
int step_is_command(const char *name, size_t len);

/* The masks of one step, kept so masking a line costs no allocation once the
 * scratch space has grown. Values are distinct and non-empty. */
struct step_masker {
    struct pipeline_step_list values;
    size_t *lens;        /* of each value */
    size_t bytes;        /* of all values */
    size_t longest_line; /* the longest value without '\r' or '\n' */
    struct buf cover;    /* scratch: which bytes of a text a mask covers */
};

/* Adds one value as is (nothing when empty or already there). */
void step_masker_add(struct step_masker *m, const char *v, size_t len);
/* Adds a secret as GitHub's runner does: trimmed and whole, then each of
 * its lines, trimmed. */
void step_masker_add_secret(struct step_masker *m, const char *v, size_t len);
/* Masks text[0..len) as pipeline_step_mask does, its first `pre` bytes
 * counting as covered by a mask, and appends to out only the part before
 * `cut` (<= len). Returns how far past `cut` the occurrences that start before
 * it reach: the `pre` of the rest when it is masked later, so a text written
 * in pieces (a line too long to hold) never shows part of a secret. */
size_t step_masker_write(struct step_masker *m, const char *text, size_t len, size_t pre,
                         size_t cut, struct buf *out);
void step_masker_free(struct step_masker *m);

/* .NET's Trim: white space (Char.IsWhiteSpace) off both ends of s[0..*len);
 * returns the new start and sets *len. */
const char *step_trim(const char *s, size_t *len);

#endif

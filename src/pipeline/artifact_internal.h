/* Private to src/pipeline/: what artifact.c (actions/upload-artifact and
 * actions/download-artifact) gives the runner, and its path search, which the
 * unit tests check on their own. */
#ifndef SW_PIPELINE_ARTIFACT_INTERNAL_H
#define SW_PIPELINE_ARTIFACT_INTERNAL_H

#include "pipeline/pipeline.h"

/* ---- the search for upload-artifact's `path` ---------------------------------------------- */

/* upload-artifact's `path`: one pattern a line (blank lines and lines
 * starting with '#' skipped), `!` excluding, as @actions/glob reads them:
 * `*`, `?` and `[...]` within a segment (matching dot files too), `**` any
 * number of segments, `~` the home directory, relative to the workspace; a
 * pattern matching a directory matches everything below it; a trailing '/'
 * matches directories only; the last pattern that matches a file decides. */
struct artifact_search {
    char *root;   /* absolute: what the stored paths are relative to */
    char **files; /* absolute paths of the regular files found, sorted by rel */
    char **rel;   /* each relative to root */
    size_t n;
    char **search_paths; /* the top-most search paths of the including patterns */
    size_t nsearch;
};
/* Finds the files of paths_text under workspace (absolute). Hidden files and
 * directories (a name starting with '.') below a search path are left out
 * unless include_hidden; symbolic links are followed (a directory loop is
 * cut), broken ones and what is not a regular file skipped. The root is the
 * least common ancestor of the search paths, or, for one search path naming
 * exactly the one file found, that file's directory (as upload-artifact v4
 * does). SW_EINVAL when no pattern includes anything, a stored path would not
 * be a path GitHub allows, or more than max_files are found (0:
 * PIPELINE_ARTIFACT_FILES_MAX). Free with artifact_search_free. */
int artifact_search(const char *workspace, const char *paths_text, int include_hidden,
                    size_t max_files, struct artifact_search *out, struct sw_err *err);
void artifact_search_free(struct artifact_search *s);

/* path made absolute against base (a leading "~" is $HOME) and normalised
 * lexically: no empty, "." or ".." segment, no trailing '/'. Caller frees. */
char *artifact_path_resolve(const char *base, const char *path);
/* 1 when pattern (absolute, normalised) matches path (absolute, normalised)
 * or one of its directories (dir_only: only one of its directories). */
int artifact_glob_match(const char *pattern, int dir_only, const char *path);
/* The least common ancestor of absolute normalised paths[0..n) (caller frees). */
char *artifact_lca(char *const *paths, size_t n);
/* 0 when rel (a stored path) is in normal form and holds none of GitHub's
 * forbidden characters (" : < > | * ? CR LF), else SW_EINVAL saying why. */
int artifact_path_check(const char *rel, struct sw_err *err);

/* ---- the steps ------------------------------------------------------------------------------ */

/* A line for the step's log (one line, not masked yet). */
typedef void artifact_say_fn(void *ctx, enum pipeline_step_log_kind kind, const char *text);

/* One upload-artifact or download-artifact step. Borrowed. */
struct artifact_step {
    struct store *st;
    const char *run_id;
    const char *job;       /* the job's id (recorded in the manifest) */
    const char *workspace; /* github.workspace (absolute) */
    const char *temp_dir;  /* RUNNER_TEMP: large bodies are copied here before storing */
    const json_t *with;    /* the step's with:, evaluated: an object of strings */
    const _Atomic int *cancel;
    artifact_say_fn *say;
    void *ctx;
};

/* actions/upload-artifact: `name` (default "artifact"), `path`,
 * `if-no-files-found` (warn, error, ignore), `retention-days`,
 * `include-hidden-files`, `overwrite`; outputs `artifact-id` and
 * `artifact-url` (empty) into outputs. */
enum pipeline_step_outcome artifact_upload_step(const struct artifact_step *a, json_t *outputs);
/* actions/download-artifact: `name`, `path`, `pattern`, `merge-multiple`,
 * `run-id`; output `download-path`. */
enum pipeline_step_outcome artifact_download_step(const struct artifact_step *a, json_t *outputs);

#endif

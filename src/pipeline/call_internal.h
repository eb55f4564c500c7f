/* Private to src/pipeline/: what the runner (runner_call.c) asks of reusable.c to
 * run a job that calls a local reusable workflow (`uses:
 * ./.github/workflows/x.yml`): the called file read at the run's commit, the
 * caller's `with` checked against the called workflow's typed inputs, the
 * secrets it passes, and the outputs it gets back. Each is a function of its
 * arguments alone (the file reading aside), so the runner keeps the
 * scheduling and these keep GitHub's rules. */
#ifndef SW_PIPELINE_CALL_INTERNAL_H
#define SW_PIPELINE_CALL_INTERNAL_H

#include "pipeline/pipeline.h"

#include <jansson.h>

/* GitHub connects at most four levels of workflows: the caller and three
 * levels of called ones. */
#define CALL_MAX_DEPTH 4
/* Called workflows one run may expand (a matrix of callers counts each). */
#define CALL_MAX_CALLS 256

/* The file path in the repository a job's `uses: ./PATH` names (PATH without
 * "./"); caller frees. */
char *call_file(const struct pipeline_uses *u);

/* Reads file (a path in the repository, from call_file) at commit sha of the
 * git repository repo with `git show`, as the runner reads the run's own
 * workflow, and loads it with flags (PIPELINE_LOAD_*). The workflow must load
 * without error and have on.workflow_call; otherwise PIPELINE_ELOAD (or
 * SW_ENOTFOUND when the file is not there) with one line naming the file and
 * the first fault. *out is freed with pipeline_workflow_free. */
int call_load(const char *repo, const char *sha, const char *file, unsigned flags,
              struct pipeline_workflow **out, struct sw_err *err);

/* The value v (evaluated from the caller's `with`, or the text of a plain,
 * unquoted literal when literal is 1) as input in receives it, with GitHub's
 * checks: a string input takes any scalar as its text (null: ""), a boolean
 * input a Boolean (or the YAML words true and false written plain), a number
 * input a Number (or a number written plain). A quoted literal ("true", '1')
 * is a String, as GitHub's YAML reader makes it: pass literal 0 for it. *out is a new JSON string,
 * boolean or real. A mismatch is PIPELINE_EEVAL with GitHub's "Unexpected type of value 'V',
 * expected type: Boolean." Pure. */
int call_input_value(const struct pipeline_input *in, const struct pipeline_value *v, int literal,
                     json_t **out, struct sw_err *err);

/* The inputs context of a call: every `with` entry of caller evaluated with
 * values (the caller's contexts: github, needs, matrix, ...) and checked by
 * call_input_value; an input not given takes its default (evaluated with
 * values when an expression), else false, 0 or "" as on GitHub. An entry the
 * called workflow does not declare, or a required input not given, is
 * PIPELINE_EEVAL with GitHub's one line ("Invalid input, x is not defined in
 * the referenced workflow.", "Input x is required, but not provided while
 * calling."). *out is a new object. */
int call_inputs(const struct pipeline_workflow *called, const struct pipeline_job *caller,
                const json_t *values, json_t **out, struct sw_err *err);

/* The secrets context of a call: with `secrets: inherit` every secret of
 * values' secrets, else the entries of the caller's `secrets:` evaluated with
 * values, each one the called workflow declares (GitHub's "Invalid secret, x
 * is not defined in the referenced workflow." otherwise), and every required
 * one given ("Secret x is required, but not provided while calling.").
 * GITHUB_TOKEN is always passed. *out is a new object. */
int call_secrets(const struct pipeline_workflow *called, const struct pipeline_job *caller,
                 const json_t *values, json_t **out, struct sw_err *err);

/* The caller job's outputs: on.workflow_call.outputs of called evaluated with
 * values (which hold the `jobs` context of the called workflow's jobs), each
 * as text, added to out. PIPELINE_EEVAL naming the output on a fault. */
int call_outputs(const struct pipeline_workflow *called, const json_t *values, json_t *out,
                 struct sw_err *err);

#endif

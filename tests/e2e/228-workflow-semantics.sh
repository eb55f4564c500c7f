#!/usr/bin/env bash
# What issue 11 asks of the workflow engine that the other workflow tests do
# not reach: workflow_dispatch (a dispatch-only workflow, required inputs,
# choices, defaults, github.event.inputs as text; a push sees no inputs);
# events slipway never runs; pwsh at run time and under --unsupported skip;
# the contexts of a push (github.event, vars, runner, strategy) and the
# functions; the file and workflow commands; nothing of the caller's
# environment in a step; timestamps in the stored log; --help everywhere.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows
commit() { git add -A && git -c user.name=tester -c user.email=t@example.com commit -qm "$1"; }

# ---- workflow_dispatch ----------------------------------------------------------------------
printf 'COLOR: blue\nN: 3\n' > .slipway/vars.yml
cat > .github/workflows/disp.yml <<'EOF'
name: disp
run-name: "Deploy ${{ inputs.target }} by ${{ github.actor }} from ${{ github.ref_name }} in ${{ vars.COLOR }}"
concurrency: deploy-${{ inputs.target }}-${{ vars.COLOR }}
on:
  workflow_dispatch:
    inputs:
      target: {type: choice, options: [dev, prod], default: dev}
      need: {required: true}
      n: {type: number, default: 3}
      flag: {type: boolean, default: true}
permissions: read-all
jobs:
  a:
    permissions: {contents: read}
    runs-on: ubuntu-latest
    steps:
      - run: echo "ev=${{ github.event_name }} t=${{ inputs.target }} n=${{ inputs.n }} need=${{ inputs.need }} flag=${{ inputs.flag }} evt=${{ github.event.inputs.target }} evflag=${{ github.event.inputs.flag == 'true' }} evn=${{ github.event.inputs.n == '3' }}"
EOF
cat > .github/workflows/both.yml <<'EOF'
on:
  push:
  workflow_dispatch:
    inputs:
      level: {default: high}
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo "ev=${{ github.event_name }} level=${{ inputs.level || 'none' }} in=${{ toJSON(inputs) }}"
EOF
cat > .github/workflows/pr.yml <<'EOF'
on:
  pull_request: {branches: [main]}
  schedule: [{cron: '0 0 * * *'}]
  release: {types: [published]}
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [{run: echo pr}]
EOF
commit dispatch

SLIPWAY_ACTOR=deployer sw workflow run disp -f need=x --wait
check "a dispatch: inputs typed, defaults filled, github.event.inputs as text" \
    eval '[ "$rc" = 0 ] && grep -q "^\[a\] ev=workflow_dispatch t=dev n=3 need=x flag=true evt=dev evflag=true evn=true$" <<<"$out"'
did=$(head -1 <<<"$out")
sw run view "$did" --json
check "run-name: evaluated when queued (github, inputs, vars), the run's display_title" test "$(json 'j["display_title"]')" = "Deploy dev by deployer from main in blue"
sw run view "$did"
check "... shown by run view" grep -qx "  Deploy dev by deployer from main in blue" <<<"$out"
sw workflow run disp
expect_err "a required input without default must be given" 1 "Required input 'need' not provided"
sw workflow run disp -f need=x -f target=staging
expect_err "a choice takes one of its options" 1 "Provided value 'staging' for input 'target' not in the list of allowed values"
sw workflow run disp -f need=x -f target=prod --wait
check "... and a value among them" grep -q "^\[a\] ev=workflow_dispatch t=prod " <<<"$out"
sw workflow run both --wait
check "a push sees no inputs, not the dispatch defaults" grep -q "^\[a\] ev=push level=none in={}$" <<<"$out"
sw workflow run both -f level=low --wait
check "-f makes it a dispatch" grep -q "^\[a\] ev=workflow_dispatch level=low " <<<"$out"
sw workflow run pr
expect_err "a workflow of other events only is never run" 1 "is triggered by neither push nor workflow_dispatch \(on: pull_request, schedule, release\): slipway never runs it"
sw workflow run pr -f x=1
expect_err "-f for a workflow without workflow_dispatch" 1 "has no workflow_dispatch trigger"
sw workflow check .github/workflows/pr.yml --ref refs/heads/main --changed a.c
check "... and workflow check says it is not triggered by a push" test "$out" = ".github/workflows/pr.yml: ok, not triggered by a push of refs/heads/main"

# ---- pwsh, powershell and cmd: load, then fail at run time, or are skipped ------------------------
cat > .github/workflows/ps.yml <<'EOF'
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo before
      - run: Write-Host hi
        shell: pwsh
      - run: echo after
EOF
commit pwsh
sw workflow check .github/workflows/ps.yml
check "a pwsh step loads" eval '[ "$rc" = 0 ] && [ -z "$errout" ]'
sw workflow run ps --wait
check "... and fails at run time with one line" eval '[ "$rc" = 1 ] && [ "$(grep -c "##\[error\]" <<<"$out")" = 1 ] && grep -q "^\[a\] ##\[error\]The shell .pwsh. is not supported" <<<"$out" && ! grep -q "^\[a\] after$" <<<"$out"'
sw workflow run ps --wait --unsupported skip
check "under --unsupported skip it is skipped with a warning and the job goes on" \
    eval '[ "$rc" = 0 ] && grep -q "^\[a\] ##\[warning\]skipped: step 2: shell .pwsh." <<<"$out" && grep -q "^\[a\] after$" <<<"$out"'

# ---- a push: its contexts, functions, file and workflow commands; nothing of the caller leaks ------
cat > .github/workflows/ctx.yml <<'EOF'
name: Contexts
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    strategy:
      matrix: {x: [1]}
    steps:
      - uses: actions/checkout@v4
      - id: s
        run: |
          echo "ev ref=${{ github.event.ref }} after=${{ github.event.after == github.sha }} before=${{ github.event.before }}"
          echo "hc=${{ github.event.head_commit.message }} id=${{ github.event.head_commit.id == github.sha }} author=${{ github.event.head_commit.author.name }} c0=${{ github.event.commits[0].id == github.sha }} pusher=${{ github.event.pusher.name != '' }} repo=${{ github.event.repository.full_name == github.repository }}"
          echo "vars=${{ vars.COLOR }}${{ vars.N }} runner=${{ runner.os }}/${{ runner.arch != '' }}/${{ runner.temp != '' }} job=${{ job.status }}"
          echo "strategy=${{ strategy.job-index }}/${{ strategy.job-total }}/${{ strategy.fail-fast }}/${{ strategy.max-parallel }}"
          echo "fn=${{ case(matrix.x == 1, 'one', 'other') }} ${{ format('{0}-{1}', 'a', 1) }} ${{ join(fromJSON('[1,2]'), '+') }} ${{ startsWith('Abc', 'a') }} ${{ endsWith('Abc', 'C') }} ${{ contains('abc', 'B') }} ${{ toJSON(matrix.x) }} h=${{ hashFiles('**/*.yml') != '' }}"
          echo "one=1" >> "$GITHUB_OUTPUT"
          { echo 'ML<<EOF_X'; echo line1; echo line2; echo 'EOF_X'; } >> "$GITHUB_OUTPUT"
          { echo 'MENV<<ZZ'; echo e1; echo e2; echo 'ZZ'; } >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/../bin" && printf '#!/bin/sh\necho mytool ran\n' > "$RUNNER_TEMP/../bin/mytool" && chmod +x "$RUNNER_TEMP/../bin/mytool"
          echo "$RUNNER_TEMP/../bin" >> "$GITHUB_PATH"
          { echo '# Summary'; echo 'second line'; } >> "$GITHUB_STEP_SUMMARY"
          echo "foo=${FOO:-absent} secretvars=$(env | grep -c '^SLIPWAY_SECRET_')"
          echo "others=$(env | cut -d= -f1 | grep -v '^GITHUB_\|^RUNNER_\|^SLIPWAY_\|^CI$\|^HOME$\|^PATH$\|^PWD$\|^SHLVL$\|^_$\|^MENV$' | tr '\n' ' ')."
      - run: |
          echo "ml=${{ steps.s.outputs.ML }}" | tr '\n' '|'; echo
          echo "menv=$MENV" | tr '\n' '|'; echo
          mytool
          echo "::add-mask::hide-this-value"
          echo "shown hide-this-value"
          echo "::error file=app.c,line=3::bad thing"
          echo "::warning::warned"
          echo "::group::G1"; echo in-group; echo "::endgroup::"
          echo "::stop-commands::tok"; echo "::error::not a command"; echo "::tok::"
          echo "::set-output name=old::v"
EOF
commit contexts
export FOO=bar SLIPWAY_SECRET_TOKEN=tok-value-1
sw workflow run Contexts --wait
unset FOO SLIPWAY_SECRET_TOKEN
cid=$(head -1 <<<"$out")
expect_rc "the contexts run succeeds" 0
sha=$(git rev-parse HEAD)
check "github.event of a push: ref, before, after, head_commit, commits, pusher, repository" \
    eval 'grep -q "^\[a (1)\] ev ref=refs/heads/main after=true before=0\{40\}$" <<<"$out" && grep -q "^\[a (1)\] hc=contexts id=true author=tester c0=true pusher=true repo=true$" <<<"$out"'
check "vars from .slipway/vars.yml, runner, job" grep -q "^\[a (1)\] vars=blue3 runner=Linux/true/true job=success$" <<<"$out"
check "strategy" grep -q "^\[a (1)\] strategy=0/1/true/1$" <<<"$out"
check "case, format, join, startsWith, endsWith, contains, toJSON, hashFiles" grep -q "^\[a (1)\] fn=one a-1 1+2 true true true 1 h=true$" <<<"$out"
check "GITHUB_OUTPUT and GITHUB_ENV take multi-line values with delimiters" \
    eval 'grep -q "^\[a (1)\] ml=line1|line2|$" <<<"$out" && grep -q "^\[a (1)\] menv=e1|e2|$" <<<"$out"'
check "GITHUB_PATH reaches the next step" grep -q "^\[a (1)\] mytool ran$" <<<"$out"
check "the caller's environment does not reach a step, nor SLIPWAY_SECRET_*" \
    eval 'grep -q "^\[a (1)\] foo=absent secretvars=0$" <<<"$out" && grep -q "^\[a (1)\] others=\.$" <<<"$out"'
check "::add-mask:: masks from the next line" eval 'grep -q "^\[a (1)\] shown \*\*\*$" <<<"$out" && ! grep -q "shown hide-this-value$" <<<"$out"'
check "::error file=,line=:: and ::warning:: are annotations" \
    eval 'grep -q "^\[a (1)\] ##\[error\]bad thing$" <<<"$out" && grep -q "^\[a (1)\] ##\[warning\]warned$" <<<"$out"'
check "::group:: and ::endgroup::" eval 'grep -q "^\[a (1)\] ##\[group\]G1$" <<<"$out"'
check "::stop-commands:: turns commands off until its token" \
    eval 'grep -q "^\[a (1)\] ::error::not a command$" <<<"$out" && ! grep -q "##\[error\]not a command" <<<"$out"'
check "::set-output:: works, with the deprecation warning" grep -q "^\[a (1)\] ##\[warning\]The .set-output. command is deprecated" <<<"$out"

sw run view "$cid" --json
check "run view --json: the keys of issue 11" test "$(json 'sorted(k for k in ("id", "workflow", "status", "conclusion", "jobs") if k in j)')" = "['conclusion', 'id', 'jobs', 'status', 'workflow']"
check "... no run-name: display_title null" test "$(json 'repr(j["display_title"])')" = None
check "... a job's keys" test "$(json 'sorted(j["jobs"][0])')" = "['conclusion', 'ended_at', 'environment', 'id', 'matrix', 'name', 'outputs', 'started_at', 'status', 'steps']"
check "... a step's keys" test "$(json 'sorted(j["jobs"][0]["steps"][0])')" = "['conclusion', 'name', 'outcome']"
check "... a leg of a matrix of one: its name and values" test "$(json '(j["jobs"][0]["id"], j["jobs"][0]["name"], j["jobs"][0]["matrix"], len(j["jobs"]))')" = "('a', 'a (1)', {'x': 1}, 1)"
sw run view "$cid" --log
check "the stored log: every line stamped with its time" \
    eval '[ -n "$out" ] && ! grep -vqP "^a \(1\)\t[^\t]*\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z " <<<"$out"'
check "... and masked" eval 'grep -q "shown \*\*\*" <<<"$out" && ! grep -q "shown hide-this-value$" <<<"$out"'

# ---- --help on every subcommand --------------------------------------------------------------------
for c in "workflow" "workflow check" "workflow run" "run" "run list" "run view" "run watch" "run cancel" "runner" "expr"; do
    sw $c --help
    check "$c --help" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway $c" <<<"$out"'
done

done_testing

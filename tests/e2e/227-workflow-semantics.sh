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
cat > .github/workflows/disp.yml <<'EOF'
name: disp
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

sw workflow run disp -f need=x --wait
check "a dispatch: inputs typed, defaults filled, github.event.inputs as text" \
    eval '[ "$rc" = 0 ] && grep -q "^\[a\] ev=workflow_dispatch t=dev n=3 need=x flag=true evt=dev evflag=true evn=true$" <<<"$out"'
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

done_testing

#!/usr/bin/env bash
# Reusable workflows (a job's `uses: ./.github/workflows/x.yml`): the called
# file read at the run's commit; typed inputs from the caller's `with`,
# evaluated with needs; secrets: inherit; the caller's github context (its
# event) but not its env or inputs; the called jobs as jobs of the run named
# "caller / called" with their own needs and a matrix, and a caller's matrix;
# the caller's outputs from on.workflow_call.outputs read by a later job as
# needs.call.outputs; every value passed as a secret (computed, a literal, an
# output) masked in every line of the run; a missing required input, an unknown input, a mistyped
# one, a failing called job, a file missing or without workflow_call, a cycle
# and a nesting deeper than GitHub's four levels each fail with one clear line;
# `workflow check` finds the faults of a call that need no run (undeclared,
# missing and mistyped literal inputs, quoted ones too, undeclared and missing
# secrets, a file without workflow_call) at the caller's line, and only warns
# about a called file it cannot find.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows
cat > .github/workflows/ci.yml <<'EOF'
name: Caller
on:
  push:
  workflow_dispatch:
    inputs:
      greet:
        default: hi
env:
  CALLER_ENV: caller
jobs:
  prep:
    runs-on: ubuntu-latest
    outputs:
      n: ${{ steps.p.outputs.n }}
    steps:
      - id: p
        run: echo "n=3" >> "$GITHUB_OUTPUT"
  call:
    needs: prep
    uses: ./.github/workflows/lib.yml
    with:
      who: ${{ inputs.greet }}-${{ needs.prep.outputs.n }}
      count: ${{ fromJSON(needs.prep.outputs.n) }}
      flag: true
    secrets: inherit
  after:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo "x=${{ needs.call.outputs.x }} result=${{ needs.call.result }}"
EOF
cat > .github/workflows/lib.yml <<'EOF'
name: Lib
on:
  workflow_call:
    inputs:
      who:
        type: string
        required: true
      count:
        type: number
        required: true
      flag:
        type: boolean
        default: false
      opt:
        type: string
        default: dflt
      fail:
        type: boolean
    secrets:
      TOKEN:
        required: false
    outputs:
      x:
        value: ${{ jobs.second.outputs.y }}
env:
  LIB_ENV: lib-env
jobs:
  first:
    runs-on: ubuntu-latest
    outputs:
      a: ${{ steps.s.outputs.a }}
    steps:
      - id: s
        run: |
          echo "who=${{ inputs.who }} count=${{ inputs.count }} flag=${{ inputs.flag }} opt=${{ inputs.opt }} greet=${{ inputs.greet }}"
          echo "event=${{ github.event_name }} secret=${{ secrets.TOKEN }} env=$LIB_ENV caller_env=${CALLER_ENV:-absent}"
          echo "a=${{ inputs.count == 3 && inputs.flag == true }}" >> "$GITHUB_OUTPUT"
      - if: inputs.fail
        run: exit 1
  second:
    needs: first
    name: Second
    runs-on: ubuntu-latest
    strategy:
      matrix:
        k: [p]
    outputs:
      y: ${{ steps.t.outputs.y }}
    steps:
      - id: t
        run: echo "y=got-${{ needs.first.outputs.a }}-${{ matrix.k }}" >> "$GITHUB_OUTPUT"
EOF
cat > .github/workflows/bad.yml <<'EOF'
on: push
jobs:
  missing:
    uses: ./.github/workflows/lib.yml
    with:
      count: 1
  unknown:
    uses: ./.github/workflows/lib.yml
    with:
      who: a
      count: 1
      nosuch: x
  mistyped:
    uses: ./.github/workflows/lib.yml
    with:
      who: a
      count: many
  fromoutput:
    uses: ./.github/workflows/lib.yml
    with:
      who: a
      count: 1
      flag: ${{ github.ref_name }}
  failing:
    uses: ./.github/workflows/lib.yml
    with:
      who: a
      count: 2
      fail: true
  later:
    needs: failing
    runs-on: ubuntu-latest
    steps:
      - run: echo never
EOF
cat > .github/workflows/mat.yml <<'EOF'
on: push
jobs:
  call:
    strategy:
      matrix:
        who: [a, b]
    uses: ./.github/workflows/lib.yml
    with:
      who: ${{ matrix.who }}
      count: 1
EOF
cat > .github/workflows/wrong.yml <<'EOF'
on: push
jobs:
  none:
    uses: ./.github/workflows/none.yml
  notcall:
    uses: ./.github/workflows/ci.yml
EOF
cat > .github/workflows/cyc.yml <<'EOF'
on: [push, workflow_call]
jobs:
  again:
    uses: ./.github/workflows/cyc.yml
EOF
for i in 1 2 3 4; do
    cat > .github/workflows/n$i.yml <<EOF
on: [push, workflow_call]
jobs:
  call:
    uses: ./.github/workflows/n$((i + 1)).yml
EOF
done
cat > .github/workflows/n5.yml <<'EOF'
on: workflow_call
jobs:
  leaf:
    runs-on: ubuntu-latest
    steps:
      - run: echo "leaf ran"
EOF
cat > .github/workflows/sec.yml <<EOF
on: push
jobs:
  gen:
    runs-on: ubuntu-latest
    outputs:
      v: \${{ steps.g.outputs.v }}
    steps:
      - id: g
        run: echo "v=from-output-\$((90 + 9))" >> "\$GITHUB_OUTPUT"
  early:
    runs-on: ubuntu-latest
    steps:
      - run: |
          # prints, once the call is made, what it passes as secrets (its
          # script, shown when the step starts, does not hold them)
          for i in \$(seq 600); do [ -e "$T/called-ran" ] && break; sleep 0.1; done
          echo "early k=k-value-\$((40 + 2)) v=from-output-\$((90 + 9))"
  call:
    needs: gen
    uses: ./.github/workflows/seclib.yml
    secrets:
      A: \${{ fromJSON(secrets.JSON).k }}
      B: \${{ needs.gen.outputs.v }}
      C: literal-pass-7
      M: \${{ fromJSON(secrets.JSON).m }}
  later:
    needs: call
    runs-on: ubuntu-latest
    steps:
      - run: echo "later k=\${{ fromJSON(secrets.JSON).k }} c=literal-pass-7"
EOF
cat > .github/workflows/seclib.yml <<EOF
on:
  workflow_call:
    secrets:
      A:
      B:
      C:
      M:
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "a=\${{ secrets.A }} b=\${{ secrets.B }} c=\${{ secrets.C }}"
          echo "\${{ secrets.M }}"
          touch "$T/called-ran"
EOF
cat > .github/workflows/check.yml <<'EOF'
on: push
jobs:
  quoted:
    uses: ./.github/workflows/lib.yml
    with:
      who: "true"
      count: '3'
      flag: "true"
  secret:
    uses: ./.github/workflows/lib.yml
    with: {who: a, count: 1}
    secrets:
      TOKEN: x
      OTHER: y
  need:
    uses: ./.github/workflows/req.yml
  fine:
    uses: ./.github/workflows/lib.yml
    with:
      who: ${{ github.ref }}
      count: ${{ github.run_number }}
      flag: TRUE
    secrets: inherit
EOF
cat > .github/workflows/req.yml <<'EOF'
on:
  workflow_call:
    secrets:
      NEED:
        required: true
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - run: "true"
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init

# ---- workflow check: the calls checked without a run -----------------------------------------
sw workflow check .github/workflows/ci.yml .github/workflows/mat.yml
check "check: calls that can be made are ok" eval '[ "$rc" = 0 ] && [ -z "$errout" ]'
sw workflow check .github/workflows/check.yml
expect_rc "check: calls that cannot be made are errors" 1
check "... a quoted literal for a boolean input, at the value" grep -qx "\.github/workflows/check\.yml:8:13: job quoted: input 'flag': Unexpected type of value 'true', expected type: Boolean\." <<<"$errout"
check "... a quoted literal for a number input" grep -qx "\.github/workflows/check\.yml:7:14: job quoted: input 'count': Unexpected type of value '3', expected type: Number\." <<<"$errout"
check "... a secret the called workflow does not declare, at its key" grep -qx "\.github/workflows/check\.yml:14:7: job secret: Invalid secret, OTHER is not defined in the referenced workflow\." <<<"$errout"
check "... a required secret not passed, at uses:" grep -qx "\.github/workflows/check\.yml:16:11: job need: Secret NEED is required, but not provided while calling\." <<<"$errout"
check "... nothing else (a quoted string input, expressions, TRUE and inherit are fine)" test "$(grep -c '' <<<"$errout")" = 4
check "... counted on stdout" test "$out" = ".github/workflows/check.yml: 4 errors"
sw workflow check "$T/repo/.github/workflows/bad.yml"
expect_rc "check: the runner's errors, found beside a file named by an absolute path" 1
check "... a missing required input, at uses:" grep -qx "$T/repo/\.github/workflows/bad\.yml:4:11: job missing: Input who is required, but not provided while calling\." <<<"$errout"
check "... an input not declared, at its key" grep -qx "$T/repo/\.github/workflows/bad\.yml:12:7: job unknown: Invalid input, nosuch is not defined in the referenced workflow\." <<<"$errout"
check "... a plain literal of the wrong type" grep -qx "$T/repo/\.github/workflows/bad\.yml:17:14: job mistyped: input 'count': Unexpected type of value 'many', expected type: Number\." <<<"$errout"
check "... and no more (an expression is typed when the run makes the call)" test "$(grep -c '' <<<"$errout")" = 3
cd .github/workflows && sw --json workflow check wrong.yml
check "check: a file that is not a reusable workflow is an error; one not there only a warning" test "$rc $(json '[(f["ok"], f["errors"]) for f in j["files"]]')" = "1 [(False, ['wrong.yml:6:11: job notcall: .github/workflows/ci.yml is not a reusable workflow: its on: has no workflow_call'])]"
sw workflow check wrong.yml && cd "$T/repo"
check "... the warning says why the call is not checked" grep -qx "wrong.yml:4:11: warning: job none: .github/workflows/none.yml is not in the repository at $T/repo: the call is not checked" <<<"$errout"
mkdir -p "$T/norepo" && cp .github/workflows/mat.yml "$T/norepo/"
sw workflow check "$T/norepo/mat.yml"
check "check: no repository around the file: a warning, not an error" eval '[ "$rc" = 0 ] && grep -q "^$T/norepo/mat.yml:[0-9]*:[0-9]*: warning: job call: no repository (.git or .github) around" <<<"$errout"'

# ---- a call that works -----------------------------------------------------------------------
# lib.yml changed after the commit: the run reads it as it is at the run's commit
sed -i 's/dflt/uncommitted/' .github/workflows/lib.yml
export SLIPWAY_SECRET_TOKEN=s3cr3t-value
sw workflow run Caller -f greet=hello --wait
expect_rc "a run with a reusable workflow succeeds" 0
id=$(head -1 <<<"$out")
check "with: evaluated with inputs and needs, typed; defaults; read at the run's commit" grep -q "^\[call / first\] who=hello-3 count=3 flag=true opt=dflt greet=$" <<<"$out"
check "github is the caller's (its event), secrets inherited and masked, env not passed" grep -q "^\[call / first\] event=workflow_dispatch secret=\*\*\* env=lib-env caller_env=absent" <<<"$out"
check "the caller's outputs come from on.workflow_call.outputs, read through needs" grep -q "^\[after\] x=got-true-p result=success" <<<"$out"
check "no secret in the printed log" eval '! grep -q s3cr3t <<<"$out"'

sw run view "$id" --json
check "run view --json: one entry per called job, named caller / called, matrix legs too" test "$(json '[(x["id"], x["name"], x["conclusion"]) for x in j["jobs"]]')" = "[('prep', 'prep', 'success'), ('first', 'call / first', 'success'), ('second', 'call / Second (p)', 'success'), ('after', 'after', 'success')]"
check "the called jobs' outputs are recorded" test "$(json 'j["jobs"][2]["outputs"]')" = "{'y': 'got-true-p'}"
sw run view "$id" --log --job "call / first"
check "run view --log --job takes the called job's name" eval 'grep -q "who=hello-3" <<<"$out" && ! grep -q "x=got" <<<"$out"'

sw workflow run mat --wait
expect_rc "a caller with a matrix: one call per leg" 0
check "... each with its leg's values" eval 'grep -q "^\[call (a) / first\] who=a count=1" <<<"$out" && grep -q "^\[call (b) / first\] who=b count=1" <<<"$out"'
mat=$(head -1 <<<"$out")
sw run view "$mat" --json
check "... named caller (leg) / called" test "$(json '[x["name"] for x in j["jobs"]]')" = "['call (a) / first', 'call (b) / first', 'call (a) / Second (p)', 'call (b) / Second (p)']"

# ---- every value passed as a secret is masked, in every line of the run ---------------------------
SLIPWAY_SECRET_JSON='{"k":"k-value-42","m":"mline-one\nmline-two"}' sw workflow run sec --wait --jobs 3
expect_rc "a call passing computed secrets succeeds" 0
check "the called job's secrets, computed by the caller, are masked" grep -qx '\[call / show\] a=\*\*\* b=\*\*\* c=\*\*\*' <<<"$out"
check "... each line of a multi-line one too" test "$(grep -c '^\[call / show\] \*\*\*$' <<<"$out")" = 2
check "... in a job that ran before the call was made" grep -qx '\[early\] early k=\*\*\* v=\*\*\*' <<<"$out"
check "... and in a job after it" grep -qx '\[later\] later k=\*\*\* c=\*\*\*' <<<"$out"
check "no value passed as a secret anywhere in the log" eval '! grep -qE "k-value-42|from-output-99|literal-pass-7|mline-" <<<"$out"'
sec=$(head -1 <<<"$out")
sw run view "$sec" --log
check "... nor in the stored log" eval '[ "$rc" = 0 ] && grep -q "early k=" <<<"$out" && ! grep -qE "k-value-42|from-output-99|literal-pass-7|mline-" <<<"$out"'

# ---- calls that cannot be made, and a called job that fails --------------------------------------
sw workflow run bad --wait --jobs 2
expect_rc "a run whose calls fail exits 1" 1
check "a missing required input: one clear line" grep -qx "\[missing\] ##\[error\]job missing: Input who is required, but not provided while calling." <<<"$out"
check "an input the called workflow does not declare" grep -qx "\[unknown\] ##\[error\]job unknown: Invalid input, nosuch is not defined in the referenced workflow." <<<"$out"
check "a number input given text" grep -qx "\[mistyped\] ##\[error\]job mistyped: input 'count': Unexpected type of value 'many', expected type: Number." <<<"$out"
check "a boolean input given a string from an expression" grep -qx "\[fromoutput\] ##\[error\]job fromoutput: input 'flag': Unexpected type of value 'main', expected type: Boolean." <<<"$out"
bad=$(head -1 <<<"$out")
sw run view "$bad" --json
check "the failed calls are one entry each; a failed called job fails its caller" test "$(json '[(x["name"], x["conclusion"]) for x in j["jobs"]]')" = "[('missing', 'failure'), ('unknown', 'failure'), ('mistyped', 'failure'), ('fromoutput', 'failure'), ('failing / first', 'failure'), ('failing / Second', 'skipped'), ('later', 'skipped')]"
check "the run fails" test "$(json 'j["conclusion"]')" = failure

sw workflow run wrong --wait
expect_rc "calls of files that are not reusable workflows fail" 1
check "... a file not in the commit" grep -qx "\[none\] ##\[error\]job none: .github/workflows/none.yml is not in the repository at [0-9a-f]*" <<<"$out"
check "... a workflow without workflow_call" grep -qx "\[notcall\] ##\[error\]job notcall: .github/workflows/ci.yml is not a reusable workflow: its on: has no workflow_call" <<<"$out"

# ---- cycles and nesting -------------------------------------------------------------------------
sw workflow run .github/workflows/cyc.yml --wait
expect_rc "a workflow that calls itself fails" 1
check "... naming the cycle" grep -q "^\[again\] ##\[error\]job again: .github/workflows/cyc.yml calls itself (.github/workflows/cyc.yml -> .github/workflows/cyc.yml)" <<<"$out"
sw workflow run .github/workflows/n2.yml --wait
expect_rc "four levels of workflows run" 0
check "... the innermost job named through every caller" grep -q "^\[call / call / call / leaf\] leaf ran" <<<"$out"
sw workflow run .github/workflows/n1.yml --wait
expect_rc "five levels are refused" 1
check "... with GitHub's limit in one line" grep -q "^\[call / call / call / call\] ##\[error\]job call: calling .github/workflows/n5.yml nests more than 4 levels" <<<"$out"

exit $_failed

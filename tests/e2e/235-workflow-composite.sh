#!/usr/bin/env bash
# uses: ./path runs a local composite action (docs/pipelines.md, "Composite
# actions"): a repository with .github/actions/hello/action.yml (inputs with
# defaults and a required one, an output from a nested step, a nested local
# action, github.action_path, the caller's env, no INPUT_ variables, a secret
# passed as an input and masked); a workflow checks out, uses it and asserts
# its outputs in a later step. A failure inside the action fails the step
# (steps after it in the action skipped unless if: failure(), whose own
# outcome does not mend it); a missing action.yml, a JavaScript action, an
# action with a load error, a cycle of actions, actions nested 11 deep (10
# run, as on GitHub) and a path leaving the
# workspace each fail the step with one clear line.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows .github/actions/hello .github/actions/inner .github/actions/fails \
    .github/actions/node .github/actions/broken .github/actions/loop-a .github/actions/loop-b \
    .github/actions/missing

cat > .github/actions/hello/action.yml <<'EOF'
name: Hello
description: says hello, through an inner action
author: tests
branding:
  icon: sun
  color: yellow
inputs:
  who:
    description: whom to greet
    default: world
  punct:
    description: the end of the sentence
    required: true
  token:
    description: a secret
    default: ''
outputs:
  greeting:
    description: what was said
    value: ${{ steps.inner.outputs.text }}
  upper:
    value: ${{ steps.shout.outputs.loud }}
runs:
  using: composite
  steps:
    - id: inner
      uses: ./.github/actions/inner
      with:
        text: Hello, ${{ inputs.who }}${{ inputs.punct }}
    - id: shout
      shell: bash
      run: |
        echo "loud=$(echo '${{ steps.inner.outputs.text }}' | tr a-z A-Z)" >> "$GITHUB_OUTPUT"
        echo "action_path=${{ github.action_path }} env=$GITHUB_ACTION_PATH"
        echo "input env who=${INPUT_WHO-unset} punct=${INPUT_PUNCT-unset}"
        echo "caller env=$FROM_CALLER job env=$JOB_VAR"
        echo "token is ${{ inputs.token }}"
        test -f "$GITHUB_ACTION_PATH/action.yml"
        echo "FROM_ACTION=yes" >> "$GITHUB_ENV"
    - if: failure()
      shell: bash
      run: echo "NEVER-on-success"
EOF
cat > .github/actions/inner/action.yaml <<'EOF'
inputs:
  text:
    required: true
outputs:
  text:
    value: ${{ steps.say.outputs.said }}
runs:
  using: composite
  steps:
    - id: say
      shell: sh
      run: |
        echo "inner says: ${{ inputs.text }}"
        echo "said=${{ inputs.text }}" >> "$GITHUB_OUTPUT"
    - shell: bash
      run: echo "steps are private; the caller's steps.early is '${{ steps.early.outcome }}'"
EOF
cat > .github/actions/fails/action.yml <<'EOF'
runs:
  using: composite
  steps:
    - id: boom
      shell: bash
      run: |
        echo "about to fail"
        exit 4
    - shell: bash
      run: echo "NEVER-after-failure"
    - if: failure()
      shell: bash
      run: echo "cleanup after failure, action_status=${{ github.action_status }}"
EOF
cat > .github/actions/node/action.yml <<'EOF'
name: node
runs:
  using: node20
  main: index.js
EOF
cat > .github/actions/broken/action.yml <<'EOF'
runs:
  using: composite
  steps:
    - run: echo no shell
EOF
cat > .github/actions/loop-a/action.yml <<'EOF'
runs:
  using: composite
  steps:
    - uses: ./.github/actions/loop-b
EOF
cat > .github/actions/loop-b/action.yml <<'EOF'
runs:
  using: composite
  steps:
    - uses: ./.github/actions/loop-a/
EOF

cat > .github/workflows/ok.yml <<'EOF'
name: composite
on: push
env:
  JOB_VAR: from-workflow
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      greeting: ${{ steps.hello.outputs.greeting }}
    steps:
      - id: early
        run: echo early
      - uses: actions/checkout@v4
      - id: hello
        uses: ./.github/actions/hello
        env:
          FROM_CALLER: caller-env
        with:
          punct: '!'
          token: ${{ secrets.TOKEN }}
      - id: defaults
        if: env.FROM_ACTION == 'yes'
        uses: ./.github/actions/hello/
        with:
          who: slipway
          unknown: x
      - run: |
          test "${{ steps.hello.outputs.greeting }}" = "Hello, world!"
          test "${{ steps.hello.outputs.upper }}" = "HELLO, WORLD!"
          test "${{ steps.hello.outcome }}" = success
          test "${{ steps.defaults.outputs.greeting }}" = "Hello, slipway"
          echo "asserted: ${{ steps.hello.outputs.greeting }}"
          echo "GITHUB_ENV of an action: $FROM_ACTION"
EOF
cat > .github/workflows/fail.yml <<'EOF'
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: f
        uses: ./.github/actions/fails
      - if: always()
        run: echo "outcome=${{ steps.f.outcome }}"
      - id: tolerated
        if: always()
        uses: ./.github/actions/fails
        continue-on-error: true
      - if: always()
        run: echo "tolerated=${{ steps.tolerated.outcome }}/${{ steps.tolerated.conclusion }}"
EOF
for what in missing node broken loop-a escape nocheckout; do
    path=./.github/actions/$what
    [ $what = escape ] && path=./.github/actions/link
    checkout="      - uses: actions/checkout@v4"
    [ $what = nocheckout ] && { checkout="      - run: 'true'"; path=./.github/actions/hello; }
    cat > .github/workflows/$what.yml <<EOF
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
$checkout
      - uses: $path
      - run: echo NEVER-$what
EOF
done
# a chain of actions: d0 -> d1 -> ... -> d10, which prints; d1 is 10 deep, d0 11
for i in $(seq 0 10); do
    mkdir -p .github/actions/d$i
    if [ $i = 10 ]; then step="    - run: echo \"deepest reached\"
      shell: bash"; else step="    - uses: ./.github/actions/d$((i + 1))"; fi
    printf 'runs:\n  using: composite\n  steps:\n%s\n' "$step" > .github/actions/d$i/action.yml
done
for d in 0 1; do
    cat > .github/workflows/depth$d.yml <<EOF
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/d$d
EOF
done
# timeout-minutes of the calling step bounds the action as a whole
mkdir -p .github/actions/slow
cat > .github/actions/slow/action.yml <<'EOF'
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "slow starts"; sleep 2
    - shell: bash
      run: sleep 30
    - shell: bash
      run: echo NEVER-after-timeout
EOF
cat > .github/workflows/timeout.yml <<'EOF'
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: slow action
        uses: ./.github/actions/slow
        timeout-minutes: 0.1
      - if: always()
        run: echo "job goes on"
EOF
ln -s "$T" .github/actions/link
echo "no action here" > .github/actions/missing/README
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init

export SLIPWAY_SECRET_TOKEN=tok-s3cr3t
sw workflow run composite --wait
expect_rc "a workflow using a local composite action succeeds" 0
id=$(head -1 <<<"$out")
check "the nested local action ran, its input from the outer action's inputs and defaults" grep -q "inner says: Hello, world!" <<<"$out"
check "a later step asserted the action's outputs" grep -q "asserted: Hello, world!" <<<"$out"
check "github.action_path and GITHUB_ACTION_PATH are the action's directory" grep -q "action_path=.*/work/.github/actions/hello env=.*/work/.github/actions/hello$" <<<"$out"
check "inputs are not INPUT_<NAME> variables, as on GitHub" grep -q "input env who=unset punct=unset" <<<"$out"
check "the calling step's env and the job's reach the action's steps" grep -q "caller env=caller-env job env=from-workflow" <<<"$out"
check "a secret passed as an input is masked" eval 'grep -q "token is \*\*\*" <<<"$out" && ! grep -q tok-s3cr3t <<<"$out"'
check "GITHUB_ENV written inside the action reaches the job's later steps and their if:" grep -q "GITHUB_ENV of an action: yes" <<<"$out"
check "the steps context is private to the action" grep -q "the caller's steps.early is ''" <<<"$out"
check "if: failure() inside an action that succeeds does not run" eval '! grep -q NEVER-on-success <<<"$out"'
check "a missing required input is a warning, as GitHub" grep -q "##\[warning\]Input required and not supplied: punct" <<<"$out"
check "an unknown input is a warning listing the valid ones" grep -q "##\[warning\]Unexpected input(s) 'unknown', valid inputs are \['who', 'punct', 'token'\]" <<<"$out"
sw run view "$id" --json
check "the action is one step of the job, its nested steps are not" test "$(json '[(s["name"], s["conclusion"]) for s in j["jobs"][0]["steps"]]')" = "[('Run echo early', 'success'), ('Run actions/checkout@v4', 'success'), ('Run ./.github/actions/hello', 'success'), ('Run ./.github/actions/hello/', 'success'), ('Run test \"\${{ steps.hello.outputs.greeting }}\" = \"Hello, world!\"', 'success')]"
check "the job output comes from the action's output" test "$(json 'j["jobs"][0]["outputs"]')" = "{'greeting': 'Hello, world!'}"
sw run view "$id" --log
check "the nested steps' lines are in the calling step's log" grep -qP "^build\tRun \./\.github/actions/hello\t.*inner says: Hello, world!" <<<"$out"
if grep -rq tok-s3cr3t .slipway/data/runs 2>/dev/null; then fail "no secret in the store"; else ok "no secret in the store"; fi

sw workflow run fail --wait
expect_rc "a failure inside the action fails the run" 1
id=$(head -1 <<<"$out")
check "the failing nested step ran" grep -q "about to fail" <<<"$out"
check "the steps after it in the action are skipped" eval '! grep -q NEVER-after-failure <<<"$out"'
check "if: failure() inside the action runs, github.action_status failure" grep -q "cleanup after failure, action_status=failure" <<<"$out"
check "the caller sees the step's outcome failure" grep -q "outcome=failure" <<<"$out"
check "continue-on-error on the calling step: outcome failure, conclusion success" grep -q "tolerated=failure/success" <<<"$out"
sw run view "$id" --json
check "the step and the job fail" test "$(json '(j["jobs"][0]["conclusion"], [s["conclusion"] for s in j["jobs"][0]["steps"]])')" = "('failure', ['success', 'failure', 'success', 'success', 'success'])"

# each broken case: the run fails, the step's one line says why, nothing after it runs
declare -A want=(
    [missing]="uses: ./.github/actions/missing: .github/actions/missing/action.yml not found \(nor action.yaml\): check the repository out first"
    [nocheckout]="uses: ./.github/actions/hello: no directory .github/actions/hello in the workspace: check the repository out first"
    [node]="##\[error\]\.github/actions/node/action.yml:3:10: runs.using: 'node20' \(a JavaScript action\) is not supported: slipway runs composite actions \(runs.using: composite\) only"
    [broken]="##\[error\]\.github/actions/broken/action.yml:4:7: step 1: a run: step of a composite action needs shell:"
    [loop-a]="uses: ./.github/actions/loop-a/: the action calls itself \(./.github/actions/loop-a → ./.github/actions/loop-b → ./.github/actions/loop-a/\)"
    [escape]="uses: ./.github/actions/link: '.github/actions/link' leads outside the workspace"
)
for what in missing nocheckout node broken loop-a escape; do
    sw workflow run .github/workflows/$what.yml --wait
    expect_rc "$what: the run fails" 1
    check "$what: one clear error line" eval 'grep -E -- "${want[$what]}" <<<"$out" >/dev/null'
    check "$what: the steps after it do not run" eval '! grep -q NEVER-$what <<<"$out"'
done

sw workflow run .github/workflows/depth1.yml --wait
expect_rc "actions nested 10 deep run, as on GitHub" 0
check "... down to the deepest one" grep -q "deepest reached" <<<"$out"
sw workflow run .github/workflows/depth0.yml --wait
expect_rc "actions nested 11 deep fail the step" 1
check "... with one line naming the limit and the chain" grep -q "##\[error\]uses: ./.github/actions/d10: composite actions nest more than 10 deep (./.github/actions/d0 → ./.github/actions/d1 → .* → ./.github/actions/d10)" <<<"$out"
check "... before anything of the deepest runs" eval '! grep -q "deepest reached" <<<"$out"'

start=$(date +%s)
sw workflow run .github/workflows/timeout.yml --wait
expect_rc "timeout-minutes on the calling step: the run fails" 1
check "... within the bound, not after the action's 32 s" test $(( $(date +%s) - start )) -lt 25
check "... saying the action timed out" grep -q "##\[error\]The action 'slow action' has timed out after 0.1 minutes." <<<"$out"
check "... the action's steps after it do not run, the job's do" eval 'grep -q "slow starts" <<<"$out" && ! grep -q NEVER-after-timeout <<<"$out" && grep -q "job goes on" <<<"$out"'

done_testing

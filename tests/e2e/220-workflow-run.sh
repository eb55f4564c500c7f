#!/usr/bin/env bash
# slipway workflow run / run list|view|watch|cancel: a real git repository and
# a workflow of jobs with needs, outputs through GITHUB_OUTPUT, a matrix of
# two, a job skipped by its if:, a failing step under continue-on-error and a
# secret masked in the log; --wait exits 0 only when the run succeeded; the
# JSON shapes of issue 11; nothing of the caller's environment reaches a step;
# runs-on no runner matches fails at once; a secrets file others can read is
# refused; a queued run is cancelled.
. "$(dirname "$0")/lib.sh"

# ---- usage ----------------------------------------------------------------------------------
sw workflow --help
check "workflow --help lists run" grep -qE "^  run +queue a run of a workflow" <<<"$out"
sw workflow run --help
check "workflow run --help: usage and options" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway workflow run WORKFLOW" <<<"$out" && grep -q -- "--wait" <<<"$out"'
sw run --help
check "run --help lists list, view, watch, cancel" eval '[ "$rc" = 0 ] && grep -qE "^  list " <<<"$out" && grep -qE "^  view " <<<"$out" && grep -qE "^  cancel " <<<"$out"'
for s in list view watch cancel; do
    sw run $s --help; check "run $s --help" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway run $s" <<<"$out"'
done
sw run view nope; expect_err "run view: a bad id is refused, escaped" 1 "'nope' is not a run id"
sw run cancel $'x\ny'; expect_err "run cancel: a bad id is a usage error on one line" 2 "is not a run id"

# ---- a project in a git repository -----------------------------------------------------------
mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows
cat > .github/workflows/ci.yml <<'EOF'
name: CI
on: push
env:
  GREETING: hello
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - id: v
        run: |
          test -f marker.txt
          echo "version=1.$(cat marker.txt)" >> "$GITHUB_OUTPUT"
          echo "token is ${{ secrets.TOKEN }}"
          echo "leak=${LEAKED_VAR:-absent}"
          echo "greeting=$GREETING"
      - name: allowed to fail
        run: exit 3
        continue-on-error: true
  test:
    needs: build
    runs-on: [self-hosted, linux]
    strategy:
      matrix:
        n: [1, 2]
        os: [a]
    steps:
      - run: echo "leg n=${{ matrix.n }} v=${{ needs.build.outputs.version }}"
  skipped:
    needs: test
    if: github.ref == 'refs/heads/elsewhere'
    runs-on: ubuntu-latest
    steps:
      - run: echo never
EOF
cat > .github/workflows/bad.yml <<'EOF'
on: push
jobs:
  fails:
    runs-on: ubuntu-latest
    steps:
      - run: exit 1
      - run: echo after
EOF
cat > .github/workflows/labels.yml <<'EOF'
on: push
jobs:
  mac:
    runs-on: macos-latest
    steps:
      - run: echo no
EOF
mkdir -p "$T/keep" && echo kept > "$T/keep/file"
cat > .github/workflows/deep.yml <<EOF
on: push
jobs:
  deep:
    runs-on: ubuntu-latest
    steps:
      - run: mkdir -p "\$(printf 'd/%.0s' \$(seq 200))" && ln -s "$T/keep" keep && touch d/f
EOF
{
    printf 'on: push\njobs:\n  quick:\n    runs-on: ubuntu-latest\n    steps:\n'
    for _ in $(seq 20); do printf '      - run: "true"\n'; done
} > .github/workflows/quick.yml
echo 7 > marker.txt
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init
sha=$(git rev-parse HEAD)

export LEAKED_VAR=leaked SLIPWAY_SECRET_TOKEN=s3cr3t-value
sw workflow run CI --wait --jobs 2
unset LEAKED_VAR
expect_rc "workflow run --wait: a run that succeeds exits 0" 0
id=$(head -1 <<<"$out")
check "the run id is printed first" eval '[[ "$id" =~ ^run-[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}$ ]]'
check "the log is printed as it goes, with the legs' names" grep -q "^\[test (2, a)\] leg n=2 v=1.7" <<<"$out"
check "the secret is masked as *** in the printed log" eval 'grep -q "token is \*\*\*" <<<"$out" && ! grep -q s3cr3t <<<"$out"'
check "a variable of the caller's environment does not reach a step" grep -q "leak=absent" <<<"$out"
check "the workflow's env reaches it" grep -q "greeting=hello" <<<"$out"
check "the run's workspaces are removed once it ended" test ! -e "${TMPDIR:-/tmp}/slipway-runs/$id"

sw run view "$id" --json
check "run view --json: status and conclusion" test "$(json '(j["status"], j["conclusion"], j["workflow"], j["id"] == "'"$id"'")')" = "('succeeded', 'success', 'CI', True)"
check "one entry per matrix leg, GitHub's names, no entry for the matrix" test "$(json '[(x["id"], x["name"], x["conclusion"]) for x in j["jobs"]]')" = "[('build', 'build', 'success'), ('test', 'test (1, a)', 'success'), ('test', 'test (2, a)', 'success'), ('skipped', 'skipped', 'skipped')]"
check "the legs' matrix values" test "$(json '[x["matrix"] for x in j["jobs"]]')" = "[None, {'n': 1, 'os': 'a'}, {'n': 2, 'os': 'a'}, None]"
check "job outputs from GITHUB_OUTPUT" test "$(json 'j["jobs"][0]["outputs"]')" = "{'version': '1.7'}"
check "steps: a failing step under continue-on-error has outcome failure, conclusion success" test "$(json '[(s["name"], s["outcome"], s["conclusion"]) for s in j["jobs"][0]["steps"]]')" = "[('Run actions/checkout@v4', 'success', 'success'), ('Run test -f marker.txt', 'success', 'success'), ('allowed to fail', 'failure', 'success')]"
check "every job has started_at and ended_at" test "$(json 'all(x["started_at"] and x["ended_at"] for x in j["jobs"])')" = True
check "... and they are times" test "$(json 'all(x["started_at"].endswith("Z") for x in j["jobs"])')" = True

sw run view "$id" --log
check "run view --log: the stored log has the secret masked" eval 'grep -q "token is \*\*\*" <<<"$out" && ! grep -q s3cr3t <<<"$out"'
check "run view --log: JOB<TAB>STEP<TAB>line" grep -qP "^test \(1, a\)\tRun echo .*\t.*leg n=1 v=1.7" <<<"$out"
sw run view "$id" --log --job build
check "run view --log --job keeps one job" eval 'grep -q "token is" <<<"$out" && ! grep -q "leg n=" <<<"$out"'
if grep -rq s3cr3t .slipway/data/runs 2>/dev/null; then fail "no secret in the store"; else ok "no secret in the store"; fi

sw workflow run bad --wait
expect_rc "workflow run --wait: a failing run exits 1" 1
bad=$(head -1 <<<"$out")
sw run view "$bad" --json
check "the failed run: failure, the step after the failure skipped" test "$(json '(j["status"], j["jobs"][0]["conclusion"], [s["conclusion"] for s in j["jobs"][0]["steps"]])')" = "('failed', 'failure', ['failure', 'skipped'])"
check "a workflow without name: its file name" test "$(json 'j["workflow"]')" = bad

sw workflow run .github/workflows/labels.yml --wait
expect_rc "runs-on no runner matches: the run fails" 1
check "... at once, naming the labels it asked for and those it has" grep -q "no runner matches the labels of job mac: runs-on \[macos-latest\]; this runner has \[self-hosted, linux, .*ubuntu-latest\]" <<<"$out"

sw --json run list
check "run list --json: newest first, the shape of issue 11" test "$(json '[(r["workflow"], r["status"], r["ref"], r["sha"]) for r in j["runs"]]')" = "[('labels', 'failed', 'refs/heads/main', '$sha'), ('bad', 'failed', 'refs/heads/main', '$sha'), ('CI', 'succeeded', 'refs/heads/main', '$sha')]"
check "run list --json: id and created_at" test "$(json 'sorted(j["runs"][2].keys())')" = "['created_at', 'id', 'ref', 'sha', 'status', 'workflow']"
sw --json run list --workflow CI
check "run list --workflow keeps that workflow's runs" test "$(json '[r["id"] for r in j["runs"]]')" = "['$id']"

# ---- queue, cancel, follow -----------------------------------------------------------------
sw --json workflow run CI
queued=$(json 'j["id"]')
check "workflow run --json without --wait prints {\"id\"}" test "$(json 'list(j)')" = "['id']"
sw run view "$queued" --json
check "the run waits in the queue" test "$(json 'j["status"]')" = queued
sw run cancel "$queued"
check "run cancel: a queued run is cancelled at once" eval '[ "$rc" = 0 ] && grep -q "cancelled" <<<"$out"'
sw run watch "$queued"
expect_rc "run watch of a cancelled run exits 1" 1
sw run cancel "$queued"
expect_rc "cancelling an ended run fails" 1

# ---- dispatch inputs, vars, GITHUB_ENV, defaults.run, a matrix from needs, --jobs, timeouts ----
mkdir -p sub && echo x > sub/f
cat > .github/workflows/feat.yml <<'EOF'
name: features
on:
  push:
  workflow_dispatch:
    inputs:
      who:
        default: nobody
      loud:
        type: boolean
        default: false
      patience:
        default: 100
defaults:
  run:
    working-directory: sub
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      legs: ${{ steps.m.outputs.legs }}
    steps:
      - uses: actions/checkout@v4
      - id: m
        run: |
          echo 'legs=["x","y"]' >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=carried" >> "$GITHUB_ENV"
          echo "pwd=$(basename "$PWD")"
      - run: echo "env=$FROM_ENV_FILE who=${{ inputs.who }} loud=${{ inputs.loud }} vars=${{ vars.COLOR }} head=${{ github.event.head_commit.message }} event=${{ github.event_name }}"
      - name: too slow
        run: sleep 20
        timeout-minutes: 0.02
        continue-on-error: true
  par:
    needs: setup
    runs-on: ubuntu-latest
    strategy:
      matrix:
        leg: ${{ fromJSON(needs.setup.outputs.legs) }}
    steps:
      - working-directory: .
        run: |
          d="$RUNNER_TEMP/../../par"; mkdir -p "$d"; touch "$d/${{ matrix.leg }}"
          for i in $(seq ${{ inputs.patience }}); do [ -e "$d/x" ] && [ -e "$d/y" ] && break; sleep 0.1; done
          [ -e "$d/x" ] && [ -e "$d/y" ] && echo "both legs ran at once"
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm "second commit"
printf 'COLOR: blue\n' > .slipway/vars.yml
sw workflow run features -f who=me -f loud=true --wait --jobs 2
expect_rc "a dispatch with inputs: exit 0" 0
fid=$(head -1 <<<"$out")
check "defaults.run.working-directory applies to run: steps" grep -q "^\[setup\] pwd=sub" <<<"$out"
check "GITHUB_ENV reaches later steps; inputs typed; vars.yml; head_commit" grep -q "^\[setup\] env=carried who=me loud=true vars=blue head=second commit event=workflow_dispatch" <<<"$out"
check "a matrix from an expression over needs; --jobs 2 runs the legs at once" eval '[ "$(grep -c "^\[par (.)\] both legs ran at once$" <<<"$out")" = 2 ]'
sw run view "$fid" --json
check "the legs of a matrix from needs: par (x), par (y)" test "$(json '[x["name"] for x in j["jobs"]]')" = "['setup', 'par (x)', 'par (y)']"
check "a step past its timeout-minutes fails (continue-on-error keeps the job)" test "$(json '[(s["name"], s["outcome"], s["conclusion"]) for s in j["jobs"][0]["steps"]][-1]')" = "('too slow', 'failure', 'success')"
sw run view "$fid" --log --job setup
check "the timeout is in the log" grep -q "has timed out" <<<"$out"
sw workflow run features -f nope=1
expect_err "-f with an input the workflow does not declare is refused" 1 "no such workflow_dispatch input"
sw workflow run features -f loud=maybe
expect_err "-f of a boolean input takes true or false" 1 "expected true or false"
sw workflow run nothing-like-this
expect_err "an unknown workflow is named" 1 "no workflow 'nothing-like-this'"
# Each leg waits 2 s for the other, not 10 s: one at a time, the first waits it all out.
sw workflow run features --jobs 1 -f patience=20 --wait
expect_rc "the matrix legs with --jobs 1: one at a time, so they never meet" 1
check "... a leg failed waiting for the other (not the inputs)" eval 'grep -q "^\[par (.)\] Job par (.): failure" <<<"$out" && ! grep -q "^\[par (.)\] both legs ran at once$" <<<"$out"'

# ---- cancel a running run; orphans stopped at job end --------------------------------------
cat > .github/workflows/slow.yml <<'EOF'
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          sleep 300 &
          echo "orphan $!"
      - run: sleep 60
EOF
"$SLIPWAY" workflow run slow --wait > "$T/slow.out" 2>&1 &
slow_pid=$!; _pids+=("$slow_pid")
wait_for "the orphan started" 20 grep -q "^\[slow\] orphan [0-9]" "$T/slow.out"
orphan=$(sed -n 's/^\[slow\] orphan \([0-9]*\)$/\1/p' "$T/slow.out")
sid=$(head -1 "$T/slow.out")
check "the orphan runs while the job runs" kill -0 "$orphan"
wait_for "the second step started" 20 grep -q "^\[slow\] sleep 60" "$T/slow.out"
start=$(date +%s)
sw run cancel "$sid"
check "run cancel of a running run: cancel requested" grep -q "cancel requested" <<<"$out"
wait "$slow_pid"; slow_rc=$?
check "workflow run --wait of a cancelled run exits 1, within seconds" eval '[ "$slow_rc" = 1 ] && [ $(( $(date +%s) - start )) -lt 15 ]'
# gone, or a zombie its new parent has not reaped yet (pid 1 of a container may never)
check "the orphan was stopped when the job ended" eval '! kill -0 "$orphan" 2>/dev/null || [ "$(awk "{print \$3}" /proc/$orphan/stat 2>/dev/null)" = Z ]'
check "the log says so" grep -q "Cleaning up orphan processes: 1 stopped" "$T/slow.out"
sw run view "$sid" --json
check "the run is cancelled, with who cancelled it" test "$(json '(j["status"], j["reason"], [s["conclusion"] for s in j["jobs"][0]["steps"]])')" = "('cancelled', 'cancelled by tester', ['success', 'cancelled'])"

# ---- slipway runner: claims queued runs; two runners racing run a run once ---------------------
sw runner --help
check "runner --help" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway runner" <<<"$out"'
sw runner --name 'bad name'
expect_err "runner --name must be a runner id" 2 "expected \[A-Za-z0-9\]"
sw workflow run bad
rid=$(head -1 <<<"$out")
"$SLIPWAY" run watch "$rid" > "$T/watch.out" 2>&1 &
watch_pid=$!; _pids+=("$watch_pid")
"$SLIPWAY" runner --once --name r1 > "$T/r1.out" 2>&1 &
r1=$!; _pids+=("$r1")
"$SLIPWAY" runner --once --name r2 > "$T/r2.out" 2>&1 &
r2=$!; _pids+=("$r2")
wait "$r1"; wait "$r2"
check "of two runners racing for one run, exactly one runs it" test "$(cat "$T/r1.out" "$T/r2.out" | grep -c "running $rid")" = 1
check "... once: one job end in its log" test "$(cat "$T/r1.out" "$T/r2.out" | grep -c "^\[fails\] Job fails: failure")" = 1
wait "$watch_pid"; watch_rc=$?
check "run watch follows the runner's log and exits 1 for a failed run" eval '[ "$watch_rc" = 1 ] && grep -q "^\[fails\] ##\[error\]Process completed with exit code 1." "$T/watch.out" && grep -q "^run $rid failed" "$T/watch.out"'
sw run view "$rid" --json
check "the runner ran the workflow file at the run's commit" test "$(json 'j["status"]')" = failed
sw runner --once
check "runner --once with nothing queued exits 0" eval '[ "$rc" = 0 ] && ! grep -q running <<<"$errout"'

# ---- concurrency groups written with expressions; SIGTERM cancels a --wait run ----------------
cat > .github/workflows/conc.yml <<'EOF'
name: conc
on: push
concurrency:
  group: ${{ github.workflow }}-${{ github.ref }}
  cancel-in-progress: ${{ github.ref == 'refs/heads/main' }}
jobs:
  j:
    runs-on: ubuntu-latest
    steps: [{run: 'true'}]
EOF
sw workflow run conc; c1=$(head -1 <<<"$out")
sw workflow run conc; c2=$(head -1 <<<"$out")
sw run view "$c1" --json
check "a group from expressions: the pending run of the group is replaced by the new one" test "$(json 'j["status"]')" = cancelled
sw run view "$c2" --json
check "... which waits in the queue" test "$(json 'j["status"]')" = queued
sw run cancel "$c2"
"$SLIPWAY" workflow run slow --wait > "$T/term.out" 2>&1 &
term_pid=$!; _pids+=("$term_pid")
wait_for "the slow step started" 20 grep -q "^\[slow\] sleep 60" "$T/term.out"
kill -TERM "$term_pid"
wait "$term_pid"; term_rc=$?
sw run view "$(head -1 "$T/term.out")" --json
check "SIGTERM to workflow run --wait cancels the run: exit 1, cancelled" eval '[ "$term_rc" = 1 ] && [ "$(json "j[\"status\"]")" = cancelled ]'

# ---- the runner inside slipway serve --------------------------------------------------------
sw workflow run bad; srv_run=$(head -1 <<<"$out")
spawn "$SLIPWAY" serve --runner 1 2> "$T/serve.err"
serve_pid=$!
run_failed() { "$SLIPWAY" run view "$srv_run" --json | grep -q '"status": "failed"'; }
wait_for "serve --runner ran the queued run" 60 run_failed && ok "serve --runner claims and runs a queued run"
check "... its log on serve's stderr" grep -q "^\[fails\] Job fails: failure" "$T/serve.err"
kill -TERM "$serve_pid"
serve_gone() { ! kill -0 "$serve_pid" 2>/dev/null; }
wait_for "serve --runner stops on SIGTERM" 20 serve_gone && ok "serve --runner stops on SIGTERM"

# ---- actions/checkout: with.ref never becomes an option of git ---------------------------------
cat > .github/workflows/inj.yml <<'EOF'
on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: --upload-pack=touch pwned
EOF
sw workflow run .github/workflows/inj.yml --wait
check "a ref that looks like an option is refused, nothing runs" eval '[ "$rc" = 1 ] && grep -q "ref .--upload-pack=touch pwned. is not a ref" <<<"$out" && ! find "$T" -name pwned | grep -q .'

# ---- secrets.yml readable by others --------------------------------------------------------
printf 'TOKEN: from-file\n' > .slipway/secrets.yml
chmod 644 .slipway/secrets.yml
sw workflow run CI --wait
expect_rc "a secrets file readable by others: the run fails" 1
sw run view "$(head -1 <<<"$out")" --json
check "... with the reason" grep -q "readable or writable by others" <<<"$(json 'j["reason"]')"
chmod 600 .slipway/secrets.yml
unset SLIPWAY_SECRET_TOKEN
sw workflow run CI --wait
check "secrets.yml (mode 600) feeds secrets, masked" eval '[ "$rc" = 0 ] && grep -q "token is \*\*\*" <<<"$out" && ! grep -q from-file <<<"$out"'

# ---- the ref and commit a run is queued for (one git call, or one by one) --------------------
git checkout -q -b other && echo 8 > marker.txt &&
    git -c user.name=t -c user.email=t@example.com commit -qam other && git checkout -q main
other=$(git rev-parse other)
# queued_as ARGS...: queues deep.yml with ARGS; $out: "REF SHA" of the run (then cancelled)
queued_as() {
    sw workflow run deep "$@"
    local rid; rid=$(head -1 <<<"$out")
    sw run view "$rid" --json
    local got; got=$(json 'j["ref"] + " " + j["sha"]')
    sw run cancel "$rid"
    out=$got
}
queued_as --ref refs/heads/other
check "--ref: that branch and its commit" test "$out" = "refs/heads/other $other"
git checkout -q other
queued_as
check "no --ref: the branch checked out and its commit" test "$out" = "refs/heads/other $other"
git checkout -q --detach main
queued_as
check "a detached HEAD: refs/heads/main and HEAD's commit" test "$out" = "refs/heads/main $(git rev-parse HEAD)"
git checkout -q main
git init -q -b main "$T/empty"
sw workflow run "$PWD/.github/workflows/deep.yml" --repo "$T/empty"
check "a repository without a commit: refused, saying so" eval '[ "$rc" != 0 ] && grep -q "no commit for HEAD" <<<"$errout"'

# ---- what a step costs (bench/pipeline.sh measures the time) ---------------------------------
# Each step's log is one chunk in a new directory: the chunk, that directory and logs/ are
# synced (3 fsyncs), not every directory up to the store's root (6); the run's own records add
# about 30. The old cost, 151 for these 20 steps, fails this.
if strace -qq -o /dev/null true 2>/dev/null; then
    ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -f -qq -e trace=fsync -o "$T/fsyncs" \
        "$SLIPWAY" workflow run quick --wait > "$T/quick.out" 2>&1
    quick_rc=$?
    n=$(grep -c 'fsync(' "$T/fsyncs")
    check "20 quick steps: at most 110 fsyncs in all (got $n)" eval '[ "$quick_rc" = 0 ] && [ "$n" -le 110 ]'
else
    fail "strace runs here (it counts the fsyncs; scripts/install-deps installs it)"
fi

# ---- the run's workspaces ------------------------------------------------------------------
sw workflow run deep --wait
did=$(head -1 <<<"$out")
check "a tree deeper than fs_remove_tree is removed too (rm -rf), and a link's target stays" eval '[ "$rc" = 0 ] && [ -n "$did" ] && [ ! -e "${TMPDIR:-/tmp}/slipway-runs/$did" ] && [ -f "$T/keep/file" ]'

done_testing

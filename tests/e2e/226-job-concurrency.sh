#!/usr/bin/env bash
# Job-level concurrency across runs, as GitHub does it: at most one running
# and one pending job per group on the store; a newer pending job displaces
# the older one (cancelled, with GitHub's reason, its run cancelled); with
# cancel-in-progress the running job is stopped; runs and jobs share group
# names. And a job's environment (name, url) evaluated when it starts, in
# `run view --json`.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows
# each job holds its group until the test creates its release file
cat > .github/workflows/deploy.yml <<EOF
name: deploy
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    concurrency: deploy-\${{ github.ref }}
    environment:
      name: production
      url: https://example.com/\${{ github.sha }}/\${{ steps.d.outputs.page }}
    steps:
      - id: d
        run: |
          echo "holding \$GITHUB_RUN_ID"
          for i in \$(seq 600); do [ -e "$T/release-\$GITHUB_RUN_ID" ] && break; sleep 0.1; done
          [ -e "$T/release-\$GITHUB_RUN_ID" ] && echo "released \$GITHUB_RUN_ID"
          echo "page=index.html" >> "\$GITHUB_OUTPUT"
EOF
cat > .github/workflows/cip.yml <<EOF
name: cip
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps: [{run: 'echo build'}]
  deploy:
    needs: build
    runs-on: ubuntu-latest
    environment: staging
    concurrency:
      group: cip-\${{ github.ref_name }}
      cancel-in-progress: \${{ github.ref == 'refs/heads/main' }}
    steps:
      - run: |
          echo "holding \$GITHUB_RUN_ID"
          for i in \$(seq 600); do [ -e "$T/release-\$GITHUB_RUN_ID" ] && break; sleep 0.1; done
      - run: echo "after \$GITHUB_RUN_ID"
EOF
cat > .github/workflows/runlevel.yml <<'EOF'
name: runlevel
on: push
concurrency: deploy-refs/heads/main
jobs:
  j:
    runs-on: ubuntu-latest
    steps: [{run: 'echo run level ran'}]
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init
sha=$(git rev-parse HEAD)

# wait_log FILE PATTERN: the background command's output has the line
has_line() { grep -q "$2" "$1"; }
job_field() { "$SLIPWAY" run view "$1" --json | python3 -c "import json,sys; j=json.load(sys.stdin); print(j['jobs'][$2]$3)"; }
job_queued_waiting() { [ "$(job_field "$1" "$2" "['status']")" = queued ] && job_field "$1" "$2" "['reason']" | grep -q "^waiting for job"; }
run_is() { "$SLIPWAY" run view "$1" --json | grep -q "^  \"status\": \"$2\""; }

# ---- cancel-in-progress false: one running, one pending, the newer pending wins ---------------
"$SLIPWAY" workflow run deploy --wait > "$T/a.out" 2>&1 &
a_pid=$!; _pids+=("$a_pid")
wait_for "run A's job holds the group" 60 has_line "$T/a.out" "^\[deploy\] holding"
A=$(head -1 "$T/a.out")
"$SLIPWAY" workflow run deploy --wait > "$T/b.out" 2>&1 &
b_pid=$!; _pids+=("$b_pid")
wait_for "run B printed its id" 20 has_line "$T/b.out" "^run-"
B=$(head -1 "$T/b.out")
wait_for "B's job waits, queued, for A's" 30 job_queued_waiting "$B" 0
check "... naming A's job and the group" test "$(job_field "$B" 0 "['reason']")" = "waiting for job 0 of run $A in concurrency group deploy-refs/heads/main"
check "... and the run is running (its runner waits)" run_is "$B" running
check "B's log says why it waits" has_line "$T/b.out" "^\[deploy\] waiting for job 0 of run $A"

"$SLIPWAY" workflow run deploy --wait > "$T/c.out" 2>&1 &
c_pid=$!; _pids+=("$c_pid")
wait_for "run C printed its id" 20 has_line "$T/c.out" "^run-"
C=$(head -1 "$T/c.out")
b_done() { ! kill -0 "$b_pid" 2>/dev/null; }
wait_for "C displaces B: B's --wait ends" 30 b_done
wait "$b_pid"; b_rc=$?
check "B exits 1" test "$b_rc" = 1
sw run view "$B" --json
check "B's job: cancelled, never started a step, with GitHub's reason" test "$(json '(j["status"], j["jobs"][0]["conclusion"], j["jobs"][0]["steps"], j["jobs"][0]["reason"])')" = "('cancelled', 'cancelled', [], \"Canceling since a higher priority waiting request for 'deploy-refs/heads/main' exists\")"
wait_for "C's job waits for A's" 30 job_queued_waiting "$C" 0
check "A still runs, not cancelled (no cancel-in-progress)" eval 'run_is "$A" running && [ "$(job_field "$A" 0 "[\"status\"]")" = running ]'

touch "$T/release-$A"
wait "$a_pid"; a_rc=$?
check "A ends: success" eval '[ "$a_rc" = 0 ] && has_line "$T/a.out" "^\[deploy\] released $A"'
wait_for "C's job starts once A's ended" 30 has_line "$T/c.out" "^\[deploy\] holding $C"
# a run-level group of the same name waits for the job too: runs and jobs share names
sw workflow run runlevel; R=$(head -1 <<<"$out")
sw run view "$R" --json
check "a run of the same group name waits for C's job, naming it" test "$(json '(j["status"], j["reason"])')" = "('queued', 'waiting for job 0 of run $C in concurrency group deploy-refs/heads/main')"
sw run cancel "$R"
touch "$T/release-$C"
wait "$c_pid"; c_rc=$?
check "C succeeds after A" test "$c_rc" = 0
sw run view "$A" --json
check "A's environment in run view --json: name, and the url evaluated after the steps" test "$(json 'j["jobs"][0]["environment"]')" = "{'name': 'production', 'url': 'https://example.com/$sha/index.html'}"
check "C started after A ended" test "$(json 'j["jobs"][0]["ended_at"]')" \< "$("$SLIPWAY" run view "$C" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["started_at"])')"

# ---- cancel-in-progress true (from an expression): the running job is stopped ----------------
"$SLIPWAY" workflow run cip --wait > "$T/d.out" 2>&1 &
d_pid=$!; _pids+=("$d_pid")
wait_for "run D's deploy job holds its group" 60 has_line "$T/d.out" "^\[deploy\] holding"
D=$(head -1 "$T/d.out")
start=$(date +%s)
"$SLIPWAY" workflow run cip --wait > "$T/e.out" 2>&1 &
e_pid=$!; _pids+=("$e_pid")
d_done() { ! kill -0 "$d_pid" 2>/dev/null; }
wait_for "E's job stops D's running job" 30 d_done
wait "$d_pid"; d_rc=$?
check "D exits 1 within seconds of E's job joining" eval '[ "$d_rc" = 1 ] && [ $(( $(date +%s) - start )) -lt 25 ]'
sw run view "$D" --json
check "D: its deploy job cancelled mid-step (the step after it skipped), the run cancelled" test "$(json '(j["status"], j["jobs"][1]["conclusion"], [s["conclusion"] for s in j["jobs"][1]["steps"]])')" = "('cancelled', 'cancelled', ['cancelled', 'skipped'])"
check "... with GitHub's reason" grep -q "higher priority waiting request for 'cip-main'" <<<"$(json 'j["jobs"][1]["reason"]')"
check "... its build job was not touched" test "$(json 'j["jobs"][0]["conclusion"]')" = success
check "D's environment is a plain name" test "$(json 'j["jobs"][1]["environment"]')" = "{'name': 'staging', 'url': None}"
check "a job without environment has null" test "$(json 'j["jobs"][0]["environment"]')" = None
wait_for "E's job runs" 30 has_line "$T/e.out" "^\[deploy\] holding"
E=$(sed -n 1p "$T/e.out")
touch "$T/release-$E"
wait "$e_pid"; e_rc=$?
check "E succeeds" eval '[ "$e_rc" = 0 ] && has_line "$T/e.out" "^\[deploy\] after $E"'

# ---- a job whose own run holds the group: GitHub's deadlock message -------------------------
cat > .github/workflows/dead.yml <<'EOF'
name: dead
on: push
concurrency: same
jobs:
  j:
    runs-on: ubuntu-latest
    concurrency: same
    steps: [{run: 'echo never'}]
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm dead
sw workflow run dead --wait
check "a job in its own run's group: cancelled at once, GitHub's deadlock message" eval '[ "$rc" = 1 ] && grep -q "deadlock for concurrency group .same. was detected" <<<"$out" && ! grep -q "^\[j\] never" <<<"$out"'

done_testing

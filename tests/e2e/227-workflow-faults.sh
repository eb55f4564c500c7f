#!/usr/bin/env bash
# Faults of issue 11 with real processes, beside those 220-workflow-run.sh
# covers (a step that never ends, orphans cleaned up, two runners racing):
# a step printing 100 MB through a runner (log capped, memory bounded, the
# stored log bounded); a runner killed with SIGKILL mid-run (after a restart
# the run is failed with the reason, never lost, never run twice); two runs of
# one concurrency group with cancel-in-progress true and false; and
# `workflow run --wait` following another runner that claimed its run first.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows
cat > .github/workflows/loud.yml <<'EOF'
name: loud
on: push
jobs:
  loud:
    runs-on: ubuntu-latest
    steps:
      - run: yes "$(printf '%099d' 0)" | head -c 100000000; echo "after the flood"
EOF
cat > .github/workflows/hold.yml <<EOF
name: hold
on: push
jobs:
  hold:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "holding \$GITHUB_RUN_ID \$\$"
          echo \$\$ > "$T/pid-\$GITHUB_RUN_ID"
          for i in \$(seq 600); do [ -e "$T/release-\$GITHUB_RUN_ID" ] && break; sleep 0.1; done
          echo "released \$GITHUB_RUN_ID"
EOF
for mode in true false; do
cat > .github/workflows/group-$mode.yml <<EOF
name: group-$mode
on: push
concurrency:
  group: g-$mode
  cancel-in-progress: $mode
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "holding \$GITHUB_RUN_ID"
          for i in \$(seq 600); do [ -e "$T/release-\$GITHUB_RUN_ID" ] && break; sleep 0.1; done
          echo "done \$GITHUB_RUN_ID"
EOF
done
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init

has_line() { grep -q "$2" "$1"; }
status_is() { "$SLIPWAY" run view "$1" --json | grep -q "^  \"status\": \"$2\""; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# kill_leftover RUN: the step a killed runner left behind (its process group)
kill_leftover() { [ -s "$T/pid-$1" ] && kill -- -"$(cat "$T/pid-$1")" 2>/dev/null; kill "$(cat "$T/pid-$1")" 2>/dev/null; return 0; }

# ---- a step that prints 100 MB, through a runner ------------------------------------------------
sw workflow run loud; L=$(head -1 <<<"$out")
# ASan keeps freed memory in quarantine (256 MB by default): keep it small so
# the peak says what the runner holds
ASAN_OPTIONS=${ASAN_OPTIONS:-}:quarantine_size_mb=8 "$SLIPWAY" runner --name loud -q > "$T/loud.out" 2>&1 &
loud_pid=$!; _pids+=("$loud_pid")
peak=0
ended_loud() {
    local kb; kb=$(awk '/^VmHWM/ {print $2}' /proc/$loud_pid/status 2>/dev/null)
    [ -n "$kb" ] && peak=$kb
    status_is "$L" succeeded || status_is "$L" failed
}
wait_for "the 100 MB run ends" 300 ended_loud
kill -TERM "$loud_pid"; wait "$loud_pid" 2>/dev/null
echo "# 100 MB step through the runner: peak RSS ${peak} kB"
sw run view "$L" --json
check "the run succeeds: the step ran to its end" test "$(json '(j["status"], j["jobs"][0]["steps"][0]["conclusion"])')" = "('succeeded', 'success')"
check "the runner's memory stayed bounded (peak RSS under 100 MB for 100 MB of output)" test "$peak" -lt 102400
logs=$(du -sk "$T/repo/.slipway/data/runs/$L/logs" | cut -f1)
echo "# stored log: ${logs} kB"
check "the stored log is bounded by the cap (64 MiB and a little)" test "$logs" -lt 70000
# Into a file, not $out: 64 MB through a bash variable and two here-strings took a minute.
"$SLIPWAY" run view "$L" --log > "$T/loud.log"
check "the log says it was capped, and the closing lines got through" eval 'grep -q "reached" "$T/loud.log" && grep -q "after the flood" "$T/loud.log"'

# ---- a runner killed with SIGKILL mid-run -----------------------------------------------------
sw workflow run hold; K=$(head -1 <<<"$out")
"$SLIPWAY" runner --name victim > "$T/victim.out" 2>&1 &
victim=$!; _pids+=("$victim")
wait_for "the victim runs the step" 60 has_line "$T/victim.out" "^\[hold\] holding $K"
kill -KILL "$victim"; wait "$victim" 2>/dev/null
kill_leftover "$K"
check "killed: the record still says running" status_is "$K" running
sw runner --once --name rescuer
check "a restarted runner finds nothing to run (the dead run is not run again)" eval '[ "$rc" = 0 ] && ! grep -q "running $K" <<<"$errout" && ! grep -q "^\[hold\]" <<<"$errout"'
sw run view "$K" --json
check "the run is failed, with the reason naming the runner and its process" eval '[ "$(json "j[\"status\"]")" = failed ] && grep -qE "^runner victim on .* stopped while the run was running \(process [0-9]+ is gone\)$" <<<"$(json "j[\"reason\"]")"'
check "its running job failed" test "$(json '(j["jobs"][0]["status"], j["jobs"][0]["conclusion"])')" = "('completed', 'failure')"
sw run list --json
check "never lost: listed once, failed" test "$(json '[r["status"] for r in j["runs"] if r["id"] == "'"$K"'"]')" = "['failed']"
sw runner --once --name again
check "... and never run twice" eval '! grep -q "running $K" <<<"$errout"'

# ---- two runs of one group, cancel-in-progress: true ------------------------------------------
"$SLIPWAY" workflow run group-true --wait > "$T/t1.out" 2>&1 &
t1=$!; _pids+=("$t1")
wait_for "the first run holds g-true" 60 has_line "$T/t1.out" "^\[j\] holding"
T1=$(head -1 "$T/t1.out")
"$SLIPWAY" workflow run group-true --wait > "$T/t2.out" 2>&1 &
t2=$!; _pids+=("$t2")
wait_for "cancel-in-progress: the first run is stopped" 30 gone "$t1"
wait "$t1"; t1_rc=$?
sw run view "$T1" --json
T2=$(head -1 "$T/t2.out")
check "the first run exits 1" test "$t1_rc" = 1
check "... cancelled, its step cancelled" test "$(json '(j["status"], j["jobs"][0]["steps"][0]["conclusion"])')" = "('cancelled', 'cancelled')"
check "... the reason names the newer run" test "$(json 'j["reason"]')" = "superseded by run $T2 in concurrency group g-true"
wait_for "the second run runs once the first ended" 30 has_line "$T/t2.out" "^\[j\] holding"
touch "$T/release-$(head -1 "$T/t2.out")"
wait "$t2"; t2_rc=$?
check "the second run succeeds" test "$t2_rc" = 0

# ---- two runs of one group, cancel-in-progress: false ------------------------------------------
"$SLIPWAY" workflow run group-false --wait > "$T/f1.out" 2>&1 &
f1=$!; _pids+=("$f1")
wait_for "the first run holds g-false" 60 has_line "$T/f1.out" "^\[j\] holding"
F1=$(head -1 "$T/f1.out")
"$SLIPWAY" workflow run group-false --wait > "$T/f2.out" 2>&1 &
f2=$!; _pids+=("$f2")
wait_for "the second run is queued" 20 has_line "$T/f2.out" "^run-"
F2=$(head -1 "$T/f2.out")
queued_behind() { "$SLIPWAY" run view "$F2" --json | grep -q "\"reason\": \"waiting for run $F1 in concurrency group g-false\""; }
wait_for "the second run waits behind the first" 20 queued_behind && ok "without cancel-in-progress the second run waits, naming the first"
check "... and the first is not cancelled" eval 'status_is "$F1" running && ! gone "$f1"'
touch "$T/release-$F1"
wait "$f1"; f1_rc=$?
check "the first run succeeds" test "$f1_rc" = 0
wait_for "then the second runs" 30 has_line "$T/f2.out" "^\[j\] holding $F2"
touch "$T/release-$F2"
wait "$f2"; f2_rc=$?
check "the second run succeeds after the first" test "$f2_rc" = 0

# ---- workflow run --wait follows a runner that claimed the run first ---------------------------
# The run waits for its group (the holder above is held), its --wait is
# stopped (SIGSTOP) while a runner claims the run, then continued: it finds
# the run claimed and follows that runner's log to the end.
"$SLIPWAY" workflow run group-false --wait > "$T/h.out" 2>&1 &
h=$!; _pids+=("$h")
wait_for "a holder of g-false runs" 60 has_line "$T/h.out" "^\[j\] holding"
H=$(head -1 "$T/h.out")
"$SLIPWAY" workflow run group-false --wait > "$T/w.out" 2>&1 &
w=$!; _pids+=("$w")
wait_for "the followed run is queued" 20 has_line "$T/w.out" "^run-"
W=$(head -1 "$T/w.out")
kill -STOP "$w"
touch "$T/release-$H"
wait "$h"
# the holder has ended: the run is claimable, and this runner takes it
"$SLIPWAY" runner --once --name other > "$T/other.out" 2>&1 &
other=$!; _pids+=("$other")
wait_for "the other runner claimed the run" 30 has_line "$T/other.out" "running $W"
kill -CONT "$w"
wait_for "the --wait process follows the runner's log" 30 has_line "$T/w.out" "^\[j\] holding $W"
touch "$T/release-$W"
wait "$w"; w_rc=$?
wait "$other"; other_rc=$?
check "--wait exits 0 as the run succeeded, having printed the other runner's lines" eval '[ "$w_rc" = 0 ] && [ "$other_rc" = 0 ] && has_line "$T/w.out" "^\[j\] done $W" && has_line "$T/w.out" "^run $W succeeded"'
check "... and did not run it itself (one job end, in the runner's log)" eval '[ "$(cat "$T/w.out" "$T/other.out" | grep -c "Job j: success")" = 2 ] && has_line "$T/other.out" "Job j: success"'

done_testing

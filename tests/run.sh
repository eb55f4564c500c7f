#!/usr/bin/env bash
# Runs the unit tests (cmocka, TAP output) and the end-to-end tests (bash, TAP
# lines) and ends with one line: "N passed, N failed".
#   tests/run.sh [--unit|--e2e] [FILTER]
# Every test program prints "ok ..." / "not ok ..." lines; a program that exits
# non-zero without printing a failure counts as one failure, so a crash is
# never silent.
set -u
cd "$(dirname "$0")/.."
mode=all filter=
for a in "$@"; do
    case $a in
    --unit) mode=unit ;;
    --e2e) mode=e2e ;;
    *) filter=$a ;;
    esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export SLIPWAY_BIN=$PWD/build/test/slipway
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The unit tests run on fs here whatever the caller's environment says; the S3 tests set
# these for the programs they run (tests/e2e/410-store-s3.sh, 413-s3-concurrency.sh).
unset SLIPWAY_TEST_S3 SLIPWAY_E2E_S3

progs=()
if [ $mode != e2e ]; then
    for t in build/test/unit/test_*; do [ -x "$t" ] && progs+=("$t"); done
fi
if [ $mode != unit ]; then
    for t in tests/e2e/[0-9]*.sh; do [ -f "$t" ] && progs+=("$t"); done
fi
# The longest tests start first, longest first (about 40 to 90 s each in CI on 2
# cores): started in name order, 050 and the S3 tests (4xx, last) could leave one
# lane running alone at the end. Everything else follows in name order, and the
# report below is in name order whatever the start order. Keep the list to the
# slowest; a name no test has any more is skipped.
SLOW_FIRST="050-crash 420-infra 412-s3-crash 410-store-s3 415-s3-multipart 430-fleet-s3
    125-edge-tsan 440-s3-faults 040-bad-input 413-s3-concurrency 030-deploy 411-s3-cli
    227-workflow-faults 220-workflow-run 400-s3-harness 435-access-log-store 120-edge-switch
    280-seed-pipelines 270-gates 360-monitor-rollback"
first=() rest=()
for name in $SLOW_FIRST; do
    for t in "${progs[@]}"; do [ "$t" = "tests/e2e/$name.sh" ] && first+=("$t"); done
done
for t in "${progs[@]}"; do [[ " ${first[*]} " == *" $t "* ]] || rest+=("$t"); done
progs=("${first[@]}" "${rest[@]}")

run_one() {
    local t=$1 log=$2 start end rc
    start=$(date +%s)
    if [[ $t == *.sh ]]; then bash "$t" >"$log" 2>&1; else "$t" >"$log" 2>&1; fi
    rc=$?
    end=$(date +%s)
    echo "# exit $rc after $((end - start))s" >>"$log"
}

# Two at a time: the e2e tests each use their own temp dirs, and free_port
# reserves each port for its test alone (tests/e2e/port.py).
i=0
pids=()
for t in "${progs[@]}"; do
    [ -n "$filter" ] && [[ $t != *$filter* ]] && continue
    log=$out/$(echo "$t" | tr / _).log
    run_one "$t" "$log" &
    pids+=($!)
    i=$((i + 1))
    # A lane is free as soon as any test of the running ones ends (not only the
    # oldest: a short test started after a long one frees its lane first).
    while [ ${#pids[@]} -ge ${TEST_JOBS:-2} ]; do
        wait -n
        alive=()
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
        pids=("${alive[@]}")
    done
done
wait

pass=0 fail=0
for log in "$out"/*.log; do
    [ -f "$log" ] || continue
    name=$(basename "$log" .log)
    p=$(grep -E '^ok ' "$log" | grep -vc '# SKIP')
    # cmocka reports a skipped test as "not ok N # SKIP": a skip, not a failure.
    f=$(grep -E '^not ok ' "$log" | grep -vc '# SKIP')
    rc=$(sed -n 's/^# exit \([0-9]*\).*/\1/p' "$log" | tail -1)
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "not ok - $name exited $rc without reporting a failure" >>"$log"; fi
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" -gt 0 ]; then
        echo "FAIL $name ($p passed, $f failed)"
        grep -vE '^ok ' "$log" | tail -60 | sed 's/^/    /'
    else
        echo "ok   $name ($p passed, $(tail -1 "$log" | sed 's/# exit 0 after //'))"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

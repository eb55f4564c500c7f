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
    if [ ${#pids[@]} -ge ${TEST_JOBS:-2} ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
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

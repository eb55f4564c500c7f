#!/usr/bin/env bash
# One store test suite, two backends: the unit tests of the store, releases, deploys and gc
# (build/test/unit/test_store, test_release, test_deploy), which tests/run.sh runs on fs, run
# here again on s3 against a moto_server, each store a fresh prefix of one bucket
# (SLIPWAY_TEST_S3, tests/unit/store_fixture.h). That includes the 8-process × 200-increment
# compare-and-swap test, which must find exactly 1600.
#
# moto runs with --serial (one request at a time): moto_server's own conditional writes are
# not atomic (tests/e2e/moto_serial.py), and a lost update there would be moto's, not
# slipway's. The listings the tests need are plain moto's (see moto.sh on --iam).
#
# Every cmocka result comes out as a TAP line of its own ("s3: store: test_…"); a test that is
# about the fs backend itself is skipped there with its reason (# SKIP, not a pass). Then:
# each program exited 0 (no failure, no sanitizer report), and it ran tests on s3 (more than
# none, and more than it skipped), so this cannot pass by skipping everything.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
AWSD=0 # no aws CLI call: the unit tests read the store through slipway's backend
# Two motos, each answering one request at a time: the compare-and-swap test (mostly waiting
# on its moto) runs beside the other two programs rather than before them.
moto_start --serial || done_testing
moto_bucket suite || done_testing
url_store="s3://suite?endpoint=$MOTO_URL&region=us-east-1&path_style=true"
moto_start --serial || done_testing
moto_bucket suite || done_testing
url_rest="s3://suite?endpoint=$MOTO_URL&region=us-east-1&path_style=true"
export CMOCKA_MESSAGE_OUTPUT=TAP

# run TEST URL: runs build/test/unit/TEST on the store URL, its TAP in TEST.tap, its exit
# status and duration in TEST.rc.
run() {
    local bin=$ROOT/build/test/unit/$1 start
    if [ ! -x "$bin" ]; then
        echo "# $1 is not built (make build/test/unit/$1)" >"$1.tap"
        echo "127 0" >"$1.rc"
        return
    fi
    start=$(date +%s)
    SLIPWAY_TEST_S3=$2 "$bin" >"$1.tap" 2>&1
    echo "$? $(($(date +%s) - start))" >"$1.rc"
}
run test_store "$url_store" &
store_pid=$!
_pids+=("$store_pid")
run test_release "$url_rest"
run test_deploy "$url_rest"
wait "$store_pid"

ran_total=0
for t in test_store test_release test_deploy; do
    read -r rc secs <"$t.rc"
    name=${t#test_}
    # cmocka's TAP: "ok N - test", "not ok N - test" and "not ok N # SKIP test"; the lines
    # between are its messages ("# ..."), printed before the result they belong to.
    ran=0 skipped=0 failed=0 after=0 notes=()
    while IFS= read -r line; do
        case $line in
        "not ok "*"# SKIP "*)
            skipped=$((skipped + 1)) after=0
            echo "ok - s3: $name: ${line##*# SKIP } # SKIP ${notes[*]#\# }"
            notes=()
            ;;
        "not ok "*)
            # Its messages come before (print_message) and after (the assertion): both shown.
            failed=$((failed + 1)) after=1
            fail "s3: $name: ${line#not ok * - }"
            [ ${#notes[@]} = 0 ] || printf '%s\n' "${notes[@]}"
            notes=()
            ;;
        "ok "*)
            ran=$((ran + 1)) after=0
            ok "s3: $name: ${line#ok * - }"
            [ ${#notes[@]} = 0 ] || printf '%s\n' "${notes[@]}" | grep -E '^# (counter|s3:)'
            notes=()
            ;;
        "#"*) if [ $after = 1 ]; then echo "$line"; else notes+=("$line"); fi ;;
        esac
    done <"$t.tap"
    ran_total=$((ran_total + ran))
    check "$t on s3: $ran passed, $skipped skipped (fs only), $failed failed, exit $rc, in ${secs}s" \
        eval '[ $rc = 0 ] && [ $failed = 0 ] && [ $ran -gt 0 ] && [ $ran -gt $skipped ]'
    # A crash or a sanitizer report after the last result: shown, not only counted.
    [ $rc = 0 ] || tail -30 "$t.tap" | sed 's/^/# /'
done
check "the CAS test ran on s3 and found exactly 1600" \
    grep -q '^# counter after 8 x 200 CAS increments: 1600 ' test_store.tap
check "$ran_total tests ran on s3" [ $ran_total -gt 0 ]
done_testing

#!/usr/bin/env bash
# The traffic switch under load: wrk against the live listener of a blue-green
# environment while another process runs `slipway switch` over and over. No
# request may fail or see anything but a whole release (A or B), and both
# releases must be seen. Also measures how long a switch takes to reach
# clients. SWITCH_SECONDS (default 20) sets the length of the run; the number
# of switches scales with it (100 per 20 s). In CI (CI set, as .ci/run does) the
# default is 10 s, 50 switches: on 2 loaded cores wrk starves each `slipway
# switch` to over a second, so 100 took two minutes of a 15-minute run; 50 still
# switch both ways under the same load.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/edge-load.sh"
SECS=${SWITCH_SECONDS:-$([ -n "${CI:-}" ] && echo 10 || echo 20)}
NSW=$(( SECS * 5 ))

load_project
spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PL/_slipway/health"
check "before: A is live" test "$(curl -s --max-time 5 "http://127.0.0.1:$PL/")" = A
check "before: B is on preview" test "$(curl -s --max-time 5 "http://127.0.0.1:$PP/")" = B
sw0=$(curl -s --max-time 5 "http://127.0.0.1:$PA/_slipway/metrics" | sed -n 's/^slipway_switches_total{env="staging"} //p')

switch_under_load "${SECS}s" "$SECS" "$NSW"

sw1=$(curl -s --max-time 5 "http://127.0.0.1:$PA/_slipway/metrics" | sed -n 's/^slipway_switches_total{env="staging"} //p')
check "slipway_switches_total counted every switch ($sw0 → $sw1)" test "$((sw1 - sw0))" = "$NSW"
live=$(curl -s --max-time 5 "http://127.0.0.1:$PL/"); prev=$(curl -s --max-time 5 "http://127.0.0.1:$PP/")
check "after: live and preview serve the two releases" test "$(printf '%s%s' "$live" "$prev" | grep -o . | sort | tr -d '\n')" = AB
if [ $((NSW % 2)) = 0 ]; then
    check "after an even number of switches A is live again" test "$live" = A
fi
kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 on SIGTERM after the run" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

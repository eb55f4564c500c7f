#!/usr/bin/env bash
# `slipway serve --no-monitor`: no monitor thread, so no alert rule is judged
# and no history is kept, while the edge still counts every request and the
# admin address still serves /_slipway/metrics and /_slipway/latency. The same
# project is then served without the option: the rule fires and the history
# file appears, so the first half cannot pass for want of a rule that fires.
#
# The rule (request_rate >= 0, for 0, no min_requests) holds at every
# evaluation with a verdict; serve samples every 50 ms (--monitor-interval).
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

new_project
ENVS=$T/p/.slipway/environments
HIST=$T/p/.slipway/cache/monitor/history.bin
rm -f "$ENVS"/*.yml
P=$(free_port); PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/web.yml"
cat > "$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: always
    signal: request_rate
    op: ">="
    threshold: 0
    severity: warning
EOF
mkdir -p "$T/web"
printf 'page\n' > "$T/web/index.html"
sw deploy "$T/web" --env web; expect_rc "deploy web" 0

start_serve() { # LOG OPTIONS...
    local log=$1; shift
    spawn "$SLIPWAY" serve --workers 2 --monitor-interval 50ms --admin "127.0.0.1:$PA" "$@" \
        >"$T/$log.out" 2>"$T/$log.err"
    SERVE=$!
    wait_for "serve ($log) answers" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"
}
stop_serve() { # DESC
    kill -TERM "$SERVE"; wait "$SERVE" 2>/dev/null; rc=$?
    check "$1" test "$rc" = 0
}
hits() { # N: N requests to web, on one connection
    local i args=()
    for ((i = 0; i < $1; i++)); do args+=(-o /dev/null "http://127.0.0.1:$P/"); done
    "${C[@]}" "${args[@]}"
}
metric_count() { # the requests web's direct slot answered, from the exposition
    "${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics" |
        awk '/^slipway_request_duration_seconds_count\{env="web",slot="direct"\} / { print $2 }'
}
FIRING='^slipway serve: monitor: always on web: firing'

# ---- --no-monitor ----------------------------------------------------------------------
start_serve off --no-monitor
hits 7
check "metrics still answer, with web's 7 requests counted" test "$(metric_count)" = 7
check "and /_slipway/latency too" eval \
    '"${C[@]}" "http://127.0.0.1:$PA/_slipway/latency?env=web&slot=direct" | grep -q "\"requests\":7,"'
check "the process figures are still in the exposition" eval \
    '"${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics" | grep -q "^process_resident_memory_bytes "'
# 1 s is 20 sampling intervals: a monitor running would have fired the rule by now.
sleep 1
check "no rule is judged: the rule that always holds did not fire" eval '! grep -q "$FIRING" "$T/off.err"'
stop_serve "serve --no-monitor exits 0 on SIGTERM"
check "no history file appears, not even at a clean stop" test ! -e "$HIST"
check "no monitor line at all on stderr" eval '! grep -q "monitor:" "$T/off.err"'

# ---- the same project with the monitor (the default) --------------------------------------
start_serve on
hits 7
wait_for "the rule fires, said on stderr" 20 grep -q "$FIRING" "$T/on.err" && ok "the rule fires, said on stderr"
stop_serve "serve exits 0 on SIGTERM"
check "the history file appears" test -s "$HIST"
sw metrics web --json; expect_rc "slipway metrics reads it" 0
check "and it holds this serve's 7 requests" eval \
    'test "$(printf "%s" "$out" | grep -o "\"requests\": *[0-9]*" | awk -F: "{ s += \$2 } END { print s + 0 }")" = 7'
check "no sanitizer report" eval '! grep -q "Sanitizer" "$T"/off.err "$T"/on.err'
done_testing

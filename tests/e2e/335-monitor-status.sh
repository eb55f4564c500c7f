#!/usr/bin/env bash
# The status file of `slipway serve`'s monitor and the two commands that read
# it from another process: `slipway alerts` and `slipway top`. serve samples
# every 2 s (--monitor-interval; the alert window is then 2 min, long enough
# for the few requests of a check to stay in it on a loaded machine, and a
# status counts as stale after 10 s).
#
# Before serve: no status, `slipway alerts` says serve is not running (exit 1).
# With serve and a few requests: `alerts --json` shows the default rules
# (deployment ones left out) per environment, with the verdict "not enough
# traffic (5 < min_requests 100)"; `top --once` shows the environment's row
# with a rate above zero and a sparkline. An alerts.yml with a low threshold,
# for: 0s and min_requests 5, loaded with SIGHUP: the 503s of an environment
# with nothing deployed fire it. serve killed with SIGKILL: `alerts` says
# serve is not running at once (its pid is gone), still shows the last states,
# exits 1; so does `top --once`. A corrupt or hostile status file is refused
# with one line naming it; a temporary status file left by a killed serve is
# removed by the next one. `alerts check` still works.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

if ! command -v python3 >/dev/null; then
    echo "ok - skipped: needs python3 # SKIP"
    done_testing
fi

new_project
ENVS=$T/p/.slipway/environments
STATUS=$T/p/.slipway/cache/monitor/status.json
rm -f "$ENVS"/*.yml
P=$(free_port); PE=$(free_port); PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/web.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PE" > "$ENVS/empty.yml"
mkdir -p "$T/web"
printf 'hello\n' > "$T/web/index.html"
sw deploy "$T/web" --env web; expect_rc "deploy web" 0
REL=$(printf '%s' "$out" | grep -o 'r-[A-Za-z0-9._-]*' | head -1)

# ---- before any serve ------------------------------------------------------------------------
sw alerts; expect_err "no status yet: serve is not running, one line, exit 1" 1 \
    "^slipway: slipway serve is not running for this project \(no status yet: .*status.json does not exist\)$"
sw top --once; expect_err "top --once without a status: the same line, exit 1" 1 \
    "^slipway: slipway serve is not running for this project"
sw alerts check; expect_rc "alerts check still works" 0
check "alerts check prints the default rules" eval 'printf "%s" "$out" | grep -q "^high-error-rate "'
sw alerts 'Bad/Name'; expect_err "a bad environment name: a usage error, exit 2" 2 "^slipway alerts: "

start_serve() { # LOG
    spawn "$SLIPWAY" serve --workers 2 --monitor-interval 2s --admin "127.0.0.1:$PA" \
        >"$T/$1.out" 2>"$T/$1.err"
    SERVE=$!
    wait_for "serve ($1) answers" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"
}
hits() { # N URL: N requests on one connection
    local i args=()
    for ((i = 0; i < $1; i++)); do args+=(-o /dev/null "$2"); done
    "${C[@]}" "${args[@]}"
}
# field ENV RULE KEY: a field of ENV's alert RULE in `slipway alerts --json` ("-" when absent)
field() {
    "$SLIPWAY" alerts --json 2>/dev/null | python3 -c '
import json, sys
env, rule, key = sys.argv[1:4]
try:
    j = json.load(sys.stdin)
    e = [e for e in j["environments"] if e["env"] == env][0]
    print([a for a in e["alerts"] if a["rule"] == rule][0][key])
except Exception:
    print("-")' "$@"
}

# a temporary file of a serve killed between writing and renaming: removed (its pid is gone)
mkdir -p "$(dirname "$STATUS")"
printf 'half' > "$STATUS.tmp-4194303"

# ---- serve, a few requests: not enough traffic --------------------------------------------
start_serve serve1
wait_for "serve writes the status file" 20 test -s "$STATUS"
check "the temporary file of a gone serve was removed" test ! -e "$STATUS.tmp-4194303"
hits 5 "http://127.0.0.1:$P/"
wait_for "alerts --json: web's window holds the 5 requests" 20 \
    eval '[ "$(field web high-error-rate requests)" = 5 ]'
sw alerts --json; expect_rc "alerts --json while serve runs: exit 0" 0
check "alerts --json: running, with serve's pid, interval and window" \
    test "$(json 'j["running"], j["pid"], j["interval_ms"], j["window_ms"]')" = "True $SERVE 2000 120000"
check "alerts --json: the default measured rules for each environment, deployment rules left out" \
    test "$(json '[(e["env"], [a["rule"] for a in e["alerts"]]) for e in j["environments"]]')" = \
    "[('empty', ['high-error-rate', 'slow-responses']), ('web', ['high-error-rate', 'slow-responses'])]"
check "alerts --json: web's rules are inactive with 'not enough traffic' (5 < 100)" \
    test "$(json '[(a["state"], a["verdict"], a["verdict_text"], a["requests"], a["min_requests"]) for a in j["environments"][1]["alerts"]]')" = \
    "[('inactive', 'not_enough_traffic', 'not enough traffic (5 < min_requests 100)', 5, 100), ('inactive', 'not_enough_traffic', 'not enough traffic (5 < min_requests 100)', 5, 100)]"
check "alerts --json: web's live slot and release" \
    test "$(json 'j["environments"][1]["live_slot"], j["environments"][1]["release"]')" = "direct $REL"
check "alerts --json: the error ratio is measured (0), the value at a breach is not (null)" \
    test "$(json 'j["environments"][1]["alerts"][0]["last"], j["environments"][1]["alerts"][0]["value"]')" = "0.0 None"
sw alerts web; expect_rc "alerts web: exit 0" 0
printf '%s\n' "$out" | sed 's/^/# /'
check "alerts web: a heading, a header and a row per rule, only web" eval \
    'printf "%s\n" "$out" | grep -q "^web: live slot direct, release $REL, 5 requests in the last 2m$" &&
     printf "%s\n" "$out" | grep -Eq "^  RULE +SEVERITY +STATE +VERDICT +VALUE +SINCE$" &&
     printf "%s\n" "$out" | grep -Eq "^  high-error-rate +critical +inactive +not enough traffic \(5 < min_requests 100\) +0\.00% +-$" &&
     ! printf "%s\n" "$out" | grep -q "^empty"'
sw alerts nope; expect_err "an environment serve does not monitor: one line naming those it does, exit 1" 1 \
    "^slipway: nope: not monitored by slipway serve \(it monitors: empty, web\)$"

sw top --once; expect_rc "top --once (and output not a terminal): one frame, exit 0" 0
printf '%s\n' "$out" | sed 's/^/# /'
check "top: no terminal control sequences when not on a terminal" eval '! printf "%s" "$out" | grep -q $'"'"'\x1b'"'"
check "top: a header with serve's pid and its CPU and RSS" eval \
    'printf "%s\n" "$out" | grep -q "^slipway top: serve pid $SERVE on " &&
     printf "%s\n" "$out" | grep -Eq "^serve: CPU [0-9.]+% of a core, RSS [0-9.]+ [KMG]?i?B"'
read -r _ slot rate errs _ < <(printf '%s\n' "$out" | grep -E '^web +direct\*')
check "top: web's row, its live slot, a rate above zero ($rate req/s), no errors ($errs)" eval \
    'test "$slot" = "direct*" && python3 -c "import sys; sys.exit(not float(sys.argv[1]) > 0)" "$rate" &&
     test "$errs" = 0.00%'
check "top: web's row ends with a sparkline of its requests" eval \
    'printf "%s\n" "$out" | grep -E "^web " | grep -q "[▁▂▃▄▅▆▇█]"'

# ---- a rule that fires -----------------------------------------------------------------------
cat > "$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: errors
    signal: error_ratio
    op: ">"
    threshold: 0.05
    for: 0s
    min_requests: 5
    severity: critical
EOF
kill -HUP "$SERVE"
wait_for "the new rule is in the status" 20 eval '[ "$(field web errors state)" = inactive ]'
hits 30 "http://127.0.0.1:$PE/"
wait_for "errors fires on empty (its 503s)" 20 eval '[ "$(field empty errors state)" = firing ]'
sw alerts --json
check "alerts --json: firing with a breach, its value 1 and the times it fired" \
    test "$(json '[(a["state"], a["verdict"], a["value"], a["fired"] is not None, a["since"] == a["fired"]) for a in j["environments"][0]["alerts"]]')" = \
    "[('firing', 'breach', 1.0, True, True)]"
sw alerts empty
check "alerts empty: the firing row" eval \
    'printf "%s\n" "$out" | grep -Eq "^  errors +critical +firing +breach +100\.00% +[0-9]+s ago$"'
sw top --once
check "top: empty's row shows its errors and the firing alert" eval \
    'printf "%s\n" "$out" | grep -Eq "^empty +direct\* +[0-9.]+ +100\.00% .* 1 firing "'

# ---- serve gone --------------------------------------------------------------------------------
kill -KILL "$SERVE"; wait "$SERVE" 2>/dev/null
sw alerts; expect_err "serve killed: alerts says it is not running at once (its pid is gone), exit 1" 1 \
    "^slipway: slipway serve is not running for this project \(last status at [0-9T:.-]+Z\)$"
check "... and still prints the last states" eval 'printf "%s\n" "$out" | grep -Eq "^  errors +critical +firing "'
sw alerts --json; expect_rc "alerts --json: exit 1 too" 1
check "alerts --json: running false" test "$(json 'j["running"]')" = False
sw top --once; expect_err "top --once: the same line, exit 1" 1 "^slipway: slipway serve is not running for this project \(last status at"
check "top --once: the last frame still printed" eval 'printf "%s\n" "$out" | grep -q "^slipway top: slipway serve is not running"'

# ---- corrupt and hostile status files -------------------------------------------------------
good=$(cat "$STATUS")
printf '{"version": 1, "written": ' > "$STATUS"
sw alerts; expect_err "a truncated status file: refused in one line naming it, exit 1" 1 "^slipway: .*/status\.json: .* at line 1 column"
sw top --once; expect_err "top refuses it the same way" 1 "^slipway: .*/status\.json: "
printf '%s' "$good" | sed 's/"name":"empty"/"name":"..\/x\\u001b[2J"/' > "$STATUS"
sw alerts; expect_err "an environment name that is not one: refused, naming the file and the field" 1 \
    "^slipway: .*/status\.json: name: not an environment name$"
printf '%s' "$good" | sed 's/"interval_ms":2000/"interval_ms":-1/' > "$STATUS"
sw alerts; expect_err "a number out of range: refused" 1 "^slipway: .*/status\.json: interval_ms: out of range$"
printf '%s' "$good" | sed 's/"version":1/"version":7/' > "$STATUS"
sw alerts; expect_err "another version: refused" 1 "^slipway: .*/status\.json: version 7, not 1"
check "no sanitizer report" eval '! grep -q "Sanitizer" "$T"/serve*.err'
done_testing

#!/usr/bin/env bash
# A slow release fires the latency warning, notifies, and is not rolled back (issue 13's
# second incident). A blue-green environment: blue holds v1, green v2, which adds the
# pages of a new section under /shop/; SLIPWAY_TEST_EDGE_DELAY holds every response to
# a target under /shop/ 400 ms (the test hook selects by the request's target, whatever
# the release: only v2 has those pages, and only they are requested). After the switch to
# green, wrk asks for v2's new pages; .slipway/alerts.yml has a latency rule (p95 > 0.25 s,
# warning, for 2 s, at least 20 requests) beside a critical error rule, so:
#   - the warning fires on stderr, naming v2, and the webhook hears it (Alertmanager's
#     webhook format: firing, alertname slow-responses, severity warning, release v2);
#   - the critical rule does not fire (the slow pages answer 200);
#   - while the warning keeps firing (its re-sends to the Alertmanager URL of monitor.yml,
#     here the same receiver, show it is still firing two seconds on), nothing rolls back:
#     green and v2 stay live (slipway status --json), history has no rollback, and no
#     rollback is notified.
# The time from the switch to the warning firing is printed.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
# waited DESC SECONDS CMD...: wait_for, and an "ok" line when it came.
waited() { wait_for "$@" && ok "$1"; }

if ! command -v wrk >/dev/null; then
    echo "ok - skipped: needs wrk (scripts/install-deps) # SKIP"
    done_testing
fi

"$SLIPWAY" init -q "$T/p"
cd "$T/p" || exit 1
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
PL=$(free_port); PP=$(free_port); PA=$(free_port); PWH=$(free_port)
# The rollback is armed (watch, on_critical: rollback): only the warning's severity keeps it
# from happening, so the checks that nothing rolls back can fail.
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\nwatch: {duration: 10m, on_critical: rollback}\n' \
    "$PL" "$PP" >"$ENVS/shop.yml"
cat >"$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: high-error-rate
    signal: error_ratio
    op: ">"
    threshold: 0.05
    for: 2s
    min_requests: 20
    severity: critical
  - name: slow-responses
    signal: latency_p95
    op: ">"
    threshold: 0.25
    for: 2s
    min_requests: 20
    severity: warning
    summary: "response time p95 {{ $value }} s on {{ $env }} ({{ $release }})"
  - name: deployment-completed
    signal: deployment
    severity: info
EOF
# One receiver for both: the webhook at /hook, "Alertmanager" at /am (its firing alerts are
# re-sent there every second).
cat >"$T/p/.slipway/monitor.yml" <<EOF
notify:
  alertmanager: ["http://127.0.0.1:$PWH/am"]
  webhooks: ["http://127.0.0.1:$PWH/hook"]
  resend: 1s
  timeout: 2s
EOF
: >"$T/received"
spawn python3 "$ROOT/tests/e2e/receiver.py" "$PWH" "$T/received"

mkdir -p "$T/v1" "$T/v2/shop"
printf 'v1\n' >"$T/v1/index.html"
cp "$T/v1/index.html" "$T/v2/index.html"
for k in $(seq 0 9); do printf 'v2 shop %s\n' "$k" >"$T/v2/shop/$k.html"; done
sw release create "$T/v1" -q; V1=$out
sw release create "$T/v2" -q; V2=$out
sw deploy "$V1" --env shop; expect_rc "deploy v1 to shop (blue, live)" 0
sw deploy "$V2" --env shop; expect_rc "deploy v2 to shop (green, idle)" 0

# Workers block while a response is held: more of them than wrk's connections.
SLIPWAY_TEST_EDGE_DELAY=/shop/=400000 spawn "$SLIPWAY" serve --workers 16 --admin "127.0.0.1:$PA" \
    >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
A=http://127.0.0.1:$PA
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "$A/_slipway/ready" || done_testing
wait_for "the receiver is up" 10 "${C[@]}" -f -o /dev/null -X POST "http://127.0.0.1:$PWH/ping" || done_testing
: >"$T/received"
check "v1 is live" eval '"${C[@]}" "http://127.0.0.1:$PL/" | grep -q v1'

# ---- the switch to v2, and its slow pages under load ---------------------------------------
switched=$(date +%s%N)
sw switch shop; expect_rc "switch shop to green (v2)" 0
wait_for "green is live in serve" 10 eval '"${C[@]}" "$A/_slipway/latency?env=shop&slot=green" | grep -q "\"live\":true"'
cat >"$T/shop.lua" <<'EOF'
-- v2's new pages, each in turn.
local n = 0
function request()
    n = n + 1
    return wrk.format("GET", string.format("/shop/%d.html", n % 10))
end
EOF
spawn wrk -t1 -c8 -d60s --timeout 5s -s "$T/shop.lua" "http://127.0.0.1:$PL/" >"$T/wrk.out" 2>&1
WRK=$!
FIRING="monitor: slow-responses on shop: firing \\(latency_p95 [0-9.e+-]+ > 0\\.25 over [0-9]+ requests in the last 1m; release $V2\\)$"
waited "the latency warning fires for v2" 30 grep -qE "$FIRING" "$T/serve.err"
echo "# from the switch to the warning firing: $(( ($(date +%s%N) - switched) / 1000000 )) ms (for: 2s)"
grep -E "monitor: slow-responses on shop" "$T/serve.err" | sed 's/^/# /'
waited "the webhook hears it" 10 grep -q '^/hook .*"alertname":"slow-responses"' "$T/received"
grep '^/hook .*"alertname":"slow-responses"' "$T/received" | head -1 | cut -d' ' -f2- >"$T/hook.json"
python3 - "$T/hook.json" "$V2" <<'EOF' || _failed=1
import json, sys
w, release = json.load(open(sys.argv[1])), sys.argv[2]
a = [x for x in w["alerts"] if x["labels"]["alertname"] == "slow-responses"]
ok = (w["version"] == "4" and w["status"] == "firing" and len(a) == 1 and a[0]["status"] == "firing"
      and a[0]["labels"] == {"alertname": "slow-responses", "env": "shop", "severity": "warning"}
      and a[0]["annotations"].get("release") == release
      and float(a[0]["annotations"].get("value", 0)) > 0.25
      and a[0]["annotations"]["summary"].startswith("response time p95 ")
      and a[0]["annotations"]["summary"].endswith(" s on shop (%s)" % release))
print("%s -   in Alertmanager's webhook format: firing, slow-responses, warning, on shop, v2, value over 0.25%s"
      % ("ok" if ok else "not ok", "" if ok else " (%s)" % w))
sys.exit(0 if ok else 1)
EOF

# ---- and nothing rolls back -----------------------------------------------------------------
# The firing warning is re-sent to "Alertmanager" every second: two re-sends after the
# webhook heard it, it has been firing for two seconds more, and still
resent() { [ "$(grep -c '^/am/api/v2/alerts .*"alertname":"slow-responses"' "$T/received")" -ge 3 ]; }
waited "the warning is still firing two re-sends on" 20 resent
check "  and the webhook heard it once (a change, not the re-sends)" \
    test "$(grep -c '^/hook .*"alertname":"slow-responses"' "$T/received")" = 1
kill -INT "$WRK" 2>/dev/null; wait "$WRK" 2>/dev/null
sw status --json
S=$(json '" ".join("%s %s %s" % (e["live_release"], e["live_slot"], e["slots"]["blue"]["release"]) for e in j["environments"] if e["name"] == "shop")')
check "v2 is still live, on green, and blue still holds v1 to go back to (slipway status --json: $S)" \
    test "$S" = "$V2 green $V1"
sw history shop --json
check "history: deploy, deploy, switch, and no rollback" \
    test "$(json '",".join(e["action"] for e in sorted(j["events"], key=lambda e: e["seq"]))')" = deploy,deploy,switch
check "no rollback was notified" eval '! grep -q "\"action\":\"rollback\"" "$T/received"'
check "the watch was handed no alert (a warning never reaches it)" eval '! grep -q "slipway serve: watch: " "$T/serve.err"'
check "the critical error rule did not fire (v2's slow pages answer 200)" \
    eval '! grep -q "monitor: high-error-rate on shop: firing" "$T/serve.err"'
check "  nor was any critical alert sent" eval '! grep -q "\"severity\":\"critical\"" "$T/received"'
check "v2's pages answered 200" eval 'grep -q "Requests/sec" "$T/wrk.out" && ! grep -q "Non-2xx" "$T/wrk.out"'

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
if [ "$_failed" != 0 ]; then sed 's/^/# serve: /' "$T/serve.err" | tail -30; fi
done_testing

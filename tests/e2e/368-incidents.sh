#!/usr/bin/env bash
# `slipway incidents` on a real serve (docs/monitor.md, "Incidents").
#
# The seed's incident, small: wrk loads a blue-green environment `stg` watched for 2 minutes;
# release B, which lost half of A's files, is switched in; the critical rule (for: 2s) fires and
# slipway rolls back to A by itself. The journal serve keeps (.slipway/cache/monitor/incidents.jsonl)
# then shows one incident: fired (value, release B), notified (a tiny webhook receiver: its
# origin, never its path or query), rolled back (B -> A, how long after firing), and resolved once
# the load has moved on (within a bounded wait). Without a journal, or for another environment:
# "no incidents", exit 0. A hostile line in the journal is skipped with a warning naming its line.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
command -v wrk >/dev/null || { echo "# skipped: wrk is not installed"; echo "ok - skipped"; exit 0; }

new_project
ENVS=$T/p/.slipway/environments
JOURNAL=$T/p/.slipway/cache/monitor/incidents.jsonl
rm -f "$ENVS"/*.yml
PS=$(free_port); PSP=$(free_port); PA=$(free_port); PWH=$(free_port)
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\nwatch: {duration: 2m, on_critical: rollback}\n' \
    "$PS" "$PSP" >"$ENVS/stg.yml"
cat >"$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: high-error-rate
    environments: ["*"]
    signal: error_ratio
    op: ">"
    threshold: 0.05
    for: 2s
    min_requests: 100
    severity: critical
    summary: "error rate {{ $value }} on {{ $env }} ({{ $release }})"
EOF

# A plain webhook receiver (as 340's): one body per line.
spawn python3 "$ROOT/tests/e2e/receiver.py" "$PWH" "$T/webhook.jsonl"
wait_for "the webhook receiver is up" 10 "${C[@]}" -f -o /dev/null -X POST "http://127.0.0.1:$PWH/ping"
printf 'notify:\n  webhooks: ["http://127.0.0.1:%s/hook/s3cr3t-path?token=s3cr3t"]\n  retries: 2\n  backoff: 100ms\n' \
    "$PWH" >"$T/p/.slipway/monitor.yml"

# ---- nothing yet --------------------------------------------------------------------------------
sw incidents
check "no journal yet: \"no incidents\", exit 0" eval '[ "$rc" = 0 ] && [ "$out" = "no incidents" ]'
sw incidents --json
check "  --json: an empty list" eval '[ "$rc" = 0 ] && [ "$(json "(len(j[\"incidents\"]), j[\"skipped_lines\"])")" = "(0, 0)" ]'
sw incidents 'no/such'
check "a bad environment name is a usage error" test "$rc" = 2

mkdir -p "$T/a" "$T/b"
for i in $(seq 1 20); do printf 'A page %s\n' "$i" >"$T/a/p$i.html"; done
for i in $(seq 1 10); do printf 'B page %s\n' "$i" >"$T/b/p$i.html"; done
sw release create "$T/a" -q; A=$out
sw release create "$T/b" -q; B=$out
sw deploy "$A" --env stg --switch; expect_rc "A is live on stg" 0

spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"

live() { "$SLIPWAY" status "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["environments"][0]["live_release"] or "")'; }
cat >"$T/pages.lua" <<'EOF'
local i = 0
request = function()
  i = i % 20 + 1
  return wrk.format("GET", "/p" .. i .. ".html")
end
EOF
wrk -t1 -c4 -d30s -s "$T/pages.lua" "http://127.0.0.1:$PS/" >"$T/wrk.out" 2>&1 &
LOADPID=$!; _pids+=($LOADPID)

# ---- the incident ---------------------------------------------------------------------------------
sw deploy "$B" --env stg; expect_rc "B goes to stg's idle slot" 0
sleep 1 # A is judged under load before the switch
sw switch stg; expect_rc "B is switched in under load" 0
wait_for "slipway rolls stg back to A by itself" 20 eval '[ "$(live stg)" = "$A" ]'
# incident FIELD...: fields of the only incident of `slipway incidents --json`.
has_all() {
    "$SLIPWAY" incidents --json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
i = j["incidents"][0]
sys.exit(0 if i["rollback"] and i["notified"] else 1)'
}
wait_for "the journal has the rollback and the notification" 15 has_all
kill "$LOADPID" 2>/dev/null; wait "$LOADPID" 2>/dev/null

sw incidents --json
echo "$out" | sed 's/^/# /' | head -60
check "one incident" test "$(json 'len(j["incidents"])')" = 1
check "  of stg's high-error-rate, critical" \
    test "$(json '(lambda i: (i["env"], i["rule"], i["severity"]))(j["incidents"][0])')" = "('stg', 'high-error-rate', 'critical')"
check "  fired on B at a value over 0.05, with its summary and fingerprint" \
    test "$(json '(lambda i: i["release"] == "'"$B"'" and i["value"] > 0.05 and i["summary"].startswith("error rate ") and len(i["fingerprint"]) == 16 and i["fired"].endswith("Z"))(j["incidents"][0])')" = True
check "  notified: the webhook, delivered, by its origin only" \
    test "$(json '[(n["target"], n["delivered"], n["why"]) for n in j["incidents"][0]["notified"]]')" = "[('webhook 1 http://127.0.0.1:$PWH', True, None)]"
check "  rolled back B -> A by slipway, within 10 s of firing" \
    test "$(json '(lambda r: (r["rolled_back"], r["release"], r["to"], r["source"], 0 <= r["after_ms"] < 10000, r["why"]))(j["incidents"][0]["rollback"])')" = "(True, '$B', '$A', 'slipway', True, None)"
check "  the reason names the rule and its condition" \
    eval '[[ "$(json "j[\"incidents\"][0][\"rollback\"][\"reason\"]")" == "high-error-rate (critical, from slipway): error_ratio "*" > 0.05 for 2s over "*" requests" ]]'
check "the webhook really received the firing alert" grep -q '"alertname":"high-error-rate"' "$T/webhook.jsonl"
check "the journal holds no path, query or secret of the webhook" eval '! grep -q "s3cr3t" "$JOURNAL"'
check "every line of the journal is one JSON object of version 1" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines and all(json.loads(l)["v"] == 1 for l in lines)
print("# journal events:", [json.loads(l)["event"] for l in lines])' "$JOURNAL"

# Resolved once the load has moved on: A's slot judges the window again.
resolved() { "$SLIPWAY" incidents --json 2>/dev/null | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["incidents"][0]["resolved"] else 1)'; }
end=$(( $(date +%s) + 90 ))
while [ "$(date +%s)" -lt "$end" ] && ! resolved; do sleep 0.5; done
if resolved; then
    sw incidents --json
    check "resolved: state, time after firing, the value then (A's, under 0.05)" \
        test "$(json '(lambda i: (i["state"], i["resolved"]["time"] >= i["fired"], i["resolved"]["value"] < 0.05))(j["incidents"][0])')" = "('resolved', True, True)"
else
    echo "# not resolved within 90 s of the load stopping"
    sw incidents --json
    check "  then it says firing" test "$(json 'j["incidents"][0]["state"]')" = firing
fi

# ---- the human form, filters ------------------------------------------------------------------------
sw incidents
echo "$out" | sed 's/^/# /'
check "the human form: env, rule, severity, fired" eval 'printf "%s" "$out" | grep -q "^stg  high-error-rate  critical  fired .* at 0\.[0-9]* on $B"'
check "  notified: the webhook's origin" eval 'printf "%s" "$out" | grep -q "^  notified:    webhook 1 http://127.0.0.1:$PWH at .* after firing)"'
check "  rolled back: B -> A, how long after firing" eval 'printf "%s" "$out" | grep -q "^  rolled back: $B -> $A at .*, .* after firing"'
check "  resolved or firing" eval 'printf "%s" "$out" | grep -q "^  resolved:    "'
sw incidents stg --since 1h --json
check "ENV and --since 1h keep it" test "$(json 'len(j["incidents"])')" = 1
sw incidents other
check "another environment: \"no incidents\", exit 0" eval '[ "$rc" = 0 ] && [ "$out" = "no incidents" ]'

# ---- a hostile line ---------------------------------------------------------------------------------
n=$(( $(wc -l <"$JOURNAL") + 1 ))
printf '{"v":1,"event":"fired","time":"2030-01-01T00:00:00.000Z","env":"stg","rule":"\\u001b[2Jx"}\n' >>"$JOURNAL"
sw incidents --json
check "a bad line is skipped and counted" \
    test "$(json '(len(j["incidents"]), j["skipped_lines"])')" = "(1, 1)"
check "  with a warning naming the file and line" \
    eval 'printf "%s" "$errout" | grep -q "^slipway: warning: .*incidents.jsonl:$n: .*: skipped$"'
check "  nothing of it reaches the terminal" eval '! printf "%s" "$errout" | grep -q $'"'"'\x1b'"'"

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -q "Sanitizer\|runtime error" "$T/serve.err"'
if [ "$_failed" != 0 ]; then sed "s/^/# serve: /" "$T/serve.err" | tail -40; fi
done_testing

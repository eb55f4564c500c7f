#!/usr/bin/env bash
# Notifications against a real Alertmanager (Debian's prometheus-alertmanager,
# started here on loopback with its own configuration and storage, stopped by
# its PID) and a plain webhook receiver (a small Python server).
#
# slipway's alerts come from a deploy: before the sampler evaluates rules,
# the "deployment completed" info alert is the alert slipway sends, and it
# goes the same way (monitor_notify_push) any alert will. So: a deploy's
# alert appears in Alertmanager's GET /api/v2/alerts and at the webhook in
# Alertmanager's format; an alert posted to Alertmanager as Prometheus would
# (critical, env=web) comes back through Alertmanager's webhook receiver,
# configured with slipway's bearer token (credentials_file), and slipway logs
# the critical callback once, even when the same alert arrives again; the
# hook without or with a wrong token is 401 and changes nothing, malformed
# JSON is 400, a body over 1 MiB is 413, and the hook exists on the admin
# listener only. Then Alertmanager is stopped: deploys and a rollback still
# happen at once, the webhook still hears of them, and the notification to
# Alertmanager is logged as lost after its retries (kept short by
# monitor.yml). A bad monitor.yml stops serve with FILE:LINE:COL.
. "$(dirname "$0")/lib.sh"
AM_BIN=${AM_BIN:-/usr/bin/prometheus-alertmanager}
C=(curl -s --max-time 10)
# waited DESC SECONDS CMD...: wait_for, and an "ok" line when it came.
waited() { wait_for "$@" && ok "$1"; }

if [ ! -x "$AM_BIN" ]; then
    echo "ok - skipped: needs $AM_BIN (Debian package prometheus-alertmanager, scripts/install-deps) # SKIP"
    done_testing
fi

new_project
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
P=$(free_port); PA=$(free_port); PAM=$(free_port); PWH=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/web.yml"
TOKEN=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
printf '%s\n' "$TOKEN" > "$T/p/.slipway/am.token"
A=http://127.0.0.1:$PA
HOOK=$A/_slipway/hooks/alertmanager
AM=http://127.0.0.1:$PAM

# ---- a bad monitor.yml stops serve, naming the line and column ------------------------------
printf 'notify:\n  alertmanagers: [%s]\n' "$AM" > "$T/p/.slipway/monitor.yml"
sw serve --admin "127.0.0.1:$PA"
expect_err "a misspelt key in monitor.yml stops serve (exit 1) at its line and column" 1 \
    'monitor\.yml:2:3: notify: unknown key .alertmanagers.'
printf 'notify:\n  webhooks: [ftp://127.0.0.1/x]\n' > "$T/p/.slipway/monitor.yml"
sw serve --admin "127.0.0.1:$PA"
expect_err "a URL that is not http(s) stops serve" 1 'monitor\.yml:2:14: notify: webhooks: expected an http'

# ---- Alertmanager, with slipway's hook as its webhook receiver -----------------------------------
cat > "$T/am.yml" <<EOF
route:
  receiver: slipway
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: slipway
    webhook_configs:
      - url: $HOOK
        http_config:
          authorization:
            type: Bearer
            credentials_file: $T/p/.slipway/am.token
EOF
# --cluster.listen-address= (empty) turns clustering off: no gossip port, no peers.
spawn "$AM_BIN" --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --web.listen-address="127.0.0.1:$PAM" --cluster.listen-address= >"$T/am.log" 2>&1
AMPID=$!
wait_for "Alertmanager is up" 30 "${C[@]}" -f -o /dev/null "$AM/-/ready" ||
    { sed 's/^/# /' "$T/am.log" | tail -20; done_testing; }

# A plain webhook receiver: one JSON body per line in webhook.jsonl.
: > "$T/webhook.jsonl"
spawn python3 "$ROOT/tests/e2e/receiver.py" "$PWH" "$T/webhook.jsonl"
wait_for "the webhook receiver is up" 10 "${C[@]}" -f -o /dev/null -X POST "http://127.0.0.1:$PWH/ping"
: > "$T/webhook.jsonl"

cat > "$T/p/.slipway/monitor.yml" <<EOF
notify:
  alertmanager: ["$AM"]
  webhooks: ["http://127.0.0.1:$PWH/slipway?secret=s3cr3t"]
  retries: 2
  backoff: 100ms
  backoff_max: 200ms
  timeout: 2s
webhook_token_file: .slipway/am.token
EOF
spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "$A/_slipway/health"

# ---- a deploy's alert reaches Alertmanager and the webhook --------------------------------------
sw deploy "$T/site" --env web; expect_rc "deploy to web" 0
R1=$(sed -n 's/^web: deployed .* -> \(r-[^ ]*\).*/\1/p' <<<"$out")
# Alertmanager's alerts (GET /api/v2/alerts) into $T/am-alerts.json; true when they name $1.
am_has() { "${C[@]}" -f -o "$T/am-alerts.json" "$AM/api/v2/alerts" && grep -q "$1" "$T/am-alerts.json"; }
waited "the deploy's alert appears in Alertmanager's GET /api/v2/alerts" 15 \
    am_has '"alertname":"deployment-completed"'
waited "the webhook receives it" 10 grep -q deployment-completed "$T/webhook.jsonl"
# One interpreter for every check of what arrived (it prints its own TAP lines).
python3 - "$T/am-alerts.json" "$T/webhook.jsonl" "$R1" <<'EOF' || _failed=1
import datetime, json, sys
bad = 0
def check(desc, cond, detail=""):
    global bad
    print(("ok - " if cond else "not ok - ") + desc + ("" if cond else " (%s)" % (detail,)))
    bad += not cond
am = [a for a in json.load(open(sys.argv[1])) if a["labels"].get("alertname") == "deployment-completed"]
a = am[0]
l, release = a["labels"], sys.argv[3]
check("Alertmanager holds one deployment alert", len(am) == 1, am)
check("its labels: alertname, env, severity info, action deploy, the release",
      l == {"alertname": "deployment-completed", "env": "web", "severity": "info", "action": "deploy",
            "release": release}, (l, release))
check("its summary", a["annotations"] == {"summary": "web: deploy of %s completed" % release}, a)
check("it is active", a["status"]["state"] == "active", a["status"])
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "")[:23])
held = (t(a["endsAt"]) - t(a["startsAt"])).total_seconds()
check("its endsAt is 5 minutes after its startsAt (an event resolves by itself)", abs(held - 300) < 1, held)
path, body = open(sys.argv[2]).readline().split(" ", 1)
w = json.loads(body)
check("the webhook is POSTed to its URL, query and all", path == "/slipway?secret=s3cr3t", path)
check("in Alertmanager's webhook format: version 4, firing, receiver, groupLabels, commonLabels",
      w["version"] == "4" and w["status"] == "firing" and w["receiver"] == "slipway"
      and w["groupLabels"] == {} and w["commonLabels"] == l and w["truncatedAlerts"] == 0, w)
x = w["alerts"][0]
check("  its alert: status, labels, annotations, startsAt, endsAt",
      x["status"] == "firing" and x["labels"] == l and x["annotations"] == a["annotations"]
      and t(x["startsAt"]) == t(a["startsAt"]) and t(x["endsAt"]) == t(a["endsAt"]), x)
check("  its fingerprint is Alertmanager's", x["fingerprint"] == a["fingerprint"],
      (x["fingerprint"], a["fingerprint"]))
sys.exit(1 if bad else 0)
EOF

# ---- Alertmanager calls slipway's hook ----------------------------------------------------------
# A critical alert as Prometheus would post it; Alertmanager routes it to its
# webhook receiver, which is slipway's hook with the bearer token.
"${C[@]}" -f -o /dev/null -X POST -H 'Content-Type: application/json' "$AM/api/v2/alerts" -d '[{
  "labels": {"alertname": "high-error-rate", "env": "web", "severity": "critical", "job": "slipway"},
  "annotations": {"summary": "error rate 0.12 on web", "value": "0.12"}}]'
check "Alertmanager took the critical alert" test $? = 0
am_has '"alertname":"high-error-rate"'
read -r FP STARTS < <(python3 -c '
import json, sys
a = [a for a in json.load(open(sys.argv[1])) if a["labels"]["alertname"] == "high-error-rate"][0]
print(a["fingerprint"], a["startsAt"])' "$T/am-alerts.json")
LINE="slipway serve: critical alert from Alertmanager: high-error-rate on web (fingerprint $FP, value 0.12)"
waited "Alertmanager calls the hook and slipway logs the critical callback" 15 grep -qF "$LINE" "$T/serve.err"
criticals() { grep -c 'critical alert from Alertmanager' "$T/serve.err"; }

# The same alert again (as Alertmanager re-sends a group): no second trigger.
same() {
    printf '{"version":"4","status":"firing","receiver":"slipway","alerts":[{"status":"firing",'
    printf '"labels":{"alertname":"high-error-rate","env":"web","job":"slipway","severity":"critical"},'
    printf '"annotations":{"value":"0.12"},"startsAt":"%s","fingerprint":"%s"}]}' "$STARTS" "$FP"
}
R=$("${C[@]}" -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$(same)" "$HOOK")
check "the same firing alert again is a duplicate: it triggers once" \
    test "$R" = '{"critical":0,"duplicate":1,"ignored":0}'
check "one critical callback in all" test "$(criticals)" = 1

# ---- the hook's refusals ----------------------------------------------------------------------
NEW='{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"manual","env":"web","severity":"critical"},"startsAt":"2030-01-01T00:00:00Z"}]}'
code() { "${C[@]}" -o "$T/body" -w '%{http_code}' "$@"; }
check "without a token: 401" test "$(code -X POST --data-binary "$NEW" "$HOOK")" = 401
check "the 401 says which scheme (WWW-Authenticate: Bearer)" \
    eval '"${C[@]}" -D - -o /dev/null -X POST --data-binary "$NEW" "$HOOK" | grep -qi "^WWW-Authenticate: Bearer"'
check "with a wrong token: 401" \
    test "$(code -X POST -H "Authorization: Bearer x$TOKEN" --data-binary "$NEW" "$HOOK")" = 401
check "with another scheme: 401" \
    test "$(code -X POST -H "Authorization: Basic $TOKEN" --data-binary "$NEW" "$HOOK")" = 401
check "the refused requests triggered nothing" test "$(criticals)" = 1
check "with the token, the same alert is new: the 401s changed nothing" \
    test "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$NEW" "$HOOK")" = 200
waited "and it triggers" 5 grep -q 'critical alert from Alertmanager: manual on web' "$T/serve.err"
check "malformed JSON: 400" \
    test "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary '{"version":"4",' "$HOOK")" = 400
check "  saying why" grep -q '"error":"webhook: ' "$T/body"
check "JSON that is not a webhook: 400" \
    test "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary '{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"env":7}}]}' "$HOOK")" = 400
head -c 1100000 /dev/zero | tr '\0' ' ' > "$T/big"
check "a body over 1 MiB: 413" \
    test "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary "@$T/big" "$HOOK")" = 413
check "GET on the hook: 405" test "$(code "$HOOK")" = 405
check "another hook name: 404" \
    test "$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$NEW" "$A/_slipway/hooks/other")" = 404
C2=$(code -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$NEW" "http://127.0.0.1:$P/_slipway/hooks/alertmanager")
check "not on a public listener (got $C2)" eval 'test "$C2" = 400 || test "$C2" = 405'
check "nothing more was triggered" test "$(criticals)" = 2

# ---- Alertmanager down --------------------------------------------------------------------------
kill "$AMPID"; wait "$AMPID" 2>/dev/null
mkdir -p "$T/site2"; printf '<h1>v2</h1>\n' > "$T/site2/index.html"
start=$(date +%s%N)
sw deploy "$T/site2" --env web; expect_rc "a deploy with Alertmanager down" 0
check "  returns at once (under 5 s: $(( ($(date +%s%N) - start) / 1000000 )) ms)" \
    test $(( ($(date +%s%N) - start) / 1000000 )) -lt 5000
waited "  and is served" 10 eval '"${C[@]}" "http://127.0.0.1:$P/" | grep -q v2'
waited "the notification to Alertmanager is logged as lost after its retries" 10 \
    grep -q "slipway serve: notify: lost: alertmanager $AM (1 alert: deployment-completed env=web firing) after 3 attempts: " "$T/serve.err"
waited "the webhook still hears of the deploy" 10 eval '[ "$(grep -c "\"action\":\"deploy\"" "$T/webhook.jsonl")" = 2 ]'
sw rollback web; expect_rc "a rollback with Alertmanager down" 0
waited "  is served" 10 eval '! "${C[@]}" "http://127.0.0.1:$P/" | grep -q v2'
waited "  and the webhook hears of it" 10 grep -q '"action":"rollback"' "$T/webhook.jsonl"
# The deploy's lost line matches the same pattern: wait for the second one,
# or serve is stopped while the rollback's notification is still retrying.
waited "  and its notification to Alertmanager is logged as lost" 10 eval \
    '[ "$(grep -c "notify: lost: alertmanager $AM (1 alert: deployment-completed env=web firing) after 3 attempts: " "$T/serve.err")" = 2 ]'
check "a lost line never shows the webhook's path or query" eval '! grep -q s3cr3t "$T/serve.err"'
check "one line per lost notification, no more" \
    test "$(grep -c 'notify: lost' "$T/serve.err")" = 2

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after SIGTERM" test "$rc" = 0
if [ "$_failed" != 0 ]; then sed 's/^/# serve: /' "$T/serve.err" | tail -30; fi
done_testing

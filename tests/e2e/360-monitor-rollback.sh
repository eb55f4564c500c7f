#!/usr/bin/env bash
# The automatic rollback on a real edge (docs/environments.md, "Watch and automatic rollback").
#
# The seed's incident: wrk loads a blue-green environment `stg` watched for 2 minutes; release B,
# which lost half of A's files, is switched in; the regressed 404s push the error ratio past 5 %;
# the critical rule fires after its `for` and slipway flips back to A by itself, once. The test
# prints the time from the switch to the rollback (aim: the rule's `for` + at most ~1 s of
# sampling). Then: B is rejected (switch, deploy and rollback to it need --force), the reason is
# in the history and the audit chain, and the chain verifies.
# Every window ends with a verdict (A's first deploys open windows too). Other environments in
# the same serve: `nfy` (on_critical: notify) fires and is not rolled back,
# and its window ends with a verdict that says so; `quiet` gets too little traffic and ends with
# "not enough traffic"; `ok` gets clean traffic and passes; `hk` is rolled back by a critical
# alert that arrives through the Alertmanager hook; `race` has a person's deploy holding the lock
# when its alert comes, and the watch gives way to it by name; `none` has no watch and is never
# touched.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
command -v wrk >/dev/null || { echo "# skipped: wrk is not installed"; echo "ok - skipped"; exit 0; }

new_project
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
PS=$(free_port); PSP=$(free_port); PN=$(free_port); PQ=$(free_port); PO=$(free_port)
PH=$(free_port); PX=$(free_port); PR=$(free_port); PA=$(free_port)
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\nwatch: {duration: 2m, on_critical: rollback}\n' \
    "$PS" "$PSP" >"$ENVS/stg.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 12s, on_critical: notify}\n' "$PN" >"$ENVS/nfy.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch:\n  duration: 4s\n' "$PQ" >"$ENVS/quiet.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 8s}\n' "$PO" >"$ENVS/ok.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 5m}\n' "$PH" >"$ENVS/hk.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PX" >"$ENVS/none.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 5m}\n' "$PR" >"$ENVS/race.yml"
# The seed's critical rule with a short `for`, so the test takes seconds, not minutes.
cat >"$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: high-error-rate
    environments: ["*"]
    signal: error_ratio
    op: ">"
    threshold: 0.05
    for: 3s
    min_requests: 100
    severity: critical
    summary: "error rate {{ $value }} on {{ $env }} ({{ $release }})"
EOF
TOKEN=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
printf '%s\n' "$TOKEN" >"$T/p/.slipway/am.token"
printf 'webhook_token_file: .slipway/am.token\n' >"$T/p/.slipway/monitor.yml"

# A: twenty pages; B: the first ten of them (half the site lost); A2: A and one more page.
mkdir -p "$T/a" "$T/b"
for i in $(seq 1 20); do printf 'A page %s\n' "$i" >"$T/a/p$i.html"; done
for i in $(seq 1 10); do printf 'B page %s\n' "$i" >"$T/b/p$i.html"; done
cp -r "$T/a" "$T/a2" && printf 'new\n' >"$T/a2/new.html"
sw release create "$T/a" -q; A=$out
sw release create "$T/b" -q; B=$out
sw release create "$T/a2" -q; A2=$out
check "three releases" eval '[ -n "$A" ] && [ -n "$B" ] && [ -n "$A2" ]'
for env in stg nfy quiet ok hk none race; do sw deploy "$A" --env "$env"; expect_rc "A is live on $env" 0; done

spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"

# live ENV: the live release from `slipway status --json`.
live() { "$SLIPWAY" status "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["environments"][0]["live_release"] or "")'; }
# events ENV ACTION: how many events of ACTION the history of ENV has.
events() { "$SLIPWAY" history "$1" --json | python3 -c "import json,sys; print(sum(e['action']=='$2' for e in json.load(sys.stdin)['events']))"; }
# last_message ENV ACTION: the message of ENV's newest event of ACTION.
last_message() { "$SLIPWAY" history "$1" --json | python3 -c "import json,sys; m=[e for e in json.load(sys.stdin)['events'] if e['action']=='$2']; print(m[-1]['message'] if m else '')"; }
# load PORT SECONDS: wrk over every page of A, in the background (pid in $LOADPID).
cat >"$T/pages.lua" <<'EOF'
local i = 0
request = function()
  i = i % 20 + 1
  return wrk.format("GET", "/p" .. i .. ".html")
end
EOF
load() { wrk -t1 -c4 -d"$2"s -s "$T/pages.lua" "http://127.0.0.1:$1/" >"$T/wrk.$1" 2>&1 & LOADPID=$!; _pids+=($LOADPID); }

# ---- the incident: B switched in under load on stg ---------------------------------------------
load "$PS" 40
sw deploy "$B" --env stg; expect_rc "B goes to stg's idle slot" 0
sleep 1 # A is judged under load before the switch
sw switch stg; expect_rc "B is switched in under load" 0
wait_for "slipway rolls stg back to A by itself" 20 eval '[ "$(live stg)" = "$A" ]'
# The time from the switch to the rollback, as the audit log recorded both (the test's own
# polling is not in it): the rule's for (3 s) plus the sampling.
took=$("$SLIPWAY" history stg --json | /usr/bin/python3 -c '
import json, sys, datetime
ev = json.load(sys.stdin)["events"]
t = lambda e: datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
sw = [e for e in ev if e["action"] == "switch"][-1]
rb = [e for e in ev if e["action"] == "rollback"][-1]
print(int((t(rb) - t(sw)).total_seconds() * 1000))' 2>/dev/null)
echo "# switch to rollback: ${took:-?} ms (the rule's for: 3s; the seed's figure: ~3 minutes)"
check "  within the rule's for + 3 s of sampling" eval '[ -n "$took" ] && [ "$took" -lt 6000 ]'
check "  said on serve's log" grep -q "watch: stg: rolled back $B -> $A, .* after it went live: high-error-rate (critical, from slipway): error_ratio" "$T/serve.err"
check "  one rollback event" test "$(events stg rollback)" = 1
msg=$(last_message stg rollback)
check "  its message is the reason: rule, value, condition ($msg)" \
    eval '[[ "$msg" == "automatic rollback: high-error-rate (critical, from slipway): error_ratio 0."*" > 0.05 for 3s over "*" requests" ]]'
sw history stg --json
check "  by slipway-monitor@host" eval '[ "$(json "j[\"events\"][-1][\"actor\"]")" = "slipway-monitor@$(hostname)" ]'
sw history stg --verify; expect_rc "the audit chain verifies" 0
# The windows of nfy, quiet and ok (12, 4 and 8 s) open now and run while the
# sections up to "no watch" below do; their verdicts are checked after those.
t_sleep=$(date +%s%N)
sw deploy "$B" --env nfy; expect_rc "B goes live on nfy" 0
load "$PN" 8
sw deploy "$B" --env quiet; expect_rc "B goes live on quiet (no traffic)" 0
sw deploy "$A2" --env ok; expect_rc "A2 goes live on ok" 0
load "$PO" 6
# The alert is still firing on the load (4 s since the check above): never a second rollback.
sleep "$(awk -v t="$(( $(date +%s%N) - t_sleep ))" 'BEGIN { s = 4 - t / 1e9; print s > 0 ? s : 0 }')"
check "still one rollback (no loop) after the alert kept firing" test "$(events stg rollback)" = 1
check "A is still live" test "$(live stg)" = "$A"
kill "$LOADPID" 2>/dev/null; wait "$LOADPID" 2>/dev/null

# ---- B is rejected on stg -----------------------------------------------------------------------
sw switch stg
expect_err "switching back to B is refused: rejected, with the reason and --force" 1 \
    "release $B was rejected on stg at .* \(high-error-rate .*\); nothing was changed. To switch it anyway, add --force"
sw deploy "$B" --env stg --switch
expect_err "deploying B again is refused" 1 "release $B was rejected on stg .*add --force"
sw status stg --json
check "the state lists the rejection" eval '[ "$(json "j[\"environments\"][0][\"live_release\"]")" = "$A" ]'
check "  in the state document" grep -q "\"release\": \"$B\"" "$T/p/.slipway/data/envs/stg/state.json"
sw switch stg --force; expect_rc "switch --force makes B live again" 0
check "  and takes it off the list" eval '! grep -q "\"rejected\"" "$T/p/.slipway/data/envs/stg/state.json"'
sw rollback stg; expect_rc "a person's rollback" 0
check "  is not rejected by anyone" eval '! grep -q "\"rejected\"" "$T/p/.slipway/data/envs/stg/state.json"'

# ---- through the Alertmanager hook ---------------------------------------------------------------
sw deploy "$B" --env hk; expect_rc "B goes live on hk" 0
body='{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","env":"hk","severity":"critical"},"annotations":{"value":"0.31"},"startsAt":"2030-01-01T00:00:00Z"}]}'
c=$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$body" \
    "http://127.0.0.1:$PA/_slipway/hooks/alertmanager")
check "the hook takes a critical alert for hk (got $c)" test "$c" = 200
wait_for "hk is rolled back to A" 10 eval '[ "$(live hk)" = "$A" ]'
check "  the reason names Alertmanager's alert and value" \
    eval '[[ "$(last_message hk rollback)" == "automatic rollback: HighErrorRate (critical, from alertmanager): value 0.31, fingerprint "* ]]'
c=$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    --data-binary "${body/2030-01-01T00:00:00Z/2030-01-01T00:01:00Z}" "http://127.0.0.1:$PA/_slipway/hooks/alertmanager")
wait_for "a second alert for hk is judged" 10 grep -q "watch: critical alert HighErrorRate on hk .*no watch window is open on hk: its last change was a rollback; nothing rolled back" "$T/serve.err"
check "  and rolls nothing back" test "$(events hk rollback)" = 1

# ---- a person's change holds the lease: the rollback gives way to it ---------------------------
sw deploy "$B" --env race; expect_rc "B goes live on race" 0
SLIPWAY_TEST_DEPLOY_HOLD_FILE=$T/go "$SLIPWAY" deploy "$A2" --env race >"$T/person.out" 2>&1 &
PERSON=$!; _pids+=($PERSON)
wait_for "a person's deploy of A2 holds race's lease (the test hook holds it)" 10 test -f "$T/go.held"
check "  race's state carries the person's lease" grep -q '"lease"' "$T/p/.slipway/data/envs/race/state.json"
body='{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","env":"race","severity":"critical"},"startsAt":"2030-01-01T00:00:00Z"}]}'
"${C[@]}" -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$body" "http://127.0.0.1:$PA/_slipway/hooks/alertmanager"
sleep 1 # the watch finds the lease taken and waits for it
touch "$T/go"; wait "$PERSON"; rc=$?
check "the person's deploy finishes (exit $rc)" test "$rc" = 0
wait_for "the watch gives way to it, by name" 15 grep -q "watch: race: the rollback of $B gave way to a newer change (deploy of $A2 by tester)" "$T/serve.err"
check "  A2 is live, nothing was rolled back" eval '[ "$(live race)" = "$A2" ] && [ "$(events race rollback)" = 0 ]'

# ---- no watch: never touched ---------------------------------------------------------------------
sw deploy "$B" --env none; expect_rc "B goes live on none" 0
body='{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"X","env":"none","severity":"critical"},"startsAt":"2030-01-01T00:00:00Z"}]}'
"${C[@]}" -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$body" "http://127.0.0.1:$PA/_slipway/hooks/alertmanager"
wait_for "a critical alert on an unwatched environment is logged" 10 grep -q "watch: critical alert X on none (.*): none has no watch; nothing rolled back" "$T/serve.err"
check "  and B stays live" test "$(live none)" = "$B"

# ---- notify only: nfy fires and is not rolled back ----------------------------------------------
# (B went live on nfy, under load, above.)
wait_for "nfy's critical alert is logged as notify-only" 20 \
    grep -q "watch: critical alert high-error-rate on nfy (.*): $B is watched on nfy with on_critical: notify; nothing rolled back" "$T/serve.err"
check "  B stays live on nfy" test "$(live nfy)" = "$B"
wait_for "nfy's window ends with a verdict that says the alert fired" 25 \
    eval '[[ "$(last_message nfy verdict)" == "watch of $B ended: "* ]]'
check "  (the verdict's message)" eval '[[ "$(last_message nfy verdict)" == "watch of $B ended: critical alerts: "*" fired in the 12s watch of $B (on_critical: notify)" ]]'
check "  and no rollback" test "$(events nfy rollback)" = 0

# ---- not enough traffic; passed --------------------------------------------------------------------
# (B went live on quiet, with no traffic, and A2 on ok, under clean load, above.)
wait_for "quiet's window ends: not enough traffic" 20 eval '[[ "$(last_message quiet verdict)" == "watch of $B ended: "* ]]'
check "  the verdict names the rule and min_requests ($(last_message quiet verdict))" \
    eval '[[ "$(last_message quiet verdict)" == "watch of $B ended: not enough traffic: high-error-rate had no verdict on $B in its 4s watch ("*" requests in the last window, min_requests 100)" ]]'
sw history quiet
check "  and \`slipway history\` shows it" eval 'printf "%s" "$out" | grep -q "verdict.*not enough traffic"'
wait_for "ok's window ends: passed" 20 eval '[[ "$(last_message ok verdict)" == "watch of $A2 ended: "* ]]'
check "  the verdict ($(last_message ok verdict))" \
    eval '[ "$(last_message ok verdict)" = "watch of $A2 ended: passed: $A2 was watched for 8s and no critical alert fired" ]'
check "the verdicts changed no release" eval '[ "$(live quiet)" = "$B" ] && [ "$(live ok)" = "$A2" ]'

sw history stg --verify; expect_rc "the audit chain still verifies" 0
kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -q "Sanitizer\|runtime error" "$T/serve.err"'
if [ "$_failed" != 0 ]; then sed "s/^/# serve: /" "$T/serve.err" | tail -40; fi
done_testing

#!/usr/bin/env bash
# slipway/watch, the pipeline's "Monitor" stage (docs/pipelines.md, "Delivery steps"), run by
# `slipway serve --runner` whose monitor records the watch windows' ends and rolls back:
# (a) a release deployed by a run and watched with no traffic: the step waits out the window and
#     passes with the monitor's verdict "not enough traffic" (outputs verdict and message);
# (b) a release that a critical alert (through the Alertmanager hook) rolls back during the step:
#     the step fails with the rollback's reason, the run fails, the step after it is skipped;
# (c) bad input: no env, an unknown environment, a bad duration, an environment without a watch
#     and no duration given: each fails on one line naming the step, before any waiting.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

# ---- the server's project: quiet (watched 4s), hk (watched 5m), plain (no watch) ------------------
mkdir -p "$T/p" "$T/v1"
"$SLIPWAY" init -q "$T/p"
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
PQ=$(free_port); PH=$(free_port); PX=$(free_port); PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 4s, on_critical: rollback}\n' "$PQ" >"$ENVS/quiet.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 5m, on_critical: rollback}\n' "$PH" >"$ENVS/hk.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PX" >"$ENVS/plain.yml"
TOKEN=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
printf '%s\n' "$TOKEN" >"$T/p/.slipway/am.token"
printf 'webhook_token_file: .slipway/am.token\n' >"$T/p/.slipway/monitor.yml"
printf '<!doctype html><h1>page v1</h1>\n' >"$T/v1/index.html"
cd "$T/p"
sw --json deploy "$T/v1" --env hk; expect_rc "v1 is live on hk before the run (what a rollback returns to)" 0
v1=$(json 'j["release"]')

# ---- the repository and its workflows ------------------------------------------------------------
mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main .
mkdir -p .github/workflows site
printf '<!doctype html><h1>page v2</h1>\n' >site/index.html
# watch ENV [WITH-LINES...]: a workflow that deploys site/ to ENV and watches it
wf() {
    local name=$1 env=$2; shift 2
    {
        printf 'name: %s\non: workflow_dispatch\njobs:\n  ship:\n    runs-on: ubuntu-latest\n' "$name"
        printf '    outputs:\n      release: ${{ steps.deploy.outputs.release }}\n'
        printf '      verdict: ${{ steps.watch.outputs.verdict }}\n      message: ${{ steps.watch.outputs.message }}\n'
        printf '      watched: ${{ steps.watch.outputs.release }}\n'
        printf '    steps:\n      - uses: actions/checkout@v4\n'
        printf '      - id: deploy\n        uses: slipway/deploy@v1\n        with:\n          env: %s\n          path: site\n' "$env"
        printf '      - id: watch\n        name: Monitor\n        uses: slipway/watch@v1\n        with:\n'
        local l; for l in "$@"; do printf '          %s\n' "$l"; done
        printf '      - name: After\n        run: echo "after the watch, ${{ steps.watch.outputs.verdict }}"\n'
    } >".github/workflows/$name.yml"
}
wf quiet quiet "env: quiet" 'release: ${{ steps.deploy.outputs.release }}'
wf hk hk "env: hk"
wf no-env quiet "duration: 5s"
wf unknown-env quiet "env: nosuch"
wf bad-duration quiet "env: quiet" "duration: soon"
wf long-duration quiet "env: quiet" "duration: 8d"
wf no-watch plain "env: plain"
wf no-release quiet "env: quiet" "release: r-nosuch"
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm site
realpath "$T/repo" >>"$T/p/.slipway/repositories"

sw workflow check .github/workflows/quiet.yml
check "workflow check: slipway/watch loads as a supported step" eval '[ "$rc" = 0 ]'
printf 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: slipway/teleport@v1\n' >"$T/tele.yml"
sw workflow check "$T/tele.yml"
check "workflow check: slipway/watch is among the steps slipway runs" eval '[ "$rc" = 1 ] && grep -q "slipway/scan, slipway/watch" <<<"$out$errout"'

spawn "$SLIPWAY" --project "$T/p" serve --admin "127.0.0.1:$PA" --workers 1 --runner 2 --runner-poll 200ms \
    >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up, its runner waiting" 30 grep -q "waiting for runs" "$T/serve.err"
wait_for "serve's admin is ready" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"

rec() { echo "$T/p/.slipway/data/runs/$1/run.json"; }
ended() { grep -qE '"status":"(succeeded|failed|cancelled)"' "$(rec "$1")"; }
queue() { sw --project "$T/p" workflow run "$1" --repo "$T/repo" --ref refs/heads/main; RUN=$(head -1 <<<"$out"); }
logof() { "$SLIPWAY" --project "$T/p" run view "$1" --log >"$T/$1.log"; }
view() { "$SLIPWAY" --project "$T/p" run view "$1" --json >"$T/$1.json"; }
rq() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$T/$1.json"; }
live() { "$SLIPWAY" --project "$T/p" status "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["environments"][0]["live_release"] or "")'; }
last_message() { "$SLIPWAY" --project "$T/p" history "$1" --json | python3 -c "import json,sys; m=[e for e in json.load(sys.stdin)['events'] if e['action']=='$2']; print(m[-1]['message'] if m else '')"; }

# ---- (a) a quiet release: the window waited out, the verdict "not enough traffic" -------------------
queue quiet; QR=$RUN
check "the quiet run is queued" eval '[[ "$QR" == run-* ]]'
t0=$(date +%s)
wait_for "the quiet run ends" 60 ended "$QR"
took=$(( $(date +%s) - t0 ))
view "$QR"; logof "$QR"
R=$(rq "$QR" "j['jobs'][0]['outputs']['release']")
check "the quiet run succeeded, every step too" test "$(rq "$QR" "(j['status'], sorted(set(s['conclusion'] for s in j['jobs'][0]['steps'])))")" = "('succeeded', ['success'])"
check "it took the window (4s) and no more than the verdict's wait after it (${took}s)" eval '[ "$took" -ge 4 ] && [ "$took" -lt 30 ]'
check "the log says what it waits for and until when" \
    grep -qE "Watching $R on quiet for 4s from [0-9T:.-]+Z, until [0-9T:.-]+Z: the step fails if it is rolled back or replaced, and passes with the verdict slipway serve records when quiet's watch \(4s\) ends" "$T/$QR.log"
check "the verdict is the monitor's: not enough traffic, as a warning" \
    grep -qE "Verdict: not-enough-traffic \(watch of $R ended: not enough traffic: high-error-rate had no verdict on $R in its 4s watch" "$T/$QR.log"
check "outputs: verdict, message, the release watched" test "$(rq "$QR" "(j['jobs'][0]['outputs']['verdict'], j['jobs'][0]['outputs']['message'].startswith('watch of $R ended: not enough traffic: '), j['jobs'][0]['outputs']['watched'])")" = "('not-enough-traffic', True, '$R')"
check "the step after it saw the verdict" grep -q "after the watch, not-enough-traffic" "$T/$QR.log"
check "history holds the monitor's verdict" eval '[[ "$(last_message quiet verdict)" == "watch of $R ended: not enough traffic: "* ]]'
check "the release is still live on quiet" test "$(live quiet)" = "$R"

# ---- (b) rolled back by the monitor during the step ---------------------------------------------------
queue hk; HR=$RUN
wait_for "the hk run's Monitor step is watching" 60 eval '"$SLIPWAY" --project "$T/p" run view "$HR" --log 2>/dev/null | grep -q "Watching r-.* on hk for 5m"'
B=$(live hk)
check "the run's release is live on hk" eval '[ -n "$B" ] && [ "$B" != "$v1" ]'
body='{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighErrorRate","env":"hk","severity":"critical"},"annotations":{"value":"0.42"},"startsAt":"2030-01-01T00:00:00Z"}]}'
c=$("${C[@]}" -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" --data-binary "$body" \
    "http://127.0.0.1:$PA/_slipway/hooks/alertmanager")
check "a critical alert for hk through the hook (got $c)" test "$c" = 200
wait_for "the monitor rolls hk back to v1" 15 eval '[ "$(live hk)" = "$v1" ]'
wait_for "the hk run ends" 15 ended "$HR"
view "$HR"; logof "$HR"
check "the run failed at the Monitor step; the step after it skipped" test "$(rq "$HR" "(j['status'], [(s['name'], s['conclusion']) for s in j['jobs'][0]['steps']][-2:])")" = "('failed', [('Monitor', 'failure'), ('After', 'skipped')])"
check "the step fails with the rollback's reason" \
    grep -qE "slipway/watch@v1: $B was rolled back on hk to $v1 by slipway-monitor@[^ ]+ at [0-9T:.-]+Z: automatic rollback: HighErrorRate \(critical, from alertmanager\): value 0.42" "$T/$HR.log"
check "outputs: verdict rolled-back, the reason as message" test "$(rq "$HR" "(j['jobs'][0]['outputs']['verdict'], 'automatic rollback: HighErrorRate' in j['jobs'][0]['outputs']['message'])")" = "('rolled-back', True)"

# ---- (c) bad input -------------------------------------------------------------------------------
bad() { # bad WORKFLOW DESC PATTERN
    queue "$1"; id=$RUN pat=$3
    wait_for "the $1 run ends" 60 ended "$id"
    logof "$id"; view "$id"
    check "$2" eval '[ "$(rq "$id" "(j[\"status\"], j[\"jobs\"][0][\"steps\"][-2][\"conclusion\"])")" = "('"'failed', 'failure'"')" ] && grep -qE "$pat" "$T/$id.log" && [ "$(grep -c "slipway/watch@v1: " "$T/$id.log")" = 1 ]'
}
bad no-env "no env: one line naming the step" "slipway/watch@v1: env: required \(the environment to act on\)"
bad unknown-env "an unknown environment: one line listing the server's" "slipway/watch@v1: unknown environment 'nosuch' \(no $T/p/.slipway/environments/nosuch.yml; known: hk, plain, quiet\)"
bad bad-duration "duration: soon: one line" "slipway/watch@v1: duration: expected a duration from 1s to 7d such as 30s or 10m, got 'soon'"
bad long-duration "duration: 8d: one line" "slipway/watch@v1: duration: expected a duration from 1s to 7d such as 30s or 10m, got '8d'"
bad no-watch "an environment without watch: and no duration: one line saying what to give" "slipway/watch@v1: environment plain has no watch \(no watch: key in .*plain.yml\): give the step a duration \(with: duration: 10m\), or the environment watch: \{duration: 10m, on_critical: rollback\}"
bad no-release "a release that does not exist" "slipway/watch@v1: .*r-nosuch"

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 on SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
if [ "$_failed" != 0 ]; then tail -30 "$T/serve.err" | sed 's/^/# serve: /'; fi
done_testing

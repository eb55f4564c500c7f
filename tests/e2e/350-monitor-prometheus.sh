#!/usr/bin/env bash
# slipway between a real Prometheus and a real Alertmanager (Debian's prometheus and
# prometheus-alertmanager, started here on loopback with their own configuration and
# storage in the test directory, stopped by their PIDs), as a team that alerts from
# Prometheus runs it:
#
# (a) Prometheus scrapes serve's admin address every second. wrk sends a known spread of
#     latencies to one environment (SLIPWAY_TEST_EDGE_DELAY holds one request in twenty
#     105 to 150 ms); histogram_quantile(0.99, ...) of the classic buckets, from Prometheus's
#     HTTP API, and slipway's own p99 (/_slipway/latency, from its fine histogram) lie in the
#     same classic bucket. Prometheus's first sample of the series is 0 (the test waits for
#     it), so rate() scales every bucket alike and the quantile is that of the counts.
# (b) Prometheus evaluates contrib/prometheus/slipway.rules.yml (copied with `for:` cut to
#     2 s). A release that lost a file the release before it served is deployed and the lost
#     path requested (regressed 404s, as in 305): SlipwayHighErrorRate fires in Prometheus's
#     /api/v1/alerts, Prometheus sends it to Alertmanager, and Alertmanager's webhook receiver
#     (slipway's hook, with its bearer token in credentials_file, as in 340) calls slipway,
#     which logs the critical alert once, though Alertmanager sends the group again and again.
#     slipway's own rules are only "deployment completed" here (.slipway/alerts.yml), so the
#     only critical alert is the one that came through Prometheus. web is watched
#     (on_critical: rollback): that alert rolls B back to A by itself, the history's rollback
#     names it ("from alertmanager", its fingerprint), B is rejected, y.html answers again.
# (c) slipway's own alerts for that deploy and that rollback (deployment-completed) are in
#     Alertmanager's GET /api/v2/alerts.
. "$(dirname "$0")/lib.sh"
PROM_BIN=${PROM_BIN:-/usr/bin/prometheus}
AM_BIN=${AM_BIN:-/usr/bin/prometheus-alertmanager}
C=(curl -s --max-time 10)
# waited DESC SECONDS CMD...: wait_for, and an "ok" line when it came.
waited() { wait_for "$@" && ok "$1"; }

for bin in "$PROM_BIN" "$AM_BIN" "$(command -v wrk)"; do
    if [ ! -x "$bin" ]; then
        echo "ok - skipped: needs ${bin:-wrk} (Debian packages prometheus, prometheus-alertmanager, wrk; scripts/install-deps) # SKIP"
        done_testing
    fi
done

"$SLIPWAY" init -q "$T/p"
cd "$T/p" || exit 1
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
P=$(free_port); PW=$(free_port); PA=$(free_port); PAM=$(free_port); PPR=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" >"$ENVS/lat.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nwatch: {duration: 10m, on_critical: rollback}\n' "$PW" >"$ENVS/web.yml"
A=http://127.0.0.1:$PA
AM=http://127.0.0.1:$PAM
PROM=http://127.0.0.1:$PPR
TOKEN=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
printf '%s\n' "$TOKEN" >"$T/p/.slipway/am.token"

# ---- Alertmanager, with slipway's hook as its webhook receiver -------------------------------
# One group for every alert; repeat_interval 1s makes Alertmanager send the group again
# while it fires, so the hook hears the same critical alert again and again.
cat >"$T/am.yml" <<EOF
route:
  receiver: slipway
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1s
receivers:
  - name: slipway
    webhook_configs:
      - url: $A/_slipway/hooks/alertmanager
        http_config:
          authorization:
            type: Bearer
            credentials_file: $T/p/.slipway/am.token
EOF
# --cluster.listen-address= (empty) turns clustering off: no gossip port, no peers.
spawn "$AM_BIN" --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --web.listen-address="127.0.0.1:$PAM" --cluster.listen-address= >"$T/am.log" 2>&1

# ---- Prometheus: scrapes serve every second, evaluates the rules every second ----------------
# Both start before serve, so that their start overlaps the deploys; until serve is up,
# Prometheus's up is 0.
sed 's/^\( *for:\) 1m$/\1 2s/' "$ROOT/contrib/prometheus/slipway.rules.yml" >"$T/slipway.rules.yml"
check "the copy of the rules fires after 2 s (every for: replaced, nothing else)" eval '
    ! grep -q "^ *for: 1m" "$T/slipway.rules.yml" && [ "$(grep -c "^ *for: 2s$" "$T/slipway.rules.yml")" = 2 ] &&
    [ "$(diff "$ROOT/contrib/prometheus/slipway.rules.yml" "$T/slipway.rules.yml" | grep -c "^>")" = 2 ]'
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: ["$T/slipway.rules.yml"]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$PAM"]
scrape_configs:
  - job_name: slipway
    metrics_path: /_slipway/metrics
    static_configs:
      - targets: ["127.0.0.1:$PA"]
EOF
spawn "$PROM_BIN" --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PPR" >"$T/prom.log" 2>&1

# ---- slipway: its own rules are only "deployment completed", sent to Alertmanager ---------------
cat >"$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: deployment-completed
    signal: deployment
    severity: info
EOF
cat >"$T/p/.slipway/monitor.yml" <<EOF
notify:
  alertmanager: ["$AM"]
  retries: 20
  backoff: 100ms
  backoff_max: 500ms
  timeout: 2s
webhook_token_file: .slipway/am.token
EOF
# lat: a page not held, and ten held 105 to 150 ms. p99 is about the 80th percentile of the
# held ones, 0.14 s: held requests are never under the bucket's floor (0.1 s), and a load that
# adds 100 ms to over one request in a hundred would be needed to reach its ceiling (0.25 s).
# web: A has x and y; B lost y.
mkdir -p "$T/lat/d" "$T/a" "$T/b"
printf 'fast\n' >"$T/lat/index.html"
for k in $(seq 0 9); do printf 'held %s\n' "$k" >"$T/lat/d/$k.html"; done
DELAY=$(for k in $(seq 0 9); do printf '/d/%s.html=%s,' "$k" $((105000 + k * 5000)); done)
DELAY=${DELAY%,}
for f in index x y; do printf 'A %s\n' "$f" >"$T/a/$f.html"; done
for f in index x; do printf 'B %s\n' "$f" >"$T/b/$f.html"; done
sw deploy "$T/lat" --env lat; expect_rc "deploy the latency site" 0
sw deploy "$T/a" --env web; expect_rc "deploy A to web" 0
# live ENV: the live release of ENV (slipway status --json).
live() { "$SLIPWAY" status "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["environments"][0]["live_release"] or "")'; }
RA=$(live web)
sw release create "$T/b" -q; RB=$out

# Workers block while a response is held: enough of them that a held request delays only
# its own connection.
SLIPWAY_TEST_EDGE_DELAY=$DELAY spawn "$SLIPWAY" serve --workers 16 --admin "127.0.0.1:$PA" \
    >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "$A/_slipway/ready" || done_testing
wait_for "Alertmanager is up" 30 "${C[@]}" -f -o /dev/null "$AM/-/ready" ||
    { sed 's/^/# am: /' "$T/am.log" | tail -20; done_testing; }
wait_for "Prometheus is up" 30 "${C[@]}" -f -o /dev/null "$PROM/-/ready" ||
    { sed 's/^/# prometheus: /' "$T/prom.log" | tail -20; done_testing; }

# promq QUERY: the value of an instant query's first sample, or nothing. (No python in what
# is polled: on a loaded machine its start alone can take a second.)
promq() {
    "${C[@]}" -G "$PROM/api/v1/query" --data-urlencode "query=$1" |
        grep -o '"value":\[[^]]*\]' | head -1 | sed 's/.*,"\(.*\)"\]$/\1/'
}
# lat FIELD: a field of /_slipway/latency for lat (a flat JSON object).
lat() { "${C[@]}" "$A/_slipway/latency?env=lat&slot=direct" | grep -o "\"$1\":[^,}]*" | cut -d: -f2 | tr -d '"'; }
COUNT='slipway_request_duration_seconds_count{env="lat",slot="direct"}'
waited "Prometheus has scraped serve: up, and lat's count is 0" 30 \
    eval '[ "$(promq "up{job=\"slipway\"}")" = 1 ] && [ "$(promq "$COUNT")" = 0 ]'

# ---- (a) histogram_quantile from Prometheus and slipway's own p99 --------------------------------
cat >"$T/mix.lua" <<'EOF'
-- One request in twenty to a held page (each of the ten in turn), the rest to the page
-- that is not held: p99 falls among the held ones, well inside the bucket (0.1, 0.25].
local n = 0
function request()
    n = n + 1
    if n % 20 == 0 then return wrk.format("GET", string.format("/d/%d.html", (n / 20) % 10)) end
    return wrk.format("GET", "/index.html")
end
EOF
spawn wrk -t1 -c8 -d60s --timeout 5s -s "$T/mix.lua" "http://127.0.0.1:$P/" >"$T/wrk.out" 2>&1
WRK=$!
enough() { [ "$(lat requests)" -ge 1000 ]; }
wait_for "lat has served 1000 requests" 30 enough
kill -INT "$WRK" 2>/dev/null; wait "$WRK" 2>/dev/null
# A response is counted once written, a moment after wrk has it: wait for the count to settle.
settled() { local a; a=$(lat requests); sleep 0.3; [ "$a" = "$(lat requests)" ]; }
wait_for "lat's count settles" 10 settled
N=$(lat requests); MINE=$(lat p99_us)
waited "Prometheus has scraped the last of lat's $N requests" 15 eval '[ "$(promq "$COUNT")" = "$N" ]'
# The window reaches back before Prometheus started: its first sample, 0, is in it.
Q='histogram_quantile(0.99, sum by (le) (rate(slipway_request_duration_seconds_bucket{env="lat"}[5m])))'
THEIRS=$(promq "$Q")
echo "# $N requests; p99: Prometheus's histogram_quantile $THEIRS s, slipway's own $MINE us"
# bucket SECONDS: the classic bucket SECONDS falls in, as "LOWER UPPER" (Prometheus's
# (LOWER, UPPER]); nothing for a value that is not a number.
bucket() {
    awk -v v="$1" 'BEGIN {
        if (v !~ /^[0-9.eE+-]+$/) exit
        n = split("0 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10", b, " ")
        for (i = 2; i <= n; i++) if (v + 0 <= b[i] + 0) { print b[i - 1], b[i]; exit }
        print b[n], "+Inf" }'
}
BT=$(bucket "$THEIRS"); BM=$(bucket "$(awk -v u="$MINE" 'BEGIN { if (u ~ /^[0-9]+$/) printf "%.6f", u / 1e6 }')")
check "Prometheus's p99 ($THEIRS s) and slipway's ($MINE us) lie in the same classic bucket ($BM)" \
    test -n "$BT" -a "$BT" = "$BM"
# Not a degenerate agreement: p99 is among the held requests, in a bucket of finite bounds
# ((0.1, 0.25] unless a heavily loaded machine stretched more than one request in a hundred).
check "  a bucket the held requests are in, not the fast ones' nor +Inf" \
    eval 'case "$BM" in ".1 .25" | ".25 .5" | ".5 1" | "1 2.5" | "2.5 5" | "5 10") true ;; *) false ;; esac'

# ---- (b) the PromQL error rule fires, through Alertmanager to slipway's hook ----------------------
sw deploy "$RB" --env web; expect_rc "deploy B, which lost y.html, to web" 0
wait_for "web: B is live" 10 eval '"${C[@]}" "$A/_slipway/latency?env=web&slot=direct" | grep -q "\"release\":\"$RB\""'
cat >"$T/web.lua" <<'EOF'
-- One request in four is for y.html, which A served and B lost: 25 % regressed 404s, at a
-- gentle rate (each connection waits 20 ms between requests).
local n = 0
function request()
    n = n + 1
    return wrk.format("GET", n % 4 == 0 and "/y.html" or "/x.html")
end
function delay() return 20 end
EOF
spawn wrk -t1 -c2 -d60s --timeout 5s -s "$T/web.lua" "http://127.0.0.1:$PW/" >"$T/wrk-web.out" 2>&1
WRKW=$!
# Prometheus's alerts (GET /api/v1/alerts) into $T/prom-alerts.json; true when
# SlipwayHighErrorRate fires, the only alert that can (lat has no errors and is fast at p95).
prom_fires() {
    "${C[@]}" -f -o "$T/prom-alerts.json" "$PROM/api/v1/alerts" &&
        grep -q '"alertname":"SlipwayHighErrorRate".*"state":"firing"' "$T/prom-alerts.json"
}
waited "SlipwayHighErrorRate fires in Prometheus's /api/v1/alerts" 30 prom_fires
check "  for web's slot, critical (its labels: $(grep -o '"labels":{[^}]*}' "$T/prom-alerts.json"))" \
    test "$(grep -o '"labels":{[^}]*}' "$T/prom-alerts.json")" = \
    '"labels":{"alertname":"SlipwayHighErrorRate","env":"web","rule":"high-error-rate","severity":"critical","slot":"direct"}'
V=$(grep -o '"value":"[^"]*"' "$T/prom-alerts.json" | cut -d'"' -f4)
check "  its value ($V) is over 0.05" awk -v v="$V" 'BEGIN { exit !(v ~ /^[0-9.eE+-]+$/ && v > 0.05 && v <= 1) }'
# am_has PATTERN: Alertmanager's alerts (GET /api/v2/alerts, in $T/am-alerts.json) match PATTERN.
am_has() { "${C[@]}" -f -o "$T/am-alerts.json" "$AM/api/v2/alerts" && grep -q "$1" "$T/am-alerts.json"; }
waited "Prometheus sent it to Alertmanager" 15 am_has '"alertname":"SlipwayHighErrorRate"'
FP=$(python3 -c '
import json, sys
print([a for a in json.load(open(sys.argv[1])) if a["labels"]["alertname"] == "SlipwayHighErrorRate"][0]["fingerprint"])' "$T/am-alerts.json")
LINE="slipway serve: critical alert from Alertmanager: SlipwayHighErrorRate on web (fingerprint $FP, value none)"
waited "Alertmanager calls slipway's hook and slipway logs the critical alert" 15 grep -qF "$LINE" "$T/serve.err"

# ---- the rollback: Prometheus's alert, through Alertmanager's webhook, rolls web back to A -------
t_alert=$(date +%s%N)
waited "slipway rolls web back to A by itself" 15 eval '[ "$(live web)" = "$RA" ]'
echo "# the hook's alert seen logged to A seen live (slipway status, polled): $(( ($(date +%s%N) - t_alert) / 1000000 )) ms"
check "  said on serve's log" \
    grep -qF "watch: web: rolled back $RB -> $RA, " "$T/serve.err"
sw history web --json
check "  one rollback in web's history" \
    test "$(json 'sum(e["action"] == "rollback" for e in j["events"])')" = 1
MSG=$(json '[e for e in j["events"] if e["action"] == "rollback"][-1]["message"]')
check "  its reason is Alertmanager's alert, with its fingerprint ($MSG)" \
    test "$MSG" = "automatic rollback: SlipwayHighErrorRate (critical, from alertmanager): value none, fingerprint $FP"
check "  by slipway-monitor@host" \
    test "$(json '[e for e in j["events"] if e["action"] == "rollback"][-1]["actor"]')" = "slipway-monitor@$(hostname)"
wait_for "y.html answers 200 on web again" 10 eval '[ "$("${C[@]}" -o /dev/null -w "%{http_code}" "http://127.0.0.1:$PW/y.html")" = 200 ]' &&
    ok "y.html answers 200 on web again"
sw deploy "$RB" --env web
expect_err "B is rejected: deploying it again needs --force" 1 "release $RB was rejected on web .*SlipwayHighErrorRate.*add --force"
sw history web --verify; expect_rc "the audit chain verifies" 0

# Once: Alertmanager sends the group again every second (repeat_interval) while it fires;
# after two more deliveries to the hook, slipway has still logged the alert once.
webhooks() {
    "${C[@]}" "$AM/metrics" |
        awk '/^alertmanager_notifications_total\{integration="webhook"/ { s += $NF } END { print s + 0 }'
}
N0=$(webhooks)
waited "Alertmanager calls the hook twice more" 20 eval '[ "$(webhooks)" -ge $((N0 + 2)) ]'
check "slipway logged the critical alert once" test "$(grep -c 'critical alert from Alertmanager' "$T/serve.err")" = 1
check "none of Alertmanager's deliveries to the hook failed" \
    eval '! "${C[@]}" "$AM/metrics" | grep -qE "^alertmanager_notifications_failed_total\{integration=\"webhook\"[^ ]*\} [1-9]"'
kill -INT "$WRKW" 2>/dev/null; wait "$WRKW" 2>/dev/null

# ---- (c) slipway's own alerts for the deploy of B and the rollback, in Alertmanager ----------------
am_deployments() { am_has '"alertname":"deployment-completed"' && [ "$(grep -o '"alertname":"deployment-completed"' "$T/am-alerts.json" | wc -l)" -ge 2 ]; }
waited "slipway's deployment-completed alerts are in Alertmanager's GET /api/v2/alerts" 15 am_deployments
python3 - "$T/am-alerts.json" "$RB" "$RA" <<'EOF' || _failed=1
import json, sys
a = [a for a in json.load(open(sys.argv[1])) if a["labels"]["alertname"] == "deployment-completed"]
for action, release in (("deploy", sys.argv[2]), ("rollback", sys.argv[3])):
    want = {"alertname": "deployment-completed", "env": "web", "severity": "info", "action": action, "release": release}
    m = [x for x in a if x["labels"].get("action") == action]
    ok = len(m) == 1 and m[0]["labels"] == want and m[0]["status"]["state"] == "active"
    print("%s -   one, active, for the %s to web (env, severity info, action, release)%s"
          % ("ok" if ok else "not ok", action, "" if ok else " (%s)" % a))
    if not ok:
        sys.exit(1)
EOF

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
if [ "$_failed" != 0 ]; then
    sed 's/^/# serve: /' "$T/serve.err" | tail -30
    sed 's/^/# prometheus: /' "$T/prom.log" | tail -10
    sed 's/^/# am: /' "$T/am.log" | tail -10
fi
done_testing

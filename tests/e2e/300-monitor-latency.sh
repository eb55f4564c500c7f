#!/usr/bin/env bash
# Latency as the edge measures it, against the access log of the same requests.
#
# wrk sends at least 100,000 requests to a direct environment whose responses
# are held for known, spread-out times (SLIPWAY_TEST_EDGE_DELAY: 40 paths held
# 100 µs to 10 ms, a third of the requests not held at all), so durations span
# tens of µs to over 10 ms. The access log records each request's duration in
# µs; the test checks that slipway's histogram counted exactly the requests of
# the log (same count, same sum of durations), that its p50/p95/p99
# (/_slipway/latency) are within 2 % of the exact nearest-rank percentiles of
# the log, and that the Prometheus classic buckets are exact counts. Then: the
# exposition passes `promtool check metrics` with no warning (skipped when
# promtool is absent), labels are low-cardinality, blue-green slots are
# counted apart, and /_slipway/latency is admin-only and refuses bad queries.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
N_MIN=100000

for tool in wrk python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "ok - skipped: needs $tool # SKIP"
        done_testing
    fi
done

new_project
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
P=$(free_port); PL=$(free_port); PP=$(free_port); PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/lat.yml"
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' "$PL" "$PP" > "$ENVS/staging.yml"
mkdir -p "$T/lat/d" "$T/blue" "$T/green"
printf 'fast\n' > "$T/lat/index.html"
for k in $(seq -w 0 39); do printf 'held %s\n' "$k" > "$T/lat/d/$k.html"; done
printf 'blue\n' > "$T/blue/index.html"
printf 'green\n' > "$T/green/index.html"
sw deploy "$T/lat" --env lat; expect_rc "deploy the latency site" 0
sw release create "$T/blue" -q; BLUE=$out
sw release create "$T/green" -q; GREEN=$out
sw deploy "$BLUE" --env staging; expect_rc "deploy blue (live)" 0
sw deploy "$GREEN" --env staging; expect_rc "deploy green (idle)" 0

# /d/KK.html is held 100 * 100^(KK/39) µs: 100 µs to 10 ms, evenly on a log scale.
DELAY=$(python3 -c 'print(",".join("/d/%02d.html=%d" % (k, round(100 * 100 ** (k / 39))) for k in range(40)))')

# ---- a bad delay setting is refused at start --------------------------------------------
SLIPWAY_TEST_EDGE_DELAY='/x=abc' "$SLIPWAY" serve --admin "127.0.0.1:$PA" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
check "a malformed SLIPWAY_TEST_EDGE_DELAY stops serve (exit 1, says why)" \
    eval 'test "$rc" = 1 && grep -q "SLIPWAY_TEST_EDGE_DELAY: expected PREFIX=MICROSECONDS" "$T/bad.err"'

# Workers block while a response is held, so there are many of them: sleeping
# threads cost no CPU, and a held request delays only its own connection.
SLIPWAY_TEST_EDGE_DELAY=$DELAY spawn "$SLIPWAY" serve --workers 48 --admin "127.0.0.1:$PA" \
    --access-log "$T/access.log" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
A=http://127.0.0.1:$PA
wait_for "serve answers" 30 "${C[@]}" -f -o /dev/null "$A/_slipway/ready"

# lat FIELD [QUERY]: a field of /_slipway/latency's JSON, a flat object of numbers,
# booleans, null and strings without commas (no python: on a loaded machine its start
# costs seconds, and this is polled).
lat() {
    "${C[@]}" "$A/_slipway/latency?${2:-env=lat&slot=direct}" | grep -o "\"$1\":[^,}]*" | cut -d: -f2 | tr -d '"'
}
check "before any request: 0 requests, no percentiles" eval 'test "$(lat requests)" = 0 && test "$(lat p99_us)" = null'

# ---- the held site under load -------------------------------------------------------------
cat > "$T/mix.lua" <<'EOF'
-- A third of the requests to the page that is not held, the rest spread evenly
-- over the 40 held paths. Requests are formatted once per thread.
local reqs = {}
function init(args)
    math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6) + #tostring(reqs))
    reqs[0] = wrk.format("GET", "/index.html")
    for k = 1, 40 do reqs[k] = wrk.format("GET", string.format("/d/%02d.html", k - 1)) end
end
function request()
    if math.random() < 1 / 3 then return reqs[0] end
    return reqs[math.random(1, 40)]
end
EOF
t0=$(date +%s)
spawn wrk -t2 -c96 -d120s --timeout 5s -s "$T/mix.lua" "http://127.0.0.1:$P/" >"$T/wrk.out" 2>&1
WRK=$!
enough() { [ "$(lat requests)" -ge "$N_MIN" ]; }
wait_for "wrk has made $N_MIN requests" 100 enough
kill -INT "$WRK" 2>/dev/null
wait "$WRK" 2>/dev/null
echo "# $(lat requests) requests in $(( $(date +%s) - t0 )) s: $(grep -E 'Requests/sec' "$T/wrk.out")"

# The log thread writes every 200 ms: wait until it holds every counted request.
logged() { [ "$(awk '$2 == "lat"' "$T/access.log" | wc -l)" = "$(lat requests)" ]; }
wait_for "the access log has a line for every counted request" 10 logged
"${C[@]}" "$A/_slipway/latency?env=lat&slot=direct" > "$T/lat.json"
"${C[@]}" "$A/_slipway/metrics" > "$T/metrics.txt"
check "no access log line was dropped" eval '! grep -q "lines dropped" "$T/access.log"'

python3 - "$T/access.log" "$T/lat.json" "$T/metrics.txt" > "$T/compare.out" <<'EOF'
import json, math, re, sys
log, got, metrics = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3]).read()
us, statuses = [], set()
for line in open(log):
    f = line.split()
    if len(f) == 8 and f[1] == "lat":
        us.append(int(f[7]))
        statuses.add(f[5])
us.sort()
n = len(us)
def rank(q):  # nearest rank, as hist_quantile: the ceil(q n)-th smallest
    return us[max(1, min(n, math.ceil(q * n))) - 1]
print("count %d %d" % (n, got["requests"]))
print("sum %d %d" % (sum(us), got["duration_sum_us"]))
print("statuses %s" % ",".join(sorted(statuses)))
print("spread %d %d %d" % (us[0], us[n // 100], us[-1]))
for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
    exact, mine = rank(q), got[name + "_us"]
    print("%s %d %d %.3f" % (name, exact, mine, abs(mine - exact) / exact * 100))
# The classic buckets: cumulative counts at each bound, exactly.
for m in re.finditer(r'^slipway_request_duration_seconds_bucket\{env="lat",slot="direct",le="([^"]+)"\} (\d+)$', metrics, re.M):
    le, c = m.group(1), int(m.group(2))
    want = n if le == "+Inf" else sum(1 for v in us if v <= round(float(le) * 1e6))
    print("bucket %s %d %d" % (le, c, want))
EOF
cat "$T/compare.out" | sed 's/^/# /'
field() { awk -v k="$1" -v i="$2" '$1 == k { print $i }' "$T/compare.out"; }
check "at least $N_MIN requests were measured ($(field count 2))" test "$(field count 2)" -ge "$N_MIN"
check "the histogram counted exactly the logged requests" test "$(field count 2)" = "$(field count 3)"
check "and the same durations (sums of µs equal)" test "$(field sum 2)" = "$(field sum 3)"
check "every response was 200" test "$(field statuses 2)" = 200
check "durations are spread: the 1st percentile under 1 ms, the slowest over 10 ms" \
    eval 'test "$(field spread 3)" -lt 1000 && test "$(field spread 4)" -gt 10000'
for p in p50 p95 p99; do
    check "$p: slipway $(field $p 3) µs, access log $(field $p 2) µs, $(field $p 4) % apart (<= 2 %)" \
        awk -v d="$(field $p 4)" 'BEGIN { exit !(d <= 2) }'
done
check "the exposition has the 11 classic bounds and +Inf for lat/direct" test "$(grep -c '^bucket ' "$T/compare.out")" = 12
check "every classic bucket is the exact count of the log's durations" \
    test -z "$(awk '$1 == "bucket" && $3 != $4' "$T/compare.out")"
check "_count and _sum agree with the log" eval '
    grep -qx "slipway_request_duration_seconds_count{env=\"lat\",slot=\"direct\"} $(field count 2)" "$T/metrics.txt" &&
    grep -qx "slipway_request_duration_seconds_sum{env=\"lat\",slot=\"direct\"} $(awk -v s="$(field sum 2)" "BEGIN { printf \"%.6f\", s / 1e6 }")" "$T/metrics.txt"'

# ---- blue-green: each slot counted apart, with its release ---------------------------------
for i in 1 2 3; do "${C[@]}" -o /dev/null "http://127.0.0.1:$PL/"; done
for i in 1 2 3 4 5; do "${C[@]}" -o /dev/null "http://127.0.0.1:$PP/"; done
"${C[@]}" "$A/_slipway/metrics" > "$T/metrics.txt"
check "blue (live) has its own duration series: 3 requests" \
    grep -qx 'slipway_request_duration_seconds_count{env="staging",slot="blue"} 3' "$T/metrics.txt"
check "green (preview) has its own: 5 requests" \
    grep -qx 'slipway_request_duration_seconds_count{env="staging",slot="green"} 5' "$T/metrics.txt"
check "bytes are counted per slot" grep -q '^slipway_response_bytes_total{env="staging",slot="green"} [1-9]' "$T/metrics.txt"
q='env=staging&slot=green'
check "/_slipway/latency for green: 5 requests, its release, not live" \
    eval 'test "$(lat requests "$q")" = 5 && test "$(lat release "$q")" = "$GREEN" && test "$(lat live "$q")" = false'
q='env=staging&slot=blue'
check "for blue: 3 requests, its release, live" \
    eval 'test "$(lat requests "$q")" = 3 && test "$(lat release "$q")" = "$BLUE" && test "$(lat live "$q")" = true'
sw switch staging; expect_rc "switch staging to green" 0
wait_for "green becomes live" 10 eval 'test "$(lat live "env=staging&slot=green")" = true'
check "after the switch the counts stay with their slots" \
    eval 'test "$(lat requests "env=staging&slot=green")" = 5 && test "$(lat requests "env=staging&slot=blue")" = 3'

# ---- the exposition: promtool, labels ---------------------------------------------------------
if command -v promtool >/dev/null; then
    promtool check metrics < "$T/metrics.txt" > "$T/promtool.out" 2>&1
    rc=$?
    check "promtool check metrics accepts the exposition with no warning (exit $rc)" \
        eval 'test "$rc" = 0 && test ! -s "$T/promtool.out"'
    [ -s "$T/promtool.out" ] && sed 's/^/# promtool: /' "$T/promtool.out"
else
    echo "ok - promtool check metrics # SKIP promtool is absent (Debian package prometheus; scripts/install-deps)"
fi
labels=$(grep -v '^#' "$T/metrics.txt" | grep -o '[{,][a-z_]*="' | tr -d '{,="' | sort -u | tr '\n' ' ')
# device, mode and source are the host figures' (monitor.md): a whole disk, a CPU mode, a /proc file;
# worker numbers the server's worker threads (at most 64, --workers).
check "labels are low-cardinality: only env, slot, class, le, listener, release, device, mode, source, worker ($labels)" \
    test "$labels" = "class device env le listener mode release slot source worker "

# ---- /_slipway/latency: admin only, bad queries -----------------------------------------------
code() { "${C[@]}" -o "$T/code.b" -w '%{http_code}' "$@"; }
check "not on a live listener (404)" eval 'test "$(code "http://127.0.0.1:$P/_slipway/latency?env=lat&slot=direct")" = 404 && ! grep -q p99 "$T/code.b"'
check "not on a preview listener (404)" test "$(code "http://127.0.0.1:$PP/_slipway/latency?env=staging&slot=blue")" = 404
check "no env: 400" test "$(code "$A/_slipway/latency?slot=direct")" = 400
check "no query: 400" test "$(code "$A/_slipway/latency")" = 400
check "an unknown slot: 400" test "$(code "$A/_slipway/latency?env=lat&slot=purple")" = 400
check "an unknown environment: 404, without echoing it" \
    eval 'test "$(code "$A/_slipway/latency?env=%3Cscript%3E&slot=blue")" = 404 && ! grep -qi script "$T/code.b"'
check "a long value: 400" test "$(code "$A/_slipway/latency?env=$(printf 'x%.0s' {1..300})&slot=blue")" = 400
check "answers are JSON" eval '"${C[@]}" -D "$T/h" -o /dev/null "$A/_slipway/latency?env=lat&slot=direct" && grep -qi "^content-type: application/json" "$T/h"'

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 on SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -q "Sanitizer" "$T/serve.err"'
done_testing

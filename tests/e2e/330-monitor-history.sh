#!/usr/bin/env bash
# The monitor's sampler and history on a real `slipway serve`, sampling every
# 50 ms (--monitor-interval; a history step is then 0.5 s, the alert window 3 s
# and the file is rewritten every 3 s).
#
# wrk loads a direct environment whose responses are held 20 ms
# (SLIPWAY_TEST_EDGE_DELAY); `slipway metrics web --json` then shows a rate, no
# errors and a p50 of 20 ms, and its steps add up exactly to the requests the
# edge counted. An environment with nothing deployed answers 503: its error
# ratio is 1 and the alert rule fires, on serve's stderr. A blue-green switch
# moves the live slot. serve is killed with SIGKILL and started again: the
# history is still there. A corrupt file is refused by `slipway metrics` with
# one line, and serve reports it, keeps it aside and replaces it. An
# environment added with SIGHUP is sampled. And the errors of `slipway
# metrics`: no history yet, an unknown environment, bad options.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

for tool in wrk python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "ok - skipped: needs $tool # SKIP"
        done_testing
    fi
done

new_project
ENVS=$T/p/.slipway/environments
HIST=$T/p/.slipway/cache/monitor/history.bin
rm -f "$ENVS"/*.yml
P=$(free_port); PE=$(free_port); PL=$(free_port); PP=$(free_port); PA=$(free_port); PN=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/web.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PE" > "$ENVS/empty.yml"
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' "$PL" "$PP" > "$ENVS/bg.yml"
cat > "$T/p/.slipway/alerts.yml" <<'EOF'
rules:
  - name: errors
    signal: error_ratio
    op: ">"
    threshold: 0.05
    min_requests: 20
    severity: critical
EOF
mkdir -p "$T/web/slow" "$T/blue" "$T/green"
printf 'fast\n' > "$T/web/index.html"
printf 'slow\n' > "$T/web/slow/page.html"
printf 'blue\n' > "$T/blue/index.html"
printf 'green\n' > "$T/green/index.html"
sw deploy "$T/web" --env web; expect_rc "deploy web" 0
sw deploy "$T/blue" --env bg; expect_rc "deploy blue to bg (live)" 0
sw deploy "$T/green" --env bg; expect_rc "deploy green to bg (idle)" 0

# ---- before any serve: no history yet; bad arguments --------------------------------------
sw metrics web; expect_err "no history yet: one line, exit 1" 1 "^slipway: no monitoring history yet: .*history.bin does not exist"
sw metrics nope; expect_err "an unknown environment: one line naming the known ones, exit 1" 1 "unknown environment 'nope'.*known: bg, empty, web"
sw metrics web --since soon; expect_err "a bad --since: a usage error, exit 2" 2 "^slipway metrics: --since: expected a duration"
sw metrics web --slot purple; expect_err "a bad --slot: a usage error, exit 2" 2 "^slipway metrics: --slot: expected live or idle, got 'purple'"
sw metrics web --slot idle; expect_err "--slot idle on a direct environment, exit 1" 1 "web is a direct environment: it has no idle slot"

start_serve() { # LOG
    SLIPWAY_TEST_EDGE_DELAY=/slow/=20000 spawn "$SLIPWAY" serve --workers 12 --monitor-interval 50ms \
        --admin "127.0.0.1:$PA" >"$T/$1.out" 2>"$T/$1.err"
    SERVE=$!
    wait_for "serve ($1) answers" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"
}
stop_serve() { # SIGNAL DESC
    kill "-$1" "$SERVE"; wait "$SERVE" 2>/dev/null; rc=$?
    check "$2" test "$rc" = "$3"
}
# dump NAME ENV [ARGS]: `slipway metrics ENV ARGS --json` into $T/NAME.json.
dump() { local n=$1; shift; "$SLIPWAY" metrics "$@" --json >"$T/$n.json" 2>/dev/null; }
# summarize NAME...: one line per dump, "NAME requests errors steps p50min p50max ok slots
# first_at_ms", ok meaning ordered percentiles and a rate in every busy step and cpu and
# memory in every step, slots the slots of the steps in order (repeats folded). One python.
summarize() {
    python3 - "$T" "$@" <<'PY'
import json, sys
for n in sys.argv[2:]:
    try:
        pts = json.load(open("%s/%s.json" % (sys.argv[1], n)))["points"]
    except Exception:
        pts = []
    busy = [p for p in pts if p["requests"]]
    p50 = [p["p50_us"] for p in busy] or [0]
    ok = all(p["p50_us"] <= p["p95_us"] <= p["p99_us"] and p["req_per_s"] > 0 for p in busy) and \
         all(p["cpu"] is not None and p["memory"] is not None for p in pts)
    slots = []
    for p in pts:
        if not slots or slots[-1] != p["slot"]:
            slots.append(p["slot"])
    print(n, sum(p["requests"] for p in pts), sum(p["errors"] for p in pts), len(pts), min(p50),
          max(p50), int(ok), ",".join(slots) or "-", pts[0]["at_ms"] if pts else 0)
PY
}
# totals ENV: "requests steps first_at_ms" of ENV's steps (no python: it is polled).
totals() {
    "$SLIPWAY" metrics "$1" --json 2>/dev/null | tr -d ', ' |
        awk -F: '$1 == "\"at_ms\"" { if (!n++) f = $2 } $1 == "\"requests\"" { s += $2 }
                 END { print s + 0, n + 0, (n ? f : 0) }'
}
# hits N URL: N requests to URL from one curl (on one connection).
hits() {
    local i args=()
    for ((i = 0; i < $1; i++)); do args+=(-o /dev/null "$2"); done
    "${C[@]}" "${args[@]}"
}
edge_count() { # ENV SLOT: requests the edge counted
    "${C[@]}" "http://127.0.0.1:$PA/_slipway/latency?env=$1&slot=$2" | grep -o '"requests":[0-9]*' | cut -d: -f2
}

# ---- load, errors, a switch ----------------------------------------------------------------
start_serve serve1
t0=$(date +%s)
hits 5 "http://127.0.0.1:$PL/"
hits 7 "http://127.0.0.1:$PP/"
# A step that ends after the switch is green's: switch only once blue's requests are in a step of
# their own, or a fast machine records blue's live step nowhere.
blue_in() { [ "$(totals bg | cut -d' ' -f1)" -ge 5 ]; }
wait_for "the history holds blue's 5 requests before the switch" 20 blue_in
sw switch bg; expect_rc "switch bg to green" 0
wait_for "green is live" 10 eval '"${C[@]}" "http://127.0.0.1:$PL/" | grep -q green' # one request
hits 2 "http://127.0.0.1:$PL/"
hits 30 "http://127.0.0.1:$PE/"
wrk -t2 -c8 -d3s --timeout 5s "http://127.0.0.1:$P/slow/page.html" >"$T/wrk.out" 2>&1
echo "# wrk: $(grep -E 'Requests/sec' "$T/wrk.out")"
# wrk stops with requests in flight; the edge counts each when its held 20 ms end, after wrk has
# gone: read the count once it stops moving.
served=$(edge_count web direct)
for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.2
    now=$(edge_count web direct)
    [ "$now" = "$served" ] && break
    served=$now
done
# the file is rewritten every 3 s: wait until its steps hold every request the edge counted
all_in() { [ "$(totals web | cut -d' ' -f1)" = "$served" ]; }
wait_for "the history holds all $served requests of web" 20 all_in
dump web web; dump empty empty; dump bg bg; dump bgidle bg --slot idle
summarize web empty bg bgidle > "$T/sum.txt"
sed 's/^/# /' "$T/sum.txt"
read -r _ req err npts p50min p50max ok slots first < <(grep '^web ' "$T/sum.txt")
read -r _ ereq eerr _ < <(grep '^empty ' "$T/sum.txt")
read -r _ breq _ _ _ _ _ bslots _ < <(grep '^bg ' "$T/sum.txt")
read -r _ ireq _ < <(grep '^bgidle ' "$T/sum.txt")
check "web: the steps add up exactly to the edge's count ($req = $served, > 100)" \
    eval 'test "$req" = "$served" && test "$req" -gt 100'
check "web: no errors" test "$err" = 0
check "web: percentiles ordered, a rate for every busy step, cpu and memory in every step" test "$ok" = 1
check "web: p50 of every busy step is the held 20 ms (19.8 to 40 ms: $p50min..$p50max µs)" \
    eval 'test "$p50min" -ge 19800 && test "$p50max" -le 40000'
check "web: the live slot is the direct one" test "$slots" = direct
"$SLIPWAY" metrics web > "$T/table.txt" 2>&1
check "the table: a header and a row per step" eval \
    'head -1 "$T/table.txt" | grep -q "^TIME *REQ/S *ERRORS *P50 *P95 *P99 *CPU *MEM$" &&
     grep -Eq "^[0-9T:-]+Z +[0-9.]+ +0\.00% +[0-9.]+ms " "$T/table.txt"'
check "empty (nothing deployed): its 503s are errors ($eerr of $ereq)" eval 'test "$ereq" -ge 30 && test "$ereq" = "$eerr"'
check "the alert rule fired on empty, said on stderr" \
    grep -q "^slipway serve: monitor: errors on empty: firing (error_ratio 1 > 0.05 over [0-9]* requests in the last 3s; release none)$" "$T/serve1.err"
check "bg: the live slot moved from blue to green at the switch ($bslots)" test "$bslots" = blue,green
bg_served=$(($(edge_count bg blue) + $(edge_count bg green)))
check "bg: its live and idle steps hold all its requests ($breq + $ireq = $bg_served)" \
    test "$((breq + ireq))" = "$bg_served"

# ---- SIGKILL: the history survives ----------------------------------------------------------
stop_serve KILL "serve killed with SIGKILL" 137
check "the history file is there" test -s "$HIST"
start_serve serve2
wait_for "serve read it back" 10 grep -q "^slipway serve: monitor: history: [0-9]* steps read from .*history.bin$" "$T/serve2.err" &&
    ok "serve read it back"
read -r req2 npts2 first2 < <(totals web)
check "web's steps are still there after the restart ($req2 requests, $npts2 steps)" \
    eval 'test "$req2" = "$served" && test "$first2" = "$first" && test "$npts2" -ge "$npts"'
stop_serve TERM "serve exits 0 on SIGTERM" 0

# ---- a corrupt file: refused with one line, reported and replaced by serve ---------------
printf 'XYZW' | dd of="$HIST" bs=1 seek=$(($(stat -c %s "$HIST") / 2)) conv=notrunc status=none
sw metrics web; expect_err "metrics refuses a corrupt file: one line, exit 1" 1 "history.bin: checksum mismatch"
start_serve serve3
wait_for "serve reports it, keeps it aside and replaces it" 10 \
    grep -q "^slipway serve: monitor: history unusable, kept as .*history.bin.corrupt and replaced by a new one: .*checksum mismatch" "$T/serve3.err" &&
    ok "serve reports it, keeps it aside and replaces it"
check "the corrupt file is kept" test -s "$HIST.corrupt"
sw metrics web; expect_err "the new file is valid, and empty: no history for web yet" 1 "no monitoring history for web yet"

# ---- SIGHUP: a new environment is sampled ---------------------------------------------------
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PN" > "$ENVS/late.yml"
sw deploy "$T/web" --env late; expect_rc "deploy to a new environment late" 0
kill -HUP "$SERVE"
wait_for "late is served after SIGHUP" 20 "${C[@]}" -sf -o /dev/null "http://127.0.0.1:$PN/"
hits 3 "http://127.0.0.1:$PN/"
late_served=$(edge_count late direct)
stop_serve TERM "serve exits 0 on SIGTERM (its last step saved)" 0
read -r lreq _ < <(totals late)
check "late's requests are in the history, to the last one ($lreq = $late_served)" test "$lreq" = "$late_served"
echo "# 330 took $(($(date +%s) - t0)) s after the first start"
check "no sanitizer report" eval '! grep -q "Sanitizer" "$T"/serve*.err'
done_testing

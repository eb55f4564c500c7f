#!/usr/bin/env bash
# A fleet on one S3 bucket (issue 14, "The fleet"; docs/edge.md, "Serving from S3").
#
# moto_server is the bucket. Three `slipway serve` nodes (each its own project, ports and
# --cache-dir, --poll 500ms) follow it through a small TCP relay, so the store can be taken away
# from them (the relay killed: connections refused; the relay stopped with SIGSTOP: a store that
# accepts and never answers) while moto keeps its data. wrk loads all three while
# `slipway switch staging` (run against moto directly) runs 20 times: every node serves each new
# release within 2 s of the switch, and no request fails; the switch spread (last node minus
# first) is printed. A fourth node started late serves the current release. Then the store goes
# away: every node keeps serving (wrk: no request fails), /_slipway/ready stays 200,
# /_slipway/health says the store is degraded (the error on --admin only), within 6 s even for
# a hung store (its polls fail fast; a patient request would retry for 30 s); a switch made
#
# The load is paced (each wrk connection waits 5 ms between requests: some 1600 requests a
# second a node): requests are always in flight through every switch and outage, and the two
# cores are left to the nodes and moto rather than spent on wrk's fastest rate.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
C=(curl -s --max-time 5)
moto_require
AWSD=0 # no aws CLI call
command -v wrk >/dev/null || { echo "ok - skipped: needs wrk # SKIP"; exit 0; }
NODES=(1 2 3)
unset SLIPWAY_S3_ENDPOINT
moto_start || done_testing
MP=$MOTO_PORT RP=$(free_port)
moto_bucket fleet
check "the bucket exists" test $? = 0

# The relay between the nodes and moto: one thread pair per connection. Killed, it refuses
# connections; stopped (SIGSTOP), the kernel still accepts them and nothing answers.
cat >"$T/relay.py" <<'EOF'
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(128)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = ls.accept()
    try:
        u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    except OSError:
        c.close()
        continue
    for x, y in ((c, u), (u, c)):
        threading.Thread(target=pipe, args=(x, y), daemon=True).start()
EOF
relay_start() {
    spawn python3 "$T/relay.py" "$RP" "$MP"
    RELAY=$!
    wait_for "the relay answers" 10 curl -s -o /dev/null "http://127.0.0.1:$RP/"
}
relay_start

# The commands reach moto directly; the nodes only through the relay.
export SLIPWAY_STORE="s3://fleet/site?endpoint=http://127.0.0.1:$MP"
NODE_STORE="s3://fleet/site?endpoint=http://127.0.0.1:$RP"
declare -A PL PP PA SERVE
for n in 1 2 3 4; do
    "$SLIPWAY" init -q "$T/p$n"
    rm -f "$T/p$n/.slipway/environments/"*.yml
    PL[$n]=$(free_port); PP[$n]=$(free_port); PA[$n]=$(free_port)
    printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' \
        "${PL[$n]}" "${PP[$n]}" >"$T/p$n/.slipway/environments/staging.yml"
done
check "no project has a store of its own" eval '! ls -d "$T"/p*/.slipway/data 2>/dev/null'
# Node 4 also serves three environments with nothing deployed: a round of its polls while the
# store hangs costs one timeout, not one per environment (see the stop at the end).
for e in e1 e2 e3; do
    printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$(free_port)" >"$T/p4/.slipway/environments/$e.yml"
done

# Two releases, each with a body over 64 KiB, which the nodes keep in their --cache-dir.
mkdir -p "$T/A" "$T/B"
printf 'A\n' >"$T/A/index.html"; head -c 100000 /dev/urandom >"$T/A/big.bin"
printf 'B\n' >"$T/B/index.html"; head -c 100000 /dev/urandom >"$T/B/big.bin"
cd "$T/p1"
sw deploy "$T/A" --env staging; expect_rc "deploy A to staging (live)" 0
sw deploy "$T/B" --env staging; expect_rc "deploy B to staging (the idle slot)" 0

node_start() { # node_start N [extra serve options]
    local n=$1; shift
    spawn "$SLIPWAY" --project "$T/p$n" --store "$NODE_STORE" serve --no-monitor --workers 1 \
        --poll 500ms --cache-dir "$T/cache$n" --admin "127.0.0.1:${PA[$n]}" "$@" \
        >"$T/serve$n.out" 2>"$T/serve$n.err"
    SERVE[$n]=$!
}
body() { "${C[@]}" "http://127.0.0.1:$1/"; }
for n in "${NODES[@]}"; do node_start "$n"; done
for n in "${NODES[@]}"; do
    wait_for "node $n serves A live" 30 eval '[ "$(body "${PL[$n]}")" = A ]'
    check "  and B on preview" test "$(body "${PP[$n]}")" = B
    check "  its large bodies are in its own --cache-dir" \
        test "$(ls "$T/cache$n" | grep -cE '^[0-9a-f]{64}$')" = 2
done

# Another serve on a node's cache directory is refused: its start-up would delete the bodies
# the node serves from.
sw --project "$T/p4" --store "$NODE_STORE" serve --no-monitor --workers 1 --cache-dir "$T/cache1"
expect_err "a second serve on node 1's --cache-dir is refused" 1 \
    "local cache $T/cache1 is in use by another process \\(pid ${SERVE[1]}\\) \\(each slipway serve needs its own --cache-dir\\)"

# ---- 20 switches under load ---------------------------------------------------------------
cat >"$T/count.lua" <<'EOF'
function init(args) a, b, other, non2xx = 0, 0, 0, 0 end
function response(status, headers, body)
    if status < 200 or status > 399 then non2xx = non2xx + 1 end
    if body == "A\n" then a = a + 1 elseif body == "B\n" then b = b + 1 else other = other + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
    local A, B, O, N = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        A = A + t:get("a"); B = B + t:get("b"); O = O + t:get("other"); N = N + t:get("non2xx")
    end
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d %d\n", summary.requests, A, B, O, N,
        e.connect, e.read, e.write, e.timeout, e.status))
end
EOF
# Each connection waits 5 ms between requests (see the top).
echo 'function delay() return 5 end' >>"$T/count.lua"
declare -A LOAD
load_start() { # load_start LABEL SCRIPT NODE...: wrk -t1 -c8 on each node's live listener
    local label=$1 script=$2 n; shift 2
    for n in "$@"; do
        spawn wrk -t1 -c8 -d120s --timeout 2s -s "$T/$script.lua" "http://127.0.0.1:${PL[$n]}/" \
            >"$T/wrk.$label.$n" 2>&1
        LOAD[$n]=$!
    done
}
load_check() { # load_check LABEL BODIES NODE...: stops wrk, checks that nothing failed
    local label=$1 bodies=$2 n r; shift 2
    for n in "$@"; do kill -INT "${LOAD[$n]}"; done
    for n in "$@"; do wait "${LOAD[$n]}"; done
    for n in "$@"; do
        r=$(grep '^RESULT' "$T/wrk.$label.$n")
        read -r _ W_REQ W_A W_B W_OTHER W_BAD W_CONN W_READ W_WRITE W_TIMEOUT W_STATUS <<<"$r"
        echo "# $label, node $n: wrk $W_REQ requests, A $W_A, B $W_B, other $W_OTHER, non-2xx/3xx" \
            "$W_BAD; errors connect $W_CONN read $W_READ write $W_WRITE timeout $W_TIMEOUT"
        check "$label, node $n: wrk ran" test "${W_REQ:-0}" -gt 0
        check "$label, node $n: 0 socket errors" \
            test "${W_CONN:-x}${W_READ:-x}${W_WRITE:-x}${W_TIMEOUT:-x}" = 0000
        check "$label, node $n: 0 responses but 2xx/3xx" test "${W_BAD:-x}${W_STATUS:-x}" = 00
        check "$label, node $n: every body is A or B" test "${W_OTHER:-x}" = 0
        [ "$bodies" = both ] &&
            check "$label, node $n: both releases served" test "${W_A:-0}" -gt 0 -a "${W_B:-0}" -gt 0
    done
}
switches() { # switches N NODE...: runs fleetswitch.py, its JSON in $out
    local k=$1 n ports=(); shift
    for n in "$@"; do ports+=("${PL[$n]}"); done
    out=$(python3 "$ROOT/tests/e2e/fleetswitch.py" "$SLIPWAY" staging "$k" $'A\n' $'B\n' "${ports[@]}")
}

load_start switching count "${NODES[@]}"
sleep 1
switches 20 "${NODES[@]}"
SW=$out
load_check switching both "${NODES[@]}"
check "20 switches, every one exited 0" test "$(json 'j["switches"], len(j["failures"])')" = "20 0"
[ "$(json 'len(j["failures"])')" = 0 ] || echo "# $(json 'j["failures"][:3]')"
check "every node served every switch" test "$(json 'j["unseen"]')" = 0
echo "# delay from 'slipway switch' returning to each node serving the new release (ms):"
json '"\n".join("#   switch %2d: %s" % (i + 1, " ".join(str(d) for d in r)) for i, r in enumerate(j["delays_ms"]))'
echo "# switch spread: max delay over nodes and switches $(json 'j["max_ms"]') ms;" \
    "last node minus first: median $(json 'j["spread_median_ms"]') ms, max $(json 'j["spread_max_ms"]') ms"
check "every node served each new release within 2 s ($(json 'j["max_ms"]') ms at most)" \
    python3 -c "import sys; sys.exit(not $(json 'j["max_ms"] or 99999') < 2000)"
check "after 20 switches A is live on every node" \
    eval 'for n in "${NODES[@]}"; do [ "$(body "${PL[$n]}")" = A ] || exit 1; done'

# ---- a node started late --------------------------------------------------------------------
node_start 4
wait_for "node 4, started late, serves the current release (A)" 30 eval '[ "$(body "${PL[4]}")" = A ]'
check "  and B on preview" test "$(body "${PP[4]}")" = B
NODES=(1 2 3 4)

# ---- the store goes away ---------------------------------------------------------------------
health() { "${C[@]}" "http://127.0.0.1:$1/_slipway/health"; }
degraded() { # degraded N: node N's admin health says degraded, with a state read's error
    local h; h=$(health "${PA[$1]}")
    [[ $h == *"store: degraded since "* && $h == *"store error: s3://fleet/site?"*": GET envs/"*"/state.json: "* ]]
}
store_ok() { [[ $(health "${PA[$1]}") == *"store: ok"* ]]; }
metric() { "${C[@]}" "http://127.0.0.1:${PA[$1]}/_slipway/metrics" | sed -n "s/^$2 //p"; }
for n in "${NODES[@]}"; do
    check "node $n: health says the store is ok" store_ok "$n"
    check "  slipway_store_up 1" test "$(metric "$n" slipway_store_up)" = 1
done

load_start outage count "${NODES[@]}"
kill "$RELAY"; wait "$RELAY" 2>/dev/null
for n in "${NODES[@]}"; do
    wait_for "node $n: health says the store is degraded (relay gone)" 10 degraded "$n"
done
echo "# node 1's health: $(health "${PA[1]}" | tr '\n' '|')"
for n in "${NODES[@]}"; do
    check "node $n: the error is a refused connection" eval \
        '[[ $(health "${PA[$n]}") == *"Couldn'"'"'t connect to server"* ]]'
    pub=$(health "${PL[$n]}")
    check "node $n: the public health says degraded, without the error" \
        eval '[[ $pub == *"store: degraded since "* && $pub != *"store error"* && $pub != *fleet* ]]'
    check "node $n: /_slipway/ready is 200" \
        test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:${PL[$n]}/_slipway/ready")" = 200
    check "node $n: serves A" test "$(body "${PL[$n]}")" = A
    check "node $n: slipway_store_up 0" test "$(metric "$n" slipway_store_up)" = 0
    check "  but no release failed to load" \
        test "$(metric "$n" 'slipway_release_load_ok{env="staging"}')" = 1
    check "node $n: said so once on stderr" \
        test "$(grep -c 'the store cannot be reached: .*every environment keeps serving what it has' "$T/serve$n.err")" = 1
done

# A switch the nodes cannot see yet; they serve it once the store is back.
sw switch staging; expect_rc "a switch to B while the nodes cannot reach the store" 0
sleep 1 # two polls
for n in "${NODES[@]}"; do check "node $n: still serves A" test "$(body "${PL[$n]}")" = A; done
t0=$(date +%s%N)
relay_start
for n in "${NODES[@]}"; do
    wait_for "node $n serves B once the store is back" 10 eval '[ "$(body "${PL[$n]}")" = B ]'
done
echo "# the store back to every node serving the switch made meanwhile: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
for n in "${NODES[@]}"; do
    wait_for "node $n: health says the store is ok again" 10 store_ok "$n"
    check "node $n: said so on stderr" grep -q 'the store is reachable again (it was not for ' "$T/serve$n.err"
done

# A store that hangs: connections are accepted, nothing answers. Each poll gives up after about
# 2 s instead of retrying for 30.
kill -STOP "$RELAY"
t0=$(date +%s%N)
for n in "${NODES[@]}"; do
    wait_for "node $n: health says degraded (hung store)" 15 degraded "$n" ||
        echo "# node $n's health: $(health "${PA[$n]}" | tr '\n' '|')"
done
hung_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# a hung store to every node saying degraded: $hung_ms ms"
check "every node said degraded within 6 s of the store hanging ($hung_ms ms)" test "$hung_ms" -lt 6000
for n in "${NODES[@]}"; do
    check "node $n: the error is a timeout" eval '[[ $(health "${PA[$n]}") == *"Timeout was reached"* ]]'
    check "node $n: serves B, at once" test "$(curl -s --max-time 1 "http://127.0.0.1:${PL[$n]}/")" = B
done
kill -CONT "$RELAY"
for n in "${NODES[@]}"; do wait_for "node $n: health says ok once the store answers" 10 store_ok "$n"; done
for n in "${NODES[@]}"; do
    wait_for "node $n: the admin ready shows no error any more" 5 \
        eval '[ "$("${C[@]}" "http://127.0.0.1:${PA[$n]}/_slipway/ready" | grep -c ": serving$")" = 1 ] &&
              ! "${C[@]}" "http://127.0.0.1:${PA[$n]}/_slipway/ready" | grep -q "serving: "'
done
load_check outage one "${NODES[@]}"

# Following the store again: the next switch within 2 s, on all four.
switches 1 "${NODES[@]}"
check "after the outage a switch is served by every node within 2 s ($(json 'j["delays_ms"][0]') ms)" \
    python3 -c "import sys; sys.exit(not ($(json 'j["unseen"]') == 0 and $(json 'j["max_ms"] or 99999') < 2000))"

# Stopping while the store hangs: the watcher finishes the poll it is in, at most one timeout
# (about 3 s), whatever the number of environments (node 4 has four). A patient request would
# keep it for 30 s.
kill -STOP "$RELAY"
for n in 4 1 2 3; do wait_for "node $n: degraded again (hung store)" 15 degraded "$n"; done
for n in 4 1 2 3; do
    t0=$(date +%s%N)
    kill -TERM "${SERVE[$n]}"; wait "${SERVE[$n]}"; rc=$?
    stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    check "node $n stops within 6 s while the store hangs ($stop_ms ms)" test "$stop_ms" -lt 6000
    check "node $n exits 0 after SIGTERM" test "$rc" = 0
    check "  no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve$n.err"'
done
kill -CONT "$RELAY" # a stopped process would not die of the cleanup's SIGTERM
if [ "$_failed" != 0 ]; then for n in "${NODES[@]}"; do sed "s/^/# serve$n: /" "$T/serve$n.err" | tail -15; done; fi
done_testing

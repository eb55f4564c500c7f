#!/usr/bin/env bash
# Which worker a connection goes to. By default (--balance cpu) every
# connection received on one CPU goes to that CPU's worker, so one client
# thread's connections share a worker; --balance hash spreads them by the
# kernel's hash. Clients are pinned with taskset; the per-worker accept
# counters of /_slipway/metrics say where their connections went.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

cpus=$(python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')
read -r CPU_A CPU_B _ <<<"$cpus"
if [ -z "${CPU_B:-}" ] || ! command -v taskset >/dev/null; then
    echo "ok - skipped: needs two CPUs and taskset (have: $cpus)"
    done_testing
fi

new_project "$T/p"
P=$(free_port); PA=$(free_port)
rm -f .slipway/environments/*.yml
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > .slipway/environments/dev.yml
sw deploy "$T/site" --env dev -q
expect_rc "the site is deployed" 0

# accepted: "a b", the two workers' accept counters, read by a client pinned to CPU_A.
accepted() {
    taskset -c "$CPU_A" "${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics" | awk '
        $1 == "slipway_worker_connections_accepted_total{worker=\"0\"}" { a = $2 }
        $1 == "slipway_worker_connections_accepted_total{worker=\"1\"}" { b = $2 }
        END { print a, b }'
}
# connect CPU N: N connections, one request each, from a client pinned to CPU.
connect() {
    local i
    for ((i = 0; i < $2; i++)); do
        taskset -c "$1" "${C[@]}" -o /dev/null "http://127.0.0.1:$P/" || return 1
    done
}
# spread CPU N: "a b", the accepts each worker gained while CPU opened N connections
# (the metrics reads between are pinned to CPU_A: the reader's own connection lands
# with CPU_A's worker, counted once in the second read).
spread() {
    local a0 b0 a1 b1
    read -r a0 b0 <<<"$(accepted)"
    connect "$1" "$2"
    read -r a1 b1 <<<"$(accepted)"
    echo "$((a1 - a0)) $((b1 - b0))"
}

# serve_with BY_CPU ARGS...: `serve --workers 2 ARGS`, PID in $SERVE, once up; checks that
# the metrics say BY_CPU (1: grouped by CPU, 0: by hash).
serve_with() {
    local want=$1
    shift
    spawn "$SLIPWAY" serve --workers 2 --admin "127.0.0.1:$PA" "$@" >>"$T/serve.out" 2>>"$T/serve.err"
    SERVE=$!
    wait_for "serve $* is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$PA/_slipway/ready"
    check "serve $*: slipway_connections_by_cpu is $want" grep -q "^slipway_connections_by_cpu $want\$" \
        <("${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics")
}

serve_with 1
read -r a b <<<"$(spread "$CPU_A" 12)"
echo "# from CPU $CPU_A: worker 0 +$a, worker 1 +$b"
# CPU_A's worker also took the second metrics read: 13 in all, none elsewhere.
check "12 connections from CPU $CPU_A all went to one worker" \
    test "$a $b" = "13 0" -o "$a $b" = "0 13"
first=$([ "$a" -gt 0 ] && echo 0 || echo 1)
read -r a b <<<"$(spread "$CPU_B" 12)"
echo "# from CPU $CPU_B: worker 0 +$a, worker 1 +$b"
# Now the metrics reads (on CPU_A's worker) add 1 there, and CPU_B's 12 go to the other.
if [ "$first" = 0 ]; then want="1 12"; else want="12 1"; fi
check "12 connections from CPU $CPU_B all went to the other worker" test "$a $b" = "$want"
check "nothing was sent back to the hash" grep -q '^slipway_connections_unsteered_total 0$' \
    <("${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics")
kill -TERM "$SERVE"; wait "$SERVE" 2>/dev/null

serve_with 0 --balance hash
read -r a b <<<"$(spread "$CPU_A" 32)"
echo "# hash, from CPU $CPU_A: worker 0 +$a, worker 1 +$b"
# By hash, 32 connections all on one worker would have odds of 2 in 2^32.
check "by hash, one CPU's 32 connections reach both workers" test "$a" -gt 0 -a "$b" -gt 0
kill -TERM "$SERVE"; wait "$SERVE" 2>/dev/null

"$SLIPWAY" serve --balance round-robin >"$T/bad.out" 2>"$T/bad.err"; rc=$?
errout=$(cat "$T/bad.err")
expect_err "an unknown --balance is a usage error naming the choices" 2 \
    "--balance: expected cpu or hash, got 'round-robin'"
done_testing

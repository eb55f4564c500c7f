#!/usr/bin/env bash
# Concurrent changes to one environment: exactly one wins, the other fails with
# a clear 'locked' message and changes nothing; many parallel deploys leave a
# generation equal to the number that succeeded and an audit log that matches.
#
# With SLIPWAY_E2E_S3 set (tests/e2e/413-s3-concurrency.sh), the same on an s3 store in a
# moto (--serial: its own conditional writes are not atomic otherwise, see moto_serial.py),
# read directly through tests/e2e/s3check.py where this reads files.
. "$(dirname "$0")/lib.sh"

new_project
DATA=$T/p/.slipway/data
if [ -n "${SLIPWAY_E2E_S3:-}" ]; then
    . "$ROOT/tests/e2e/moto.sh"
    moto_require
    moto_start --serial || done_testing
    moto_bucket conc || done_testing
    SLIPWAY_STORE=$(moto_store_url data)
    export SLIPWAY_STORE
    # obj KEY: the object KEY of the store, failing when there is none; keys PREFIX: every key under it.
    obj() { "$MOTO_PY" "$ROOT/tests/e2e/s3check.py" "$MOTO_URL" conc data - cat "$1"; }
    keys() { "$MOTO_PY" "$ROOT/tests/e2e/s3check.py" "$MOTO_URL" conc data - keys "$1"; }
else
    obj() { cat "$DATA/$1" 2>/dev/null; }
    keys() { (cd "$DATA" && find "$1" -type f ! -name '.tmp.*' 2>/dev/null | sort); }
fi
has() { obj "$1" >/dev/null; }
state() { obj "envs/$1/state.json" | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
gen() { if has "envs/$1/state.json"; then state "$1" 's["generation"]'; else echo 0; fi; }
events() { sw history "$1" --json; json 'len(j["events"])'; }
for i in 0 1 2 3 4 5 6 7 8; do
    mkdir -p "$T/s$i"; printf 'site %s\n' "$i" > "$T/s$i/index.html"
    sw release create "$T/s$i" -q; eval "R$i=\$out"
done

# race SLOW_CMD... -- FAST_CMD...: runs SLOW_CMD holding staging's lease until
# FAST_CMD is over (SLIPWAY_TEST_DEPLOY_HOLD_FILE: the slow change creates
# FILE.held once it holds the lease (written into the state), then waits for FILE),
# so the overlap does not depend on how fast a loaded machine starts FAST_CMD.
# Sets slow_rc, slow_err, rc, errout.
race() {
    local slow=() fast=()
    while [ "$1" != -- ]; do slow+=("$1"); shift; done
    shift; fast=("$@")
    rm -f "$T/slow.err" "$T/hold" "$T/hold.held"
    SLIPWAY_TEST_DEPLOY_HOLD_FILE=$T/hold "$SLIPWAY" "${slow[@]}" -q 2>"$T/slow.err" >/dev/null &
    local pid=$!
    _pids+=("$pid")
    wait_for "the slow change holds the lease" 30 test -e "$T/hold.held"
    leased=$(state staging 's.get("lease", {}).get("action", "-")' 2>/dev/null)
    sw status staging
    changing=$(grep "^  changing" <<<"$out")
    sw "${fast[@]}"
    touch "$T/hold"
    wait "$pid"; slow_rc=$?
    slow_err=$(cat "$T/slow.err")
}

# ---- deploy against deploy ----------------------------------------------------------
sw deploy "$R1" --env staging -q
g=$(gen staging); e=$(events staging)
race deploy "$R2" --env staging -- deploy "$R3" --env staging
check "deploy vs deploy: the first (holding the lease) succeeds" test "$slow_rc" = 0 -a -z "$slow_err"
check "deploy vs deploy: while it ran, staging's state held its lease ($leased)" test "$leased" = deploy
check "deploy vs deploy: meanwhile status showed the change in progress ($changing)" \
    eval '[[ "$changing" =~ ^\ \ changing\ \ deploy\ by\ $SLIPWAY_ACTOR,\ pid\ [0-9]+\ on\ .*lease\ ends\ in ]]'
expect_err "deploy vs deploy: the second fails with one 'locked' line naming the holder" 1 \
    "environment staging is locked by another change \(deploy by $SLIPWAY_ACTOR, pid [0-9]+"
check "deploy vs deploy: generation grew by exactly 1" test "$(gen staging)" = $((g + 1))
check "deploy vs deploy: the winner's release is in the idle slot, the loser's nowhere" \
    test "$(state staging 's["slots"]["green"]["release"], s["live_release"]')" = "$R2 $R1" -a \
    -z "$(obj envs/staging/state.json | grep "$R3")"
check "deploy vs deploy: one event recorded" test "$(events staging)" = $((e + 1))
check "deploy vs deploy: the lease is gone from the state" test "$(state staging '"lease" in s')" = False

# deploy DIR against deploy: the loser must not change the environment either.
g=$(gen staging)
printf 'dir deploy\n' > "$T/s8/extra.txt"
race deploy "$R4" --env staging -- deploy "$T/s8" --env staging -q
check "deploy vs deploy DIR: the first succeeds" test "$slow_rc" = 0
expect_err "deploy vs deploy DIR: the second fails with 'locked'" 1 "locked"
check "deploy vs deploy DIR: generation grew by exactly 1" test "$(gen staging)" = $((g + 1))
check "deploy vs deploy DIR: the slot holds the winner" test "$(state staging 's["slots"]["green"]["release"]')" = "$R4"

# ---- switch against rollback, both ways ----------------------------------------------------
sw switch staging -q # live R4 (green), previous R1 (blue)
g=$(gen staging); e=$(events staging)
race switch staging -- rollback staging
check "switch vs rollback: the switch succeeds" test "$slow_rc" = 0 -a -z "$slow_err"
expect_err "switch vs rollback: the rollback fails with 'locked' naming the switch" 1 "staging is locked.*\(switch by"
check "switch vs rollback: generation grew by exactly 1" test "$(gen staging)" = $((g + 1))
check "switch vs rollback: the switch took effect (blue live again)" test "$(state staging 's["live_slot"], s["live_release"]')" = "blue $R1"
check "switch vs rollback: one event recorded" test "$(events staging)" = $((e + 1))
g=$(gen staging); e=$(events staging)
race rollback staging -- switch staging
check "rollback vs switch: the rollback succeeds" test "$slow_rc" = 0 -a -z "$slow_err"
expect_err "rollback vs switch: the switch fails with 'locked' naming the rollback" 1 "staging is locked.*\(rollback by"
check "rollback vs switch: generation grew by exactly 1" test "$(gen staging)" = $((g + 1))
check "rollback vs switch: the rollback took effect (green live)" test "$(state staging 's["live_slot"], s["live_release"]')" = "green $R4"
check "rollback vs switch: one event recorded, the last a rollback" \
    test "$(events staging; json 'j["events"][-1]["action"]')" = "$(printf '%s\nrollback' $((e + 1)))"
g=$(gen dev)
race rollback staging -- deploy "$R5" --env dev
check "a change to staging does not lock dev" test "$slow_rc $rc $(gen dev)" = "0 0 $((g + 1))"

# ---- many at once ------------------------------------------------------------------------------
# parallel N ENV ARGS...: N deploys of R1..RN to ENV at once. Prints
# "WINS LOSSES ODD NOOPS" last, after a comment line for each odd outcome. A
# no-op is a deploy of the release that was live by then: exit 0, nothing changed.
parallel() {
    local n=$1 env=$2 i pids=() wins=0 losses=0 odd=0 noops=0
    shift 2
    for i in $(seq 1 "$n"); do
        eval "local r=\$R$(( (i - 1) % 8 + 1 ))"
        "$SLIPWAY" deploy "$r" --env "$env" "$@" >"$T/par.$env.$i.out" 2>"$T/par.$env.$i" &
        pids+=($!)
    done
    for i in $(seq 1 "$n"); do
        wait "${pids[$((i - 1))]}"; local st=$?
        local lines; lines=$(grep -c '' "$T/par.$env.$i")
        if [ "$st" = 0 ] && [ "$lines" = 0 ] && grep -q "already live on $env; nothing changed" "$T/par.$env.$i.out"; then
            noops=$((noops + 1))
        elif [ "$st" = 0 ] && [ "$lines" = 0 ]; then
            wins=$((wins + 1))
        elif [ "$st" = 1 ] && [ "$lines" = 1 ] && grep -qE "locked|changed by another" "$T/par.$env.$i"; then
            losses=$((losses + 1))
        else
            odd=$((odd + 1)); echo "# $env deploy $i: exit $st: $(cat "$T/par.$env.$i")"
        fi
    done
    echo "$wins $losses $odd $noops"
}
# tally FILE: adds parallel's counts from FILE to wins, losses, odd, noops (and shows odd ones).
tally() {
    grep '^#' "$1"
    local w l o n; read -r w l o n < <(tail -1 "$1")
    wins=$((wins + w)) losses=$((losses + l)) odd=$((odd + o)) noops=$((noops + n))
}
wins=0 losses=0 odd=0 noops=0
g=$(gen dev); e=$(events dev)
for round in 1 2 3 4 5; do parallel 8 dev > "$T/par.log"; tally "$T/par.log"; done
echo "# 40 parallel deploys to dev: $wins succeeded, $losses refused, $noops found their release live already"
check "8 parallel deploys (x5): each succeeds, finds its release live or fails with one 'locked' line" \
    test "$odd" = 0 -a $((wins + losses + noops)) = 40
check "8 parallel deploys: at least one in each round succeeds" test "$wins" -ge 5
check "8 parallel deploys: generation grew by exactly the number of successes" test "$(gen dev)" = $((g + wins))
check "8 parallel deploys: history has exactly that many new events" test "$(events dev)" = $((e + wins))
check "no lease is left behind" test "$(state dev '"lease" in s')" = False

# Both environments at once: the audit log is shared, so its chain is contended too. First
# R0, which none of the 8 deploys names, goes live on both: else the one that takes the lock
# first may deploy the live release (a change that changes nothing, under the lock) while the
# other seven are refused, and nothing happens in that environment (seen in CI).
sw deploy "$R0" --env dev -q
sw deploy "$R0" --env staging --switch -q
check "R0 is live on dev and staging before they are deployed to at once" \
    test "$(state dev 's["live_release"]') $(state staging 's["live_release"]')" = "$R0 $R0"
gd=$(gen dev) ed=$(events dev) gs=$(gen staging) es=$(events staging)
parallel 8 dev > "$T/par.dev.log" &
p1=$!
parallel 8 staging --switch > "$T/par.staging.log"
wait "$p1"
wins=0 losses=0 odd=0 noops=0; tally "$T/par.staging.log"; staging_wins=$wins
tally "$T/par.dev.log"
check "dev and staging at once: each succeeds, is a no-op or fails with one 'locked' line" \
    test "$odd" = 0 -a $((wins + losses + noops)) = 16
dev_events=$(( $(events dev) - ed )) staging_events=$(( $(events staging) - es ))
check "dev and staging at once: dev's generation matches its new events" test "$(gen dev)" = $((gd + dev_events))
check "dev and staging at once: staging's generation matches its new events" \
    test "$(gen staging)" = $((gs + staging_events)) -a "$staging_events" = "$staging_wins"
check "dev and staging at once: something happened in each" test "$dev_events" -ge 1 -a "$staging_events" -ge 1
sw history dev --verify; expect_rc "history dev --verify passes after the races" 0
check "the audit log has one event per change, numbered without gaps" \
    test "$(keys events/ | grep -c '^events/[0-9]*\.json$')" = "$(keys events/ | grep '^events/[0-9]*\.json$' | tail -1 | sed 's/^events\/0*//; s/\.json$//')"
done_testing

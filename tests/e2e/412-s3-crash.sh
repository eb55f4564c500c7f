#!/usr/bin/env bash
# Crash safety on an s3 store (tests/e2e/050-crash.sh's test, on S3): `slipway deploy DIR` is
# killed with SIGKILL in the middle of its write path; after every kill, each environment
# must point only at complete releases (manifest present, every body present with the right
# size and SHA-256), and every manifest in the store must be complete. Then the audit chain
# verifies, a lease left by the last killed deploy is taken over at once (its holder is gone),
# and gc removes what the kills left behind.
#
# Where a kill lands is set by the deploy's own progress, not by the clock: on S3 every
# durable step is a request, so slipway talks to moto through tests/e2e/killproxy.py, which
# SIGKILLs it at its K-th request (counted over all its threads), K in 1..M (M: the requests
# of a whole deploy of the same kind, counted on warm-up deploys), either before the K-th
# request reaches moto or after moto has applied it but before slipway hears so (S3's "it
# may have landed"). The store is checked by tests/e2e/s3check.py, which reads the bucket
# directly, never through slipway.
#
# moto runs with --serial (one request at a time): its own conditional writes are not atomic
# otherwise (moto_serial.py). The site is smaller than 050's (every request is one to moto).
#
# Which K: the trials of each kind of deploy (dev, staging) walk through its 2M kill cases in
# turn (K = 1..M before, then 1..M after), from a random case on, so no case repeats before
# all have come: 50 trials kill at 42 distinct cases (dev 25, staging 17, of 28 each with
# M = 14), where the 60 random draws this test made before reached some 33; and each run
# starts elsewhere.
#
# The proxy and the checker are each one Python process for the whole test (a start-up per
# trial cost more CPU than the deploy): killproxy.py is armed and ended over its control port,
# s3check.py serves checks on a port of its own.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
AWSD=0 # no aws CLI call: the store is read by s3check.py
TRIALS=${CRASH_TRIALS:-50}
new_project
SITE=$T/crash-site
mkdir -p "$SITE/assets" "$SITE/docs"
for i in $(seq 1 10); do printf 'page %s\n' "$i" >"$SITE/docs/p$i.html"; done
head -c 200000 /dev/urandom >"$SITE/assets/a.bin"
head -c 200000 /dev/urandom >"$SITE/assets/b.bin"

moto_start --serial || done_testing
moto_bucket crash || done_testing
DIRECT=$(moto_store_url data)
# ask PORT FORMAT ARGS...: sends printf FORMAT ARGS to a helper on PORT and prints its
# answer after the first line, the status, which it returns.
ask() {
    local fd rc out port=$1
    shift
    exec {fd}<>"/dev/tcp/127.0.0.1/$port" || return 2
    # shellcheck disable=SC2059
    printf "$@" >&"$fd"
    read -r -u "$fd" rc
    IFS= read -r -d '' -u "$fd" out
    exec {fd}>&-
    printf '%s' "$out"
    return "${rc:-2}"
}
spawn "$MOTO_PY" "$ROOT/tests/e2e/s3check.py" "$MOTO_URL" crash data "$T/s3check.cache" serve "$T/s3check.port" \
    2>"$T/s3check.err"
spawn "$MOTO_PY" "$ROOT/tests/e2e/killproxy.py" --target "127.0.0.1:$MOTO_PORT" --pid-file "$T/pid" \
    >"$T/killproxy.port" 2>"$T/killproxy.err"
wait_for "s3check.py and killproxy.py listen" 30 test -s "$T/s3check.port" -a -s "$T/killproxy.port" || done_testing
read -r S3CHECK_PORT <"$T/s3check.port"
read -r PROXY_PORT CONTROL_PORT <"$T/killproxy.port"
# s3check ARGS...: s3check.py on the store (its cache of checked bodies and manifests in $T).
s3check() { ask "$S3CHECK_PORT" '%s\0' "$@" ""; }
# control LINE: one command to killproxy.py ("arm K before|after LOG", "end").
control() { ask "$CONTROL_PORT" '%s\n' "$1" || fail "killproxy.py refused '$1': $(cat "$T/killproxy.err")"; }
# lock_pid ENV: the pid the lease in ENV's state named at the last check.
lock_pid() { sed -n "s/^$1 //p" "$T/locks"; }

# prepare N: as 050: odd trials deploy one changed page to staging and switch; even ones
# also change a body and deploy to dev; every fifth starts without the stat cache.
prepare() {
    printf 'page 1, trial %s\n' "$1" >"$SITE/docs/p1.html"
    [ $(($1 % 5)) = 0 ] && rm -rf "$T/p/.slipway/cache"
    if [ $(($1 % 2)) = 0 ]; then
        head -c 200000 /dev/urandom >"$SITE/assets/$([ $(($1 % 4)) = 0 ] && echo a || echo b).bin"
        env=dev sw_args=()
    else
        env=staging sw_args=(--switch)
    fi
}
# proxied K [before|after]: the trial's deploy through the killproxy, armed to kill it at its
# K-th request (K=0: never); the proxy's lines (one a request, "killed at N") in
# $T/requests. Exit status that of the deploy (137 when killed).
proxied() {
    local st
    control "arm $1 ${2:-before} $T/requests"
    sh -c 'echo $$ > "$0"; exec "$@"' "$T/pid" "$SLIPWAY" --store "$(moto_store_url data "http://127.0.0.1:$PROXY_PORT")" \
        deploy "$SITE" --env "$env" "${sw_args[@]}" -q
    st=$?
    control end
    return $st
}
requests() { grep -c '^[0-9]* ' "$T/requests"; }
fewest() {
    if [ "$env" = dev ]; then m_dev=$(($1 < m_dev ? $1 : m_dev)); else m_staging=$(($1 < m_staging ? $1 : m_staging)); fi
}

SLIPWAY_STORE=$DIRECT "$SLIPWAY" deploy "$SITE" --env dev -q >/dev/null || fail "first deploy"
m_dev=9999 m_staging=9999
for w in 1001 1002 1003 1004 1005 1006; do
    prepare "$w"
    proxied 0 >"$T/out.warm" 2>&1 || fail "warm-up deploy: $(cat "$T/out.warm")"
    fewest "$(requests)"
done
echo "# a whole deploy sends $m_dev requests to dev, $m_staging to staging (fewest of three warm-ups each)"
s3check check >/dev/null || fail "the store after the warm-ups: $(s3check check)"

start=$SECONDS
trials=0 inconsistent=0 killed=0 finished=0 beyond=0 misplaced=0 stale=0 after=0 last_pid= points=
# The next kill case of each kind of deploy (see the top): c mod 2M, point c mod M + 1,
# after moto applied it when c mod 2M >= M.
case_dev=$RANDOM case_staging=$RANDOM
for i in $(seq 1 "$TRIALS"); do
    prepare "$i"
    # One trial in six runs to the end, to check the deploy after the kills.
    m=$m_staging c=$case_staging k=0 mode=before
    [ "$env" = dev ] && m=$m_dev c=$case_dev
    if [ $((i % 6)) != 3 ]; then
        k=$((c % m + 1))
        [ $((c % (2 * m))) -ge "$m" ] && mode=after
        if [ "$env" = dev ]; then case_dev=$((c + 1)); else case_staging=$((c + 1)); fi
    fi
    proxied "$k" "$mode" >"$T/out.$i" 2>&1
    st=$?
    trials=$((trials + 1))
    n=$(requests)
    if [ "$st" = 137 ]; then
        killed=$((killed + 1)) last_pid=$(cat "$T/pid") points="$points $k"
        [ "$mode" = after ] && after=$((after + 1)) points=${points}a
        # Other threads of the deploy may have sent a request or two more meanwhile.
        grep -qx "killed at $k" "$T/requests" && [ "$n" -ge "$k" ] || misplaced=$((misplaced + 1))
    else
        finished=$((finished + 1)) last_pid=
        [ "$st" = 0 ] && [ "$k" = 0 ] && fewest "$n"
        if [ "$k" -gt 0 ]; then
            if [ "$n" -lt "$k" ]; then beyond=$((beyond + 1)); else misplaced=$((misplaced + 1)); fi
        fi
    fi
    # The check ages the leases the kill left (but after the last trial, whose lease is tested).
    age=(age)
    [ "$i" = "$TRIALS" ] && age=()
    problems=$(s3check check locks="$T/locks" "${age[@]}")
    if [ "$st" = 0 ]; then
        live=$(s3check live "$env")
        problems="$problems$(s3check describes "$live" "$SITE")"
    elif [ "$st" != 137 ]; then
        problems="$problems${problems:+; }exit $st: $(cat "$T/out.$i")"
    fi
    if [ -n "$problems" ]; then
        inconsistent=$((inconsistent + 1))
        echo "# trial $i ($env, kill at request $k${mode[*]:+ after it}, exit $st): $(head -3 <<<"$problems")"
    fi
    [ "$i" -lt "$TRIALS" ] && [ -n "$last_pid" ] && [ "$(lock_pid "$env")" = "$last_pid" ] && stale=$((stale + 1))
done
echo "# kills at request (a: after moto applied it):$(tr ' ' '\n' <<<"${points# }" | sort -n | uniq -c | awk '{printf " %s:%s", $2, $1}')"
echo "# $trials trials in $((SECONDS - start))s, $inconsistent inconsistent ($killed killed mid-way, $after of them after moto applied the request; $finished finished, of which $beyond ended before their kill point; $stale left their lease behind)"
check "$trials SIGKILL trials on s3 leave every environment on complete releases ($inconsistent inconsistent)" \
    test "$inconsistent" = 0 -a "$trials" -ge 50
check "every kill point a deploy reached killed it there ($misplaced did not)" test "$misplaced" = 0
check "the kills landed while deploys were running ($killed of $trials, at least two in three)" \
    test "$((killed * 3))" -ge "$((trials * 2))"

export SLIPWAY_STORE=$DIRECT
if [ -n "$last_pid" ] && [ "$(lock_pid "$env")" = "$last_pid" ]; then
    printf 'after the kills\n' >"$SITE/docs/p2.html"
    sw deploy "$SITE" --env "$env" -q
    expect_rc "a lease left by the last killed deploy (dead pid $last_pid, this host) is taken over at once" 0
else
    echo "# the last kill left no lease"
    sw deploy "$SITE" --env dev -q
    expect_rc "after the kills, the next deploy succeeds" 0
fi
check "...and leaves the store consistent" s3check check
# The same, made certain: a deploy killed while it holds the lease (the test hook holds it
# until a file exists, after making FILE.held).
SLIPWAY_TEST_DEPLOY_HOLD_FILE=$T/go "$SLIPWAY" deploy "$SITE" --env staging -q >/dev/null 2>&1 &
pid=$!
wait_for "the held deploy takes the lease" 20 test -e "$T/go.held"
kill -9 "$pid"
wait "$pid" 2>/dev/null
s3check check locks="$T/locks" >/dev/null
check "(the killed deploy left its lease in the state)" test "$(lock_pid staging)" = "$pid"
gen() { SLIPWAY_STORE=$DIRECT "$SLIPWAY" status --json | "$MOTO_PY" -c "import json,sys; print([e['generation'] for e in json.load(sys.stdin)['environments'] if e['name'] == '$1'][0])"; }
gen_before=$(gen staging)
sw deploy "$SITE" --env staging -q
expect_rc "a lease whose holder died on this host is taken over at once" 0
s3check check locks="$T/locks" >/dev/null
check "...the deploy went through, and its write left the lease out" \
    eval '[ "$(gen staging)" = $((gen_before + 1)) ] && [ -z "$(lock_pid staging)" ]'
sw history dev --verify
expect_rc "the audit chain in the bucket survived the kills" 0
sw gc --apply --grace 0s
expect_rc "gc --apply --grace 0s after the kills" 0
check "after gc: environments on complete releases, every body referenced" s3check check strict
sw rollback staging -q
expect_rc "after gc the environments still deploy and roll back" 0
done_testing

#!/usr/bin/env bash
# Crash safety: `slipway deploy DIR` is killed with SIGKILL in the middle of its
# write path; after every kill, each environment must point only at complete
# releases (manifest present, every body present with the right size and
# SHA-256), and every manifest in the store must be complete. gc then removes
# what the kills left behind, and a lease a killed deploy left in a state is
# taken over at once on the same host (its holder is gone) or once it expires.
#
# Where a kill lands is set by the deploy's own progress, not by the clock (a
# timed kill lands after the deploy has finished whenever load makes the deploy
# faster or the sleep longer than measured): strace stops the deploy at its K-th
# fsync and kills it there. Every durable step of the write path (bodies,
# manifest, stat cache, lease, state, event, lease given back) is a temporary written and
# fsynced, renamed, and its directory fsynced, so K drawn from 1..(the fsyncs of
# a whole deploy of the same kind, counted on warm-up deploys) is a crash
# between any two of those steps. The checker reads the store, never strace.
#
# The kill points of each kind of deploy are swept (1..m from a random start, not
# drawn at random), and the trials go on until every point of both kinds has been
# aimed at: about 40 trials. Locally there are at least CRASH_TRIALS (60), which
# aim at every point once and at half of them twice; in CI (CI set, as .ci/run
# does) the default is that one sweep, in two thirds of the time: it still
# reaches every crash point, which 60 random draws did not always do.
. "$(dirname "$0")/lib.sh"

if [ -n "${CI:-}" ]; then TRIALS=${CRASH_TRIALS:-1}; else TRIALS=${CRASH_TRIALS:-60}; fi
new_project
DATA=$T/p/.slipway/data
# Every trial checks the whole store: a body checked before and untouched since is not hashed again.
export STORE_CHECK_CACHE=$T/hashed
SITE=$T/crash-site
mkdir -p "$SITE/assets" "$SITE/docs"
for i in $(seq 1 300); do printf 'page %s\n' "$i" > "$SITE/docs/p$i.html"; done
head -c 1000000 /dev/urandom > "$SITE/assets/a.bin"
head -c 1000000 /dev/urandom > "$SITE/assets/b.bin"

# describes ENV: the release live on ENV lists exactly SITE's files with their
# SHA-256, and each state's live slot holds its live release.
describes() {
    python3 - "$DATA" "$SITE" "$1" <<'EOF'
import glob, hashlib, json, os, sys
data, site, env = sys.argv[1:]
rid = json.load(open("%s/envs/%s/state.json" % (data, env)))["live_release"]
got = {f["path"]: f["blob"] for f in json.load(open("%s/releases/%s.json" % (data, rid)))["files"]}
want = {}
for d, _, fs in os.walk(site):
    for n in fs:
        p = os.path.join(d, n)
        want[os.path.relpath(p, site)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
if got != want:
    print("release %s does not describe %s" % (rid, site))
for p in glob.glob(data + "/envs/*/state.json"):
    s = json.load(open(p))
    if s.get("live_slot") and s["slots"][s["live_slot"]]["release"] != s["live_release"]:
        print("%s: the live slot does not hold the live release" % p)
EOF
}
# age_leases ENV: sets lp to the pid ENV's lease names (empty when there is none),
# then makes every lease a killed deploy left in a state stale (as its 60 s would),
# so the next trial takes it over instead of waiting. In bash and sed, as it runs
# after every trial: "expires" is the lease's alone in a state document.
age_leases() {
    local f j
    lp=
    for f in "$DATA"/envs/*/state.json; do
        [ -f "$f" ] || continue
        j=$(<"$f")
        [[ $j == *'"lease"'* ]] || continue
        [ "$f" = "$DATA/envs/$1/state.json" ] && [[ $j =~ \"pid\":\ ([0-9]+) ]] && lp=${BASH_REMATCH[1]}
        sed 's/"expires": "[^"]*"/"expires": "2000-01-01T00:00:00.000Z"/' "$f" >"$f.aged" && mv "$f.aged" "$f"
    done
}

# lease_pid ENV: the pid named by the lease in ENV's state, if there is one.
lease_pid() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lease"]["pid"])' \
        "$DATA/envs/$1/state.json" 2>/dev/null
}
# set_lease ENV JSON: writes JSON as the lease of ENV's state (null: none), as a
# holder would have.
set_lease() {
    python3 - "$DATA/envs/$1/state.json" "$2" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))
lease = json.loads(sys.argv[2])
if lease is None:
    s.pop("lease", None)
else:
    s["lease"] = lease
open(sys.argv[1] + ".new", "w").write(json.dumps(s, indent=2))
os.rename(sys.argv[1] + ".new", sys.argv[1])
PY
}
has_lease() { grep -q '"lease"' "$DATA/envs/$1/state.json" 2>/dev/null; }
# prepare N: changes the site for trial N and sets env and sw_args. Odd trials
# deploy one changed page to staging and switch; even ones also change a 1 MB
# body and deploy to dev; every fifth starts without the stat cache, so every
# file is read again.
prepare() {
    printf 'page 1, trial %s\n' "$1" > "$SITE/docs/p1.html"
    [ $(($1 % 5)) = 0 ] && rm -rf "$T/p/.slipway/cache"
    if [ $(($1 % 2)) = 0 ]; then
        head -c 1000000 /dev/urandom > "$SITE/assets/$([ $(($1 % 4)) = 0 ] && echo a || echo b).bin"
        env=dev sw_args=()
    else
        env=staging sw_args=(--switch)
    fi
}
# traced K PIDFILE: the trial's deploy under strace, which kills it with SIGKILL
# on entering its K-th fsync (K=0: never), logs the fsyncs to $T/fsyncs and
# writes the deploy's pid to PIDFILE. Exit status that of the deploy (137 when
# killed). LeakSanitizer cannot run under ptrace, so it is off here.
traced() {
    local inject=()
    [ "$1" -gt 0 ] && inject=(-e inject=fsync:signal=KILL:when="$1")
    ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 strace -qq -o "$T/fsyncs" -e trace=fsync "${inject[@]}" \
        sh -c 'echo $$ > "$0"; exec "$@"' "$2" "$SLIPWAY" deploy "$SITE" --env "$env" "${sw_args[@]}" -q
}
fsyncs() { grep -c '^fsync(' "$T/fsyncs"; }
# fewest N: a whole deploy to $env made N fsyncs; m_dev / m_staging keep the fewest seen.
fewest() {
    if [ "$env" = dev ]; then m_dev=$(($1 < m_dev ? $1 : m_dev)); else m_staging=$(($1 < m_staging ? $1 : m_staging)); fi
}

if ! strace -qq -o /dev/null true 2>/dev/null; then
    fail "strace runs here (it places the kills; scripts/install-deps installs it)"
    done_testing
fi
"$SLIPWAY" deploy "$SITE" --env dev -q || fail "first deploy"
# How many fsyncs a whole deploy of each kind makes here: the fewest of three,
# lowered by every trial that runs to the end. (A body that needs a new blob
# directory adds three, for the directory's ancestors, so counts differ.)
m_dev=999 m_staging=999
for w in 1001 1002 1003 1004 1005 1006; do
    prepare "$w"
    traced 0 "$T/pid" > "$T/out.warm" 2>&1 || fail "warm-up deploy: $(cat "$T/out.warm")"
    fewest "$(fsyncs)"
done
echo "# a whole deploy makes $m_dev fsyncs to dev, $m_staging to staging (fewest of three warm-ups each)"

# hit_dev / hit_staging: the kill points of that kind some trial has aimed at.
declare -A hit_dev=() hit_staging=()
next_dev=$RANDOM next_staging=$RANDOM
# swept: every kill point 1..m of both kinds has been aimed at.
swept() {
    local k
    for ((k = 1; k <= m_dev; k++)); do [ -n "${hit_dev[$k]:-}" ] || return 1; done
    for ((k = 1; k <= m_staging; k++)); do [ -n "${hit_staging[$k]:-}" ] || return 1; done
}
trials=0 inconsistent=0 killed=0 finished=0 beyond=0 misplaced=0 stale=0 last_pid= points=
for ((i = 1; ; i++)); do
    prepare "$i"
    # One trial in seven (of each kind in turn) runs to the end, to check the
    # deploy after the kills; the others kill at the next point of their kind's sweep.
    k=0
    if [ $((i % 7)) != 3 ]; then
        if [ "$env" = dev ]; then
            k=$((next_dev++ % m_dev + 1)) && hit_dev[$k]=1
        else
            k=$((next_staging++ % m_staging + 1)) && hit_staging[$k]=1
        fi
    fi
    traced "$k" "$T/pid" > "$T/out.$i" 2>&1 &
    { wait $!; } 2>/dev/null; st=$?
    trials=$((trials + 1))
    n=$(fsyncs)
    if [ "$st" = 137 ]; then
        killed=$((killed + 1)); last_pid=$(cat "$T/pid"); points="$points $k"
        # The k-1 fsyncs before it returned; the k-th was entered and never returned.
        [ "$n" = "$k" ] && grep -q '^+++ killed by SIGKILL' "$T/fsyncs" || misplaced=$((misplaced + 1))
    else
        finished=$((finished + 1)); last_pid=
        [ "$st" = 0 ] && fewest "$n"
        # A kill point the deploy reached must have killed it.
        if [ "$k" -gt 0 ]; then
            if [ "$n" -lt "$k" ]; then beyond=$((beyond + 1)); else misplaced=$((misplaced + 1)); fi
        fi
    fi
    if [ "$st" = 0 ]; then
        problems=$(store_check "$DATA"; describes "$env")
    else
        problems=$(store_check "$DATA")
    fi
    if [ "$st" != 0 ] && [ "$st" != 137 ]; then
        problems="$problems${problems:+; }exit $st: $(cat "$T/out.$i")"
    fi
    if [ -n "$problems" ]; then
        inconsistent=$((inconsistent + 1))
        echo "# trial $i ($env, kill at fsync $k, exit $st): $(head -3 <<<"$problems")"
    fi
    # The last trial's lease stays as it is, for the take-over check below.
    [ "$i" -ge "$TRIALS" ] && swept && break
    [ "$i" -ge $((TRIALS + 200)) ] && break # never: a sweep ends within 2 m + m / 3 trials
    age_leases "$env"
    [ -n "$last_pid" ] && [ "$lp" = "$last_pid" ] && stale=$((stale + 1))
done
echo "# kills at fsync:$(tr ' ' '\n' <<<"${points# }" | sort -n | uniq -c | awk '{printf " %s:%s", $2, $1}')"
echo "# $trials trials, $inconsistent inconsistent ($killed killed mid-way, $finished finished, of which $beyond ended before their kill point; $stale left their lease behind)"
check "$trials SIGKILL trials leave every environment on complete releases ($inconsistent inconsistent)" \
    test "$inconsistent" = 0 -a "$trials" -ge "$TRIALS"
check "every kill point of both kinds was aimed at (1..$m_dev to dev: ${#hit_dev[@]}, 1..$m_staging to staging: ${#hit_staging[@]})" swept
check "every kill point a deploy reached killed it there ($misplaced did not)" test "$misplaced" = 0
check "the kills landed while deploys were running ($killed of $trials, at least two in three)" \
    test "$((killed * 3))" -ge "$((trials * 2))"

# The last kill may have left a lease. Its holder died on this host, so the
# next deploy takes it over at once instead of waiting it out.
if [ -n "$last_pid" ] && [ "$(lease_pid "$env")" = "$last_pid" ]; then
    lenv=$env
    printf 'after the kills\n' > "$SITE/docs/p2.html"
    sw deploy "$SITE" --env "$lenv" -q
    expect_rc "a lease left by the last killed deploy (dead pid $last_pid, this host) is taken over at once" 0
    check "...and leaves the store consistent" store_check "$DATA"
else
    echo "# the last kill left no lease"
    sw deploy "$SITE" --env dev; expect_rc "after the kills, the next deploy succeeds" 0
fi
# The same, made certain: a deploy killed while it holds the lease (the test hook
# makes it hold it for 5 s). Aged leases of earlier trials go first, so the
# wait below sees this deploy's lease and not a leftover.
for e in dev staging; do has_lease "$e" && set_lease "$e" null; done
SLIPWAY_TEST_DEPLOY_DELAY_MS=5000 "$SLIPWAY" deploy "$SITE" --env staging -q > /dev/null 2>&1 &
pid=$!
wait_for "the slow deploy takes the lease" 20 has_lease staging
kill -9 "$pid"; { wait "$pid"; } 2>/dev/null
check "(the killed deploy left its lease)" test "$(lease_pid staging)" = "$pid"
gen_before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$DATA/envs/staging/state.json")
sw deploy "$SITE" --env staging -q
expect_rc "a lease whose holder died on this host is taken over at once" 0
check "...the deploy went through" test "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$DATA/envs/staging/state.json")" = "$((gen_before + 1))"
check "...and its write left the lease out" eval '! has_lease staging'
# A lease held by a live process on this host is respected, and says when it ends.
sleep 30 & live=$!
set_lease staging "$(printf '{"owner":"%s","pid":%d,"actor":"alive","action":"deploy","since":"2000-01-01T00:00:00.000Z","expires":"2999-01-01T00:00:00.000Z"}' "$(hostname)" "$live")"
sw deploy "$SITE" --env staging -q
expect_err "a lease held by a live process here: refused, naming it and when it expires" 1 "locked.*deploy by alive, pid $live on $(hostname).*lease expires at 2999-01-01T00:00:00.000Z"
kill "$live"; wait "$live" 2>/dev/null
set_lease staging null
# A stale lease (expired) is taken over without anyone removing it. (The site
# changes first: a deploy of what is already live changes nothing and takes no lease.)
printf 'expired lock\n' > "$SITE/docs/p3.html"
set_lease dev '{"owner":"elsewhere","pid":1,"actor":"ghost","action":"deploy","since":"2000-01-01T00:00:00.000Z","expires":"2000-01-01T00:01:00.000Z"}'
sw deploy "$SITE" --env dev -q; expect_rc "an expired lease is taken over" 0
check "...and gone afterwards" eval '! has_lease dev'
printf 'live lock elsewhere\n' > "$SITE/docs/p3.html"
set_lease dev '{"owner":"elsewhere","pid":4242,"actor":"ghost","action":"switch","since":"2000-01-01T00:00:00.000Z","expires":"2999-01-01T00:00:00.000Z"}'
sw deploy "$SITE" --env dev -q; expect_err "a live lease elsewhere names its holder and when it expires" 1 "locked.*switch by ghost, pid 4242 on elsewhere.*expires at 2999"
set_lease dev null
sw history dev --verify; expect_rc "the audit chain survived the kills" 0

# gc removes what the kills left behind.
tmp_before=$(find "$DATA" -name '.tmp.*' | wc -l)
sw gc --apply --grace 0s; expect_rc "gc --apply --grace 0s after the kills" 0
echo "# $tmp_before temporary files before gc"
check "no temporary files remain after gc" test -z "$(find "$DATA" -name '.tmp.*')"
check "after gc: environments on complete releases, every body referenced, no temporaries" \
    store_check "$DATA" strict
check "after gc the environments still deploy and roll back" "$SLIPWAY" rollback staging -q
done_testing

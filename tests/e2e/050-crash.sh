#!/usr/bin/env bash
# Crash safety: `slipway deploy DIR` is killed with SIGKILL at random moments;
# after every kill, each environment must point only at complete releases
# (manifest present, every body present with the right size and SHA-256), and
# every manifest in the store must be complete. gc then removes what the kills
# left behind, and a lock left by a killed deploy names its holder and does not
# block once it is stale.
. "$(dirname "$0")/lib.sh"

TRIALS=${CRASH_TRIALS:-60}
new_project
DATA=$T/p/.slipway/data
SITE=$T/crash-site
mkdir -p "$SITE/assets" "$SITE/docs"
for i in $(seq 1 300); do printf 'page %s\n' "$i" > "$SITE/docs/p$i.html"; done
head -c 1000000 /dev/urandom > "$SITE/assets/a.bin"
head -c 1000000 /dev/urandom > "$SITE/assets/b.bin"

# describes ID: release ID lists exactly SITE's files with their SHA-256, and
# each state's live slot holds its live release.
describes() {
    python3 - "$DATA" "$SITE" "$1" <<'EOF'
import glob, hashlib, json, os, sys
data, site, rid = sys.argv[1:]
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
# age_locks: makes every lock a killed deploy left stale (as its 60 s lease would),
# so the next trial takes it over instead of waiting.
age_locks() {
    local l
    for l in "$DATA"/envs/*/lock; do
        [ -f "$l" ] || continue
        python3 - "$l" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["expires"] = "2000-01-01T00:00:00.000Z"
open(sys.argv[1], "w").write(json.dumps(d))
EOF
    done
}

# How long a deploy like a trial's takes here, to spread the kills over all of it.
"$SLIPWAY" deploy "$SITE" --env dev -q || fail "first deploy"
dur=0
for k in 1 2 3; do
    printf 'warm %s\n' "$k" > "$SITE/docs/p1.html"
    head -c 1000000 /dev/urandom > "$SITE/assets/a.bin"
    t0=$(date +%s%N)
    "$SLIPWAY" deploy "$SITE" --env staging --switch -q || fail "warm-up deploy"
    dur=$(( dur + ($(date +%s%N) - t0) / 3000000 ))
done
max_ms=$(( dur * 3 / 2 ))
max_ms=$(( max_ms < 20 ? 20 : max_ms > 300 ? 300 : max_ms ))
echo "# a deploy takes ${dur} ms; killing after 0..${max_ms} ms"

trials=0 inconsistent=0 killed=0 finished=0 stale=0 last_pid=
for i in $(seq 1 "$TRIALS"); do
    # Each trial a new release: one page changes, and every other time a 1 MB body.
    printf 'page 1, trial %s\n' "$i" > "$SITE/docs/p1.html"
    [ $((i % 2)) = 0 ] && head -c 1000000 /dev/urandom > "$SITE/assets/$([ $((i % 4)) = 0 ] && echo a || echo b).bin"
    [ $((i % 5)) = 0 ] && rm -rf "$T/p/.slipway/cache" # sometimes every file is read again
    if [ $((i % 2)) = 0 ]; then env=dev; sw_args=(); else env=staging; sw_args=(--switch); fi
    "$SLIPWAY" deploy "$SITE" --env "$env" "${sw_args[@]}" -q > "$T/out.$i" 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' $((RANDOM % max_ms)))"
    kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null; st=$?
    trials=$((trials + 1))
    if [ "$st" = 137 ]; then killed=$((killed + 1)); last_pid=$pid; else finished=$((finished + 1)); last_pid=; fi
    if [ "$st" = 0 ]; then
        live=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["live_release"])' "$DATA/envs/$env/state.json")
        problems=$(store_check "$DATA"; describes "$live")
    else
        problems=$(store_check "$DATA")
    fi
    if [ "$st" != 0 ] && [ "$st" != 137 ]; then
        problems="$problems${problems:+; }exit $st: $(cat "$T/out.$i")"
    fi
    if [ -n "$problems" ]; then
        inconsistent=$((inconsistent + 1))
        echo "# trial $i ($env, exit $st): $(head -3 <<<"$problems")"
    fi
    if [ "$i" -lt "$TRIALS" ]; then
        ls "$DATA"/envs/*/lock >/dev/null 2>&1 && stale=$((stale + 1))
        age_locks
    fi
done
echo "# $trials trials, $inconsistent inconsistent ($killed killed mid-way, $finished finished; $stale left a lock behind)"
check "$trials SIGKILL trials leave every environment on complete releases ($inconsistent inconsistent)" \
    test "$inconsistent" = 0 -a "$trials" -ge 50
check "the kills landed while deploys were running (at least 15 of $trials)" test "$killed" -ge 15

# The last kill may have left a lock: the next deploy says who holds it, or succeeds.
# Only the last trial's environment counts: locks of earlier trials were aged
# (expired) on purpose and are taken over silently.
lockfile=
[ -n "$last_pid" ] && [ -f "$DATA/envs/$env/lock" ] && lockfile=$DATA/envs/$env/lock
if [ -n "$lockfile" ]; then
    lenv=$env
    printf 'after the kills\n' > "$SITE/docs/p2.html"
    sw deploy "$SITE" --env "$lenv" -q
    expect_err "a lock left by the last killed deploy: the next deploy fails naming the holder" 1 "locked.*pid $last_pid"
    check "...and leaves the store consistent" store_check "$DATA"
    rm -f "$DATA"/envs/*/lock
    sw deploy "$SITE" --env "$lenv"; expect_rc "with the stale lock removed, deploy succeeds" 0
else
    echo "# the last kill left no lock"
    sw deploy "$SITE" --env dev; expect_rc "after the kills, the next deploy succeeds" 0
fi
# The same, made certain: a deploy killed while it holds the lock (the test hook
# makes it hold the lock for 5 s). Aged locks of earlier trials go first, so the
# wait below sees this deploy's lock and not a leftover.
rm -f "$DATA"/envs/*/lock
SLIPWAY_TEST_DEPLOY_DELAY_MS=5000 "$SLIPWAY" deploy "$SITE" --env staging -q > /dev/null 2>&1 &
pid=$!
wait_for "the slow deploy takes the lock" 20 test -e "$DATA/envs/staging/lock"
kill -9 "$pid"; { wait "$pid"; } 2>/dev/null
gen_before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$DATA/envs/staging/state.json")
sw deploy "$SITE" --env staging -q
expect_err "a lock left by a killed deploy: the next deploy fails with 'locked', naming the holder" 1 "locked.*deploy by $SLIPWAY_ACTOR, pid $pid on $(hostname)"
check "...and does not change the state" test "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' "$DATA/envs/staging/state.json")" = "$gen_before"
rm -f "$DATA"/envs/*/lock
sw deploy "$SITE" --env staging -q; expect_rc "with the lock removed, the deploy succeeds" 0
# A stale lock (lease expired) is taken over without anyone removing it.
printf '{"owner":"elsewhere","pid":1,"actor":"ghost","action":"deploy","since":"2000-01-01T00:00:00.000Z","expires":"2000-01-01T00:01:00.000Z"}' > "$DATA/envs/dev/lock"
sw deploy "$SITE" --env dev -q; expect_rc "an expired lock is taken over" 0
check "...and released afterwards" test ! -e "$DATA/envs/dev/lock"
printf '{"owner":"elsewhere","pid":4242,"actor":"ghost","action":"switch","since":"2000-01-01T00:00:00.000Z","expires":"2999-01-01T00:00:00.000Z"}' > "$DATA/envs/dev/lock"
sw deploy "$SITE" --env dev -q; expect_err "a live lock names its holder" 1 "locked.*switch by ghost, pid 4242 on elsewhere"
rm "$DATA/envs/dev/lock"
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

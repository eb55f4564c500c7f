#!/usr/bin/env bash
# deploy DIR on an S3 store under ThreadSanitizer: its most threaded path. The TSan
# binary (tests/e2e/tsan.sh, shared with 125) deploys a 300-file site to moto: the
# store opens on a thread of its own while the walk's threads hash and the environment's
# state is read on another; bodies go up in parallel (packs, and blobs of their own over
# 64 KiB); the change begun ahead (the lock, the probe, the audit head) takes the early
# read of the state from the reading thread. Then the same DIR again (nothing to do), one
# page changed (the change begun mid-walk), two deploys of different trees at once (one
# takes the lock, the other is refused or follows), `releases` and `gc`. TSan must report
# nothing: halt_on_error makes a report exit 66, and stderr is searched besides.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
. "$ROOT/tests/e2e/tsan.sh"
moto_require
check "TSan build of slipway" tsan_build
[ -x "$TSAN" ] || done_testing
moto_start || done_testing
moto_bucket tsan || done_testing
new_project
export SLIPWAY_STORE
SLIPWAY_STORE=$(moto_store_url data)

SITE=$T/big
mkdir -p "$SITE/css" "$SITE/img"
for i in $(seq 1 290); do printf '<!doctype html><h1>page %d</h1><p>%s</p>\n' "$i" \
    "$(head -c 3000 /dev/zero | tr '\0' "$((i % 10))")" >"$SITE/p$i.html"; done
for i in $(seq 1 300); do printf '.c%d{margin:%dpx}\n' "$i" "$i"; done >"$SITE/css/app.css"
for i in $(seq 1 9); do head -c $((20000 * i)) /dev/urandom >"$SITE/img/i$i.png"; done

export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1"
# tsw ARGS: the TSan binary, as sw runs the test binary; stderr kept whole in $T/tsan.err.
tsw() {
    out=$("$TSAN" "$@" 2>"$T/.stderr"); rc=$?
    errout=$(cat "$T/.stderr")
    cat "$T/.stderr" >>"$T/tsan.err"
    return 0
}

tsw -q deploy "$SITE" --env dev
expect_rc "TSan: deploy DIR to S3, the first upload (300 files)" 0
tsw -q deploy "$SITE" --env dev
expect_rc "TSan: the same DIR again (already live)" 0
printf '<!doctype html><h1>page 7, changed</h1>\n' >"$SITE/p7.html"
tsw -q deploy "$SITE" --env dev
expect_rc "TSan: one page changed (the change begun during the walk)" 0
tsw -q status --json
verify "  the changed page's release is live" 'echo "# $out $errout"' \
    eval '[ "$rc" = 0 ] && [ "$(json "[e[\"generation\"] for e in j[\"environments\"] if e[\"name\"] == \"dev\"][0]")" = 2 ]'

# Two trees deployed at once: each process's threads under TSan, and the two meet at the
# environment's lock (the second waits out nothing: it is refused, exit 1, or it comes
# after the first and deploys).
cp -r "$SITE" "$T/other"
printf '<!doctype html><h1>other</h1>\n' >"$T/other/p1.html"
printf '<!doctype html><h1>page 8, changed</h1>\n' >"$SITE/p8.html"
"$TSAN" -q deploy "$SITE" --env dev >"$T/a.out" 2>"$T/a.err" &
a=$!
"$TSAN" -q deploy "$T/other" --env dev >"$T/b.out" 2>"$T/b.err" &
b=$!
wait "$a"
ra=$?
wait "$b"
rb=$?
cat "$T/a.err" "$T/b.err" >>"$T/tsan.err"
verify "TSan: two deploys at once: neither is a TSan report (exit 66), at least one deploys" \
    'echo "# exits $ra $rb"; sed "s/^/# /" "$T/a.err" "$T/b.err" | head -20' \
    eval '[ "$ra" != 66 ] && [ "$rb" != 66 ] && { [ "$ra" = 0 ] || [ "$rb" = 0 ]; } &&
        { [ "$ra" = 0 ] || grep -q "locked\|changed by another" "$T/a.err"; } &&
        { [ "$rb" = 0 ] || grep -q "locked\|changed by another" "$T/b.err"; }'

tsw -q releases
expect_rc "TSan: releases on S3" 0
tsw -q gc --apply --grace 0s
expect_rc "TSan: gc on S3" 0
tsw -q deploy "$SITE" --env dev
expect_rc "TSan: deploy DIR after gc" 0

check "no ThreadSanitizer warning" eval '! grep -q "WARNING: ThreadSanitizer" "$T/tsan.err"'
if grep -q "ThreadSanitizer" "$T/tsan.err"; then sed 's/^/# /' "$T/tsan.err" | head -80; fi
done_testing

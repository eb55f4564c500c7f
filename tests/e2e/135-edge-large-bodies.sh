#!/usr/bin/env bash
# Large bodies and the local cache. A body over 64 KiB is streamed from the
# store into .slipway/cache/blobs through a bounded buffer, never held whole:
# loading a 200 MiB body must not raise the serve process's peak RSS anywhere
# near 200 MiB, and the body is served byte for byte. The cache is bounded by
# --cache-max: bodies no loaded release uses are deleted once the last table
# using them is freed (not while a response still sends from one), a release
# that alone needs more than the bound is not loaded (the old one keeps
# serving, the log names both sizes), leftovers of an earlier process are
# swept after the first load, and a cached file is trusted only after this
# process verified it.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 30)

new_project
ENVS=$T/p/.slipway/environments
CACHE=$T/p/.slipway/cache/blobs
rm -f "$ENVS"/*.yml
P=$(free_port); P2=$(free_port); PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/dev.yml"
site() { mkdir -p "$T/$1"; printf '%s\n' "$1" > "$T/$1/index.html"; }
body_is() { [ "$("${C[@]}" "http://127.0.0.1:$1/")" = "$2" ]; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVE/status"; }
metric() { "${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics" | sed -n "s/^$1 //p"; }
cached() { test -f "$CACHE/$1"; }
not_cached() { ! test -e "$CACHE/$1"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- a 200 MiB body is streamed, not held ------------------------------------------------
site small
site huge
head -c $((200 * 1024 * 1024)) /dev/urandom > "$T/huge/big.bin"
HUGE=$(sha "$T/huge/big.bin")
sw deploy "$T/small" --env dev -q; expect_rc "deploy a small release" 0
sw release create "$T/huge" -q; expect_rc "create a release with a 200 MiB body" 0
R_HUGE=$out
spawn "$SLIPWAY" serve --workers 2 --admin "127.0.0.1:$PA" >"$T/serve1.out" 2>"$T/serve1.err"
SERVE=$!
wait_for "serve is up" 30 body_is "$P" small
before=$(hwm_kb)
t0=$(now_ms)
sw deploy "$R_HUGE" --env dev -q; expect_rc "deploy the 200 MiB release" 0
wait_for "the 200 MiB release goes live" 120 body_is "$P" huge
echo "# the 200 MiB release was served $(( $(now_ms) - t0 )) ms after deploy started (sanitizer build)"
after=$(hwm_kb)
echo "# serve peak RSS (VmHWM): ${before} kB before the load, ${after} kB after it"
# The bound: 200 MiB held whole would raise the peak by at least 200 MiB, and
# under ASan by more (redzones, and a quarantine that keeps freed blocks
# resident up to 256 MiB). Streamed through 256 KiB pieces, the growth is a
# few MiB of buffers and the new table; 48 MiB leaves room for the
# sanitizer's allocator and shadow pages while staying far below the body.
check "loading a 200 MiB body raises the peak RSS by less than 48 MiB ($(( (after - before) / 1024 )) MiB)" \
    test $(( after - before )) -lt $(( 48 * 1024 ))
"${C[@]}" --max-time 120 -o "$T/huge.out" "http://127.0.0.1:$P/big.bin"
check "the 200 MiB body is served byte for byte (sha256)" test "$(sha "$T/huge.out")" = "$HUGE"
check "it came from the local cache, named by its hash" cached "$HUGE"
final=$(hwm_kb)
check "serving it (sendfile) does not raise the peak either ($(( (final - before) / 1024 )) MiB)" \
    test $(( final - before )) -lt $(( 48 * 1024 ))
rm -f "$T/huge.out"
kill -TERM "$SERVE"; wait "$SERVE"
check "the cache keeps its files across a restart" cached "$HUGE"

# ---- --cache-max ------------------------------------------------------------------------------
# Release A: a (24 MiB) and b (3 MiB); B: b and c (4 MiB); C: one 33 MiB body;
# D: d (26 MiB). The bound is 32 MiB. a is large enough that a slow download
# of it outlasts what the socket buffers absorb: the server is still sending
# from the old table when the switch happens.
MiB=$((1024 * 1024))
site rel-a; site rel-b; site rel-c; site rel-d
head -c $((24 * MiB)) /dev/urandom > "$T/rel-a/a.bin"
head -c $((3 * MiB)) /dev/urandom > "$T/rel-a/b.bin"
cp "$T/rel-a/b.bin" "$T/rel-b/b.bin"
head -c $((4 * MiB)) /dev/urandom > "$T/rel-b/c.bin"
head -c $((33 * MiB)) /dev/urandom > "$T/rel-c/big.bin"
head -c $((26 * MiB)) /dev/urandom > "$T/rel-d/d.bin"
A=$(sha "$T/rel-a/a.bin"); B=$(sha "$T/rel-a/b.bin"); CC=$(sha "$T/rel-b/c.bin")
sw deploy "$T/rel-a" --env dev -q; expect_rc "deploy release A" 0
# Leftovers an earlier process could leave: a temporary of a fetch it never
# finished, and a body no release uses any more.
mkdir -p "$CACHE"
head -c 100000 /dev/urandom > "$CACHE/.tmp.99999.1"
STALE=$(printf 'stale' | sha256sum | cut -d' ' -f1)
printf 'stale' > "$CACHE/$STALE"
spawn "$SLIPWAY" serve --workers 2 --cache-max 32M --admin "127.0.0.1:$PA" >"$T/serve2.out" 2>"$T/serve2.err"
SERVE=$!
wait_for "serve --cache-max 32M is up" 30 body_is "$P" rel-a
check "after the first load the 200 MiB body of a release no longer loaded is gone" not_cached "$HUGE"
check "after the first load a stale body is gone" not_cached "$STALE"
check "after the first load a crashed fetch's temporary is gone" test ! -e "$CACHE/.tmp.99999.1"
check "the cache holds exactly A's bodies (and serve's lock)" test "$(ls -A "$CACHE" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$A" "$B" .lock | sort | tr '\n' ' ')"
check "  which names the process holding it" test "$(cat "$CACHE/.lock")" = "$SERVE"
check "slipway_cache_bytes counts them (27 MiB)" test "$(metric slipway_cache_bytes)" = $((27 * MiB))
check "slipway_cache_max_bytes is the bound" test "$(metric slipway_cache_max_bytes)" = $((32 * MiB))

# Switch to B while a download of A's a.bin is in flight: the old table is
# retired but not freed, so a.bin stays until the response has been sent.
curl -s --max-time 60 --limit-rate 2M -o "$T/a.out" "http://127.0.0.1:$P/a.bin" &
DL=$!
started() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 100000 ]; }
wait_for "the download of a.bin has started" 10 started "$T/a.out"
sw deploy "$T/rel-b" --env dev -q; expect_rc "deploy release B" 0
wait_for "B is served" 10 body_is "$P" rel-b
check "while a response still sends a.bin from the old release, its file stays" eval 'cached "$A" && kill -0 "$DL"'
wait "$DL"; dlrc=$?
check "the download from the replaced release completes intact" test "$dlrc $(sha "$T/a.out")" = "0 $A"
wait_for "once the old table is freed, a.bin (used by no loaded release) is deleted" 10 not_cached "$A"
check "b.bin, which B shares, stays" cached "$B"
check "c.bin is cached" cached "$CC"
wait_for "slipway_cache_bytes drops to B's 7 MiB" 5 eval 'test "$(metric slipway_cache_bytes)" = $((7 * MiB))'
check "b.bin from B is intact" test "$("${C[@]}" "http://127.0.0.1:$P/b.bin" | sha256sum | cut -d' ' -f1)" = "$B"

# A release that alone needs more than the bound is not loaded; B keeps serving.
sw release create "$T/rel-c" -q; R_C=$out
sw deploy "$R_C" --env dev -q; expect_rc "deploy release C (a 33 MiB body, over --cache-max 32M)" 0
wait_for "the log names the release and both sizes" 10 grep -q "dev: release $R_C: its large bodies need 33 MiB (34603008 bytes) in the local cache, more than --cache-max 32 MiB (33554432 bytes); keeps serving release" "$T/serve2.err"
check "B keeps serving" body_is "$P" rel-b
check "nothing of C was fetched" not_cached "$(sha "$T/rel-c/big.bin")"
check "the admin ready says why" eval '"${C[@]}" "http://127.0.0.1:$PA/_slipway/ready" | grep -q "^dev: serving: release $R_C: its large bodies need 33 MiB"'
check "no temporary is left" test -z "$(ls -A "$CACHE" | grep '^\.' | grep -vx .lock)"
sw rollback dev -q; expect_rc "roll dev back to B" 0

# An environment with nothing older to serve says why in its 503.
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P2" > "$ENVS/stage.yml"
kill -HUP "$SERVE"
wait_for "stage is added" 10 grep -q "reloaded 2 environments" "$T/serve2.err"
sw deploy "$R_C" --env stage -q; expect_rc "deploy C to stage" 0
wait_for "stage answers 503" 10 test "$("${C[@]}" -o "$T/503.out" -w '%{http_code}' "http://127.0.0.1:$P2/")" = 503
check "the 503 says the release does not fit the local cache" grep -q "stage cannot serve: its release does not fit in the edge's local cache" "$T/503.out"
# Two environments whose releases together need more than the bound: both
# load (bodies in use are never deleted), and the log says so.
sw deploy "$T/rel-d" --env stage -q; expect_rc "deploy D to stage" 0
wait_for "stage serves D, beside B on dev" 10 eval 'body_is "$P2" rel-d && body_is "$P" rel-b'
wait_for "the log says the loaded releases (33 MiB) exceed --cache-max" 10 grep -q "local cache: the loaded releases need 33 MiB, more than --cache-max 32 MiB" "$T/serve2.err"
check "slipway_cache_bytes shows it" test "$(metric slipway_cache_bytes)" = $((33 * MiB))
kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0" test "$rc" = 0

# ---- a cached file is trusted only once this process verified it ----------------------------
# Damage the cached copy of b.bin (same size): a new process hashes it before
# use, finds it wrong and fetches it again.
chmod u+w "$CACHE/$B"
python3 -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(1000); f.write(b'X'*64)" "$CACHE/$B"
spawn "$SLIPWAY" serve --workers 1 >"$T/serve3.out" 2>"$T/serve3.err"
SERVE=$!
wait_for "serve is up again" 30 body_is "$P" rel-b
check "a damaged cached file is never served: b.bin is intact" test "$("${C[@]}" "http://127.0.0.1:$P/b.bin" | sha256sum | cut -d' ' -f1)" = "$B"
check "the cached file was replaced by a verified copy" test "$(sha "$CACHE/$B")" = "$B"
kill -TERM "$SERVE"; wait "$SERVE"
check "nothing alarming on stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T"/serve*.err'
done_testing

#!/usr/bin/env bash
# How long a release of large bodies takes to go live on `slipway serve`.
#
# Bodies over 64 KiB are streamed from the store into the local blob cache
# (.slipway/cache/blobs), hashed on the way, before the release's table is
# published. This measures, on the optimised build and the embedded fs store:
#   - a direct environment: from the start of `slipway deploy RELEASE` (the
#     release already created) to the first response of the new release on
#     the live listener, for 1 x 200 MiB and for 1 GiB in 64 x 16 MiB;
#   - a restart with a warm cache: from starting `slipway serve` to the first
#     response, when every cached body must be hashed again before this
#     process trusts it;
#   - the peak RSS (VmHWM) of `slipway serve` over all of it.
# The store's files were just written, so they are mostly in the page cache:
# these are the times of a local store on a warm machine, not of a cold disk
# or a remote bucket.
#
# Bounded: stops itself after 10 minutes. Everything lives in a temporary
# directory removed at exit; the server listens on a free 127.0.0.1 port and
# is killed by PID in a trap.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLIPWAY=$ROOT/slipway
die() { echo "bench/large-release.sh: $*" >&2; exit 1; }
for tool in curl python3 sha256sum; do command -v "$tool" >/dev/null || die "needs $tool"; done
if [ ! -x "$SLIPWAY" ]; then
    make -C "$ROOT" slipway >/dev/null || die "cannot build ./slipway"
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench-large.XXXXXX")
SERVE=
cleanup() { [ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
( sleep 600; echo "bench/large-release.sh: over 10 minutes, stopping" >&2; kill -TERM $$ ) &
WATCHDOG=$!
trap 'kill $WATCHDOG 2>/dev/null; cleanup' EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
P=$(python3 "$ROOT/tests/e2e/port.py" $$)
"$SLIPWAY" init -q "$T/p" || die "init failed"
cd "$T/p"
rm -f .slipway/environments/*.yml
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > .slipway/environments/dev.yml
# served_within NAME SECONDS: polls until / answers NAME.
served_within() {
    local end=$(( $(now_ms) + $2 * 1000 ))
    while [ "$(now_ms)" -lt $end ]; do
        [ "$(curl -s --max-time 2 "http://127.0.0.1:$P/")" = "$1" ] && return 0
        sleep 0.01
    done
    return 1
}
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVE/status"; }
site() { mkdir -p "$T/$1"; printf '%s\n' "$1" > "$T/$1/index.html"; }

site small
site one
site many
head -c $((200 * 1024 * 1024)) /dev/urandom > "$T/one/body.bin"
for i in $(seq 1 64); do head -c $((16 * 1024 * 1024)) /dev/urandom > "$T/many/part-$i.bin"; done
"$SLIPWAY" deploy "$T/small" --env dev -q >/dev/null || die "deploy failed"
R_ONE=$("$SLIPWAY" release create "$T/one" -q) || die "release create failed"
R_MANY=$("$SLIPWAY" release create "$T/many" -q) || die "release create failed"

"$SLIPWAY" serve --workers 2 >"$T/serve.out" 2>"$T/serve.err" &
SERVE=$!
served_within small 30 || die "serve did not come up: $(cat "$T/serve.err")"
echo "peak RSS of serve before: $(hwm) kB"

# golive NAME RELEASE LABEL
golive() {
    local t0 t1 t2
    t0=$(now_ms)
    "$SLIPWAY" deploy "$2" --env dev -q >/dev/null || die "deploy $2 failed"
    t1=$(now_ms)
    served_within "$1" 300 || die "$1 was not served within 300 s: $(tail -3 "$T/serve.err")"
    t2=$(now_ms)
    printf '%-28s deploy %5d ms, live %6d ms after deploy started (%d MiB/s)\n' "$3" \
        $((t1 - t0)) $((t2 - t0)) $(( $4 * 1000 / (t2 - t0 > 0 ? t2 - t0 : 1) ))
}
golive one "$R_ONE" "1 x 200 MiB" 200
golive many "$R_MANY" "64 x 16 MiB (1 GiB)" 1024
echo "peak RSS of serve after both: $(hwm) kB"
kill -TERM "$SERVE"; wait "$SERVE"

t0=$(now_ms)
"$SLIPWAY" serve --workers 2 >"$T/serve2.out" 2>"$T/serve2.err" &
SERVE=$!
served_within many 300 || die "serve did not come up: $(cat "$T/serve2.err")"
t1=$(now_ms)
printf '%-28s serving %d ms after start (every cached body hashed again)\n' \
    "restart, 1 GiB cached" $((t1 - t0))
echo "peak RSS of serve after the restart: $(hwm) kB"

#!/usr/bin/env bash
# Instructions per request of the static path, counted rather than timed.
#
# `slipway serve --workers 1` runs under `valgrind --tool=callgrind` and answers a fixed load:
# N keep-alive GETs of a 1 KiB file on one connection, one at a time. The figure is the
# instructions executed inside the worker thread (worker_main, inclusive) divided by the
# requests. A count does not move with the machine's load, so two builds can be compared on a
# shared machine where wall-clock benchmarks cannot: run it once per binary,
#   SLIPWAY=/path/to/old/slipway bench/http-callgrind.sh; bench/http-callgrind.sh
# (docs/http.md has the figures for the request bodies and streams change).
#
#   BENCH_REQUESTS=N   requests (default 20000)
# Skipped with a note when valgrind is not installed.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLIPWAY=${SLIPWAY:-$ROOT/slipway}
N=${BENCH_REQUESTS:-20000}

die() { echo "bench/http-callgrind.sh: $*" >&2; exit 1; }
case $N in '' | *[!0-9]*) die "BENCH_REQUESTS must be a number" ;; esac
for tool in valgrind callgrind_annotate; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench/http-callgrind.sh: skipped: needs $tool"
        exit 0
    fi
done
for tool in python3 curl; do command -v "$tool" >/dev/null || die "needs $tool"; done
if [ ! -x "$SLIPWAY" ]; then
    make -C "$ROOT" slipway >/dev/null || die "cannot build ./slipway"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/slipway-callgrind.XXXXXX")
PID=
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export SLIPWAY_ACTOR=bench
unset SLIPWAY_STORE

"$SLIPWAY" init -q "$T/p" >/dev/null || die "slipway init failed"
rm -f "$T/p/.slipway/environments/"*.yml
PORT=$(python3 "$ROOT/tests/e2e/port.py" $$)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PORT" >"$T/p/.slipway/environments/bench.yml"
mkdir -p "$T/site"
head -c 1024 /dev/zero | tr '\0' x >"$T/site/index.html"
(cd "$T/p" && "$SLIPWAY" -q deploy "$T/site" --env bench) >/dev/null || die "deploy failed"

(cd "$T/p" && exec valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
    "$SLIPWAY" serve --workers 1) >"$T/serve.log" 2>&1 &
PID=$!
up=
for _ in $(seq 1 600); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then up=1; break; fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$up" ] || die "serve did not come up: $(tail -3 "$T/serve.log")"

python3 - "$PORT" "$N" <<'EOF' || die "the load failed"
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
req = b"GET /index.html HTTP/1.1\r\nHost: bench\r\nUser-Agent: callgrind\r\nAccept: */*\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        e = buf.find(b"\r\n\r\n")
        if e >= 0:
            head = buf[:e].decode("latin-1").lower()
            cl = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(buf) >= e + 4 + cl:
                assert head.startswith("http/1.1 200"), head
                buf = buf[e + 4 + cl:]
                break
        more = s.recv(65536)
        if not more:
            sys.exit("connection closed")
        buf += more
EOF
kill -TERM "$PID"
wait "$PID"
PID=
# One request more than the load: the readiness probe above.
callgrind_annotate --inclusive=yes "$T/cg.out" 2>/dev/null |
    awk -v n="$N" '/:worker_main / { gsub(",", "", $1);
        printf "worker_main: %d instructions for %d requests: %.0f per request\n", $1, n + 1, $1 / (n + 1); found = 1 }
        END { if (!found) exit 1 }' || die "no worker_main in the profile (a build without symbols?)"

#!/usr/bin/env bash
# Compressed text, slipway against nginx with `gzip on`, side by side in one run.
#
# One 64 KiB JavaScript file (generated: code-like text with varied names, so
# it compresses like real code rather than like a repeated line) is deployed
# to a direct environment and served by `slipway serve --workers 2`, which
# sends the Brotli or gzip variant release create made, and by nginx
# (worker_processes 2, sendfile, keep-alive, no access log, `gzip on;
# gzip_types` for JavaScript, gzip_comp_level left at its default, 1), which
# compresses every response as it sends it. For each Accept-Encoding row the
# table gives the bytes on the wire per response (status line, headers and
# body as sent, chunk framing included, counted on a raw socket) and req/s,
# each the best of three interleaved wrk runs (-t1 -c64), for both servers,
# and the ratios slipway/nginx. Every body is first decoded and compared with
# the file, so the two are known to send the same content.
#
# wrk and both servers share the machine's cores, so absolute figures mean
# little; the ratio within one run is the point.
#
# Bounded: the whole run stops itself after 3 minutes. Everything lives in a
# temporary directory removed at exit; every server listens on a free
# 127.0.0.1 port and is killed by PID in a trap, pass or fail.
#
#   BENCH_SECONDS=N   seconds per wrk run (default 4, at most 8)
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLIPWAY=$ROOT/slipway
SECS=${BENCH_SECONDS:-4}
RUNS=3
BUDGET=180

die() { echo "bench/compress.sh: $*" >&2; exit 1; }
case $SECS in '' | *[!0-9]*) die "BENCH_SECONDS must be a whole number of seconds" ;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 8 ] || die "BENCH_SECONDS must be 1..8 (the run is bounded to ${BUDGET}s)"
for tool in wrk nginx curl python3 brotli; do
    command -v "$tool" >/dev/null || die "needs $tool (scripts/install-deps)"
done
if [ ! -x "$SLIPWAY" ]; then
    make -C "$ROOT" slipway >/dev/null || die "cannot build ./slipway"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench.XXXXXX")
# nginx workers drop to an unprivileged user when started as root: let them read the site.
chmod 755 "$T"
export SLIPWAY_ACTOR=bench
unset SLIPWAY_STORE
PIDS=()
WATCHDOG=
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$WATCHDOG" ]; then
        kill -TERM "$WATCHDOG" 2>/dev/null
        wait "$WATCHDOG" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# The watchdog: past the budget it stops the script (whose EXIT trap cleans up).
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$BUDGET" &
    sp=$!
    wait "$sp"
    echo "bench/compress.sh: over the ${BUDGET}s budget, stopping" >&2
    kill -TERM $$
) &
WATCHDOG=$!

# A free port, reserved until this script exits (tests/e2e/port.py).
free_port() { python3 "$ROOT/tests/e2e/port.py" $$; }
# wait_http URL SECONDS: polls URL until it answers 200, with a bound.
wait_http() {
    local end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -le "$end" ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null)" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
sw() { (cd "$T/p" && "$SLIPWAY" -q "$@") >>"$T/slipway.out" 2>&1 || die "slipway $* failed: $(tail -3 "$T/slipway.out")"; }

# ---- the project and the file ---------------------------------------------------------
mkdir -p "$T/p" "$T/site/js"
"$SLIPWAY" init -q "$T/p" >/dev/null || die "slipway init failed"
rm -f "$T/p/.slipway/environments/"*.yml
SW_PORT=$(free_port)
NGX_PORT=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$SW_PORT" >"$T/p/.slipway/environments/bench.yml"
python3 - "$T/site/js/app.js" <<'EOF'
import random, sys
rng = random.Random(64)
words = ["user", "item", "list", "value", "count", "index", "node", "event", "state", "props",
         "render", "update", "fetch", "data", "result", "error", "options", "config", "handler",
         "element", "style", "width", "height", "offset", "parent", "child", "key", "name"]
def ident():
    return rng.choice(words) + rng.choice(words).capitalize() + (str(rng.randint(0, 99)) if rng.random() < 0.3 else "")
out = ["/* app.js: generated for bench/compress.sh */\n", '"use strict";\n']
while sum(map(len, out)) < 70000:
    f, a, b = ident(), ident(), ident()
    k = rng.choice([
        "function %s(%s, %s) {\n  if (!%s) return %d;\n  return %s.map((x) => x.%s + %s.length);\n}\n" % (f, a, b, a, rng.randint(0, 999), a, ident(), b),
        "const %s = { %s: %d, %s: \"%s\", %s: [%d, %d, %d] };\n" % (f, a, rng.randint(0, 9999), b, ident(), ident(), rng.randint(0, 99), rng.randint(0, 99), rng.randint(0, 99)),
        "export class %s {\n  constructor(%s) { this.%s = %s; this.%s = null; }\n  %s() { return this.%s?.%s ?? %d; }\n}\n" % (f.capitalize(), a, a, a, b, ident(), a, ident(), rng.randint(0, 9)),
        "document.querySelector(\"#%s\").addEventListener(\"%s\", (e) => %s(e.target.%s));\n" % (a, rng.choice(["click", "input", "change", "keydown"]), f, b),
    ])
    out.append(k)
body = "".join(out).encode()[:65536]
open(sys.argv[1], "wb").write(body)
EOF
chmod -R a+rX "$T/site"
sw deploy "$T/site" --env bench

# ---- nginx: gzip on, the default level --------------------------------------------------------
mkdir -p "$T/nginx/tmp"
cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
error_log $T/nginx/error.log;
pid $T/nginx/nginx.pid;
events {}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    access_log off;
    gzip on;
    gzip_types text/javascript application/javascript application/x-javascript;
    gzip_vary on;
    client_body_temp_path $T/nginx/tmp/body;
    proxy_temp_path $T/nginx/tmp/proxy;
    fastcgi_temp_path $T/nginx/tmp/fastcgi;
    uwsgi_temp_path $T/nginx/tmp/uwsgi;
    scgi_temp_path $T/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGX_PORT;
        root $T/site;
    }
}
EOF
nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" >"$T/nginx/out.log" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")
(cd "$T/p" && exec "$SLIPWAY" serve --workers 2) >"$T/serve.log" 2>&1 &
SW_PID=$!
PIDS+=("$SW_PID")
wait_http "http://127.0.0.1:$NGX_PORT/js/app.js" 10 || die "nginx did not start: $(cat "$T/nginx/error.log" "$T/nginx/out.log")"
wait_http "http://127.0.0.1:$SW_PORT/_slipway/ready" 10 || die "slipway serve did not become ready: $(cat "$T/serve.log")"
[ "$(cat "/proc/$SW_PID/comm" 2>/dev/null)" = slipway ] || die "PID $SW_PID is not slipway serve"

# wire PORT ACCEPT: one GET of /js/app.js on a raw socket; prints "coding bytes" where bytes
# is everything the server sent for the response, and leaves the decoded body in $T/body.
wire() {
    python3 - "$1" "$2" "$T/body" <<'EOF'
import gzip, socket, subprocess, sys
port, accept, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
req = "GET /js/app.js HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
if accept:
    req += "Accept-Encoding: %s\r\n" % accept
s.sendall((req + "\r\n").encode())
raw = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    raw += chunk
head, _, body = raw.partition(b"\r\n\r\n")
fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")[1:]}
if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
    plain, rest = b"", body
    while True:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        plain, rest = plain + rest[:n], rest[n + 2:]
    body = plain
coding = fields.get(b"content-encoding", b"identity").decode()
if coding == "gzip":
    body = gzip.decompress(body)
elif coding == "br":
    body = subprocess.run(["brotli", "-dc"], input=body, capture_output=True, check=True).stdout
open(out, "wb").write(body)
print(coding, len(raw))
EOF
}

# run_wrk PORT ACCEPT: prints "req/s non2xx socket_errors".
run_wrk() {
    timeout $((SECS + 30)) wrk -t1 -c64 -d"${SECS}s" -H "Accept-Encoding: $2" "http://127.0.0.1:$1/js/app.js" 2>&1 | awk '
        $1 == "Requests/sec:" { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { non2xx = $5 }
        END { printf "%s %d %d\n", rps == "" ? "0" : rps, non2xx, err }'
}
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0 ? a : b) }'; }

echo "slipway serve --workers 2 vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (worker_processes 2, gzip on," \
    "gzip_comp_level 1); 64 KiB JavaScript; wrk -t1 -c64, best of $RUNS interleaved ${SECS}s runs;" \
    "$(nproc) cores shared by wrk and the servers (load average before the run: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
FMT="%-16s %-15s %-15s %8s %14s %14s %8s  %s\n"
printf "$FMT" Accept-Encoding "nginx sends" "slipway sends" "bytes" "nginx req/s" "slipway req/s" "req/s" note
printf "$FMT" "" "(bytes)" "(bytes)" ratio "" "" ratio ""
printf "$FMT" ---------------- --------------- --------------- -------- -------------- -------------- -------- ----
SIZE=$(stat -c %s "$T/site/js/app.js")
for accept in "br, gzip" "gzip" ""; do
    read -r n_coding n_bytes <<<"$(wire "$NGX_PORT" "$accept")" || die "nginx: no answer"
    cmp -s "$T/body" "$T/site/js/app.js" || die "nginx ($accept): the decoded body is not the file"
    read -r s_coding s_bytes <<<"$(wire "$SW_PORT" "$accept")" || die "slipway: no answer"
    cmp -s "$T/body" "$T/site/js/app.js" || die "slipway ($accept): the decoded body is not the file"
    n_best=0 s_best=0 note=
    for i in $(seq "$RUNS"); do
        read -r rps bad err <<<"$(run_wrk "$NGX_PORT" "${accept:-identity}")"
        n_best=$(best "$n_best" "$rps")
        [ "$bad$err" != 00 ] && note+="nginx non-2xx $bad errors $err; "
        read -r rps bad err <<<"$(run_wrk "$SW_PORT" "${accept:-identity}")"
        s_best=$(best "$s_best" "$rps")
        [ "$bad$err" != 00 ] && note+="slipway non-2xx $bad errors $err; "
    done
    bratio=$(awk -v a="$s_bytes" -v b="$n_bytes" 'BEGIN { printf "%.2f", a / b }')
    rratio=$(awk -v a="$s_best" -v b="$n_best" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')
    printf "$FMT" "${accept:-(none)}" "$n_coding $n_bytes" "$s_coding $s_bytes" "$bratio" "$n_best" "$s_best" "$rratio" "$note"
done
echo
echo "the file: $SIZE bytes; bytes are one whole response on the wire (status line, headers, body)"
stop_pid "$NGX_PID"
stop_pid "$SW_PID"
exit 0

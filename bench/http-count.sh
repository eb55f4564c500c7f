#!/usr/bin/env bash
# What each request costs slipway, nginx and h2o, counted rather than timed.
#
# bench/edge.sh times the three servers side by side, but on a machine shared with other work
# (or with wrk itself on two cores) its figures move by 20 % from run to run. Counts do not:
# for each row of bench/edge.sh (a 1 KiB page, a 64 KiB script, a 1 MiB image, a missing
# path) this script sends N keep-alive GETs, one at a time on one connection, to each server
# running one worker, and reports per request
#   - the user-space instructions the server executed (valgrind --tool=callgrind, every thread
#     counted; N and 2N requests in two runs, the difference over N), and
#   - the system calls it made (strace -c on every thread, attached for the load only),
# with slipway's figure over the better peer's (lower is better: aim <= 1.00). The kernel's
# work inside each system call is not counted; sendfile of the image costs the same in all.
#
#   BENCH_REQUESTS=N   requests per row (default 2000)
# Skipped with a note when valgrind or strace is missing. Everything lives in a temporary
# directory removed at exit; servers listen on free 127.0.0.1 ports and are killed by PID.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLIPWAY=${SLIPWAY:-$ROOT/slipway}
N=${BENCH_REQUESTS:-2000}

die() { echo "bench/http-count.sh: $*" >&2; exit 1; }
case $N in '' | *[!0-9]*) die "BENCH_REQUESTS must be a number" ;; esac
[ "$N" -ge 10 ] || die "BENCH_REQUESTS must be at least 10"
for tool in valgrind callgrind_control strace; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench/http-count.sh: skipped: needs $tool"
        exit 0
    fi
done
for tool in python3 curl nginx h2o; do command -v "$tool" >/dev/null || die "needs $tool"; done
if [ ! -x "$SLIPWAY" ]; then
    make -C "$ROOT" slipway >/dev/null || die "cannot build ./slipway"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/slipway-count.XXXXXX")
chmod 755 "$T"
PIDS=()
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export SLIPWAY_ACTOR=bench
unset SLIPWAY_STORE
free_port() { python3 "$ROOT/tests/e2e/port.py" $$; }

# ---- the site (as bench/edge.sh) and the three servers' configurations -----------------
mkdir -p "$T/site/js" "$T/site/img" "$T/nginx/tmp" "$T/h2o" "$T/cg"
python3 - "$T/site" <<'EOF'
import os, sys
root = sys.argv[1]
page = b"<!doctype html><html><head><title>bench</title></head><body><p>"
page += b"x" * (1024 - len(page) - len(b"</p></body></html>\n")) + b"</p></body></html>\n"
open(os.path.join(root, "index.html"), "wb").write(page)
js = b"/* bench */\n" + b"var a=1;\n" * ((65536 - 12) // 9)
js += b" " * (65536 - len(js))
open(os.path.join(root, "js/app.js"), "wb").write(js)
open(os.path.join(root, "img/photo.jpg"), "wb").write(os.urandom(1 << 20))
EOF
chmod -R a+rX "$T/site"
# h2o drops to nobody when started as root: its profile and valgrind's control pipes must
# still be writable.
chmod 777 "$T/h2o" "$T/cg"
"$SLIPWAY" init -q "$T/p" >/dev/null || die "slipway init failed"
rm -f "$T/p/.slipway/environments/"*.yml
SW_PORT=$(free_port)
NGX_PORT=$(free_port)
H2O_PORT=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$SW_PORT" >"$T/p/.slipway/environments/bench.yml"
(cd "$T/p" && "$SLIPWAY" -q deploy "$T/site" --env bench) >/dev/null || die "deploy failed"
# One process, one worker: nginx without its master, h2o with one thread.
cat >"$T/nginx/nginx.conf" <<EOF
master_process off;
worker_processes 1;
daemon off;
error_log $T/nginx/error.log;
pid $T/nginx/nginx.pid;
events {}
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    access_log off;
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
cat >"$T/h2o/h2o.conf" <<EOF
num-threads: 1
$([ "$(id -u)" = 0 ] && echo "user: nobody")
pid-file: $T/h2o/h2o.pid
error-log: $T/h2o/error.log
listen:
  host: 127.0.0.1
  port: $H2O_PORT
hosts:
  default:
    paths:
      /:
        file.dir: $T/site
EOF

# start NAME PREFIX...: the server NAME under the command PREFIX (empty, or valgrind);
# its PID in $SPID, its port in $SPORT.
start() {
    local name=$1
    shift
    case $name in
    nginx)
        SPORT=$NGX_PORT
        "$@" nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" >"$T/$name.log" 2>&1 &
        ;;
    h2o)
        SPORT=$H2O_PORT
        "$@" h2o -c "$T/h2o/h2o.conf" >"$T/$name.log" 2>&1 &
        ;;
    slipway)
        SPORT=$SW_PORT
        (cd "$T/p" && exec "$@" "$SLIPWAY" serve --workers 1) >"$T/$name.log" 2>&1 &
        ;;
    esac
    SPID=$!
    PIDS+=("$SPID")
    local i
    for i in $(seq 1 600); do
        curl -s -o /dev/null "http://127.0.0.1:$SPORT/index.html" && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    die "$name did not come up: $(tail -3 "$T/$name.log")"
}
stop() {
    kill -TERM "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
}

# load PORT PATH STATUS N: N sequential keep-alive GETs on one connection.
load() {
    python3 - "$@" <<'EOF' || die "the load failed"
import socket, sys
port, path, status, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), timeout=60)
req = ("GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: count\r\nAccept: */*\r\n\r\n" % path).encode()
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        e = buf.find(b"\r\n\r\n")
        if e >= 0:
            head = buf[:e].decode("latin-1").lower()
            cl = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(buf) >= e + 4 + cl:
                if not head.startswith("http/1.1 " + status):
                    sys.exit("expected " + status + ", got " + head.split("\r\n")[0])
                buf = buf[e + 4 + cl:]
                break
        more = s.recv(1 << 20)
        if not more:
            sys.exit("connection closed")
        buf += more
EOF
}

ROWS="html:/index.html:200 js:/js/app.js:200 image:/img/photo.jpg:200 404:/no/such/file.html:404"

# ---- instructions ------------------------------------------------------------------------
# Each server runs under callgrind twice per row, answering N then 2N requests; the difference
# of the two totals over N is what a request costs, with start-up and shutdown cancelled out.
# (Switching instrumentation on and off with callgrind_control instead races with the
# server's event loop: a dump lands when valgrind next gets control.)
for srv in nginx h2o slipway; do
    for r in $ROWS; do
        IFS=: read -r name path status <<<"$r"
        n=$N
        tot=()
        for m in 1 2; do
            out="$T/cg/$srv-$name-$m.out"
            start "$srv" valgrind --tool=callgrind --vgdb=no --callgrind-out-file="$out"
            # callgrind creates its profile at start; h2o, having dropped to nobody, writes it
            chmod 666 "$out"
            load "$SPORT" "$path" "$status" $((m * n))
            stop
            [ -s "$out" ] || die "no profile from $srv: $(tail -3 "$T/$srv.log")"
            tot+=("$(awk '/^summary:/ { print $2; exit }' "$out")")
        done
        echo "$srv $name $(awk -v a="${tot[0]}" -v b="${tot[1]}" -v n="$n" 'BEGIN { printf "%.0f", (b - a) / n }')" >>"$T/ir"
    done
done

# ---- system calls ------------------------------------------------------------------------
for srv in nginx h2o slipway; do
    start "$srv"
    for r in $ROWS; do
        IFS=: read -r name path status <<<"$r"
        n=$N
        load "$SPORT" "$path" "$status" 20
        args=()
        for t in /proc/"$SPID"/task/*; do args+=(-p "${t##*/}"); done
        strace -c -q -o "$T/st" "${args[@]}" &
        st=$!
        sleep 1 # strace attaches
        load "$SPORT" "$path" "$status" "$n"
        kill -INT "$st"
        wait "$st" 2>/dev/null
        calls=$(awk '$NF == "total" { print ($4 ~ /^[0-9]+$/) ? $4 : $3 }' "$T/st")
        echo "$srv $name $(awk -v a="$calls" -v n="$n" 'BEGIN { printf "%.2f", a / n }')" >>"$T/sc"
    done
    stop
done

# ---- the table -------------------------------------------------------------------------
echo "Per request, one worker each, N=$N sequential keep-alive GETs per row."
echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), h2o $(h2o --version | sed -n '1s/h2o version //p');" \
    "ratio = slipway / the better peer (lower is better, aim <= 1.00)"
echo
FMT="%-6s %12s %12s %12s %6s   %9s %9s %9s %6s\n"
printf "$FMT" row "nginx instr" "h2o instr" "sw instr" ratio "ngx calls" "h2o calls" "sw calls" ratio
for r in $ROWS; do
    name=${r%%:*}
    get() { awk -v s="$1" -v r="$name" '$1 == s && $2 == r { print $3 }' "$T/$2"; }
    ni=$(get nginx ir) hi=$(get h2o ir) si=$(get slipway ir)
    nc=$(get nginx sc) hc=$(get h2o sc) sc=$(get slipway sc)
    ri=$(awk -v a="$si" -v b="$ni" -v c="$hi" 'BEGIN { m = b < c ? b : c; printf "%.2f", a / m }')
    rc=$(awk -v a="$sc" -v b="$nc" -v c="$hc" 'BEGIN { m = b < c ? b : c; printf "%.2f", a / m }')
    printf "$FMT" "$name" "$ni" "$hi" "$si" "$ri" "$nc" "$hc" "$sc" "$rc"
done

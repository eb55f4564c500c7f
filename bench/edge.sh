#!/usr/bin/env bash
# The edge server against nginx and h2o, side by side in one run.
#
# One site (a 1 KiB HTML page, a 64 KiB script, a 1 MiB image, and a missing
# path for the 404 row) is deployed to a direct environment and served by
# `slipway serve --workers 2`, by nginx (2 workers, sendfile, tcp_nopush,
# keep-alive, no access log) and by h2o (2 threads, no access log) from the
# same directory. For every row and wrk configuration the three servers run
# in turn, three rounds interleaved (nginx, h2o, slipway, nginx, ...), and
# each cell is the best of its three runs: req/s (highest) and p99 (lowest).
# The ratio is slipway's req/s over the better peer's (aim: >= 1.00, with
# p99 no worse than the better peer's). Beside it, each server's CPU time per
# request (user and system, from /proc, the best of the rounds; nginx's workers
# counted with its master) and slipway's over the leaner peer's ("cpu", below
# 1.00: slipway spends less): req/s moves by 10-20 % with what else the shared
# machine runs, CPU per request hardly. Then:
#   - RSS of `slipway serve` holding a 10,000-file release, next to the body
#     bytes it holds in memory, variants included (aim: RSS - bodies <= 32 MiB);
#   - switch latency: from `slipway switch` returning to the first response
#     from the new release on the live listener, over 100 switches
#     (aim: < 200 ms on the fs store).
#
# wrk and both servers share the machine's cores, so absolute figures mean
# little; the ratio within one run is the point.
#
# Bounded: the whole run stops itself after 6 minutes. Everything lives in a
# temporary directory removed at exit; every server listens on a free
# 127.0.0.1 port and is killed by PID in a trap, pass or fail.
#
#   BENCH_SECONDS=N   seconds per wrk run (default 4, at most 15)
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLIPWAY=$ROOT/slipway
SECS=${BENCH_SECONDS:-4}
ROUNDS=3
BUDGET=$((4 * 2 * 3 * ROUNDS * (SECS + 1) + 240))

die() { echo "bench/edge.sh: $*" >&2; exit 1; }
case $SECS in '' | *[!0-9]*) die "BENCH_SECONDS must be a whole number of seconds" ;; esac
[ "$SECS" -ge 1 ] && [ "$SECS" -le 15 ] || die "BENCH_SECONDS must be 1..15"
for tool in wrk nginx h2o curl python3; do
    command -v "$tool" >/dev/null || die "needs $tool"
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
    echo "bench/edge.sh: over the ${BUDGET}s budget, stopping" >&2
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
# start_serve NAME: `slipway serve --workers 2` in the project; PID in $SERVE_PID.
start_serve() {
    (cd "$T/p" && exec "$SLIPWAY" serve --workers 2) >"$T/$1.log" 2>&1 &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
sw() { (cd "$T/p" && "$SLIPWAY" -q "$@") >>"$T/slipway.out" 2>&1 || die "slipway $* failed: $(tail -3 "$T/slipway.out")"; }

# ---- the project and the site -------------------------------------------------------
mkdir -p "$T/p" "$T/site/js" "$T/site/img"
"$SLIPWAY" init -q "$T/p" >/dev/null || die "slipway init failed"
rm -f "$T/p/.slipway/environments/"*.yml
SW_PORT=$(free_port)
NGX_PORT=$(free_port)
H2O_PORT=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$SW_PORT" >"$T/p/.slipway/environments/bench.yml"
python3 - "$T/site" <<'EOF'
import os, sys
root = sys.argv[1]
page = b"<!doctype html><html><head><title>bench</title></head><body><p>"
page += b"x" * (1024 - len(page) - len(b"</p></body></html>\n")) + b"</p></body></html>\n"
assert len(page) == 1024
open(os.path.join(root, "index.html"), "wb").write(page)
js = b"/* bench */\n" + b"var a=1;\n" * ((65536 - 12) // 9)
js += b" " * (65536 - len(js))
open(os.path.join(root, "js/app.js"), "wb").write(js)
open(os.path.join(root, "img/photo.jpg"), "wb").write(os.urandom(1 << 20))
EOF
chmod -R a+rX "$T/site"
sw deploy "$T/site" --env bench

# ---- nginx, configured as in the issue ------------------------------------------------------
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

# ---- h2o: two threads, files from the same directory, no access log -------------------------
# As root, h2o insists on dropping to a user; its file handler sends bodies with
# sendfile on its own, as nginx's does here.
mkdir -p "$T/h2o"
chmod 777 "$T/h2o" # h2o opens its pid file after dropping to nobody
cat >"$T/h2o/h2o.conf" <<EOF
num-threads: 2
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
h2o -c "$T/h2o/h2o.conf" >"$T/h2o/out.log" 2>&1 &
H2O_PID=$!
PIDS+=("$H2O_PID")
start_serve serve
SW_PID=$SERVE_PID
wait_http "http://127.0.0.1:$NGX_PORT/index.html" 10 || die "nginx did not start: $(cat "$T/nginx/error.log" "$T/nginx/out.log")"
wait_http "http://127.0.0.1:$H2O_PORT/index.html" 10 || die "h2o did not start: $(cat "$T/h2o/error.log" "$T/h2o/out.log")"
wait_http "http://127.0.0.1:$SW_PORT/_slipway/ready" 10 || die "slipway serve did not become ready: $(cat "$T/serve.log")"
[ "$(cat "/proc/$SW_PID/comm" 2>/dev/null)" = slipway ] || die "PID $SW_PID is not slipway serve"
RSS_IDLE=$(rss_kib "$SW_PID" VmRSS)

ROWS="html:/index.html js:/js/app.js image:/img/photo.jpg 404:/no/such/file.html"
# Both servers must answer each row alike before their speed is compared.
for r in $ROWS; do
    path=${r#*:}
    a=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$NGX_PORT$path" | tail -c 4)
    h=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$H2O_PORT$path" | tail -c 4)
    b=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$SW_PORT$path" | tail -c 4)
    [ "$a" = "$b" ] && [ "$h" = "$b" ] || die "row ${r%%:*}: nginx answers$a, h2o$h, slipway$b"
    if [ "$a" = " 200" ]; then
        ha=$(curl -s "http://127.0.0.1:$NGX_PORT$path" | sha256sum)
        hh=$(curl -s "http://127.0.0.1:$H2O_PORT$path" | sha256sum)
        hb=$(curl -s "http://127.0.0.1:$SW_PORT$path" | sha256sum)
        [ "$ha" = "$hb" ] && [ "$hh" = "$hb" ] || die "row ${r%%:*}: the servers send different bodies"
    fi
done

# cpu_ticks PID: the CPU time (user + system, in clock ticks) that PID and its child
# processes (nginx's workers) have used so far, every thread counted.
cpu_ticks() {
    local p t=0 v
    for p in "$1" $(pgrep -P "$1"); do
        v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && t=$((t + v))
    done
    echo "$t"
}
# run_wrk URL THREADS CONNS PID: prints "req/s p50_ms p99_ms socket_errors non2xx cpu_us",
# cpu_us being the server's CPU time (PID's, user and system) per request of the run: unlike
# req/s, it hardly moves with what else the shared machine runs.
run_wrk() {
    local c0 c1 res
    c0=$(cpu_ticks "$4")
    res=$(timeout $((SECS + 30)) wrk --latency -t"$2" -c"$3" -d"${SECS}s" "$1" 2>&1)
    c1=$(cpu_ticks "$4")
    printf '%s\n' "$res" | awk -v ticks=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/) return v * 60000
            if (v ~ /s$/) return v * 1000
            return v + 0
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        $2 == "requests" && $3 == "in" { n = $1 }
        /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { non2xx = $5 }
        END { printf "%s %.3f %.3f %d %d %.2f\n", rps == "" ? "nan" : rps, p50, p99, err, non2xx,
            (n > 0 ? ticks / hz * 1e6 / n : 0) }'
}

# best_of: the best of several run_wrk result lines ("req/s p50 p99 err non2xx cpu_us"):
# the highest req/s (with that run's p50), the lowest p99 and CPU per request, errors summed.
best_of() {
    awk 'BEGIN { rps = -1; p99 = -1; cpu = -1 }
        $1 != "nan" && $1 + 0 > rps { rps = $1 + 0; p50 = $2 }
        $1 != "nan" && (p99 < 0 || $3 + 0 < p99) { p99 = $3 + 0 }
        $1 != "nan" && $6 + 0 > 0 && (cpu < 0 || $6 + 0 < cpu) { cpu = $6 + 0 }
        { err += $4; bad += $5 }
        END { printf "%.2f %.3f %.3f %d %d %.2f\n", rps < 0 ? 0 : rps, p50, p99 < 0 ? 0 : p99, err, bad,
            cpu < 0 ? 0 : cpu }'
}

echo "slipway serve --workers 2 vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') (worker_processes 2)" \
    "and h2o $(h2o --version | sed -n '1s/h2o version //p') (num-threads 2);" \
    "wrk ${SECS}s per run, best of $ROUNDS interleaved rounds; $(nproc) cores shared by wrk and the" \
    "servers (load average before the run: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
FMT="%-6s %-10s %11s %11s %11s %6s %8s %8s %8s %7s %7s %7s %5s  %s\n"
printf "$FMT" row config "nginx r/s" "h2o r/s" "slipway r/s" ratio "ngx p99" "h2o p99" "sw p99" \
    "ngx us" "h2o us" "sw us" "cpu" note
printf "$FMT" ------ ---------- ----------- ----------- ----------- ------ -------- -------- -------- \
    ------- ------- ------- ----- ----
CPU_LEANER=0
MISSES=0
for r in $ROWS; do
    name=${r%%:*}
    path=${r#*:}
    for cfg in 1:64 2:256; do
        t=${cfg%%:*}
        c=${cfg#*:}
        N= H= S=
        for ((round = 0; round < ROUNDS; round++)); do
            N+="$(run_wrk "http://127.0.0.1:$NGX_PORT$path" "$t" "$c" "$NGX_PID")"$'\n'
            H+="$(run_wrk "http://127.0.0.1:$H2O_PORT$path" "$t" "$c" "$H2O_PID")"$'\n'
            S+="$(run_wrk "http://127.0.0.1:$SW_PORT$path" "$t" "$c" "$SW_PID")"$'\n'
        done
        read -r n_rps n_p50 n_p99 n_err n_bad n_cpu <<<"$(printf '%s' "$N" | best_of)"
        read -r h_rps h_p50 h_p99 h_err h_bad h_cpu <<<"$(printf '%s' "$H" | best_of)"
        read -r s_rps s_p50 s_p99 s_err s_bad s_cpu <<<"$(printf '%s' "$S" | best_of)"
        # CPU per request against the leaner peer: below 1.00, slipway spends less.
        cpu_ratio=$(awk -v s="$s_cpu" -v n="$n_cpu" -v h="$h_cpu" \
            'BEGIN { b = n < h ? n : h; printf (b > 0 ? "%.2f" : "-"), s / b }')
        awk -v r="$cpu_ratio" 'BEGIN { exit !(r + 0 > 0 && r + 0 <= 1.0) }' && CPU_LEANER=$((CPU_LEANER + 1))
        # The better peer is the one with more req/s; its p99 is the one to beat.
        read -r b_rps b_p99 <<<"$(awk -v n="$n_rps" -v np="$n_p99" -v h="$h_rps" -v hp="$h_p99" \
            'BEGIN { if (h > n) print h, hp; else print n, np }')"
        ratio=$(awk -v a="$s_rps" -v b="$b_rps" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }')
        note=
        [ "$n_err" != 0 ] && note+="nginx socket errors $n_err; "
        [ "$h_err" != 0 ] && note+="h2o socket errors $h_err; "
        [ "$s_err" != 0 ] && note+="slipway socket errors $s_err; "
        if [ "$name" != 404 ]; then
            [ "$n_bad" != 0 ] && note+="nginx non-2xx $n_bad; "
            [ "$h_bad" != 0 ] && note+="h2o non-2xx $h_bad; "
            [ "$s_bad" != 0 ] && note+="slipway non-2xx $s_bad; "
        fi
        if ! awk -v r="$ratio" -v a="$s_p99" -v b="$b_p99" 'BEGIN { exit !(r + 0 >= 1.0 && a <= b) }'; then
            note+="below aim"
            MISSES=$((MISSES + 1))
        fi
        printf "$FMT" "$name" "-t$t -c$c" "$n_rps" "$h_rps" "$s_rps" "$ratio" "$n_p99" "$h_p99" "$s_p99" \
            "$n_cpu" "$h_cpu" "$s_cpu" "$cpu_ratio" "$note"
    done
done
RSS_LOADED=$(rss_kib "$SW_PID" VmRSS)
HWM_LOADED=$(rss_kib "$SW_PID" VmHWM)
stop_pid "$NGX_PID"
stop_pid "$H2O_PID"
stop_pid "$SW_PID"

# ---- RSS with a 10,000-file release, and the switch -------------------------------------------
MANY_PORT=$(free_port)
BG_PORT=$(free_port)
BG_PREVIEW=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$MANY_PORT" >"$T/p/.slipway/environments/many.yml"
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' "$BG_PORT" "$BG_PREVIEW" \
    >"$T/p/.slipway/environments/bg.yml"
MANY_BYTES=$(python3 - "$T/many" <<'EOF'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
total = 0
for i in range(10000):
    d = os.path.join(root, "d%02d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    n = rng.randint(1024, 4096)
    # Distinct content per file, so no two share a body.
    body = (b"<!-- file %05d -->\n" % i) + os.urandom(n).hex().encode()[: n - 20]
    open(os.path.join(d, "f%05d.html" % i), "wb").write(body[:n])
    total += len(body[:n])
print(total)
EOF
) || die "cannot generate the 10,000-file site"
mkdir -p "$T/blue" "$T/green"
printf '<!doctype html><p>release A</p>\n' >"$T/blue/index.html"
printf '<!doctype html><p>release B</p>\n' >"$T/green/index.html"
sw deploy "$T/many" --env many
sw deploy "$T/blue" --env bg
sw deploy "$T/green" --env bg
start_serve serve2
SW2_PID=$SERVE_PID
wait_http "http://127.0.0.1:$MANY_PORT/_slipway/ready" 30 || die "slipway serve did not become ready: $(cat "$T/serve2.log")"
wait_http "http://127.0.0.1:$MANY_PORT/d99/f09999.html" 5 || die "the 10,000-file release is not served"
RSS_MANY=$(rss_kib "$SW2_PID" VmRSS)
# Bodies held in memory: every distinct body of at most 64 KiB of each loaded
# release (one table each: the bench site, the 10,000 files, the two bg slots),
# the compressed variants included, as the manifests list them.
BODY_BYTES=$(python3 - "$T/p/.slipway/data/releases" <<'EOF2'
import json, os, sys
total = 0
for name in os.listdir(sys.argv[1]):
    m = json.load(open(os.path.join(sys.argv[1], name)))
    seen = {}
    for f in m["files"]:
        for b in [f] + [f[k] for k in ("gzip", "br") if k in f]:
            if b["size"] <= 65536:
                seen[b["blob"]] = b["size"]
    total += sum(seen.values())
print(total)
EOF2
) || die "cannot sum the bodies held in memory"

SWITCH=$(python3 - "$SLIPWAY" "$T/p" "$BG_PORT" <<'EOF'
import http.client, random, statistics, subprocess, sys, time
slipway, proj, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(7)

def get():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", "/")
        return c.getresponse().read()
    finally:
        c.close()

prev = get()
lat, cmd = [], []
for i in range(100):
    # Seen right after the server applied the last switch, so a switch issued
    # at once would always land at the same point of the watcher's poll
    # cycle: a random pause spreads the switches over it.
    time.sleep(rng.uniform(0, 0.1))
    t = time.monotonic()
    subprocess.run([slipway, "-q", "switch", "bg"], cwd=proj, check=True, stdout=subprocess.DEVNULL)
    t0 = time.monotonic()
    cmd.append((t0 - t) * 1000)
    while True:
        body = get()
        if body != prev:
            break
        if time.monotonic() - t0 > 3:
            sys.exit("switch %d: the live listener still serves the old release after 3 s" % i)
    lat.append((time.monotonic() - t0) * 1000)
    prev = body
print("%.1f %.1f %.1f %.1f" % (statistics.median(lat), max(lat), statistics.median(cmd), max(cmd)))
EOF
) || die "switch timing failed"
read -r SW_MED SW_MAX CMD_MED CMD_MAX <<<"$SWITCH"
stop_pid "$SW2_PID"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo
echo "RSS of slipway serve (VmRSS):"
echo "  bench site only, idle:                 $(mib "$RSS_IDLE")"
echo "  bench site, after the wrk runs:        $(mib "$RSS_LOADED") (peak $(mib "$HWM_LOADED"))"
echo "  with the 10,000-file release:          $(mib "$RSS_MANY")"
echo "  body bytes held in memory:             $(mib $((BODY_BYTES / 1024))) ($BODY_BYTES bytes, compressed variants included; the 10,000 files alone: $MANY_BYTES)"
OVER=$((RSS_MANY - BODY_BYTES / 1024))
echo "  RSS - bodies:                          $(mib "$OVER") (aim <= 32 MiB$([ "$OVER" -le 32768 ] && echo ': met' || echo ': MISSED'))"
echo
echo "switch latency, 'slipway switch' returning -> first response from the new release, 100 switches:"
echo "  median ${SW_MED} ms, max ${SW_MAX} ms (aim < 200 ms)$(awk -v m="$SW_MAX" 'BEGIN { print (m < 200 ? ": met" : ": MISSED") }')"
echo "  (the switch command itself: median ${CMD_MED} ms, max ${CMD_MAX} ms)"
echo
echo "rows below the req/s or p99 aim: $MISSES of 8"
echo "rows where slipway spends the least CPU per request of the three: $CPU_LEANER of 8"
exit 0

#!/usr/bin/env bash
# slipway serve over its lifetime: SIGTERM drains (an in-flight download
# finishes, new connections are refused, exit 0); SIGHUP adds, removes and
# moves environments without disturbing unchanged listeners; header and idle
# timeouts and the connection limit; deploys and rollbacks by another process
# are served without a restart.
. "$(dirname "$0")/lib.sh"
RAW=$ROOT/tests/e2e/rawhttp.py
C=(curl -s --max-time 10)

new_project
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
# env NAME PORT: a direct environment listening on PORT.
env() { printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$2" > "$ENVS/$1.yml"; }
body() { "${C[@]}" "http://127.0.0.1:$1/"; }
serves() { "${C[@]}" -f -o /dev/null "http://127.0.0.1:$1/"; }
# refused PORT: connecting fails (curl exit 7).
refused() { curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$1/"; [ $? = 7 ]; }
# body_is PORT TEXT
body_is() { [ "$(body "$1")" = "$2" ]; }
site() { mkdir -p "$T/$1"; printf '%s\n' "$1" > "$T/$1/index.html"; echo "$T/$1"; }

# ---- SIGTERM drains -------------------------------------------------------------------
P=$(free_port)
env dev "$P"
site v1 >/dev/null
head -c 50000000 /dev/urandom > "$T/v1/big.bin"
sw deploy "$T/v1" --env dev; expect_rc "deploy a release with a 50 MB file" 0
spawn "$SLIPWAY" serve >"$T/serve1.out" 2>"$T/serve1.err"
SERVE=$!
wait_for "serve is up" 60 serves "$P"
# An idle keep-alive connection, to be closed by the drain.
cat > "$T/idle.py" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(65536)
open(sys.argv[2], "w").close()
t = time.monotonic()
try:
    print("eof" if s.recv(65536) == b"" else "data", round(time.monotonic() - t, 2))
except OSError as e:
    print("error", e)
EOF
python3 "$T/idle.py" "$P" "$T/idle.ready" > "$T/idle.out" &
IDLE=$!
wait_for "the idle connection is open" 10 test -e "$T/idle.ready"
curl -s --max-time 30 --limit-rate 20M -o "$T/big.out" "http://127.0.0.1:$P/big.bin" &
DL=$!
# started FILE: more than 1 MB of a download has arrived.
started() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt 1000000 ]; }
wait_for "the download has started" 10 started "$T/big.out"
kill -TERM "$SERVE"
wait_for "after SIGTERM new connections are refused" 5 refused "$P"
check "the download was still running when new connections were refused" kill -0 "$DL"
wait "$DL"; dlrc=$?
check "the in-flight download completes (curl exit 0)" test "$dlrc" = 0
check "the download is complete and intact (sha256)" test "$(sha256sum < "$T/big.out")" = "$(sha256sum < "$T/v1/big.bin")"
wait "$SERVE"; rc=$?
check "serve exits 0 after draining" test "$rc" = 0
wait "$IDLE"
check "the idle keep-alive connection was closed by the drain" grep -q '^eof' "$T/idle.out"

# ---- SIGHUP reloads -----------------------------------------------------------------------
rm -f "$ENVS"/*.yml "$T/v1/big.bin"
P_KEEP=$(free_port); P_GONE=$(free_port); P_MOVE=$(free_port); P_MOVED=$(free_port); P_ADDED=$(free_port)
env dev "$P"; env keep "$P_KEEP"; env gone "$P_GONE"; env move "$P_MOVE"
site s-keep >/dev/null
site s-dev >/dev/null
head -c 20000000 /dev/urandom > "$T/s-dev/big.bin"
# keep's release has many files, so rebuilding its table takes a while.
mkdir -p "$T/s-keep/a"; for i in $(seq 1 300); do echo "$i" > "$T/s-keep/a/$i.txt"; done
for e in dev keep gone move; do sw deploy "$(site "s-$e")" --env "$e"; expect_rc "deploy to $e" 0; done
PA2=$(free_port)
spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA2" >"$T/serve2.out" 2>"$T/serve2.err"
SERVE=$!
wait_for "serve is up" 30 serves "$P_MOVE"
check "keep serves its release" body_is "$P_KEEP" s-keep

# Deploys and rollbacks by another process are served without a restart; a
# download in flight finishes on the release it started on, even after that
# release has been replaced (its table retired, not freed).
# 2 MB/s: the 20 MB take 10 s, well past the deploy even on a loaded machine.
curl -s --max-time 60 --limit-rate 2M -o "$T/big2.out" "http://127.0.0.1:$P/big.bin" &
DL=$!
wait_for "the download has started" 10 started "$T/big2.out"
sw deploy "$(site dev-2)" --env dev; expect_rc "deploy a new release to dev" 0
wait_for "the new dev release is served within 2 s" 2 body_is "$P" dev-2
check "the new release has no big.bin" test "$("${C[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/big.bin")" = 404
check "the download was still running after the deploy" kill -0 "$DL"
wait "$DL"; dlrc=$?
check "a download from a replaced release completes intact" test "$dlrc $(sha256sum < "$T/big2.out")" = "0 $(sha256sum < "$T/s-dev/big.bin")"
sw rollback dev; expect_rc "rollback dev" 0
wait_for "the rollback is served within 2 s" 2 body_is "$P" s-dev

# A keep-alive connection on an unchanged listener, across the reload.
cat > "$T/ka.py" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def req():
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"\n\n") and not data.endswith(b"s-keep\n"):
        c = s.recv(65536)
        if not c:
            return "closed"
        data += c
    return data.split(b"\r\n")[0].decode() + " " + data.split(b"\r\n\r\n", 1)[1].decode().strip()
print("1:", req(), flush=True)
end = time.monotonic() + 30
while not __import__("os").path.exists(sys.argv[2]) and time.monotonic() < end:
    time.sleep(0.05)
try:
    print("2:", req())
except OSError as e:
    print("2: error", e)
EOF
python3 "$T/ka.py" "$P_KEEP" "$T/ka.go" > "$T/ka.out" &
KA=$!
wait_for "the keep-alive connection has its first answer" 30 grep -q '^1:' "$T/ka.out"
# Load on the unchanged listener while the reload happens: nothing may fail.
cat > "$T/non2xx.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body) if status < 200 or status > 299 then bad = bad + 1 end end
function done(summary, latency, requests)
    local n = 0
    for _, t in ipairs(threads) do n = n + t:get("bad") end
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d\n", summary.requests, n, e.connect + e.read + e.write + e.timeout))
end
EOF
# Long enough for the reloads on a loaded machine; stopped with SIGINT (wrk then prints its
# summary) once they are over.
spawn wrk -t1 -c4 -d120s -s "$T/non2xx.lua" "http://127.0.0.1:$P_KEEP/" > "$T/wrk.out" 2>&1
WRK=$!

site s-added >/dev/null
env added "$P_ADDED"
sw deploy "$T/s-added" --env added; expect_rc "deploy to a new environment" 0
rm "$ENVS/gone.yml"
env move "$P_MOVED"
# Let wrk run for a moment before the reload.
wait_for "wrk is under way" 20 grep -q . <(curl -s --max-time 5 "http://127.0.0.1:$PA2/_slipway/metrics" | grep -E '^slipway_open_connections [5-9]')
switches() { "${C[@]}" "http://127.0.0.1:$PA2/_slipway/metrics" | sed -n "s/^slipway_switches_total{env=\"$1\"} //p"; }
keep_switches=$(switches keep)
kill -HUP "$SERVE"
wait_for "an added environment is served after SIGHUP" 10 body_is "$P_ADDED" s-added
wait_for "a removed environment stops listening" 10 refused "$P_GONE"
wait_for "a moved environment is served on its new address" 10 body_is "$P_MOVED" s-move
wait_for "a moved environment's old address is closed" 10 refused "$P_MOVE"
check "unchanged environments still serve" body_is "$P" s-dev
# More reloads, nothing changed, while wrk keeps going: each rebuilds every table.
reloads() { [ "$(grep -c 'reloaded' "$T/serve2.err")" -ge "$1" ]; }
for i in 2 3 4 5 6 7 8; do
    kill -HUP "$SERVE"
    wait_for "reload $i is done" 5 reloads "$i"
done
check "wrk was still running after the reloads" kill -0 "$WRK"
check "a reload is not a switch (slipway_switches_total unchanged)" test "$(switches keep)" = "$keep_switches"
# Settings baked into tables change on reload: turn on keep's SPA fallback.
check "before: an unknown path on keep is 404" test "$("${C[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_KEEP/app/route")" = 404
printf 'spa_fallback: /index.html\n' >> "$ENVS/keep.yml"
kill -HUP "$SERVE"
spa_on() { [ "$("${C[@]}" "http://127.0.0.1:$P_KEEP/app/route")" = s-keep ]; }
wait_for "after SIGHUP keep's new spa_fallback applies" 10 spa_on
touch "$T/ka.go"
wait "$KA"
check "a keep-alive connection on an unchanged listener survives SIGHUP" grep -q '^2: HTTP/1.1 200 OK s-keep$' "$T/ka.out"
kill -INT "$WRK"
wait "$WRK"
read -r _ wreq wbad werr < <(grep '^RESULT' "$T/wrk.out")
echo "# wrk across SIGHUP: ${wreq:-?} requests, ${wbad:-?} non-2xx, ${werr:-?} socket errors"
check "requests on an unchanged listener during SIGHUP: none fails" test "${wreq:-0}" -gt 0 -a "${wbad:-x}${werr:-x}" = 00
check "serve says it reloaded" grep -q "reloaded 4 environments" "$T/serve2.err"
check "wrk ran across the reloads" grep -q '^RESULT' "$T/wrk.out"
check "requests during the reloads were served by rebuilt tables" body_is "$P_KEEP" s-keep
# A broken file: the running configuration stays.
printf 'strategy: sideways\n' > "$ENVS/bad.yml"
kill -HUP "$SERVE"
wait_for "a bad reload is reported" 10 grep -q "reload failed" "$T/serve2.err"
check "after a bad reload everything still serves" eval 'body_is "$P_ADDED" s-added && body_is "$P_MOVED" s-move && body_is "$P" s-dev'
rm "$ENVS/bad.yml"
kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after reloads" test "$rc" = 0

# ---- timeouts ----------------------------------------------------------------------------------
PA3=$(free_port)
spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA3" --header-timeout 1s --idle-timeout 1s >"$T/serve3.out" 2>"$T/serve3.err"
SERVE=$!
wait_for "serve with 1 s timeouts is up" 30 serves "$P"
cat > "$T/slow.py" <<'EOF'
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
t0 = time.monotonic()
def closed():
    """True once the server has closed (EOF or reset), without blocking."""
    s.setblocking(False)
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)
if mode == "slowloris":
    # One header byte every 300 ms, never finishing the head.
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    while time.monotonic() - t0 < 8:
        try:
            s.send(b"a")
        except OSError:
            break
        time.sleep(0.3)
        if closed():
            break
elif mode == "idle":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(65536)
    t0 = time.monotonic()
    s.settimeout(8)
    try:
        s.recv(65536)
    except OSError:
        pass
elif mode == "busy":
    # A request every 300 ms on one connection for 2.5 s: never idle for 1 s.
    n = 0
    while time.monotonic() - t0 < 2.5:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        d = s.recv(65536)
        if not d.startswith(b"HTTP/1.1 200"):
            break
        n += 1
        time.sleep(0.3)
    print(n)
    sys.exit()
print(round(time.monotonic() - t0, 2))
EOF
t=$(python3 "$T/slow.py" slowloris "$P")
echo "# slowloris closed after $t s"
check "--header-timeout 1s: a slowloris client is closed within ~2 s ($t s)" python3 -c "import sys; sys.exit(not 0.9 <= $t <= 3)"
t=$(python3 "$T/slow.py" idle "$P")
echo "# idle keep-alive closed after $t s"
check "--idle-timeout 1s: an idle keep-alive connection is closed after ~1 s ($t s)" python3 -c "import sys; sys.exit(not 0.9 <= $t <= 3)"
n=$(python3 "$T/slow.py" busy "$P")
check "--idle-timeout 1s: a connection used every 300 ms stays open ($n requests)" test "$n" -ge 7
check "timeouts are counted in the metrics" grep -q '^slipway_timeouts_total [2-9]' <("${C[@]}" "http://127.0.0.1:$PA3/_slipway/metrics")
kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0" test "$rc" = 0

# ---- connection limit ------------------------------------------------------------------------------
PA4=$(free_port)
spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA4" --max-connections 5 >"$T/serve4.out" 2>"$T/serve4.err"
SERVE=$!
wait_for "serve with --max-connections 5 is up" 30 serves "$P"
cat > "$T/limit.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
def get(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while b"\r\n\r\n" not in d:
        c = s.recv(65536)
        if not c:
            return "closed"
        d += c
    return d.split(b" ")[1].decode()
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
print("five:", *[get(s) for s in held])
s6 = socket.create_connection(("127.0.0.1", port), timeout=5)
try:
    r = get(s6)
except OSError as e:
    r = "error %s" % e
# The server closes at once; a reset (our request was never read) is a close too.
s6.settimeout(2)
try:
    eof = s6.recv(65536) == b""
except ConnectionResetError:
    eof = True
except OSError:
    eof = False
print("sixth:", r, "closed" if eof else "open")
held.pop().close()
# The freed slot is usable once the server has seen the close.
end = time.monotonic() + 5
while time.monotonic() < end:
    s7 = socket.create_connection(("127.0.0.1", port), timeout=5)
    r = get(s7)
    s7.close()
    if r == "200":
        break
    time.sleep(0.05)
print("after:", r)
EOF
python3 "$T/limit.py" "$P" > "$T/limit.out"
sed 's/^/# /' "$T/limit.out"
check "--max-connections 5: five connections are served" grep -qx 'five: 200 200 200 200 200' "$T/limit.out"
check "--max-connections 5: the sixth gets 503 and is closed" grep -qx 'sixth: 503 closed' "$T/limit.out"
check "--max-connections 5: a freed slot can be used again" grep -qx 'after: 200' "$T/limit.out"
check "rejections are counted in the metrics" grep -q '^slipway_connections_rejected_total [1-9]' <("${C[@]}" "http://127.0.0.1:$PA4/_slipway/metrics")
kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T"/serve*.err'
done_testing

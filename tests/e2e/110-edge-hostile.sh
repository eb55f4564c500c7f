#!/usr/bin/env bash
# Malformed and hostile requests sent raw over a socket: request smuggling
# (CL.TE, TE.CL, TE.TE), duplicate and odd Content-Length, obs-fold, bare CR
# and LF, NUL, over-long lines and heads, Host and version errors, and path
# traversal in every encoding. Each must get the right status, a parse error
# must close the connection, and no response may ever carry a byte from
# outside the release. Then the llhttp request corpus (strict rows), when the
# shared conformance folder is there.
. "$(dirname "$0")/lib.sh"
RAW=$ROOT/tests/e2e/rawhttp.py
raw() { python3 "$RAW" "$@"; }

new_project
ENVS=$T/p/.slipway/environments
DATA=$T/p/.slipway/data
mkdir -p "$T/site/docs"
printf '<!doctype html><p>docs</p>\n' > "$T/site/docs/index.html"
printf '<!doctype html><p>not here</p>\n' > "$T/site/404.html"
# Secrets next to the site (one level up), in the project, and the store's own files.
SECRET="SECRET-$RANDOM$RANDOM$RANDOM"
printf '%s above the site\n' "$SECRET" > "$T/secret.txt"
printf '%s in the project\n' "$SECRET" > "$T/p/secret.txt"
printf '%s next to the store\n' "$SECRET" > "$T/p/.slipway/secret.txt"
P=$(free_port)
cat > "$ENVS/dev.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P
EOF
rm -f "$ENVS/staging.yml"
sw deploy "$T/site" --env dev; expect_rc "deploy the site" 0
STATE_MARK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["updated"])' "$DATA/envs/dev/state.json")

spawn "$SLIPWAY" serve >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$P/_slipway/health"

RX=$T/rx.bin
: > "$RX"
n=0
# hostile DESC STATUS REQUEST: REQUEST (printf %b escapes) sent raw; expects one
# response with STATUS. A 4xx/5xx from the parser (400, 414, 431, 505) must
# also close the connection; 404 and 405 are ordinary answers.
hostile() {
    local d=$1 want=$2 req=$3 got
    n=$((n + 1))
    case $want in
    404 | 405)
        got=$(printf '%b' "$req" | raw "$P" --raw "$RX" --brief)
        check "$d: $want" test "${got% *}" = "[$want]"
        ;;
    *)
        got=$(printf '%b' "$req" | raw "$P" --eof --raw "$RX" --brief)
        check "$d: $want and closed" test "$got" = "[$want] closed"
        ;;
    esac
    [ "$got" = "[$want] closed" ] || [ "${got% *}" = "[$want]" ] || echo "# got: $got"
}
H='Host: x\r\n'

# ---- smuggling: a request never has a body here, so any framing is refused ----------------
hostile "CL.TE" 400 "POST / HTTP/1.1\r\n${H}Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "TE.CL" 400 "POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /secret.txt HTTP/1.1\r\n${H}\r\n0\r\n\r\n"
hostile "TE.TE: space before the colon" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
hostile "TE.TE: xchunked" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n"
hostile "TE.TE: tab before the value" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\n\r\n"
hostile "TE.TE: duplicated" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
hostile "TE.TE: a list" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding: identity, chunked\r\n\r\n"
hostile "TE.TE: odd case" 400 "GET / HTTP/1.1\r\n${H}tRANSFER-eNCODING: chunked\r\n\r\n"
hostile "TE hidden by obs-fold" 400 "GET / HTTP/1.1\r\n${H}X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n"
hostile "TE on a GET, with a chunked body" 400 "GET / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
hostile "duplicate Content-Length, equal" 400 "GET / HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 0\r\n\r\n"
hostile "duplicate Content-Length, different" 400 "GET / HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 7\r\n\r\n"
hostile "Content-Length list" 400 "GET / HTTP/1.1\r\n${H}Content-Length: 0, 0\r\n\r\n"
hostile "Content-Length with +" 400 "GET / HTTP/1.1\r\n${H}Content-Length: +0\r\n\r\n"
hostile "Content-Length negative" 400 "GET / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n"
hostile "Content-Length not a number" 400 "GET / HTTP/1.1\r\n${H}Content-Length: 0x0\r\n\r\n"
hostile "a body on GET" 400 "GET / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello"
hostile "a body on POST (would be read as the next request)" 400 "POST / HTTP/1.1\r\n${H}Content-Length: 34\r\n\r\nGET /secret.txt HTTP/1.1\r\nHost: x\r\n\r\n"

# ---- line and field syntax --------------------------------------------------------------------
hostile "obs-fold" 400 "GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n"
hostile "obs-fold with a tab" 400 "GET / HTTP/1.1\r\n${H}X-A: a\r\n\tb\r\n\r\n"
hostile "whitespace before the first field" 400 "GET / HTTP/1.1\r\n ${H}\r\n"
hostile "bare LF line endings" 400 "GET / HTTP/1.1\nHost: x\n\n"
hostile "bare LF in the headers only" 400 "GET / HTTP/1.1\r\n${H}X-A: b\n\r\n"
hostile "bare CR in a field value" 400 "GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n"
hostile "bare CR ending the request line" 400 "GET / HTTP/1.1\r${H}\r\n"
hostile "NUL in a field value" 400 "GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n"
hostile "NUL in a field name" 400 "GET / HTTP/1.1\r\n${H}X\x00A: b\r\n\r\n"
hostile "NUL in the path" 400 "GET /index.html\x00.png HTTP/1.1\r\n${H}\r\n"
hostile "DEL in a field value" 400 "GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n"
hostile "space in a field name" 400 "GET / HTTP/1.1\r\n${H}Bad Name: b\r\n\r\n"
hostile "a field line without a colon" 400 "GET / HTTP/1.1\r\n${H}NoColonHere\r\n\r\n"
hostile "two spaces in the request line" 400 "GET  / HTTP/1.1\r\n${H}\r\n"
hostile "tab in the request line" 400 "GET\t/ HTTP/1.1\r\n${H}\r\n"
hostile "whitespace before the request line" 400 " GET / HTTP/1.1\r\n${H}\r\n"
hostile "raw high byte in the target" 400 "GET /\xc3\xa9 HTTP/1.1\r\n${H}\r\n"
hostile "no version (HTTP/0.9 style)" 400 "GET /\r\n\r\n"
hostile "lowercase version" 400 "GET / http/1.1\r\n${H}\r\n"
hostile "asterisk-form on GET" 400 "GET * HTTP/1.1\r\n${H}\r\n"
hostile "lowercase method is another method" 405 "get / HTTP/1.1\r\n${H}\r\n"
hostile "CONNECT" 405 "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"

# ---- limits, Host, version -----------------------------------------------------------------------
long=$(head -c 9000 /dev/zero | tr '\0' a)
hostile "request line over 8 KiB" 414 "GET /$long HTTP/1.1\r\n${H}\r\n"
mid=$(head -c 6000 /dev/zero | tr '\0' b)
hostile "a 6 KiB path, under the 8 KiB request-line limit, is a path like any other" 404 "GET /$mid HTTP/1.1\r\n${H}\r\n"
edge=$(head -c 8170 /dev/zero | tr '\0' c)
hostile "a path that just fits the request line is a path too" 404 "GET /$edge HTTP/1.1\r\n${H}\r\n"
hostile "request line past 16 KiB with no line end yet" 414 "GET /$long$long"
big=$(head -c 1000 /dev/zero | tr '\0' b)
hdrs=""; for i in $(seq 1 20); do hdrs+="X-$i: $big\r\n"; done
hostile "head over 16 KiB" 431 "GET / HTTP/1.1\r\n${H}$hdrs\r\n"
hostile "one 17 KiB field" 431 "GET / HTTP/1.1\r\n${H}X-Big: $(head -c 17000 /dev/zero | tr '\0' c)\r\n\r\n"
hdrs=""; for i in $(seq 1 70); do hdrs+="X-$i: v\r\n"; done
hostile "too many fields (70)" 431 "GET / HTTP/1.1\r\n${H}$hdrs\r\n"
hostile "HTTP/1.1 without Host" 400 "GET / HTTP/1.1\r\n\r\n"
hostile "two Host fields" 400 "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
hostile "Host with userinfo" 400 "GET / HTTP/1.1\r\nHost: user@x\r\n\r\n"
hostile "Host with a slash" 400 "GET / HTTP/1.1\r\nHost: x/../y\r\n\r\n"
hostile "HTTP/2.0 in an HTTP/1 request line" 505 "GET / HTTP/2.0\r\n${H}\r\n"
hostile "HTTP/1.2" 505 "GET / HTTP/1.2\r\n${H}\r\n"
hostile "HTTP/0.9" 505 "GET / HTTP/0.9\r\n${H}\r\n"
hostile "HTTP/1.10" 400 "GET / HTTP/1.10\r\n${H}\r\n"

# ---- traversal in every encoding --------------------------------------------------------------------
hostile "/../" 400 "GET /../secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/%2e%2e/" 400 "GET /%2e%2e/secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/.%2e/" 400 "GET /.%2e/secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/%2e./" 400 "GET /%2E./secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/%2E%2E%2F" 400 "GET /%2E%2E%2Fsecret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/..%2f" 400 "GET /..%2fsecret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/%2f" 400 "GET /%2fetc%2fpasswd HTTP/1.1\r\n${H}\r\n"
hostile '/..\' 400 'GET /..\\secret.txt HTTP/1.1\r\nHost: x\r\n\r\n'
hostile "/%5c" 400 "GET /%5c..%5csecret.txt HTTP/1.1\r\n${H}\r\n"
hostile "/..%5c" 400 "GET /..%5csecret.txt HTTP/1.1\r\n${H}\r\n"
hostile "%00" 400 "GET /index.html%00.png HTTP/1.1\r\n${H}\r\n"
hostile "bad escape %zz" 400 "GET /%zz HTTP/1.1\r\n${H}\r\n"
hostile "truncated escape %2" 400 "GET /index.html%2 HTTP/1.1\r\n${H}\r\n"
hostile "/a/../../etc/passwd" 400 "GET /a/../../etc/passwd HTTP/1.1\r\n${H}\r\n"
hostile "/docs/../../secret.txt" 400 "GET /docs/../../secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "deep climb to the store" 400 "GET /../../p/.slipway/data/envs/dev/state.json HTTP/1.1\r\n${H}\r\n"
hostile "absolute-form http://x/../../etc/passwd" 400 "GET http://x/../../etc/passwd HTTP/1.1\r\n${H}\r\n"
hostile "absolute-form with encoded dots" 400 "GET http://x/%2e%2e/secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "a fragment in the target" 400 "GET /index.html#x HTTP/1.1\r\n${H}\r\n"
hostile "double-encoded %252e%252e%252f is a name, not traversal" 404 "GET /%252e%252e%252fsecret.txt HTTP/1.1\r\n${H}\r\n"
hostile "overlong UTF-8 dots are a name" 404 "GET /%c0%ae%c0%ae/secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "..; is a name" 404 "GET /..;/secret.txt HTTP/1.1\r\n${H}\r\n"
hostile "//etc/passwd stays inside the release" 404 "GET //etc/passwd HTTP/1.1\r\n${H}\r\n"
hostile "/.slipway/ of the project is not served" 404 "GET /.slipway/data/envs/dev/state.json HTTP/1.1\r\n${H}\r\n"
hostile "a blob's name is not a path" 404 "GET /$(sha256sum < "$T/site/index.html" | cut -d' ' -f1) HTTP/1.1\r\n${H}\r\n"
check "at least 40 hostile requests ($n)" test "$n" -ge 40

# Nothing from outside the release in any response.
check "no response carries the secret files" eval '! grep -qa "$SECRET" "$RX"'
check "no response carries /etc/passwd" eval '! grep -qa "root:x:0:0" "$RX"'
check "no response carries the store's state" eval '! grep -qaF -e "$STATE_MARK" -e "\"generation\"" -e "files_count" "$RX"'
check "no response carries an environment file" eval '! grep -qa "strategy: direct" "$RX"'
check "the 404s are the release's own 404.html" grep -qa "not here" "$RX"
check "still serving after the corpus" curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$P/"
# The smuggled request inside a refused one was never answered: one response each.
out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' | raw "$P")
check "Content-Length: 0 on GET is fine" test "$(json 'j["statuses"]')" = "[200]"
out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P" -n 2 --eof)
check "a refused body is never parsed as a second request" test "$(json 'j["statuses"], j["closed"]')" = "[400] True"
out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P" -n 3 --eof)
check "pipelined: good, bad, good → 200, 400, then closed" test "$(json 'j["statuses"], j["closed"]')" = "[200, 400] True"
out=$(printf '\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P")
check "empty lines before a request line are skipped (RFC 9112 §2.2)" test "$(json 'j["statuses"]')" = "[200]"

# Byte at a time: the parser sees every prefix.
cat > "$T/drip.py" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
for b in b"GET /docs/ HTTP/1.1\r\nHost: x\r\nX-A: " + b"y" * 300 + b"\r\nConnection: close\r\n\r\n":
    s.send(bytes([b]))
data = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    data += c
print(data.split(b"\r\n")[0].decode(), data.endswith(b"<p>docs</p>\n"))
EOF
check "a request sent one byte at a time" test "$(python3 "$T/drip.py" "$P")" = "HTTP/1.1 200 OK True"

# ---- llhttp's request corpus ------------------------------------------------------------------------------
CONF=$ROOT/../shared/conformance/http1-requests.json
if [ -f "$CONF" ]; then
    cat > "$T/conf.py" <<'EOF'
import base64, json, socket, sys, time
from concurrent.futures import ThreadPoolExecutor
rows = [r for r in json.load(open(sys.argv[1])) if r["strict"]]
port = int(sys.argv[2])

def run(r):
    data = base64.b64decode(r["raw_b64"])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    rx, statuses, hung = b"", [], False
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            c = s.recv(65536)
            if not c:
                break
            rx += c
    except socket.timeout:
        hung = True
    except OSError:
        pass
    s.close()
    for line in rx.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 ") and line[9:12].isdigit():
            statuses.append(int(line[9:12]))
    return r, statuses, hung

with ThreadPoolExecutor(8) as ex:
    res = list(ex.map(run, rows))
bad = [(r["file"], r["name"], st) for r, st, _ in res
       if r["expect"] == "error" and r["complete_msgs"] == 0 and any(200 <= x < 300 for x in st)]
hung = [(r["file"], r["name"]) for r, _, h in res if h]
silent = [(r["file"], r["name"]) for r, st, h in res if not st and not r["ends_mid_message"] and not h]
nerr = sum(1 for r in rows if r["expect"] == "error")
nok2 = sum(1 for r, st, _ in res if r["expect"] == "ok" and st and all(200 <= x < 300 for x in st))
print(f"# llhttp strict rows: {len(rows)} sent ({nerr} error rows, {len(rows) - nerr} ok rows); "
      f"{nok2} ok rows answered 2xx throughout; {len(silent)} complete rows got no response")
for b in bad:
    print("# error row answered 2xx:", b)
for h in hung:
    print("# no EOF within 5 s:", h)
print(len(rows), len(bad), len(hung))
EOF
    res=$(python3 "$T/conf.py" "$CONF" "$P")
    grep '^#' <<<"$res"
    read -r nrows nbad nhung < <(grep -v '^#' <<<"$res")
    check "llhttp: every strict row was sent ($nrows)" test "${nrows:-0}" -ge 100
    check "llhttp: no error row (complete_msgs 0) gets a 2xx" test "${nbad:-1}" = 0
    check "llhttp: every connection ends after a half-close" test "${nhung:-1}" = 0
    check "still serving after the llhttp corpus" curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$P/"
else
    ok "llhttp corpus # SKIP $CONF not found"
fi

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 after all that" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

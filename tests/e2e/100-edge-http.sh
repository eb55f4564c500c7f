#!/usr/bin/env bash
# slipway serve over HTTP with real clients (curl, and raw sockets where curl
# cannot say what went over the wire): methods, HTTP/1.0 and keep-alive,
# pipelining, headers from the manifest, ETag and If-None-Match, ranges,
# compressed variants, directory paths and redirects, 404.html and the SPA
# fallback, large bodies, 503 without a release, blue-green live and preview,
# the control endpoints, --admin and --access-log.
. "$(dirname "$0")/lib.sh"
RAW=$ROOT/tests/e2e/rawhttp.py
raw() { python3 "$RAW" "$@"; }
C=(curl -s --max-time 10)

new_project
DATA=$T/p/.slipway/data
ENVS=$T/p/.slipway/environments
S=$T/site
mkdir -p "$S/docs"
printf '<!doctype html><p>docs</p>\n' > "$S/docs/index.html"
printf '<!doctype html><p>this release has no such page</p>\n' > "$S/404.html"
printf 'function hello(){return "hello, slipway";}\n%.0s' {1..40} > "$S/app.js"
gzip -k -9 "$S/app.js"
printf 'not really brotli, served as shipped\n' > "$S/app.js.br"
python3 -c 'import sys; sys.stdout.write("".join(chr(48 + i % 75) for i in range(1000)))' > "$S/r.txt"
head -c 5000000 /dev/urandom > "$S/big.bin"
# Names that must be percent-encoded in a URI.
mkdir -p "$S/my dir" "$S/what?" "$S/50%"
printf 'spaced\n' > "$S/my dir/index.html"
printf 'question\n' > "$S/what?/index.html"
printf 'percent\n' > "$S/50%/index.html"
printf 'caf\xc3\xa9\n' > "$S/café.txt"
# A release without 404.html, one whose index differs (the idle slot), and one for the SPA.
mkdir -p "$T/bare" "$T/green"
printf '<!doctype html><p>bare</p>\n' > "$T/bare/index.html"
printf '<!doctype html><p>green</p>\n' > "$T/green/index.html"

P_DEV=$(free_port); P_BGL=$(free_port); P_BGP=$(free_port); P_EMPTY=$(free_port)
P_SPA=$(free_port); P_BARE=$(free_port)
cat > "$ENVS/dev.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P_DEV
EOF
cat > "$ENVS/staging.yml" <<EOF
strategy: blue-green
listen: 127.0.0.1:$P_BGL
preview: 127.0.0.1:$P_BGP
EOF
cat > "$ENVS/empty.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P_EMPTY
EOF
cat > "$ENVS/spa.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P_SPA
spa_fallback: /index.html
EOF
cat > "$ENVS/bare.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P_BARE
EOF

sw release create "$S" -q; expect_rc "release of the test site" 0
REL=$out
sw deploy "$REL" --env dev; expect_rc "deploy to dev" 0
sw deploy "$REL" --env spa; expect_rc "deploy to spa" 0
sw deploy "$T/bare" --env bare; expect_rc "deploy to bare" 0
sw deploy "$REL" --env staging; expect_rc "first deploy to staging (live, blue)" 0
sw deploy "$T/green" --env staging; expect_rc "second deploy to staging (idle, green)" 0
MANIFEST=$DATA/releases/$REL.json
# mf PATH FIELD: a field of PATH's entry in the release manifest.
mf() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print([f for f in m["files"] if f["path"]==sys.argv[2]][0][sys.argv[3]])' "$MANIFEST" "$1" "$2"; }

touch "$T/.before-serve"
P_ADM1=$(free_port)
spawn "$SLIPWAY" serve --admin "127.0.0.1:$P_ADM1" >"$T/serve1.out" 2>"$T/serve1.err"
SERVE1=$!
wait_for "serve answers /_slipway/health" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P_DEV/_slipway/health"

U=http://127.0.0.1:$P_DEV
# get NAME CURL-ARGS...: headers in $T/NAME.h, body in $T/NAME.b, status in $code.
get() { local n=$1; shift; code=$("${C[@]}" -D "$T/$n.h" -o "$T/$n.b" -w '%{http_code}' "$@"); }
# hdr NAME FIELD: the value of FIELD in $T/NAME.h (first occurrence, CR stripped).
hdr() { sed -n "s/^$2: *//Ip" "$T/$1.h" | tr -d '\r' | head -1; }
has_hdr() { grep -qi "^$2:" "$T/$1.h"; }
same() { cmp -s "$1" "$2"; }

# ---- methods, versions, connections ------------------------------------------------
get root "$U/"
check "GET / is 200" test "$code" = 200
check "GET / is index.html" same "$T/root.b" "$S/index.html"
get head -I "$U/"
check "HEAD / is 200" test "$code" = 200
check "HEAD: Content-Length is the GET body's" test "$(hdr head Content-Length)" = "$(stat -c %s "$S/index.html")"
out=$(printf 'HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw "$P_DEV" --head --eof)
check "HEAD sends no body, even for a sendfile body" test "$(json 'j["statuses"], j["leftover"], j["closed"], j["headers"][0]["content-length"]')" = "[200] 0 True 5000000"

"${C[@]}" -0 -v -o /dev/null -o /dev/null "$U/" "$U/docs/" 2>"$T/v10"
check "HTTP/1.0 without keep-alive: Connection: close" grep -qi '^< Connection: close' "$T/v10"
check "HTTP/1.0 without keep-alive: no connection reuse" eval '! grep -q "Re-using existing connection" "$T/v10"'
"${C[@]}" -0 -v -H 'Connection: keep-alive' -o /dev/null -o /dev/null "$U/" "$U/docs/" 2>"$T/v10k"
check "HTTP/1.0 keep-alive: Connection: keep-alive" grep -qi '^< Connection: keep-alive' "$T/v10k"
check "HTTP/1.0 keep-alive: the connection is reused" grep -q "Re-using existing connection" "$T/v10k"
"${C[@]}" -v -o /dev/null -o /dev/null "$U/" "$U/docs/" 2>"$T/v11"
check "HTTP/1.1 keep-alive: the connection is reused" grep -q "Re-using existing connection" "$T/v11"
check "HTTP/1.1 keep-alive: no Connection: close" eval '! grep -qi "^< Connection: close" "$T/v11"'

out=$(printf 'GET /docs/ HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nGET /r.txt HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P_DEV" -n 3)
check "pipelining: three responses" test "$(json 'j["statuses"]')" = "[200, 200, 200]"
check "pipelining: in request order" test "$(json 'j["bodies"][0] == open("'"$S"'/docs/index.html").read() and j["bodies"][1] == open("'"$S"'/index.html").read() and j["bodies"][2] == open("'"$S"'/r.txt").read()')" = True
out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw "$P_DEV" --eof)
check "Connection: close: answered, then the server closes" test "$(json 'j["statuses"], j["closed"], j["timeout"]')" = "[200] True False"
check "Connection: close is echoed" test "$(json 'j["headers"][0].get("connection")')" = close
out=$(printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P_DEV" --eof --wait 1)
check "HTTP/1.1 without Connection: close stays open" test "$(json 'j["statuses"], j["closed"]')" = "[200] False"

# ---- headers --------------------------------------------------------------------------
check "Server: slipway" test "$(hdr root Server)" = slipway
check "Date is an HTTP-date within a minute of now" python3 -c '
import sys, email.utils, time
d = email.utils.parsedate_to_datetime(sys.argv[1])
sys.exit(abs(d.timestamp() - time.time()) > 60 or not sys.argv[1].endswith(" GMT"))' "$(hdr root Date)"
check "Content-Length is the body size" test "$(hdr root Content-Length)" = "$(stat -c %s "$T/root.b")"
for f in index.html css/app.3f9a2c1d.css app.js img/logo.png; do
    get one "$U/$f"
    check "$f: Content-Type from the manifest ($(hdr one Content-Type))" test "$(hdr one Content-Type)" = "$(mf "$f" type)"
    check "$f: Cache-Control from the manifest" test "$(hdr one Cache-Control)" = "$(mf "$f" cache)"
    check "$f: ETag is the quoted SHA-256 of the body" test "$(hdr one ETag)" = "\"$(sha256sum < "$S/$f" | cut -d' ' -f1)\""
done
get one "$U/index.html"; check "html is text/html; charset=utf-8" test "$(hdr one Content-Type)" = "text/html; charset=utf-8"
get one "$U/css/app.3f9a2c1d.css"; check "css is text/css; charset=utf-8" test "$(hdr one Content-Type)" = "text/css; charset=utf-8"
check "a fingerprinted file is immutable" grep -q immutable <<<"$(hdr one Cache-Control)"
get one "$U/app.js"; check "js is text/javascript; charset=utf-8" test "$(hdr one Content-Type)" = "text/javascript; charset=utf-8"
get one "$U/index.html"; check "index.html is not immutable" eval '! grep -q immutable <<<"$(hdr one Cache-Control)"'

# ---- conditional requests ------------------------------------------------------------------
ET="\"$(sha256sum < "$S/index.html" | cut -d' ' -f1)\""
get c304 -H "If-None-Match: $ET" "$U/"
check "If-None-Match with the ETag: 304" test "$code" = 304
check "304 has no body" test ! -s "$T/c304.b"
check "304 repeats the ETag" test "$(hdr c304 ETag)" = "$ET"
get c304 -H "If-None-Match: W/$ET" "$U/"; check "weak If-None-Match: 304" test "$code" = 304
get c304 -H "If-None-Match: \"abc\", W/\"def\",$ET" "$U/"; check "If-None-Match list containing the ETag: 304" test "$code" = 304
get c304 -H 'If-None-Match: *' "$U/"; check "If-None-Match: * on an existing file: 304" test "$code" = 304
get c200 -H 'If-None-Match: "abc", "0000"' "$U/"; check "If-None-Match without the ETag: 200" test "$code" = 200
check "If-None-Match without the ETag: full body" same "$T/c200.b" "$S/index.html"

# ---- ranges -----------------------------------------------------------------------------------
range_ok() { # NAME URL RANGE FIRST LAST TOTAL FILE
    get "$1" -r "$3" "$2"
    check "Range $3: 206" test "$code" = 206
    check "Range $3: Content-Range bytes $4-$5/$6" test "$(hdr "$1" Content-Range)" = "bytes $4-$5/$6"
    check "Range $3: the right bytes" same "$T/$1.b" <(tail -c +$(($4 + 1)) "$7" | head -c $(($5 - $4 + 1)))
}
range_ok rg "$U/r.txt" 0-99 0 99 1000 "$S/r.txt"
range_ok rg "$U/r.txt" 500-599 500 599 1000 "$S/r.txt"
range_ok rg "$U/r.txt" -100 900 999 1000 "$S/r.txt"
range_ok rg "$U/r.txt" 500- 500 999 1000 "$S/r.txt"
range_ok rg "$U/r.txt" 990-5000 990 999 1000 "$S/r.txt"
range_ok rg "$U/big.bin" 1000000-1099999 1000000 1099999 5000000 "$S/big.bin"
range_ok rg "$U/big.bin" -70000 4930000 4999999 5000000 "$S/big.bin"
get rg -r 2000-3000 "$U/r.txt"
check "unsatisfiable Range: 416" test "$code" = 416
check "416 has Content-Range: bytes */1000" test "$(hdr rg Content-Range)" = "bytes */1000"
get rg -r 1000- "$U/r.txt"; check "Range starting at the size: 416" test "$code" = 416
RET="\"$(sha256sum < "$S/r.txt" | cut -d' ' -f1)\""
get rg -r 0-9 -H "If-Range: $RET" "$U/r.txt"
check "If-Range with the current ETag: 206" test "$code $(cat "$T/rg.b")" = "206 $(head -c 10 "$S/r.txt")"
get rg -r 0-9 -H 'If-Range: "0123"' "$U/r.txt"
check "If-Range with an old ETag: the whole body, 200 (RFC 9110 §13.1.5)" eval 'test "$code" = 200 && cmp -s "$T/rg.b" "$S/r.txt"'
get rg -r 0-9 -H "If-Range: W/$RET" "$U/r.txt"
check "If-Range with a weak ETag never matches: 200" test "$code" = 200
get rg -r 0-9 -H 'If-Range: Wed, 21 Oct 2015 07:28:00 GMT' "$U/r.txt"
check "If-Range with a date other than Last-Modified: 200" test "$code" = 200

# ---- compressed variants (made by release create; 105-edge-compression.sh has the rest) ----------
get enc -H 'Accept-Encoding: gzip' "$U/app.js"
check "Accept-Encoding: gzip gets the gzip variant" test "$(hdr enc Content-Encoding)" = gzip
check "the gzip body decodes to app.js" same <(python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1],"rb").read()))' "$T/enc.b") "$S/app.js"
check "the gzip variant has Vary: Accept-Encoding" test "$(hdr enc Vary)" = Accept-Encoding
check "the gzip variant keeps the JavaScript type" test "$(hdr enc Content-Type)" = "text/javascript; charset=utf-8"
check "the gzip variant's ETag is its own body's hash" test "$(hdr enc ETag)" = "\"$(sha256sum < "$T/enc.b" | cut -d' ' -f1)\""
check "curl --compressed decodes it to app.js" same <("${C[@]}" --compressed -H 'Accept-Encoding: gzip' "$U/app.js") "$S/app.js"
get enc -H 'Accept-Encoding: gzip, deflate, br' "$U/app.js"
check "Accept-Encoding with br prefers br" test "$(hdr enc Content-Encoding)" = br
get enc -H 'Accept-Encoding: gzip, br' "$U/app.js.br"
check "a shipped app.js.br is a file of its own, never a variant" eval 'test "$code" = 200 && ! has_hdr enc Content-Encoding && cmp -s "$T/enc.b" "$S/app.js.br"'
get enc -H 'Accept-Encoding: br;q=0, gzip' "$U/app.js"
check "br;q=0 refuses br: gzip instead" test "$(hdr enc Content-Encoding)" = gzip
get enc -H 'Accept-Encoding: br;Q=0,gzip' "$U/app.js"
check "Q=0 in capitals refuses too" test "$(hdr enc Content-Encoding)" = gzip
get enc -H "Accept-Encoding: identity,$(printf '\t')br" "$U/app.js"
check "a tab before a coding" test "$(hdr enc Content-Encoding)" = br
get enc -H 'Accept-Encoding: gzip;q=0' "$U/app.js"
check "gzip;q=0: identity" eval '! has_hdr enc Content-Encoding'
check "gzip;q=0: the plain body" same "$T/enc.b" "$S/app.js"
check "identity still carries Vary: Accept-Encoding" test "$(hdr enc Vary)" = Accept-Encoding
get enc "$U/app.js"
check "no Accept-Encoding: identity" eval '! has_hdr enc Content-Encoding && cmp -s "$T/enc.b" "$S/app.js"'
get enc -H 'Accept-Encoding: gzip' "$U/index.html"
check "a file without variants: identity, no Vary" eval '! has_hdr enc Content-Encoding && ! has_hdr enc Vary'
get enc -H 'Accept-Encoding: gzip' -r 0-9 "$U/app.js"
check "a Range is served from the identity body" test "$code $(cat "$T/enc.b")" = "206 $(head -c 10 "$S/app.js")"

# ---- paths -------------------------------------------------------------------------------------------
get p "$U/docs/"; check "/docs/ serves docs/index.html" eval 'test "$code" = 200 && cmp -s "$T/p.b" "$S/docs/index.html"'
get p "$U/docs/index.html"; check "/docs/index.html directly" test "$code" = 200
get p "$U/docs"
check "/docs redirects with 301" test "$code" = 301
check "/docs redirects to /docs/" test "$(hdr p Location)" = /docs/
get p "$U/docs?a=1&b=%20x"
check "the redirect keeps the query string" test "$(hdr p Location)" = "/docs/?a=1&b=%20x"
get p "$U/?x=1"; check "the query string is not part of the path" eval 'test "$code" = 200 && cmp -s "$T/p.b" "$S/index.html"'
get p --path-as-is "$U/./docs/../index.html"; check "dot segments are resolved" eval 'test "$code" = 200 && cmp -s "$T/p.b" "$S/index.html"'
get p "$U/docs/%69ndex.html"; check "an encoded unreserved byte is decoded" eval 'test "$code" = 200 && cmp -s "$T/p.b" "$S/docs/index.html"'
get p "$U/caf%C3%A9.txt"; check "an encoded UTF-8 name" eval 'test "$code" = 200 && cmp -s "$T/p.b" "$S/café.txt"'
get p "$U/my%20dir/"; check "an encoded space" eval 'test "$code" = 200 && cmp -s "$T/p.b" "$S/my dir/index.html"'
get p "$U/my%20dir?x=1"
check "redirect of a directory with a space: encoded again" test "$(hdr p Location)" = "/my%20dir/?x=1"
get p "$U/what%3F"
check "redirect of a directory named 'what?': the ? stays encoded" test "$(hdr p Location)" = "/what%3F/"
get p -L "$U/what%3F"; check "following that redirect reaches the directory" same "$T/p.b" "$S/what?/index.html"
get p -L "$U/50%25"; check "following the redirect of a directory named '50%'" same "$T/p.b" "$S/50%/index.html"
get p "$U/nope.html"
check "missing file with 404.html in the release: 404" test "$code" = 404
check "the release's own 404.html is the body" same "$T/p.b" "$S/404.html"
check "its type is HTML" test "$(hdr p Content-Type)" = "text/html; charset=utf-8"
get p "http://127.0.0.1:$P_BARE/nope.html"
check "missing file without 404.html: 404" test "$code" = 404
check "a default 404 body" grep -q "Not Found" "$T/p.b"
get p "http://127.0.0.1:$P_SPA/some/client/route"
check "spa_fallback: an unknown path is 200" test "$code" = 200
check "spa_fallback: with the index body" same "$T/p.b" "$S/index.html"
get p "http://127.0.0.1:$P_SPA/app.js"; check "spa_fallback still serves real files" same "$T/p.b" "$S/app.js"
get p "http://127.0.0.1:$P_BARE/"; check "another environment serves its own release" same "$T/p.b" "$T/bare/index.html"

# ---- large bodies --------------------------------------------------------------------------------------
get big "$U/img/logo.png"
check "a body > 64 KiB (sendfile) is byte-identical" same "$T/big.b" "$S/img/logo.png"
check "its Content-Length" test "$(hdr big Content-Length)" = 70000
get big "$U/big.bin"
check "5 MB body: 200" test "$code" = 200
check "5 MB body: same SHA-256" test "$(sha256sum < "$T/big.b")" = "$(sha256sum < "$S/big.bin")"
"${C[@]}" -o "$T/b1" -o "$T/b2" "$U/big.bin" "$U/img/logo.png"
check "two large bodies on one keep-alive connection" eval 'cmp -s "$T/b1" "$S/big.bin" && cmp -s "$T/b2" "$S/img/logo.png"'
out=$(printf 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /r.txt HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P_DEV" -n 2 --wait 20)
check "pipelined after a sendfile body: both responses, in order" test "$(json 'j["statuses"], len(j["bodies"][0]), j["bodies"][1] == open("'"$S"'/r.txt").read()')" = "[200, 200] 5000000 True"
out=$(printf 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n' | raw "$P_DEV" --shut --eof --wait 20)
check "a client that half-closes after its request gets the whole body" test "$(json 'j["statuses"], len(j["bodies"][0]), j["closed"]')" = "[200] 5000000 True"
"${C[@]}" -0 -o "$T/b1" "$U/big.bin"
check "HTTP/1.0: 5 MB body intact, then closed" test "$(sha256sum < "$T/b1")" = "$(sha256sum < "$S/big.bin")"

# ---- other methods, no release, blue-green ----------------------------------------------------------------
for m in POST PUT DELETE; do
    get m -X "$m" "$U/"
    check "$m: 405" test "$code" = 405
    check "$m: Allow: GET, HEAD" test "$(hdr m Allow)" = "GET, HEAD"
done
get e "http://127.0.0.1:$P_EMPTY/"
check "environment without a release: 503" test "$code" = 503
check "503 explains itself" grep -q "empty has no live release" "$T/e.b"
get bg "http://127.0.0.1:$P_BGL/"
check "blue-green live listener: the live (blue) release" same "$T/bg.b" "$S/index.html"
get bg "http://127.0.0.1:$P_BGP/"
check "blue-green preview listener: the idle (green) release" same "$T/bg.b" "$T/green/index.html"
get bg "http://127.0.0.1:$P_BGP/app.js"
check "the preview serves only the idle release's files" test "$code" = 404

# ---- control endpoints --------------------------------------------------------------------------------------
get h "$U/_slipway/health"; check "/_slipway/health: 200" test "$code" = 200
get h "http://127.0.0.1:$P_BGP/_slipway/health"; check "/_slipway/health on a preview listener" test "$code" = 200
get r "$U/_slipway/ready"
check "/_slipway/ready: 200 once everything is loaded" test "$code" = 200
check "/_slipway/ready on a public listener says only that" test "$(cat "$T/r.b")" = ready
get r "http://127.0.0.1:$P_ADM1/_slipway/ready"
check "/_slipway/ready on the admin listener lists each environment" eval 'grep -q "^dev: serving" "$T/r.b" && grep -q "^staging: serving" "$T/r.b" && grep -q "^empty: no release" "$T/r.b"'
get r "$U/_slipway/metrics"
check "no metrics on a public listener (404)" eval 'test "$code" = 404 && ! grep -q slipway_ "$T/r.b"'
get r "http://127.0.0.1:$P_BGP/_slipway/metrics"
check "no metrics on a preview listener (404)" test "$code" = 404
metric() { # NAME-WITH-LABELS: its value in $T/m.b
    python3 -c 'import sys
for l in open(sys.argv[1]):
    if l.startswith(sys.argv[2] + " "): print(l.split()[-1]); break
else: print(0)' "$T/m.b" "$1"
}
get m "http://127.0.0.1:$P_ADM1/_slipway/metrics"
check "/_slipway/metrics: 200, text/plain" eval 'test "$code" = 200 && grep -q "^text/plain" <<<"$(hdr m Content-Type)"'
check "metrics parse as Prometheus text" python3 -c '
import re, sys
line = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\})? (-?[0-9.]+([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$")
bad = [l for l in open(sys.argv[1]).read().splitlines() if l and not l.startswith("#") and not line.match(l)]
if bad: print("# bad lines:", bad[:3])
sys.exit(bool(bad))' "$T/m.b"
for name in slipway_requests_total slipway_request_duration_seconds_bucket slipway_response_bytes_total slipway_open_connections slipway_switches_total; do
    check "metrics have $name" grep -q "^$name[ {]" "$T/m.b"
done
check "histogram has a +Inf bucket" grep -q 'slipway_request_duration_seconds_bucket{env="dev",slot="direct",le="+Inf"}' "$T/m.b"
REQ2=$(metric 'slipway_requests_total{env="dev",slot="direct",class="2xx"}')
REQ4=$(metric 'slipway_requests_total{env="dev",slot="direct",class="4xx"}')
BYTES=$(metric 'slipway_response_bytes_total{env="dev",slot="direct"}')
CNT=$(metric 'slipway_request_duration_seconds_count{env="dev",slot="direct"}')
for i in 1 2 3 4 5; do "${C[@]}" -o /dev/null "$U/"; done
"${C[@]}" -o /dev/null "$U/nope"
get m "http://127.0.0.1:$P_ADM1/_slipway/metrics"
check "requests_total 2xx grew by 5" test "$(metric 'slipway_requests_total{env="dev",slot="direct",class="2xx"}')" = $((REQ2 + 5))
check "requests_total 4xx grew by 1" test "$(metric 'slipway_requests_total{env="dev",slot="direct",class="4xx"}')" = $((REQ4 + 1))
check "response_bytes_total grew" test "$(metric 'slipway_response_bytes_total{env="dev",slot="direct"}')" -gt $((BYTES + 5 * $(stat -c %s "$S/index.html")))
check "duration count grew by 6" test "$(metric 'slipway_request_duration_seconds_count{env="dev",slot="direct"}')" = $((CNT + 6))
check "blue-green requests are labelled with the slot" grep -q 'slipway_requests_total{env="staging",slot="blue",class="2xx"} [1-9]' "$T/m.b"
check "open_connections counts this scrape's connection" test "$(metric slipway_open_connections)" -ge 1

# No --access-log: nothing is written anywhere.
check "no access log without --access-log (stdout empty)" test ! -s "$T/serve1.out"
check "no access log without --access-log (no new files)" test -z "$(find "$T" -newer "$T/.before-serve" -type f \( -name '*.log' -o -name '*access*' \) | grep -v '/\.slipway/')"

kill -TERM "$SERVE1"; wait "$SERVE1"; rc=$?
check "SIGTERM: serve exits 0" test "$rc" = 0

# ---- --admin and --access-log ---------------------------------------------------------------------------------
P_ADM=$(free_port)
# An environment whose only release cannot be loaded (a blob is gone): not ready.
mkdir -p "$T/brk"; printf 'unique to the broken release %s\n' "$RANDOM$RANDOM" > "$T/brk/index.html"
sw release create "$T/brk" -q; BRK=$out
sw deploy "$BRK" --env bare; expect_rc "deploy a release whose blob will be lost" 0
bhex=$(sha256sum < "$T/brk/index.html" | cut -d' ' -f1)
rm -f "$DATA"/blobs/sha256/*/"$bhex"*
check "the blob is gone from the store" test -z "$(find "$DATA/blobs" -name "$bhex*")"
spawn "$SLIPWAY" serve --admin "127.0.0.1:$P_ADM" --access-log "$T/access.log" >"$T/serve2.out" 2>"$T/serve2.err"
SERVE2=$!
wait_for "serve with --admin answers health there" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P_ADM/_slipway/health"
A=http://127.0.0.1:$P_ADM
get a "$A/_slipway/health"; check "--admin: health on the admin address" test "$code" = 200
get a "$A/_slipway/metrics"; check "--admin: metrics on the admin address" eval 'test "$code" = 200 && grep -q slipway_requests_total "$T/a.b"'
get a "$A/_slipway/ready"
check "--admin: ready is 503 while an environment failed to load" test "$code" = 503
check "ready names the failing environment and why" grep -q "^bare: error: .*$bhex" "$T/a.b"
get a "$U/_slipway/health"
check "--admin: health stays on live listeners (load balancers need it)" eval 'test "$code" = 200 && test "$(head -1 "$T/a.b")" = ok'
check "  and says the store is ok: a body missing from it is no outage" test "$(sed -n 2p "$T/a.b")" = "store: ok"
get a "http://127.0.0.1:$P_BARE/_slipway/ready"
check "public ready is 503 too, without the details" eval 'test "$code" = 503 && test "$(cat "$T/a.b")" = "not ready"'
get a "http://127.0.0.1:$P_BGP/_slipway/metrics"; check "--admin: not on the preview listener either" test "$code" = 404
sw deploy "$T/bare" --env bare; expect_rc "deploy a good release to the broken environment" 0
wait_for "ready turns 200 once it is loaded" 10 "${C[@]}" -f -o /dev/null "$A/_slipway/ready"
get a "http://127.0.0.1:$P_BARE/"; check "the good release is served" same "$T/a.b" "$T/bare/index.html"

# The log: exactly one line per request to a site, none for /_slipway/ on any
# listener. One site request so far: / on bare.
log_lines_ge() { test "$(wc -l < "$T/access.log")" -ge "$1"; }
wait_for "the earlier requests are logged" 5 log_lines_ge 1
check "one line for the one site request so far" test "$(wc -l < "$T/access.log")" = 1
n0=1
"${C[@]}" -o /dev/null "$U/docs/"
"${C[@]}" -o /dev/null "$U/missing.html?q=1"
"${C[@]}" -o /dev/null -I "$U/r.txt"
"${C[@]}" -o /dev/null "http://127.0.0.1:$P_BGL/"
"${C[@]}" -o /dev/null "http://127.0.0.1:$P_BGP/"
"${C[@]}" -o /dev/null "$A/_slipway/health"
wait_for "five new access log lines" 5 log_lines_ge $((n0 + 5))
tail -n +$((n0 + 1)) "$T/access.log" > "$T/new.log"
check "exactly five lines (the admin request is not logged)" eval 'sleep 0.5; test "$(tail -n +$((n0 + 1)) "$T/access.log" | wc -l)" = 5'
lre='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z? '
check "log: GET /docs/ on dev, 200, bytes, µs" grep -qE "${lre}dev direct GET /docs/ 200 [0-9]+ [0-9]+$" "$T/new.log"
check "log: the 404 keeps its target" grep -qE "${lre}dev direct GET /missing.html\?q=1 404 [0-9]+ [0-9]+$" "$T/new.log"
check "log: HEAD" grep -qE "${lre}dev direct HEAD /r.txt 200 [0-9]+ [0-9]+$" "$T/new.log"
check "log: staging live is the blue slot" grep -qE "${lre}staging blue GET / 200 [0-9]+ [0-9]+$" "$T/new.log"
check "log: staging preview is the green slot" grep -qE "${lre}staging green GET / 200 [0-9]+ [0-9]+$" "$T/new.log"
dbytes=$(awk '$5 == "/docs/" {print $7}' "$T/new.log")
check "log: bytes include the body" test "${dbytes:-0}" -gt "$(stat -c %s "$S/docs/index.html")"

kill -TERM "$SERVE2"; wait "$SERVE2"; rc=$?
check "SIGTERM with --access-log: exit 0" test "$rc" = 0
check "serve wrote nothing alarming to stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve1.err" "$T/serve2.err"'
done_testing

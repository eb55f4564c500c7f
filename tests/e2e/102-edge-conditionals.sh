#!/usr/bin/env bash
# Conditional and range requests against a real `slipway serve`, with curl and
# python as the independent clients: Last-Modified is the file's time recorded
# in the manifest (the release's time when a manifest has none, never later than
# Date), If-Modified-Since in its three date forms → 304, If-Unmodified-Since and
# If-Match → 412, the RFC 9110 §13.2.2 order between them, If-Range with a date,
# and several ranges answered as multipart/byteranges (parsed back and compared
# with the file's bytes), from memory and from a cached file; too many or too
# large ranges get the whole body.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

new_project
ENVS=$T/p/.slipway/environments
DATA=$T/p/.slipway/data
S=$T/site
python3 -c 'import sys; sys.stdout.write("".join(chr(48 + i % 75) for i in range(1000)))' > "$S/r.txt"
printf 'function hello(){return "hello, slipway";}\n%.0s' {1..40} > "$S/app.js"
gzip -k -9 "$S/app.js"
head -c 300000 /dev/urandom > "$S/big.bin"   # served from the local cache with sendfile
head -c 2000000 /dev/urandom > "$S/huge.bin"
printf 'from the future\n' > "$S/future.txt"
printf '<!doctype html><p>no such page</p>\n' > "$S/404.html"
touch -d '2024-03-05 06:07:08 UTC' "$S/r.txt" "$S/big.bin" "$S/huge.bin"
touch -d '2023-01-02 03:04:05 UTC' "$S/app.js"
touch -d '2023-06-07 08:09:10 UTC' "$S/app.js.gz"
touch -d '2100-01-01 00:00:00 UTC' "$S/future.txt"

P=$(free_port); P_OLD=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/dev.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P_OLD" > "$ENVS/old.yml"
sw release create "$S" -q; expect_rc "release of the test site" 0
REL=$out
MANIFEST=$DATA/releases/$REL.json
check "the manifest records r.txt's modification time" python3 -c '
import json, os, sys
m = json.load(open(sys.argv[1]))
f = [f for f in m["files"] if f["path"] == "r.txt"][0]
sys.exit(f["mtime"] != int(os.stat(sys.argv[2]).st_mtime))' "$MANIFEST" "$S/r.txt"
sw deploy "$REL" --env dev; expect_rc "deploy to dev" 0

# A release written before manifests had mtime: the same files without it.
mkdir -p "$T/old"; printf 'old\n' > "$T/old/index.html"
sw release create "$T/old" -q; OLD=$out
python3 - "$DATA/releases/$OLD.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
for f in m["files"]:
    f.pop("mtime")
json.dump(m, open(sys.argv[1], "w"))
EOF
check "the old-style manifest has no mtime" eval '! grep -q mtime "$DATA/releases/$OLD.json"'
sw deploy "$OLD" --env old; expect_rc "deploy a manifest without mtime" 0

spawn "$SLIPWAY" serve >"$T/serve.out" 2>"$T/serve.err"
wait_for "serve answers" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/_slipway/health"
U=http://127.0.0.1:$P

get() { local n=$1; shift; code=$("${C[@]}" -D "$T/$n.h" -o "$T/$n.b" -w '%{http_code}' "$@"); }
hdr() { sed -n "s/^$2: *//Ip" "$T/$1.h" | tr -d '\r' | head -1; }
has_hdr() { grep -qi "^$2:" "$T/$1.h"; }
same() { cmp -s "$1" "$2"; }
# httpdate EPOCH [rfc850|asctime]: the time in one of RFC 9110's three forms.
httpdate() {
    python3 -c '
import sys, time
t = time.gmtime(int(sys.argv[1])); form = sys.argv[2] if len(sys.argv) > 2 else ""
if form == "rfc850": print(time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t))
elif form == "asctime": print(time.strftime("%a %b ", t) + "%2d" % t.tm_mday + time.strftime(" %H:%M:%S %Y", t))
else: print(time.strftime("%a, %d %b %Y %H:%M:%S GMT", t))' "$@"
}
MT=$(stat -c %Y "$S/r.txt")
LM=$(httpdate "$MT")
ET="\"$(sha256sum < "$S/r.txt" | cut -d' ' -f1)\""

# ---- Last-Modified ----------------------------------------------------------------------
get r "$U/r.txt"
check "200 carries Last-Modified" has_hdr r Last-Modified
check "Last-Modified is the file's modification time ($LM)" test "$(hdr r Last-Modified)" = "$LM"
check "python reads it back as the file's mtime" python3 -c '
import sys, email.utils
sys.exit(email.utils.parsedate_to_datetime(sys.argv[1]).timestamp() != int(sys.argv[2]))' "$(hdr r Last-Modified)" "$MT"
get rh -I "$U/r.txt"
check "HEAD carries the same Last-Modified" test "$(hdr rh Last-Modified)" = "$LM"
get big "$U/big.bin"
check "a body served from the cache has its own Last-Modified" test "$(hdr big Last-Modified)" = "$(httpdate "$(stat -c %Y "$S/big.bin")")"
get js -H 'Accept-Encoding: gzip' "$U/app.js"
check "the gzip variant made at release time has its file's time" test "$(hdr js Last-Modified)" = "$(httpdate "$(stat -c %Y "$S/app.js")")"
check "(and it is the gzip variant)" test "$(hdr js Content-Encoding)" = gzip
get fut "$U/future.txt"
check "a file time in the future is served as no later than Date (RFC 9110 §8.8.2.1)" python3 -c '
import sys, email.utils as u
sys.exit(u.parsedate_to_datetime(sys.argv[1]) > u.parsedate_to_datetime(sys.argv[2]))' "$(hdr fut Last-Modified)" "$(hdr fut Date)"
check "...and it is not the year 2100" eval '! grep -q 2100 <<<"$(hdr fut Last-Modified)"'
CREATED=$(python3 -c 'import json,sys,datetime; c=json.load(open(sys.argv[1]))["created"]; print(int(datetime.datetime.strptime(c, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()))' "$DATA/releases/$OLD.json")
get old "http://127.0.0.1:$P_OLD/"
check "a manifest without mtime: Last-Modified is the release's creation time" test "$(hdr old Last-Modified)" = "$(httpdate "$CREATED")"

# ---- If-Modified-Since -------------------------------------------------------------------
get c -H "If-Modified-Since: $LM" "$U/r.txt"
check "If-Modified-Since = Last-Modified: 304" test "$code" = 304
check "304 has no body" test ! -s "$T/c.b"
check "304 repeats ETag" test "$(hdr c ETag)" = "$(hdr r ETag)"
check "304 repeats Cache-Control" test "$(hdr c Cache-Control)" = "$(hdr r Cache-Control)"
check "304 repeats Last-Modified" test "$(hdr c Last-Modified)" = "$LM"
check "304 sends no Content-Type (RFC 9110 §15.4.5)" eval '! has_hdr c Content-Type'
get c -H "If-Modified-Since: $(httpdate $((MT + 86400)))" "$U/r.txt"
check "If-Modified-Since a day later: 304" test "$code" = 304
get c -H "If-Modified-Since: $(httpdate $((MT - 1)))" "$U/r.txt"
check "If-Modified-Since a second earlier: 200 with the body" eval 'test "$code" = 200 && same "$T/c.b" "$S/r.txt"'
get c -H "If-Modified-Since: $(httpdate "$MT" rfc850)" "$U/r.txt"
check "If-Modified-Since in the obsolete RFC 850 form: 304" test "$code" = 304
get c -H "If-Modified-Since: $(httpdate "$MT" asctime)" "$U/r.txt"
check "If-Modified-Since in the asctime form: 304" test "$code" = 304
get c -H 'If-Modified-Since: yesterday' "$U/r.txt"
check "an invalid If-Modified-Since is ignored: 200" test "$code" = 200
get c -H 'If-Modified-Since: Fri, 30 Feb 2024 00:00:00 GMT' "$U/r.txt"
check "If-Modified-Since on Feb 30 is ignored: 200" test "$code" = 200
get c -z "$LM" "$U/r.txt"
check "curl -z (its own If-Modified-Since): 304" test "$code" = 304
get c -H "If-Modified-Since: $LM" -H 'If-None-Match: "other"' "$U/r.txt"
check "If-None-Match wins over If-Modified-Since (§13.2.2): 200" test "$code" = 200
get c -H "If-Modified-Since: $(httpdate $((MT - 1)))" -H "If-None-Match: $ET" "$U/r.txt"
check "If-None-Match matching, If-Modified-Since older: 304" test "$code" = 304
get jsc -H 'Accept-Encoding: gzip' -H "If-Modified-Since: $(hdr js Last-Modified)" "$U/app.js"
check "a variant's 304 repeats Vary" test "$code $(hdr jsc Vary)" = "304 Accept-Encoding"
check "a variant's 304 repeats its own ETag" test "$(hdr jsc ETag)" = "$(hdr js ETag)"
get c -H "If-Modified-Since: $(httpdate $((MT + 86400)))" "$U/nope.html"
check "a 404 ignores preconditions (§13.2.1)" test "$code" = 404

# ---- If-Unmodified-Since and If-Match ---------------------------------------------------
get c -H "If-Unmodified-Since: $(httpdate $((MT - 1)))" "$U/r.txt"
check "If-Unmodified-Since older than the file: 412" test "$code" = 412
get c -H "If-Unmodified-Since: $LM" "$U/r.txt"
check "If-Unmodified-Since = Last-Modified: 200" eval 'test "$code" = 200 && same "$T/c.b" "$S/r.txt"'
get c -H "If-Unmodified-Since: $(httpdate $((MT + 5)))" "$U/r.txt"
check "If-Unmodified-Since later: 200" test "$code" = 200
get c -H 'If-Unmodified-Since: not a date' "$U/r.txt"
check "an invalid If-Unmodified-Since is ignored: 200" test "$code" = 200
get c -H 'If-Match: "0000"' "$U/r.txt"
check "If-Match with another tag: 412" test "$code" = 412
check "412 has no file body" eval '! same "$T/c.b" "$S/r.txt"'
get c -H "If-Match: $ET" "$U/r.txt"
check "If-Match with the ETag: 200 and the body" eval 'test "$code" = 200 && same "$T/c.b" "$S/r.txt"'
get c -H "If-Match: \"x\", $ET" "$U/r.txt"
check "If-Match list holding the ETag: 200" test "$code" = 200
get c -H 'If-Match: *' "$U/r.txt"
check "If-Match: * on an existing file: 200" test "$code" = 200
get c -H "If-Match: W/$ET" "$U/r.txt"
check "If-Match uses the strong comparison: a weak tag is 412" test "$code" = 412
get c -H "If-Match: $ET" -H "If-Unmodified-Since: $(httpdate $((MT - 1)))" "$U/r.txt"
check "If-Match present: If-Unmodified-Since is not evaluated (200)" test "$code" = 200
get c -H 'If-Match: "0000"' -H "If-None-Match: $ET" "$U/r.txt"
check "If-Match is evaluated before If-None-Match: 412" test "$code" = 412
get c -H "If-Match: $ET" -H "If-None-Match: $ET" "$U/r.txt"
check "If-Match passes, If-None-Match matches: 304" test "$code" = 304
get c -I -H 'If-Match: "0000"' "$U/r.txt"
check "HEAD with a failing If-Match: 412" test "$code" = 412
get c -H 'If-Match: "0000"' "$U/big.bin"
check "If-Match on a cached-file body: 412" test "$code" = 412

# ---- If-Range ----------------------------------------------------------------------------------
get c -r 0-9 -H "If-Range: $LM" "$U/r.txt"
check "If-Range with the Last-Modified date: 206" test "$code $(cat "$T/c.b")" = "206 $(head -c 10 "$S/r.txt")"
get c -r 0-9 -H "If-Range: $(httpdate "$MT" rfc850)" "$U/r.txt"
check "If-Range with the same date in RFC 850 form: 206" test "$code" = 206
get c -r 0-9 -H "If-Range: $(httpdate $((MT + 1)))" "$U/r.txt"
check "If-Range with another date: the whole body, 200" eval 'test "$code" = 200 && same "$T/c.b" "$S/r.txt"'
get c -r 0-9 -H "If-Range: $ET" "$U/r.txt"
check "If-Range with the ETag: 206" test "$code" = 206

# ---- multiple ranges ---------------------------------------------------------------------------
# multipart NAME FILE RANGE...: the response in $T/NAME.{h,b} is multipart/byteranges whose parts
# are exactly FILE's bytes for each RANGE ("a-b"), in order, each with Content-Type TYPE.
multipart() {
    python3 - "$T/$1.h" "$T/$1.b" "$2" "$3" "${@:4}" <<'EOF'
import re, sys
hfile, bfile, path, ctype, *ranges = sys.argv[1:]
head = open(hfile, "rb").read().decode("latin-1")
body = open(bfile, "rb").read()
data = open(path, "rb").read()
def field(text, name):
    m = re.search(r"^" + name + r":\s*(.*?)\r?$", text, re.I | re.M)
    return m.group(1) if m else None
def bad(why):
    print("# " + why); sys.exit(1)
m = re.match(r"multipart/byteranges; boundary=(\S+)$", field(head, "Content-Type") or "")
if not m: bad("Content-Type %r" % field(head, "Content-Type"))
if int(field(head, "Content-Length")) != len(body): bad("Content-Length is not the body's length")
if field(head, "Content-Range"): bad("a Content-Range on the whole multipart response")
delim = b"--" + m.group(1).encode()
if not body.startswith(delim + b"\r\n") or not body.endswith(b"\r\n" + delim + b"--\r\n"): bad("framing")
parts = body[len(delim) + 2 : -(len(delim) + 6)].split(b"\r\n" + delim + b"\r\n")
if len(parts) != len(ranges): bad("%d parts, want %d" % (len(parts), len(ranges)))
for part, want in zip(parts, ranges):
    h, _, content = part.partition(b"\r\n\r\n")
    h = h.decode("latin-1")
    a, b = map(int, want.split("-"))
    if field(h, "Content-Type") != ctype: bad("part type %r" % field(h, "Content-Type"))
    if field(h, "Content-Range") != "bytes %d-%d/%d" % (a, b, len(data)): bad("part range %r" % field(h, "Content-Range"))
    if content != data[a : b + 1]: bad("part %s: wrong bytes" % want)
EOF
}
get m -r 0-1,4-5 "$U/r.txt"
check "bytes=0-1,4-5: 206" test "$code" = 206
check "bytes=0-1,4-5: multipart/byteranges with the file's bytes" multipart m "$S/r.txt" "text/plain; charset=utf-8" 0-1 4-5
check "the multipart 206 keeps ETag and Last-Modified" test "$(hdr m ETag) $(hdr m Last-Modified)" = "$ET $LM"
get m -r 4-5,0-1 "$U/r.txt"
check "ranges in any order come back sorted, each labelled" multipart m "$S/r.txt" "text/plain; charset=utf-8" 0-1 4-5
get m -r 0-9,500-509,-10 "$U/big.bin"
check "three ranges of a cached-file body (read into memory)" multipart m "$S/big.bin" "application/octet-stream" 0-9 500-509 299990-299999
get m -r 0-10,5-20 "$U/r.txt"
check "overlapping ranges are coalesced into one 206" test "$code $(hdr m Content-Range)" = "206 bytes 0-20/1000"
check "...with the right bytes" same "$T/m.b" <(head -c 21 "$S/r.txt")
get m -r 0-1,2-3 "$U/r.txt"
check "touching ranges are coalesced too" test "$(hdr m Content-Range)" = "bytes 0-3/1000"
get m -r "$(python3 -c 'print(",".join("%d-%d" % (i, i) for i in range(0, 200, 2)))')" "$U/r.txt"
check "100 separate ranges: ignored, the whole body (200)" eval 'test "$code" = 200 && same "$T/m.b" "$S/r.txt"'
get m -r "$(python3 -c 'print(",".join(["0-"] * 500))')" "$U/big.bin"
check "500 copies of the whole body: one range, sent once" test "$code $(hdr m Content-Range) $(stat -c %s "$T/m.b")" = "206 bytes 0-299999/300000 300000"
get m -r 0-199999,400000-599999 "$U/huge.bin"
check "ranges of a cached file too large to copy: the whole body, 200" eval 'test "$code" = 200 && same "$T/m.b" "$S/huge.bin"'
get m -r 5000-,6000- "$U/r.txt"
check "several ranges, none satisfiable: 416" test "$code $(hdr m Content-Range)" = "416 bytes */1000"
get m -r 5000-,0-1 "$U/r.txt"
check "one satisfiable range among unsatisfiable ones: a single 206" test "$code $(hdr m Content-Range)" = "206 bytes 0-1/1000"
get m -I -r 0-9 "$U/r.txt"
check "HEAD ignores Range (RFC 9110 §14.2): 200" test "$code" = 200
get m -r 0-1,4-5 -H "If-Range: $(httpdate $((MT + 1)))" "$U/r.txt"
check "multiple ranges with a stale If-Range: the whole body" eval 'test "$code" = 200 && same "$T/m.b" "$S/r.txt"'

check "serve wrote nothing alarming to stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

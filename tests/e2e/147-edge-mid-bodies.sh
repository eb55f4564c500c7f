#!/usr/bin/env bash
# Bodies held in memory from 32 KiB to 64 KiB (docs/edge.md, "Design"): the table's block
# is a memfd, each such body starts on a page of it, and a response that starts on a page
# is sent with sendfile from it; the rest are written from memory. Either way the client
# gets the same bytes: whole bodies at the edges of that range (31 KiB, 32 KiB, 40,001
# bytes, 64 KiB exactly), HEAD, ranges that start on a page and off it, multipart ranges,
# a 304, and again after a switch to a release that shares some of the bodies (taken from
# the table before) and adds others; and the process holds the block as a memfd.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
new_project
P=$(free_port)
rm -f .slipway/environments/*.yml
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" >.slipway/environments/dev.yml
mkdir -p "$T/a" "$T/b"
# Random bytes (no compressed variants), sizes on both sides of the sendfile threshold, in
# an order that leaves smaller bodies between the larger ones in the block.
python3 - "$T/a" "$T/b" <<'EOF'
import os, sys
a, b = sys.argv[1], sys.argv[2]
sizes = {"s1.bin": 1000, "m31.bin": 31 * 1024, "s2.bin": 777, "m32.bin": 32 * 1024,
         "m40.bin": 40001, "s3.bin": 5, "m64.bin": 64 * 1024}
for name, n in sizes.items():
    data = os.urandom(n)
    open(os.path.join(a, name), "wb").write(data)
    # The second release keeps m40 and s2, changes the rest.
    open(os.path.join(b, name), "wb").write(data if name in ("m40.bin", "s2.bin") else os.urandom(n))
open(os.path.join(b, "m50.bin"), "wb").write(os.urandom(50000))
EOF
FILES="s1.bin m31.bin s2.bin m32.bin m40.bin s3.bin m64.bin"
sw deploy "$T/a" --env dev -q
expect_rc "deploy the first release" 0
spawn "$SLIPWAY" serve --workers 2 >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/s1.bin"

# same SITE FILE: a GET of FILE returns its bytes in release SITE (a or b).
same() { "${C[@]}" -o "$T/got" "http://127.0.0.1:$P/$2" && cmp -s "$T/got" "$T/$1/$2"; }
served_all() { # SITE FILES...
    local site=$1 f
    shift
    for f in "$@"; do same "$site" "$f" || { echo "# $f differs"; return 1; }; done
}
# same_range FILE RANGE START END: Range: bytes=RANGE returns bytes [START, END) of FILE.
same_range() {
    "${C[@]}" -o "$T/got" -r "$2" "http://127.0.0.1:$P/$1" &&
        cmp -s "$T/got" <(tail -c +$(($3 + 1)) "$T/a/$1" | head -c $(($4 - $3)))
}
check "every body is served byte for byte" served_all a $FILES
check "the process holds its bodies in a memfd" grep -q 'memfd:slipway-bodies' "/proc/$SERVE/maps"
for f in m32.bin m40.bin m64.bin m31.bin; do
    check "$f: a range from 0 (on a page)" same_range $f 0-999 0 1000
    check "$f: a range from 4096 (on a page)" same_range $f 4096-29999 4096 30000
    check "$f: a range off a page" same_range $f 1-32000 1 32001
done
size=$(stat -c %s "$T/a/m64.bin")
check "m64.bin: a suffix range" same_range m64.bin -100 $((size - 100)) "$size"
head=$("${C[@]}" -I "http://127.0.0.1:$P/m64.bin" | tr -d '\r')
check "HEAD of m64.bin says its length and sends no body" \
    eval 'printf "%s" "$head" | grep -qx "Content-Length: $size"'
etag=$(printf '%s\n' "$head" | sed -n 's/^ETag: //p')
code=$("${C[@]}" -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "http://127.0.0.1:$P/m64.bin")
check "If-None-Match with its ETag is a 304" test "$code" = 304
"${C[@]}" -o "$T/multi" -r 0-9,40000-40009 "http://127.0.0.1:$P/m64.bin"
check "a multipart range carries both parts' bytes" python3 -c '
import sys
d = open(sys.argv[1], "rb").read(); m = open(sys.argv[2], "rb").read()
sys.exit(not (d[0:10] in m and d[40000:40010] in m))' "$T/a/m64.bin" "$T/multi"

# A second release: bodies kept from the first table and new ones, each in the new block.
sw deploy "$T/b" --env dev -q
expect_rc "deploy the second release" 0
wait_for "the second release is live" 20 same b m31.bin
check "after the switch every body is the second release's" served_all b $FILES m50.bin
kill -TERM "$SERVE"
wait "$SERVE"
check "serve stops cleanly (exit 0)" test $? = 0
check "serve reported no error ($(head -c 300 "$T/serve.err"))" \
    eval '! grep -qiE "error|fail|cannot|refus" "$T/serve.err"'
done_testing

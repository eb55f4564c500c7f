#!/usr/bin/env bash
# Multipart uploads, parallel transfers and the progress line on the s3
# backend, against a real moto_server (started here on loopback, a plain moto:
# gc lists uploads, and moto's IAM mode refuses '/' in query values), read
# back with the aws CLI. A 40 MiB file goes in three parts (16 + 16 + 8 MiB):
# the blob read back with `aws s3 cp` hashes to its name; head-object shows
# SSE AES256, the SHA-256 metadata and a multipart ETag ("-3"); no upload is
# left. Faults come from tests/e2e/s3cue.py, a proxy that acts at a point of
# the upload (a part, a Complete), never at a moment of the clock: a part
# refused fails the release with one line, aborts the upload and stores
# nothing; a Complete answered 200 with InternalError is sent again and
# succeeds, one answered 200 with InvalidPart fails and aborts; a key written
# by someone else while the parts go is not overwritten (If-None-Match: * on
# Complete, PreconditionFailed taken as "exists"); a release killed with
# SIGKILL while a part is held leaves an upload and no object, which
# `slipway gc --apply` aborts (moto reports every upload as begun in 2010, so
# the grace period cannot be shown keeping a young one here).
#
# The faults use the smallest files that make their point: above the 16 MiB
# threshold (slipway has no smaller one for tests), 2 parts where one part is
# all the case needs, 3 where parts on both sides of the held one are.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
unset SLIPWAY_S3_ENDPOINT
moto_start || done_testing
PM=$MOTO_PORT
MOTO=$MOTO_URL
AWS=(aws --endpoint-url "$MOTO")
BUCKET=mp-test
moto_bucket "$BUCKET" || done_testing
STORE="s3://$BUCKET/p?endpoint=$MOTO"
MIB=$((1024 * 1024))

new_project
rm -rf "$T/site"
mkdir -p "$T/site/img"
head -c $((40 * 1024 * 1024)) /dev/urandom > "$T/site/big.bin"
printf '<h1>hi</h1>\n' > "$T/site/index.html"
for i in 1 2 3 4 5; do head -c $((i * 1000)) /dev/urandom > "$T/site/img/$i.png"; done
hex() { sha256sum < "$1" | cut -d' ' -f1; }
blobkey() { local h; h=$(hex "$1"); echo "p/blobs/sha256/${h:0:2}/$h"; }
head_object() { "${AWS[@]}" s3api head-object --bucket "$BUCKET" --key "$1" --output json 2>/dev/null; }
# no_object KEY: head-object finds no object under KEY.
no_object() { ! head_object "$1" >/dev/null; }
# field JSON EXPR: a python expression over a JSON document (as `j`).
field() { python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" <<<"$1"; }
uploads() { "${AWS[@]}" s3api list-multipart-uploads --bucket "$BUCKET" --output json |
    python3 -c 'import json,sys; d=sys.stdin.read(); print(len(json.loads(d or "{}").get("Uploads") or []))'; }
releases() { "${AWS[@]}" s3 ls "s3://$BUCKET/p/releases/" 2>/dev/null | grep -c json; }

# ---- a 40 MiB file and small ones ------------------------------------------
# --no-pack: each small file an object of its own, to see it is one PUT (packs: 417).
sw --store "$STORE" release create "$T/site" --no-pack --json
expect_rc "release create of a 40 MiB file and small files on s3" 0
check "every body is new: 7 (the small files and the large one)" test "$(json 'j["new_blobs"]')" = 7
R1=$(json 'j["id"]')
KEY=$(blobkey "$T/site/big.bin")
"${AWS[@]}" s3 cp "s3://$BUCKET/$KEY" "$T/back.bin" --quiet
check "aws s3 cp reads the 40 MiB blob back byte-identical" test "$(hex "$T/back.bin")" = "$(hex "$T/site/big.bin")"
H=$(head_object "$KEY")
check "head-object: ServerSideEncryption AES256" test "$(field "$H" 'j.get("ServerSideEncryption")')" = AES256
check "head-object: a multipart ETag of 3 parts (16 + 16 + 8 MiB)" grep -qE '^"?[0-9a-f]{32}-3"?$' <<<"$(field "$H" 'j["ETag"]')"
check "head-object: the SHA-256 metadata is the blob's name" test "$(field "$H" 'j["Metadata"]["sha256"]')" = "$(hex "$T/site/big.bin")"
check "head-object: 41943040 bytes" test "$(field "$H" 'j["ContentLength"]')" = 41943040
SMALL=$(head_object "$(blobkey "$T/site/img/3.png")")
check "a small file is one PUT (an MD5 ETag, no part count), encrypted too" \
    test "$(field "$SMALL" '("-" not in j["ETag"], j.get("ServerSideEncryption"))')" = "(True, 'AES256')"
check "no multipart upload is left behind" test "$(uploads)" = 0
"${AWS[@]}" s3 cp "s3://$BUCKET/p/releases/$R1.json" "$T/m.json" --quiet
check "the manifest names the large file's blob" grep -q "$(hex "$T/site/big.bin")" "$T/m.json"
sw --store "$STORE" release create "$T/site" --no-pack --json
check "the same directory again: nothing new to upload" test "$(json 'j["new_blobs"]')" = 0

# ---- the proxy that misbehaves on cue (s3cue.py) ---------------------------------
PP=$(free_port)
CUE_LOG=$T/cue.log
# cue RULE...: (re)starts the proxy with these rules; PCUE is its PID.
PCUE=
cue() {
    if [ -n "$PCUE" ]; then kill "$PCUE" 2>/dev/null; wait "$PCUE" 2>/dev/null; fi
    : > "$CUE_LOG"
    spawn "$MOTO_PY" "$ROOT/tests/e2e/s3cue.py" "$PP" "$PM" "$CUE_LOG" "$@" 2>>"$T/cue.err"
    PCUE=$!
    wait_for "the cue proxy answers" 10 curl -s -o /dev/null "http://127.0.0.1:$PP/"
}
CSTORE="s3://$BUCKET/p?endpoint=http://127.0.0.1:$PP"

# ---- --concurrency 1: the parts one after another, the same object -----------
head -c $((17 * 1024 * 1024 + 5)) /dev/urandom > "$T/site/seventeen.bin"
cue
sw --store "$CSTORE" release create "$T/site" --concurrency 1 --json
expect_rc "release create --concurrency 1" 0
check "--concurrency 1: never two parts in flight at once" \
    test "$(sed -n 's/^parts in flight: //p' "$CUE_LOG" | sort -n | tail -1)" = 1
H=$(head_object "$(blobkey "$T/site/seventeen.bin")")
check "--concurrency 1: 17 MiB + 5 bytes in 2 parts" grep -qE -- '-2"?$' <<<"$(field "$H" 'j["ETag"]')"
"${AWS[@]}" s3 cp "s3://$BUCKET/$(blobkey "$T/site/seventeen.bin")" "$T/back17.bin" --quiet
check "--concurrency 1: read back byte-identical" test "$(hex "$T/back17.bin")" = "$(hex "$T/site/seventeen.bin")"

# ---- the progress line, on s3 too ------------------------------------------------
if command -v script >/dev/null; then
    head -c $((20 * 1024 * 1024)) /dev/urandom > "$T/site/twenty.bin"
    cmd=$(printf '%q ' "$SLIPWAY" --store "$STORE" release create "$T/site")
    out=$(script -qfec "$cmd" /dev/null </dev/null); rc=$?
    expect_rc "release create on a terminal, s3 store" 0
    check "s3: the progress line ends with every file done and the 20 MiB sent" \
        grep -qE $'\r'"\[#{20}\] 9/9 files  2[0-9]\.[0-9] MiB sent  [0-9.]+ [KMG]?i?B/s  ETA 0:00" <<<"$out"
    check "s3: the line is cleared before the summary" grep -qF $'\r\033[K'"release r-" <<<"$out"
fi

# ---- faults, at points of the upload -----------------------------------------------
# fresh N PARTS: a directory f<N> with one file of PARTS parts (the last one a byte).
fresh() { mkdir -p "$T/f$1"; head -c $((($2 - 1) * 16 * MIB + 1)) /dev/urandom >"$T/f$1/big.bin"; }
before=$(releases)

cue fail-part=2
fresh 1 2
sw --store "$CSTORE" release create "$T/f1"
expect_err "a part refused (403): the release fails with one line" 1 "part 2 of 2: .*403 AccessDenied"
check "a part refused: no object under the blob's key" no_object "$(blobkey "$T/f1/big.bin")"
check "a part refused: the upload was aborted (none left)" test "$(uploads)" = 0
check "a part refused: the abort was sent" grep -q "^DELETE .*uploadId=.* -> 204" "$CUE_LOG"
check "a part refused: no manifest written" test "$(releases)" = "$before"

cue complete-error=InternalError:1
fresh 2 2
sw --store "$CSTORE" release create "$T/f2" --json
expect_rc "Complete answered 200 with InternalError once: sent again, the release succeeds" 0
before=$(releases)
fresh 3 2
sw --store "$CSTORE" release create "$T/f3" --json
expect_rc "(the next release through the proxy, InternalError spent)" 0
check "the InternalError answer was cued once and the Complete sent again" \
    test "$(grep -c 'POST .*uploadId' "$CUE_LOG")" = 3
H=$(head_object "$(blobkey "$T/f3/big.bin")")
check "after a retried Complete: a multipart object of 2 parts" grep -qE -- '-2"?$' <<<"$(field "$H" 'j["ETag"]')"
check "after a retried Complete: no upload left" test "$(uploads)" = 0

cue complete-error=InvalidPart
fresh 4 2
before=$(releases)
sw --store "$CSTORE" release create "$T/f4"
expect_err "Complete answered 200 with InvalidPart: the release fails, saying so" 1 "200 with an error: InvalidPart"
check "200 with InvalidPart: no object" no_object "$(blobkey "$T/f4/big.bin")"
check "200 with InvalidPart: the upload was aborted" test "$(uploads)" = 0
check "200 with InvalidPart: no manifest" test "$(releases)" = "$before"

# Someone else writes the key while part 2 is held: Complete, create-only,
# must not replace it.
cue "hold-part=2:$T/go5"
fresh 5 3
K5=$(blobkey "$T/f5/big.bin")
"$SLIPWAY" --store "$CSTORE" release create "$T/f5" --json >"$T/r5.out" 2>"$T/r5.err" &
R5=$!
wait_for "release 5 reaches part 2" 60 grep -q "holding part 2" "$CUE_LOG"
wait_for "while part 2 is held, parts 1 and 3 go (in parallel)" 60 \
    bash -c 'grep -q "partNumber=1&.* -> 200" "$1" && grep -q "partNumber=3&.* -> 200" "$1"' _ "$CUE_LOG" &&
    ok "while part 2 is held, parts 1 and 3 go (in parallel)"
"${AWS[@]}" s3api put-object --bucket "$BUCKET" --key "$K5" --body "$T/f5/big.bin" >/dev/null
touch "$T/go5"
wait "$R5"; rc=$?
errout=$(cat "$T/r5.err")
expect_rc "a key written meanwhile by someone else: the release succeeds (the body is there)" 0
H=$(head_object "$K5")
check "the other writer's object was not replaced (one PUT's ETag, no part count)" \
    test "$(field "$H" '"-" in j["ETag"]')" = False
check "Complete carried If-None-Match: * and was refused (412)" grep -q "^POST .*uploadId=.* -> 412" "$CUE_LOG"
check "the refused upload was aborted" test "$(uploads)" = 0

# SIGKILL while part 2 is held: an upload is left, no object; gc aborts it.
cue "hold-part=2:$T/never"
fresh 6 2
K6=$(blobkey "$T/f6/big.bin")
"$SLIPWAY" --store "$CSTORE" release create "$T/f6" >/dev/null 2>&1 &
R6=$!
wait_for "release 6 reaches part 2" 60 grep -q "holding part 2" "$CUE_LOG"
kill -9 "$R6"; wait "$R6" 2>/dev/null
check "killed mid-upload: no object under the blob's key" no_object "$K6"
check "killed mid-upload: its upload is left" test "$(uploads)" = 1
sw --store "$STORE" gc --json
check "gc without --apply aborts nothing" test "$(uploads)" = 1
sw --store "$STORE" gc --apply --grace 0s --json
expect_rc "gc --apply" 0
check "gc --apply counts the upload as a leftover it removed" test "$(json 'j["temporaries"]')" = 1
check "gc --apply aborted the upload" test "$(uploads)" = 0
check "moto logged no server error" bash -c '! grep -q "Traceback" "$1"' _ "$T/moto-$PM.log"
done_testing

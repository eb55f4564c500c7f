#!/usr/bin/env bash
# How `slipway serve` loads a release from S3 (src/edge/table.c, table_load and load_small;
# docs/edge.md, "Serving from S3"): the small bodies (held in memory) that the site's tables
# hold already are copied from them, the rest fetched several at once, each verified.
#
# One plain moto; the CLI talks to it directly, the node through faultproxy.py (--rate 0
# --verbose: it logs every request line), so the node's requests are told from the CLI's.
# Release A: 300 text pages of 1-2 KiB (each with a gzip and a br variant: 900 bodies) and
# three binary files (two small, one over 64 KiB, which goes to --cache-dir). The site is
# edited in place between deploys, as a developer does: the stat cache knows the other files.
# (A fresh copy of the tree has no stat cache: `deploy DIR` then reads the live release's
# variants from the store to reuse them instead of compressing again, src/release/reuse.c, so
# it does GET blobs: ~600 for this site.)
# 1. A fresh node started on A GETs every body of A, each once (count = distinct bodies of the
#    manifest), and more than two of its requests were open at once (faultproxy's
#    peak_connections; moto ends each connection after one response, so that is requests in
#    flight: a sequential fetch shows 1). (The fresh node is started on A rather than on A':
#    the same load from no table, and a third full load of the site would cost ~10 s more.)
# 2. A' (one page changed) deployed with `deploy DIR`: the node GETs from blobs/ exactly the
#    bodies A' has and A has not (the page and its variants: 1 to 3), each once, not the ~900
#    others; it serves the new page, and unchanged files keep their bytes in every encoding
#    (identity compared with the source file; br and gzip hashed against the manifest's variant
#    ids and decoded by curl --compressed). moto's own log holds no blob GET but the node's:
#    `deploy DIR` (the first, and one with a live release) GETs no body.
# 3. Release A'' (41 pages changed: ~120 new bodies, fetched by 16 threads) has one new blob
#    overwritten in the bucket (aws s3api put-object, same size, other bytes) before it is
#    deployed: the node keeps serving A', logs one line naming the page and the blob ("does not
#    match its hash"), /_slipway/ready on --admin names the blob, and the metrics count the
#    failure (slipway_release_load_ok 0); once the blob's right bytes are back it loads A''.
# Every release here is made with --no-pack (a blob per body, the path this test is about);
# a node loading packed releases (one GET per pack) is 146 on fs and the fleet (430) on S3.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
moto_start || done_testing
moto_bucket load || done_testing
MOTO_LOG=$T/moto-$MOTO_PORT.log
CLI_STORE=$(moto_store_url site)
C=(curl -s --max-time 5)


"$SLIPWAY" init -q "$T/p"
rm -f "$T/p/.slipway/environments/"*.yml
PL=$(free_port) PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PL" >"$T/p/.slipway/environments/dev.yml"
cd "$T/p" || exit 1

# site SEED PAGE...: writes the pages PAGE (numbers; all 300 and the binary files when none)
# into $T/site, each with text drawn from SEED and its number.
site() {
    "$MOTO_PY" - "$T/site" "$@" <<'EOF'
import os, random, sys
d, seed, pages = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
os.makedirs(d + "/pages", exist_ok=True)
os.makedirs(d + "/img", exist_ok=True)
words = "edge node bucket release body table fetch copy variant brotli gzip page".split()
for i in pages or range(300):
    r = random.Random("%s-%d" % (seed, i))
    text = " ".join(r.choice(words) for _ in range(r.randint(180, 330)))
    with open("%s/pages/p-%03d.html" % (d, i), "w") as f:
        f.write("<!doctype html><title>page %d</title>\n<p>%s</p>\n" % (i, text))
if not pages:
    r = random.Random("binary")
    for name, size in (("img/a.png", 3000), ("img/b.png", 5000), ("img/hero.jpg", 100000)):
        with open(d + "/" + name, "wb") as f:
            f.write(r.randbytes(size))
EOF
}
live_id() {
    sw --store "$CLI_STORE" --json status dev
    json 'j["environments"][0]["live_release"]'
}
# s3 METHOD KEY [CURL ARGS...]: one request for KEY of the store, plain HTTP with curl: moto in
# its plain mode checks no signature, but answers an anonymous request for a private object
# with 403 and finds the service from the Authorization header, so a placeholder one is sent.
# (The aws CLI costs seconds a call on a loaded machine.)
s3() {
    curl -sf --max-time 10 -X "$1" -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0' \
        "$MOTO_URL/load/site/$2" "${@:3}"
}
# manifest ID: reads release ID's manifest from the bucket and writes every body id it names
# (identity and variants, each once, sorted) into $T/ID.blobs, and "PATH ENCODING ID" lines
# (identity, gzip, br) into $T/ID.bodies.
# A manifest written over another (format 3) is read with the ones below it, as slipway does.
manifest() {
    local id=$1 docs=$T/$1.docs
    : >"$docs"
    while s3 GET "releases/$id.json" >"$docs.one" && cat "$docs.one" >>"$docs" && echo >>"$docs"; do
        id=$("$MOTO_PY" -c 'import json,sys; print(json.load(sys.stdin).get("base") or "")' <"$docs.one")
        [ -n "$id" ] || break
    done
    "$MOTO_PY" -c '
import json, sys
ids, out = set(), open(sys.argv[2], "w")
files = {}
for doc in reversed([json.loads(l) for l in open(sys.argv[3]) if l.strip()]):  # the full one first
    for p in doc.get("removed", []):
        del files[p]
    files.update({f["path"]: f for f in doc["files"]})
for f in files.values():
    for k, v in [("identity", f)] + [(k, f[k]) for k in ("gzip", "br") if k in f]:
        ids.add(v["blob"])
        out.write("%s %s %s\n" % (f["path"], k, v["blob"]))
open(sys.argv[1], "w").write("".join(i + "\n" for i in sorted(ids)))' "$T/$1.blobs" "$T/$1.bodies" "$docs"
}
# body ID PATH [ENC]: the body id of PATH's ENC encoding (default identity) in release ID.
body() { awk -v p="$2" -v e="${3:-identity}" '$1 == p && $2 == e { print $3 }' "$T/$1.bodies"; }
# blob_gets [FROM]: the blob ids of the GET requests the proxy logged (after its first FROM
# lines), one a line, sorted, repeats kept.
blob_gets() {
    tail -n +"$((${1:-0} + 1))" "$PROXY_LOG" |
        sed -n 's|^faultproxy: #[0-9]* GET /load/site/blobs/sha256/[0-9a-f]\{2\}/\([0-9a-f]\{64\}\) HTTP/1.1 .*|\1|p' | sort
}
# serves PATH FILE: the node serves PATH with exactly FILE's bytes.
serves() { "${C[@]}" "http://127.0.0.1:$PL/$1" | cmp -s - "$2"; }

site A
sw --store "$CLI_STORE" deploy "$T/site" --env dev --no-pack
expect_rc "deploy A (300 pages, 3 binary files) to the s3 store" 0
RA=$(live_id)
cp -a "$T/site" "$T/A"
manifest "$RA"
verify "  A has a body, a gzip and a br variant per page, and 3 binary bodies: 903" \
    'wc -l <"$T/$RA.blobs"' [ "$(wc -l <"$T/$RA.blobs")" = 903 ]

# ---- 1. a fresh node fetches every body, several at once ---------------------------------------
faultproxy_start --rate 0 --verbose || done_testing
PROXY_LOG=$T/faultproxy-$PROXY_PORT.log
spawn "$SLIPWAY" --project "$T/p" --store "$(moto_store_url site "$PROXY_URL")" serve \
    --no-monitor --workers 1 --poll 100ms --cache-dir "$T/cache" --admin "127.0.0.1:$PA" \
    >"$T/serve.out" 2>"$T/serve.err"
wait_for "a node started on A serves it" 30 serves pages/p-007.html "$T/A/pages/p-007.html"
blob_gets >"$T/A.got"
verify "  it fetched every body of A, each once" \
    'echo "GETs $(wc -l <"$T/A.got"), distinct $(sort -u "$T/A.got" | wc -l)"' \
    cmp -s "$T/$RA.blobs" "$T/A.got"
# The proxy writes its counts every second: the peak reaches the file within one.
peak() { peak=$(faultproxy_stat peak_connections) && [ "$peak" -gt 2 ]; }
if wait_for "  several at once: more than 2 of its requests were open at once (a sequential fetch: 1)" 5 peak; then
    ok "  several at once: $peak of its requests were open at once (a sequential fetch: 1)"
else
    echo "# peak_connections: $peak"
fi

# ---- 2. a one-page change: only its new bodies are fetched ------------------------------------
site A1 7
mark=$(wc -l <"$PROXY_LOG")
sw --store "$CLI_STORE" deploy "$T/site" --env dev --no-pack
expect_rc "deploy A' (p-007 changed) with deploy DIR" 0
RA1=$(live_id)
cp -a "$T/site" "$T/A1"
wait_for "the node serves the new p-007" 20 serves pages/p-007.html "$T/A1/pages/p-007.html"
manifest "$RA1"
comm -13 "$T/$RA.blobs" "$T/$RA1.blobs" >"$T/A1.new"
blob_gets "$mark" >"$T/A1.got"
verify "it fetched exactly the bodies A' has and A has not, each once ($(wc -l <"$T/A1.new") of $(wc -l <"$T/$RA1.blobs"))" \
    'echo "wanted $(wc -l <"$T/A1.new"), GETs $(wc -l <"$T/A1.got"), distinct $(sort -u "$T/A1.got" | wc -l)"' \
    eval '[ "$(wc -l <"$T/A1.new")" -ge 1 ] && [ "$(wc -l <"$T/A1.new")" -le 3 ] &&
        cmp -s "$T/A1.new" "$T/A1.got"'

# encodings_ok PATH: the node serves PATH in each encoding: identity is the file in $T/site;
# br and gzip are the bytes of A''s variant (hashed) and decode to the file.
encodings_ok() {
    local p=$1 e h url="http://127.0.0.1:$PL/$1"
    "${C[@]}" -H 'Accept-Encoding: identity' "$url" | cmp -s - "$T/site/$p" || {
        echo "$p: identity differs"
        return 1
    }
    case $p in *.html) ;; *) return 0 ;; esac
    for e in br gzip; do
        h=$("${C[@]}" -H "Accept-Encoding: $e" -D "$T/hdr" "$url" | sha256sum | cut -d' ' -f1)
        if [ "$h" != "$(body "$RA1" "$p" "$e")" ] || ! grep -qix "content-encoding: $e"$'\r' "$T/hdr"; then
            echo "$p: $e body hashes to $h, not to its variant"
            return 1
        fi
        "${C[@]}" --compressed -H "Accept-Encoding: $e" "$url" | cmp -s - "$T/site/$p" || {
            echo "$p: $e does not decode to the file"
            return 1
        }
    done
}
for p in pages/p-007.html pages/p-000.html pages/p-150.html pages/p-299.html img/a.png img/hero.jpg; do
    verify "  it serves $p with the right bytes (identity, br, gzip)" "encodings_ok $p" encodings_ok "$p"
done
# moto logs each request before it answers it, the proxy each one before it forwards it: once
# the node serves A', both logs hold every blob GET so far.
moto_gets=$(grep -c '"GET /load/site/blobs/' "$MOTO_LOG")
node_gets=$(blob_gets | wc -l)
verify "moto saw no blob GET but the node's: deploy DIR (the first, then with a live release) GETs no body" \
    'echo "moto: $moto_gets blob GETs, the node: $node_gets"' [ "$moto_gets" = "$node_gets" ]

# ---- 3. a damaged body of a new release ---------------------------------------------------------
site A2 7 $(seq 100 139)
sw --store "$CLI_STORE" release create "$T/site" --no-pack -q
RA2=$out
expect_rc "release A'' (41 pages changed) made, not deployed" 0
manifest "$RA2"
# The damaged body: p-120's own, one of the ~120 new ones the node's threads share out.
BAD=$(body "$RA2" pages/p-120.html)
BADKEY=blobs/sha256/${BAD:0:2}/$BAD
head -c "$(stat -c %s "$T/site/pages/p-120.html")" /dev/zero | tr '\0' x >"$T/forged"
aws s3api put-object --bucket load --key "site/$BADKEY" --body "$T/forged" >/dev/null
check "  one of its new blobs overwritten in the bucket with other bytes of its size" test $? = 0
sw --store "$CLI_STORE" deploy "$RA2" --env dev
expect_rc "deploy A'' (its blobs exist, with their sizes)" 0
wait_for "the node logs the damaged body" 20 grep -q "does not match its hash" "$T/serve.err"
line=$(grep "does not match its hash" "$T/serve.err")
verify "  in one line naming the release, the page and the blob; it keeps serving A'" 'echo "$line"' \
    eval 'grep -qF "dev: release $RA2: body of pages/p-120.html ($BADKEY) does not match its hash or size" <<<"$line" &&
        grep -qF "keeps serving release $RA1; retrying" <<<"$line" && [ "$(grep -c "" <<<"$line")" = 1 ]'
check "  it still serves A' (p-007 and p-120)" \
    eval 'serves pages/p-007.html "$T/A1/pages/p-007.html" && serves pages/p-120.html "$T/A/pages/p-120.html"'
ready=$("${C[@]}" -w '%{http_code}' "http://127.0.0.1:$PA/_slipway/ready")
verify "  /_slipway/ready on --admin: 200 (A' is served), naming the damaged blob" 'echo "$ready"' \
    eval 'grep -qF "dev: serving: release $RA2: body of pages/p-120.html ($BADKEY) does not match" <<<"$ready" &&
        [ "${ready: -3}" = 200 ]'
metrics=$("${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics")
verify "  the metrics count the failure" 'grep "slipway_release_load" <<<"$metrics"' \
    eval 'grep -qx "slipway_release_load_ok{env=\"dev\"} 0" <<<"$metrics" &&
        grep -qE "^slipway_release_load_failures_total\{env=\"dev\"\} [1-9]" <<<"$metrics"'
# curl -T: --data-binary would send it as a form, which moto stores empty.
s3 PUT "$BADKEY" -T "$T/site/pages/p-120.html" -o /dev/null &&
    s3 GET "$BADKEY" | cmp -s - "$T/site/pages/p-120.html"
check "  the blob's right bytes put back (plain HTTP), and read back" test $? = 0
wait_for "  the node loads A'' on a retry" 20 serves pages/p-120.html "$T/site/pages/p-120.html" &&
    ok "  the node loads A'' on a retry"
check "  and says the failure is over" grep -qF "dev: loaded release $RA2; the earlier failure is over" "$T/serve.err"
n=$(grep -c "GET /load/site/releases/$RA2.json " "$PROXY_LOG")
verify "  A''s manifest was read from the store once, retries included: kept in --cache-dir's manifests/" \
    'echo "# GETs of it: $n"; ls "$T/cache/manifests"' \
    eval '[ "$n" = 1 ] && cmp -s "$T/cache/manifests/$RA2.json" <(s3 GET "releases/$RA2.json")'
check "the node wrote nothing alarming to stderr" \
    eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

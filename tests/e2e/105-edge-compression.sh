#!/usr/bin/env bash
# Compressed text assets, end to end: release create makes gzip and Brotli
# variants of text files (and x from a lone x.gz), says how many and what they
# save, and does not compress an unchanged file twice (nor, from a fresh
# checkout, a body an earlier release has variants of); slipway serve picks the
# variant by Accept-Encoding with Content-Encoding, Vary and an ETag of its own;
# every body decodes, with independent decoders (python3's gzip, the brotli
# CLI), to exactly the file released. Ranges and small or binary files are
# served as they are.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

command -v brotli >/dev/null || { fail "the brotli CLI is missing (scripts/install-deps installs it)"; done_testing; }
new_project
ENVS=$T/p/.slipway/environments
S=$T/site
# Text that compresses as real code does: repeated shapes, changing names.
python3 - "$S" <<'EOF'
import gzip, os, sys
s = sys.argv[1]
def js(n, seed):
    out, i = [], 0
    while sum(map(len, out)) < n:
        out.append("function f%d_%d(a,b){return a*%d+b.length-%d;}\n" % (seed, i, i % 97, i * 7 % 13))
        i += 1
    return "".join(out)[:n].encode()
open(os.path.join(s, "app.js"), "wb").write(js(65536, 1))
open(os.path.join(s, "big.js"), "wb").write(js(300000, 2))        # over 64 KiB: sent from a file
open(os.path.join(s, "css/site.css"), "wb").write(js(5000, 3))
open(os.path.join(s, "css/small.css"), "wb").write(js(1000, 4))   # under 1 KiB: never compressed
sitemap = b"<?xml version='1.0'?><urlset>" + b"".join(b"<url><loc>https://example.org/p%d</loc></url>" % i for i in range(400)) + b"</urlset>\n"
open(os.path.join(s, "sitemap.xml.src"), "wb").write(sitemap)
with open(os.path.join(s, "sitemap.xml.gz"), "wb") as f:      # shipped only compressed
    f.write(gzip.compress(sitemap, 9, mtime=0))
EOF
mv "$S/sitemap.xml.src" "$T/sitemap.xml"
find "$S" -type f -exec touch -d '-1 minute' {} +   # older than the stat cache's racy window
P=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/dev.yml"

# ---- release create -------------------------------------------------------------------------------
sw release create "$S" --json; expect_rc "release create" 0
REL=$(json 'j["id"]')
check "variants: app.js, big.js, site.css and sitemap.xml, gzip and br each ($(json 'j["variants"]'))" test "$(json 'j["variants"]')" = 8
check "compressed now: 7 (sitemap.xml's gzip is the shipped file)" test "$(json 'j["compressed"]')" = 7
check "saved_bytes is most of the text ($(json 'j["saved_bytes"]'))" test "$(json 'j["saved_bytes"]')" -gt 300000
sw release create "$S"; expect_rc "release create, human output" 0
check "the summary says what compression gave" eval 'grep -qE "8 compressed variants \(0 made now, 0 reused\), [0-9.]+ KiB less to send" <<<"$errout"'
sw release create "$S" --json
check "the stat cache: nothing compressed again" test "$(json 'j["compressed"]'),$(json 'j["reused"]')" = 0,0
check "...and the same variants" test "$(json 'j["variants"]')" = 8
# A fresh checkout (CI): another project and a copy of the site, so no stat
# cache, on the same store: every variant comes from the last release.
mkdir "$T/p2" && "$SLIPWAY" init -q "$T/p2" && cp -R "$S" "$T/ci"
cd "$T/p2"
sw release create "$T/ci" --store "$T/p/.slipway/data" --json; expect_rc "release create from a fresh checkout" 0
cd "$T/p"
check "a fresh checkout compresses nothing: 7 variants reused ($out)" test "$(json 'j["compressed"], j["reused"], j["variants"], j["new_blobs"]')" = "0 7 8 0"
MANIFEST=$T/p/.slipway/data/releases/$REL.json
check "the manifest names both variants of app.js" python3 -c '
import json, sys
f = [f for f in json.load(open(sys.argv[1]))["files"] if f["path"] == "app.js"][0]
sys.exit(not (f["br"]["size"] < f["gzip"]["size"] < f["size"]))' "$MANIFEST"

sw deploy "$REL" --env dev; expect_rc "deploy" 0
spawn "$SLIPWAY" serve --workers 1 >"$T/serve.out" 2>"$T/serve.err"
U=http://127.0.0.1:$P
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "$U/_slipway/health" || cat "$T/serve.err"

# get NAME CURL-ARGS...: headers in $T/NAME.h, body in $T/NAME.b, status in $code.
get() { local n=$1; shift; code=$("${C[@]}" -D "$T/$n.h" -o "$T/$n.b" -w '%{http_code}' "$@"); }
hdr() { sed -n "s/^$2: *//Ip" "$T/$1.h" | tr -d '\r' | head -1; }
has_hdr() { grep -qi "^$2:" "$T/$1.h"; }
gunzip_to() { python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1],"rb").read()))' "$1"; }
unbr_to() { brotli -dc "$1"; }
etag_of() { echo "\"$(sha256sum < "$1" | cut -d' ' -f1)\""; }

# ---- content negotiation ------------------------------------------------------------------------------
for f in app.js big.js css/site.css; do
    get br -H 'Accept-Encoding: br, gzip' "$U/$f"
    check "$f, br, gzip: br" test "$code $(hdr br Content-Encoding)" = "200 br"
    check "$f: br decodes to the file" cmp -s <(unbr_to "$T/br.b") "$S/$f"
    check "$f: br is smaller than the file" test "$(stat -c %s "$T/br.b")" -lt "$(stat -c %s "$S/$f")"
    check "$f: br has Vary: Accept-Encoding" test "$(hdr br Vary)" = Accept-Encoding
    check "$f: br's ETag is its own body's" test "$(hdr br ETag)" = "$(etag_of "$T/br.b")"
    check "$f: br's Content-Length is its body's" test "$(hdr br Content-Length)" = "$(stat -c %s "$T/br.b")"
    get gz -H 'Accept-Encoding: gzip' "$U/$f"
    check "$f, gzip: gzip" test "$code $(hdr gz Content-Encoding)" = "200 gzip"
    check "$f: gzip decodes to the file" cmp -s <(gunzip_to "$T/gz.b") "$S/$f"
    check "$f: gzip has Vary: Accept-Encoding" test "$(hdr gz Vary)" = Accept-Encoding
    check "$f: gzip's ETag is its own body's" test "$(hdr gz ETag)" = "$(etag_of "$T/gz.b")"
    get id "$U/$f"
    check "$f, no Accept-Encoding: identity" eval '! has_hdr id Content-Encoding && cmp -s "$T/id.b" "$S/$f"'
    check "$f: identity has Vary: Accept-Encoding too" test "$(hdr id Vary)" = Accept-Encoding
    check "$f: identity's ETag is the file's" test "$(hdr id ETag)" = "$(etag_of "$S/$f")"
    check "$f: three ETags, all different" test "$(printf '%s\n' "$(hdr br ETag)" "$(hdr gz ETag)" "$(hdr id ETag)" | sort -u | wc -l)" = 3
    check "$f: the type is the file's for every coding" test "$(hdr br Content-Type)|$(hdr gz Content-Type)" = "$(hdr id Content-Type)|$(hdr id Content-Type)"
done
check "curl --compressed reads app.js as released" cmp -s <("${C[@]}" --compressed "$U/app.js") "$S/app.js"
get br -H 'Accept-Encoding: br' "$U/app.js"
"${C[@]}" -I -H 'Accept-Encoding: br' "$U/app.js" > "$T/h.h"
check "HEAD with br: the br headers and the br body's length" \
    test "$(hdr h Content-Encoding) $(hdr h Content-Length)" = "br $(stat -c %s "$T/br.b")"

# ---- conditionals and ranges -----------------------------------------------------------------------
get br -H 'Accept-Encoding: br' "$U/app.js"; BRTAG=$(hdr br ETag)
get c -H 'Accept-Encoding: br' -H "If-None-Match: $BRTAG" "$U/app.js"
check "If-None-Match with the br ETag, br accepted: 304" test "$code $(hdr c ETag)" = "304 $BRTAG"
check "the 304 says Vary" test "$(hdr c Vary)" = Accept-Encoding
get c -H "If-None-Match: $BRTAG" "$U/app.js"
check "the br ETag does not match the identity body: 200" eval 'test "$code" = 200 && cmp -s "$T/c.b" "$S/app.js"'
get r -H 'Accept-Encoding: br, gzip' -r 100-199 "$U/app.js"
check "a Range is served from the identity body" eval 'test "$code" = 206 && ! has_hdr r Content-Encoding && cmp -s "$T/r.b" <(tail -c +101 "$S/app.js" | head -c 100)'

# ---- what is not compressed ----------------------------------------------------------------------------
get s -H 'Accept-Encoding: br, gzip' "$U/css/small.css"
check "a file under 1 KiB: identity, no Vary" eval '! has_hdr s Content-Encoding && ! has_hdr s Vary && cmp -s "$T/s.b" "$S/css/small.css"'
get s -H 'Accept-Encoding: br, gzip' "$U/img/logo.png"
check "a png: identity, no Vary" eval '! has_hdr s Content-Encoding && ! has_hdr s Vary && cmp -s "$T/s.b" "$S/img/logo.png"'

# ---- a file shipped only as x.gz ---------------------------------------------------------------------
get x -H 'Accept-Encoding: gzip' "$U/sitemap.xml"
check "sitemap.xml (only sitemap.xml.gz shipped), gzip: the shipped bytes" eval 'test "$code $(hdr x Content-Encoding)" = "200 gzip" && cmp -s "$T/x.b" "$S/sitemap.xml.gz"'
check "...as XML" test "$(hdr x Content-Type)" = "application/xml; charset=utf-8"
get x "$U/sitemap.xml"
check "sitemap.xml without Accept-Encoding: decompressed at release time" eval 'test "$code" = 200 && ! has_hdr x Content-Encoding && cmp -s "$T/x.b" "$T/sitemap.xml"'
get x -H 'Accept-Encoding: br, gzip' "$U/sitemap.xml"
check "sitemap.xml with br: br, decoding to the XML" eval 'test "$(hdr x Content-Encoding)" = br && cmp -s <(unbr_to "$T/x.b") "$T/sitemap.xml"'
get x -H 'Accept-Encoding: br, gzip' "$U/sitemap.xml.gz"
check "sitemap.xml.gz itself is still a file, sent as it is" eval 'test "$code" = 200 && ! has_hdr x Content-Encoding && test "$(hdr x Content-Type)" = application/gzip && cmp -s "$T/x.b" "$S/sitemap.xml.gz"'

# ---- a gzip bomb is refused at release time -------------------------------------------------------------
mkdir -p "$T/bomb"
python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.compress(bytes(32 << 20), 9))' > "$T/bomb/data.json.gz"
sw release create "$T/bomb"
expect_err "a gzip bomb: refused, naming the file" 1 "data.json.gz: decompresses to more than .* gzip bomb"
check "nothing alarming on stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

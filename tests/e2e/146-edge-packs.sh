#!/usr/bin/env bash
# Packed bodies (docs/store.md, "Packs"): a release whose small bodies live in one pack
# object (tests/e2e/packrel.py moves them there, as a writer of packs stores them) is
# deployed, served and collected like any other, on the fs store:
# (a) deploy's check finds every body in the pack; the edge serves every file byte for byte,
#     and its gzip and br variants, read from the pack; the 70 KB image stays a blob of its own;
# (b) a pack whose slice of a body was changed (same size) is refused by the edge naming the
#     body, the pack and the fault, which keeps serving the release it has;
# (c) a pack too short for its bodies is refused by deploy, naming the body and the pack;
# (d) gc keeps a pack while a kept release has a body in it and deletes it with the last one
#     (the environment keeps one release: retain_releases 1, keep_previous 0s); a release
#     made without --pack with a packed live release names the bodies it shares with it in
#     that release's pack, which gc then keeps.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
new_project
DATA=$T/p/.slipway/data
ENVS=$T/p/.slipway/environments
P=$(free_port); PA=$(free_port)
rm -f "$ENVS"/*.yml
printf 'strategy: direct\nlisten: 127.0.0.1:%s\nretain_releases: 1\nkeep_previous: 0s\n' "$P" >"$ENVS/dev.yml"
mkdir -p "$T/site/docs"
python3 -c 'import sys; sys.stdout.write("".join("<p>paragraph %d of the guide, with words.</p>\n" % i for i in range(300)))' \
    >"$T/site/docs/guide.html"
cp -r "$T/site" "$T/site2"
printf '<!doctype html><h1>v2</h1>\n' >"$T/site2/index.html"
packed() { python3 "$ROOT/tests/e2e/packrel.py" "$DATA" "$1"; }
pack_path() { echo "$DATA/packs/sha256/${1:0:2}/$1"; }

# ---- (a) deployed and served from the pack ------------------------------------------------
sw release create "$T/site" -q; R1=$out
K1=$(packed "$R1")
check "the release's small bodies are in one pack, its manifest is format 2" \
    eval '[ -s "$(pack_path "$K1")" ] && grep -q "\"format\": 2" "$DATA/releases/$R1.json"'
check "the store is consistent (store_check reads packs)" store_check "$DATA" strict
sw deploy "$R1" --env dev; expect_rc "deploy a packed release (its check finds every body)" 0
spawn "$SLIPWAY" serve --workers 1 --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/" || cat "$T/serve.err"
same_get() { "${C[@]}" -f -o "$T/got" "http://127.0.0.1:$P/$1" && cmp -s "$T/got" "$T/site/$1"; }
for f in index.html css/app.3f9a2c1d.css img/logo.png docs/guide.html; do
    check "  $f served byte for byte" same_get "$f"
done
"${C[@]}" -H 'Accept-Encoding: gzip' -D "$T/gz.h" -o "$T/gz.b" "http://127.0.0.1:$P/docs/guide.html"
check "  its gzip variant, from the pack, decodes to the file" \
    eval 'grep -qi "^content-encoding: gzip" "$T/gz.h" && gzip -dc "$T/gz.b" | cmp -s - "$T/site/docs/guide.html"'
"${C[@]}" -H 'Accept-Encoding: br' -D "$T/br.h" -o "$T/br.b" "http://127.0.0.1:$P/docs/guide.html"
check "  its br variant, from the pack, is served as br and decodes to the file" \
    eval 'grep -qi "^content-encoding: br" "$T/br.h" && brotli -dc "$T/br.b" | cmp -s - "$T/site/docs/guide.html"'
check "  the 70 KB image is a blob of its own" test -f "$DATA/blobs/sha256/$(sha256sum <"$T/site/img/logo.png" | cut -c1-2)/$(sha256sum <"$T/site/img/logo.png" | cut -d' ' -f1)"

# ---- (b) a damaged slice: refused by the edge, which keeps serving ---------------------------
sw release create "$T/site2" -q; R2=$out
K2=$(packed "$R2")
at=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print([f["at"] for f in m["files"] if f["path"]=="index.html"][0])' "$DATA/releases/$R2.json")
chmod u+w "$(pack_path "$K2")"
cp "$(pack_path "$K2")" "$T/k2.orig"
printf 'V' | dd of="$(pack_path "$K2")" bs=1 seek=$((at + 20)) conv=notrunc status=none
sw deploy "$R2" --env dev; expect_rc "deploy a release whose pack was damaged (its size is right)" 0
wait_for "the edge names the body, the pack and the fault" 15 \
    grep -q "dev: release $R2: body of index.html (packs/sha256/${K2:0:2}/$K2) does not match its hash" "$T/serve.err" &&
    ok "the edge names the body, the pack and the fault"
check "  and keeps serving the release it has" same_get index.html
cp "$T/k2.orig" "$(pack_path "$K2")"
wait_for "once the pack is repaired, the retry loads it" 40 eval '"${C[@]}" "http://127.0.0.1:$P/" | cmp -s - "$T/site2/index.html"' &&
    ok "once the pack is repaired, the retry loads it"

# ---- (c) a pack too short: refused by deploy -------------------------------------------------
# (A pack of another content: the same bodies in the same order would be R2's pack itself.)
cp -r "$T/site2" "$T/site3"
printf 'three\n' >"$T/site3/three.txt"
sw release create "$T/site3" -q; R3=$out
K3=$(packed "$R3")
truncate -s -1 "$(pack_path "$K3")" 2>/dev/null || { chmod u+w "$(pack_path "$K3")"; truncate -s -1 "$(pack_path "$K3")"; }
sw deploy "$R3" --env dev
check "deploy refuses a release whose pack is too short, naming the body and the pack" \
    eval '[ "$rc" != 0 ] && grep -q "ends at byte [0-9]* of packs/sha256/${K3:0:2}/$K3" <<<"$errout"'

# ---- (d) gc keeps a pack while a kept release names it --------------------------------------
sw gc --apply --grace 0s; expect_rc "gc while R2 is live (R1 the previous)" 0
check "  R2's pack is kept (the live release has bodies in it)" test -f "$(pack_path "$K2")"
check "  R1's pack is gone with R1 (neither live, kept as previous nor retained)" test ! -e "$(pack_path "$K1")"
# The first site again, without --pack: the bodies it shares with the live R2 stay in R2's pack
# (keep's packed bodies are named there, not stored again), its new ones are blobs.
sw deploy "$T/site" --env dev -q; expect_rc "deploy the first site again, without --pack" 0
sw status --json
R4=$(json "[e['live_release'] for e in j['environments'] if e['name'] == 'dev'][0]")
check "  its shared bodies are named in R2's pack, its own index.html is a blob" \
    eval 'grep -q "$K2" "$DATA/releases/$R4.json" &&
        python3 -c "import json,sys; f=[f for f in json.load(open(sys.argv[1]))[\"files\"] if f[\"path\"]==\"index.html\"][0]; sys.exit(\"pack\" in f)" "$DATA/releases/$R4.json"'
# The node reads only as much of R2's pack as R4's bodies in it need (up to the end of the
# last), and each slice is checked: R4 served byte for byte, its br variant too.
wait_for "the node serves R4 (the first site's page again)" 20 same_get index.html &&
    ok "the node serves R4 (the first site's page again)"
for f in css/app.3f9a2c1d.css docs/guide.html; do
    check "  $f, from R2's pack, byte for byte" same_get "$f"
done
"${C[@]}" -H 'Accept-Encoding: br' -o "$T/br4.b" "http://127.0.0.1:$P/docs/guide.html"
check "  docs/guide.html's br variant, from R2's pack, decodes to the file" \
    eval 'brotli -dc "$T/br4.b" | cmp -s - "$T/site/docs/guide.html"'
sw gc --apply --grace 0s; expect_rc "gc with R4 live, R2 and R3 collected" 0
check "  the one pack left is R2's, which R4 has bodies in" eval '[ "$(find "$DATA/packs" -type f)" = "$(pack_path "$K2")" ]'
check "  the store is consistent after gc" store_check "$DATA" strict expired-previous
check "nothing alarming on stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T"/serve*.err'
done_testing

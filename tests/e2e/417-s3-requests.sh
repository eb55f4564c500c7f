#!/usr/bin/env bash
# What a re-run of `slipway deploy DIR --env ENV` costs on an s3 store, counted in moto's own
# request log ($T/moto-PORT.log, one line per request: method, path and query, status), and
# what it does on fs (docs/store.md, "Reusing bodies without a request each"):
#
# (a) A 100-file site deployed to dev on a plain moto (the first deploy lists releases/ for
#     variants to reuse, which moto --iam refuses), then the same DIR again: exactly one
#     request (GET of dev's state, which proves the bucket too: no HEAD of it, see 411 for the
#     missing bucket and the wrong secret; the project's stat cache records that
#     its lines are R's files, so no manifest is read), no PUT; "release R: the same 100
#     files as before (nothing to store)" on stderr and "release R is already live on dev;
#     nothing changed" on stdout, exit 0; and `slipway releases` lists no more releases than
#     before. Still 1 without the project's copy of R's manifest (none is needed). Without the
#     stat cache the live manifest is read: from the copy the first deploy kept (1 request);
#     without the copy, and with a copy that is not R's manifest, from the store (a second
#     request), and the copy is R's again.
# (b) One page of it changed: 6 requests, and of them exactly one GET of the state (read
#     before the walk for the live release; the change begun ahead takes it, and with an upload
#     this short takes no lease: the compare-and-swap of the change's one state write proves
#     the read current), no DELETE, no GET of events/head.json (the change starts from the
#     head copy the last change of this project left in .slipway/cache), no probe PUT (the
#     proof of conditional writes an earlier process kept in the project is younger than 10
#     minutes), no listing (no GET with list-type) and no touch.
#     moto's log shows no header, so a touch (a copy onto itself, x-amz-copy-source) would
#     show as a PUT of a body: the PUTs are counted instead, exactly five (the changed page's
#     bodies in one pack, the manifest, the state changed, the event the head held until now
#     (event 1, stored as an object of its own while the change reads, before its first
#     write), the head holding the change's event), one of them under packs/
#     (packing is the default on s3); and after the state's change write only the head's: the
#     change's one write after it. `slipway history dev --verify` then says the chain is
#     intact.
# (b2) R deployed by id while the stat cache records (b)'s release L (and by id again: already
#     live, in 2 requests: the HEAD of its manifest and the GET of the state): deploy DIR (which walks
#     DIR assuming L is live while it reads the state) makes and deploys a new release with L's
#     files; the DIR again is then already live.
# (b3) Another project (another machine) deploys, moving the audit head past this project's
#     copy: the next change's head write is refused (412), the head read and written, the copy
#     paused; the change after reads the head first and has no write refused.
# (b4) Through faultproxy.py stalling each pack PUT's first try 2 s, a one-page deploy DIR
#     uploads for over a second: its change takes the lease then, `slipway status` shows it
#     meanwhile, and the deploy's write leaves it out.
# (d) With --pack, on a fresh prefix (below (c)'s fs part in the file, run before it): the
#     site's bodies in one pack, the same DIR again 1 request, one page changed one PUT under
#     packs/ and none under blobs/; the pack read back with the aws CLI.
# (c) On fs (no moto): the same DIR deployed twice, the second "already live"; `slipway
#     history dev` shows one event; and --json says "changed": false.
#
# moto logs a request before it answers it, so once slipway has exited its requests are all
# in the log; a marker request (curl of moto's /moto-api/?mark=N) after each command bounds
# its lines, and the wait for the marker covers only the write of the log file.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
moto_start || done_testing
moto_bucket site || done_testing
new_project
MOTO_LOG=$T/moto-$MOTO_PORT.log
# A site of exactly 100 files: 97 small pages, a stylesheet with gzip and br variants, an
# image and robots.txt.
SITE=$T/big
mkdir -p "$SITE/css"
for i in $(seq 1 97); do printf '<!doctype html><h1>page %d</h1>\n' "$i" >"$SITE/p$i.html"; done
for i in $(seq 1 300); do printf '.c%d{margin:%dpx;padding:%dpx}\n' "$i" "$i" "$i"; done >"$SITE/css/app.css"
head -c 5000 /dev/urandom >"$SITE/logo.png"
printf 'User-agent: *\n' >"$SITE/robots.txt"
[ "$(find "$SITE" -type f | wc -l)" = 100 ] || fail "the site has $(find "$SITE" -type f | wc -l) files, not 100"

# mark: ends a command's requests in moto's log with a marker request, waited for (bounded).
marks=0
mark() {
    marks=$((marks + 1))
    curl -sf -o /dev/null --max-time 5 "$MOTO_URL/moto-api/?mark=$marks" || fail "marker request $marks"
    local end=$(($(date +%s) + 5))
    until grep -q "moto-api/?mark=$marks " "$MOTO_LOG" || [ "$(date +%s)" -ge $end ]; do sleep 0.05; done
}
# since_mark N: the requests moto logged after marker N and before the next one, one a line
# ("METHOD /path?query STATUS").
since_mark() {
    awk -v a="moto-api/?mark=$1 " -v b="moto-api/?mark=$(($1 + 1)) " '
        index($0, b) { exit } on && /"[A-Z]+ \// { sub(/^[^"]*"/, ""); sub(/ HTTP\/1\.1"/, ""); sub(/ -$/, ""); print }
        index($0, a) { on = 1 }' "$MOTO_LOG"
}
# count PATTERN FILE: lines of FILE matching the extended regexp PATTERN.
count() { grep -cE -- "$1" "$2"; }
show() { sed 's/^/# request: /' "$1"; }
# json_is EXPR WANT: the last stdout, parsed as JSON (j), gives WANT for EXPR.
json_is() { [ "$(json "$1")" = "$2" ]; }

export SLIPWAY_STORE
SLIPWAY_STORE=$(moto_store_url data)
sw deploy "$SITE" --env dev
expect_rc "s3: the first deploy of a 100-file site to dev" 0
sw releases
releases_before=$(printf '%s\n' "$out" | grep -c '^r-')
sw status --json
R=$(json "[e['live_release'] for e in j['environments'] if e['name'] == 'dev'][0]")

# ---- (a) the same DIR again: one request, nothing stored, nothing changed -----------------------
mark
a=$marks
sw deploy "$SITE" --env dev
mark
since_mark "$a" >same.req
n=$(wc -l <same.req)
echo "# unchanged re-run: $n requests ($(count '^PUT ' same.req) PUT)"
expect_rc "s3: the same DIR again exits 0" 0
verify "  it is already live, said on stdout and stderr, with the live release's id" \
    'echo "# stdout: $out"; echo "# stderr: $errout"' \
    eval '[ "$out" = "release $R is already live on dev; nothing changed" ] &&
        [ "$errout" = "release $R: the same 100 files as before (nothing to store)" ]'
verify "  exactly 1 request: GET of dev's state (the stat cache knows R's files; no HEAD of the bucket)" \
    'show same.req' \
    eval '[ "$n" = 1 ] &&
        [ "$(count "^GET /site/data/envs/dev/state.json 200$" same.req)" = 1 ] &&
        [ "$(count "^PUT " same.req)" = 0 ]'
copy=$(ls .slipway/cache/manifests/*/"$R.json" 2>/dev/null)
verify "  the copy is R's manifest as the store holds it" 'echo "# copy: $copy"' \
    eval '[ -n "$copy" ] && aws s3 cp "s3://site/data/releases/$R.json" store.json >/dev/null && cmp -s store.json "$copy"'
# same_again NAME: deploys the same DIR again, its requests in NAME.req
same_again() {
    mark
    a=$marks
    sw deploy "$SITE" --env dev
    mark
    since_mark "$a" >"$1.req"
}
mv "$copy" "$copy.kept"
same_again cacheonly
verify "  without the copy of R's manifest: still 1 request (no manifest is needed)" \
    'show cacheonly.req' \
    eval '[ "$rc" = 0 ] && [ "$(wc -l <cacheonly.req)" = 1 ] && [ ! -e "$copy" ]'
mv "$copy.kept" "$copy"
# Without the stat cache, R's manifest is what says the DIR holds R.
nocache() { rm -f .slipway/cache/stat-*; }
nocache
same_again copyonly
verify "  without the stat cache: 1 request, R's manifest read from the copy, already live" \
    'show copyonly.req; echo "# $out"' \
    eval '[ "$rc" = 0 ] && [ "$(wc -l <copyonly.req)" = 1 ] &&
        [ "$out" = "release $R is already live on dev; nothing changed" ]'
nocache
rm -f "$copy"
same_again nocopy
verify "  without the copy: 2 requests, the manifest read from the store, the copy back" \
    'show nocopy.req' \
    eval '[ "$rc" = 0 ] && [ "$(wc -l <nocopy.req)" = 2 ] &&
        [ "$(count "^GET /site/data/releases/$R.json 200$" nocopy.req)" = 1 ] && cmp -s store.json "$copy"'
nocache
sed 's/"files"/"filez"/' store.json >"$copy"
same_again badcopy
verify "  a copy that is not a manifest: read from the store, still already live, the copy R's again" \
    'show badcopy.req; echo "# $out"' \
    eval '[ "$rc" = 0 ] && [ "$out" = "release $R is already live on dev; nothing changed" ] &&
        [ "$(count "^GET /site/data/releases/$R.json 200$" badcopy.req)" = 1 ] && cmp -s store.json "$copy"'
sw releases
verify "  no release was stored: slipway releases lists $releases_before, as before" \
    'echo "# releases: $out" | sed "2,\$s/^/# /"' \
    eval '[ "$(printf "%s\n" "$out" | grep -c "^r-")" = "$releases_before" ]'

# ---- (b) one page changed -----------------------------------------------------------------------
printf '<!doctype html><h1>page 5, changed</h1>\n' >"$SITE/p5.html"
mark
b=$marks
sw deploy "$SITE" --env dev
mark
since_mark "$b" >change.req
n=$(wc -l <change.req)
heads=$(count '^GET /site/data/events/head.json ' change.req)
probes=$(count '^PUT /site/data/.slipway-probe/' change.req)
lists=$(count '^GET [^ ]*list-type' change.req)
puts=$(count '^PUT ' change.req)
bodies=$(count '^PUT /site/data/(blobs|packs)/' change.req)
echo "# one page changed: $n requests; $puts PUT ($bodies of bodies, $probes probe), $heads GET of events/head.json, $lists listings"
expect_rc "s3: the DIR with one page changed deploys" 0
verify "  6 requests" 'show change.req' [ "$n" = 6 ]
verify "  exactly one GET of envs/dev/state.json (read before the walk, proved by the change's write)" \
    'show change.req' [ "$(count '^GET /site/data/envs/dev/state.json ' change.req)" = 1 ]
verify "  no DELETE" 'show change.req' [ "$(count '^DELETE ' change.req)" = 0 ]
verify "  no GET of events/head.json: the change starts from the head copy the last one left" \
    'show change.req; ls -l .slipway/cache | sed "s/^/# /"' \
    eval '[ "$heads" = 0 ] && grep -q "^slipway-head-copy 1$" .slipway/cache/head-*'
verify "  no probe PUT (the first deploy's proof of conditional writes is in the project)" \
    'show change.req' eval '[ "$probes" = 0 ] && [ -s "$(ls .slipway/cache/cas-proof-*)" ]'
verify "  no listing (no GET with list-type)" 'show change.req' [ "$lists" = 0 ]
verify "  no touch: 5 PUTs (the changed page's pack, manifest, state once (a short upload takes no lease), event 1, head), one of bodies" \
    'show change.req' \
    eval '[ "$puts" = 5 ] && [ "$bodies" = 1 ] &&
        [ "$(count "^PUT /site/data/envs/dev/state\.json 200$" change.req)" = 1 ] &&
        [ "$(count "^PUT /site/data/(releases/r-[^ /]*\.json|events/000000000001\.json|events/head\.json) 200$" change.req)" = 3 ]'
verify "  after the state's change write, only the head's" 'show change.req' \
    eval '[ "$(tail -2 change.req | cut -d" " -f1,2 | tr "\n" " ")" = "PUT /site/data/envs/dev/state.json PUT /site/data/events/head.json " ]'
sw history dev --verify
verify "  slipway history dev --verify: the audit chain is intact" 'echo "# $out $errout"' \
    eval '[ "$rc" = 0 ] && grep -q "audit chain intact (2 events checked)" <<<"$out$errout"'

# ---- (b2) another release made live meanwhile ---------------------------------------------------
# The stat cache records the release (b) made (L), and deploy DIR walks DIR assuming L is live
# while it reads the state; R is live instead (deployed by id, as someone else would): the walk
# is done again with R as the live release, and DIR (L's files) is a new release L2, live.
sw status --json
L=$(json "[e['live_release'] for e in j['environments'] if e['name'] == 'dev'][0]")
sw deploy "$R" --env dev
expect_rc "s3: R deployed by id (live again; the stat cache still records L)" 0
# R by id again: already live, which the HEAD of its manifest (the name resolved) and one GET
# of the state tell; no lock, no check of its bodies.
mark
b=$marks
sw deploy "$R" --env dev
mark
since_mark "$b" >again.req
verify "s3: deploy R (live) by id again: already live, 2 requests (HEAD of the manifest, GET of the state)" \
    'echo "# $out $errout"; show again.req' \
    eval '[ "$rc" = 0 ] && [ "$out" = "release $R is already live on dev; nothing changed" ] &&
        [ "$(wc -l <again.req)" = 2 ] && [ "$(count "^GET /site/data/envs/dev/state.json " again.req)" = 1 ]'
sw deploy "$SITE" --env dev
expect_rc "s3: the DIR again, R live where L was assumed" 0
sw status --json
L2=$(json "[e['live_release'] for e in j['environments'] if e['name'] == 'dev'][0]")
sw diff "$L" "$L2" --json
verify "  a new release is live, with L's files (slipway diff L L2: no change)" \
    'echo "# L $L, R $R, live $L2: $out"' \
    eval '[ -n "$L2" ] && [ "$L2" != "$L" ] && [ "$L2" != "$R" ] && [ "$(json "j[\"changes\"]")" = "[]" ]'
sw deploy "$SITE" --env dev
verify "  and the DIR again: already live (the stat cache records L2)" 'echo "# $out"' \
    eval '[ "$rc" = 0 ] && [ "$out" = "release $L2 is already live on dev; nothing changed" ]'

# ---- (b3) another writer of the audit log ------------------------------------------------------
# A change made from another project (another machine: a head copy of its own) moves the head,
# so this project's copy is behind it. The next change's head write is refused (412), the head
# read and written, and the copy paused: the change after it reads the head first, as without
# a copy, with no refused write.
"$SLIPWAY" init -q "$T/other" >/dev/null
cp .slipway/environments/dev.yml "$T/other/.slipway/environments/"
(cd "$T/other" && "$SLIPWAY" deploy "$R" --env dev -q >/dev/null 2>&1)
expect_rc "s3: another project deploys R" 0
printf '<!doctype html><h1>page 40, changed by (b3)</h1>\n' >"$SITE/p40.html"
mark
b=$marks
sw deploy "$SITE" --env dev
mark
since_mark "$b" >behind.req
expect_rc "s3: a change with the head copy behind the head" 0
verify "  its head write refused (412), the head read, then written; the copy paused" \
    'show behind.req; head -2 .slipway/cache/head-* | sed "s/^/# copy: /"' \
    eval '[ "$(count "^PUT /site/data/events/head.json 412$" behind.req)" = 1 ] &&
        [ "$(count "^GET /site/data/events/head.json 200$" behind.req)" = 1 ] &&
        [ "$(count "^PUT /site/data/events/head.json 200$" behind.req)" = 1 ] &&
        grep -q "^paused-until [0-9]*$" .slipway/cache/head-*'
printf '<!doctype html><h1>page 41, changed by (b3)</h1>\n' >"$SITE/p41.html"
mark
b=$marks
sw deploy "$SITE" --env dev
mark
since_mark "$b" >paused.req
verify "  paused: the next change reads the head, and no head write is refused" 'show paused.req' \
    eval '[ "$rc" = 0 ] && [ "$(count "^GET /site/data/events/head.json 200$" paused.req)" = 1 ] &&
        [ "$(count "^PUT /site/data/events/head.json 412$" paused.req)" = 0 ]'
sw history dev --verify
verify "  slipway history dev --verify: the audit chain is intact" 'echo "# $out $errout"' \
    eval '[ "$rc" = 0 ] && grep -q "audit chain intact" <<<"$out$errout"'

# ---- (b4) a long upload takes the lease -----------------------------------------------------------
# Through tests/e2e/faultproxy.py, which answers the first try of every pack PUT with nothing
# for 2 s and then a closed connection (slipway sends it again), a one-page deploy DIR uploads
# for longer than a second (DEPLOY_LEASE_AFTER_MS): its change
# then takes the lease, and `slipway status` (straight on moto) shows it while the upload
# goes on; the deploy ends with the lease gone and the page live.
faultproxy_start --kinds stall --stall 2 --rate 1 --once --only '^PUT [^ ]*/packs/' || done_testing
printf '<!doctype html><h1>page 42, changed by (b4)</h1>\n' >"$SITE/p42.html"
SLIPWAY_STORE=$(moto_store_url data "$PROXY_URL") "$SLIPWAY" deploy "$SITE" --env dev -q \
    >"$T/b4.out" 2>"$T/b4.err" &
b4=$!
_pids+=("$b4")
leased=
for _ in $(seq 1 100); do
    sw status dev --json
    leased=$(json "[e['lease'] and e['lease']['action'] for e in j['environments'] if e['name'] == 'dev'][0]" 2>/dev/null)
    [ "$leased" = deploy ] && break
    kill -0 "$b4" 2>/dev/null || break
    sleep 0.1
done
wait "$b4"
b4rc=$?
faultproxy_stop
verify "s3: an upload longer than a second takes the lease, which status shows meanwhile" \
    'echo "# lease seen: [$leased], deploy exit $b4rc: $(cat "$T/b4.err")"' \
    eval '[ "$leased" = deploy ] && [ "$b4rc" = 0 ]'
sw status dev --json
verify "  and the deploy's write leaves it out" 'echo "# $out"' \
    json_is "[e['lease'] for e in j['environments'] if e['name'] == 'dev'][0]" None

# ---- (d) --pack: small bodies in one pack object ----------------------------------------------
# A fresh prefix: the 100-file site deployed with --pack stores its bodies in one pack (no
# body PUT under blobs/); the same DIR again is 1 request; one page changed is one PUT under
# packs/ (its body alone) and none under blobs/, within the same 10 requests. The pack read
# back with the aws CLI holds the changed page's bytes where the manifest says.
SLIPWAY_STORE=$(moto_store_url packed)
mark
d=$marks
sw deploy "$SITE" --env dev --pack
mark
since_mark "$d" >pack1.req
expect_rc "s3 --pack: the first deploy of the 100-file site" 0
verify "  one PUT under packs/, none under blobs/" 'show pack1.req' \
    eval '[ "$(count "^PUT /site/packed/packs/sha256/" pack1.req)" = 1 ] && [ "$(count "^PUT /site/packed/blobs/" pack1.req)" = 0 ]'
mark
d=$marks
sw deploy "$SITE" --env dev --pack
mark
since_mark "$d" >pack2.req
verify "  the same DIR again: exit 0, 1 request" 'show pack2.req' eval '[ "$rc" = 0 ] && [ "$(wc -l <pack2.req)" = 1 ]'
printf '<!doctype html><h1>page 6, changed</h1>\n' >"$SITE/p6.html"
mark
d=$marks
sw deploy "$SITE" --env dev --pack
mark
since_mark "$d" >pack3.req
echo "# --pack, one page changed: $(wc -l <pack3.req) requests"
expect_rc "s3 --pack: one page changed" 0
verify "  at most 9 requests: one PUT under packs/ (the page's body alone), none under blobs/" 'show pack3.req' \
    eval '[ "$(wc -l <pack3.req)" -le 9 ] && [ "$(count "^PUT /site/packed/packs/sha256/" pack3.req)" = 1 ] &&
        [ "$(count "^PUT /site/packed/blobs/" pack3.req)" = 0 ]'
sw status --json
P=$(json "[e['live_release'] for e in j['environments'] if e['name'] == 'dev'][0]")
aws s3 cp --quiet "s3://site/packed/releases/$P.json" packed.json
read -r pk at <<<"$(python3 -c 'import json,sys; f=[f for f in json.load(open(sys.argv[1]))["files"] if f["path"]=="p6.html"][0]; print(f["pack"], f["at"])' packed.json)"
aws s3 cp --quiet "s3://site/packed/packs/sha256/${pk:0:2}/$pk" pack.bin
verify "  read back with the aws CLI: the pack holds the changed page at its offset, and is named by its hash" \
    'echo "# pack $pk at $at"' \
    eval 'tail -c +$((at + 1)) pack.bin | head -c "$(stat -c %s "$SITE/p6.html")" | cmp -s - "$SITE/p6.html" &&
        [ "$(sha256sum <pack.bin | cut -d" " -f1)" = "$pk" ]'

# ---- (c) on fs ----------------------------------------------------------------------------------
SLIPWAY_STORE=$T/fsdata
sw deploy "$SITE" --env dev
expect_rc "fs: the first deploy" 0
sw status --json
F=$(json "[e['live_release'] for e in j['environments'] if e['name'] == 'dev'][0]")
sw deploy "$SITE" --env dev
expect_rc "fs: the same DIR again exits 0" 0
verify "  it is already live, and no release was stored" 'echo "# stdout: $out"; echo "# stderr: $errout"' \
    eval '[ "$out" = "release $F is already live on dev; nothing changed" ] &&
        [ "$errout" = "release $F: the same 100 files as before (nothing to store)" ] &&
        [ "$(ls "$T/fsdata/releases" | wc -l)" = 1 ]'
sw history dev
verify "  slipway history dev shows one event" 'echo "# $out" | sed "2,\$s/^/# /"' \
    eval '[ "$(printf "%s\n" "$out" | grep -c " deploy ")" = 1 ]'
sw deploy "$SITE" --env dev --json
verify "  --json: \"changed\": false, the live release, generation 1" 'echo "# $out" | sed "2,\$s/^/# /"' \
    eval '[ "$rc" = 0 ] && json_is "j[\"changed\"]" False && json_is "j[\"release\"]" "$F" &&
        json_is "j[\"generation\"]" 1'
moto_stop
done_testing

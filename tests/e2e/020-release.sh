#!/usr/bin/env bash
# release create, releases, diff: ids, JSON summary, deduplication, blobs
# checked with sha256sum, manifest fields (types, cache policies, git facts),
# symbolic links, special and unreadable files, and the stat cache.
. "$(dirname "$0")/lib.sh"

new_project
DATA=$T/p/.slipway/data
# manifest ID EXPR: a python expression over releases/ID.json (as `m`).
manifest() {
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print($2)" "$DATA/releases/$1.json"
}
# files_read: the "(N files read)" count of the last release create's summary.
files_read() { sed -n 's/.*(\([0-9]*\) files read).*/\1/p' <<<"$errout"; }

# ---- ids --------------------------------------------------------------------
sw release create "$T/site"; expect_rc "release create succeeds" 0
first=$out
check "it prints one id and nothing else on stdout" grep -qxE 'r-[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}' <<<"$out"
check "the manifest is releases/<id>.json" test -f "$DATA/releases/$first.json"
check "the summary goes to stderr" grep -q "release $first: 3 files" <<<"$errout"

ids=()
for i in 1 2 3 4 5; do
    printf 'v%s\n' "$i" > "$T/site/n.txt"
    sw release create "$T/site" -q; ids+=("$out")
done
check "5 quick releases: every id is unique" test "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" = 5
check "5 quick releases: ids sort in creation order" \
    test "$(printf '%s\n' "${ids[@]}" | sort)" = "$(printf '%s\n' "${ids[@]}")"
created_sorted=$(for i in "${ids[@]}"; do manifest "$i" 'm["created"]'; done)
check "manifest creation times follow the same order" test "$created_sorted" = "$(sort <<<"$created_sorted")"
rm "$T/site/n.txt"

# ---- --json and deduplication --------------------------------------------------
mkdir -p "$T/d1"
printf 'same body\n' > "$T/d1/a.txt"
printf 'same body\n' > "$T/d1/b.txt"
printf 'other body\n' > "$T/d1/c.txt"
sw release create "$T/d1" --json; expect_rc "release create --json" 0
check "--json has exactly id, files, bytes, new_blobs and the compression counts" test "$(json 'sorted(j)')" = "['bytes', 'compressed', 'files', 'id', 'new_blobs', 'reused', 'saved_bytes', 'variants']"
check "--json: small files, no variants" test "$(json 'j["variants"], j["compressed"], j["reused"], j["saved_bytes"]')" = "0 0 0 0"
check "--json counts: 3 files, 31 bytes, 2 new bodies (one shared by two files)" \
    test "$(json 'j["files"], j["bytes"], j["new_blobs"]')" = "3 31 2"
check "--json id is a release" test -f "$DATA/releases/$(json 'j["id"]').json"
check "--json prints no human summary" test -z "$errout"
d1=$(json 'j["id"]')
same_hex=$(sha256sum < "$T/d1/a.txt" | cut -d' ' -f1)
check "a body shared by two files is stored once" \
    test "$(find "$DATA/blobs" -type f -name "$same_hex" | wc -l)" = 1
sw release create "$T/d1" --json
check "the same content again: new_blobs 0" test "$(json 'j["new_blobs"]')" = 0
check "the same content again: a new id" test "$(json 'j["id"]')" != "$d1"
cp -r "$T/d1" "$T/d1copy"
sw release create "$T/d1copy" --json
check "the same content from another directory: new_blobs 0" test "$(json 'j["new_blobs"]')" = 0

# ---- blobs, read back with sha256sum -------------------------------------------
blob_errors=$(python3 - "$DATA" "$first" "$T/site" <<'EOF'
import hashlib, json, os, sys
data, rid, site = sys.argv[1:]
m = json.load(open(f"{data}/releases/{rid}.json"))
bad = []
for f in m["files"]:
    h = f["blob"]
    p = f"{data}/blobs/sha256/{h[:2]}/{h}"
    if not os.path.isfile(p):
        bad.append(f"{f['path']}: {p} missing")
        continue
    if os.path.getsize(p) != f["size"]:
        bad.append(f"{f['path']}: size")
    src = hashlib.sha256(open(os.path.join(site, f["path"]), "rb").read()).hexdigest()
    if src != h:
        bad.append(f"{f['path']}: manifest blob is not the source's sha256")
print("\n".join(bad))
EOF
)
check "every manifest blob exists at blobs/sha256/ab/<hex> with the file's size and hash" test -z "$blob_errors"
sums_ok=1
for b in $(find "$DATA/blobs/sha256" -type f); do
    name=$(basename "$b"); dir=$(basename "$(dirname "$b")")
    [ "$(sha256sum < "$b" | cut -d' ' -f1)" = "$name" ] && [ "$dir" = "${name:0:2}" ] || { sums_ok=0; echo "# bad blob $b"; }
done
check "sha256sum of every stored blob equals its name, under its first two hex digits" test $sums_ok = 1
check "no temporaries left after successful releases" test -z "$(find "$DATA" -name '.tmp.*')"

# ---- manifest fields, content types and cache policies ---------------------------
mkdir -p "$T/types/js"
for f in index.html style.css js/app.3f9a2c1d.js data.json logo.svg pic.png photo.jpg \
    font.woff2 notes.txt mod.wasm feed.xml blob.xyz UPPER.PNG README; do
    printf 'x%s\n' "$f" > "$T/types/$f"
done
sw release create "$T/types" -q; tid=$out
types=$(manifest "$tid" '"\n".join(f["path"] + " " + f["type"] + " | " + f["cache"] for f in m["files"])')
expect_type() {
    local line; line=$(grep "^$1 " <<<"$types")
    check "$1 has type '$2'" test "${line#"$1 "}" != "$line" -a "$(sed 's/^[^ ]* \(.*\) | .*/\1/' <<<"$line")" = "$2"
}
expect_type index.html "text/html; charset=utf-8"
expect_type style.css "text/css; charset=utf-8"
expect_type js/app.3f9a2c1d.js "text/javascript; charset=utf-8"
expect_type data.json "application/json; charset=utf-8"
expect_type logo.svg "image/svg+xml; charset=utf-8"
expect_type pic.png "image/png"
expect_type photo.jpg "image/jpeg"
expect_type font.woff2 "font/woff2"
expect_type notes.txt "text/plain; charset=utf-8"
expect_type mod.wasm "application/wasm"
expect_type feed.xml "application/xml; charset=utf-8"
expect_type blob.xyz "application/octet-stream"
expect_type UPPER.PNG "image/png"
expect_type README "application/octet-stream"
cache_of() { grep "^$1 " <<<"$types" | sed 's/.* | //'; }
check "fingerprinted app.3f9a2c1d.js is immutable for a year" \
    test "$(cache_of js/app.3f9a2c1d.js)" = "public, max-age=31536000, immutable"
check "HTML is no-cache" test "$(cache_of index.html)" = "no-cache"
check "a plain asset is revalidated (not immutable)" test "$(cache_of style.css)" = "public, max-age=300"
check "manifest files are sorted by path and each has path, blob, size, mtime, type, cache" \
    test "$(manifest "$tid" '[f["path"] for f in m["files"]] == sorted(f["path"] for f in m["files"]) and all(sorted(f) == ["blob","cache","mtime","path","size","type"] for f in m["files"])')" = True
check "manifest mtimes are the files' modification times" \
    test "$(manifest "$tid" 'all(f["mtime"] == int(__import__("os").stat("'"$T/types"'/" + f["path"]).st_mtime) for f in m["files"])')" = True
check "manifest sizes match the files" \
    test "$(manifest "$tid" 'sum(f["size"] for f in m["files"])')" = "$(find "$T/types" -type f -exec cat {} + | wc -c)"
check "manifest records who, where from, and when" \
    test "$(manifest "$first" 'm["source"]["user"], m["source"]["dir"], m["id"], m["created"][:4].isdigit(), "message" in m')" = "$SLIPWAY_ACTOR $T/site $first True False"
sw release create "$T/types" -q --message "hello there"
check "--message is kept in the manifest" test "$(manifest "$out" 'm["message"]')" = "hello there"
check "outside a repository there are no git facts" \
    test "$(manifest "$tid" '[k for k in ("commit","ref","tag") if k in m["source"]]')" = "[]"

# ---- git facts ----------------------------------------------------------------------
git init -q "$T/repo"
mkdir -p "$T/repo/public"
printf '<p>git</p>\n' > "$T/repo/public/index.html"
(cd "$T/repo" && git add -A && git -c user.name=t -c user.email=t@example.org commit -qm one &&
    git checkout -qb feature/x && git tag v1.4.0)
sw release create "$T/repo/public" -q; gid=$out
check "git: source.commit is git rev-parse HEAD" test "$(manifest "$gid" 'm["source"].get("commit")')" = "$(git -C "$T/repo" rev-parse HEAD)"
check "git: source.ref is the branch" test "$(manifest "$gid" 'm["source"].get("ref")')" = "$(git -C "$T/repo" symbolic-ref HEAD)"
check "git: source.tag is the tag at HEAD" test "$(manifest "$gid" 'm["source"].get("tag")')" = v1.4.0
# A worktree's .git is a file, not a directory: still a repository.
git -C "$T/repo" worktree add -q "$T/wt" -b wt-branch 2>/dev/null
sw release create "$T/wt/public" -q
check "git: a worktree (.git is a file) has its facts too" \
    test "$(manifest "$out" 'm["source"].get("ref")')" = refs/heads/wt-branch
sw release create "$T/repo" -q
check "git: .git/ is never part of a release" test "$(manifest "$out" '[f["path"] for f in m["files"]]')" = "['public/index.html']"
sw releases --json
check "releases --json shows the commit and ref" \
    test "$(json '[(r["commit"], r["ref"]) for r in j["releases"] if r["id"] == "'"$gid"'"][0]')" = \
    "('$(git -C "$T/repo" rev-parse HEAD)', 'refs/heads/feature/x')"
check "git: a clean tree is recorded as not dirty" test "$(manifest "$gid" 'm["source"].get("dirty")')" = False
printf '<p>edited</p>\n' > "$T/repo/public/index.html"
sw release create "$T/repo/public" -q; did=$out
check "git: an edited tree is recorded as dirty" test "$(manifest "$did" 'm["source"].get("dirty")')" = True
printf 'new\n' > "$T/repo/public/new.txt"
git -C "$T/repo" checkout -q -- public/index.html
sw release create "$T/repo/public" -q
check "git: an untracked file makes it dirty too" test "$(manifest "$out" 'm["source"].get("dirty")')" = True
rm "$T/repo/public/new.txt"
sw releases
check "releases shows the tag and marks a dirty commit with +" eval 'grep -qE "^$did .* [0-9a-f]{8}\+  v1\.4\.0 " <<<"$out"'

# ---- symbolic links ---------------------------------------------------------------------
mkdir -p "$T/ln/css"
printf 'body{}\n' > "$T/ln/css/a.css"
printf '<p>home</p>\n' > "$T/ln/index.html"
ln -s index.html "$T/ln/home.html"
ln -s css "$T/ln/styles"
sw release create "$T/ln" -q; expect_rc "symbolic links inside DIR are accepted" 0
lid=$out
check "a file link is followed: home.html has index.html's body" \
    test "$(manifest "$lid" '{f["path"]: f["blob"] for f in m["files"]}["home.html"]')" = "$(sha256sum < "$T/ln/index.html" | cut -d' ' -f1)"
check "a directory link is followed: styles/a.css is in the release" \
    test "$(manifest "$lid" '" ".join(f["path"] for f in m["files"])')" = "css/a.css home.html index.html styles/a.css"

printf 'secret\n' > "$T/outside.txt"
ln -s ../outside.txt "$T/ln/leak.txt"
before=$(snapshot "$DATA")
sw release create "$T/ln"
expect_err "a link pointing outside DIR: exit 1, one line naming it" 1 "leak\.txt.*outside"
check "a link pointing outside DIR: store unchanged" test "$before" = "$(snapshot "$DATA")"
rm "$T/ln/leak.txt"
ln -s / "$T/ln/root"
sw release create "$T/ln"
expect_err "a link to / is outside too" 1 "root.*outside"
rm "$T/ln/root"
ln -s nowhere "$T/ln/dangling"
sw release create "$T/ln"
expect_err "a dangling link: exit 1, one line naming it" 1 "dangling"
rm "$T/ln/dangling"
check "a failed release leaves the store unchanged" test "$before" = "$(snapshot "$DATA")"

# ---- special files, empty and missing directories ---------------------------------------
mkfifo "$T/ln/pipe"
sw release create "$T/ln"
expect_err "a FIFO is refused, naming it" 1 "pipe.*(FIFO|special|regular)"
check "a refused FIFO leaves the store unchanged" test "$before" = "$(snapshot "$DATA")"
rm "$T/ln/pipe"
mkdir -p "$T/empty/sub/deeper"
sw release create "$T/empty"
expect_err "an empty directory (only empty subdirectories) is not a release" 1 "empty"
sw release create "$T/nope"
expect_err "a nonexistent directory: one line naming it" 1 "nope.*(No such|not found|does not exist)"
sw release create "$T/site/index.html"
expect_err "a file instead of a directory" 1 "index\.html.*not a directory"
check "bad input leaves the store unchanged" test "$before" = "$(snapshot "$DATA")"

# ---- every bad link and every name no URL can carry, in one report ------------------------
# lines: the number of lines of the last stderr.
lines() { printf '%s' "$errout" | grep -c ''; }
n_releases() { ls "$DATA/releases" | wc -l; }
mkdir -p "$T/many/sub"
printf '<p>many</p>\n' > "$T/many/index.html"
for i in $(seq -w 1 24); do ln -s ../../outside.txt "$T/many/sub/out$i.txt"; done
ln -s gone "$T/many/dangling"
ln -s .. "$T/many/sub/up"
before=$(snapshot "$DATA"); nrel=$(n_releases)
sw release create "$T/many"
expect_rc "26 bad links: exit 1" 1
check "26 bad links: the first 20 by name, one line each, then the summary" test "$(lines)" = 21
check "the first line names the dangling link and what it says" test "$(head -1 <<<"$errout")" = \
    "slipway: $T/many/dangling: symbolic link to gone is dangling: nothing is there"
check "an outside link names its text, where it leads, and the flag" grep -qxF \
    "slipway: $T/many/sub/out01.txt: symbolic link to ../../outside.txt points outside the directory (to $T/outside.txt); --follow-symlinks stores what it points to" <<<"$errout"
check "the 20th line is out19.txt: the list is bounded, in path order" \
    test "$(sed -n 20p <<<"$errout")" = "slipway: $T/many/sub/out19.txt: symbolic link to ../../outside.txt points outside the directory (to $T/outside.txt); --follow-symlinks stores what it points to"
check "the summary counts all of them and says how many more" test "$(tail -1 <<<"$errout")" = \
    "slipway: $T/many: 26 files cannot be released: the 20 above and 6 more; nothing was stored"
check "26 bad links: no manifest written" test "$(n_releases)" = "$nrel"
check "26 bad links: store unchanged" test "$before" = "$(snapshot "$DATA")"
rm "$T"/many/sub/out2*.txt "$T"/many/sub/out1*.txt
sw release create "$T/many"
check "with every link listed (no 'more'): each on a line, then the summary" test "$(lines)" = 12 -a \
    "$(tail -1 <<<"$errout")" = "slipway: $T/many: 11 files cannot be released (above); nothing was stored"
check "the loop is named too" grep -qxF "slipway: $T/many/sub/up: symbolic link to .. is a loop: it leads back to a directory that contains it" <<<"$errout"

mkdir -p "$T/names"
printf 'fine\n' > "$T/names/ok.txt"
printf 'servable, percent-encoded\n' > "$T/names/what?#50%.txt"
printf 'x\n' > "$T/names/a\\b.txt"
printf 'x\n' > "$T/names/caf"$'\xe9'".txt"
printf 'x\n' > "$T/names/new"$'\n'"slipway: forged line"
sw release create "$T/names"
expected="slipway: $T/names/a\\\\b.txt: contains a backslash, which no URL can name
slipway: $T/names/caf\\xe9.txt: not valid UTF-8, which a release cannot hold
slipway: $T/names/new\\nslipway: forged line: contains a control character, which a release cannot hold
slipway: $T/names: 3 files cannot be released (above); nothing was stored"
check "names no URL can carry: every one listed, escaped, exit 1" test "$rc" = 1 -a "$errout" = "$expected"
[ "$errout" = "$expected" ] || printf '# got:\n%s\n' "$errout" | sed 's/^/# /'
check "refused names: no manifest written" test "$(n_releases)" = "$nrel"
check "refused names: store unchanged" test "$before" = "$(snapshot "$DATA")"
rm "$T/names/caf"$'\xe9'".txt" "$T/names/new"$'\n'"slipway: forged line"
mkdir -p "$T/cwd" && mv "$T/names" "$T/cwd/dist"
cd "$T/cwd"
sw release create dist --project "$T/p"
expect_err "one refused name: one line, named as DIR was given" 1 '^slipway: dist/a\\\\b\.txt: contains a backslash, which no URL can name$'
cd "$T/p"
rm "$T/cwd/dist/a\\b.txt"
sw release create "$T/cwd/dist" -q; expect_rc "names that only need percent-encoding are released" 0
check "... under their own names" test "$(manifest "$out" '" ".join(f["path"] for f in m["files"])')" = "ok.txt what?#50%.txt"
nrel=$(n_releases)

# ---- --follow-symlinks --------------------------------------------------------------------
mkdir -p "$T/fol" "$T/shared/fonts"
printf '<p>fol</p>\n' > "$T/fol/index.html"
printf 'font bytes\n' > "$T/shared/fonts/a.woff2"
printf '<svg/>\n' > "$T/shared/logo.svg"
ln -s ../shared "$T/fol/assets"
ln -s ../shared/logo.svg "$T/fol/logo.svg"
sw release --help
check "release --help lists --follow-symlinks" grep -qE '^  +--follow-symlinks +store what a symbolic link' <<<"$out"
sw release create "$T/fol"
check "without --follow-symlinks both outside links are refused" eval \
    '[ "$rc" = 1 ] && [ "$(lines)" = 3 ] && grep -q "/fol/assets: symbolic link to ../shared points outside" <<<"$errout" && grep -q "/fol/logo.svg: symbolic link to ../shared/logo.svg points outside" <<<"$errout"'
sw release create "$T/fol" --follow-symlinks -q; expect_rc "--follow-symlinks: the release is made" 0
fid=$out
check "--follow-symlinks: a directory link is walked, a file link stored under its name" \
    test "$(manifest "$fid" '" ".join(f["path"] for f in m["files"])')" = "assets/fonts/a.woff2 assets/logo.svg index.html logo.svg"
logo_blob=$(manifest "$fid" '{f["path"]: f["blob"] for f in m["files"]}["logo.svg"]')
check "--follow-symlinks: logo.svg holds what the link points to" \
    test "$logo_blob" = "$(sha256sum < "$T/shared/logo.svg" | cut -d' ' -f1)"
check "--follow-symlinks: that body is in the store" cmp -s "$DATA/blobs/sha256/${logo_blob:0:2}/$logo_blob" "$T/shared/logo.svg"
ln -s .. "$T/shared/fonts/loop"
before=$(snapshot "$DATA"); nrel=$(n_releases)
sw release create "$T/fol" --follow-symlinks
expect_err "--follow-symlinks: a loop through a followed directory is refused, naming it" 1 \
    "^slipway: $T/fol/assets/fonts/loop: symbolic link to \.\. is a loop"
rm "$T/shared/fonts/loop"
ln -s ../nothing-here "$T/fol/dangling"
sw release create "$T/fol" --follow-symlinks
expect_err "--follow-symlinks: a dangling link is still refused" 1 "fol/dangling: symbolic link to \.\./nothing-here is dangling"
check "refused with --follow-symlinks: no manifest, store unchanged" eval '[ "$(n_releases)" = "$nrel" ] && [ "$before" = "$(snapshot "$DATA")" ]'
rm "$T/fol/dangling"
sw deploy "$T/fol" --env dev
expect_rc "deploy DIR refuses an outside link too" 1
sw deploy "$T/fol" --env dev --follow-symlinks -q; expect_rc "deploy DIR --follow-symlinks" 0

# ---- unreadable files and directories (root reads everything: run as nobody) -------------
if command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
    chmod 711 "$T"
    mkdir -p "$T/nob/site/sub" "$T/nob/store"
    chmod 755 "$T/nob" "$T/nob/site" "$T/nob/site/sub"
    chown 65534:65534 "$T/nob/store"
    printf 'one\n' > "$T/nob/site/a.txt"
    printf 'two\n' > "$T/nob/site/sub/b.txt"
    printf 'three\n' > "$T/nob/site/c.txt"
    chmod 644 "$T"/nob/site/*.txt "$T"/nob/site/sub/*.txt
    as_nobody() {
        out=$(cd "$T/nob" && setpriv --reuid=65534 --regid=65534 --clear-groups \
            "$SLIPWAY" "$@" --store "$T/nob/store" 2>"$T/.stderr"); rc=$?
        errout=$(cat "$T/.stderr")
    }
    as_nobody release create "$T/nob/site" -q; expect_rc "as nobody: a readable site releases" 0
    printf 'changed\n' > "$T/nob/site/a.txt"
    chmod 000 "$T/nob/site/c.txt"
    nbefore=$(snapshot "$T/nob/store")
    as_nobody release create "$T/nob/site"
    expect_err "an unreadable file: exit 1, one line naming it" 1 "c\.txt.*(Permission denied|permission)"
    check "an unreadable file: store unchanged (no new blob for the changed a.txt)" test "$nbefore" = "$(snapshot "$T/nob/store")"
    check "an unreadable file: no temporaries left" test -z "$(find "$T/nob/store" -name '.tmp.*')"
    chmod 644 "$T/nob/site/c.txt"
    chmod 000 "$T/nob/site/sub"
    as_nobody release create "$T/nob/site"
    expect_err "an unreadable subdirectory: exit 1, one line naming it" 1 "sub.*(Permission denied|permission)"
    check "an unreadable subdirectory: store unchanged" test "$nbefore" = "$(snapshot "$T/nob/store")"
    chmod 755 "$T/nob/site/sub"
    chmod 700 "$T/nob/site"
    as_nobody release create "$T/nob/site"
    expect_err "an unreadable DIR itself: exit 1, one line naming it" 1 "site.*(Permission denied|permission)"
    chmod 755 "$T/nob/site"
else
    echo "# skipped: unreadable files (setpriv missing or not permitted; root reads everything)"
fi

# ---- releases ------------------------------------------------------------------------------
sw releases --json; expect_rc "releases --json" 0
n_manifests=$(ls "$DATA/releases" | wc -l)
check "releases --json lists every manifest" test "$(json 'len(j["releases"])')" = "$n_manifests"
check "releases --json: oldest first" test "$(json '[r["id"] for r in j["releases"]] == sorted(r["id"] for r in j["releases"])')" = True
check "releases --json fields" test "$(json 'sorted(j["releases"][0])')" = "['bytes', 'commit', 'created', 'dirty', 'files', 'id', 'message', 'ref', 'run', 'tag']"
check "releases --json: files and bytes of the first release" \
    test "$(json '[(r["files"], r["bytes"]) for r in j["releases"] if r["id"] == "'"$first"'"][0]')" = "(3, $(cat "$T/site/index.html" "$T/site/css/app.3f9a2c1d.css" "$T/site/img/logo.png" | wc -c))"
sw releases; expect_rc "releases (human)" 0
check "releases (human) has one line per release" test "$(grep -c '^r-' <<<"$out")" = "$n_manifests"
check "releases (human) shows the message" grep -q "hello there" <<<"$out"

# ---- diff ---------------------------------------------------------------------------------
mkdir -p "$T/da" "$T/db"
printf 'keep\n' > "$T/da/same.txt"; cp "$T/da/same.txt" "$T/db/same.txt"
printf 'old\n' > "$T/da/gone.txt"
printf 'v1\n' > "$T/da/change.txt"; printf 'version 2\n' > "$T/db/change.txt"
printf 'brand new\n' > "$T/db/new.txt"
sw release create "$T/da" -q; A=$out
sw release create "$T/db" -q; B=$out
sw diff "$A" "$B"; expect_rc "diff A B" 0
check "diff: added line" grep -qx '+ new.txt (10 bytes)' <<<"$out"
check "diff: removed line" grep -qx -- '- gone.txt (4 bytes)' <<<"$out"
check "diff: changed line with both sizes" grep -qx '~ change.txt (3 -> 10 bytes)' <<<"$out"
check "diff: unchanged paths are not listed" bash -c '! grep -q same.txt <<<"$1"' _ "$out"
check "diff: summary" grep -qx '1 added, 1 removed, 1 changed' <<<"$out"
sw diff "$A" "$B" --json; expect_rc "diff --json" 0
check "diff --json from/to" test "$(json 'j["from"], j["to"]')" = "$A $B"
check "diff --json changes in path order" \
    test "$(json '[(c["kind"], c["path"], c["old_size"], c["new_size"]) for c in j["changes"]]')" = \
    "[('changed', 'change.txt', 3, 10), ('removed', 'gone.txt', 4, 0), ('added', 'new.txt', 0, 10)]"
sw diff "$A" "$A" --json
check "diff of a release with itself is empty" test "$(json 'j["changes"]')" = "[]"
sw diff "${B: -6}" "${A:0:24}" --json; expect_rc "diff by unique suffix and prefix" 0
check "diff B A reverses the kinds" test "$(json '[c["kind"] for c in j["changes"]]')" = "['changed', 'added', 'removed']"
sw diff "$A" r-nope; expect_err "diff with an unknown release" 1 "r-nope.*not found"
sw diff r- "$A"; expect_err "diff with an ambiguous prefix" 1 "ambiguous"

# ---- stat cache ----------------------------------------------------------------------------
mkdir -p "$T/sc/sub"
for i in $(seq 1 20); do printf 'file %s\n' "$i" > "$T/sc/f$i.txt"; done
printf 'abcdef\n' > "$T/sc/sub/same-size.txt"
find "$T/sc" -type f -exec touch -d '1 minute ago' {} +
sw release create "$T/sc"; r1=$out
check "stat cache: the first run reads every file" test "$(files_read)" = 21
sw release create "$T/sc"; r2=$out
check "stat cache: an unchanged directory is released again with 0 files read" test "$(files_read)" = 0
check "stat cache: ...and the release is the same content" test "$(manifest "$r1" 'm["files"]')" = "$(manifest "$r2" 'm["files"]')"
printf 'file 7 changed\n' > "$T/sc/f7.txt"
touch -d '1 minute ago' "$T/sc/f7.txt"
sw release create "$T/sc"; r3=$out
check "stat cache: changing one file re-reads just that file" test "$(files_read)" = 1
check "stat cache: the changed file has its new blob" \
    test "$(manifest "$r3" '{f["path"]: f["blob"] for f in m["files"]}["f7.txt"]')" = "$(sha256sum < "$T/sc/f7.txt" | cut -d' ' -f1)"
# named by FNV-1a of the directory's real path (no OpenSSL set-up before the walk)
fnv() { python3 -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) % 2**64
print("%016x" % h)' "$1"; }
cache_file=$T/p/.slipway/cache/stat-$(fnv "$(realpath "$T/sc")")
check "stat cache: named by FNV-1a of the directory" test -f "$cache_file"
# one a slipway before named by SHA-256 is taken over, not read again
old_name=$T/p/.slipway/cache/stat-$(printf %s "$(realpath "$T/sc")" | sha256sum | cut -c1-16)
mv "$cache_file" "$old_name"
sw release create "$T/sc"
check "stat cache: one under its old name (SHA-256) is renamed and used: 0 files read" \
    eval '[ "$(files_read)" = 0 ] && [ -f "$cache_file" ] && [ ! -e "$old_name" ]'
stamp() { stat -c '%Y.%y %i' "$cache_file"; }
before=$(stamp)
sw release create "$T/sc"
check "stat cache: and then 0 again" test "$(files_read)" = 0
check "stat cache: a release that read no file leaves the cache as it was (not rewritten)" \
    test "$(stamp)" = "$before"
rm "$T/sc/f20.txt"
sw release create "$T/sc"
check "stat cache: a file gone, 0 read, the cache rewritten without it" \
    eval '[ "$(files_read)" = 0 ] && [ "$(stamp)" != "$before" ] && ! grep -q " f20.txt$" "$cache_file"'
printf 'file 20\n' > "$T/sc/f20.txt"
touch -d '1 minute ago' "$T/sc/f20.txt"
sw release create "$T/sc"
check "stat cache: the file back, read again" test "$(files_read)" = 1
# Same size, mtime put back: only the ctime tells.
f=$T/sc/sub/same-size.txt
mtime=$(stat -c %y "$f")
size_before=$(stat -c %s "$f")
sleep 0.02
printf 'ABCDEF\n' > "$f"
touch -d "$mtime" "$f"
check "(the trick keeps size and mtime)" test "$(stat -c %s "$f") $(stat -c %y "$f")" = "$size_before $mtime"
sw release create "$T/sc"; r5=$out
check "stat cache is not fooled by a restored mtime: the file is re-read" test "$(files_read)" = 1
check "stat cache is not fooled: the new release has the new blob" \
    test "$(manifest "$r5" '{f["path"]: f["blob"] for f in m["files"]}["sub/same-size.txt"]')" = "$(sha256sum < "$f" | cut -d' ' -f1)"
check "stat cache is not fooled: the new blob is stored" test -f "$DATA/blobs/sha256/$(sha256sum < "$f" | cut -c1-2)/$(sha256sum < "$f" | cut -d' ' -f1)"
# A file replaced by another one (new inode) with the same size and mtime.
g=$T/sc/f3.txt
mtime=$(stat -c %y "$g")
printf 'FILE 3\n' > "$T/sc/.new" && touch -d "$mtime" "$T/sc/.new" && mv "$T/sc/.new" "$g"
sw release create "$T/sc"; r6=$out
check "stat cache: a file replaced by rename is re-read" \
    test "$(manifest "$r6" '{f["path"]: f["blob"] for f in m["files"]}["f3.txt"]')" = "$(sha256sum < "$g" | cut -d' ' -f1)"
rm -rf "$T/p/.slipway/cache"
sw release create "$T/sc"
check "stat cache: a deleted cache just means every file is read" test "$(files_read)" = 21

done_testing

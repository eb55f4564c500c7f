#!/usr/bin/env bash
# actions/upload-artifact and actions/download-artifact run natively: job build
# uploads a directory (a body over the 8 MiB that is stored from memory, an
# executable, a hidden file left out, a pattern list with an exclusion) and job
# test (needs build) downloads it by name, all of them, and merged, and checks
# the content; uploading a name twice fails unless overwrite; `slipway run
# download` reads the artifacts back byte-identical with gh's placement rules;
# hostile manifests (a ../ path, a bad blob id, a name that is not its key's),
# a damaged body and a symbolic link planted in DIR are refused with a clear
# message and nothing is written outside DIR; gc keeps the bodies of live
# artifacts (run download still byte-identical), deletes artifacts past their
# retention and the bodies only they named, and deletes no body at all while a
# manifest is hostile; if-no-files-found: error fails the step, warn only warns.
. "$(dirname "$0")/lib.sh"

# ---- usage ----------------------------------------------------------------------------------
sw run --help
check "run --help lists download" grep -qE "^  download +download the artifacts of a run" <<<"$out"
sw run download --help
check "run download --help: usage and options" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway run download RUN" <<<"$out" && grep -q -- "--dir" <<<"$out" && grep -q -- "--name" <<<"$out"'
sw run download nope
expect_err "run download: a bad id is a usage error" 2 "'nope' is not a run id"

# ---- a project in a git repository -----------------------------------------------------------
mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows payload/sub
head -c $((9 * 1024 * 1024 + 123)) /dev/urandom > payload/sub/big.bin
printf 'hello\n' > payload/a.txt
printf 'skip me\n' > payload/skip.txt
printf '#!/bin/sh\necho tool\n' > payload/tool.sh && chmod +x payload/tool.sh
printf 'secret-ish\n' > payload/.env
cat > .github/workflows/art.yml <<'EOF'
name: art
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: up
        uses: actions/upload-artifact@v4
        with:
          name: dist
          path: payload/
      - run: echo "artifact-id=${{ steps.up.outputs.artifact-id }}"
      - uses: actions/upload-artifact@v3
        with:
          name: texts
          path: |
            payload/**/*.txt
            !payload/skip.txt
      - name: same name again
        id: again
        continue-on-error: true
        uses: actions/upload-artifact@v4
        with:
          name: dist
          path: payload/a.txt
      - name: same name with overwrite
        uses: actions/upload-artifact@v4
        with:
          name: texts
          path: |
            payload/**/*.txt
            !payload/skip.txt
          overwrite: true
          retention-days: 5
      - name: nothing, warned
        uses: actions/upload-artifact@v4
        with:
          name: none
          path: does-not-exist/**
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: dl
        uses: actions/download-artifact@v4
        with:
          name: dist
          path: got
      - run: |
          echo "download-path=${{ steps.dl.outputs.download-path }}"
          cmp got/sub/big.bin payload/sub/big.bin
          cmp got/a.txt payload/a.txt
          test -x got/tool.sh && ./got/tool.sh
          test ! -e got/.env && echo "hidden left out"
      - uses: actions/download-artifact@v4
        with:
          path: all
      - run: |
          cmp all/dist/a.txt payload/a.txt
          test "$(cd all/texts && find . -type f | sort | tr '\n' ' ')" = "./a.txt "
          echo "all: $(ls all | tr '\n' ' ')"
      - uses: actions/download-artifact@v4
        with:
          pattern: "*"
          merge-multiple: true
          path: merged
      - run: test -f merged/a.txt && test -f merged/sub/big.bin && echo merged ok
      - name: artifact-ids refused
        continue-on-error: true
        uses: actions/download-artifact@v4
        with:
          artifact-ids: "1"
          path: ids
      - run: test ! -e ids && echo "ids nothing written"
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init

sw workflow run art --wait
expect_rc "a run that uploads and downloads artifacts succeeds" 0
id=$(head -1 <<<"$out")
size=$(cat payload/sub/big.bin payload/a.txt payload/skip.txt payload/tool.sh | wc -c)
check "upload-artifact says what it uploaded (hidden files left out)" grep -q "Artifact dist has been successfully uploaded! Final size is $size bytes" <<<"$out"
check "outputs.artifact-id is set" grep -qE "artifact-id=[0-9a-f]{64}$" <<<"$out"
check "the test job downloaded it byte-identical, executable kept" eval 'grep -q "^\[test\] tool$" <<<"$out"'
check "hidden files are left out by default" grep -q "^\[test\] hidden left out" <<<"$out"
check "outputs.download-path is the absolute path" grep -qE "^\[test\] download-path=/.*/work/got$" <<<"$out"
check "no name: every artifact into path/NAME/" grep -q "^\[test\] all: dist texts $" <<<"$out"
check "merge-multiple: all into path" grep -q "^\[test\] merged ok" <<<"$out"
check "artifact-ids is refused, never widened to every artifact" eval 'grep -q "artifact-ids is not supported here" <<<"$out" && grep -q "^\[test\] ids nothing written" <<<"$out"'
check "uploading a name twice fails without overwrite" grep -q "an artifact with this name already exists on the workflow run: dist" <<<"$out"
check "no files found: a warning by default" grep -q "No files were found with the provided path: does-not-exist/\*\*. No artifacts will be uploaded." <<<"$out"
sw run view "$id" --json
check "the second upload of dist failed (continue-on-error)" test "$(json '[(s["name"], s["outcome"], s["conclusion"]) for s in j["jobs"][0]["steps"] if s["name"].startswith("same")]')" = "[('same name again', 'failure', 'success'), ('same name with overwrite', 'success', 'success')]"

# ---- slipway run download ------------------------------------------------------------------
sw run download "$id" -n dist -D "$T/one"
expect_rc "run download -n NAME" 0
check "one name: its files go into DIR itself, byte-identical" eval 'cmp "$T/one/sub/big.bin" payload/sub/big.bin && cmp "$T/one/a.txt" payload/a.txt && cmp "$T/one/tool.sh" payload/tool.sh'
check "the executable bit is kept" test -x "$T/one/tool.sh"
check "the artifact is exactly the upload" test "$(cd "$T/one" && find . -type f | sort | tr '\n' ' ')" = "./a.txt ./skip.txt ./sub/big.bin ./tool.sh "
mkdir -p "$T/cwd" && (cd "$T/cwd" && "$SLIPWAY" --store "$T/repo/.slipway/data" run download "$id" >/dev/null)
check "no -n: every artifact into ./NAME/ (DIR defaults to .)" eval 'cmp "$T/cwd/dist/sub/big.bin" payload/sub/big.bin && cmp "$T/cwd/texts/a.txt" payload/a.txt && ! test -e "$T/cwd/none"'
sw --json run download "$id" -n texts -n dist -D "$T/two"
check "two names: each into DIR/NAME/; --json lists them" eval '[ "$rc" = 0 ] && test "$(json "[(a[\"name\"], a[\"files\"]) for a in j[\"artifacts\"]]")" = "[('"'"'texts'"'"', 1), ('"'"'dist'"'"', 4)]" && cmp "$T/two/dist/a.txt" payload/a.txt && test -f "$T/two/texts/a.txt"'
sw run download "$id" -p 'te*' -D "$T/pat"
check "-p PATTERN: the matching artifacts, each into DIR/NAME/" eval '[ "$rc" = 0 ] && test -f "$T/pat/texts/a.txt" && ! test -e "$T/pat/dist"'
sw run download run-20200101-000000-000-000000 -D "$T/three"
expect_err "an unknown run: exit 1, said as such" 1 "run-20200101-000000-000-000000"
sw run download "$id" -n nope -D "$T/three"
expect_err "an unknown name: exit 1, named" 1 "Artifact not found for name: nope"
check "... and nothing written" test ! -e "$T/three"

# ---- hostile manifests --------------------------------------------------------------------
DATA=$T/repo/.slipway/data
A=$DATA/runs/$id/artifacts
blob=$(python3 -c "import json; print(json.load(open('$A/dist/manifest.json'))['files'][0]['blob'])")
# forge NAME PYTHON: writes the manifest of dist, renamed NAME and changed by PYTHON (m).
forge() {
    mkdir -p "$A/$1"
    python3 - "$A/dist/manifest.json" "$A/$1/manifest.json" "$1" "$2" <<'EOF'
import json, sys
src, dst, name, code = sys.argv[1:5]
m = json.load(open(src))
m["name"] = name
exec(code, {"m": m})
open(dst, "w").write(json.dumps(m))
EOF
}
forge evil 'm["files"][0]["path"] = "../../escape.txt"; m["files"].sort(key=lambda f: f["path"])'
mkdir -p "$T/dl/inner"
sw run download "$id" -n evil -D "$T/dl/inner"
expect_err "a ../ path in a manifest is refused, naming the key and the path" 1 "runs/$id/artifacts/evil/manifest.json: files\[0\]: the path \.\./\.\./escape\.txt is not a relative path in normal form"
check "... nothing written outside DIR (or in it)" eval '! test -e "$T/escape.txt" && ! test -e "$T/dl/escape.txt" && test -z "$(ls -A "$T/dl/inner")"'
sw run download "$id" -D "$T/dl/all"
expect_err "downloading all: one hostile manifest refuses the whole download" 1 "evil/manifest.json: files\[0\]"
check "... before anything is written" test ! -e "$T/dl/all"
rm -rf "$A/evil"
forge evil2 'm["files"][0]["blob"] = "../../../../etc/passwd"'
sw run download "$id" -n evil2 -D "$T/dl2"
expect_err "a bad blob id is refused" 1 "evil2/manifest.json: files\[0\]: blob is not 64 lowercase hex digits"
rm -rf "$A/evil2"
forge evil3 'm["name"] = "dist"'
sw run download "$id" -n evil3 -D "$T/dl3"
expect_err "a manifest whose name is not its key's is refused" 1 "evil3/manifest.json: name: dist is not the artifact stored under this key"
rm -rf "$A/evil3"
forge evil4 'm["files"][1]["size"] += 1; m["bytes"] += 1'
sw run download "$id" -n evil4 -D "$T/dl4"
expect_err "a size that is not the body's is refused" 1 "artifact evil4: .*: blob [0-9a-f]{64} is not [0-9]+ bytes long"
check "... and the partial file is not left behind" eval '! ls -A "$T/dl4" "$T/dl4/sub" 2>/dev/null | grep -q slipway-download'
rm -rf "$A/evil4"

# a symbolic link planted where an artifact's directory goes is never followed
mkdir -p "$T/outside" "$T/dl5"
ln -s "$T/outside" "$T/dl5/dist"
sw run download "$id" -n dist -n texts -D "$T/dl5"
expect_err "a symbolic link in DIR is not written through" 1 "dl5/dist: not a directory \(or a symbolic link\): refusing to write through it"
check "... nothing written outside DIR" test -z "$(ls -A "$T/outside")"
mkdir -p "$T/dl6/sub"
ln -s "$T/outside/x" "$T/dl6/a.txt"
sw run download "$id" -n dist -D "$T/dl6"
check "a link where a file goes is replaced, not followed" eval '[ "$rc" = 0 ] && ! test -L "$T/dl6/a.txt" && cmp "$T/dl6/a.txt" payload/a.txt && ! test -e "$T/outside/x"'

# a damaged body: refused, never left as the file
bpath=$DATA/blobs/sha256/${blob:0:2}/$blob
cp "$bpath" "$T/blob.orig"
chmod u+w "$bpath" && printf 'HELLO\n' > "$bpath"
sw run download "$id" -n dist -D "$T/dl7"
expect_err "a body that does not hash to its blob is refused" 1 "blob $blob is damaged \(its bytes hash to [0-9a-f]{64}\)"
check "... and not written" test ! -e "$T/dl7/a.txt"
cp "$T/blob.orig" "$bpath"

# ---- gc: artifact bodies are kept, expired artifacts deleted, hostile manifests delete nothing -----
# put_blob BODY: stores BODY as a blob (as the fs store keeps one); prints its id.
put_blob() {
    local hex; hex=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)
    mkdir -p "$DATA/blobs/sha256/${hex:0:2}" && printf '%s' "$1" > "$DATA/blobs/sha256/${hex:0:2}/$hex"
    echo "$hex"
}
bpath_of() { echo "$DATA/blobs/sha256/${1:0:2}/$1"; }
dist_ok() { cmp "$1/sub/big.bin" payload/sub/big.bin && cmp "$1/a.txt" payload/a.txt && cmp "$1/tool.sh" payload/tool.sh && test -x "$1/tool.sh"; }
orphan=$(put_blob 'nothing names me')
sw gc --apply --grace 0s
expect_rc "gc --apply --grace 0s with artifacts in the store" 0
check "gc kept both artifacts (nothing past its retention)" grep -q "kept [0-9]* releases and 2 artifacts" <<<"$out"
check "gc deleted the body nothing names" test ! -e "$(bpath_of "$orphan")"
sw run download "$id" -n dist -D "$T/gc1"
check "after gc, run download still returns the artifact byte-identical" eval '[ "$rc" = 0 ] && dist_ok "$T/gc1"'
sw run download "$id" -n texts -D "$T/gc1t"
check "... and the other one" eval '[ "$rc" = 0 ] && cmp "$T/gc1t/a.txt" payload/a.txt'

# past retention: texts (retention-days: 5, its created_at moved back) and a
# forged "old" with a body of its own; "twin", a copy of dist past its
# retention, names dist's bodies, which dist still needs
python3 - "$A/texts/manifest.json" <<'EOF2'
import json, sys
m = json.load(open(sys.argv[1])); assert m["retention_days"] == 5
m["created_at"] = "2026-01-01T00:00:00.000Z"
open(sys.argv[1], "w").write(json.dumps(m))
EOF2
old_hex=$(put_blob 'only in old')
forge old "m['files'] = [{'path': 'old.txt', 'size': 11, 'mode': 420, 'blob': '$old_hex'}]; m['bytes'] = 11; m['created_at'] = '2026-01-01T00:00:00Z'; m['retention_days'] = 1"
forge twin "m['created_at'] = '2026-01-01T00:00:00Z'"
sw run download "$id" -n old -D "$T/gc-old"
check "(the forged old artifact is a valid one)" eval '[ "$rc" = 0 ] && test "$(cat "$T/gc-old/old.txt")" = "only in old"'
before=$(snapshot "$DATA")
sw gc --grace 0s
expect_rc "gc dry run with expired artifacts" 0
check "gc dry run lists the expired artifacts" test "$(grep '^would delete artifact' <<<"$out" | awk '{print $4}' | sort | tr '\n' ' ')" = "old texts twin "
check "... saying the retention" grep -q "^would delete artifact texts of run $id (past its retention of 5 days)" <<<"$out"
sw --json gc --grace 0s
check "gc --json dry run: the artifacts, their runs, and the one body only old names" test "$(json 'sorted((a["run"], a["name"]) for a in j["artifacts"]), j["artifacts_kept"], j["blobs"], j["applied"]')" = "[('$id', 'old'), ('$id', 'texts'), ('$id', 'twin')] 1 1 False"
check "a dry run deletes nothing" test "$before" = "$(snapshot "$DATA")"
sw gc --apply --grace 0s
expect_rc "gc --apply deletes expired artifacts" 0
check "... their manifests are gone" eval 'test ! -e "$A/texts/manifest.json" && test ! -e "$A/old/manifest.json" && test ! -e "$A/twin/manifest.json"'
check "... and the body only an expired artifact named" test ! -e "$(bpath_of "$old_hex")"
sw run download "$id" -n texts -D "$T/gc2t"
expect_err "an expired artifact can no longer be downloaded" 1 "Artifact not found for name: texts"
sw run download "$id" -n dist -D "$T/gc2"
check "dist (within retention; its bodies shared with texts and twin) is still byte-identical" eval '[ "$rc" = 0 ] && dist_ok "$T/gc2"'

# hostile manifests: a manifest that does not validate and a key that is no
# manifest are kept and named, and no blob at all is deleted while they are
# there (the orphan would be); the good artifact is still read and kept
orphan=$(put_blob 'nothing names me either')
forge evil 'm["files"][0]["path"] = "../../escape.txt"; m["files"].sort(key=lambda f: f["path"])'
forge evil2 'm["format"] = 2; m["files"] = []; m["bytes"] = 0'
printf 'junk' > "$A/junk"
blobs_before=$(find "$DATA/blobs" -type f | sort)
sw gc --apply --grace 0s
check "gc with hostile manifests: exit 1, each named on stderr" eval 'test "$rc" = 1 && grep -q "runs/$id/artifacts/evil/manifest.json: files\[0\]: the path ../../escape.txt" <<<"$errout" && grep -q "runs/$id/artifacts/evil2/manifest.json: format" <<<"$errout" && grep -q "runs/$id/artifacts/junk: not the key of an artifact" <<<"$errout"'
check "... saying no body is deleted" test "$(grep -c "(kept; no body deleted while a manifest is unreadable)" <<<"$errout")" = 3
check "... and deleting none (not even the orphan)" test "$(find "$DATA/blobs" -type f | sort)" = "$blobs_before"
check "... the hostile documents are kept" eval 'test -f "$A/evil/manifest.json" && test -f "$A/evil2/manifest.json" && test -f "$A/junk"'
rm -rf "$A/evil" "$A/evil2" "$A/junk"
sw gc --apply --grace 0s
check "once they are gone, gc deletes the orphan again" eval '[ "$rc" = 0 ] && test ! -e "$(bpath_of "$orphan")"'
sw run download "$id" -n dist -D "$T/gc3"
check "dist is byte-identical after every gc" eval '[ "$rc" = 0 ] && dist_ok "$T/gc3"'
check "with the default grace (1h) a fresh orphan stays" eval 'orphan=$(put_blob "fresh"); "$SLIPWAY" gc --apply >/dev/null 2>&1 && test -f "$(bpath_of "$orphan")"'

# ---- if-no-files-found: error, bad names --------------------------------------------------
cat > .github/workflows/none.yml <<'EOF'
on: push
jobs:
  up:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/upload-artifact@v4
        with:
          path: nothing/here
          if-no-files-found: error
      - run: echo after
EOF
cat > .github/workflows/badname.yml <<'EOF'
on: push
jobs:
  up:
    runs-on: ubuntu-latest
    steps:
      - run: echo x > f
      - uses: actions/upload-artifact@v4
        with:
          name: "a/b"
          path: f
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm more
sw workflow run none --wait
expect_rc "if-no-files-found: error fails the run" 1
check "... with upload-artifact's message" grep -q "No files were found with the provided path: nothing/here. No artifacts will be uploaded." <<<"$out"
none=$(head -1 <<<"$out")
sw run view "$none" --json
check "... the step failed and the next was skipped" test "$(json '[s["conclusion"] for s in j["jobs"][0]["steps"]]')" = "['failure', 'skipped']"
sw run download "$none" -D "$T/dl8"
expect_err "run download of a run without artifacts: exit 1" 1 "has no artifacts"
sw workflow run badname --wait
expect_rc "an artifact name with '/' fails the step" 1
check "... saying which character" grep -q "The artifact name is not valid: a/b. Contains the following character: Forward slash /" <<<"$out"

done_testing

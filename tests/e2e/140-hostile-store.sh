#!/usr/bin/env bash
# Everything read from the store is hostile: a shared bucket has many writers.
# Manifests, environment state and audit events written by someone else are
# refused field by field — a blob id that climbs out of the cache, a content
# type that forges a header, unsorted or duplicate paths, a state naming a
# release by a path, an event carrying terminal escapes — and the audit log
# detects a removed newest event and a removed head.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

new_project
DATA=$T/p/.slipway/data
ENVS=$T/p/.slipway/environments
P=$(free_port)
cat > "$ENVS/dev.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P
EOF
# qa: R1 is never live there, so deploying it there reads its manifest (deploying the
# live release reads only the state: it changes nothing).
printf 'strategy: direct\n' > "$ENVS/qa.yml"
sw release create "$T/site" -q; R1=$out
sw deploy "$R1" --env dev -q; expect_rc "deploy the release" 0
M=$DATA/releases/$R1.json
cp "$M" "$T/manifest.orig"

# edit_json FILE NAME PYTHON: rewrites the JSON document FILE with the parsed
# value (bound to NAME) changed by PYTHON.
edit_json() {
    python3 - "$@" <<'EOF'
import json, sys
p, name, code = sys.argv[1:4]
env = {name: json.load(open(p))}
exec(code, env)
open(p, "w").write(json.dumps(env[name]))
EOF
}
edit_manifest() { edit_json "$M" m "$1"; }
restore() { cp "$T/manifest.orig" "$M"; }

# ---- manifests ------------------------------------------------------------------------
# The large-body path joined the cache directory with the blob field: 64
# characters of "./" and "../" reach a file outside the store of the same size.
CACHE=$T/p/.slipway/cache/blobs
mkdir -p "$CACHE" # as after any large body was served once: the path resolves through it
# Larger than the 64 KiB kept in memory: only large bodies come from the cache.
{ printf 'TOP SECRET: the edge must never send this\n'; head -c 70000 /dev/zero; } > "$T/secret.txt"
size=$(stat -c %s "$T/secret.txt")
trav=$(python3 -c '
import os, sys
rel = os.path.relpath(sys.argv[1], sys.argv[2])
pad = 64 - len(rel)
assert pad >= 0 and pad % 2 == 0, rel
print("./" * (pad // 2) + rel)' "$T/secret.txt" "$CACHE")
check "(the traversal blob id is 64 characters)" test "${#trav}" = 64
edit_manifest "
for f in m['files']:
    if f['path'] == 'img/logo.png':
        f['blob'] = '$trav'; f['size'] = $size"
sw releases
expect_err "a blob id that is a path: releases names the manifest and the field" 1 "releases/$R1.json: files\[[0-9]+\]: blob is not 64 lowercase hex digits"
sw status
check "status still works (it does not read manifests)" test "$rc" = 0
# One corrupt manifest among good ones: releases lists the others, gc keeps it
# and deletes no body (it cannot say which are its own).
mkdir -p "$T/other"; printf 'other\n' > "$T/other/index.html"
sw release create "$T/other" -q; ROTHER=$out
sw releases
check "releases with one corrupt manifest: exit 1, the others still listed" eval 'test "$rc" = 1 && grep -q "^$ROTHER " <<<"$out"'
check "releases: one stderr line names the bad manifest" test "$(grep -c "releases/$R1.json" <<<"$errout")" = 1
before=$(find "$DATA/blobs" -type f | sort)
sw gc --apply --grace 0s
check "gc with a corrupt manifest: exit 1 naming it" eval 'test "$rc" = 1 && grep -q "releases/$R1.json: files" <<<"$errout"'
check "gc kept the corrupt manifest" test -f "$M"
check "gc deleted no body while it could not account for one manifest" test "$(find "$DATA/blobs" -type f | sort)" = "$before"
spawn "$SLIPWAY" serve --workers 1 >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve answers health" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/_slipway/health"
body=$("${C[@]}" "http://127.0.0.1:$P/img/logo.png")
check "the file outside the store is never sent" eval '! grep -q "TOP SECRET" <<<"$body"'
code=$("${C[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/img/logo.png")
check "the environment answers 503 while its release is refused ($code)" test "$code" = 503
ready=$("${C[@]}" "http://127.0.0.1:$P/_slipway/ready")
check "ready on the public listener says not ready" grep -q "not ready" <<<"$ready"
kill "$SERVE"; wait "$SERVE" 2>/dev/null
restore

edit_manifest "m['files'][0]['type'] = 'text/html\r\nSet-Cookie: session=stolen'"
sw deploy "$R1" --env qa
expect_err "a content type with CR LF (header injection) is refused" 1 "type or cache is not a printable ASCII header value"
restore
edit_manifest "m['files'][1]['cache'] = 'public\nX-Evil: 1'"
sw deploy "$R1" --env qa
expect_err "a cache policy with LF is refused" 1 "type or cache"
restore
edit_manifest "m['files'].reverse()"
sw deploy "$R1" --env qa
expect_err "unsorted paths are refused" 1 "paths are not sorted and unique"
restore
edit_manifest "m['files'].append(dict(m['files'][-1]))"
sw deploy "$R1" --env qa
expect_err "a duplicate path is refused" 1 "paths are not sorted and unique"
restore
for bad in '../etc/passwd' '/abs' 'a//b' 'a/./b' 'a/' 'x\\y' $'tab\there'; do
    edit_manifest "m['files'][0]['path'] = '''$bad'''"
    sw deploy "$R1" --env qa
    expect_err "path '$(printf '%q' "$bad")' is refused" 1 "path is not a normal relative path"
    restore
done
edit_manifest "m['files'][0]['blob'] = m['files'][0]['blob'].upper()"
sw deploy "$R1" --env qa
expect_err "an uppercase blob id is refused" 1 "blob is not 64 lowercase hex"
restore
edit_manifest "m['files'][0]['size'] = -1"
sw deploy "$R1" --env qa
expect_err "a negative size is refused" 1 "size is out of range"
restore
edit_manifest "m['id'] = 'r-someone-else'"
sw deploy "$R1" --env qa
expect_err "a manifest whose id is another release's is refused" 1 "the id inside is not this release's id"
restore
edit_manifest "m['message'] = 'hi\x1b]0;owned\x07'"
sw deploy "$R1" --env qa
expect_err "a message with terminal escapes is refused" 1 "message or source"
restore
printf '{"id":"%s","id":"x","created":"2026-01-01T00:00:00Z","files":[]}' "$R1" > "$M"
sw deploy "$R1" --env qa
expect_err "a manifest with a duplicate key is refused" 1 "duplicate"
restore
sw deploy "$R1" --env qa; expect_rc "the restored manifest deploys again" 0

# ---- environment state ----------------------------------------------------------------------
S=$DATA/envs/dev/state.json
cp "$S" "$T/state.orig"
edit_state() { edit_json "$S" s "$1"; }
edit_state "s['live_release'] = '../../../etc/passwd'"
sw status
expect_err "a state naming a release by a path is refused" 1 "envs/dev/state.json: a field has the wrong form"
cp "$T/state.orig" "$S"
edit_state "s['strategy'] = 'yolo'"
sw status
expect_err "an unknown strategy is refused" 1 "strategy is not direct or blue-green"
cp "$T/state.orig" "$S"
edit_state "s['live_slot'] = 'blue'"
sw status
expect_err "a direct state with a live slot breaks an invariant" 1 "a direct environment has no slots"
cp "$T/state.orig" "$S"
edit_state "s['last_change']['actor'] = 'eve\nnot ok - forged'"
sw status
expect_err "a last change whose actor holds a line break is refused" 1 "last_change holds a field of the wrong form"
cp "$T/state.orig" "$S"
edit_state "s['env'] = 'prod'"
sw status
expect_err "a state that names another environment is refused" 1 "names another environment"
cp "$T/state.orig" "$S"
sw status; expect_rc "the restored state reads again" 0

# ---- actors and messages at write time --------------------------------------------------------
printf 'strategy: direct\n' > "$ENVS/qa2.yml"
SLIPWAY_ACTOR=$'x\rEVIL' "$SLIPWAY" deploy "$R1" --env qa2 2>"$T/actor.err" >/dev/null
check "an actor with a CR is refused before anything changes" grep -q "actor name must be printable" "$T/actor.err"

# ---- the audit log ---------------------------------------------------------------------------
sw release create "$T/site" -q -m two; R2=$out
sw deploy "$R2" --env dev -q
sw history dev --verify; expect_rc "the log verifies" 0
EV=$DATA/events
cp -a "$EV" "$T/events.orig"
last=$(ls "$EV" | grep '^[0-9]*\.json$' | tail -1)
rm "$EV/$last"
sw history dev --verify
expect_err "a removed newest event is detected" 1 "events/head.json names event [0-9]+ but the log ends at [0-9]+: events were removed"
rm -rf "$EV"; cp -a "$T/events.orig" "$EV"
rm "$EV/head.json"
sw history dev --verify
expect_err "a removed head is detected" 1 "events/head.json is missing"
rm -rf "$EV"; cp -a "$T/events.orig" "$EV"
rm "$EV"/[0-9]*.json
sw history dev --verify
expect_err "every event removed: the head still says so" 1 "events were removed"
rm -rf "$EV"; cp -a "$T/events.orig" "$EV"
python3 - "$EV/$last" <<'EOF'
import json, sys
p = sys.argv[1]
e = json.load(open(p))
e["actor"] = "mallory\u001b[2K"
open(p, "w").write(json.dumps(e))
EOF
sw history dev
expect_err "an event whose actor holds an escape is refused by history" 1 "from, to, actor or message has the wrong form"
rm -rf "$EV"; cp -a "$T/events.orig" "$EV"
sw history dev --verify; expect_rc "the restored log verifies" 0
sw deploy "$R1" --env dev -q; expect_rc "a change after all that appends" 0
sw history dev --verify; expect_rc "and the log still verifies" 0
check "serve wrote nothing alarming to stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

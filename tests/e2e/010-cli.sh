#!/usr/bin/env bash
# The CLI's conventions: --help everywhere, exit codes, global options in any
# position, project discovery, unknown commands and options.
. "$(dirname "$0")/lib.sh"

for c in init release releases diff deploy switch rollback status history gc; do
    sw "$c" --help
    if [ "$rc" = 0 ] && printf '%s' "$out" | grep -q "usage: slipway $c"; then ok "$c --help"; else fail "$c --help (exit $rc)"; fi
done
sw --help; expect_rc "slipway --help exits 0" 0
sw help deploy; check "slipway help deploy shows deploy usage" grep -q "usage: slipway deploy" <<<"$out"
sw frobnicate; expect_rc "unknown command is a usage error" 2
sw status --bogus; expect_rc "unknown option is a usage error" 2
sw deploy; expect_rc "deploy without arguments is a usage error" 2
sw; expect_rc "no command is a usage error" 2

sw status; expect_err "outside a project: one clear line" 1 "not in a slipway project"

new_project
sw status --json; expect_rc "status in a fresh project" 0
# libcurl is loaded when an s3 store is opened (src/base/curl.c), never linked: a command on
# an fs store does not load its 25 libraries.
check "status on an fs store never loads libcurl" \
    eval '! LD_DEBUG=files "$SLIPWAY" status 2>&1 >/dev/null | grep -q "file=libcurl"'
check "the binary does not link libcurl (loaded when first needed)" eval '! ldd "$SLIPWAY" | grep -q libcurl'
# libcrypto likewise (src/base/crypto.c): status hashes nothing, so it never loads it.
check "status on an fs store never loads libcrypto" \
    eval '! LD_DEBUG=files "$SLIPWAY" status 2>&1 >/dev/null | grep -q "file=libcrypto"'
check "the binary does not link libcrypto (loaded when first needed)" \
    eval '! ldd "$SLIPWAY" | grep -q libcrypto'
check "fresh project has dev and staging" test "$(json '",".join(e["name"] for e in j["environments"])')" = "dev,staging"
check "fresh dev: nothing live, generation 0" test "$(json 'j["environments"][0]["live_release"], j["environments"][0]["generation"]')" = "None 0"
check "direct environment has empty slots" test "$(json 'j["environments"][0]["slots"]')" = "{}"

# Project discovery from a subdirectory, and --project from elsewhere.
mkdir -p "$T/p/deep/er"; cd "$T/p/deep/er"
sw status --json; expect_rc "project found from a subdirectory" 0
cd "$T"
sw --project "$T/p" status --json; expect_rc "--project before the command" 0
sw status --json --project "$T/p"; expect_rc "--project after the command" 0
sw status --project "$T/nope"; expect_err "--project of a missing dir" 1 "nope"
cd "$T/p"

# --store and SLIPWAY_STORE override the default store.
sw release create "$T/site" --store "file://$T/other" -q; expect_rc "release into --store file://" 0
check "--store file:// was used" test -d "$T/other/releases"
id=$out
SLIPWAY_STORE="$T/other" "$SLIPWAY" releases --json > "$T/list.json"
check "SLIPWAY_STORE is honoured" grep -q "$id" "$T/list.json"
sw releases --json; check "default store does not have it" test "$(json 'len(j["releases"])')" = 0
sw releases --store "s3x://x"; expect_err "unsupported store scheme" 1 "unsupported scheme"

# Only init and the commands that write create a store: a mistyped --store on a
# command that only reads is one line naming the path, and creates nothing.
check "init created the project's store" test -d "$T/p/.slipway/data"
for c in status releases "history dev" "diff A B" gc serve; do
    # (bounded: a serve that found a store would run until stopped)
    out=$(timeout 20 "$SLIPWAY" $c --store "$T/typo/store" 2>"$T/.stderr"); rc=$?; errout=$(cat "$T/.stderr")
    expect_err "$c with a mistyped --store: no store there" 1 "^slipway: no store at $T/typo/store \(from --store"
done
check "a mistyped --store created nothing" test ! -e "$T/typo"
SLIPWAY_STORE=$T/typo/env "$SLIPWAY" status 2>"$T/.stderr"; rc=$?; errout=$(cat "$T/.stderr")
expect_err "a mistyped \$SLIPWAY_STORE" 1 "^slipway: no store at $T/typo/env \(from \\\$SLIPWAY_STORE"
sw releases --store "file://$T/typo/url"; expect_err "a mistyped file:// store" 1 "no store at file://$T/typo/url"
check "nor did \$SLIPWAY_STORE or file://" test ! -e "$T/typo"
sw gc --apply --grace 0s --store "$T/typo/gc"; expect_rc "gc --apply may create a store" 0
check "gc --apply created it" test -d "$T/typo/gc"
sw rollback dev --store "$T/typo/rb"; expect_err "rollback (a writer) may create one; nothing to roll back" 1 "no previous release"
mv "$T/p/.slipway/data" "$T/p/.slipway/data.away"
sw status; expect_err "a project whose store is gone: one line pointing to init" 1 "^slipway: no store at $T/p/\.slipway/data .*'slipway init $T/p'"
check "status did not recreate the project's store" test ! -e "$T/p/.slipway/data"
sw init "$T/p"; expect_rc "init again" 0
check "init again recreates the store and says so" eval 'test -d "$T/p/.slipway/data" && grep -q "^initialised" <<<"$out"'
rm -rf "$T/p/.slipway/data"; mv "$T/p/.slipway/data.away" "$T/p/.slipway/data"

# init twice is harmless
sw init "$T/p"; expect_rc "init twice" 0
check "init twice says so" grep -q "already initialised" <<<"$out"
check ".gitignore keeps data out" grep -qx "data/" "$T/p/.slipway/.gitignore"

# init honours the umask, as git init does: directories 0777 and files 0666 less
# the umask, and nothing it creates (the store included) more open than the umask.
for m in 022 002 077; do
    (umask $m && "$SLIPWAY" init -q "$T/um$m") || fail "init under umask $m"
    d=$(printf '%o' $((0777 & ~8#$m))) f=$(printf '%o' $((0666 & ~8#$m)))
    got=$(cd "$T/um$m/.slipway" && stat -c %a . environments pipelines environments/dev.yml \
        environments/staging.yml .gitignore pipelines/.keep | tr '\n' ' ')
    check "init under umask $m: directories $d, files $f" test "$got" = "$d $d $d $f $f $f $f "
    wider=$(find "$T/um$m" -perm /$m -printf '%p %m; ' | sed "s|$T/||g")
    check "init under umask $m: nothing more open than the umask${wider:+ ($wider)}" test -z "$wider"
done
# ---- nothing printed can be forged by input ---------------------------------------------
# Names, messages and ids come from users and from a shared store: printed, their
# control characters are escaped, so none can add a line ("not ok - ..." would
# even fool this harness), rewrite one (CR) or drive the terminal (ESC).
# clean DESC TEXT: TEXT has no line starting with "not ok", no CR, no ESC.
clean() {
    if grep -q '^not ok' <<<"$2" || [[ $2 == *$'\r'* || $2 == *$'\e'* ]]; then
        fail "$1: forged output"
    else
        ok "$1"
    fi
}
# Line breaks are text a message may hold; every other control character
# (ESC, CR) is refused when written, before anything is stored.
FORGED=$'line1\nnot ok - forged'
mkdir -p "$T/fsite"; echo forged > "$T/fsite/a.txt"
sw release create "$T/fsite" -q -m $'a\e[2Jb'
expect_err "a release message with ESC is refused, escaped in the error" 1 "control characters"
sw release create "$T/fsite" -q -m "$FORGED"; FR=$out
sw releases; clean "releases: a message with a newline" "$out"
check "releases: the message is shown escaped on its one line" grep -qF "$FR"'  ' <<<"$(grep -F 'line1\nnot ok - forged' <<<"$out")"
out=$(SLIPWAY_ACTOR=$'x\rEVIL' "$SLIPWAY" deploy "$FR" --env dev -m "$FORGED" 2>&1); rc=$?
clean "deploy output" "$out"
check "an actor with a CR is refused (exit 1)" test "$rc" = 1
out=$(SLIPWAY_ACTOR='x EVIL' "$SLIPWAY" deploy "$FR" --env dev -m "$FORGED" 2>&1); clean "deploy output" "$out"
sw history dev
clean "history: a message with a newline" "$out"
check "history: one line per event" test "$(grep -c '' <<<"$out")" = 1
check "history: actor shown" grep -qF 'x EVIL' <<<"$out"
check "history: the message escaped" grep -qF 'line1\nnot ok - forged' <<<"$out"
sw history dev --json
check "history --json keeps the exact actor and message" \
    test "$(json 'j["events"][0]["actor"] == "x EVIL" and j["events"][0]["message"] == "line1\nnot ok - forged"')" = True
sw status; clean "status" "$out"
sw deploy $'r-\nnot ok - forged' --env dev
expect_err "an error line naming a forged release id" 1 'release r-\\nnot ok - forged not found'
sw $'dep\nnot ok - forged'; expect_err "an unknown command with a newline" 2 "^slipway: 'dep\\\\nnot ok - forged' is not a command"
sw status $'--x\rnot ok'; expect_err "an unknown option with a CR" 2 "unknown option '--x\\\\rnot ok'"
sw status $'dev\e]0;title\a'; expect_err "an environment name with escape sequences" 1 "invalid environment name 'dev\\\\x1b\]0;title\\\\x07'"
# A state document in a shared store is untrusted too: a release id with a newline.
python3 - "$T/p/.slipway/data/envs/dev/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["previous_release"] = "r-1\nnot ok - forged"; json.dump(s, open(sys.argv[1], "w"))
PY
sw status dev; clean "status of a tampered state" "$out$errout"
done_testing

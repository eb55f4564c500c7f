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

# init twice is harmless
sw init "$T/p"; expect_rc "init twice" 0
check "init twice says so" grep -q "already initialised" <<<"$out"
check ".gitignore keeps data out" grep -qx "data/" "$T/p/.slipway/.gitignore"
done_testing

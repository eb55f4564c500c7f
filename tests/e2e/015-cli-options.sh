#!/usr/bin/env bash
# Options are declared as one table per command (src/cmd/cli.c): every form an
# option takes, --help generated from the tables, usage errors on one line
# naming what was wrong and pointing to --help, and unknown commands.
. "$(dirname "$0")/lib.sh"

# has DESC PATTERN: the last stdout has a line matching PATTERN (ERE).
has() { check "$1" grep -qE -- "$2" <<<"$out"; }

# ---- --help, generated from the tables -------------------------------------------------
for c in init release releases diff deploy switch rollback status history gc serve; do
    sw "$c" --help
    check "$c --help: exit 0, usage line, global options" eval \
        '[ "$rc" = 0 ] && grep -q "^usage: slipway $c" <<<"$out" && grep -q "^Global options (see .slipway --help.): --project DIR, --store URL, --json, --quiet\.$" <<<"$out"'
done
sw deploy --help
has "deploy --help lists --env with its value name" '^  -e, --env ENV +the environment'
has "deploy --help lists --switch" '^  -s, --switch +blue-green'
has "deploy --help lists --message" '^  -m, --message M +a note'
sw gc --help; has "gc --help lists --grace DURATION" '^  --grace DURATION +minimum age'
sw history --help; has "history --help lists --verify" '^  --verify +also check'
sw rollback --help; has "rollback --help lists --to RELEASE" '^  -t, --to RELEASE +the release'
sw serve --help
for o in "--admin ADDR" "--access-log PATH" "--workers N" "--header-timeout D" "--idle-timeout D" \
    "--max-connections N" "--poll D" "--cache-dir DIR"; do
    has "serve --help lists $o" "^  $o +"
done
sw --help
has "slipway --help lists the global options" '^ +--store URL +the store'
has "slipway --help lists -q, --quiet" '^  -q, --quiet +print only'
has "slipway --help lists the commands" '^  deploy +deploy a directory'
top=$out
sw -h; check "slipway -h is slipway --help" test "$out" = "$top"
sw help; check "slipway help is slipway --help" test "$out" = "$top"
sw gc --help; gch=$out
sw help gc; check "slipway help gc is slipway gc --help" test "$out" = "$gch" -a "$rc" = 0
sw gc -h; check "gc -h is gc --help" test "$out" = "$gch"
sw --json gc --help; check "global options before the command, then --help" test "$out" = "$gch"

# ---- usage errors: one line, naming the problem, pointing to --help, exit 2 -------------
sw status --bogus
expect_err "an unknown option: one line naming it" 2 "^slipway status: unknown option '--bogus'; see 'slipway status --help'$"
sw deploy R --swich --env dev
expect_err "a mistyped option: the one meant is suggested" 2 \
    "^slipway deploy: unknown option '--swich'; did you mean '--switch'\? See 'slipway deploy --help'\.$"
sw history dev -x; expect_err "an unknown short option" 2 "^slipway history: unknown option '-x'; see 'slipway history --help'$"
sw --bogus status; expect_err "an unknown option before the command" 2 "^slipway: unknown option '--bogus'; see 'slipway --help'$"
sw deploy R --env; expect_err "an option missing its value" 2 "^slipway deploy: option '--env' needs a value \(--env ENV\)"
sw deploy R -e; expect_err "a short option missing its value" 2 "option '-e' needs a value"
sw history dev --verify=yes; expect_err "a flag given a value" 2 "^slipway history: option '--verify' takes no value"
sw deploy R --s --env dev; expect_err "an ambiguous abbreviation names the candidates" 2 "option '--s' is ambiguous \(--switch, --store\)"
sw diff onlyone
expect_err "too few arguments, counted against the usage line" 2 "^slipway diff: expected 2 arguments, got 1 \(usage: slipway diff A B\); see 'slipway diff --help'$"
sw status dev staging; expect_err "too many arguments" 2 "^slipway status: unexpected argument 'staging' \(usage: slipway status \[ENV\]\)"
sw releases extra; expect_err "an argument to a command that takes none" 2 "unexpected argument 'extra'"
sw deploy; expect_err "deploy without arguments" 2 "^slipway deploy: expected 1 argument, got 0"
sw deploy R; expect_err "deploy without --env" 2 "^slipway deploy: missing --env ENV; see 'slipway deploy --help'$"
sw gc --grace 5x; expect_err "a bad duration" 2 "^slipway gc: --grace: expected a duration .*got '5x'"
sw serve --workers 0; expect_err "a number out of range" 2 "^slipway serve: --workers: expected 1\.\.64, got '0'"
sw serve --poll 0s; expect_err "a duration that must be positive" 2 "^slipway serve: --poll: expected a duration"
sw release; expect_err "release without a subcommand" 2 "^slipway release: expected at least 1 argument"
sw release make x; expect_err "release with an unknown subcommand" 2 "unknown subcommand 'make'"

# ---- unknown commands ------------------------------------------------------------------------
sw deplyo
expect_err "a mistyped command: one line with a suggestion" 2 "^slipway: 'deplyo' is not a command; did you mean 'deploy'\? See 'slipway --help'\.$"
sw frobnicate; expect_err "an unknown command: one line" 2 "^slipway: 'frobnicate' is not a command; see 'slipway --help'$"
sw help frobnicate; expect_err "help for an unknown command" 2 "'frobnicate' is not a command"
sw frobnicate --help; expect_err "an unknown command asked for help: one line" 2 "^slipway: 'frobnicate' is not a command; see 'slipway --help'$"
sw frobnicate a b --json; expect_err "an unknown command with arguments: one line" 2 "^slipway: 'frobnicate' is not a command; see 'slipway --help'$"
sw release frobnicate
expect_err "an unknown subcommand: one line with the pointer" 2 \
    "^slipway release: unknown subcommand 'frobnicate' \(expected: create\); see 'slipway release --help'$"
sw deploy --frobnicate
expect_err "an unknown option of a command, before its arguments: one line with the pointer" 2 \
    "^slipway deploy: unknown option '--frobnicate'; see 'slipway deploy --help'$"
sw deploy --frobnicate=1 R --env dev
expect_err "an unknown option given a value: one line" 2 "^slipway deploy: unknown option '--frobnicate'; see 'slipway deploy --help'$"
sw --json stauts; expect_err "a mistyped command after a global option" 2 "did you mean 'status'"

# ---- the forms an option takes ----------------------------------------------------------------
new_project
DATA=$T/p/.slipway/data
state() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$DATA/envs/$1/state.json"; }
mkdir -p "$T/s2" "$T/s3"; echo two > "$T/s2/a.txt"; echo three > "$T/s3/a.txt"
sw release create "$T/site" -q; R1=$out
sw release create -q --message=second "$T/s2"; R2=$out
sw releases --json; check "--message=M before the operand" test "$(json '[r["message"] for r in j["releases"] if r["id"] == "'"$R2"'"][0]')" = second
sw release create "$T/s3" -mthird -q; R3=$out
sw releases --json; check "-mM (value in the same word)" test "$(json '[r["message"] for r in j["releases"] if r["id"] == "'"$R3"'"][0]')" = third
sw deploy --env=dev "$R1" -q; expect_rc "--env=dev" 0
check "--env=dev deployed" test "$(state dev 's["live_release"]')" = "$R1"
sw -q deploy -edev "$R2"; expect_rc "-edev, with a global option before the command" 0
check "-edev deployed" test "$(state dev 's["live_release"]')" = "$R2"
sw deploy "$R1" --env staging -q; sw deploy "$R2" -qse staging; expect_rc "bundled -qs and -e VALUE" 0
check "-qse staging: switched" test "$(state staging 's["live_release"]')" = "$R2"
sw deploy "$R3" --en dev --mess "abbreviated" -q; expect_rc "unique abbreviations of long options" 0
check "abbreviations: deployed with the message" test "$(state dev 's["live_release"], s["last_change"]["message"]')" = "$R3 abbreviated"
mkdir -p "$T/p/-site"; echo dash > "$T/p/-site/a.txt"
sw deploy --env dev -q -- -site; expect_rc "-- ends the options: a directory named -site" 0
check "-- : the directory was deployed" test "$(state dev 's["live_release"]')" != "$R3"
sw status dev --json --project "$T/p"; expect_rc "global options after the command" 0
check "status after --: one environment" test "$(json 'len(j["environments"])')" = 1
done_testing

#!/usr/bin/env bash
# slipway expr: one GitHub Actions expression evaluated as the runner would,
# with named values from --context, statuses from --job-status and
# --action-status, human and --json output, and the exit codes (0 a value, 1
# an expression that does not parse or fails, 2 a usage error). Uses GitHub's
# own dump of a push's contexts from ../shared/conformance when it is there.
. "$(dirname "$0")/lib.sh"

# is DESC WANT: the last command exited 0 and printed exactly WANT.
is() {
    if [ "$rc" = 0 ] && [ "$out" = "$2" ]; then ok "$1"; else fail "$1 (exit $rc, got [$out], wanted [$2]; stderr: $errout)"; fi
}

# ---- --help and usage --------------------------------------------------------------------
sw expr --help
check "expr --help: exit 0 and the usage line" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway expr \[--context FILE.json\] \[--job-status S\] \[--action-status S\] \[--\] EXPR$" <<<"$out"'
check "expr --help lists --context, --job-status, --action-status" eval 'grep -qE "^  -c, --context FILE +a JSON object" <<<"$out" && grep -qE "^      --job-status S +" <<<"$out" && grep -qE "^      --action-status S +" <<<"$out"'
sw --help; check "slipway --help lists expr" grep -qE '^  expr +evaluate a GitHub Actions expression' <<<"$out"
sw expr; expect_err "no expression: a usage error" 2 "^slipway expr: expected 1 argument, got 0"
sw expr 1 2; expect_err "two expressions: a usage error" 2 "^slipway expr: unexpected argument '2'"
sw expr -1; expect_err "an expression starting with '-' without '--' is an option" 2 "unknown option '-1'"
sw expr --job-status done 'success()'
expect_err "a bad status: a usage error naming the choices" 2 "^slipway expr: --job-status: expected success, failure, cancelled or skipped, got 'done'"

# ---- values and their text ------------------------------------------------------------------
sw expr '1 == 1'; is "a comparison prints true" true
sw expr -- -1; is "an expression beginning with '-' after --" -1
sw expr -- '-0x1 == 1'; expect_err "... and it still has to parse" 1 "^slipway: Unexpected symbol: '-0x1'\. Located at position 1 within expression: -0x1 == 1$"
sw expr "format('{0} {1} {2} {3}', 0.1, 1e15, null, 'ok')"; is "numbers and null as GitHub prints them" "0.1 1E+15  ok"
sw expr 'null'; is "null prints as a word" null
sw expr "'it''s'"; is "a string prints as it is" "it's"
sw expr "fromJSON('[1, 2.5, {\"a\": null}]')"; is "an array prints as JSON" $'[\n  1,\n  2.5,\n  {\n    "a": null\n  }\n]'
sw expr "format('a{0}b', fromJSON('\"\\n\"'))"; is "a control character is escaped, never a second line" 'a\nb'
sw expr 'NaN'; is "NaN" NaN
sw --json expr 'NaN'; check "--json: NaN is null" test "$(json 'repr(j)')" = "{'value': None}"
sw expr --json "fromJSON('{\"x\": [true, 0.5]}')"
check "--json after the command: {\"value\": ...}" test "$(json 'j["value"]["x"]')" = "[True, 0.5]"
sw expr "toJSON(1)"; is "toJSON" 1

# ---- errors -----------------------------------------------------------------------------------
sw expr 'github.ref'
expect_err "without --context no name is known" 1 "^slipway: Unrecognized named-value: 'github'\. Located at position 1 within expression: github\.ref$"
sw --json expr 'github.ref'
check "--json error: {\"error\": ...} on stdout, exit 1" eval '[ "$rc" = 1 ] && [ "$(json "j[\"error\"]")" = "Unrecognized named-value: '"'"'github'"'"'. Located at position 1 within expression: github.ref" ]'
sw expr "format('{0', 1)"; expect_err "an evaluation error" 1 "^slipway: The following format string is invalid: \{0$"
sw expr "1 &2"; expect_err "a lexical error with its position" 1 "Unexpected symbol: '&2'\. Located at position 3 "
deep=$(printf '(%.0s' $(seq 1 3000))1
sw expr "$deep"; expect_err "3000 nested parentheses: refused, not a crash" 1 "Exceeded max expression depth 50"
long=$(printf 'x%.0s' $(seq 1 21001))
sw expr "$long"; expect_err "longer than 21000 characters: refused" 1 "Exceeded max expression length 21000"

# ---- --context ------------------------------------------------------------------------------------
cat >ctx.json <<'EOF'
{"github": {"ref": "refs/heads/main", "event": {"commits": [{"id": "a1", "message": "one\ntwo"}, {"id": "b2"}]}},
 "env": {"CI": "true", "Mixed": "yes"}, "matrix": null}
EOF
sw expr -c ctx.json "startsWith(github.ref, 'refs/heads/') && github.ref"; is "a context value" refs/heads/main
sw expr --context ctx.json "join(github.event.commits.*.id, '+')"; is "an object filter" a1+b2
sw expr --context=ctx.json "GITHUB.Event.commits[0].message"; is "names and properties ignore case; a newline is escaped" 'one\ntwo'
sw expr -c ctx.json "env.mixed == 'YES' && matrix == null && env.CI == true"; is "GitHub's coercions" false
sw expr -c ctx.json "env.CI == 'TRUE'"; is "strings compare ignoring case" true
sw expr -c ctx.json 'vars.x'; expect_err "only the file's keys are names" 1 "Unrecognized named-value: 'vars'"
echo '[1]' >arr.json
sw expr -c arr.json 1; expect_err "a context that is not an object" 1 "^slipway: arr\.json: the context must be a JSON object"
echo '{"a": ' >bad.json
sw expr -c bad.json 1; expect_err "a context that is not JSON" 1 "^slipway: bad\.json: line [0-9]+, column [0-9]+: "
sw expr -c missing.json 1; expect_err "a missing context file" 1 "missing\.json"
ORACLE=$ROOT/../shared/conformance/gha-workflows/dhimmel__dump-actions-context__contexts-push.oracle.json
if [ -f "$ORACLE" ]; then
    sw expr -c "$ORACLE" "github.event_name == 'push' && contains(github.event.commits.*.author.username, 'MUZIMUZHI') && github.event.pusher.name"
    is "GitHub's own push contexts" dhimmel
    sw expr -c "$ORACLE" "toJSON(strategy)"
    is "toJSON as GitHub prints it (a string: its newlines escaped)" '{\n  "fail-fast": true,\n  "job-index": 0,\n  "job-total": 1,\n  "max-parallel": 1\n}'
    sw expr -c "$ORACLE" "format('{0}/{1}', github.repository, github.sha)"
    check "format over the real contexts" test "$out" = "$(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["github"]; print(g["repository"]+"/"+g["sha"])' "$ORACLE")"
else
    echo "# conformance folder absent: GitHub's push contexts not used"
fi

# ---- statuses --------------------------------------------------------------------------------------
sw expr 'success() && !failure() && !cancelled() && always()'; is "no status given: success" true
sw expr --job-status failure 'failure() && !success()'; is "--job-status failure" true
sw expr --job-status CANCELLED 'cancelled() && !success() && !failure()'; is "--job-status cancelled (any case)" true
sw expr --job-status failure --action-status success 'success() && !failure()'
is "--action-status: inside a composite action its status counts" true
sw expr --job-status cancelled --action-status failure 'failure() && cancelled()'
is "... but cancelled() is the job's" true

# ---- hashFiles, under the current directory ---------------------------------------------------------
mkdir -p ws/src && cd ws || exit 1
printf 'one' >src/a.txt; printf 'two' >src/b.txt; printf 'three' >c.md; printf 'secret' >../outside.txt
ln -s ../outside.txt src/z.txt
want=$(python3 -c '
import hashlib
h = hashlib.sha256()
for f in ["src/a.txt", "src/b.txt"]:
    h.update(hashlib.sha256(open(f, "rb").read()).digest())
print(h.hexdigest())')
sw expr "hashFiles('**/*.txt')"; is "hashFiles: GitHub's digest; a link out of the directory is not read" "$want"
sw expr "hashFiles('src/*.txt', '!**/b.txt')"
check "hashFiles: a negated pattern changes the digest" test "$rc" = 0 -a -n "$out" -a "$out" != "$want"
sw expr "hashFiles('*.none')"; is "hashFiles: nothing matched is empty" ""
sw expr "hashFiles('../*.txt')"; is "hashFiles: nothing outside the directory" ""
cd "$T" || exit 1

done_testing

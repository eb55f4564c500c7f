#!/usr/bin/env bash
# slipway scan PATH: a tree holding each kind of committed secret is reported
# line by line (PATH:LINE RULE REDACTED fingerprint:HEX), redacted, with the
# exit codes (1 a finding, 0 clean, 2 usage), the --json shape, binary files
# and symbolic links skipped, file names with control characters escaped, the
# allow-list (.slipway/scan-ignore or --ignore: paths and fingerprints, a bad
# line named FILE:LINE), and the slipway repository itself scanned clean
# except through its own allow-list.
#
# Every secret below is assembled at run time from pieces and random
# characters, so this file holds none and the repository scan stays clean.
. "$(dirname "$0")/lib.sh"

rnd() { LC_ALL=C tr -dc "${2:-A-Za-z0-9}" </dev/urandom | head -c "$1"; }
b64url() { printf '%s' "$1" | base64 -w0 | tr '+/' '-_' | tr -d '='; }

# ---- usage ------------------------------------------------------------------------------------
sw scan --help
check "scan --help: usage line, --ignore, exit codes" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway scan PATH \[--ignore FILE\]" <<<"$out" && grep -qE "^  --ignore FILE +the allow-list" <<<"$out" && grep -q "^Exit codes: 0 nothing found, 1 a finding" <<<"$out"'
sw --help; check "slipway --help lists scan" grep -qE '^  scan +find committed secrets in a tree' <<<"$out"
sw scan; expect_err "no PATH: a usage error" 2 "^slipway scan: expected 1 argument, got 0"
sw scan a b; expect_err "two PATHs: a usage error" 2 "^slipway scan: unexpected argument 'b'"
sw scan --ignroe x .; expect_err "an unknown option: a usage error" 2 "unknown option '--ignroe'; did you mean '--ignore'\?"
sw scan "$T/missing"; expect_err "a missing PATH: exit 1, named" 1 "^slipway: $T/missing: No such file or directory$"

# ---- a tree with each kind of secret ----------------------------------------------------------
mkdir -p tree/keys tree/aws tree/ci tree/js tree/config tree/.aws tree/bin tree/.git outside
cd tree
body=$(rnd 64 'A-Za-z0-9+/')
{ echo "-----""BEGIN RSA PRIVATE KEY-----"; echo "$body"; rnd 64 'A-Za-z0-9+/'; echo; echo "-----END RSA PRIVATE KEY-----"; } >keys/server.pem
akid="AK""IA$(rnd 16 'A-Z2-7')"
awssec="Ab1$(rnd 37 'A-Za-z0-9+/')"
printf '[default]\naws_access_key_id = %s\nregion = eu-west-1\nsecret = %s\n' "$akid" "$awssec" >aws/config.ini
ghtok="gh""p_$(rnd 36)"
printf 'jobs:\n  deploy:\n    env:\n      GH: %s\n' "$ghtok" >ci/deploy.yml
gltok="gl""pat-$(rnd 20)"
printf 'remote: https://oauth2:%s@gitlab.example.org/x.git\n' "$gltok" >gitlab.txt
sltok="xo""xb-$(rnd 12 0-9)-$(rnd 24)"
hook="https://hooks"".slack.com/services/T$(rnd 8 A-Z0-9)/B$(rnd 8 A-Z0-9)/$(rnd 24)"
printf '#!/bin/sh\nSLACK=%s\ncurl -d @msg %s\n' "$sltok" "$hook" >slack.sh
jwt="$(b64url '{"alg":"HS256","typ":"JWT"}').$(b64url '{"sub":"42"}').$(rnd 43 'A-Za-z0-9_-')"
printf '// session\nconst t = "%s";\n' "$jwt" >js/app.js
pw="Zq$(rnd 18)9"
printf 'db:\n  host: db\n  password: "%s"\n' "$pw" >config/db.yml
printf 'PORT=8080\nAPI_URL=https://api.example.org\n' >.env
printf '[default]\naws_access_key_id = %s\n' "ASIA$(rnd 16 'A-Z2-7')" >.aws/credentials
npm="$(rnd 36)"
printf '//registry.npmjs.org/:_auth''Token=%s\n' "$npm" >.npmrc
printf 'machine ci.example.org login bot pass''word %s\n' "$(rnd 16)" >.netrc
# look-alikes that must stay quiet
printf 'PORT=8080\nAPI_TOKEN=changeme\n' >.env.example
printf 'Set password: ${DB_PASSWORD} or token: <your-token>\nkey id alone: %s\n' "AK""IA$(rnd 16 'A-Z2-7')" >README.md
# a binary file holding a token, a link to a secret outside, git's own store
{ printf '\x89PNG\r\n\x1a\n\0\0'; printf '%s' "gh""p_$(rnd 36)"; } >bin/logo.png
printf '%s\n' "gh""p_$(rnd 36)" >"$T/outside/secret.txt"
ln -s "$T/outside/secret.txt" link.txt
ln -s "$T/outside" linkdir
printf '[remote "origin"]\n  url = https://%s@github.com/x\n' "gh""p_$(rnd 36)" >.git/config
cd "$T"

expected=".aws/credentials:2 credentials-file
.env:1 env-file
.netrc:1 netrc-file
.npmrc:1 npmrc-token
aws/config.ini:2 aws-access-key
aws/config.ini:4 secret-assignment
ci/deploy.yml:4 github-token
config/db.yml:3 secret-assignment
gitlab.txt:1 gitlab-token
js/app.js:2 jwt
keys/server.pem:1 private-key
slack.sh:2 slack-token
slack.sh:3 slack-webhook"

sw scan tree
got=$(grep -v '^[0-9]* finding' <<<"$out" | cut -d' ' -f1,2)
check "every kind of secret found, in path order, nothing else" eval '[ "$rc" = 1 ] && [ "$got" = "$expected" ] || { echo "# got:"; sed "s/^/#   /" <<<"$got"; false; }'
check "lines are PATH:LINE RULE REDACTED fingerprint:HEX" eval '! grep -v "^[0-9]* finding" <<<"$out" | grep -vqE "^[^ ]+:[0-9]+ [a-z-]+ [!-~]{0,4}\*\*\*\* fingerprint:[0-9a-f]{16}$"'
check "values are redacted to 4 characters" eval 'grep -q "^ci/deploy.yml:4 github-token ghp_\*\*\*\* " <<<"$out" && grep -q "^keys/server.pem:1 private-key ${body:0:4}\*\*\*\* " <<<"$out" && grep -q "^config/db.yml:3 secret-assignment Zq${pw:2:2}\*\*\*\* " <<<"$out"'
leak=0
for s in "$body" "$awssec" "$ghtok" "$gltok" "$sltok" "$jwt" "$pw" "$npm" "${akid:4}" "${hook#*services/}"; do
    grep -qF -- "${s:4}" <<<"$out$errout" && leak=1
done
check "no secret appears in the output beyond its first 4 characters" test $leak = 0
check "summary: 13 findings, binary skipped" eval 'tail -1 <<<"$out" | grep -q "^13 findings; 13 files scanned, 1 binary skipped, 0 ignored by path, 0 findings allowed by fingerprint$"'
sw -q scan tree
check "--quiet: the finding lines only" eval '[ "$rc" = 1 ] && [ "$(grep -c "" <<<"$out")" = 13 ]'

sw scan --json tree
check "--json: findings with file, line, rule, redacted, fingerprint" eval '[ "$rc" = 1 ] && [ "$(json "len(j[\"findings\"])")" = 13 ] && [ "$(json "sorted(j[\"findings\"][0])")" = "['"'"'file'"'"', '"'"'fingerprint'"'"', '"'"'line'"'"', '"'"'redacted'"'"', '"'"'rule'"'"']" ]'
check "--json: counts" eval '[ "$(json "(j[\"files_scanned\"], j[\"files_skipped_binary\"], j[\"files_ignored\"], j[\"findings_ignored\"])")" = "(13, 1, 0, 0)" ]'
check "--json: the same findings as the text" eval '[ "$(json "chr(10).join(\"%s:%d %s\" % (f[\"file\"], f[\"line\"], f[\"rule\"]) for f in j[\"findings\"])")" = "$expected" ]'
fp_gh=$(json '[f["fingerprint"] for f in j["findings"] if f["rule"] == "github-token"][0]')
check "the fingerprint is sha256(rule NUL path NUL value), 16 hex digits" eval '[ "$fp_gh" = "$(printf "github-token\0ci/deploy.yml\0%s" "$ghtok" | sha256sum | cut -c1-16)" ]'

# ---- a clean tree, a single file --------------------------------------------------------------
mkdir clean && printf 'hello\n' >clean/index.html && cp tree/.env.example tree/README.md clean/
sw scan clean
check "a clean tree: exit 0, 0 findings" eval '[ "$rc" = 0 ] && [ "$out" = "0 findings; 3 files scanned, 0 binary skipped, 0 ignored by path, 0 findings allowed by fingerprint" ]'
sw scan tree/gitlab.txt
check "a single file, named as given" eval '[ "$rc" = 1 ] && grep -q "^tree/gitlab.txt:1 gitlab-token glpa\*\*\*\* " <<<"$out"'

# ---- names with control characters --------------------------------------------------------------
mkdir odd && printf '%s\n' "gh""p_$(rnd 36)" >"odd/evil"$'\n'"name"$'\e'"[31m.txt"
sw scan odd
check "a file name with a newline and an escape is printed escaped, on one line" eval '[ "$rc" = 1 ] && [ "$(grep -c "" <<<"$out")" = 2 ] && grep -qF "evil\\nname\\x1b[31m.txt:1 github-token" <<<"$out"'
sw scan --json odd
check "--json: the real name" eval '[ "$(json "repr(j[\"findings\"][0][\"file\"])")" = "'"'"'evil\\nname\\x1b[31m.txt'"'"'" ]'

# ---- the allow-list ---------------------------------------------------------------------------
mkdir -p tree/.slipway
cat >tree/.slipway/scan-ignore <<EOF
# test keys, generated for this test
keys/**
# the CI file's token: a revoked test token
fingerprint:$fp_gh
*.ini
.env
EOF
sw scan tree
check "paths and fingerprints of .slipway/scan-ignore are not reported" eval '[ "$rc" = 1 ] && ! grep -qE "^(keys/|ci/deploy.yml|aws/|\.env:)" <<<"$out" && [ "$(grep -vc "^[0-9]* finding" <<<"$out")" = 8 ]'
check "... and the summary counts them" eval 'tail -1 <<<"$out" | grep -q "^8 findings; 11 files scanned, 1 binary skipped, 3 ignored by path, 1 finding allowed by fingerprint$"'
printf '**\n' >all.ignore
sw scan tree --ignore all.ignore
check "--ignore FILE replaces the tree's allow-list; all ignored: exit 0" eval '[ "$rc" = 0 ] && [ "$out" = "0 findings; 0 files scanned, 0 binary skipped, 15 ignored by path, 0 findings allowed by fingerprint" ]'
printf 'ok/**\n\nfingerprint:123\n' >bad.ignore
sw scan tree --ignore bad.ignore; expect_err "a bad allow-list line: exit 1, FILE:LINE" 1 "^slipway: bad.ignore:3: a fingerprint is 16 hex digits"
printf 'a**\n' >tree/.slipway/scan-ignore
sw scan tree; expect_err "a bad .slipway/scan-ignore: named with its line" 1 "^slipway: tree/.slipway/scan-ignore:1: '\*\*' must be a whole path segment"
sw scan tree --ignore nothing.ignore; expect_err "a missing --ignore file: exit 1" 1 "^slipway: nothing.ignore: No such file or directory$"

# ---- the slipway repository itself ---------------------------------------------------------------
if [ -f "$ROOT/src/scan/scan.h" ] && [ -f "$ROOT/.slipway/scan-ignore" ]; then
    sw scan "$ROOT"
    check "the slipway repository: no finding but through its allow-list" eval '[ "$rc" = 0 ] && grep -q "^0 findings; " <<<"$out" || { sed "s/^/#   /" <<<"$out$errout"; false; }'
    check "... which it needed" eval 'tail -1 <<<"$out" | grep -qE "[1-9][0-9]* ignored by path, [1-9][0-9]* findings? allowed by fingerprint$"'
    sw scan "$ROOT" --ignore /dev/null
    check "without the allow-list the repository's test data is reported" eval '[ "$rc" = 1 ] && grep -q "^fuzz/corpus/scan/" <<<"$out"'
else
    echo "ok - the slipway repository scan # SKIP repository root not found at $ROOT"
fi

done_testing

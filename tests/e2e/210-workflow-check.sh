#!/usr/bin/env bash
# slipway workflow check: workflow files validated as the runner loads them,
# every error as FILE:LINE:COL (escaped: a file's bytes never make a second
# line), --unsupported skip, the trigger decision for --ref and --changed,
# the --json shape of issue 11, the exit codes (0 ok, 1 any error, 2 usage),
# and the real workflows of ../shared/conformance/gha-workflows through the
# CLI when that folder is there (read in place, never copied).
. "$(dirname "$0")/lib.sh"

# ---- usage ----------------------------------------------------------------------------------
sw workflow --help
check "workflow --help lists check" eval '[ "$rc" = 0 ] && grep -qE "^  check +validate workflow files" <<<"$out"'
sw workflow check --help
check "workflow check --help: usage, --unsupported, --ref, --changed" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway workflow check FILE" <<<"$out" && grep -qE "^  --changed PATH +a path the push changed \(repeatable\)" <<<"$out"'
sw --help; check "slipway --help lists workflow" grep -qE '^  workflow +check workflow files' <<<"$out"
sw workflow; expect_err "no subcommand: a usage error" 2 "^slipway workflow: expected at least 1 argument"
sw workflow chek x.yml; expect_err "a mistyped subcommand: did you mean" 2 "unknown subcommand 'chek'; did you mean 'check'\?"
sw workflow check; expect_err "no file: a usage error" 2 "^slipway workflow check: expected at least 1 argument, got 0 .*see 'slipway workflow check --help'"
sw workflow check --unsupported maybe x.yml; expect_err "--unsupported takes skip or error" 2 "expected skip or error, got 'maybe'"
sw workflow check --ref main x.yml; expect_err "--ref is a full ref" 2 "expected refs/heads/BRANCH or refs/tags/TAG, got 'main'"

# ---- a good file and the trigger decision -----------------------------------------------------
cat >ci.yml <<'EOF'
name: CI
on:
  push:
    branches: [main, 'releases/**']
    tags: ['v[0-9]+.*']
    paths-ignore: ['docs/**']
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: make test
EOF
sw workflow check ci.yml
check "a valid file: exit 0, 'ci.yml: ok'" eval '[ "$rc" = 0 ] && [ "$out" = "ci.yml: ok" ] && [ -z "$errout" ]'
sw workflow check ci.yml --ref refs/heads/main --changed src/a.c
check "a push of main changing src/: triggered" eval '[ "$rc" = 0 ] && [ "$out" = "ci.yml: ok, triggered by a push of refs/heads/main" ]'
sw workflow check ci.yml --ref refs/heads/main --changed docs/a.md
check "... changing only docs/: not triggered (paths-ignore)" eval '[ "$rc" = 0 ] && [ "$out" = "ci.yml: ok, not triggered by a push of refs/heads/main" ]'
sw workflow check ci.yml --ref refs/heads/main --changed docs/a.md --changed src/a.c
check "--changed repeats: one path not ignored is enough" grep -q ", triggered by" <<<"$out"
sw workflow check ci.yml --ref refs/tags/v1.2 --changed docs/a.md
check "a tag push: paths are not evaluated" grep -q ", triggered by" <<<"$out"
sw --json workflow check ci.yml --ref refs/heads/dev --changed src/a.c
check "--json for one file: files[] and a top-level triggered" test "$(json 'repr(j)')" = "{'files': [{'file': 'ci.yml', 'ok': True, 'errors': [], 'triggered': False}], 'triggered': False}"
sw workflow check ci.yml --json
check "--json without --ref: no triggered" test "$(json 'repr(j)')" = "{'files': [{'file': 'ci.yml', 'ok': True, 'errors': []}]}"

# ---- errors: all of them, each with its position --------------------------------------------------
cat >bad.yml <<'EOF'
on:
  push:
    branches: ['v[z-a]']
jobs:
  build:
    runs-on: x
    needs: [nope]
    timeout-minutes: soon
    steps:
      - run: echo ${{ 1 + }}
        shel: bash
  deploy:
    runs-on: x
    if: steps.build.outcome == 'success'
    container: debian
    steps:
      - uses: octo/deploy@v1
EOF
sw workflow check bad.yml
check "every error, in file order, as FILE:LINE:COL: message" eval '[ "$rc" = 1 ] && [ "$(grep -c "^bad\.yml:[0-9]*:[0-9]*: " <<<"$errout")" = 8 ]'
check "a bad filter pattern at its line" grep -qE "^bad\.yml:3:[0-9]+: branches: " <<<"$errout"
check "an unknown job in needs, listing the jobs" grep -q "^bad.yml:7:13: job 'build' needs unknown job 'nope' (jobs: build, deploy)" <<<"$errout"
check "a wrong type says what was expected" grep -q "^bad.yml:8:22: expected a number, not 'soon'" <<<"$errout"
check "an expression error at its column inside the value" grep -q "^bad.yml:10:25: Unexpected symbol: '+'" <<<"$errout"
check "an unknown key, listing the allowed ones" grep -q "^bad.yml:11:9: unexpected key 'shel' in step 1 (allowed: id, name, if, run, shell, env, working-directory, continue-on-error, timeout-minutes)" <<<"$errout"
check "a context not available at that key" grep -q "^bad.yml:14:9: Unrecognized named-value: 'steps'" <<<"$errout"
check "container: refused with one line listing what is supported" grep -q "^bad.yml:15:5: job 'deploy': container: is not supported, steps run on the host; slipway runs natively: run: steps, actions/checkout, actions/upload-artifact, actions/download-artifact, .*slipway/scan, slipway/watch (load with unsupported: skip" <<<"$errout"
check "an unsupported uses: refused" grep -q "^bad.yml:17:15: step 1: uses: 'octo/deploy@v1' is not supported; slipway runs natively: " <<<"$errout"
check "the summary line on stdout" test "$out" = "bad.yml: 8 errors"
sw --json workflow check bad.yml ci.yml --ref refs/heads/main --changed src/a.c
got=$(json '[(f["file"], f["ok"], len(f["errors"]), f["triggered"]) for f in j["files"]], "triggered" in j')
check "--json for two files: each its ok, errors and triggered; no top-level triggered; exit 1" \
    test "$rc $got" = "1 [('bad.yml', False, 8, False), ('ci.yml', True, 0, True)] False"

# ---- --unsupported skip ----------------------------------------------------------------------------
cat >skip.yml <<'EOF'
on: push
jobs:
  test:
    runs-on: x
    services:
      db: {image: postgres}
    steps:
      - run: make check
  build:
    runs-on: x
    steps:
      - uses: actions/setup-go@v5
      - run: go build
EOF
sw workflow check skip.yml
check "without skip: services: and the uses: are errors" eval '[ "$rc" = 1 ] && [ "$(grep -c "is not supported" <<<"$errout")" = 2 ]'
sw workflow check --unsupported skip skip.yml
check "with --unsupported skip: loads, with a visible warning for each" eval '[ "$rc" = 0 ] && [ "$out" = "skip.yml: ok" ] && grep -q "^skip.yml:5:5: warning: job '"'"'test'"'"': services: (containers) is not supported, no Docker here: skipped" <<<"$errout" && grep -q "^skip.yml:12:15: warning: step 1: uses: '"'"'actions/setup-go@v5'"'"' is not supported: skipped" <<<"$errout"'

# ---- hostile input ---------------------------------------------------------------------------------
printf 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: "${{ \\u001b[2J }}"\n' >esc.yml
sw workflow check esc.yml
check "a control character in an error is escaped: one line per error" eval '[ "$rc" = 1 ] && [ "$(printf "%s" "$errout" | grep -c "")" = 1 ] && grep -qF "\\x1b" <<<"$errout" && ! grep -q $'"'"'\x1b'"'"' <<<"$errout"'
printf 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n' >many.yml
for i in $(seq 1 300); do printf '      - run: ${{ ( }}\n' >>many.yml; done
sw workflow check many.yml
check "errors are bounded: 100 shown and the rest counted" eval '[ "$rc" = 1 ] && [ "$(grep -c "^many.yml:[0-9]" <<<"$errout")" = 100 ] && grep -q "^many.yml: 200 more errors not shown" <<<"$errout" && [ "$out" = "many.yml: 300 errors" ]'
head -c 2000000 /dev/zero | tr '\0' '#' >huge.yml
sw workflow check huge.yml
check "a file over 1 MiB: refused" eval '[ "$rc" = 1 ] && grep -q "^huge.yml:" <<<"$errout"'
sw workflow check missing.yml
check "a missing file: an error naming it" eval '[ "$rc" = 1 ] && grep -q "missing.yml" <<<"$errout"'

# ---- the real workflows of public projects ------------------------------------------------------------
C=$ROOT/../shared/conformance/gha-workflows
if [ -f "$C/INDEX.md" ]; then
    accepted=(acmesh-official__acme.sh__DNS.yml acmesh-official__acme.sh__dockerhub.yml
        acmesh-official__acme.sh__shellcheck.yml ohmyzsh__ohmyzsh__installer.yml ohmyzsh__ohmyzsh__main.yml
        openssh__openssh-portable__selfhosted.yml redis__redis__ci.yml redis__redis__external.yml
        BurntSushi__ripgrep__release.yml git__git__main.yml git__git__l10n.yml git__git__coverity.yml
        jqlang__jq__decnum.yml jqlang__jq__website.yml openzfs__zfs__zfs-qemu.yml openzfs__zfs__checkstyle.yaml
        curl__curl__checksrc.yml dhimmel__dump-actions-context__contexts.yaml evanw__esbuild__publish.yml
        nektos__act__promote.yml cli__cli__deployment.yml jgm__pandoc__format-validation.yml
        curl__curl__distcheck.yml ziglang__zig__ci.yaml go-gitea__gitea__release-tag-version.yml)
    sw --json workflow check --unsupported skip "${accepted[@]/#/$C/}"
    n=$(json 'sum(1 for f in j["files"] if f["ok"])')
    echo "# gha-workflows: $n of ${#accepted[@]} accepted files pass workflow check --unsupported skip"
    check "all 25 accepted files pass workflow check --unsupported skip" eval '[ "$rc" = 0 ] && [ "$n" = 25 ]'
    # file, the line INDEX.md names (R1-R7)
    rejected=("jgm__pandoc__ci@dddbd40.yml 148" "openssh__openssh-portable__upstream@1f1d63e.yml 45"
        "redis__redis__daily@0676a9f.yml 53" "hashicorp__vagrant__spectesting@61a04ed.yml 95"
        "hashicorp__vagrant__spectesting@b6feb02.yml 3" "rhysd__actionlint__expression_syntax_error.yaml 7"
        "rhysd__actionlint__minimal_cycle_in_needs.yaml 5")
    n=0
    for r in "${rejected[@]}"; do
        set -- $r
        sw workflow check --unsupported skip "$C/$1"
        if [ "$rc" = 1 ] && grep -q "^$C/$1:$2:[0-9]*: " <<<"$errout"; then n=$((n + 1)); else echo "# $1: $errout"; fi
    done
    echo "# gha-workflows: $n of 7 broken files rejected at the right line"
    check "all 7 broken files are rejected at the line INDEX.md names" test "$n" = 7
    sw workflow check --unsupported skip --ref refs/tags/v1.22.0-rc1 "$C/go-gitea__gitea__release-tag-version.yml"
    check "A25: tag v1.22.0-rc1 is excluded (!v1*-rc*)" grep -q "not triggered" <<<"$out"
    sw workflow check --unsupported skip --ref refs/tags/v1.23.0-dev-1 "$C/go-gitea__gitea__release-tag-version.yml"
    check "A25: tag v1.23.0-dev-1 triggers" grep -q ", triggered" <<<"$out"
    sw workflow check --unsupported skip --ref refs/heads/master --changed dnsapi/sub/x.sh "$C/acmesh-official__acme.sh__DNS.yml"
    check "A1: dnsapi/*.sh is one level only" grep -q "not triggered" <<<"$out"
    sw workflow check "$C/redis__redis__ci.yml"
    check "A7 without skip: the container: jobs are refused" eval '[ "$rc" = 1 ] && grep -q "container: is not supported" <<<"$errout"'
else
    echo "# conformance folder absent: the real workflows are not checked ($C)"
fi

done_testing

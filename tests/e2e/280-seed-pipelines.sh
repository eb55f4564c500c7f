#!/usr/bin/env bash
# The seed's pipelines end to end (issue 12): the committed example site
# (examples/site: its build, unit and integration tests, and its dev,
# staging and rollback pipelines) pushed with real `git push` to a bare
# repository with slipway's hook, run by `slipway serve --runner` of a
# project holding the sample environments (examples/site/server):
# 1. a push to develop deploys to dev, where curl sees the new page;
# 2. tag v1.0.0 waits at staging's gate; approved, it goes to the idle slot,
#    is checked on the preview listener, switched, checked live; the other
#    slot still holds the release before it; its Monitor job (slipway/watch)
#    waits out staging's watch window (shortened to 6s) and passes with the
#    verdict `slipway serve` records, too little traffic to judge;
# 3. tag v1.0.1, whose integration tests fail on live after the switch: the
#    run fails, its rollback job restores v1.0.0, history shows deploy,
#    switch, rollback;
# 4. `workflow run rollback -f to=R` validates R, waits at the gate, and
#    after approval staging serves R again, verified by R's own tests;
# 5. a push no pipeline matches queues nothing; a rejected approval deploys
#    nothing; a tag outside deploy_from fails before it reaches the gate.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME=Alice GIT_AUTHOR_EMAIL=alice@example.com
export GIT_COMMITTER_NAME=Alice GIT_COMMITTER_EMAIL=alice@example.com
unset GL_USER GL_USERNAME REMOTE_USER
me=$(id -un)
SITE=$ROOT/examples/site

# ---- the server: a project with the sample environments, a bare repository with the hook ---------------
"$SLIPWAY" init -q "$T/P"
cp "$SITE"/server/.slipway/environments/*.yml "$T/P/.slipway/environments/"
PD=$(free_port) PL=$(free_port) PP=$(free_port)
# free ports for the samples' fixed ones, and the OS user the test approves as among the approvers
sed -i "s/^listen: .*/listen: 127.0.0.1:$PD/" "$T/P/.slipway/environments/dev.yml"
sed -i -e "s/^listen: .*/listen: 127.0.0.1:$PL/" -e "s/^preview: .*/preview: 127.0.0.1:$PP/" \
    -e "s/^  approvers: \[/  approvers: [$me, /" -e "s/^  duration: 10m$/  duration: 6s/" \
    "$T/P/.slipway/environments/staging.yml"
check "the sample staging is watched (10m, shortened for the test)" grep -q "^  duration: 6s$" "$T/P/.slipway/environments/staging.yml"
git init -q --bare -b main "$T/site.git"
"$SLIPWAY" hook install "$T/site.git" --project "$T/P" >/dev/null || fail "hook install"

# ---- the site's repository: the committed example, without the server's files --------------------------
git clone -q "$T/site.git" "$T/W" 2>/dev/null
tar -C "$SITE" --exclude=./server --exclude=./dist --exclude='./dist.*' -cf - . | tar -C "$T/W" -xf -
cd "$T/W"
git add -A && git commit -qm "Harbour Lights"
SEED_COMMIT=$(git rev-parse HEAD)
check "the example builds and its unit tests pass as committed" eval 'VERSION=v0.9.0 ./build.sh >/dev/null && tests/unit.sh >/dev/null'
# staging holds a release before the pipelines run, so the first one has a backup
sw --project "$T/P" --json deploy dist --env staging -m seed
R0=$(json 'j["release"]')
check "staging is seeded with v0.9.0 (built from the first commit)" eval '[ "$rc" = 0 ] && [[ "$R0" =~ ^r- ]]'
rm -rf dist

spawn "$SLIPWAY" --project "$T/P" serve --workers 1 --runner 2 --runner-poll 200ms 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up, its runner waiting" 30 grep -q "waiting for runs" "$T/serve.err"
wait_for "staging live serves" 30 curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PL/_slipway/health"

# ---- helpers ------------------------------------------------------------------------------------------
push() { pout=$(git push "$@" 2>&1); prc=$?; }
queued() { sed -n "s/^remote: slipway: queued run \(run-[0-9a-f-]*\) for $1 .*/\1/p" <<<"$pout"; }
nruns() { ls "$T/P/.slipway/data/runs" 2>/dev/null | grep -c "^run-"; }
# The waits read the run's record as stored, with grep: a poll costs one
# small process, not a slipway and a python, on a box the runs need. The
# record is compact JSON; only the run's own status is ever succeeded,
# failed or cancelled (a job's is queued, running, waiting or completed),
# and a gate's state is waiting until it is decided.
rec() { echo "$T/P/.slipway/data/runs/$1/run.json"; }
ended() { grep -qE '"status":"(succeeded|failed|cancelled)"' "$(rec "$1")"; }
at_gate() { grep -q '"state":"waiting"' "$(rec "$1")"; }
# snap RUN: the run as `run view --json` shows it, kept for rq
snap() { "$SLIPWAY" --project "$T/P" run view "$1" --json >"$T/$1.json"; }
# rq RUN EXPR: a python expression over the last snap of RUN (j), its jobs by id (d)
rq() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); d={x['id']:x for x in j['jobs']}; print($2)" "$T/$1.json"; }
logof() { "$SLIPWAY" --project "$T/P" run view "$1" --log >"$T/$1.log"; }
page() { curl -s --max-time 5 "http://127.0.0.1:$1${2:-/}"; }
events() { "$SLIPWAY" --project "$T/P" history staging --json | python3 -c "import json,sys; e=json.load(sys.stdin)['events']; print($1)"; }
approve() { sw --project "$T/P" approve "$@"; }

# ---- 5a. a push that matches no filter queues nothing ------------------------------------------------------
push origin main
check "a push to main (no pipeline's filter) succeeds and queues nothing, saying so" eval '[ "$prc" = 0 ] && grep -q "^remote: slipway: nothing queued: no pipeline in .slipway/pipelines/ matches a push of refs/heads/main" <<<"$pout" && [ "$(nruns)" = 0 ]'

# ---- 1. a push to develop goes live on dev ---------------------------------------------------------------
git checkout -q -b develop
sed -i 's|<h1>Welcome to Harbour Lights</h1>|<h1>Boats for hire from May</h1>|' src/index.html
git commit -qam "Boats for hire from May"
DEV_SHA=$(git rev-parse HEAD)
push origin develop
DEV=$(queued dev)
check "a push to develop queues the dev pipeline, one run" eval '[ -n "$DEV" ] && [ "$(nruns)" = 1 ]'
wait_for "the dev run ends" 60 ended "$DEV"
snap "$DEV"
check "the dev run succeeded: build (scan, build, unit tests), deploy (integration tests); rollback skipped" test "$(rq "$DEV" "(j['status'], [(k, d[k]['conclusion']) for k in ('build', 'deploy', 'rollback')], [s['conclusion'] for s in d['build']['steps'] + d['deploy']['steps'] if s['name'] in ('Secret scan', 'Unit tests', 'Integration tests on dev')])")" = "('succeeded', [('build', 'success'), ('deploy', 'success'), ('rollback', 'skipped')], ['success', 'success', 'success'])"
check "curl sees the new page on dev, stamped with the pushed commit" eval 'page $PD | grep -q "<h1>Boats for hire from May</h1>" && page $PD /version.txt | grep -qx "commit=$DEV_SHA"'
check "the deploy job's environment url is dev's address" test "$(rq "$DEV" "d['deploy']['environment']['url']")" = "http://127.0.0.1:$PD"
logof "$DEV"
check "its log: the unit tests, the scan, the integration tests against dev" eval 'grep -q "ok 1 - index.html is built" "$T/$DEV.log" && grep -q "0 findings;" "$T/$DEV.log" && grep -q "every page, link and asset reachable from / answers 200" "$T/$DEV.log"'

# ---- 2. tag v1.0.0: the gate, the idle slot, the switch ----------------------------------------------------
git checkout -q main && git merge -q --ff-only develop
git tag v1.0.0
push origin v1.0.0
V100=$(queued staging)
check "tag v1.0.0 queues the staging pipeline" test -n "$V100"
wait_for "the v1.0.0 run waits at the gate" 60 at_gate "$V100"
snap "$V100"
check "the run waits at staging's gate, after the build (scan, build, unit tests) passed" test "$(rq "$V100" "(j['status'], d['build']['conclusion'], d['deploy']['status'], d['deploy']['gate']['environment'])")" = "('waiting', 'success', 'waiting', 'staging')"
check "... nothing deployed yet: staging still serves v0.9.0" eval 'page $PL /version.txt | grep -qx version=v0.9.0'
approve "$V100" --comment "ship it"
check "slipway approve by an approver" eval '[ "$rc" = 0 ] && grep -q "^approved job deploy of run $V100 for environment staging" <<<"$out"'
wait_for "the v1.0.0 run ends" 60 ended "$V100"
snap "$V100"
logof "$V100"
check "the v1.0.0 run succeeded, its Monitor too, rollback skipped" test "$(rq "$V100" "(j['status'], d['deploy']['conclusion'], d['monitor']['conclusion'], d['rollback']['conclusion'])")" = "('succeeded', 'success', 'success', 'skipped')"
R1=$(rq "$V100" "d['deploy']['outputs']['release']")
check "deployed to the idle slot, preview named; the backup is v0.9.0's release" eval 'grep -qE "Deployed $R1 to the idle (blue|green) slot of staging, preview on 127.0.0.1:$PP" "$T/$V100.log" && grep -q "Backup of staging before v1.0.0: $R0" "$T/$V100.log"'
check "the health check ran on the preview listener, then the switch, then the health check on live" eval 'grep -q "127.0.0.1:$PP/version.txt is healthy" "$T/$V100.log" && grep -q "Switched staging: the .* slot is live with $R1" "$T/$V100.log" && grep -q "127.0.0.1:$PL/version.txt is healthy" "$T/$V100.log"'
got=$(rq "$V100" "[(s['name'], s['conclusion']) for s in d['deploy']['steps'] if s['conclusion'] != 'success']")
check "every step of the deploy job passed: integration tests on the preview and on live included" test "$got" = "[]"
check "curl sees v1.0.0 live" eval 'page $PL | grep -q "<h1>Boats for hire from May</h1>" && page $PL /version.txt | grep -qx version=v1.0.0'
other_slot() { page $PP /version.txt | grep -qx version=v0.9.0 && page $PP | grep -q "<h1>Welcome to Harbour Lights</h1>"; }
wait_for "the other slot holds v0.9.0" 10 other_slot && ok "the other slot still holds the previous release (v0.9.0, on the preview listener)"
check "Monitor waited out staging's watch of v1.0.0's release: the verdict, not enough traffic" eval 'grep -q "Watching $R1 on staging for 6s from" "$T/$V100.log" && grep -q "Verdict: not-enough-traffic (watch of $R1 ended: not enough traffic: " "$T/$V100.log"'
check "... the verdict is in staging's history, after the switch" test "$(events "[(x['action'], x['to'], x['actor'].startswith('slipway-monitor@')) for x in e[-2:]]")" = "[('switch', '$R1', False), ('verdict', '$R1', True)]"
check "the release records the tag's commit and the run" test "$("$SLIPWAY" --project "$T/P" releases --json | python3 -c "import json,sys; print([(r['commit'], r['tag'], r['run']) for r in json.load(sys.stdin)['releases'] if r['id'] == '$R1'])")" = "[('$DEV_SHA', 'v1.0.0', '$V100')]"

# ---- 3. tag v1.0.1: fails on live after the switch, rolled back by the run ----------------------------------
# The fault: v1.0.1 renames the logo, but the about page loads it from
# staging's own address. On the preview that URL still reaches v1.0.0, which
# has it; once switched, live is v1.0.1, which does not.
git mv -k src/img/logo.svg src/img/mark.svg
sed -i 's|img/logo.svg|img/mark.svg|g' src/*.html tests/unit.sh
sed -i "0,/\/img\/mark.svg\" alt/s||http://127.0.0.1:$PL/img/logo.svg\" alt|" src/about.html
git commit -qam "A new mark"
git tag v1.0.1
push origin v1.0.1
V101=$(queued staging)
wait_for "the v1.0.1 run waits at the gate" 60 at_gate "$V101"
approve "$V101"
wait_for "the v1.0.1 run ends" 60 ended "$V101"
snap "$V101"
logof "$V101"
R2=$(rq "$V101" "d['deploy']['outputs']['release']")
got=$(rq "$V101" "(j['status'], [(s['name'], s['conclusion']) for s in d['deploy']['steps'] if s['name'] in ('Integration tests (preview)', 'Switch traffic', 'Integration tests (live)')])")
check "the v1.0.1 run failed: its integration tests passed on the preview, failed on live after the switch" test "$got" = "('failed', [('Integration tests (preview)', 'success'), ('Switch traffic', 'success'), ('Integration tests (live)', 'failure')])"
check "... naming the asset live lacks" grep -q "http://127.0.0.1:$PL/img/logo.svg: 404" "$T/$V101.log"
check "its rollback job ran and succeeded; Monitor skipped (the deploy job failed)" test "$(rq "$V101" "(d['rollback']['conclusion'], d['monitor']['conclusion'])")" = "('success', 'skipped')"
check "... back to the backup, v1.0.0" grep -q "Rolled back staging: the .* slot is live with $R1; $R2 stays in the other slot" "$T/$V101.log"
old_page() { page $PL /version.txt | grep -qx version=v1.0.0 && curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PL/img/logo.svg"; }
# (the edge picks a change up within its poll interval)
wait_for "curl sees the old page" 10 old_page && ok "curl sees the old page: v1.0.0, its logo there"
# (the monitor's verdict on v1.0.1 may come between them when the run's rollback takes more than
# the 6s window on a loaded machine: it changes nothing live)
check "slipway history staging shows deploy, switch, rollback by the run" test "$(events "[(x['action'], x['to'], x['message']) for x in e if x['action'] != 'verdict'][-3:]")" = "[('deploy', '$R2', 'v1.0.1'), ('switch', '$R2', 'workflow run $V101'), ('rollback', '$R1', 'workflow run $V101')]"

# ---- 4. the manual rollback pipeline ------------------------------------------------------------------------
# Run from an operator's clone, which the project lists as it lists the bare
# repository; the release is named by the last characters of its id.
realpath "$T/W" >>"$T/P/.slipway/repositories"
sw --project "$T/P" workflow run rollback -f to="${R0: -6}" --repo "$T/W" --ref refs/heads/main
RB=$out
wait_for "the rollback run waits at the gate" 60 at_gate "$RB"
snap "$RB"
check "workflow run rollback -f to=<a release's suffix> found .slipway/pipelines/rollback.yml: a dispatch with that input" test "$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print((j['event'], j['workflow_file'], j['inputs']))" "$(rec "$RB")")" = "('workflow_dispatch', '.slipway/pipelines/rollback.yml', {'to': '${R0: -6}'})"
# meanwhile (the waiting run parked), a request for a release that does not exist
sw --project "$T/P" workflow run rollback -f to=r-nosuch --repo "$T/W" --ref refs/heads/main
BAD=$out
wait_for "the bad rollback run ends" 60 ended "$BAD"
snap "$BAD"
check "a rollback to a release that does not exist fails in validate, never reaching the gate" test "$(rq "$BAD" "(j['status'], d['validate']['conclusion'], d['rollback']['conclusion'], d['rollback'].get('gate'))")" = "('failed', 'failure', 'skipped', None)"
logof "$RB"
check "the rollback run waits at staging's gate" test "$(rq "$RB" "(j['status'], d['validate']['conclusion'], d['rollback']['status'])")" = "('waiting', 'success', 'waiting')"
check "... validated first: the dry run names the release and its commit; nothing changed yet" eval 'grep -q "Dry run: rolling staging back would make $R0 (commit $SEED_COMMIT) live" "$T/$RB.log" && page $PL /version.txt | grep -qx version=v1.0.0'
approve "$RB"
wait_for "the rollback run ends" 60 ended "$RB"
snap "$RB"
logof "$RB"
check "the rollback run succeeded: validate, rollback, verify" test "$(rq "$RB" "(j['status'], [d[k]['conclusion'] for k in ('validate', 'rollback', 'verify')])")" = "('succeeded', ['success', 'success', 'success'])"
check "staging serves that release again (v0.9.0, its first page)" eval 'page $PL /version.txt | grep -qx version=v0.9.0 && page $PL | grep -q "<h1>Welcome to Harbour Lights</h1>"'
check "verified by the release's own tests, checked out at its commit" eval 'grep -q "Fetching $SEED_COMMIT of" "$T/$RB.log" && grep -q "every page, link and asset reachable from / answers 200" "$T/$RB.log"'
check "history: the rollback to it" test "$(events "(e[-1]['action'], e[-1]['to'])")" = "('rollback', '$R0')"

# ---- 5b, 5c. a rejected approval deploys nothing; a tag outside deploy_from never reaches the gate ---------------
# Both tags in one push: v1.0.2's run parks at the gate while the runner
# takes the pre-release's, whose deploy job fails before it would wait.
NEV=$(events "len(e)")
NREL=$(ls "$T/P/.slipway/data/releases" | wc -l)
git tag v1.0.2
git tag v1.1.0-rc.1
push origin v1.0.2 v1.1.0-rc.1
V102=$(sed -n "s/^remote: slipway: queued run \(run-[0-9a-f-]*\) for staging on refs\/tags\/v1.0.2 .*/\1/p" <<<"$pout")
RC=$(sed -n "s/^remote: slipway: queued run \(run-[0-9a-f-]*\) for staging on refs\/tags\/v1.1.0-rc.1 .*/\1/p" <<<"$pout")
check "a pre-release tag matches the staging pipeline's v*.*.* too" eval '[ -n "$V102" ] && [ -n "$RC" ]'
wait_for "the pre-release run ends" 60 ended "$RC"
snap "$RC"
check "the pre-release's deploy job failed before the gate: deploy_from excludes pre-releases" test "$(rq "$RC" "(j['status'], d['build']['conclusion'], d['deploy']['reason'], d['deploy'].get('gate'), d['deploy']['steps'], d['rollback']['conclusion'])")" = "('failed', 'success', 'ref refs/tags/v1.1.0-rc.1 may not deploy to environment staging (deploy_from branches: main; tags: v*.*.*, !v*.*.*-*)', None, [], 'skipped')"
check "... it never waited" eval '! grep -q "\"gate\"" "$(rec "$RC")"'
wait_for "the v1.0.2 run waits at the gate" 60 at_gate "$V102"
approve "$V102" --reject --comment "not this one"
check "a rejection is recorded" eval '[ "$rc" = 0 ] && grep -q "^rejected job deploy of run $V102" <<<"$out"'
wait_for "the rejected run ends" 60 ended "$V102"
snap "$V102"
check "rejected: the run failed, deploy failed with the reason before its first step, rollback skipped" test "$(rq "$V102" "(j['status'], d['deploy']['reason'], d['deploy']['steps'], d['rollback']['conclusion'])")" = "('failed', 'rejected by $me for environment staging: not this one', [], 'skipped')"
check "nothing deployed by either: no release made, no history event, v0.9.0 still live" eval '[ "$(ls "$T/P/.slipway/data/releases" | wc -l)" = "$NREL" ] && [ "$(events "len(e)")" = "$NEV" ] && page $PL /version.txt | grep -qx version=v0.9.0'

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 on SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

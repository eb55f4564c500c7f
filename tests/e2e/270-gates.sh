#!/usr/bin/env bash
# Approval gates and deploy rules (issue 12): a workflow build -> deploy
# (environment: staging) -> after; the run waits at the gate, `slipway
# approve` by someone not an approver, by whoever triggered the run and twice
# by one person is refused; an approval lets the job run; a rejection fails it
# and nothing after it runs; a timeout fails it; a ref outside deploy_from
# fails before waiting; `slipway serve --runner 1` killed with SIGKILL while a
# run waits: after a restart it still waits (its timeout still counted from
# when it began), and an approval completes it. The OS user is the approver
# the tests act through (--as), the run's actor is $SLIPWAY_ACTOR (tester).
. "$(dirname "$0")/lib.sh"

me=$(id -un)
mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
mkdir -p .github/workflows .slipway/environments
for env in staging quick locked selfok; do
cat > .github/workflows/ship-$env.yml <<EOF
name: ship-$env
on: [push, workflow_dispatch]
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      v: \${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: echo "v=built-\$GITHUB_RUN_ID" >> "\$GITHUB_OUTPUT"; echo "built \$GITHUB_RUN_ID"
  deploy:
    needs: build
    runs-on: ubuntu-latest
    environment: $env
    steps:
      - run: echo "deploying \${{ needs.build.outputs.v }}"; touch "$T/deployed-\$GITHUB_RUN_ID"
  after:
    needs: deploy
    runs-on: ubuntu-latest
    steps:
      - run: touch "$T/after-\$GITHUB_RUN_ID"
EOF
done
cat > .slipway/environments/staging.yml <<EOF
strategy: direct
approval:
  required: 1
  approvers: [$me, alice, tester]
  timeout: 1h
deploy_from:
  branches: [main]
  tags: ['v*.*.*']
EOF
cat > .slipway/environments/quick.yml <<EOF
strategy: direct
approval:
  required: 2
  approvers: [$me, alice, bob]
  timeout: 15s
EOF
cat > .slipway/environments/locked.yml <<'EOF'
strategy: direct
approval:
  required: 1
  approvers: [alice, bob]
EOF
cat > .slipway/environments/selfok.yml <<EOF
strategy: direct
approval:
  required: 1
  approvers: [tester, $me]
  allow_self_approval: true
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init

# jx EXPR: a python expression over the last stdout as JSON (j), d its jobs by id
jx() { printf '%s' "$out" | python3 -c "import json,sys; j=json.load(sys.stdin); d={x['id']:x for x in j.get('jobs',[])}; print($1)"; }
jq_run() { "$SLIPWAY" run view "$1" --json; }
# status_is RUN STATUS...: RUN's status is one of STATUS. One run view and one
# python3 for each predicate below, as wait_for calls them over and over.
status_is() { jq_run "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if j['status'] in sys.argv[1:] else 1)" "${@:2}"; }
# waits RUN: the run is waiting, and so is its deploy job (one reading of the run).
waits() { jq_run "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if j['status'] == 'waiting' and [x for x in j['jobs'] if x['id'] == 'deploy'][0]['status'] == 'waiting' else 1)"; }
ended() { status_is "$1" succeeded failed cancelled; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# ---- usage and bad configuration --------------------------------------------------------------
sw approve --help
check "approve --help" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway approve RUN" <<<"$out"'
sw run approve --help
check "run approve --help: the alias" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway approve RUN" <<<"$out"'
sw approve nope; expect_err "approve: a bad id is a usage error" 2 "'nope' is not a run id"
sw approve run-20200101-000000-000-abcdef; expect_err "approve: an unknown run" 1 "no run run-20200101-000000-000-abcdef"

mkdir -p "$T/bad/.slipway/environments"
printf 'strategy: direct\napproval:\n  required: 1\n  approver: [alice]\n' > "$T/bad/.slipway/environments/a.yml"
sw status --project "$T/bad"
expect_err "an unknown approval key is named with file and line, listing the allowed keys" 1 "a.yml:4:3: approval: unknown key 'approver' \(expected required, approvers, timeout or allow_self_approval\)"
printf 'strategy: direct\napproval:\n  approvers: [alice]\n  timeout: soon\n' > "$T/bad/.slipway/environments/a.yml"
sw status --project "$T/bad"
expect_err "a bad duration is named with file and line" 1 "a.yml:4:12: approval.timeout: expected a duration"

# ---- the gate: wait, refusals, approval ------------------------------------------------------
spawn "$SLIPWAY" runner --name r1 > "$T/r1.out" 2>&1
r1=$!
sw workflow run ship-staging; A=$(head -1 <<<"$out")
wait_for "the run waits at the gate" 60 waits "$A" && ok "the deploy job waits; the run's status is waiting"
out=$(jq_run "$A")
check "... after build succeeded" test "$(jx "d['build']['conclusion']")" = success
check "... the record holds the gate: requirement, waiting_since" test "$(jx "(d['deploy']['gate']['environment'], d['deploy']['gate']['required'], d['deploy']['gate']['approvers'], d['deploy']['gate']['state'], bool(d['deploy']['gate']['waiting_since']))")" = "('staging', 1, ['$me', 'alice', 'tester'], 'waiting', True)"
has_wait_line() { "$SLIPWAY" run view "$A" --log | grep -qE "waiting for 1 approval from $me, alice, tester for environment staging \(times out at [0-9T:.-]+Z\)"; }
wait_for "the log says what it waits for" 10 has_wait_line && ok "the log says what it waits for and when it times out"
sw run view "$A"
check "run view shows the gate" grep -qE "^    gate: waiting for 1 approval from $me, alice, tester for environment staging since" <<<"$out"
check "... nothing deployed yet" test ! -e "$T/deployed-$A"

sw approve "$A" --as mallory
expect_err "someone not an approver is refused" 1 "mallory is not an approver of environment staging \(approvers: $me, alice, tester\)"
sw approve "$A" --as tester
expect_err "whoever triggered the run cannot approve it" 1 "tester triggered run $A and may not approve it: environment staging does not allow self-approval"
sw approve "$A" --job build
expect_err "a job that does not wait" 1 "job build of run $A is not waiting at a gate \(it is success\)"
sw approve "$A" --job nojob
expect_err "a job the run does not have" 1 "run $A has no job nojob"
sw run approve "$A" --as alice --comment "looks good"
check "an approver approves (through run approve, --as by an OS user who is an approver)" eval '[ "$rc" = 0 ] && grep -q "^approved job deploy of run $A for environment staging (1 of 1 approval)" <<<"$out"'
sw approve "$A" --as alice
# Once approved the run goes on and may have ended by now (seen in CI): each answer refuses.
expect_err "the same person twice is refused" 1 "(alice has already approved job deploy|is not waiting at a gate|has ended \(succeeded\): nothing waits to approve)"
wait_for "approved: the run completes" 60 ended "$A"
sw run view "$A" --json
check "the run succeeded; deploy and after ran" eval '[ "$(json "j[\"status\"]")" = succeeded ] && [ -e "$T/deployed-$A" ] && [ -e "$T/after-$A" ]'
check "the decision is recorded: who, as whom, when, comment" test "$(jx "[(g['state'], e['by'], e['os_user'], e['decision'], e['comment'], bool(e['at'])) for g in [d['deploy']['gate']] for e in g['decisions']]")" = "[('approved', 'alice', '$me', 'approved', 'looks good', True)]"
sw run view "$A" --log
check "the deploy job saw build's outputs" grep -q "deploying built-$A" <<<"$out"
check "the log names the approval" grep -q "approved by alice (recorded by $me): looks good" <<<"$out"
sw approve "$A"
expect_err "a run that has ended is not waiting" 1 "run $A has ended \(succeeded\)"

# ---- a rejection: the job fails, nothing after it runs ----------------------------------------
sw workflow run ship-staging; B=$(head -1 <<<"$out")
wait_for "the second run waits" 60 waits "$B"
sw approve "$B" --reject --comment "not today"
check "a rejection is recorded" eval '[ "$rc" = 0 ] && grep -q "^rejected job deploy of run $B" <<<"$out"'
wait_for "rejected: the run ends" 60 ended "$B"
sw run view "$B" --json
check "rejected: the run failed, deploy failed with the reason, after skipped, nothing deployed" test "$(jx "(j['status'], d['deploy']['conclusion'], d['deploy']['reason'], d['after']['conclusion'])")" = "('failed', 'failure', 'rejected by $me for environment staging: not today', 'skipped')"
check "... no step of deploy or after ran" eval '[ ! -e "$T/deployed-$B" ] && [ ! -e "$T/after-$B" ]'

# ---- a timeout ------------------------------------------------------------------------------
sw workflow run ship-quick; C=$(head -1 <<<"$out")
wait_for "the quick run waits" 60 waits "$C"
sw approve "$C" --as alice
check "one of two approvals" eval '[ "$rc" = 0 ] && grep -q "(1 of 2 approvals)" <<<"$out"'
sw approve "$C" --as alice
expect_err "the same person twice is refused" 1 "alice has already approved job deploy of run $C"
# The 15 s run out while the sections below run; the timeout is checked after them.

# ---- an OS user who is not an approver ----------------------------------------------------------
sw workflow run ship-locked; D=$(head -1 <<<"$out")
wait_for "the locked run waits" 60 waits "$D"
sw approve "$D"
expect_err "the OS user, not an approver, is refused" 1 "$me is not an approver of environment locked \(approvers: alice, bob\)"
sw approve "$D" --as alice
expect_err "... and may not use --as" 1 "--as alice: you \($me\) are not an approver of environment locked"

# ---- two jobs wait: --job is needed ---------------------------------------------------------------
sw workflow run ship-selfok; E=$(head -1 <<<"$out")
wait_for "the selfok run waits" 60 waits "$E"
wait_for "both waiting runs stay" 5 status_is "$D" waiting
sw approve "$E" --as tester --comment "my own"
check "allow_self_approval: the actor may approve" eval '[ "$rc" = 0 ]'
wait_for "self-approved: the run completes" 60 ended "$E"
check "... and succeeds" status_is "$E" succeeded
sw run cancel "$D"
wait_for "a cancelled waiting run ends" 30 ended "$D"
check "cancelled while waiting" status_is "$D" cancelled

# ---- deploy_from: a ref outside fails before waiting ----------------------------------------------
git checkout -q -b feature
sw workflow run ship-staging --ref refs/heads/feature; F=$(head -1 <<<"$out")
wait_for "the feature run ends" 60 ended "$F"
sw run view "$F" --json
check "a branch outside deploy_from fails the job before it waits, naming the ref and the patterns" test "$(jx "(j['status'], d['deploy']['conclusion'], d['deploy']['reason'], d['deploy'].get('gate'), d['after']['conclusion'])")" = "('failed', 'failure', 'ref refs/heads/feature may not deploy to environment staging (deploy_from branches: main; tags: v*.*.*)', None, 'skipped')"
git tag v1.2.3
sw workflow run ship-staging --ref refs/tags/v1.2.3; G=$(head -1 <<<"$out")
wait_for "a tag deploy_from allows reaches the gate" 60 waits "$G" && ok "a tag deploy_from allows reaches the gate"
sw run cancel "$G"
wait_for "cancelled" 30 ended "$G"
git checkout -q main

# ---- the timeout, begun above -----------------------------------------------------------------
wait_for "timed out: the run ends" 30 ended "$C"
sw run view "$C" --json
check "timed out: deploy failed with a clear reason" eval '[ "$(json "[x for x in j[\"jobs\"] if x[\"id\"]==\"deploy\"][0][\"reason\"]")" != None ] && grep -qE "the approval for environment quick timed out after 15s \(1 of 2 approvals since" <<<"$(json "[x for x in j[\"jobs\"] if x[\"id\"]==\"deploy\"][0][\"reason\"]")"'
check "... the gate says timed_out, nothing deployed" eval '[ "$(json "[x for x in j[\"jobs\"] if x[\"id\"]==\"deploy\"][0][\"gate\"][\"state\"]")" = timed_out ] && [ ! -e "$T/deployed-$C" ]'
kill -TERM "$r1"; wait "$r1" 2>/dev/null

# ---- SIGKILL of serve --runner while a run waits ----------------------------------------------
# The runner parks a run whose begun jobs all wait at gates (released, status
# waiting) and goes on with the queue; serve killed meanwhile loses nothing.
spawn "$SLIPWAY" serve --runner 1 2> "$T/serve1.err"
s1=$!
sw workflow run ship-staging; K=$(head -1 <<<"$out")
wait_for "the run waits under serve" 60 waits "$K"
# stored RUN EXPR: a python expression over the run's record as stored (j)
stored() { python3 -c "import json; j=json.load(open('$T/repo/.slipway/data/runs/$1/run.json')); print($2)"; }
parked() { [ "$(stored "$1" "(j['status'], j['claimed_by'])")" = "('waiting', None)" ]; }
wait_for "the runner parks it" 30 parked "$K" && ok "a run waiting at its gate is parked: waiting, no runner holds it"
out=$(jq_run "$K"); since=$(jx "d['deploy']['gate']['waiting_since']")
sw workflow run ship-selfok; S=$(head -1 <<<"$out")
wait_for "the same runner takes the next run meanwhile" 60 waits "$S" && ok "a parked run does not hold the runner: the next run reaches its own gate"
kill -KILL "$s1"; wait "$s1" 2>/dev/null
check "killed: the record still says waiting" status_is "$K" waiting
spawn "$SLIPWAY" serve --runner 1 2> "$T/serve2.err"
s2=$!
wait_for "serve is back, its runner scanning" 30 grep -q "waiting for runs" "$T/serve2.err"
check "after a restart the run still waits, unclaimed until a gate is decided" eval 'parked "$K" && ! grep -q "running $K" "$T/serve2.err"'
out=$(jq_run "$K")
check "... its timeout still counts from when it began" test "$(jx "d['deploy']['gate']['waiting_since']")" = "$since"
sw approve "$K" --as alice
check "approved after the restart" test "$rc" = 0
wait_for "the resumed run completes" 60 ended "$K"
sw run view "$K" --json
check "the resumed run succeeded: deploy saw build's outputs restored from the record" eval '[ "$(jx "j[\"status\"]")" = succeeded ] && [ -e "$T/deployed-$K" ] && [ -e "$T/after-$K" ] && "$SLIPWAY" run view "$K" --log | grep -q "deploying built-$K"'
check "... build ran once" test "$("$SLIPWAY" run view "$K" --log | grep -c "built $K")" = 1
check "... the new runner resumed it" grep -q "running $K" "$T/serve2.err"
sw run cancel "$S"
check "a parked run is cancelled at once" eval 'status_is "$S" cancelled'
kill -TERM "$s2"; wait "$s2" 2>/dev/null

# ---- SIGKILL of a runner that holds a waiting run ---------------------------------------------
# `workflow run --wait` holds its run at the gate (it does not park); killed,
# the run is recovered into the parked state, not failed, and resumed.
"$SLIPWAY" workflow run ship-staging --wait > "$T/hold.out" 2>&1 &
hold=$!; _pids+=("$hold")
wait_for "the held run is queued" 30 grep -q "^run-" "$T/hold.out"
H=$(head -1 "$T/hold.out")
wait_for "the held run waits" 60 waits "$H"
out=$(jq_run "$H")
check "--wait holds it (claimed while waiting)" test "$(stored "$H" "j['claimed_by'] is not None")" = True
since=$(jx "d['deploy']['gate']['waiting_since']")
kill -KILL "$hold"; wait "$hold" 2>/dev/null
spawn "$SLIPWAY" runner --name rescuer > "$T/rescuer.out" 2>&1
rescuer=$!
wait_for "recovery parks the run its dead holder left at the gate" 30 parked "$H" && ok "a run whose runner died at a gate is parked, not failed"
out=$(jq_run "$H")
check "... with the reason and the same waiting_since" eval '[ "$(jx "d[\"deploy\"][\"gate\"][\"waiting_since\"]")" = "$since" ] && grep -q "stopped while the run waited" <<<"$(jx "j[\"reason\"]")"'
sw approve "$H" --as alice
wait_for "the recovered run completes" 60 ended "$H"
check "the recovered run succeeded" status_is "$H" succeeded
kill -TERM "$rescuer"; wait "$rescuer" 2>/dev/null

done_testing

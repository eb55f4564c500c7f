#!/usr/bin/env bash
# Gates under faults (issue 12), with real `git push` (two branches in one
# push queue a run each) to a bare repository served by `slipway serve
# --project P --runner 1`: a pushed commit carrying its own
# .slipway/environments/staging.yml without approval still waits at the
# server's gate; a pipeline that leaves `environment:` out cannot deploy past
# the server's rules (approval, deploy_from) with slipway/deploy, while a
# later job of a run that passed the gate may (a second deploy, whose log
# names the backup kept as previous, a rollback `to:` the first, a deploy
# with `switch: true`); a gate inside a reusable workflow (a job `uses:
# ./.github/workflows/x.yml` whose called job names the environment) waits,
# survives serve killed with SIGKILL, and an approval resumes it; a gate with
# a 6 s timeout fails by timeout when its original deadline passes, not 6 s
# after serve's restart; a person's own `slipway deploy` is not gated; a bad
# gate configuration (a bad duration) is named with file and line by serve,
# and by a runner failing the job.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME=Alice GIT_AUTHOR_EMAIL=alice@example.com
export GIT_COMMITTER_NAME=Alice GIT_COMMITTER_EMAIL=alice@example.com
unset GL_USER GL_USERNAME REMOTE_USER
me=$(id -un)

# ---- the server's project, the bare repository, a clone ------------------------------------------
"$SLIPWAY" init -q "$T/P"
rm -f "$T/P/.slipway/environments/"*.yml
cat >"$T/P/.slipway/environments/staging.yml" <<EOF
strategy: direct
approval:
  required: 1
  approvers: [$me, alice]
  timeout: 1h
deploy_from:
  branches: [main]
EOF
cat >"$T/P/.slipway/environments/quick.yml" <<EOF
strategy: direct
approval:
  approvers: [$me, alice]
  timeout: 6s
EOF
printf 'strategy: direct\ndeploy_from:\n  branches: [main]\n' >"$T/P/.slipway/environments/dev.yml"
printf 'strategy: blue-green\n' >"$T/P/.slipway/environments/bg.yml"
git init -q --bare -b main "$T/R.git"
"$SLIPWAY" hook install "$T/R.git" --project "$T/P" >/dev/null || fail "hook install"
git clone -q "$T/R.git" "$T/W" 2>/dev/null
cd "$T/W"
mkdir -p .slipway/pipelines .slipway/environments .github/workflows site
echo '<h1>v1</h1>' >site/index.html
# the commit's own environment files: no approval, any ref (never read)
for e in staging quick dev; do printf 'strategy: direct\n' >.slipway/environments/$e.yml; done
cat >.slipway/pipelines/gated.yml <<'EOF'
name: gated
on:
  push:
    branches: [main]
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: staging
    outputs:
      release: ${{ steps.d.outputs.release }}
    steps:
      - uses: actions/checkout@v4
      - id: d
        uses: slipway/deploy@v1
        with: {env: staging, path: site, message: first}
  again:
    needs: deploy
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: slipway/deploy@v1
        with: {env: staging, path: site, message: second}
      - id: back
        uses: slipway/rollback@v1
        with:
          env: staging
          to: ${{ needs.deploy.outputs.release }}
      - run: test "${{ steps.back.outputs.release }}" = "${{ needs.deploy.outputs.release }}"
      - id: bg
        uses: slipway/deploy@v1
        with: {env: bg, path: site, switch: true}
      - run: echo "bg slot=${{ steps.bg.outputs.slot }} release=${{ steps.bg.outputs.release }}"
EOF
# no environment: its deploys must not pass the server's rules by leaving the gate out
cat >.slipway/pipelines/sneak.yml <<'EOF'
name: sneak
on:
  push:
    branches: [main, feature]
jobs:
  staging:
    if: github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: slipway/deploy@v1
        with: {env: staging, path: site}
  dev:
    if: github.ref == 'refs/heads/feature'
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: slipway/deploy@v1
        with: {env: dev, path: site}
EOF
cat >.slipway/pipelines/called.yml <<EOF
name: called
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      v: \${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: echo "v=built-\$GITHUB_RUN_ID" >> "\$GITHUB_OUTPUT"; echo "built \$GITHUB_RUN_ID"
  ship:
    needs: build
    uses: ./.github/workflows/ship.yml
    with:
      v: \${{ needs.build.outputs.v }}
  after:
    needs: ship
    runs-on: ubuntu-latest
    steps:
      - run: echo "after \${{ needs.ship.outputs.done }}"; touch "$T/after-\$GITHUB_RUN_ID"
EOF
cat >.github/workflows/ship.yml <<EOF
name: ship
on:
  workflow_call:
    inputs:
      v:
        type: string
        required: true
    outputs:
      done:
        value: \${{ jobs.deploy.outputs.done }}
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: staging
    outputs:
      done: \${{ steps.d.outputs.done }}
    steps:
      - id: d
        run: |
          echo "deploying \${{ inputs.v }}"
          touch "$T/called-\$GITHUB_RUN_ID"
          echo "done=shipped-\${{ inputs.v }}" >> "\$GITHUB_OUTPUT"
EOF
cat >.slipway/pipelines/quick.yml <<EOF
name: quick
on:
  push:
    branches: [quick]
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: quick
    steps:
      - run: touch "$T/quick-\$GITHUB_RUN_ID"
EOF
git add -A && git commit -qm "pipelines, and environment files of the commit's own"

push() { pout=$(git push "$@" 2>&1); prc=$?; }
# queued PIPELINE [REF]: the runs the last push queued for it
queued() { sed -n "s|^remote: slipway: queued run \(run-[0-9a-f-]*\) for $1 on ${2:-}.*|\1|p" <<<"$pout"; }
S() { "$SLIPWAY" --project "$T/P" "$@"; }
# stored RUN EXPR: a python expression over the run's record as stored (j), d its jobs by name
stored() { python3 -S -c "import json; j=json.load(open('$T/P/.slipway/data/runs/$1/run.json')); d={x['name']:x for x in j['jobs']}; print($2)"; }
parked() { [ "$(stored "$1" "(j['status'], j['claimed_by'])")" = "('waiting', None)" ]; }
ended() { stored "$1" "j['status']" | grep -qxE "succeeded|failed|cancelled"; }
live() { python3 -S -c "import json; print(json.load(open('$T/P/.slipway/data/envs/$1/state.json')).get('live_release'))" 2>/dev/null || echo None; }
# ms ISO: milliseconds since the epoch of an ISO-8601 UTC time
ms() { python3 -S -c "import datetime,sys; print(int(datetime.datetime.strptime(sys.argv[1], '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc).timestamp()*1000))" "$1"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

start_serve() {
    spawn "$SLIPWAY" --project "$T/P" serve --runner 1 --runner-poll 200ms 2>"$T/serve$1.err"
    SERVE=$!
    wait_for "serve $1 is up, its runner waiting for runs" 30 grep -q "waiting for runs" "$T/serve$1.err"
}
start_serve 1

# ---- the server's gate, not the commit's; no gate left out -------------------------------------------
git branch -q feature
git checkout -q feature
echo '<h1>feature</h1>' >site/index.html && git commit -qam feature
git checkout -q main
push origin main feature
check "the push queues gated, sneak and called on main, sneak on feature" eval '[ "$prc" = 0 ] && [ -n "$(queued gated)" ] && [ "$(queued sneak | wc -l)" = 2 ] && [ -n "$(queued called)" ]'
G=$(queued gated) C=$(queued called)
N=$(queued sneak refs/heads/main) F=$(queued sneak refs/heads/feature)
wait_for "the gated run is parked at its gate" 60 parked "$G" &&
    ok "a pushed staging.yml without approval does not lower the server's gate: the run waits"
check "... the gate is the server's (approvers from P)" test "$(stored "$G" "d['deploy']['gate']['approvers']")" = "['$me', 'alice']"
wait_for "the sneak runs end" 60 eval 'ended "$N" && ended "$F"'
nlog=$(S run view "$N" --log) flog=$(S run view "$F" --log)
check "a job without environment: cannot deploy to a gated environment, saying why on one line" eval '[ "$(stored "$N" "(j[\"status\"], d[\"staging\"][\"conclusion\"])")" = "('"'failed', 'failure'"')" ] && grep -q "slipway/deploy@v1: environment staging needs an approval (1 of $me, alice) that no job of run $N passed: give the job .environment: staging.$" <<<"$nlog"'
check "... nor from a ref outside deploy_from" eval '[ "$(stored "$F" "j[\"status\"]")" = failed ] && grep -q "slipway/deploy@v1: ref refs/heads/feature may not deploy to environment dev (deploy_from branches: main; tags: none)$" <<<"$flog"'
check "... nothing is live on staging or dev" eval '[ "$(live staging)" = None ] && [ "$(live dev)" = None ]'

# ---- a gate inside a reusable workflow ----------------------------------------------------------------
wait_for "the called run is parked at the called job's gate" 60 parked "$C" &&
    ok "a called job naming a gated environment waits; the run is parked"
check "... the waiting job is the called one, after build succeeded" test "$(stored "$C" "(d['build']['conclusion'], d['ship / deploy']['status'], d['ship / deploy']['gate']['environment'])")" = "('success', 'waiting', 'staging')"
since=$(stored "$C" "d['ship / deploy']['gate']['waiting_since']")

# ---- SIGKILL while gates wait, one of them with a 6 s timeout ----------------------------------------------
git checkout -q -b quick
push origin quick
Q=$(queued quick)
wait_for "the quick run is parked at its 6 s gate" 60 parked "$Q"
kill -KILL "$SERVE"; wait "$SERVE" 2>/dev/null
W=$(ms "$(stored "$Q" "d['deploy']['gate']['waiting_since']")")
# restart half-way: a timeout counted from the restart would end 3 s late
while [ "$(now_ms)" -lt $((W + 3000)) ]; do sleep 0.1; done
R=$(now_ms)
start_serve 2
check "after SIGKILL and a restart the runs still wait" eval 'parked "$G" && parked "$C"'
check "... the called job's gate still counts from when it began" test "$(stored "$C" "d['ship / deploy']['gate']['waiting_since']")" = "$since"
wait_for "the quick run ends" 30 ended "$Q"
E=$(ms "$(stored "$Q" "d['deploy']['gate']['decided_at']")")
check "the quick job failed by timeout, with the reason" eval '[ "$(stored "$Q" "(j[\"status\"], d[\"deploy\"][\"conclusion\"], d[\"deploy\"][\"gate\"][\"state\"], d[\"deploy\"].get(\"reason\"))")" = "('"'failed', 'failure', 'timed_out', 'the approval for environment quick timed out after 6s (0 of 1 approvals since $(stored "$Q" "d[\"deploy\"][\"gate\"][\"waiting_since\"]"))'"')" ] || { stored "$Q" j >&2; false; }'
# (on a loaded machine the restart may come after the deadline: then the run
# must end at once, not 6 s later)
check "... when the original deadline passed ($((E - W)) ms after the gate began; restart at $((R - W)) ms), not 6 s after the restart" eval '[ $((E - W)) -ge 6000 ] && [ $E -lt $((R + 6000)) ]'
check "... nothing deployed" test ! -e "$T/quick-$Q"
git checkout -q main

# ---- resuming the reusable workflow's gate ----------------------------------------------------------------
sw --project "$T/P" approve "$C" --as alice --comment "ship it"
check "approve the called job's gate after the restart" eval '[ "$rc" = 0 ] && grep -q "^approved job ship / deploy of run $C for environment staging" <<<"$out"'
wait_for "the resumed called run ends" 60 ended "$C"
check "the resumed run succeeded: the called job ran with its input, after saw its output" eval '[ "$(stored "$C" "j[\"status\"]")" = succeeded ] && [ -e "$T/called-$C" ] && [ -e "$T/after-$C" ]'
log=$(S run view "$C" --log)
check "... build's output reached the called job through its input, restored from the record" grep -q "deploying built-$C" <<<"$log"
check "... the caller's output reached the job after it" grep -q "after shipped-built-$C" <<<"$log"
check "... build ran once" test "$(grep -c "built $C\$" <<<"$log")" = 1
check "the gated run still waits (one approval resumes one run)" parked "$G"

# ---- a run that passed the gate deploys, also from a later job ---------------------------------------------
sw --project "$T/P" approve "$G" --as alice
wait_for "the approved gated run ends" 60 ended "$G"
check "approved: the gated run succeeded" test "$(stored "$G" "j['status']")" = succeeded
first=$(stored "$G" "d['deploy']['outputs']['release']")
log=$(S run view "$G" --log)
check "a later job without environment: deploys: the run passed staging's gate; the log names the backup" grep -qE "Backup: $first, live before this deploy, is kept as staging's previous release" <<<"$log"
check "... and rolls back to: the first release" eval 'grep -q "Rolled back staging: $first is live" <<<"$log" && [ "$(live staging)" = "$first" ]'
bgstate=$(python3 -S -c "import json; s=json.load(open('$T/P/.slipway/data/envs/bg/state.json')); print(s['live_slot'], s['live_release'])" 2>&1)
check "deploy switch: true on a blue-green environment: the idle slot, now live" eval 'grep -qx "bg slot=${bgstate% *} release=${bgstate#* }" <<<"$(cut -f3- <<<"$log" | sed "s/^[^ ]* //")" && [ "${bgstate% *}" = blue ]'

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 on SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T"/serve*.err'

# ---- a person's own deploy is not gated ------------------------------------------------------------------
sw --project "$T/P" deploy "$T/W/site" --env staging --message "by hand"
check "slipway deploy to a gated environment needs no approval (roles decide who may)" eval '[ "$rc" = 0 ] && [ "$(live staging)" != "$first" ]'

# ---- a gate's bad configuration is named with file and line --------------------------------------------------
printf 'strategy: direct\napproval:\n  approvers: [alice]\n  timeout: soon\n' >"$T/P/.slipway/environments/broken.yml"
sw --project "$T/P" serve --runner 1
expect_err "serve refuses to start on it" 1 "broken.yml:4:12: approval.timeout: expected a duration"
git checkout -q -b broken
printf 'name: broken\non:\n  push:\n    branches: [broken]\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    environment: broken\n    steps:\n      - run: touch "%s/broken-$GITHUB_RUN_ID"\n' "$T" >.slipway/pipelines/broken.yml
git add -A && git commit -qm broken
push origin broken
B=$(queued broken)
sw --project "$T/P" runner --once
check "a runner fails the job naming the file and line, before its first step" eval '[ "$(stored "$B" "j[\"status\"]")" = failed ] && [ ! -e "$T/broken-$B" ] && stored "$B" "d[\"deploy\"][\"reason\"]" | grep -qxF "environment broken: $T/P/.slipway/environments/broken.yml:4:12: approval.timeout: expected a duration from 1s to 30d such as 30m or 24h, got '"'soon'"'"'
done_testing

#!/usr/bin/env bash
# The built-in delivery steps run by the runner against a real edge: a
# project with a blue-green environment (staging) and a direct one (dev)
# served by `slipway serve`, and a repository whose workflow checks out,
# scans, deploys to staging's idle slot, health-checks the preview listener,
# switches, health-checks live, rolls back and sees the old page again, then
# deploys to dev. The outputs reach `run view --json`; the release records
# the run's commit, ref and run id. A committed secret fails the run before
# its deploy; a health check that never passes fails after its retries; bad
# with: values, an unknown environment and a path leaving the workspace fail
# on one line; environments come from the server's project, never the
# checked-out commit's.
# The secret below is assembled at run time, so this file holds none.
. "$(dirname "$0")/lib.sh"

rnd() { LC_ALL=C tr -dc "${2:-A-Za-z0-9}" </dev/urandom | head -c "$1"; }

# ---- the server's project: staging (blue-green) and dev (direct) ------------------------------
mkdir -p "$T/p" "$T/v1"
"$SLIPWAY" init -q "$T/p"
PL=$(free_port); PP=$(free_port); PD=$(free_port)
rm -f "$T/p/.slipway/environments/"*.yml
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' "$PL" "$PP" \
    >"$T/p/.slipway/environments/staging.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PD" >"$T/p/.slipway/environments/dev.yml"
printf '<!doctype html><h1>page v1</h1>\n' >"$T/v1/index.html"
cd "$T/p"
sw --json deploy "$T/v1" --env staging; expect_rc "v1 is live on staging before the run" 0
v1=$(json 'j["release"]')

spawn "$SLIPWAY" serve --workers 1 >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PL/_slipway/health"
check "before the run: live serves v1" eval 'curl -s --max-time 5 "http://127.0.0.1:$PL/" | grep -q "page v1"'

# ---- the repository and its workflows ----------------------------------------------------------
mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main .
mkdir -p .github/workflows site .slipway/environments
printf '<!doctype html><h1>page v2</h1>\n' >site/index.html
# an environment file in the commit: never read (the server's project decides)
printf 'strategy: direct\nlisten: 127.0.0.1:1\n' >.slipway/environments/staging.yml
printf 'strategy: direct\n' >.slipway/environments/pushed.yml
cat >.github/workflows/deliver.yml <<'EOF'
name: deliver
on: push
jobs:
  ship:
    runs-on: ubuntu-latest
    outputs:
      release: ${{ steps.deploy.outputs.release }}
      slot: ${{ steps.deploy.outputs.slot }}
      preview_url: ${{ steps.deploy.outputs.preview_url }}
      idle_status: ${{ steps.idle.outputs.status }}
      switched_to: ${{ steps.switch.outputs.release }}
      rolled_back_to: ${{ steps.rollback.outputs.release }}
      findings: ${{ steps.scan.outputs.findings }}
      dev_release: ${{ steps.dev.outputs.release }}
      dev_slot: ${{ steps.dev.outputs.slot }}
      dev_preview: ${{ steps.dev.outputs.preview_url }}
    steps:
      - uses: actions/checkout@v4
      - id: scan
        uses: slipway/scan@v1
      - id: deploy
        uses: slipway/deploy@v1
        with:
          env: staging
          path: site
          message: from the pipeline
          colour: blue
      - id: idle
        uses: slipway/health-check@v1
        with:
          env: staging
          slot: idle
          contains: page v2
          interval: 100ms
      - id: switch
        uses: slipway/switch@v1
        with:
          env: staging
      - uses: slipway/health-check
        with:
          env: staging
          contains: page v2
          interval: 100ms
      - id: rollback
        uses: SLIPWAY/rollback@main
        with:
          env: staging
      - uses: slipway/health-check@v1
        with:
          env: staging
          path: /index.html
          contains: page v1
          interval: 100ms
      - id: dev
        uses: slipway/deploy@v1
        with:
          env: dev
          path: ./site/
EOF
cat >.github/workflows/never.yml <<'EOF'
name: never
on: push
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: slipway/health-check@v1
        with:
          env: staging
          contains: not on this page
          retries: 3
          interval: 50ms
      - run: echo after
EOF
for bad in "retries: many" "interval: soon" "status: 2000" "slot: green"; do
    name=bad-${bad%%:*}
    printf 'name: %s\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: slipway/health-check@v1\n        with:\n          env: staging\n          %s\n' \
        "$name" "$bad" >".github/workflows/$name.yml"
done
printf 'name: bad-switch\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: slipway/deploy@v1\n        with:\n          env: staging\n          path: site\n          switch: yes please\n' \
    >.github/workflows/bad-switch.yml
printf 'name: unknown-env\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: slipway/switch@v1\n        with:\n          env: pushed\n' \
    >.github/workflows/unknown-env.yml
printf 'name: no-env\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: slipway/rollback@v1\n' \
    >.github/workflows/no-env.yml
printf 'name: escape\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: ln -s "%s" out\n      - uses: slipway/deploy@v1\n        with:\n          env: dev\n          path: out\n      - uses: slipway/deploy@v1\n        if: always()\n        with:\n          env: dev\n          path: ../\n' \
    "$T/v1" >.github/workflows/escape.yml
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm site
sha=$(git rev-parse HEAD)

# ---- workflow check lists the steps as supported -------------------------------------------------
sw workflow check .github/workflows/deliver.yml
check "workflow check: the delivery steps load as supported" eval '[ "$rc" = 0 ]'
printf 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: slipway/teleport@v1\n' >"$T/tele.yml"
sw workflow check "$T/tele.yml"
check "workflow check: an unknown slipway/ step is refused, the supported ones listed" eval '[ "$rc" = 1 ] && grep -q "slipway/deploy, slipway/switch, slipway/rollback, slipway/health-check, slipway/scan" <<<"$out$errout"'

# ---- the delivery run ------------------------------------------------------------------------------
RUN() { sw --project "$T/p" workflow run "$1" --repo "$T/repo" --wait; }
RUN deliver
expect_rc "the delivery run succeeds" 0
id=$(head -1 <<<"$out")
log=$out
check "scan: no finding, said in the log" grep -qE "\] 0 findings; [0-9]+ files scanned" <<<"$log"
check "deploy: an unknown with: key is a warning, as GitHub words it" grep -q "Unexpected input(s) 'colour', valid inputs are \['env', 'path', 'switch', 'message'\]" <<<"$log"
check "deploy: into the idle slot, preview named" grep -qE "Deployed r-[0-9-]+[0-9a-f]+ to the idle green slot of staging, preview on 127.0.0.1:$PP" <<<"$log"
check "deploy: the log names the backup release and where it stays" grep -q "Backup: $v1, live, stays in the blue slot" <<<"$log"
# the edge may still be loading the release (503) on the first attempts
check "health-check idle: each attempt's status line, on the preview listener" grep -qE "Attempt [0-9]+/10: GET http://127.0.0.1:$PP/: HTTP/1.1 200 OK$" <<<"$log"
check "switch: the green slot is live" grep -qE "Switched staging: the green slot is live with r-" <<<"$log"
check "rollback: back to v1 in the blue slot" grep -q "Rolled back staging: the blue slot is live with $v1" <<<"$log"
check "health-check after rollback sees the old page" grep -q "127.0.0.1:$PL/index.html is healthy: 200, body contains 'page v1'" <<<"$log"
check "dev: a direct deploy goes live, v1-less dev has no backup" eval 'grep -q "to dev (direct): it is live" <<<"$log" && grep -q "Backup: none (dev had no live release)" <<<"$log"'

sw --project "$T/p" run view "$id" --json
rel=$(json 'j["jobs"][0]["outputs"]["release"]')
check "run view --json: the deploy's outputs" test "$(json '[j["jobs"][0]["outputs"][k] for k in ("slot", "preview_url", "idle_status", "findings", "dev_slot", "dev_preview")]')" = "['green', 'http://127.0.0.1:$PP', '200', '0', '', '']"
check "run view --json: switch and rollback outputs" test "$(json '(j["jobs"][0]["outputs"]["switched_to"] == j["jobs"][0]["outputs"]["release"], j["jobs"][0]["outputs"]["rolled_back_to"])')" = "(True, '$v1')"
check "the deployed release is a release id" eval '[[ "$rel" =~ ^r-[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}$ ]]'
check "every step of the run succeeded" test "$(json 'set(s["conclusion"] for s in j["jobs"][0]["steps"])')" = "{'success'}"

cd "$T/p"
sw --json releases
check "the release records the run's commit, ref and run id" test "$(json '[(r["commit"], r["ref"], r["run"], r["message"]) for r in j["releases"] if r["id"] == "'"$rel"'"]')" = "[('$sha', 'refs/heads/main', '$id', 'from the pipeline')]"
check "live serves v1 again after the rollback" eval 'curl -s --max-time 5 "http://127.0.0.1:$PL/" | grep -q "page v1"'
check "preview serves v2 (the rolled-back release stays in the other slot)" eval 'curl -s --max-time 5 "http://127.0.0.1:$PP/" | grep -q "page v2"'
check "dev serves the page, deployed by the run" eval 'curl -s --max-time 5 "http://127.0.0.1:$PD/" | grep -q "page v2"'
sw history staging
check "history: deploy, switch, rollback by the run" eval 'grep -c "workflow run $id" <<<"$out" | grep -qx 2 && grep -q "from the pipeline" <<<"$out"'

# ---- a health check that never passes -------------------------------------------------------------
cd "$T/repo"
RUN never
expect_rc "a health check that never passes fails the run" 1
check "... after its 3 attempts, each logged" eval 'grep -c "Attempt [1-3]/3: GET http://127.0.0.1:$PL/: HTTP/1.1 200 OK, but the body does not contain" <<<"$out" | grep -qx 3'
check "... saying why on one line" grep -q "slipway/health-check@v1: http://127.0.0.1:$PL/ did not answer 200 with a body containing 'not on this page' after 3 attempts" <<<"$out"
check "... and the step after it is skipped" eval '! grep -q "^\[check\] after" <<<"$out"'

# ---- bad with: values, unknown environments, a path leaving the workspace ---------------------------
RUN bad-retries; check "retries: many fails on one line" eval '[ "$rc" = 1 ] && grep -q "slipway/health-check@v1: retries: expected a whole number of attempts from 1 to 1000, got '"'many'"'" <<<"$out"'
RUN bad-interval; check "interval: soon fails on one line" eval '[ "$rc" = 1 ] && grep -q "interval: expected a duration such as 500ms, 2s or 1m (at most 1h), got '"'soon'"'" <<<"$out"'
RUN bad-status; check "status: 2000 fails on one line" eval '[ "$rc" = 1 ] && grep -q "status: expected an HTTP status code from 100 to 599, got '"'2000'"'" <<<"$out"'
RUN bad-slot; check "slot: green fails on one line" eval '[ "$rc" = 1 ] && grep -q "slot: expected live or idle, got '"'green'"'" <<<"$out"'
RUN bad-switch; check "switch: yes please fails on one line, before a release is made" eval '[ "$rc" = 1 ] && grep -q "switch: expected true or false, got '"'yes please'"'" <<<"$out" && ! grep -q "^\[b\] Release r-" <<<"$out"'
RUN unknown-env
check "an environment only the pushed commit has is unknown: one line listing the server's" eval '[ "$rc" = 1 ] && grep -qE "slipway/switch@v1: unknown environment '"'pushed'"' \(no $T/p/.slipway/environments/pushed.yml; known: dev, staging\)" <<<"$out"'
RUN no-env; check "a missing env fails on one line" eval '[ "$rc" = 1 ] && grep -q "slipway/rollback@v1: env: required" <<<"$out"'
RUN escape
check "a path through a symbolic link out of the workspace is refused" eval '[ "$rc" = 1 ] && grep -q "slipway/deploy@v1: path: '"'out'"' leaves the workspace" <<<"$out"'
check "... and so is ../" grep -q "slipway/deploy@v1: path: '../' leaves the workspace" <<<"$out"
check "staging was not touched by the failed runs (v1 still live)" eval 'curl -s --max-time 5 "http://127.0.0.1:$PL/" | grep -q "page v1"'

# ---- a committed secret fails the run before its deploy ---------------------------------------------
cd "$T/repo"
ghtok="gh""p_$(rnd 36)"
printf 'const token = "%s";\n' "$ghtok" >site/app.js
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm leak
before=$(ls "$T/p/.slipway/data/releases" | wc -l)
RUN deliver
expect_rc "a committed secret fails the run" 1
leak=$(head -1 <<<"$out")
check "the finding is logged redacted, with its fingerprint" grep -qE "^\[ship\] site/app.js:1 github-token ghp_\*\*\*\* fingerprint:[0-9a-f]{16}$" <<<"$out"
check "... and as an error annotation" grep -qE "site/app.js:1: a secret \(github-token, ghp_\*\*\*\*\)" <<<"$out"
check "the secret itself is in no log line" eval '! grep -q "$ghtok" <<<"$out"'
sw --project "$T/p" run view "$leak" --json
check "the scan step failed, the deploy and every later step skipped" test "$(json '[s["conclusion"] for s in j["jobs"][0]["steps"]][:4]')" = "['success', 'failure', 'skipped', 'skipped']"
check "run view --json: findings is 1" test "$(json 'j["jobs"][0]["outputs"].get("findings")')" = 1
check "no release was made" test "$(ls "$T/p/.slipway/data/releases" | wc -l)" = "$before"
sw --project "$T/p" run view "$leak" --log
check "the stored log holds no secret" eval '! grep -q "$ghtok" <<<"$out" && ! grep -rq "$ghtok" "$T/p/.slipway/data/runs"'

# the allow-list of the scanned tree lets it through
fp=$(grep -oE "fingerprint:[0-9a-f]{16}$" <<<"$(sw --project "$T/p" run view "$leak" --log; echo "$out")" | head -1)
printf '%s\n' "$fp" >.slipway/scan-ignore
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm allow
RUN deliver
expect_rc "with its fingerprint in .slipway/scan-ignore the run succeeds" 0
check "... and the scan says one finding was allowed" grep -qE "0 findings; [0-9]+ files scanned, 0 binary skipped, 0 ignored by path, 1 finding allowed by fingerprint" <<<"$out"

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "serve exits 0 on SIGTERM" test "$rc" = 0
check "no sanitizer report" eval '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$T/serve.err"'
done_testing

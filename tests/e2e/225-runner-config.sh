#!/usr/bin/env bash
# The runner's configuration: .slipway/runner.yml (labels, unsupported, jobs)
# read by `slipway runner`, `serve --runner N` and `workflow run --wait`, and
# the command line over it (--label, --runner-label, --jobs, --unsupported).
# runs-on is matched against the labels in force; a job no label covers fails
# at once naming the labels it asked for and those the runner has; a bad file
# is refused at its FILE:LINE:COL.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/repo" && cd "$T/repo"
git init -q -b main . && "$SLIPWAY" init -q .
# serve --runner below also serves the environments: on free ports, not init's 8081, 8082 and
# 9082, which anything else on the machine may hold (serve then refuses to start).
for f in .slipway/environments/*.yml; do
    sed -i "s/127\.0\.0\.1:[0-9]*/127.0.0.1:PORT/" "$f"
    while grep -q 'PORT' "$f"; do sed -i "0,/PORT/s//$(free_port)/" "$f"; done
done
mkdir -p .github/workflows
cat > .github/workflows/gpu.yml <<'EOF'
on: push
jobs:
  train:
    runs-on: [self-hosted, gpu]
    steps:
      - run: echo "trained on gpu"
EOF
cat > .github/workflows/plain.yml <<'EOF'
on: push
jobs:
  p:
    runs-on: ubuntu-latest
    steps:
      - run: echo plain ran
EOF
cat > .github/workflows/setup.yml <<'EOF'
on: push
jobs:
  s:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-go@v5
      - run: echo after the skipped step
EOF
cat > .github/workflows/par.yml <<'EOF'
on: push
jobs:
  par:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        leg: [x, y]
    steps:
      - run: |
          d="$RUNNER_TEMP/../../par"; mkdir -p "$d"; touch "$d/${{ matrix.leg }}"
          for i in $(seq 100); do [ -e "$d/x" ] && [ -e "$d/y" ] && break; sleep 0.1; done
          [ -e "$d/x" ] && [ -e "$d/y" ] && echo "both legs ran at once"
EOF
git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init

# ---- the default labels -----------------------------------------------------------------------
sw workflow run gpu --wait
expect_rc "without runner.yml, a gpu job finds no runner: exit 1" 1
check "... at once, naming the labels asked for and the default set" grep -q "no runner matches the labels of job train: runs-on \[self-hosted, gpu\]; this runner has \[self-hosted, linux, [a-z0-9_]*, ubuntu-latest\]" <<<"$out"
gid=$(head -1 <<<"$out")
sw run view "$gid" --json
check "... the job failed, no step ran" test "$(json '(j["status"], j["jobs"][0]["conclusion"], j["jobs"][0]["steps"])')" = "('failed', 'failure', [])"

# ---- runner.yml labels -----------------------------------------------------------------------
printf 'labels: [self-hosted, GPU, linux]\n' > .slipway/runner.yml
sw workflow run gpu --wait
check "runner.yml labels: the gpu job runs (labels ignore case)" eval '[ "$rc" = 0 ] && grep -q "^\[train\] trained on gpu" <<<"$out"'
sw workflow run plain --wait
check "runner.yml labels replace the default set: ubuntu-latest is no longer covered" eval '[ "$rc" = 1 ] && grep -q "runs-on \[ubuntu-latest\]; this runner has \[self-hosted, GPU, linux\]" <<<"$out"'
sw workflow run plain --wait --label ubuntu-latest --label self-hosted
check "--label replaces the file's labels" eval '[ "$rc" = 0 ] && grep -q "^\[p\] plain ran" <<<"$out"'
sw workflow run gpu --wait --label linux
check "... so the gpu job fails, naming only the command line's labels" eval '[ "$rc" = 1 ] && grep -q "runs-on \[self-hosted, gpu\]; this runner has \[linux\]$" <<<"$out"'
sw workflow run gpu --wait --label 'two words'
expect_err "--label: a label with a blank is a usage error" 2 "--label: expected a label"
sw workflow run gpu --label gpu
expect_err "--label without --wait is a usage error" 2 "--label needs --wait"
sw runner --label $'a\x1b[31m' --once
expect_err "runner --label: control characters refused, escaped" 2 "expected a label .*got 'a.x1b\[31m'"

# ---- bad files ------------------------------------------------------------------------------
printf 'labels: [gpu]\nlabel: [cpu]\n' > .slipway/runner.yml
sw workflow run gpu --wait
expect_err "an unknown key in runner.yml: FILE:LINE:COL, nothing queued" 1 "runner.yml:2:1: unknown key 'label' \(expected labels, unsupported or jobs\)"
sw run list --json
check "... nothing was queued" test "$(json 'len([r for r in j["runs"] if r["status"] == "queued"])')" = 0
sw runner --once
expect_err "runner refuses the same file" 1 "runner.yml:2:1: unknown key 'label'"
port=$(free_port)
sw serve --runner 1 --admin 127.0.0.1:$port
expect_err "serve --runner refuses it before serving" 1 "runner.yml:2:1: unknown key 'label'"
printf 'jobs: 100\n' > .slipway/runner.yml
sw runner --once
expect_err "jobs out of range" 1 "runner.yml:1:7: jobs: expected a whole number from 1 to 64, got '100'"
printf 'unsupported: sometimes\n' > .slipway/runner.yml
sw runner --once
expect_err "unsupported: neither skip nor error" 1 "runner.yml:1:14: unsupported: expected skip or error"

# ---- unsupported: skip ---------------------------------------------------------------------------
rm .slipway/runner.yml
sw workflow run setup
expect_err "without unsupported: skip, an unsupported uses: refuses the workflow" 1 "actions/setup-go@v5"
printf 'unsupported: skip\n' > .slipway/runner.yml
sw workflow run setup --wait
check "runner.yml unsupported: skip: the step is skipped with a warning, the run succeeds" eval '[ "$rc" = 0 ] && grep -q "skipped" <<<"$out" && grep -q "^\[s\] after the skipped step" <<<"$out"'
sw workflow run setup --unsupported error
expect_err "--unsupported error overrides the file" 1 "actions/setup-go@v5"

# ---- jobs: from the file; the command line over it --------------------------------------------
printf 'jobs: 2\n' > .slipway/runner.yml
sw workflow run par --wait
check "runner.yml jobs: 2 runs both legs at once" eval '[ "$rc" = 0 ] && [ "$(grep -c "both legs ran at once$" <<<"$out")" = 2 ]'
sw workflow run par --wait --jobs 1
expect_rc "--jobs 1 over the file: one leg at a time, so they never meet" 1

# ---- slipway runner and serve --runner read it ------------------------------------------------
printf 'labels: [self-hosted, gpu]\n' > .slipway/runner.yml
sw workflow run gpu; rid=$(head -1 <<<"$out")
sw runner --once
check "runner: runner.yml's labels in force" eval '[ "$rc" = 0 ] && grep -q "waiting for runs (labels: self-hosted, gpu)" <<<"$errout" && grep -q "^\[train\] trained on gpu" <<<"$errout"'
sw workflow run gpu; rid=$(head -1 <<<"$out")
sw runner --once --label cpu
check "runner --label over the file: the job fails naming [cpu]" eval '[ "$rc" = 1 ] && grep -q "runs-on \[self-hosted, gpu\]; this runner has \[cpu\]" <<<"$errout"'
sw serve --runner-label gpu
expect_err "serve --runner-label needs --runner" 2 "need --runner N"

sw workflow run gpu; s1=$(head -1 <<<"$out")
port=$(free_port)
spawn "$SLIPWAY" serve --runner 1 --admin 127.0.0.1:$port 2> "$T/serve1.err"
serve_pid=$!
ended() { "$SLIPWAY" run view "$1" --json | grep -qE '"status": "(succeeded|failed)"'; }
wait_for "serve --runner ran the run" 60 ended "$s1"
sw run view "$s1" --json
check "serve --runner: runner.yml's labels cover the gpu job" test "$(json 'j["status"]')" = succeeded
kill -TERM "$serve_pid"; wait "$serve_pid" 2>/dev/null

sw workflow run gpu; s2=$(head -1 <<<"$out")
port=$(free_port)
spawn "$SLIPWAY" serve --runner 1 --runner-label linux --admin 127.0.0.1:$port 2> "$T/serve2.err"
serve_pid=$!
wait_for "serve --runner ran the second run" 60 ended "$s2"
sw run view "$s2" --json
check "serve --runner-label over the file: the gpu job fails" test "$(json 'j["status"]')" = failed
check "... naming the labels" grep -q "runs-on \[self-hosted, gpu\]; this runner has \[linux\]" "$T/serve2.err"
kill -TERM "$serve_pid"; wait "$serve_pid" 2>/dev/null

done_testing

#!/usr/bin/env bash
# Push to live without waiting for a poll: a pushed run's actions/checkout
# borrows the bare repository's objects (an alternates file, no fetch) and is
# as shallow as a fetch --depth=1 (fetch-depth: 0 is the whole history; a
# with.ref, another depth or a second checkout into the same directory still
# fetch); the run's github.event still has the pushed head commit; a deploy,
# a rollback and a switch made on this host wake `slipway serve --poll 10m` at
# once, and SIGTERM stops it at once; and the whole flow — push, the runner of
# `serve --runner 1 --runner-poll 10m`, checkout, slipway/deploy — puts the
# page on dev long before either poll interval. bench/pipeline.sh times it.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME=Alice GIT_AUTHOR_EMAIL=alice@example.com
export GIT_COMMITTER_NAME=Alice GIT_COMMITTER_EMAIL=alice@example.com
unset GL_USER GL_USERNAME REMOTE_USER

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
page() { curl -s --max-time 5 "http://127.0.0.1:$1/"; }
serves() { page "$1" | grep -q "$2"; }

# ---- a project with dev (direct) and staging (blue-green), a bare repository with the hook ----------
"$SLIPWAY" init -q "$T/P"
PD=$(free_port); PL=$(free_port); PP=$(free_port)
rm -f "$T/P/.slipway/environments/"*.yml
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PD" > "$T/P/.slipway/environments/dev.yml"
printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' "$PL" "$PP" \
    > "$T/P/.slipway/environments/staging.yml"
git init -q --bare -b main "$T/R.git"
"$SLIPWAY" hook install "$T/R.git" --project "$T/P" >/dev/null
R=$(realpath "$T/R.git")

git clone -q "$T/R.git" "$T/W" 2>/dev/null
cd "$T/W"
git checkout -q -b develop
mkdir -p site .slipway/pipelines
echo '<h1>page one</h1>' > site/index.html
git add -A && git commit -qm "one"
echo '<h1>page two</h1>' > site/index.html
git commit -qam "two"
cat > .slipway/pipelines/co.yml <<'EOF'
name: co
on:
  push:
    branches: [develop]
jobs:
  co:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo "default: shallow=$(git rev-parse --is-shallow-repository) count=$(git rev-list --count HEAD) head=$(git rev-parse HEAD)"
          echo "default: alternates=$(cat .git/objects/info/alternates) packs=$(find .git/objects -name '*.pack' | wc -l) dirty=$(git status --porcelain | wc -l)"
          echo "default: page=$(cat site/index.html)"
          echo "event:" "head=${{ github.event.head_commit.message }} by ${{ github.event.head_commit.author.name }}"
      - uses: actions/checkout@v4
        with:
          path: full
          fetch-depth: 0
      - run: |
          echo "full: shallow=$(git -C full rev-parse --is-shallow-repository) count=$(git -C full rev-list --count HEAD) log=$(git -C full log --format=%s | tr '\n' ,)"
      - uses: actions/checkout@v4
        with:
          path: byref
          ref: old
      - run: |
          echo "byref: page=$(cat byref/site/index.html) alternates=$(test -e byref/.git/objects/info/alternates && echo yes || echo no) shallow=$(git -C byref rev-parse --is-shallow-repository)"
      - uses: actions/checkout@v4
        with:
          path: deep
          fetch-depth: 2
      - run: |
          echo "deep: count=$(git -C deep rev-list --count HEAD) alternates=$(test -e deep/.git/objects/info/alternates && echo yes || echo no)"
      - uses: actions/checkout@v4
        with:
          path: full
      - run: |
          echo "again: head=$(git -C full rev-parse HEAD) alternates=$(cat full/.git/objects/info/alternates)"
EOF
git add -A && git commit -qm "checkout pipeline"
HEAD=$(git rev-parse HEAD)
git branch old HEAD~2 && git push -q origin old 2>/dev/null
git push -q origin develop 2>/dev/null

# ---- actions/checkout: the run's commit without a fetch ---------------------------------------------
cd "$T"
sw --project "$T/P" runner --once
expect_rc "the pushed run succeeds" 0
log=$errout
check "default checkout: the pushed commit, one deep, as a fetch --depth=1 leaves it" \
    grep -q "default: shallow=true count=1 head=$HEAD" <<<"$log"
check "... its objects borrowed from the bare repository: an alternates file, no pack copied" \
    grep -q "default: alternates=$R/objects packs=0 dirty=0" <<<"$log"
check "... the working tree is the commit's" grep -q "default: page=<h1>page two</h1>" <<<"$log"
check "github.event.head_commit of a pushed run: its message and author" \
    grep -q "event: head=checkout pipeline by Alice" <<<"$log"
check "fetch-depth: 0 is the whole history, not shallow" \
    grep -q "full: shallow=false count=3 log=checkout pipeline,two,one," <<<"$log"
check "with.ref still fetches (no alternates), resolved in the repository" \
    grep -q "byref: page=<h1>page one</h1> alternates=no shallow=true" <<<"$log"
check "fetch-depth: 2 still fetches two deep" grep -q "deep: count=2 alternates=no" <<<"$log"
check "a second checkout into the same directory fetches into it" \
    grep -q "again: head=$HEAD alternates=$R/objects" <<<"$log"

# a working repository (workflow run --repo): its .git/objects is borrowed
cd "$T/W"
sw --project "$T/P" workflow run co --repo "$T/W" --ref refs/heads/develop --wait
check "a working repository's run: borrowed from its .git/objects" \
    eval '[ "$rc" = 0 ] && grep -q "default: alternates=$T/W/.git/objects packs=0 dirty=0" <<<"$out"'
git rm -q .slipway/pipelines/co.yml && git commit -qm "no checkout pipeline"
git push -q origin develop 2>/dev/null
cd "$T"

# ---- the edge wakes on a state change of this host -------------------------------------------------------
mkdir -p "$T/v1" "$T/v2"
echo '<h1>release v1</h1>' > "$T/v1/index.html"
echo '<h1>release v2</h1>' > "$T/v2/index.html"
"$SLIPWAY" --project "$T/P" deploy "$T/v1" --env dev >/dev/null 2>&1
"$SLIPWAY" --project "$T/P" deploy "$T/v1" --env staging >/dev/null 2>&1
cd "$T/P"
spawn "$SLIPWAY" serve --workers 1 --poll 10m 2>"$T/serve1.err"
SERVE=$!
t0=$(now_ms)
wait_for "serve is up" 30 serves "$PD" "release v1"
"$SLIPWAY" deploy "$T/v2" --env dev >/dev/null 2>&1
if wait_for "dev serves v2" 30 serves "$PD" "release v2"; then
    ok "a deploy wakes serve --poll 10m: dev serves it $(( $(now_ms) - t0 )) ms after serve started"
    "$SLIPWAY" rollback dev >/dev/null 2>&1
    wait_for "dev serves v1 again" 30 serves "$PD" "release v1" && ok "a rollback wakes it too"
else
    fail "a rollback wakes it too: not tried, dev never served v2"
fi
"$SLIPWAY" deploy "$T/v2" --env staging >/dev/null 2>&1
wait_for "the preview serves v2" 30 serves "$PP" "release v2" && ok "a blue-green deploy reaches the preview listener at once"
"$SLIPWAY" switch staging >/dev/null 2>&1
wait_for "live staging serves v2" 30 serves "$PL" "release v2" && ok "a switch wakes it too"
# stop_serve: SIGTERM, and SIGKILL when that did not stop it within 20 s. 0 when SIGTERM did.
gone() { ! kill -0 "$SERVE" 2>/dev/null; }
stop_serve() {
    kill -TERM "$SERVE"
    if wait_for "serve --poll 10m stops on SIGTERM" 20 gone; then wait "$SERVE" 2>/dev/null; return 0; fi
    kill -KILL "$SERVE" 2>/dev/null; wait "$SERVE" 2>/dev/null; return 1
}
stop_serve && ok "SIGTERM stops serve --poll 10m at once, not after its poll"

# ---- push to live: serve's runner and edge, both with a 10-minute poll ------------------------------------
mkdir -p "$T/W/.slipway/pipelines"
cat > "$T/W/.slipway/pipelines/dev.yml" <<'EOF'
name: dev
on:
  push:
    branches: [develop]
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: slipway/deploy@v1
        with:
          env: dev
          path: site
EOF
spawn "$SLIPWAY" serve --workers 1 --poll 10m --runner 1 --runner-poll 10m 2>"$T/serve2.err"
SERVE=$!
wait_for "serve's runner waits" 30 grep -q "waiting for runs" "$T/serve2.err"
wait_for "serve is up" 30 serves "$PD" "release v1"
cd "$T/W"
echo '<h1>pushed page</h1>' > site/index.html
git add -A && git commit -qm "pushed page"
t0=$(now_ms)
git push -q origin develop 2>/dev/null
wait_for "dev serves the pushed page" 120 serves "$PD" "pushed page" &&
    ok "push to live with 10-minute polls: dev serves the pushed page $(( $(now_ms) - t0 )) ms after the push"
check "the run's deploy says it went live" grep -q "to dev (direct): it is live" "$T/serve2.err"
stop_serve >/dev/null

done_testing

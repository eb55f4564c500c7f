#!/usr/bin/env bash
# slipway hook: real `git push` to a bare repository with slipway's
# post-receive hook. A push to a branch a pipeline's branches: match queues
# exactly one run (ref, sha, before, after, pusher, repository); a push that
# matches nothing queues nothing and says so in one line; a tag push matching
# tags: ['v*.*.*'] (lightweight and annotated); paths filters see the pushed
# diff (an existing branch: OLD..NEW; a new one: from the default branch's
# merge base); a pipeline that does not load is named FILE:LINE on stderr
# while the others still queue; a runner runs a hook-queued run to success,
# checking out from the bare repository; serve's runner with a 30 s poll
# starts a pushed run within seconds (the wake); a project directory that has
# gone leaves the push successful with the reason on stderr; install refuses a
# non-bare repository and a foreign hook; a run naming a repository the
# project does not list is refused by the runner.
. "$(dirname "$0")/lib.sh"

export GIT_AUTHOR_NAME=Alice GIT_AUTHOR_EMAIL=alice@example.com
export GIT_COMMITTER_NAME=Alice GIT_COMMITTER_EMAIL=alice@example.com
unset GL_USER GL_USERNAME REMOTE_USER
Z=0000000000000000000000000000000000000000

# ---- usage ---------------------------------------------------------------------------------------
sw hook --help
check "hook --help lists install, uninstall, post-receive" eval '[ "$rc" = 0 ] && grep -qE "^  install " <<<"$out" && grep -qE "^  uninstall " <<<"$out" && grep -qE "^  post-receive " <<<"$out"'
for s in install uninstall post-receive; do
    sw hook $s --help; check "hook $s --help" eval '[ "$rc" = 0 ] && grep -q "^usage: slipway hook $s" <<<"$out"'
done

sw serve --runner-poll 30s
expect_err "serve --runner-poll needs --runner" 2 "need --runner N"
sw runner --poll 0s
expect_rc "runner --poll 0s is refused" 2

# ---- install ---------------------------------------------------------------------------------------
"$SLIPWAY" init -q "$T/P"
git init -q --bare -b main "$T/R.git"
git init -q -b main "$T/nonbare"
sw hook install "$T/nonbare" --project "$T/P"
expect_err "install refuses a repository that is not bare" 1 "is not a bare repository"
check "nothing written into the non-bare repository" test ! -e "$T/nonbare/.git/hooks/post-receive"
sw hook install "$T/R.git"
expect_err "install needs --project" 2 "--project DIR is required"
printf '#!/bin/sh\necho foreign\n' > "$T/R.git/hooks/post-receive"
chmod 755 "$T/R.git/hooks/post-receive"
sw hook install "$T/R.git" --project "$T/P"
expect_err "install refuses to overwrite a foreign hook, and says how" 1 "slipway did not write it; --force replaces it"
check "the foreign hook is untouched" grep -q "echo foreign" "$T/R.git/hooks/post-receive"
sw hook uninstall "$T/R.git"
expect_err "uninstall leaves a foreign hook" 1 "slipway did not write it; left as it is"
sw hook install "$T/R.git" --project "$T/P" --force
expect_rc "install --force replaces it" 0
H="$T/R.git/hooks/post-receive"
check "the hook is mode 755" eval '[ "$(stat -c %a "$H")" = 755 ]'
check "the hook execs this slipway, absolute, with the project" grep -qF "exec '$(realpath "$SLIPWAY")' hook post-receive --project '$(realpath "$T/P")'" "$H"
check "the project lists the repository" grep -qxF "$(realpath "$T/R.git")" "$T/P/.slipway/repositories"
sw hook install "$T/R.git" --project "$T/P"
expect_rc "installing again over slipway's own hook needs no --force" 0
check "listed once" eval '[ "$(grep -cxF "$(realpath "$T/R.git")" "$T/P/.slipway/repositories")" = 1 ]'
check "no temporary left in hooks/" eval '[ -z "$(ls "$T/R.git/hooks" | grep tmp)" ]'

# ---- a working clone with pipelines -------------------------------------------------------------------
git clone -q "$T/R.git" "$T/W" 2>/dev/null
cd "$T/W"
mkdir -p .slipway/pipelines site
cat > .slipway/pipelines/dev.yml <<'EOF'
name: dev
on:
  push:
    branches: [develop]
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: |
          test "$(cat site/index.html)" = v2
          echo "sha=${{ github.sha }} ref=${{ github.ref }}"
          echo "pusher=${{ github.event.pusher.name }} first=${{ github.event.commits[0].message }}"
          echo "before=${{ github.event.before }}"
EOF
cat > .slipway/pipelines/staging.yaml <<'EOF'
name: staging
on:
  push:
    tags: ['v*.*.*']
jobs:
  ship:
    runs-on: ubuntu-latest
    steps:
      - run: echo shipping
EOF
cat > .slipway/pipelines/docs.yml <<'EOF'
name: docs
on:
  push:
    branches: [develop, main, 'docs-*']
    paths: ['docs/**']
jobs:
  docs:
    runs-on: ubuntu-latest
    steps:
      - run: echo docs
EOF
echo v1 > site/index.html
git add -A && git commit -qm "first"

# push output: git's own lines and the hook's, which git prefixes with "remote: "
push() { pout=$(git push "$@" 2>&1); prc=$?; }
runs() { "$SLIPWAY" --project "$T/P" run list --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)['runs']))"; }
view() { sw --project "$T/P" run view "$1" --json; }

push origin main
check "a push that matches nothing succeeds" eval '[ "$prc" = 0 ]'
check "and says so in one line" eval '[ "$(grep -c "^remote: slipway:" <<<"$pout")" = 1 ] && grep -q "^remote: slipway: nothing queued: no pipeline in .slipway/pipelines/ matches a push of refs/heads/main" <<<"$pout"'
check "nothing is queued" eval '[ "$(runs)" = 0 ]'
MAIN=$(git rev-parse HEAD)

git checkout -q -b develop
echo v2 > site/index.html
git commit -qam "second: v2"
push origin develop
DEV=$(git rev-parse HEAD)
check "a push to a branch a pipeline matches queues exactly one run" eval '[ "$(runs)" = 1 ] && [ "$(grep -c "^remote: slipway: queued run run-.* for dev on refs/heads/develop" <<<"$pout")" = 1 ]'
RUN1=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for dev .*/\1/p' <<<"$pout")
view "$RUN1"
check "the run: event push, ref, sha, before (a new branch), after" eval '[ "$(json "j[\"event\"], j[\"ref\"], j[\"sha\"], j[\"before\"], j[\"after\"], j[\"status\"]")" = "push refs/heads/develop $DEV $Z $DEV queued" ]'
check "the run names the pipeline file and the bare repository" eval '[ "$(json "j[\"workflow_file\"], j[\"repository\"]")" = ".slipway/pipelines/dev.yml $(realpath "$T/R.git")" ]'
check "the pusher (the OS user) and the pushed commits are recorded" eval '[ "$(json "j[\"actor\"], j[\"push\"][\"pusher\"][\"name\"], j[\"push\"][\"pusher\"][\"email\"], \"|\".join(c[\"message\"] for c in j[\"push\"][\"commits\"]), j[\"push\"][\"head_commit\"][\"id\"], j[\"push\"][\"created\"]")" = "tester tester alice@example.com second: v2 $DEV True" ]'
check "paths: a new branch is compared with main's merge base (docs/ unchanged: docs not queued)" eval '! grep -q "for docs" <<<"$pout"'

# ---- a runner runs it from the bare repository ------------------------------------------------------
cd "$T"
sw --project "$T/P" runner --once
expect_rc "runner --once runs the hook-queued run to success" 0
check "it checked out the pushed commit from the bare repository" eval 'grep -q "Fetching $DEV of $(realpath "$T/R.git")" <<<"$errout" && grep -q "sha=$DEV ref=refs/heads/develop" <<<"$errout"'
check "github.event has the pusher and the commits" grep -q "pusher=tester first=second: v2" <<<"$errout"
view "$RUN1"
check "the run succeeded" eval '[ "$(json "j[\"status\"]")" = succeeded ]'
cd "$T/W"

# ---- paths filters use the pushed diff ----------------------------------------------------------------
mkdir -p docs && echo hello > docs/a.md
git add -A && git commit -qm "docs"
push origin develop
check "a push changing docs/ queues dev and docs" eval 'grep -q "for dev on refs/heads/develop" <<<"$pout" && grep -q "for docs on refs/heads/develop" <<<"$pout" && [ "$(runs)" = 3 ]'
RUN2=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for docs .*/\1/p' <<<"$pout")
view "$RUN2"
check "before is the branch's previous commit" eval '[ "$(json "j[\"before\"], j[\"push\"][\"created\"]")" = "$DEV False" ]'
echo v2 > site/other.html
git add -A && git commit -qm "site only"
push origin develop
check "a push changing only site/ queues dev, not docs" eval 'grep -q "for dev on" <<<"$pout" && ! grep -q "for docs on" <<<"$pout"'
push origin develop:docs-x
check "a new branch holding docs/ changes since main's merge base queues docs" eval 'grep -q "for docs on refs/heads/docs-x" <<<"$pout" && [ "$(grep -c "queued run" <<<"$pout")" = 1 ]'
push origin "$MAIN:refs/heads/docs-y"
check "a new branch at main's commit changed nothing: nothing queued" eval 'grep -q "nothing queued" <<<"$pout" && ! grep -q "queued run" <<<"$pout"'

# ---- tags ------------------------------------------------------------------------------------------------
N=$(runs)
git tag v1.0.0
push origin v1.0.0
check "a tag matching v*.*.* queues staging" eval 'grep -q "queued run run-.* for staging on refs/tags/v1.0.0" <<<"$pout" && [ "$(runs)" = $((N + 1)) ]'
RUN3=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for staging .*/\1/p' <<<"$pout")
view "$RUN3"
check "the tag run: ref, sha, before zeros" eval '[ "$(json "j[\"ref\"], j[\"sha\"], j[\"before\"], j[\"workflow_file\"]")" = "refs/tags/v1.0.0 $(git rev-parse HEAD) $Z .slipway/pipelines/staging.yaml" ]'
git tag -a v1.0.1 -m "annotated"
push origin v1.0.1
RUN4=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for staging .*/\1/p' <<<"$pout")
view "$RUN4"
check "an annotated tag: sha is the commit it tags, after the tag object" eval '[ "$(json "j[\"sha\"], j[\"after\"]")" = "$(git rev-parse HEAD) $(git rev-parse v1.0.1)" ]'
git tag nightly
push origin nightly
check "a tag no pipeline matches queues nothing, in one line" eval '[ "$(grep -c "^remote: slipway:" <<<"$pout")" = 1 ] && grep -q "nothing queued" <<<"$pout"'
push origin :refs/tags/nightly
check "a deletion queues nothing" eval '[ "$prc" = 0 ] && ! grep -q "queued run" <<<"$pout"'

# ---- a pipeline that does not load ---------------------------------------------------------------------
cat > .slipway/pipelines/broken.yml <<'EOF'
name: broken
on: push
jobs:
  x:
    runs-on: ubuntu-latest
    stepz: []
EOF
git add -A && git commit -qm "broken pipeline"
N=$(runs)
push origin develop
check "the push still succeeds" eval '[ "$prc" = 0 ]'
check "stderr names the file and line of the fault" grep -qE "^remote: slipway: .slipway/pipelines/broken.yml:6:[0-9]+: " <<<"$pout"
check "the other pipelines still queue" eval 'grep -q "for dev on refs/heads/develop" <<<"$pout" && [ "$(runs)" = $((N + 1)) ]'
git rm -q .slipway/pipelines/broken.yml && git commit -qm "fixed"
push origin develop
check "pipelines are read from the pushed commit: fixed, no error" eval '! grep -q broken <<<"$pout" && grep -q "for dev on" <<<"$pout"'

# ---- the wake: serve's runner with a 30 s poll picks a push up within seconds ----------------------------
cd "$T"
# the queued runs so far are not this test's: cancel them
for id in $("$SLIPWAY" --project "$T/P" run list --json -L 100 | python3 -c "import json,sys; [print(r['id']) for r in json.load(sys.stdin)['runs'] if r['status']=='queued']"); do
    "$SLIPWAY" --project "$T/P" run cancel "$id" >/dev/null
done
spawn "$SLIPWAY" --project "$T/P" serve --runner 1 --runner-poll 30s 2>"$T/serve.log"
SERVE=$!
wait_for "serve's runner waits" 10 grep -q "waiting for runs" "$T/serve.log"
cd "$T/W"
echo v2 > site/index.html && echo more >> site/other.html && git commit -qam "wake"
t0=$(date +%s%N)
push origin develop
RUN5=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for dev .*/\1/p' <<<"$pout")
started() { [ "$("$SLIPWAY" --project "$T/P" run view "$RUN5" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['status'])")" != queued ]; }
if wait_for "the pushed run starts" 5 started; then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    ok "serve's runner (poll 30s) started the pushed run within ${ms} ms of the push"
fi
ended() { "$SLIPWAY" --project "$T/P" run view "$RUN5" --json | python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)['status']=='succeeded' else 1)"; }
wait_for "the pushed run succeeds" 60 ended && ok "serve's runner ran it to success"
kill "$SERVE"; wait "$SERVE" 2>/dev/null
cd "$T/W"

# ---- a project directory that has gone ---------------------------------------------------------------------
mv "$T/P" "$T/P.away"
echo gone >> site/other.html && git commit -qam "project away"
push origin develop
check "the push succeeds without its project" eval '[ "$prc" = 0 ] && grep -q "develop -> develop" <<<"$pout"'
check "the hook says why on stderr" grep -q "^remote: slipway: project $T/P: not found; nothing queued" <<<"$pout"
mv "$T/P.away" "$T/P"

# ---- a pusher named by the git server ----------------------------------------------------------------------
echo gl >> site/other.html && git commit -qam "gitolite"
GL_USER=bob push origin develop
RUN6=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for dev .*/\1/p' <<<"$pout")
view "$RUN6"
check "GL_USER names the pusher" eval '[ "$(json "j[\"actor\"], j[\"push\"][\"pusher\"][\"name\"]")" = "bob bob" ]'

# ---- run-name and concurrency are evaluated when queued, with vars, as workflow run does ------------------
printf 'TARGET: blue\nLANE: fast\n' > "$T/P/.slipway/vars.yml"
cat > .slipway/pipelines/titled.yml <<'EOF'
name: titled
run-name: Ship ${{ github.ref_name }} by ${{ github.actor }} to ${{ vars.TARGET }}${{ inputs.x }}
concurrency:
  group: ${{ vars.LANE }}-${{ github.workflow }}-${{ github.ref_name }}
  cancel-in-progress: ${{ vars.LANE == 'fast' }}
on:
  push:
    branches: [develop]
jobs:
  t:
    runs-on: ubuntu-latest
    steps:
      - run: echo titled
EOF
git add -A && git commit -qm "titled pipeline"
push origin develop
RUN7=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for titled .*/\1/p' <<<"$pout")
RUNDEV=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for dev .*/\1/p' <<<"$pout")
view "$RUN7"
check "a hook-queued run's display_title is its run-name (github, vars; a push has no inputs)" eval '[ "$(json "j[\"display_title\"]")" = "Ship develop by tester to blue" ]'
check "its concurrency group and cancel-in-progress saw vars" eval '[ "$(json "j[\"id\"]")" = "$RUN7" ] && python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if (r[\"concurrency\"][\"group\"], r[\"concurrency\"][\"cancel_in_progress\"]) == (\"fast-titled-develop\", True) else 1)" "$T/P/.slipway/data/runs/$RUN7/run.json"'
view "$RUNDEV"
check "a pipeline without run-name: display_title null" eval '[ "$(json "repr(j[\"display_title\"])")" = None ]'
sw --project "$T/P" workflow run titled --repo "$T/W" --ref refs/heads/develop
view "$out"
check "workflow run of the same pipeline: the same title" eval '[ "$(json "j[\"display_title\"]")" = "Ship develop by tester to blue" ]'
check "workflow run --repo records the repository, as the hook does, for serve's runner" eval '[ "$(json "j[\"repository\"]")" = "$(realpath "$T/W")" ]'
printf 'TARGET: [unclosed\n' > "$T/P/.slipway/vars.yml"
echo bad-vars >> site/other.html && git commit -qam "bad vars"
N=$(runs)
push origin develop
check "an unreadable vars.yml: the push succeeds, nothing queued, the hook says why" eval '[ "$prc" = 0 ] && grep -q "^remote: slipway: project .*: nothing queued: .*vars.yml" <<<"$pout" && [ "$(runs)" = "$N" ]'
rm "$T/P/.slipway/vars.yml"

# ---- hostile lines on the hook's stdin --------------------------------------------------------------------
OLD=$(git rev-parse HEAD~1) NEW=$(git rev-parse HEAD)
N=$("$SLIPWAY" --project "$T/P" run list --json -L 1000 | python3 -c "import json,sys; print(len(json.load(sys.stdin)['runs']))")
{
    printf '%s %s refs/heads/%s\n' "$OLD" "$NEW" "$(head -c 5000 /dev/zero | tr '\0' a)"
    printf 'nothex %s refs/heads/develop\n' "$NEW"
    printf '%s %s refs/heads/a\033[2Jb\n' "$OLD" "$NEW"
    printf '%s %s refs/heads/develop\n' "$OLD" "$NEW"
} > "$T/stdin"
out=$(cd "$T/R.git" && GIT_DIR=. "$SLIPWAY" hook post-receive --project "$T/P" < "$T/stdin" 2>&1); rc=$?
check "a line too long is refused" grep -q "a line of more than 2048 bytes from git; ignored" <<<"$out"
check "a bad hash is refused" grep -q "OLD and NEW are not commit hashes" <<<"$out"
check "a control character in a ref is refused, escaped" grep -q 'refs/heads/a[\\]*x1b\[2Jb.: not printable' <<<"$out"
check "no raw control character reaches the pusher" eval '! grep -q $(printf "\033") <<<"$out"'
check "the good line after them still queues" eval 'grep -q "queued run run-.* for dev on refs/heads/develop" <<<"$out" && [ "$rc" = 1 ]'

# ---- a run naming a repository the project does not list -------------------------------------------------
cd "$T"
for id in $("$SLIPWAY" --project "$T/P" run list --json -L 100 | python3 -c "import json,sys; [print(r['id']) for r in json.load(sys.stdin)['runs'] if r['status']=='queued' and r['id'] != '$RUN6']"); do
    "$SLIPWAY" --project "$T/P" run cancel "$id" >/dev/null
done
sw hook uninstall "$T/R.git" --project "$T/P"
expect_rc "uninstall removes slipway's hook" 0
check "the hook is gone and the repository no longer listed" eval '[ ! -e "$H" ] && ! grep -qxF "$(realpath "$T/R.git")" "$T/P/.slipway/repositories"'
sw --project "$T/P" runner --once
view "$RUN6"
check "the runner refuses a run from a repository the project does not list" eval '[ "$(json "j[\"status\"]")" = failed ] && json "j[\"reason\"]" | grep -q "nor listed in"'
cd "$T/W"
echo after >> site/other.html && git commit -qam "no hook"
push origin develop
check "after uninstall a push runs no hook" eval '[ "$prc" = 0 ] && ! grep -q "remote: slipway" <<<"$pout"'

# ---- workflow run finds pipelines by name under .slipway/pipelines/ -----------------------------------------
sw workflow run staging --ref refs/heads/develop
expect_rc "workflow run finds a pipeline by name" 0
sw run view "$out" --json
check "the run is of .slipway/pipelines/staging.yaml" eval '[ "$(json "j[\"workflow_file\"]")" = .slipway/pipelines/staging.yaml ]'
sw workflow run docs.yml
expect_rc "and by file name" 0

done_testing

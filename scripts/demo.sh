#!/usr/bin/env bash
# make demo: slipway delivering the example site (examples/site) the way a
# team would, in a fresh ./demo directory, with real `git push`es:
#   demo/server/        the server's project: dev (direct) and staging
#                       (blue-green, behind an approval gate), the store
#   demo/harbour.git    a bare repository with slipway's post-receive hook
#   demo/harbour/       a developer's clone of the example site
# and `slipway serve` serving both environments and running the pipelines.
# 1. a push to develop: the dev pipeline builds, scans, tests and deploys;
# 2. tag v1.0.0: the staging run waits at the gate; approved, it deploys to
#    the idle slot, checks it on the preview, switches, checks live, and
#    its Monitor job waits out staging's watch window (5s here) for the verdict;
# 3. tag v1.0.1, broken only once live: the run rolls itself back;
# 4. the manual rollback pipeline puts staging back on a chosen release.
# Every wait is bounded: a step that does not happen ends the demo with a
# message and a non-zero status, never a hang.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SW=$ROOT/slipway
SITE=$ROOT/examples/site
DEMO=$ROOT/demo
[ -x "$SW" ] || { echo "demo: $SW is missing: run 'make demo'" >&2; exit 1; }
rm -rf "$DEMO"
mkdir -p "$DEMO"
cd "$DEMO"
P=$DEMO/server

# Commits and pushes need an identity whatever git's global configuration
# says; the pusher is the name a git server would have authenticated.
export GIT_AUTHOR_NAME=Alice GIT_AUTHOR_EMAIL=alice@example.com
export GIT_COMMITTER_NAME=Alice GIT_COMMITTER_EMAIL=alice@example.com
unset GL_USER GL_USERNAME REMOTE_USER SLIPWAY_STORE
me=$(id -un)
PUSHER=alice
[ "$me" = alice ] && PUSHER=bob

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '%s\n' "$*"; }
DIED=
die() {
    DIED=1
    printf '\ndemo: FAILED: %s\n' "$*" >&2
    if [ -s "$DEMO/serve.log" ]; then
        echo "demo: the last lines of $DEMO/serve.log:" >&2
        tail -n 15 "$DEMO/serve.log" >&2
    fi
    exit 1
}
# until_ok SECONDS DESC CMD...: polls CMD every 0.1 s; DESC is what failed
# to happen when time runs out.
until_ok() {
    local s=$1 d=$2 end
    shift 2
    end=$(($(date +%s) + s))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "$d did not happen within ${s}s"
        sleep 0.1
    done
}
# N free ports, distinct (each held until all are chosen), in one python
ports() {
    python3 -c 'import socket,sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}
sw() { "$SW" --project "$P" "$@"; }
page() { curl -s --max-time 5 "http://127.0.0.1:$1${2:-/}"; }
# what a listener serves: its heading and version, in one line
shows() { printf '%-8s %s  (%s)\n' "$1:" "$(page "$2" | grep -o '<h1>[^<]*</h1>' | head -1)" "$(page "$2" /version.txt | head -1)"; }
serves() { page "$1" /version.txt | grep -qx "version=$2"; }
# The run's status (queued, running, waiting, succeeded, failed, cancelled)
# from the first line of `slipway run view`: "ID  WORKFLOW  STATUS[: why]".
# A poll costs one small process.
run_status() { sw run view "$1" | sed -n '1s/^run-[^ ]*  [^ ]*  \([a-z]*\).*/\1/p'; }
run_is() { [ "$(run_status "$1")" = "$2" ]; }
ended() { case $(run_status "$1") in succeeded | failed | cancelled) return 0 ;; esac; return 1; }
# push ARGS: git push as $PUSHER; prints the hook's lines, the queued run in $RUN
push() {
    local out
    out=$(REMOTE_USER=$PUSHER git push "$@" 2>&1) || { printf '%s\n' "$out"; die "git push $*"; }
    printf '%s\n' "$out" | sed -n 's/^\(remote: slipway: .*[^ ]\) *$/\1/p'
    RUN=$(printf '%s\n' "$out" | sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for .*/\1/p' | head -1)
}
# summary RUN [REGEX]: the run as `slipway run view` shows it, its steps
# that passed or were skipped left out (the gate's lines kept), and the
# lines of its log that match REGEX.
summary() {
    sw run view "$1" | awk '/^    / && !/^    (gate|approved|rejected)/ && /  (success|skipped)$/ {next} {print}'
    [ -z "${2:-}" ] || logged "$1" "$2"
}
# logged RUN REGEX: the lines of RUN's log (JOB, STEP, TIME LINE) that match
logged() { sw run view "$1" --log | cut -f3- | sed 's/^[^ ]* //' | grep -E "$2" | sed 's/^/  | /' || true; }

# On any exit: serve stopped (by its PID), and a failure named even when it
# was a command that failed rather than a wait.
SERVE=
on_exit() {
    local rc=$?
    [ -z "$SERVE" ] || kill "$SERVE" 2>/dev/null || true
    if [ "$rc" != 0 ] && [ -z "$DIED" ]; then
        printf '\ndemo: FAILED (exit %s): see the lines above, and %s\n' "$rc" "$DEMO/serve.log" >&2
    fi
}
trap on_exit EXIT

step "the server's project: slipway init, with the example's environments"
"$SW" init -q "$P"
cp "$SITE"/server/.slipway/environments/*.yml "$P/.slipway/environments/"
# Free ports, so the demo never collides with anything already running, and
# you ($me) among staging's approvers.
read -r DEV STG PRV ADM <<<"$(ports 4)"
sed -i "s/^listen: .*/listen: 127.0.0.1:$DEV/" "$P/.slipway/environments/dev.yml"
sed -i -e "s/^listen: .*/listen: 127.0.0.1:$STG/" -e "s/^preview: .*/preview: 127.0.0.1:$PRV/" \
    "$P/.slipway/environments/staging.yml"
case $me in alice | bob) ;; *) sed -i "s/^  approvers: \[/  approvers: [$me, /" "$P/.slipway/environments/staging.yml" ;; esac
# staging's watch window, 10m in the example, is 5s here: the staging run's
# Monitor job waits it out (its verdict: not enough traffic, the demo sends
# too few requests to judge) and the demo should not take ten minutes.
sed -i "s/^  duration: .*/  duration: 5s/" "$P/.slipway/environments/staging.yml"
say "dev.yml:     $(grep -E '^(strategy|listen):' "$P/.slipway/environments/dev.yml" | tr '\n' ' ')"
say "staging.yml: $(grep -E '^(strategy|listen|preview):|^  (duration|on_critical):' "$P/.slipway/environments/staging.yml" | tr '\n' ' ')"
sed -n '/^approval:/,/^$/p; /^deploy_from:/,/^$/p' "$P/.slipway/environments/staging.yml" | sed '/^$/d; s/^/             /'

step "a bare repository with slipway's hook; the example site pushed to main"
git init -q --bare -b main harbour.git
"$SW" hook install harbour.git --project "$P"
git clone -q harbour.git harbour 2>/dev/null
tar -C "$SITE" --exclude=./server --exclude=./dist --exclude='./dist.*' -cf - . | tar -C harbour -xf -
cd harbour
git add -A
git commit -qm "Harbour Lights"
say "pipelines: $(cd .slipway/pipelines && echo *.yml)"
push origin main # no pipeline runs on main: the hook says so

step "by hand: build v0.9.0, slipway release create, deploy to staging (its first release)"
# The pipelines deploy blue-green into staging's idle slot and keep the live
# release as their backup; a first release by hand gives them one.
VERSION=v0.9.0 ./build.sh
R0=$(sw release create dist -m "v0.9.0, by hand")
sw deploy "$R0" --env staging -m "v0.9.0, by hand"
rm -rf dist

step "slipway serve: dev on :$DEV, staging on :$STG (idle slot on :$PRV), runner on"
"$SW" --project "$P" serve --admin "127.0.0.1:$ADM" --runner 2 --runner-poll 200ms 2>"$DEMO/serve.log" &
SERVE=$!
until_ok 15 "slipway serve becoming ready on 127.0.0.1:$ADM" curl -sf "http://127.0.0.1:$ADM/_slipway/ready"
until_ok 10 "staging serving v0.9.0" serves "$STG" v0.9.0
shows staging "$STG"

step "1. push to develop: the dev pipeline builds, scans, tests, deploys to dev"
git checkout -q -b develop
sed -i 's|<h1>Welcome to Harbour Lights</h1>|<h1>Boats for hire from May</h1>|' src/index.html
git commit -qam "Boats for hire from May"
push origin develop
[ -n "$RUN" ] || die "the push to develop queued no run"
DEVRUN=$RUN
until_ok 60 "the dev run $DEVRUN ending" ended "$DEVRUN"
summary "$DEVRUN" ' findings;|^Deployed|healthy|^ok [0-9]+ - every'
run_is "$DEVRUN" succeeded || die "the dev run $DEVRUN did not succeed (slipway --project $P run view $DEVRUN --log)"
shows dev "$DEV"

step "2. tag v1.0.0: the staging pipeline waits at the approval gate"
git checkout -q main
git merge -q --ff-only develop
git tag v1.0.0
push origin v1.0.0
[ -n "$RUN" ] || die "tag v1.0.0 queued no run"
V100=$RUN
until_ok 60 "the v1.0.0 run reaching staging's gate" run_is "$V100" waiting
sw run list --limit 3
sw run view "$V100" | grep -E '^    gate:' || true
shows staging "$STG"

step "slipway approve: deploy to the idle slot, check the preview, switch, check live, monitor"
sw approve "$V100" --comment "ship it"
until_ok 60 "the v1.0.0 run ending" ended "$V100"
summary "$V100" '^Deployed|^Backup|healthy|^Switched|^Watching|^Verdict'
run_is "$V100" succeeded || die "the v1.0.0 run did not succeed (slipway --project $P run view $V100 --log)"
until_ok 10 "staging serving v1.0.0 live" serves "$STG" v1.0.0
shows staging "$STG"
shows preview "$PRV"

step "3. tag v1.0.1, broken only once live: the run rolls itself back"
# The fault: v1.0.1 renames the logo, but the about page loads it from
# staging's own address. On the preview that URL still reaches v1.0.0, which
# has it; once switched, live is v1.0.1, which does not.
git mv -k src/img/logo.svg src/img/mark.svg
sed -i 's|img/logo.svg|img/mark.svg|g' src/*.html tests/unit.sh
sed -i "0,/\/img\/mark.svg\" alt/s||http://127.0.0.1:$STG/img/logo.svg\" alt|" src/about.html
git commit -qam "A new mark"
git tag v1.0.1
push origin v1.0.1
[ -n "$RUN" ] || die "tag v1.0.1 queued no run"
V101=$RUN
until_ok 60 "the v1.0.1 run reaching staging's gate" run_is "$V101" waiting
sw approve "$V101"
until_ok 60 "the v1.0.1 run ending" ended "$V101"
summary "$V101" '^Switched|^not ok|^Rolled back'
run_is "$V101" failed || die "the v1.0.1 run did not fail as it should have"
until_ok 10 "staging serving v1.0.0 again" serves "$STG" v1.0.0
shows staging "$STG"
shows preview "$PRV" # v1.0.1 kept in the idle slot, for a look
say
sw history staging --verify

step "4. the manual rollback pipeline: staging back to v0.9.0, after approval"
# workflow run reads the pipeline from this clone; serve's runner runs only
# runs of repositories the project lists (hook install listed the bare one).
pwd >>"$P/.slipway/repositories"
RB=$(SLIPWAY_ACTOR=$PUSHER sw workflow run rollback -f to="${R0: -6}" --repo . --ref refs/heads/main)
say "$PUSHER: slipway workflow run rollback -f to=${R0: -6} (v0.9.0's id ends so): queued $RB"
until_ok 60 "the rollback run reaching staging's gate" run_is "$RB" waiting
summary "$RB" '^Dry run'
sw approve "$RB"
until_ok 60 "the rollback run ending" ended "$RB"
summary "$RB" '^Rolled back|healthy|^ok [0-9]+ - every'
run_is "$RB" succeeded || die "the rollback run did not succeed (slipway --project $P run view $RB --log)"
until_ok 10 "staging serving v0.9.0 again" serves "$STG" v0.9.0
shows staging "$STG"

step "slipway status"
sw status

step "metrics (Prometheus text format), first lines"
curl -s "http://127.0.0.1:$ADM/_slipway/metrics" | grep '^slipway_requests_total' | head -5

kill -TERM "$SERVE"
wait "$SERVE" || true
SERVE=
step "done in ${SECONDS}s: the server's project is $P, the site's clone $DEMO/harbour"
say "The same setup by hand, step by step, for your own site: examples/site/README.md"

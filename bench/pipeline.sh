#!/usr/bin/env bash
# Benchmarks of the pipeline runner, in one run over temporary projects:
#
#   bench/pipeline.sh [steps|push]   (SLIPWAY=path/to/slipway N=20 PUSHES=10 bench/pipeline.sh)
#
# steps: the runner's overhead per step. Side by side, alternating, N rounds
#   each (default 20):
#   runner  `slipway workflow run bench --wait`: a one-job workflow of 20
#           `run: "true"` steps, queued, claimed, run and recorded in the store
#           with its log, as any run is;
#   loop    the same 20 commands (/bin/true) in one bash loop.
#   Printed: the median wall time of each, their ratio, and the overhead per
#   step, (runner - loop) / 20, which also carries the run's fixed costs
#   (queueing, claim, record, log): an upper bound. Aim: <= 5 ms a step.
#
# push: push to live. A bare repository with slipway's post-receive hook; a
#   working clone on `develop` holding a 100-file site (about 380 KB) and
#   .slipway/pipelines/dev.yml (on a push to develop: actions/checkout, then
#   slipway/deploy to the direct environment dev); one `slipway serve
#   --workers 1 --runner 1` serving dev and running the runs. After one
#   warm-up push, PUSHES times (default 10): index.html gets a new token, is
#   committed and pushed; the clock starts when `git push` returns, and one
#   process (started before the push) asks dev for / every 5 ms until the page
#   holds the token (each request bounded at 1 s, the whole wait at 30 s; not a
#   curl a try: starting a process costs tens of ms on a busy machine, which
#   would be measured as often as the page). The next push waits for the run's
#   end. Printed: each push's time and where it went, from the run's record and
#   its log's timestamps (hook: the run was queued that long before the push
#   returned, so it overlaps the push; claim: queued to claimed; setup: claimed
#   to the checkout's first line; checkout; release: building the release;
#   deploy: to the deploy's last line; edge: from that line to the first answer
#   with the page, below 0 when the edge was faster than the deploy's own last
#   writes), the median of each column, and the summary. Aim: <= 1 s.
#   There is no peer: a hosted CI queue alone takes longer.
#
# The optimised ./slipway is used, never the sanitizer build. Everything lives
# in a temporary directory removed at exit; the server listens on a free
# 127.0.0.1 port (tests/e2e/port.py) and is killed by PID in a trap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${SLIPWAY:-$PWD/slipway}
if [ ! -x "$BIN" ]; then
    make --no-print-directory slipway >/dev/null
    BIN=$PWD/slipway
fi
WHAT=${1:-all}
case $WHAT in all | steps | push) ;; *) echo "usage: bench/pipeline.sh [steps|push]" >&2; exit 2 ;; esac
N=${N:-20}
PUSHES=${PUSHES:-10}
STEPS=20
T=$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-bench.XXXXXX")
SERVE_PID=
cleanup() {
    if [ -n "${POLL_PID:-}" ]; then kill "$POLL_PID" 2>/dev/null || true; fi
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export SLIPWAY_ACTOR=bench TMPDIR=$T
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
unset SLIPWAY_STORE GL_USER GL_USERNAME REMOTE_USER

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- steps: the runner's overhead per step --------------------------------------------------
steps() {
    cd "$T" && git init -q -b main repo && cd repo
    "$BIN" init -q .
    mkdir -p .github/workflows
    {
        printf 'name: bench\non: push\njobs:\n  steps:\n    runs-on: ubuntu-latest\n    steps:\n'
        for _ in $(seq $STEPS); do printf '      - run: "true"\n'; done
    } > .github/workflows/bench.yml
    git add -A && git commit -qm bench

    : > "$T/runner" && : > "$T/loop"
    "$BIN" workflow run bench --wait >/dev/null # warm up
    for _ in $(seq "$N"); do
        s=$(now); "$BIN" workflow run bench --wait >/dev/null; e=$(now)
        echo $(( (e - s) / 1000 )) >> "$T/runner"
        s=$(now); bash -c "for i in \$(seq $STEPS); do /bin/true; done"; e=$(now)
        echo $(( (e - s) / 1000 )) >> "$T/loop"
    done
    r=$(median < "$T/runner"); l=$(median < "$T/loop")
    awk -v r="$r" -v l="$l" -v n="$STEPS" -v rounds="$N" 'BEGIN {
        printf "runner (%d steps): median %.1f ms over %d runs\n", n, r / 1000, rounds
        printf "bash loop (%d commands): median %.1f ms\n", n, l / 1000
        printf "ratio %.1fx, overhead per step %.2f ms (aim <= 5 ms)\n", r / l, (r - l) / n / 1000
    }'
}

# ---- push: from git push returning to the first curl that sees the page --------------------------
push() {
    local P=$T/push/P R=$T/push/R.git W=$T/push/W port
    mkdir -p "$T/push"
    port=$(python3 "$ROOT/tests/e2e/port.py" $$)
    "$BIN" init -q "$P"
    rm -f "$P"/.slipway/environments/*.yml
    printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$port" > "$P/.slipway/environments/dev.yml"
    git init -q --bare -b main "$R"
    "$BIN" hook install "$R" --project "$P" >/dev/null
    git clone -q "$R" "$W" 2>/dev/null
    cd "$W" && git checkout -q -b develop
    mkdir -p site/css site/js site/img site/docs .slipway/pipelines
    # 100 files of 1 to 8 KB, deterministic
    python3 - site <<'EOF'
import os, random, sys
rng = random.Random(12)
dirs = ["", "css", "js", "img", "docs"]
for i in range(99):
    d = os.path.join(sys.argv[1], dirs[i % len(dirs)])
    ext = ["html", "css", "js", "svg", "txt"][i % 5]
    with open(os.path.join(d, f"f{i:03d}.{ext}"), "w") as f:
        f.write("".join(rng.choice("abcdefghij \n") for _ in range(rng.randint(1000, 8000))))
EOF
    echo '<!doctype html><h1>start</h1>' > site/index.html
    cat > .slipway/pipelines/dev.yml <<'EOF'
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
    git add -A && git commit -qm site
    local nfiles; nfiles=$(git ls-files site | wc -l)
    # One process asks for / every 5 ms, each answer bounded at 1 s, the whole
    # wait at 30 s; prints "up" after its first answer, then the time (ns) of
    # the first answer holding the token. It is started before the push: a
    # curl a try would measure this machine's process start (tens of ms on a
    # busy one) as often as the page.
    cat > "$T/poll.py" <<'EOF'
import http.client, sys, time
port, token = int(sys.argv[1]), sys.argv[2].encode()
def get():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        c.request("GET", "/")
        return c.getresponse().read()
    except OSError:
        return b""
    finally:
        c.close()
body = get()
print("up", flush=True)
end = time.monotonic() + 30
while token not in body:
    if time.monotonic() > end:
        sys.exit(1)
    time.sleep(0.005)
    body = get()
print(time.time_ns(), flush=True)
EOF

    (cd "$P" && exec "$BIN" serve --workers 1 --runner 1 >"$T/serve.out" 2>"$T/serve.err") &
    SERVE_PID=$!
    local url="http://127.0.0.1:$port/" i
    for i in $(seq 300); do
        curl -s -o /dev/null --max-time 1 "${url}_slipway/health" && break
        sleep 0.05
    done

    : > "$T/push.tsv"
    for i in $(seq 0 "$PUSHES"); do # push 0 warms up
        local tok="token-$i-$RANDOM$RANDOM" pout s e id
        printf '<!doctype html><h1>%s</h1>\n' "$tok" > site/index.html
        git commit -qam "$tok"
        # the poller is up (it has had one answer) before the push
        coproc POLL { python3 "$T/poll.py" "$port" "$tok"; }
        read -r _ <&"${POLL[0]}"
        pout=$(git push -q origin develop 2>&1)
        s=${EPOCHREALTIME/./}
        if ! read -r e <&"${POLL[0]}"; then
            echo "push $i: dev did not serve the new page within 30 s" >&2
            tail -20 "$T/serve.err" >&2
            exit 1
        fi
        wait "$POLL_PID" 2>/dev/null || true
        s=$(( s * 1000 ))
        id=$(sed -n 's/^remote: slipway: queued run \(run-[0-9a-f-]*\) for dev .*/\1/p' <<<"$pout")
        if [ -z "$id" ]; then echo "push $i queued no run: $pout" >&2; exit 1; fi
        # the next push waits for this run to end
        for _ in $(seq 600); do
            "$BIN" --project "$P" run view "$id" --json 2>/dev/null |
                python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] in ("queued","running"))' && break
            sleep 0.05
        done
        [ "$i" = 0 ] && continue
        "$BIN" --project "$P" run view "$id" --json >"$T/run.json"
        "$BIN" --project "$P" run view "$id" --log >"$T/run.log"
        python3 - "$T/run.json" "$T/run.log" "$s" "$e" >>"$T/push.tsv" <<'EOF'
import datetime, json, sys
run = json.load(open(sys.argv[1]))
log = open(sys.argv[2]).read()
def ms(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000
push, live = int(sys.argv[3]) / 1e6, int(sys.argv[4]) / 1e6
marks = {}
for line in log.splitlines():
    parts = line.split("\t", 2)
    if len(parts) < 3:
        continue
    stamp, _, words = parts[2].partition(" ")
    for key, start in (("fetch", "Fetching "), ("checked", "##[group]Run slipway/deploy"),
                       ("release", "Release r-"), ("deployed", "Deployed r-")):
        if words.startswith(start) and key not in marks:
            marks[key] = ms(stamp)
if run["status"] != "succeeded" or len(marks) != 4:
    sys.exit(f"run {run['id']}: {run['status']}, log marks {sorted(marks)}")
queued, claimed = ms(run["created_at"]), ms(run["started_at"])
cols = [live - push, push - queued, claimed - queued, marks["fetch"] - claimed,
        marks["checked"] - marks["fetch"], marks["release"] - marks["checked"],
        marks["deployed"] - marks["release"], live - marks["deployed"]]
print("\t".join(f"{c:.0f}" for c in cols))
EOF
    done
    kill "$SERVE_PID" && wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=

    printf '%-8s %8s %6s %6s %6s %9s %8s %7s %6s\n' "push" "total" hook claim setup checkout release deploy edge
    awk -F'\t' '{ printf "%-8d %5d ms %6d %6d %6d %9d %8d %7d %6d\n", NR, $1, $2, $3, $4, $5, $6, $7, $8 }' "$T/push.tsv"
    local col meds=()
    for col in 1 2 3 4 5 6 7 8; do meds+=("$(cut -f$col "$T/push.tsv" | median)"); done
    awk -v m="${meds[*]}" -v n="$PUSHES" -v f="$nfiles" 'BEGIN {
        split(m, c, " ")
        printf "%-8s %5.0f ms %6.0f %6.0f %6.0f %9.0f %8.0f %7.0f %6.0f\n", "median", c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
        printf "push to live (checkout + deploy of %d files to dev): median %.0f ms over %d pushes; aim <= 1000 ms, ratio %.2fx the aim\n", f, c[1], n, c[1] / 1000
    }'
}

case $WHAT in
    all) (steps); push ;;
    steps) steps ;;
    push) push ;;
esac

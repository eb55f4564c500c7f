#!/usr/bin/env bash
# Benchmark: the runner's overhead per step.
#
#   bench/pipeline.sh             (SLIPWAY=path/to/slipway N=20 bench/pipeline.sh)
#
# Side by side, in one run, alternating, N rounds each (default 20):
#   runner  `slipway workflow run bench --wait`: a one-job workflow of 20
#           `run: "true"` steps, queued, claimed, run and recorded in the store
#           with its log, as any run is;
#   loop    the same 20 commands (/bin/true) in one bash loop.
# Printed: the median wall time of each, their ratio, and the overhead per step,
# (runner - loop) / 20, which also carries the run's fixed costs (queueing,
# claim, record, log): an upper bound. Aim: <= 5 ms a step. The optimised
# ./slipway is used, never the sanitizer build. Everything lives in a temporary
# directory removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLIPWAY:-$PWD/slipway}
if [ ! -x "$BIN" ]; then
    make --no-print-directory slipway >/dev/null
    BIN=$PWD/slipway
fi
N=${N:-20}
STEPS=20
T=$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
export SLIPWAY_ACTOR=bench TMPDIR=$T
unset SLIPWAY_STORE

cd "$T" && git init -q -b main repo && cd repo
"$BIN" init -q .
mkdir -p .github/workflows
{
    printf 'name: bench\non: push\njobs:\n  steps:\n    runs-on: ubuntu-latest\n    steps:\n'
    for _ in $(seq $STEPS); do printf '      - run: "true"\n'; done
} > .github/workflows/bench.yml
git add -A && git -c user.name=b -c user.email=b@example.com commit -qm bench

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
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

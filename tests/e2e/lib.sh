# Shared helpers for the end-to-end tests: each test file sources this, runs the
# real slipway binary ($SLIPWAY_BIN, the sanitizer build) in a fresh temporary
# directory, and prints one TAP line per check ("ok - …" / "not ok - …").
# Servers a test starts are registered with spawn and killed by PID on exit,
# pass or fail.
set -u
SLIPWAY=${SLIPWAY_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/test/slipway}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/slipway-e2e.XXXXXX")
export SLIPWAY_ACTOR=tester
unset SLIPWAY_STORE
_pids=()
_failed=0
_cleanup() {
    local p
    for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${_pids[@]}"; do wait "$p" 2>/dev/null; done
    for m in $(awk -v t="$T" '$2 ~ "^"t {print $2}' /proc/mounts | sort -r); do umount "$m" 2>/dev/null; done
    rm -rf "$T"
}
trap _cleanup EXIT
cd "$T"

ok() { echo "ok - $*"; }
fail() { echo "not ok - $*"; _failed=1; }
# check DESC CMD...: passes when CMD exits 0.
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
# sw ARGS: runs slipway, stdout in $out, stderr in $errout, status in $rc.
sw() {
    out=$("$SLIPWAY" "$@" 2>"$T/.stderr"); rc=$?
    errout=$(cat "$T/.stderr")
    return 0
}
# expect_rc DESC CODE: checks the last sw status.
expect_rc() {
    if [ "$rc" = "$2" ]; then ok "$1"; else fail "$1 (exit $rc, expected $2; stderr: $errout)"; fi
}
# expect_err DESC CODE PATTERN: last sw exited CODE with exactly one stderr line matching PATTERN.
expect_err() {
    local lines; lines=$(printf '%s' "$errout" | grep -c '')
    if [ "$rc" = "$2" ] && printf '%s' "$errout" | grep -qE -- "$3" && [ "$lines" = 1 ]; then
        ok "$1"
    else
        fail "$1 (exit $rc, expected $2; stderr [$lines lines]: $errout; wanted /$3/)"
    fi
}
# json EXPR: evaluates a python expression over the last stdout parsed as JSON (as `j`).
json() { printf '%s' "$out" | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
# free_port: a free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# spawn CMD...: starts a background process that is killed on exit; PID in $!
spawn() { "$@" & _pids+=($!); }
# wait_for DESC SECONDS CMD...: polls CMD every 50 ms until it succeeds or time runs out.
wait_for() {
    local d=$1 s=$2; shift 2
    local end=$(( $(date +%s%N) / 1000000 + s * 1000 ))
    while [ $(( $(date +%s%N) / 1000000 )) -lt $end ]; do "$@" 2>/dev/null && return 0; sleep 0.05; done
    fail "$d: timed out after ${s}s"; return 1
}
# snapshot DIR: a listing of every file with its hash, to prove "nothing changed".
snapshot() { (cd "$1" && find . -type f ! -name '.cas.lock' -print0 | sort -z | xargs -0 -r sha256sum); }
# new_project: a project in $T/p with a small site in $T/site.
new_project() {
    mkdir -p "$T/p" "$T/site/css" "$T/site/img"
    "$SLIPWAY" init -q "$T/p"
    printf '<!doctype html><h1>v1</h1>\n' > "$T/site/index.html"
    printf 'body{color:red}\n' > "$T/site/css/app.3f9a2c1d.css"
    head -c 70000 /dev/urandom > "$T/site/img/logo.png"
    cd "$T/p"
}
done_testing() { exit $_failed; }

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

# The tests' Python needs only the standard library, and a python3 found on PATH
# may be a version manager's shim (pyenv's costs 0.4 s a call, over 1 s on a loaded
# machine, and a test makes dozens of calls): every python3 a test runs, or a
# program it starts, is the system's interpreter when there is one. First on PATH,
# not a shell function: a function puts a subshell between `spawn python3 ...` and
# the PID in $!, so a kill (or SIGSTOP) would miss the Python process.
if [ -x /usr/bin/python3 ]; then
    mkdir "$T/.bin" && ln -s /usr/bin/python3 "$T/.bin/python3" && PATH=$T/.bin:$PATH
fi

ok() { echo "ok - $*"; }
fail() { echo "not ok - $*"; _failed=1; }
# check DESC CMD...: passes when CMD exits 0.
check() { local d=$1; shift; if "$@"; then ok "$d"; else fail "$d"; fi; }
# verify DESC DIAG CMD...: check, and on failure also runs DIAG (shell code printing what was
# seen), its lines shown as TAP comments.
verify() {
    local d=$1 diag=$2
    shift 2
    if "$@"; then ok "$d"; else
        fail "$d"
        eval "$diag" | sed 's/^\([^#]\)/# \1/'
    fi
}
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
# free_port: a free TCP port on 127.0.0.1, reserved until this test exits, so no
# other test (of this run or of another checkout) is handed it meanwhile (see port.py).
free_port() { python3 "$ROOT/tests/e2e/port.py" $$; }
# spawn CMD...: starts a background process that is killed on exit; PID in $!
spawn() {
    "$@" &
    _pids+=($!)
}
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
# store_check DATA [strict] [expired-previous]: prints every inconsistency of
# the fs store DATA and fails when there is one: a release an environment's
# state names (live, slots, previous) without a manifest; a state or manifest
# that does not parse; a body a manifest lists (a file's own, or its gzip or br
# variant) that is missing or of the wrong size (a packed one: its pack missing,
# too short, or its slice not hashing to the body's name); a body or pack whose
# bytes do not hash to its name. With "strict", also a body or pack
# no manifest references and a leftover temporary file; with "expired-previous",
# a previous release gc removed after keep_previous is not an inconsistency.
# Reads the files directly, never through slipway. With STORE_CHECK_CACHE=FILE,
# a body whose bytes hashed right in an earlier call and that has not changed
# since (same device, inode, size, mtime and ctime) is not read again: for a test
# that checks one growing store many times.
store_check() {
    python3 - "$@" <<'EOF'
import glob, hashlib, json, os, stat, sys
data, strict, expired = sys.argv[1], "strict" in sys.argv[2:], "expired-previous" in sys.argv[2:]
bad, ref, sizes = [], set(), {}
cache_file = os.environ.get("STORE_CHECK_CACHE")
try:
    cache = set(open(cache_file).read().split("\n")) if cache_file else set()
except FileNotFoundError:
    cache = set()
def size(b):
    """b's size, None when b is no regular file; stats b once however many manifests list it."""
    if b not in sizes:
        try:
            st = os.stat(b)
            sizes[b] = st.st_size if stat.S_ISREG(st.st_mode) else None
        except OSError:
            sizes[b] = None
    return sizes[b]
def load(p):
    try:
        return json.load(open(p))
    except Exception as e:
        bad.append("%s: %s" % (p, e))
def sliced(b, at, n, want):
    """The bytes [at, at + n) of pack b hash to want."""
    with open(b, "rb") as f:
        f.seek(at)
        return hashlib.sha256(f.read(n)).hexdigest() == want
for p in sorted(glob.glob(data + "/releases/*.json")):
    for f in (load(p) or {}).get("files", []):
        for what, v in [("", f)] + [(k + " ", f[k]) for k in ("gzip", "br") if k in f]:
            if "pack" in v:  # a slice of a pack: long enough, and the slice hashes to the body's name
                b = "%s/packs/sha256/%s/%s" % (data, v["pack"][:2], v["pack"])
                ref.add(v["pack"])
                if size(b) is None or size(b) < v["at"] + v["size"]:
                    bad.append("%s: %sbody of %s: its pack is missing or too short" % (os.path.basename(p), what, f["path"]))
                elif not sliced(b, v["at"], v["size"], v["blob"]):
                    bad.append("%s: %sbody of %s: its bytes in the pack do not hash to its name" % (os.path.basename(p), what, f["path"]))
                continue
            b = "%s/blobs/sha256/%s/%s" % (data, v["blob"][:2], v["blob"])
            ref.add(v["blob"])
            if size(b) != v["size"]:
                bad.append("%s: %sbody of %s missing or of the wrong size" % (os.path.basename(p), what, f["path"]))
for p in sorted(glob.glob(data + "/envs/*/state.json")):
    s = load(p) or {}
    slots = [v.get("release") for v in (s.get("slots") or {}).values()]
    prev = [] if expired else [s.get("previous_release")]
    for rid in filter(None, [s.get("live_release")] + prev + slots):
        if not os.path.isfile("%s/releases/%s.json" % (data, rid)):
            bad.append("%s names %s, which has no manifest" % (p, rid))
for p in glob.glob(data + "/blobs/sha256/*/*") + glob.glob(data + "/packs/sha256/*/*"):
    name = os.path.basename(p)
    if name.startswith(".tmp."):
        continue
    st = os.stat(p)
    key = "%s:%d:%d:%d:%d:%d" % (p, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in cache:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() == name:
            cache.add(key)
    if key not in cache or os.path.basename(os.path.dirname(p)) != name[:2]:
        bad.append("%s: bytes do not hash to its name" % p)
    if strict and name not in ref:
        bad.append("%s: referenced by no manifest" % p)
if strict:
    bad += ["leftover temporary %s" % os.path.join(d, n) for d, _, fs in os.walk(data) for n in fs if n.startswith(".tmp.")]
if cache_file:
    with open(cache_file, "w") as f:
        f.write("\n".join(sorted(cache)))
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
}

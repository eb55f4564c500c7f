#!/usr/bin/env bash
# Uploading a site to S3: `slipway deploy DIR` against `aws s3 sync DIR` (the uploader of the
# system slipway replaces), side by side in one run against one moto_server on loopback.
#
# The site: 2,000 files of 1-50 KiB (log-uniform sizes), generated from random.Random(2000),
# so every run uploads the same bytes: mostly text (HTML pages, CSS, JavaScript, JSON) and some
# images (random bytes, incompressible), every file's mtime a minute back (so slipway's stat
# cache may trust it). One bucket, a prefix per tool and round: slipway's store is
# s3://bench/sw-R (a project made with `slipway init`, so its stat cache is used; the
# environment is `dev`, direct), aws's s3://bench/aws-R/. Each round, in turn:
#   first upload     into an empty prefix (slipway: a fresh project, no stat cache)
#   no change        the same again
#   one file changed one page grows by a line, then the same again
# Each round alternates which tool goes first; each row is the median of the rounds, in
# seconds, with the ratio slipway/aws and the issue's aim beside it (not asserted: <= 0.2x
# for the first upload, <= 0.05x for the re-runs). Requests are counted from moto's log (one
# line per request), by method: moto serves one request at a time per connection on a
# Python server, so request counts explain much of the ratios. slipway also stores a gzip and
# a Brotli variant of each text file (compressed at upload), which aws does not.
#
# Then the fleet's switch spread: 3 `slipway serve` nodes (--poll 1 s, the S3 default) on the
# bucket, 20 switches, each node timed by tests/e2e/fleetswitch.py.
#
# Bounded: a watchdog stops the script past its budget. Everything lives in a temporary
# directory removed at exit; moto listens on a free 127.0.0.1 port and every server started
# here is killed by PID in a trap, pass or fail.
#
#   bench/s3.sh [--quick] [--pack]   (--quick: one round; --pack: slipway deploy --pack, small
#                                     bodies in pack objects)   SLIPWAY=BIN picks another binary
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SLIPWAY=${SLIPWAY:-$ROOT/slipway}
ROUNDS=3
die() { echo "bench/s3.sh: $*" >&2; exit 1; }
PACK=()
for a in "$@"; do
    case $a in
    --quick) ROUNDS=1 ;;
    --pack) PACK=(--pack) ;;
    *) die "usage: bench/s3.sh [--quick] [--pack]" ;;
    esac
done
BUDGET=$((ROUNDS * 420 + 120))
# The pyenv shims cost about a second a call: run the programs behind them.
real() {
    local p
    p=$(command -v "$1") || return 1
    case $p in */.pyenv/shims/*) pyenv which "$1" 2>/dev/null || echo "$p" ;; *) echo "$p" ;; esac
}
MOTO_SERVER=$(real moto_server) || die "needs moto_server (pip install 'moto[server]')"
AWS=$(real aws) || die "needs the aws CLI (pip install awscli)"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v curl >/dev/null || die "needs curl"
if [ ! -x "$SLIPWAY" ]; then
    make -C "$ROOT" slipway >/dev/null || die "cannot build ./slipway"
fi

T=$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-bench.XXXXXX")
export SLIPWAY_ACTOR=bench
unset SLIPWAY_STORE
PIDS=()
WATCHDOG=
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$WATCHDOG" ]; then
        kill -TERM "$WATCHDOG" 2>/dev/null
        wait "$WATCHDOG" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# The watchdog: past the budget it stops the script (whose EXIT trap cleans up).
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$BUDGET" &
    sp=$!
    wait "$sp"
    echo "bench/s3.sh: over the ${BUDGET}s budget, stopping" >&2
    kill -TERM $$
) &
WATCHDOG=$!

# A free port, reserved until this script exits (tests/e2e/port.py).
free_port() { "$PY" "$ROOT/tests/e2e/port.py" $$; }

# ---- moto, and the environment both clients read ----------------------------------------
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
"$MOTO_SERVER" -H 127.0.0.1 -p "$PORT" >"$T/moto.log" 2>&1 &
MOTO_PID=$!
PIDS+=("$MOTO_PID")
end=$(($(date +%s) + 30))
until curl -sf -o /dev/null --max-time 2 "$URL/moto-api/"; do
    kill -0 "$MOTO_PID" 2>/dev/null && [ "$(date +%s)" -lt $end ] ||
        die "moto_server did not come up: $(tail -3 "$T/moto.log")"
    sleep 0.1
done
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3
: >"$T/aws.config"
: >"$T/aws.credentials"
export AWS_CONFIG_FILE=$T/aws.config AWS_SHARED_CREDENTIALS_FILE=$T/aws.credentials
export AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$URL
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
"$AWS" s3api create-bucket --bucket bench >/dev/null || die "create-bucket failed"
store() { echo "s3://bench/sw-$1?endpoint=$URL&region=us-east-1&path_style=true"; }

# ---- the site ---------------------------------------------------------------------------
SITE=$T/site
read -r NFILES NBYTES NTEXT NIMG <<<"$("$PY" - "$SITE" <<'EOF'
import json, os, random, sys, time
root = sys.argv[1]
rng = random.Random(2000)
# A vocabulary with a skewed use, as text has: a few words often, many rarely.
vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 11)))
         for _ in range(3000)]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
def words(n):
    return " ".join(rng.choices(vocab, weights, k=n))
def html(i, size):
    out = ["<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>"
           "<link rel=\"stylesheet\" href=\"/css/site.css\"></head>\n<body><main>\n<h1>Page %d: %s</h1>\n"
           % (words(4), i, words(5))]
    n = len(out[0])
    while n < size:
        w = rng.choice(["<p>%s.</p>\n" % words(rng.randint(20, 80)),
                        "<h2 id=\"s%d\">%s</h2>\n" % (rng.randint(1, 99), words(4)),
                        "<ul>%s</ul>\n" % "".join("<li><a href=\"/p/%d.html\">%s</a></li>" % (rng.randint(1, 999), words(3)) for _ in range(rng.randint(2, 6))),
                        "<pre><code>%s</code></pre>\n" % words(30)])
        out.append(w)
        n += len(w)
    return ("".join(out)[: size - 24] + "</main></body></html>\n").encode()
def css(i, size):
    out, n = ["/* sheet %d */\n" % i], 0
    while n < size:
        r = ".%s-%d { %s }\n" % (rng.choice(vocab), rng.randint(0, 999), " ".join(
            "%s: %s;" % (rng.choice(["margin", "padding", "color", "font-size", "display", "border", "line-height"]),
                         rng.choice(["0", "1rem", "#%06x" % rng.getrandbits(24), "flex", "none", "1px solid #ccc", "1.5"]))
            for _ in range(rng.randint(1, 5))))
        out.append(r)
        n += len(r)
    return "".join(out)[:size].encode()
def js(i, size):
    out, n = ["// module %d\n\"use strict\";\n" % i], 0
    while n < size:
        f = "function %s_%d(%s) {\n  const %s = %s.map((x) => x * %d);\n  return %s.filter(Boolean).join(\"%s\");\n}\n" % (
            rng.choice(vocab), rng.randint(0, 9999), rng.choice(vocab), rng.choice(vocab), rng.choice(vocab),
            rng.randint(2, 9), rng.choice(vocab), rng.choice(vocab))
        out.append(f)
        n += len(f)
    return "".join(out)[:size].encode()
def data(i, size):
    items, n = [], 0
    while n < size:
        it = {"id": i * 1000 + len(items), "title": words(4), "tags": rng.sample(vocab[:200], 3),
              "score": round(rng.random() * 100, 2), "text": words(rng.randint(5, 30))}
        items.append(it)
        n += len(json.dumps(it)) + 2
    return json.dumps({"items": items}, indent=1).encode()
kinds = [("p", ".html", html, 40), ("css", ".css", css, 10), ("js", ".js", js, 20), ("data", ".json", data, 15),
         ("img", ".png", None, 5), ("img", ".jpg", None, 7), ("img", ".webp", None, 3)]
old = time.time() - 60
total = ntext = nimg = 0
for i in range(2000):
    d, ext, gen, _ = rng.choices(kinds, [k[3] for k in kinds])[0]
    size = int(1024 * 50 ** rng.random())
    body = gen(i, size) if gen else rng.randbytes(size)
    path = os.path.join(root, d, "%s-%04d%s" % (d, i, ext))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    os.utime(path, (old, old))
    total += len(body)
    ntext += gen is not None
    nimg += gen is None
print(2000, total, ntext, nimg)
EOF
)" || die "cannot generate the site"
[ "$NFILES" = 2000 ] || die "the site has $NFILES files, not 2000"

# ---- the measurements ---------------------------------------------------------------------
# log_lines: lines moto has logged so far, requests or not (requests() skips that many lines,
# and moto also logs lines that are not requests, such as its start-up banner).
log_lines() { wc -l <"$T/moto.log"; }
# requests FROM: "TOTAL PUT HEAD GET OTHER 404" of moto's log lines after line FROM (404: the
# requests answered "not found", such as a copy of an object onto itself, slipway's touch, of
# a body not stored yet).
requests() {
    tail -n +"$(($1 + 1))" "$T/moto.log" | grep '" [0-9][0-9][0-9] ' | awk '
        { split($0, a, "\""); split(a[2], r, " "); split(a[3], c, " "); n++; m[r[1]]++; if (c[1] == 404) nf++ }
        END { printf "%d %d %d %d %d %d\n", n, m["PUT"], m["HEAD"], m["GET"], n - m["PUT"] - m["HEAD"] - m["GET"], nf }'
}
# settle: waits until moto has logged nothing new for 300 ms (at most 10 s). moto logs a
# request after it answers it, so the last lines of the previous command may still be coming,
# and a server still busy with the previous command's 2,000 requests slows whichever tool
# runs next: each timed command starts on a quiet server.
settle() {
    local n m i
    n=$(log_lines)
    for ((i = 0; i < 33; i++)); do
        sleep 0.3
        m=$(log_lines)
        [ "$m" = "$n" ] && return
        n=$m
    done
}
# timed TOOL ROW ROUND CMD...: runs CMD, appends "ROW TOOL SECONDS TOTAL PUT HEAD GET OTHER 404"
# to $T/results.
timed() {
    local tool=$1 row=$2 round=$3 from t0 t1
    shift 3
    settle
    from=$(log_lines)
    # bash's own clock, not date(1): forking date around the command would add its start and
    # exit (a few ms here) to every time, a tenth of slipway's re-runs.
    t0=$EPOCHREALTIME
    "$@" >>"$T/$tool.out" 2>&1 || die "$tool, $row, round $round: $* failed: $(tail -3 "$T/$tool.out")"
    t1=$EPOCHREALTIME
    # moto logs a request as it answers it: by the time the client is done, every line is out.
    echo "$row $tool $(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.3f", b - a }') $(requests "$from")" >>"$T/results"
}
sw_deploy() { (cd "$T/p-$1" && exec "$SLIPWAY" -q --store "$(store "$1")" deploy "$SITE" --env dev ${PACK[@]+"${PACK[@]}"}); }
aws_sync() { "$AWS" s3 sync "$SITE" "s3://bench/aws-$1/" --only-show-errors; }
# both ROW ROUND: slipway and aws on the round's prefixes, the first alternating by round.
both() {
    if [ $(($2 % 2)) = 1 ]; then
        timed slipway "$1" "$2" sw_deploy "$2"
        timed aws "$1" "$2" aws_sync "$2"
    else
        timed aws "$1" "$2" aws_sync "$2"
        timed slipway "$1" "$2" sw_deploy "$2"
    fi
}

echo "slipway deploy DIR${PACK[@]+ ${PACK[*]}} ($("$SLIPWAY" --version 2>/dev/null | head -1 || echo slipway), optimised build) vs" \
    "aws s3 sync DIR ($("$AWS" --version 2>&1 | cut -d' ' -f1), its defaults: 10 requests at once), one" \
    "moto_server ($("$(dirname "$MOTO_SERVER")/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')) on loopback;" \
    "$NFILES files, $((NBYTES / 1024)) KiB ($NTEXT text, $NIMG images); median of $ROUNDS round(s); $(nproc) cores" \
    "shared by everything (load average before the run: $(cut -d' ' -f1-3 /proc/loadavg))"
: >"$T/results"
for ((r = 1; r <= ROUNDS; r++)); do
    "$SLIPWAY" init -q "$T/p-$r" >/dev/null || die "slipway init failed"
    if [ "$r" = 1 ]; then
        # For reference, once: the same release made into a local fs store by a fresh project
        # (the hashing and compressing of a first upload, without the network).
        "$SLIPWAY" init -q "$T/p-fs" >/dev/null || die "slipway init failed"
        t0=$(date +%s%N)
        (cd "$T/p-fs" && "$SLIPWAY" -q --json release create "$SITE") >"$T/fs.json" 2>&1 ||
            die "release create into an fs store failed: $(tail -3 "$T/fs.json")"
        FS_SECS=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    fi
    both first "$r"
    both nochange "$r"
    # One page grows by a line: a new size, so either tool sees it whatever the clocks say.
    page=$(find "$SITE/p" -name '*.html' | sort | sed -n "$((r * 37))p")
    printf '<!-- round %d -->\n' "$r" >>"$page"
    both onechange "$r"
done

# ---- the table -------------------------------------------------------------------------------
echo
FMT="%-26s %10s %10s %8s %9s   %s\n"
printf "$FMT" row "slipway s" "aws s" ratio aim "requests to moto"
printf "$FMT" -------------------------- ---------- ---------- -------- --------- ----------------
# med ROW TOOL FIELD: the median of FIELD (3: seconds, 4: requests, 5-8: by method) over rounds.
med() {
    awk -v row="$1" -v tool="$2" -v f="$3" '$1 == row && $2 == tool { print $f }' "$T/results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
reqs() { echo "$(med "$1" "$2" 4): $(med "$1" "$2" 5) PUT, $(med "$1" "$2" 6) HEAD, $(med "$1" "$2" 7) GET, $(med "$1" "$2" 8) other; $(med "$1" "$2" 9) 404"; }
for row in first:"first upload":0.2 nochange:"re-run, no change":0.05 onechange:"re-run, one file changed":0.05; do
    IFS=: read -r key name aim <<<"$row"
    s=$(med "$key" slipway 3)
    a=$(med "$key" aws 3)
    ratio=$(awk -v s="$s" -v a="$a" 'BEGIN { printf (a > 0 ? "%.3fx" : "-"), s / a }')
    printf "$FMT" "$name" "$s" "$a" "$ratio" "<= ${aim}x" "slipway $(reqs "$key" slipway)"
    printf "$FMT" "" "" "" "" "" "aws     $(reqs "$key" aws)"
done
echo
objects() { "$AWS" s3 ls --recursive "s3://bench/$1" | grep -c ''; }
echo "objects stored by round 1: slipway $(objects sw-1/) (every body, a gzip and a Brotli variant of the text" \
    "files where smaller, the manifests, state and events), aws $(objects aws-1/)"
echo "for reference: slipway release create of the same site into a local fs store, fresh project:" \
    "$FS_SECS s ($("$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%d bodies and variants written, %d compressions" % (j["new_blobs"], j["compressed"]))' "$T/fs.json"))"
echo "each tool's rounds: $(awk '{ printf "%s %s %ss; ", $1, $2, $3 }' "$T/results")"

# ---- the fleet ------------------------------------------------------------------------------
# Three nodes on the bucket, each `slipway serve` with the S3 default --poll (1 s), its own
# project, ports and --cache-dir; `slipway switch staging` 20 times between two releases;
# tests/e2e/fleetswitch.py times, after each switch returns, how long each node takes to serve
# the new release. The spread is the last node minus the first.
echo
FLEET=$(store fleet)
mkdir -p "$T/fa" "$T/fb"
printf 'A\n' >"$T/fa/index.html"
printf 'B\n' >"$T/fb/index.html"
LIVE=()
for n in 1 2 3; do
    "$SLIPWAY" init -q "$T/fleet$n" >/dev/null || die "slipway init failed"
    rm -f "$T/fleet$n/.slipway/environments/"*.yml
    LIVE+=("$(free_port)")
    printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\n' "${LIVE[-1]}" \
        "$(free_port)" >"$T/fleet$n/.slipway/environments/staging.yml"
done
(cd "$T/fleet1" && "$SLIPWAY" -q --store "$FLEET" deploy "$T/fa" --env staging &&
    "$SLIPWAY" -q --store "$FLEET" deploy "$T/fb" --env staging) >"$T/fleet.out" 2>&1 ||
    die "fleet: deploy failed: $(tail -3 "$T/fleet.out")"
for n in 1 2 3; do
    "$SLIPWAY" --project "$T/fleet$n" --store "$FLEET" serve --no-monitor --workers 1 \
        --cache-dir "$T/fleetcache$n" >"$T/fleetserve$n.out" 2>&1 &
    PIDS+=($!)
done
for n in 1 2 3; do
    end=$(($(date +%s) + 30))
    until [ "$(curl -s --max-time 2 "http://127.0.0.1:${LIVE[$((n - 1))]}/")" = A ]; do
        [ "$(date +%s)" -lt $end ] || die "fleet: node $n does not serve A: $(tail -3 "$T/fleetserve$n.out")"
        sleep 0.1
    done
done
(cd "$T/fleet1" && SLIPWAY_STORE=$FLEET "$PY" "$ROOT/tests/e2e/fleetswitch.py" "$SLIPWAY" staging 20 \
    $'A\n' $'B\n' "${LIVE[@]}") >"$T/fleet.json" || die "fleet: fleetswitch.py failed"
"$PY" - "$T/fleet.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
print("fleet switch spread (3 nodes, --poll 1s, %d switches, %d failed, %d unseen): last node minus "
      "first: median %s ms, max %s ms; the slowest node served the new release %s ms after the "
      "switch returned (the aim: every node within 2 s)" % (j["switches"], len(j["failures"]),
      j["unseen"], j["spread_median_ms"], j["spread_max_ms"], j["max_ms"]))
EOF
exit 0

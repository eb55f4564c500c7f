#!/usr/bin/env bash
# Benchmark: `slipway release create` against its peer, a parallel sha256sum of
# the same files, side by side in one run over one generated site.
#
#   bench/release.sh            (or: make bench)
#   SLIPWAY=path/to/slipway bench/release.sh
#
# The site: 10,000 files, about 200 MB, mixed sizes (many of 1-20 KB, some of
# 100 KB-1 MB, a few of 5-10 MB), deterministic bodies from random.Random(42).
# Every file's mtime is set a minute back, so the stat cache may trust it (a
# file changed within the last moments is always re-read, as git does).
#
# Measured, each the median of 3, with the site in the page cache throughout:
#   sha256sum   find DIR -type f -print0 | xargs -0 -P2 sha256sum (after one warm-up run)
#   cold        release create into a fresh project and an empty store
#   no change   release create again, same project (stat cache warm)
#   one change  release create after one file changed
# A `sync` precedes every timed run so that each pays only for its own writes.
# Wall and CPU (user + system) seconds are both shown: the ratios use wall time.
# Aims (issue 2): cold <= 1.3x sha256sum; no change and one change <= 0.1x cold.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SLIPWAY:-$PWD/slipway}
if [ ! -x "$BIN" ]; then
    make --no-print-directory slipway >/dev/null
    BIN=$PWD/slipway
fi
# /var/tmp, not /tmp: about 1 GB is written, and on a machine whose /tmp sees
# many files created and deleted (test suites), ext4 spends most of a cold
# release skipping recently freed inodes there, which would be measured as
# slipway's time. TMPDIR overrides.
T=$(mktemp -d "${TMPDIR:-/var/tmp}/slipway-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
SITE=$T/site
export SLIPWAY_ACTOR=bench
unset SLIPWAY_STORE

# ---- the site -----------------------------------------------------------------
python3 - "$SITE" <<'EOF'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
kinds = ["js", "css", "html", "png", "jpg", "svg", "json", "woff2", "txt", "webp"]
sizes = [rng.randint(100 << 10, 1 << 20) for _ in range(120)]
sizes += [rng.randint(5 << 20, 10 << 20) for _ in range(4)]
small = 10000 - len(sizes)
sizes += [rng.randint(1 << 10, 20 << 10) for _ in range(small)]
rng.shuffle(sizes)
for i, n in enumerate(sizes):
    ext = kinds[i % len(kinds)]
    # some names are fingerprinted, as a bundler writes them
    name = f"f{i:05d}.{rng.getrandbits(32):08x}.{ext}" if i % 3 == 0 else f"f{i:05d}.{ext}"
    d = os.path.join(root, f"s{i % 20:02d}", f"d{i % 97:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(rng.randbytes(n))
EOF
find "$SITE" -type f -exec touch -d '1 minute ago' {} +
nfiles=$(find "$SITE" -type f | wc -l)
mbytes=$(find "$SITE" -type f -printf '%s\n' | awk '{ t += $1 } END { printf "%.1f", t / 1e6 }')

# ---- timing helpers ---------------------------------------------------------------
# median of three numbers
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
# run_timed CMD...: runs CMD after a sync; sets $wall and $cpu (user + system
# seconds of CMD and its children: on a busy machine wall time alone misleads).
run_timed() {
    local TIMEFORMAT='%R %U %S' w u s
    sync
    { time "$@" 2>"$T/err"; } 2>"$T/time"
    read -r w u s <"$T/time"
    wall=$w
    cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
}
hash_all() { find "$SITE" -type f -print0 | xargs -0 -P2 sha256sum >/dev/null; }
# create PROJECT: one release; its summary (with "N files read") goes to $T/err.
create() { "$BIN" --project "$1" release create "$SITE" >/dev/null; }
files_read() { sed -n 's/.*(\([0-9]*\) files read).*/\1/p' "$T/err"; }
new_project() { mkdir -p "$1" && "$BIN" init "$1" >/dev/null 2>&1; }
# change_file FILE SEED: new deterministic content, 4 KiB.
change_file() {
    python3 - "$1" "$2" <<'EOF'
import random, sys
open(sys.argv[1], "wb").write(random.Random(int(sys.argv[2])).randbytes(4096))
EOF
}

# ---- (a) the peer: parallel sha256sum, page cache warm ------------------------------
hash_all
w=() c=()
for i in 1 2 3; do run_timed hash_all; w+=("$wall"); c+=("$cpu"); done
sha=$(median "${w[@]}") sha_cpu=$(median "${c[@]}")

# ---- (b) cold: fresh project, empty store -------------------------------------------
# Earlier projects are kept until the end: deleting 10,000 files just before a
# timed run makes some file systems (ext4 without a journal) slow to allocate
# inodes for a while, which would be measured as slipway's time.
w=() c=()
for i in 1 2 3; do
    new_project "$T/p$i"
    run_timed create "$T/p$i"
    w+=("$wall") c+=("$cpu")
    read_cold=$(files_read)
done
cold=$(median "${w[@]}") cold_cpu=$(median "${c[@]}")
P=$T/p3

# ---- (c) no change: same project, stat cache warm ------------------------------------
w=() c=()
for i in 1 2 3; do
    run_timed create "$P"
    w+=("$wall") c+=("$cpu")
    read_none=$(files_read)
done
none=$(median "${w[@]}") none_cpu=$(median "${c[@]}")

# ---- (d) one file changed (a different one each time) ---------------------------------
w=() c=()
for i in 1 2 3; do
    f=$(find "$SITE" -type f -name '*.html' | sort | sed -n "${i}p")
    change_file "$f" "$i"
    touch -d '1 minute ago' "$f"
    run_timed create "$P"
    w+=("$wall") c+=("$cpu")
    read_one=$(files_read)
done
one=$(median "${w[@]}") one_cpu=$(median "${c[@]}")

# ---- report ------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v aim="$2" 'BEGIN { print (r <= aim) ? "ok" : "MISSED" }'; }
r_cold=$(ratio "$cold" "$sha") r_none=$(ratio "$none" "$cold") r_one=$(ratio "$one" "$cold")
echo "release create vs. parallel sha256sum: $nfiles files, $mbytes MB, $(nproc) cores," \
    "load average $(cut -d' ' -f1 /proc/loadavg) (median of 3)"
row() { printf '%-40s %7s %7s  %-17s %s\n' "$@"; }
row "" wall cpu "ratio (wall)" aim
row "find | xargs -0 -P2 sha256sum" "$sha" "$sha_cpu" "" ""
row "release create, cold ($read_cold files read)" "$cold" "$cold_cpu" "$r_cold x sha256sum" \
    "<= 1.3  $(verdict "$r_cold" 1.3)"
row "release create, no change ($read_none read)" "$none" "$none_cpu" "$r_none x cold" \
    "<= 0.1  $(verdict "$r_none" 0.1)"
row "release create, one change ($read_one read)" "$one" "$one_cpu" "$r_one x cold" \
    "<= 0.1  $(verdict "$r_one" 0.1)"

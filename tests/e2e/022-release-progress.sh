#!/usr/bin/env bash
# The upload progress line of release create and deploy DIR on the fs store
# (415-s3-multipart.sh shows it on s3). With a terminal (a pty from
# util-linux's `script`), stderr carries one line redrawn in place ("\r" and
# erase-to-end): the bar, files done of the total, bytes sent, rate, ETA; its
# last state is all files done, and it is cleared ("\r" ESC[K) before the
# summary is printed. Without a terminal, with --json, with --quiet and with
# TERM=dumb nothing of it appears, and --json prints the same document.
# --concurrency takes 1..256 and is a usage error otherwise.
. "$(dirname "$0")/lib.sh"

if ! command -v script >/dev/null; then
    echo "ok - skipped: needs script (util-linux) # SKIP"
    done_testing
fi
new_project
mkdir -p "$T/site/big"
head -c $((20 * 1024 * 1024)) /dev/urandom > "$T/site/big/blob.bin"
ESC=$'\033'
CR=$'\r'
# pty CMD...: runs slipway with a terminal for stdin, stdout and stderr; what
# the terminal got in $out (CRs kept), status in $rc.
pty() {
    local cmd; cmd=$(printf '%q ' "$SLIPWAY" "$@")
    out=$(script -qfec "$cmd" /dev/null </dev/null); rc=$?
}
# has_bar: $out holds a drawn progress line.
has_bar() { [[ $out == *"$CR["*"] "*" files  "*" sent  "*"/s  ETA "* ]]; }

pty release create "$T/site"
expect_rc "release create on a terminal succeeds" 0
check "a progress line is drawn on the terminal" has_bar
check "its last state: every file done, 20 MiB and more sent, nothing left" \
    grep -qE "\[#{20}\] 4/4 files  2[0-9]\.[0-9] MiB sent  [0-9.]+ [KMG]?i?B/s  ETA 0:00" <<<"$out"
check "it is redrawn in place: each frame starts with CR and erases to the end" \
    grep -q "files  .*${ESC}\[K" <<<"$out"
check "it is cleared before the summary" grep -qF "${CR}${ESC}[K""release r-" <<<"$out"
check "no frame breaks the line (no newline inside the drawn frames)" \
    test "$(grep -c "${ESC}\[K" <<<"$out")" = 1

sw release create "$T/site"
expect_rc "release create without a terminal" 0
check "without a terminal stderr is the summary alone" \
    test "$(printf '%s' "$errout" | grep -c '')" = 1
check "without a terminal: no CR, no escape sequence, no progress words" \
    bash -c '! grep -qE "$1|$2|ETA|sent  " <<<"$3"' _ "$CR" "$ESC" "$errout"

printf 'changed\n' > "$T/site/new.txt"
pty release create "$T/site" --json
expect_rc "release create --json on a terminal" 0
check "--json on a terminal: no progress line" bash -c '! grep -qE "ETA|sent  |$1" <<<"$2"' _ "$ESC" "$out"
check "--json on a terminal: the same document as ever" \
    test "$(printf '%s' "${out//$CR/}" | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)))')" \
    = "['bytes', 'compressed', 'files', 'id', 'new_blobs', 'reused', 'saved_bytes', 'variants']"

printf 'changed again\n' > "$T/site/new.txt"
pty release create "$T/site" -q
expect_rc "release create -q on a terminal" 0
check "-q on a terminal: the id alone" grep -qxE "r-[0-9a-f-]+${CR}?" <<<"$out"
check "-q on a terminal: no progress line" bash -c '! grep -q "sent  " <<<"$1"' _ "$out"

TERM=dumb pty release create "$T/site"
check "TERM=dumb: no progress line (no cursor control)" bash -c '! grep -q "sent  " <<<"$1"' _ "$out"

# deploy DIR makes its release with the same line.
printf 'v2\n' > "$T/site/new.txt"
pty deploy "$T/site" --env dev
expect_rc "deploy DIR on a terminal" 0
check "deploy DIR draws the progress line" has_bar
check "deploy DIR: then says what it deployed" grep -q "dev: deployed" <<<"$out"
sw deploy "$T/site" --env dev
check "deploy DIR without a terminal: no progress line" \
    bash -c '! grep -qE "$1|sent  " <<<"$2$3"' _ "$ESC" "$out" "$errout"

# --concurrency: accepted on both commands (fs has no use for it), bounded.
sw release create "$T/site" --concurrency 1 -q; expect_rc "--concurrency 1" 0
sw release create "$T/site" --concurrency 256 -q; expect_rc "--concurrency 256" 0
sw release create "$T/site" --concurrency 0
expect_err "--concurrency 0 is a usage error" 2 "concurrency: expected 1..256, got '0'"
sw deploy "$T/site" --env dev --concurrency 257
expect_err "deploy --concurrency 257 is a usage error" 2 "concurrency: expected 1..256, got '257'"
done_testing

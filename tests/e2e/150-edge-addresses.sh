#!/usr/bin/env bash
# One owner per address. SO_REUSEPORT would let a second `slipway serve` (of
# another project, even) bind the same address and take part of its traffic;
# a second process must refuse instead, at start-up with one line naming the
# address and the environment file, and on a SIGHUP reload by keeping its
# running configuration. A server's own workers still share their sockets,
# and an address it already holds may move to another environment.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

mk_project() { # DIR PORT BODY
    mkdir -p "$1/site"
    "$SLIPWAY" init -q "$1"
    rm -f "$1/.slipway/environments/"*.yml
    printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$2" > "$1/.slipway/environments/dev.yml"
    printf '%s\n' "$3" > "$1/site/index.html"
    (cd "$1" && "$SLIPWAY" deploy site --env dev -q >/dev/null)
}
P=$(free_port); P2=$(free_port); PA=$(free_port)
mk_project "$T/one" "$P" one
mk_project "$T/two" "$P" two

cd "$T/one"
spawn "$SLIPWAY" serve --workers 2 >"$T/one.out" 2>"$T/one.err"
ONE=$!
wait_for "the first server is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/"

cd "$T/two"
timeout 20 "$SLIPWAY" serve --workers 2 >"$T/two.out" 2>"$T/two.err"; rc=$?
errout=$(cat "$T/two.err")
expect_err "a second server on the same address exits 1 naming the address and the file" 1 \
    "address 127.0.0.1:$P \(.*/two/.slipway/environments/dev.yml\) is in use by another process"
bodies=$(for i in $(seq 1 40); do "${C[@]}" "http://127.0.0.1:$P/"; done | sort | uniq -c)
check "every request still reaches the first server ($(echo $bodies))" test "$(for i in $(seq 1 40); do "${C[@]}" "http://127.0.0.1:$P/"; done | sort -u)" = one

# The admin address is owned the same way.
cat > .slipway/environments/dev.yml <<EOF
strategy: direct
listen: 127.0.0.1:$P2
EOF
spawn "$SLIPWAY" serve --admin "127.0.0.1:$PA" >"$T/two2.out" 2>"$T/two2.err"
TWO=$!
wait_for "the second project serves on its own address" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P2/"
cd "$T/one"
timeout 20 "$SLIPWAY" serve --admin "127.0.0.1:$PA" --workers 1 >"$T/one2.out" 2>"$T/one2.err"; rc=$?
errout=$(cat "$T/one2.err")
# The environment address is held by ONE itself: the first refusal is one of the two.
expect_err "a taken address (the admin one, or one held by another server) exits 1" 1 "is in use by another process"

# SIGHUP: the first server is told to move to the second's address: it keeps
# its running configuration and says why.
cat > .slipway/environments/dev.yml <<EOF
strategy: direct
listen: 127.0.0.1:$P2
EOF
kill -HUP "$ONE"
wait_for "the reload is refused" 10 grep -q "reload failed" "$T/one.err"
check "the refusal names the address and the file" grep -q "reload failed, keeping the running configuration: address 127.0.0.1:$P2 (.*/one/.slipway/environments/dev.yml) is in use by another process" "$T/one.err"
check "the first server still serves its address" test "$("${C[@]}" "http://127.0.0.1:$P/")" = one
check "the second still owns its own" test "$(for i in $(seq 1 20); do "${C[@]}" "http://127.0.0.1:$P2/"; done | sort -u)" = two

# An address this server holds may move to another of its environments.
P3=$(free_port)
cat > .slipway/environments/dev.yml <<EOF
strategy: direct
listen: 127.0.0.1:$P3
EOF
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > .slipway/environments/web.yml
mkdir -p "$T/web"; printf 'web\n' > "$T/web/index.html"
"$SLIPWAY" deploy "$T/web" --env web -q >/dev/null
kill -HUP "$ONE"
wait_for "the reload moves dev and gives its address to web" 10 eval 'test "$("${C[@]}" "http://127.0.0.1:$P/")" = web'
check "dev answers on its new address" test "$("${C[@]}" "http://127.0.0.1:$P3/")" = one
check "the reload was not refused this time" test "$(grep -c 'reload failed' "$T/one.err")" = 1
kill -TERM "$ONE" "$TWO"; wait "$ONE" "$TWO" 2>/dev/null
check "nothing alarming on stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T"/*.err'
# CI once saw a serve die after the second reload, under load, and not again in 35 runs here:
# on a failure the servers' stderr (a sanitizer's report) is in the test's log.
if [ "$_failed" != 0 ]; then for f in "$T"/*.err; do sed "s|^|# ${f##*/}: |" "$f" | tail -60; done; fi
done_testing

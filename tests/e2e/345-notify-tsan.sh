#!/usr/bin/env bash
# Notifications under ThreadSanitizer: builds the unit test
# tests/unit/test_monitor_notify.c with the sources it needs (monitor's
# rules, states and notifications, deploy's environment names, base) into
# build/tsan/test_monitor_notify (only when they changed) and runs it. Its
# tests push from several threads while the notifier's thread delivers to a
# local receiver, retries, re-sends and is stopped mid-work, and call the
# hook from several threads at once; TSan must report nothing
# (halt_on_error: a report ends the run with exit 66).
. "$(dirname "$0")/lib.sh"

BIN=$ROOT/build/tsan/test_monitor_notify
CC_TSAN=${CC_TSAN:-$(command -v clang || command -v gcc)}
SRCS=("$ROOT"/tests/unit/test_monitor_notify.c "$ROOT"/src/base/*.c "$ROOT"/src/deploy/config.c)
for f in alert rules config notify hook; do SRCS+=("$ROOT/src/monitor/$f.c"); done
PKGS="libcrypto yaml-0.1 jansson libcurl"
build_tsan() {
    local newest
    newest=$(find "${SRCS[@]}" "$ROOT"/src/*/*.h -newer "$BIN" 2>/dev/null | head -1)
    if [ -x "$BIN" ] && [ -z "$newest" ]; then
        echo "# $BIN is up to date"
        return 0
    fi
    echo "# building $BIN with $CC_TSAN"
    mkdir -p "$(dirname "$BIN")"
    # shellcheck disable=SC2046,SC2086
    "$CC_TSAN" -fsanitize=thread -O1 -g -std=c11 -D_GNU_SOURCE -pthread -I"$ROOT/src" \
        $(pkg-config --cflags $PKGS) -o "$BIN.tmp.$$" "${SRCS[@]}" \
        $(pkg-config --libs $PKGS) -lcmocka -lpthread &&
        mv "$BIN.tmp.$$" "$BIN"
}
check "TSan build of test_monitor_notify" build_tsan
check "the binary has the TSan runtime" eval 'nm "$BIN" 2>/dev/null | grep -q __tsan_init'
[ -x "$BIN" ] || done_testing

TSAN_OPTIONS="halt_on_error=1:exitcode=66" CMOCKA_MESSAGE_OUTPUT=TAP "$BIN" >"$T/tap" 2>"$T/err"
rc=$?
grep -E '^(not )?ok ' "$T/tap" | sed 's/^\(not \)\{0,1\}ok [0-9]* - /&TSan: /'
check "test_monitor_notify under TSan exits 0" test "$rc" = 0
check "no ThreadSanitizer warning" eval '! grep -q "WARNING: ThreadSanitizer" "$T/err"'
if grep -q "ThreadSanitizer" "$T/err"; then sed 's/^/# /' "$T/err" | head -60; fi
done_testing

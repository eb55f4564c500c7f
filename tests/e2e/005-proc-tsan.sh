#!/usr/bin/env bash
# base's child processes (src/base/proc.c) under ThreadSanitizer: builds the
# unit test tests/unit/test_base_proc.c with base's sources alone into
# build/tsan/test_base_proc (only when they changed) and runs it. Its last test
# runs processes from four threads at once; TSan must report nothing
# (halt_on_error: a report ends the run with exit 66).
. "$(dirname "$0")/lib.sh"

BIN=$ROOT/build/tsan/test_base_proc
CC_TSAN=${CC_TSAN:-$(command -v clang || command -v gcc)}
build_tsan() {
    local newest
    newest=$(find "$ROOT/src/base" "$ROOT/tests/unit/test_base_proc.c" -name '*.[ch]' -newer "$BIN" 2>/dev/null | head -1)
    if [ -x "$BIN" ] && [ -z "$newest" ]; then
        echo "# $BIN is up to date"
        return 0
    fi
    echo "# building $BIN with $CC_TSAN"
    mkdir -p "$(dirname "$BIN")"
    # shellcheck disable=SC2046
    "$CC_TSAN" -fsanitize=thread -O1 -g -std=c11 -D_GNU_SOURCE -pthread -I"$ROOT/src" \
        $(pkg-config --cflags libcrypto yaml-0.1 jansson zlib libbrotlienc libbrotlidec) -o "$BIN.tmp.$$" \
        "$ROOT"/tests/unit/test_base_proc.c "$ROOT"/src/base/*.c \
        $(pkg-config --libs libcrypto yaml-0.1 jansson zlib libbrotlienc libbrotlidec) -lcmocka -lpthread &&
        mv "$BIN.tmp.$$" "$BIN"
}
check "TSan build of test_base_proc" build_tsan
check "the binary has the TSan runtime" eval 'nm "$BIN" 2>/dev/null | grep -q __tsan_init'
[ -x "$BIN" ] || done_testing

TSAN_OPTIONS="halt_on_error=1:exitcode=66" CMOCKA_MESSAGE_OUTPUT=TAP "$BIN" >"$T/tap" 2>"$T/err"
rc=$?
grep -E '^(not )?ok ' "$T/tap" | sed 's/^\(not \)\{0,1\}ok [0-9]* - /&TSan: /'
check "test_base_proc under TSan exits 0" test "$rc" = 0
check "no ThreadSanitizer warning" eval '! grep -q "WARNING: ThreadSanitizer" "$T/err"'
if grep -q "ThreadSanitizer" "$T/err"; then sed 's/^/# /' "$T/err" | head -60; fi
done_testing

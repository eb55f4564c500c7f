# The slipway binary under ThreadSanitizer, for the tests that run it (125, 418):
# tsan_build builds build/tsan/slipway from the same sources, only when they or the
# flags changed. Sourced after lib.sh; sets TSAN.
TSAN=$ROOT/build/tsan/slipway
CC_TSAN=${CC_TSAN:-$(command -v clang || command -v gcc)}
# -O0: the build is most of a TSan test's time when build/ starts empty (as in CI),
# and -O0 compiles in a third of -O1's time; TSan checks every access all the same.
# $TSAN.flags records the flags, so a change of them rebuilds too. Tests running at
# once build it once: the second waits on the lock, then finds it up to date.
tsan_build() {
    mkdir -p "$(dirname "$TSAN")"
    (
        flock 9 || exit 1
        _tsan_build_locked
    ) 9>"$TSAN.lock"
}
_tsan_build_locked() {
    local srcs newest flags libs obj=$T/tsan-obj
    srcs=("$ROOT"/src/*/*.c "$ROOT"/src/main.c)
    flags="-fsanitize=thread -O0 -g -std=c11 -D_GNU_SOURCE -pthread -I$ROOT/src $(pkg-config --cflags libcrypto yaml-0.1 jansson zlib libbrotlienc libbrotlidec libcurl)"
    newest=$(find "$ROOT/src" -name '*.[ch]' -newer "$TSAN" 2>/dev/null | head -1)
    if [ -x "$TSAN" ] && [ -z "$newest" ] && [ "$(cat "$TSAN.flags" 2>/dev/null)" = "$CC_TSAN $flags" ]; then
        echo "# $TSAN is up to date"
        return 0
    fi
    echo "# building $TSAN with $CC_TSAN"
    libs="$(pkg-config --libs libcrypto yaml-0.1 jansson zlib libbrotlienc libbrotlidec libcurl) -lpthread"
    # Objects in this test's own directory, compiled in parallel (names keep the
    # module folder); the binary appears with one rename, so a concurrent run
    # never sees half of it.
    mkdir -p "$obj"
    printf '%s\n' "${srcs[@]}" | xargs -P "$(nproc)" -I{} sh -c \
        'o='"$obj"'/$(echo "{}" | sed "s|^'"$ROOT"'/||; s|/|_|g; s|\.c$|.o|"); '"$CC_TSAN $flags"' -c -o "$o" "{}"' ||
        return 1
    # shellcheck disable=SC2086
    "$CC_TSAN" -fsanitize=thread -o "$TSAN.tmp.$$" "$obj"/*.o $libs && mv "$TSAN.tmp.$$" "$TSAN" &&
        printf '%s\n' "$CC_TSAN $flags" > "$TSAN.flags"
}

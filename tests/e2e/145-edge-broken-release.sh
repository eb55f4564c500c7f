#!/usr/bin/env bash
# An edge that never serves a broken release, and says why. A release whose
# body does not match its hash, or is missing, is never published: the edge
# keeps serving what it has, logs the release, the body and the fault on
# stderr once, reports it on the admin ready and in the metrics, and retries
# until the store is repaired. With nothing older to serve, the 503 says what
# failed, in words safe for the public.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

new_project
DATA=$T/p/.slipway/data
ENVS=$T/p/.slipway/environments
P=$(free_port); PE=$(free_port); PA=$(free_port)
rm -f "$ENVS"/*.yml
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/dev.yml"
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$PE" > "$ENVS/edge.yml"
mkdir -p "$T/one" "$T/two" "$T/three"
printf 'one\n' > "$T/one/index.html"
printf 'two, with a body that will be damaged\n' > "$T/two/index.html"
{ printf 'three: a large body\n'; head -c 100000 /dev/urandom | base64; } > "$T/three/big.txt"
printf 'three\n' > "$T/three/index.html"
sw deploy "$T/one" --env dev -q; expect_rc "deploy one" 0
spawn "$SLIPWAY" serve --workers 1 --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/" || cat "$T/serve.err"
metric() { "${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics" | sed -n "s/^$1 //p"; }
blob_of() { sha256sum < "$1" | cut -d' ' -f1; }
blob_path() { echo "$DATA/blobs/sha256/${1:0:2}/$1"; }

# A body whose bytes were changed in the store (same size, so deploy's check passes).
h2=$(blob_of "$T/two/index.html"); b2=$(blob_path "$h2")
sw release create "$T/two" -q; R2=$out
cp "$b2" "$T/b2.orig"
chmod u+w "$b2"; printf 'TWO, with a body that will be damaged\n' > "$b2"
sw deploy "$R2" --env dev; expect_rc "deploy two (its body is damaged, its size is right)" 0
wait_for "the failure is logged naming the release, the body and the fault" 10 \
    grep -q "slipway serve: dev: release $R2: body of index.html (blobs/sha256/${h2:0:2}/$h2) does not match its hash" "$T/serve.err"
check "the log says the old release keeps serving" grep -q "keeps serving release" "$T/serve.err"
check "the old release is still served" test "$("${C[@]}" "http://127.0.0.1:$P/")" = one
check "the admin ready reports the failure" eval '"${C[@]}" "http://127.0.0.1:$PA/_slipway/ready" | grep -q "^dev: serving: release $R2: .*does not match its hash"'
f1=$(metric 'slipway_release_load_failures_total{env="dev"}')
check "a failure metric counts it ($f1)" test "${f1:-0}" -ge 1
check "load_ok is 0 while it fails" test "$(metric 'slipway_release_load_ok{env="dev"}')" = 0
wait_for "it is retried" 10 eval 'test "$(metric "slipway_release_load_failures_total{env=\"dev\"}")" -gt "$f1"'
check "the same failure is logged once, not per retry" test "$(grep -c "does not match its hash" "$T/serve.err")" = 1
cp "$T/b2.orig" "$b2"
wait_for "once the store is repaired, the retry loads it" 40 eval 'test "$("${C[@]}" "http://127.0.0.1:$P/")" = "two, with a body that will be damaged"'
check "the recovery is logged" grep -q "dev: loaded release $R2" "$T/serve.err"
check "load_ok is 1 again" test "$(metric 'slipway_release_load_ok{env="dev"}')" = 1

# A large body (streamed to the local cache) that is missing from the store.
sw release create "$T/three" -q; R3=$out
h3=$(blob_of "$T/three/big.txt")
sw deploy "$R3" --env edge; expect_rc "deploy three to an environment that serves nothing yet" 0
rm -f "$(blob_path "$h3")"
# serve may have loaded it already; a restart must not find it in the cache either.
rm -rf "$T/p/.slipway/cache"
kill -TERM "$!" 2>/dev/null
for p in "${_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${_pids[@]}"; do wait "$p" 2>/dev/null; done
spawn "$SLIPWAY" serve --workers 1 --admin "127.0.0.1:$PA" >"$T/serve2.out" 2>"$T/serve2.err"
wait_for "serve is up again" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/"
code=$("${C[@]}" -o "$T/e.b" -w '%{http_code}' "http://127.0.0.1:$PE/")
check "nothing loadable: 503" test "$code" = 503
check "the 503 says what failed" grep -q "edge cannot serve: a file of its release is missing from the store" "$T/e.b"
check "the public 503 names no release or blob" eval '! grep -qE "r-[0-9]{8}|[0-9a-f]{64}" "$T/e.b"'
check "stderr names the missing body" grep -q "edge: release $R3: body of big.txt (blobs/sha256/${h3:0:2}/$h3) is missing from the store; has nothing older to serve" "$T/serve2.err"
check "public ready is 503" test "$("${C[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/_slipway/ready")" = 503
check "nothing alarming on stderr" eval '! grep -qiE "runtime error|AddressSanitizer|LeakSanitizer" "$T"/serve*.err'
done_testing

#!/usr/bin/env bash
# serve --access-log store on an S3 store (moto, reached through faultproxy.py so the
# store can be taken away and brought back with its data): the edge puts its access log
# into the store in batches (logs/access/<date>/<node>-<n>.log, encrypted, read back
# with the aws CLI); while the store is away it keeps serving, keeps the lines and sends
# them when the store is back, none lost.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
moto_start || done_testing
moto_bucket site
faultproxy_start --rate 0 --keep-alive || done_testing
S=$(moto_store_url p "$PROXY_URL")
new_project
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
P=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" >"$ENVS/dev.yml"
sw --store "$S" deploy "$T/site" --env dev
expect_rc "deploy to the s3 store" 0
export SLIPWAY_ACCESS_LOG_FLUSH_MS=300
spawn "$SLIPWAY" --store "$S" serve --no-monitor --workers 1 --poll 200ms --access-log store \
    --cache-dir "$T/cache" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve answers" 30 curl -sf -o /dev/null "http://127.0.0.1:$P/"
for i in $(seq 1 20); do curl -s -o /dev/null "http://127.0.0.1:$P/?first=$i"; done
logs() { aws s3 ls --recursive "s3://site/p/logs/access/" 2>/dev/null; }
lines() { # lines PATTERN: how many log lines in the bucket match PATTERN (one aws call)
    rm -rf "$T/logs"
    aws s3 sync --quiet "s3://site/p/logs/access/" "$T/logs" 2>/dev/null
    cat "$T"/logs/*/* 2>/dev/null | grep -c -- "$1"
}
wait_for "the access log reaches the store" 20 eval '[ "$(lines "first=")" -ge 20 ]'
check "all 20 lines, each once" [ "$(lines "first=")" = 20 ]
key=$(logs | awk '{print $4}' | head -1)
check "the key is logs/access/<date>/<node>-<n>.log" \
    grep -qE "^p/logs/access/$(date -u +%Y-%m-%d)/[a-z0-9-]+-[0-9]+\\.log\$" <<<"$key"
check "the log object is encrypted at rest" \
    [ "$(aws s3api head-object --bucket site --key "$key" --query ServerSideEncryption --output text)" = AES256 ]

# The store goes away: requests are still answered, the lines are kept, and sent later.
faultproxy_down
for i in $(seq 1 30); do curl -s -o /dev/null "http://127.0.0.1:$P/?away=$i"; done
check "serve answers while the store is away" curl -sf -o /dev/null "http://127.0.0.1:$P/"
wait_for "serve says the lines are kept" 20 grep -q "access log: .*lines are kept here" "$T/serve.err"
check "none of those lines are in the store yet" [ "$(lines "away=")" = 0 ]
faultproxy_up
wait_for "the kept lines reach the store once it is back" 30 eval '[ "$(lines "away=")" -ge 30 ]'
check "all 30 kept lines, each once" [ "$(lines "away=")" = 30 ]
check "serve says the store takes lines again" grep -q "access log: the store takes lines again" "$T/serve.err"
check "nothing was dropped" [ "$(lines "lines dropped")" = 0 ]

# SIGTERM: the last lines are put before serve exits.
curl -s -o /dev/null "http://127.0.0.1:$P/?last=1"
kill -TERM "$SERVE"
wait "$SERVE" 2>/dev/null
check "the last line is put at exit" [ "$(lines "last=1")" = 1 ]
check "serve's stderr names no secret" bash -c '! grep -qF -- "$1" "$2"' _ "$AWS_SECRET_ACCESS_KEY" "$T/serve.err"
done_testing

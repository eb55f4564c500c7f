#!/usr/bin/env bash
# The edge server's threads under ThreadSanitizer: builds a TSan binary into
# build/tsan/slipway (tests/e2e/tsan.sh: from the same sources, only when they
# changed), then runs a short switch under load against it with the access log on
# and metrics scraped, reloads with SIGHUP, and drains with SIGTERM. The monitor's thread
# samples every 20 ms meanwhile (reading the workers' counters while they
# count, judging alert rules, stepping and saving its history), takes the
# reload, and saves at SIGTERM. TSan must report nothing (halt_on_error: a
# report kills the server with exit 66).
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/edge-load.sh"
. "$ROOT/tests/e2e/tsan.sh"

start=$(date +%s)
check "TSan build of slipway" tsan_build
check "the binary has the TSan runtime" eval 'nm "$TSAN" 2>/dev/null | grep -q __tsan_init'
echo "# TSan build step took $(($(date +%s) - start)) s"
[ -x "$TSAN" ] || done_testing

load_project
P_DEV=$(free_port)
# Notifications in the same run: every switch goes through the watcher's on_change to
# the notifier's thread, whose webhook is a port nothing listens on (free_port only
# reserves it), so each message is retried, lost and logged; the Alertmanager hook is
# called while the workers serve.
P_WH=$(free_port)
printf 'notify:\n  webhooks: [http://127.0.0.1:%s/]\n  retries: 1\n  backoff: 10ms\n' "$P_WH" \
    > "$T/p/.slipway/monitor.yml"
printf 'webhook_token_file: .slipway/hook.token\n' >> "$T/p/.slipway/monitor.yml"
echo 0123456789abcdef0123456789abcdef > "$T/p/.slipway/hook.token"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1"
spawn "$TSAN" serve --admin "127.0.0.1:$PA" --access-log "$T/access.log" --monitor-interval 20ms \
    >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "TSan serve is up" 60 curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PL/_slipway/health"
unset TSAN_OPTIONS

switch_under_load tsan "${TSAN_SECONDS:-5}" 20
HOOK_BODY='{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"a","env":"staging","severity":"critical"}}]}'
hooks=()
for i in 1 2 3; do
    curl -s --max-time 5 -o /dev/null -w '%{http_code}\n' -X POST --data-binary "$HOOK_BODY" \
        -H "Authorization: Bearer 0123456789abcdef0123456789abcdef" \
        "http://127.0.0.1:$PA/_slipway/hooks/alertmanager" >>"$T/hook.codes" &
    hooks+=($!)
done
wait "${hooks[@]}"
check "the Alertmanager hook answers 200 under TSan" test "$(sort -u "$T/hook.codes")" = 200
wait_for "the switches' notifications are lost and logged" 20 grep -q "notify: lost: webhook 1" "$T/serve.err"

# A reload under TSan: a new environment, deployed first, is served after SIGHUP.
cat > "$T/p/.slipway/environments/dev.yml" <<EOF
strategy: direct
listen: 127.0.0.1:$P_DEV
EOF
sw deploy "$T/B" --env dev; expect_rc "deploy to a new environment dev" 0
kill -HUP "$SERVE"
wait_for "dev is served after SIGHUP" 20 curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$P_DEV/"
check "dev serves its release" test "$(curl -s --max-time 5 "http://127.0.0.1:$P_DEV/")" = B
check "access log lines were written" test -s "$T/access.log"

kill -TERM "$SERVE"; wait "$SERVE"; rc=$?
check "TSan serve exits 0 after SIGTERM" test "$rc" = 0
# The monitor saw the load: its history, saved at SIGTERM, holds staging's requests and dev's.
sw metrics staging --json
check "the monitor's history holds staging's requests" eval '[ "$(json "sum(p[\"requests\"] for p in j[\"points\"])")" -gt 100 ]'
sw metrics dev --json
check "and those of dev, added by SIGHUP" eval '[ "$(json "sum(p[\"requests\"] for p in j[\"points\"])")" -ge 2 ]'
check "no ThreadSanitizer warning" eval '! grep -q "WARNING: ThreadSanitizer" "$T/serve.err"'
if grep -q "ThreadSanitizer" "$T/serve.err"; then sed 's/^/# /' "$T/serve.err" | head -80; fi
done_testing

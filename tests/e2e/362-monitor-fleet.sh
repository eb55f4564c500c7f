#!/usr/bin/env bash
# The automatic rollback with several `slipway serve` nodes on one store (docs/monitor.md,
# "Several nodes"; src/monitor/watch.c).
#
# Three projects, each its own node: the same blue-green environment `stg` (its own listen and
# preview ports, the same watch), the same alerts.yml, one shared store ($SLIPWAY_STORE). wrk
# loads every node's live listener; release B, which lost half of A's files, is switched in once;
# every node sees its own regressed 404s and judges its own traffic. The state's
# compare-and-swap makes exactly one rollback happen: one rollback event in the history, B
# rejected once, the audit chain verifies. Every node says what became of B: one "rolled back",
# the others "already rolled back" (their alert was judged after the winner's rollback) — or, a
# node whose edge served A again before its rule's `for` was over, that B was rolled back by
# another node (its edge saw the change). None says "failed" or "gave way".
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)
command -v wrk >/dev/null || { echo "# skipped: wrk is not installed"; echo "ok - skipped"; exit 0; }
NODES=(1 2 3)

export SLIPWAY_STORE=$T/store
cat >"$T/alerts.yml" <<'EOF'
rules:
  - name: high-error-rate
    environments: ["*"]
    signal: error_ratio
    op: ">"
    threshold: 0.05
    for: 3s
    min_requests: 100
    severity: critical
    summary: "error rate {{ $value }} on {{ $env }} ({{ $release }})"
EOF
declare -A PL PP PA
for n in "${NODES[@]}"; do
    "$SLIPWAY" init -q "$T/p$n"
    rm -f "$T/p$n/.slipway/environments/"*.yml
    PL[$n]=$(free_port); PP[$n]=$(free_port); PA[$n]=$(free_port)
    printf 'strategy: blue-green\nlisten: 127.0.0.1:%s\npreview: 127.0.0.1:%s\nwatch: {duration: 2m, on_critical: rollback}\n' \
        "${PL[$n]}" "${PP[$n]}" >"$T/p$n/.slipway/environments/stg.yml"
    cp "$T/alerts.yml" "$T/p$n/.slipway/alerts.yml"
done
check "the projects share one store" test -d "$T/store"
check "  and none has its own" eval '! ls -d "$T"/p*/.slipway/data 2>/dev/null'

# A: twenty pages; B: the first ten of them (half the site lost).
mkdir -p "$T/a" "$T/b"
for i in $(seq 1 20); do printf 'A page %s\n' "$i" >"$T/a/p$i.html"; done
for i in $(seq 1 10); do printf 'B page %s\n' "$i" >"$T/b/p$i.html"; done
cd "$T/p1"
sw release create "$T/a" -q; A=$out
sw release create "$T/b" -q; B=$out
check "two releases" eval '[ -n "$A" ] && [ -n "$B" ]'
sw deploy "$A" --env stg; expect_rc "A is live on stg" 0

declare -A SERVE
for n in "${NODES[@]}"; do
    spawn "$SLIPWAY" --project "$T/p$n" serve --admin "127.0.0.1:${PA[$n]}" >"$T/serve$n.out" 2>"$T/serve$n.err"
    SERVE[$n]=$!
done
for n in "${NODES[@]}"; do
    wait_for "node $n is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:${PA[$n]}/_slipway/ready"
    wait_for "  and serves A" 10 eval '[ "$("${C[@]}" "http://127.0.0.1:${PL[$n]}/p20.html")" = "A page 20" ]'
done

live() { "$SLIPWAY" status stg --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["environments"][0]["live_release"] or "")'; }
events() { "$SLIPWAY" history stg --json | python3 -c "import json,sys; print(sum(e['action']=='$1' for e in json.load(sys.stdin)['events']))"; }
cat >"$T/pages.lua" <<'EOF'
local i = 0
request = function()
  i = i % 20 + 1
  return wrk.format("GET", "/p" .. i .. ".html")
end
EOF
declare -A LOAD
for n in "${NODES[@]}"; do
    wrk -t1 -c2 -d40s -s "$T/pages.lua" "http://127.0.0.1:${PL[$n]}/" >"$T/wrk.$n" 2>&1 &
    LOAD[$n]=$!; _pids+=("${LOAD[$n]}")
done

# ---- the incident: B switched in once, under load on every node --------------------------------
sw deploy "$B" --env stg; expect_rc "B goes to stg's idle slot" 0
sleep 1 # A is judged under load before the switch
sw switch stg; expect_rc "B is switched in under load (from node 1's project)" 0
t_switch=$(date +%s%N)
wait_for "one node rolls stg back to A by itself" 30 eval '[ "$(live stg)" = "$A" ]'
echo "# switch to rollback: $(( ($(date +%s%N) - t_switch) / 1000000 )) ms (the rule's for: 3s)"
# Every node's last word on B: its rule fired and was judged (rolled back, or found the rollback),
# or its edge saw another node's rollback first.
said() {
    grep -qE "watch: stg: (rolled back $B -> $A, |$B was already rolled back to $A by slipway-monitor@)|no watch window is open on stg: its last change was a rollback; nothing rolled back|watch: stg: $B was rolled back to $A by slipway-monitor@[^ ]*, another node's watch \\(automatic rollback: " "$T/serve$1.err"
}
for n in "${NODES[@]}"; do
    wait_for "node $n says what became of B" 20 said "$n"
done
sleep 3 # late alerts, if any, are judged
for n in "${NODES[@]}"; do kill "${LOAD[$n]}" 2>/dev/null; wait "${LOAD[$n]}" 2>/dev/null; done

winners=$(grep -l "watch: stg: rolled back $B -> $A, .* after it went live: high-error-rate (critical, from slipway): error_ratio" "$T"/serve?.err | wc -l)
check "exactly one node rolled back (${winners})" test "$winners" = 1
for n in "${NODES[@]}"; do
    echo "# node $n: $(grep -E 'watch: ' "$T/serve$n.err" | grep -v ': stg: watch of' | tr '\n' ' ')"
    check "node $n: no rollback failed, none gave way" \
        eval '! grep -qE "watch: .*(failed|gave way|not recorded)" "$T/serve$n.err"'
    check "node $n: at most one rollback" test "$(grep -c "watch: stg: rolled back" "$T/serve$n.err")" -le 1
done
check "one rollback event in the shared history" test "$(events rollback)" = 1
check "A is live" test "$(live stg)" = "$A"
sw history stg --json
check "  by slipway-monitor@host, with the rule as the reason" eval \
    '[ "$(json "[e for e in j[\"events\"] if e[\"action\"]==\"rollback\"][0][\"actor\"]")" = "slipway-monitor@$(hostname)" ] &&
     [[ "$(json "[e for e in j[\"events\"] if e[\"action\"]==\"rollback\"][0][\"message\"]")" == "automatic rollback: high-error-rate (critical, from slipway): error_ratio "* ]]'
rejected() { python3 -c 'import json,sys; print(" ".join(r["release"] for r in json.load(open(sys.argv[1])).get("rejected", [])))' "$T/store/envs/stg/state.json"; }
check "B is rejected in the state, once ($(rejected))" eval '[ "$(rejected)" = "$B" ]'
for n in "${NODES[@]}"; do
    cd "$T/p$n"
    sw switch stg
    expect_err "from node $n's project, switching back to B is refused" 1 \
        "release $B was rejected on stg at .* \(high-error-rate .*\); nothing was changed. To switch it anyway, add --force"
done
sw history stg --verify; expect_rc "the audit chain verifies" 0
for n in "${NODES[@]}"; do
    wait_for "node $n serves A" 10 eval '[ "$("${C[@]}" "http://127.0.0.1:${PL[$n]}/p20.html")" = "A page 20" ]'
done

for n in "${NODES[@]}"; do
    kill -TERM "${SERVE[$n]}"; wait "${SERVE[$n]}"; rc=$?
    check "node $n exits 0 after SIGTERM" test "$rc" = 0
    check "  no sanitizer report" eval '! grep -q "Sanitizer\|runtime error" "$T/serve$n.err"'
done
if [ "$_failed" != 0 ]; then for n in "${NODES[@]}"; do sed "s/^/# serve$n: /" "$T/serve$n.err" | tail -25; done; fi
done_testing

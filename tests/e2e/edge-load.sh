# Switch under load, shared by 120-edge-switch.sh and 125-edge-tsan.sh; source
# it after lib.sh.
#   load_project         a project with a blue-green environment "staging" on
#                        free ports ($PL live, $PP preview): release A live
#                        (index.html "A"), release B in the idle slot ("B")
#   switch_under_load LABEL SECONDS SWITCHES
#                        wrk (-t2 -c32) against the live listener while
#                        `slipway switch staging` runs SWITCHES times spread
#                        over SECONDS; wrk is stopped (SIGINT, which still
#                        reports) only after the last switch, so it runs for
#                        SECONDS or longer if switching is slow; checks 0 socket errors, 0 non-2xx,
#                        both bodies seen, every switch exit 0; prints the
#                        switch latency (switch returned → new body served).
#                        A server must be answering on $PL, with --admin on $PA.

load_project() {
    new_project
    mkdir -p "$T/A" "$T/B"
    printf 'A\n' > "$T/A/index.html"
    printf 'B\n' > "$T/B/index.html"
    PL=$(free_port); PP=$(free_port); PA=$(free_port) # PA: for serve --admin
    rm -f "$T/p/.slipway/environments/"*.yml
    cat > "$T/p/.slipway/environments/staging.yml" <<EOF
strategy: blue-green
listen: 127.0.0.1:$PL
preview: 127.0.0.1:$PP
EOF
    sw deploy "$T/A" --env staging; expect_rc "deploy A to staging (live)" 0
    sw deploy "$T/B" --env staging; expect_rc "deploy B to staging (idle)" 0
    # wrk counts responses by body in each thread; done() sums the threads.
    cat > "$T/count.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) a, b, other, non2xx = 0, 0, 0, 0 end
function response(status, headers, body)
    if status < 200 or status > 299 then non2xx = non2xx + 1 end
    if body == "A\n" then a = a + 1 elseif body == "B\n" then b = b + 1 else other = other + 1 end
end
function done(summary, latency, requests)
    local A, B, O, N = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        A = A + t:get("a"); B = B + t:get("b"); O = O + t:get("other"); N = N + t:get("non2xx")
    end
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d %d\n", summary.requests, A, B, O, N,
        e.connect, e.read, e.write, e.timeout, e.status))
end
EOF
}

_open_conns_ge() {
    local v
    v=$(curl -sf --max-time 5 "http://127.0.0.1:$PA/_slipway/metrics" | sed -n 's/^slipway_open_connections //p')
    [ "${v:-0}" -ge "$1" ]
}

switch_under_load() {
    local label=$1 secs=$2 nsw=$3 wrk_pid res
    spawn wrk -t2 -c32 -d"$((secs + 300))s" --timeout 2s -s "$T/count.lua" "http://127.0.0.1:$PL/" \
        >"$T/wrk.$label" 2>&1
    wrk_pid=$!
    wait_for "$label: wrk has its connections open" 10 _open_conns_ge 32
    res=$(python3 "$ROOT/tests/e2e/switcher.py" "$SLIPWAY" staging "$PL" "$nsw" "$secs" \
        $'A\n' $'B\n')
    kill -INT "$wrk_pid"
    wait "$wrk_pid"
    local r
    r=$(grep '^RESULT' "$T/wrk.$label")
    read -r _ W_REQ W_A W_B W_OTHER W_NON2XX W_CONN W_READ W_WRITE W_TIMEOUT W_STATUS <<<"$r"
    echo "# $label: wrk $W_REQ requests, A $W_A, B $W_B, other $W_OTHER, non-2xx $W_NON2XX;" \
        "errors connect $W_CONN read $W_READ write $W_WRITE timeout $W_TIMEOUT status $W_STATUS"
    check "$label: wrk ran and reported" test -n "$r" -a "${W_REQ:-0}" -gt 0
    check "$label: 0 socket errors (connect/read/write/timeout)" \
        test "${W_CONN:-x}${W_READ:-x}${W_WRITE:-x}${W_TIMEOUT:-x}" = 0000
    check "$label: 0 non-2xx responses" test "${W_NON2XX:-x}${W_STATUS:-x}" = 00
    check "$label: bodies from both releases" test "${W_A:-0}" -gt 0 -a "${W_B:-0}" -gt 0
    check "$label: every body is A or B" test "${W_OTHER:-x}" = 0
    out=$res
    check "$label: all $nsw switches exited 0" test "$(json 'len(j["failures"])')" = 0
    [ "$(json 'len(j["failures"])')" = 0 ] || echo "# $(json 'j["failures"][:3]')"
    check "$label: every switch was served" test "$(json 'j["unseen"], len(j["latencies_ms"])')" = "0 $nsw"
    local ran
    # wrk prints its run time as "56.90s", or "1.02m" past a minute (a slow,
    # loaded machine makes switching, and so wrk's run, that long).
    ran=$(sed -n 's/.* requests in \([0-9.]*\)\([a-z]*\),.*/\1 \2/p' "$T/wrk.$label" |
        awk '{ print $2 == "m" ? $1 * 60 : $2 == "ms" ? $1 / 1000 : $1 }')
    check "$label: wrk ran for the whole switching (${ran:-?} s, switches took $(json 'j["elapsed_s"]') s)" \
        python3 -c "import sys; sys.exit(not ${ran:-0} >= $(json 'j["elapsed_s"]') >= $secs * 0.9)"
    SW_MEDIAN=$(json 'j["median_ms"]'); SW_MAX=$(json 'j["max_ms"]')
    echo "# switch latency median $SW_MEDIAN ms max $SW_MAX ms ($label, $nsw switches)"
    echo "# from the start of 'slipway switch': median $(json 'j["from_start_median_ms"]') ms" \
        "max $(json 'j["from_start_max_ms"]') ms"
    check "$label: switch latency max < 1000 ms" python3 -c "import sys; sys.exit(not $SW_MAX < 1000)"
}

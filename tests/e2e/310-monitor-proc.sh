#!/usr/bin/env bash
# The process and host figures on /_slipway/metrics (src/monitor/proc.c), on a
# real `slipway serve`: every family is there, only on the admin address; each
# value agrees with what /proc says about the serve process and the host when
# read independently just before and just after the scrape (CPU time, disk
# bytes, descriptors, the descriptor limit, memory, block devices); CPU time
# grows under load and the busy ratio is a ratio; scrapes at once each get
# whole text; and promtool accepts the exposition without a warning.
. "$(dirname "$0")/lib.sh"
C=(curl -s --max-time 10)

new_project
ENVS=$T/p/.slipway/environments
rm -f "$ENVS"/*.yml
P=$(free_port); PA=$(free_port)
printf 'strategy: direct\nlisten: 127.0.0.1:%s\n' "$P" > "$ENVS/dev.yml"
sw deploy "$T/site" --env dev -q; expect_rc "deploy the site" 0
spawn "$SLIPWAY" serve --workers 2 --admin "127.0.0.1:$PA" >"$T/serve.out" 2>"$T/serve.err"
SERVE=$!
wait_for "serve is up" 30 "${C[@]}" -f -o /dev/null "http://127.0.0.1:$P/"
# Wait for the metrics hook too: it is registered just after the edge starts.
wait_for "the figures are on the metrics" 10 grep -q '^process_open_fds ' <("${C[@]}" "http://127.0.0.1:$PA/_slipway/metrics")

scrape() { "${C[@]}" -o "$T/$1" "http://127.0.0.1:$PA/_slipway/metrics"; }
# val FILE SERIES: the value of one series (name with its labels, as written).
val() { awk -v s="$2" '$1 == s {print $2}' "$T/$1"; }
# ge A B / le A B / gt A B: numeric comparisons (values may be fractional).
ge() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a != "" && b != "" && a + 0 >= b + 0)}'; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a != "" && b != "" && a + 0 > b + 0)}'; }
# What /proc says of the serve process, read by the test itself.
TCK=$(getconf CLK_TCK)
PAGE=$(getconf PAGESIZE)
cpu_s() { awk -v t="$TCK" '{sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / t}' "/proc/$SERVE/stat"; }
rss_b() { awk -v p="$PAGE" '{sub(/.*\) /, ""); printf "%.0f", $22 * p}' "/proc/$SERVE/stat"; }
io_b() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SERVE/io" 2>/dev/null; }

# ---- every family, only on the admin address -----------------------------------------------
c0=$(cpu_s); r0=$(io_b read_bytes); w0=$(io_b write_bytes)
scrape m1
c1=$(cpu_s); r1=$(io_b read_bytes); w1=$(io_b write_bytes)
for f in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
    process_start_time_seconds process_open_fds process_max_fds \
    slipway_process_disk_read_bytes_total slipway_process_disk_written_bytes_total \
    slipway_host_cpu_seconds_total slipway_host_cpu_busy_ratio slipway_host_memory_total_bytes \
    slipway_host_memory_available_bytes slipway_proc_readable; do
    check "$f: a sample with HELP and TYPE" eval "grep -q '^$f[ {]' '$T/m1' && grep -q '^# HELP $f ' '$T/m1' && grep -q '^# TYPE $f ' '$T/m1'"
done
check "every /proc source was read" test "$(grep -c '^slipway_proc_readable{source="[a-z_]*"} 1$' "$T/m1")" = 6
check "the edge's own families are still there, before these" \
    eval "awk '/^slipway_requests_total/ {r = NR} /^process_cpu_seconds_total/ {p = NR} END {exit !(r && p > r)}' '$T/m1'"
get_public=$("${C[@]}" -w '%{http_code}' -o "$T/pub" "http://127.0.0.1:$P/_slipway/metrics")
check "not on the public listener (404, no figures)" eval 'test "$get_public" = 404 && ! grep -q process_ "$T/pub"'

# ---- values agree with /proc read around the scrape ----------------------------------------
v=$(val m1 process_cpu_seconds_total)
check "process_cpu_seconds_total ($v) within /proc/PID/stat before ($c0) and after ($c1)" eval 'ge "$v" "$c0" && ge "$c1" "$v"'
v=$(val m1 process_resident_memory_bytes); rss=$(rss_b)
check "process_resident_memory_bytes ($v) > 0 and near /proc's ($rss)" eval 'gt "$v" 0 && ge "$v" $((rss / 2)) && ge $((rss * 2)) "$v"'
nfd=$(find "/proc/$SERVE/fd" -mindepth 1 -maxdepth 1 | wc -l)
v=$(val m1 process_open_fds)
# 2 workers x 2 addresses listen with SO_REUSEPORT; the scrape's own connection is open too
check "process_open_fds ($v) covers the 4 listening sockets and the scrape" ge "$v" 5
check "process_open_fds ($v) near the entries of /proc/PID/fd ($nfd)" eval 'ge "$v" $((nfd - 3)) && ge $((nfd + 3)) "$v"'
lim=$(awk '/^Max open files/ {print $4}' "/proc/$SERVE/limits")
[ "$lim" = unlimited ] && lim=+Inf
check "process_max_fds is the soft limit of /proc/PID/limits ($lim)" test "$(val m1 process_max_fds)" = "$lim"
st=$(val m1 process_start_time_seconds); now=$(date +%s)
check "process_start_time_seconds ($st) is within the last 5 minutes" eval 'ge "$st" $((now - 300)) && ge $((now + 2)) "$st"'
if [ -r "/proc/$SERVE/io" ]; then
    v=$(val m1 slipway_process_disk_read_bytes_total)
    check "read bytes ($v) within /proc/PID/io before ($r0) and after ($r1)" eval 'ge "$v" "$r0" && ge "$r1" "$v"'
    v=$(val m1 slipway_process_disk_written_bytes_total)
    check "written bytes ($v) within /proc/PID/io before ($w0) and after ($w1)" eval 'ge "$v" "$w0" && ge "$w1" "$v"'
else
    echo "# skipped: /proc/$SERVE/io is not readable here (the metric then says self_io 0)"
fi
total=$(awk '$1 == "MemTotal:" {printf "%.0f", $2 * 1024}' /proc/meminfo)
check "slipway_host_memory_total_bytes is MemTotal" test "$(val m1 slipway_host_memory_total_bytes)" = "$total"
v=$(val m1 slipway_host_memory_available_bytes)
check "slipway_host_memory_available_bytes ($v) in 1..MemTotal" eval 'gt "$v" 0 && ge "$total" "$v"'
u=$(val m1 'slipway_host_cpu_seconds_total{mode="user"}')
check "host user CPU seconds ($u) match /proc/stat's cpu line" \
    eval "awk -v t=$TCK -v u='$u' '\$1 == \"cpu\" {d = \$2 / t - u; exit !(d >= 0 && d < 5)}' /proc/stat"

# ---- block devices: whole disks only, as /proc/diskstats lists them -------------------------
want=$(awk '$3 !~ /^(loop|ram|zram|fd)[0-9]+$/ && $3 !~ /^(h|s|v|xv)d[a-z]+[0-9]+$/ &&
    $3 !~ /^nvme[0-9]+n[0-9]+p[0-9]+$/ && $3 !~ /^mmcblk[0-9]+p[0-9]+$/ {print $3}' /proc/diskstats | head -64 | sort)
got=$(sed -n 's/^slipway_host_disk_reads_completed_total{device="\([^"]*\)"} .*/\1/p' "$T/m1" | sort)
check "one device label per whole disk of /proc/diskstats ($(echo $want))" test "$got" = "$want"
for d in $want; do
    sectors=$(awk -v d="$d" '$3 == d {printf "%.0f", $6 * 512}' /proc/diskstats)
    v=$(val m1 "slipway_host_disk_read_bytes_total{device=\"$d\"}")
    check "$d: read bytes ($v) = sectors read x 512 ($sectors, read after)" eval 'gt "$v" -1 && ge "$sectors" "$v"'
    for f in writes_completed_total written_bytes_total io_time_seconds_total; do
        check "$d: slipway_host_disk_$f" grep -q "^slipway_host_disk_$f{device=\"$d\"} [0-9]" "$T/m1"
    done
done
check "no partition, loop or ram device" eval '! grep -Eq "device=\"(loop|ram|zram)[0-9]" "$T/m1"'

# ---- under load: CPU time grows, the busy ratio is a ratio ----------------------------------
b1=$(val m1 slipway_host_cpu_busy_ratio)
check "the busy ratio ($b1) is within 0..1" eval 'ge "$b1" 0 && ge 1 "$b1"'
if command -v wrk >/dev/null; then
    wrk -t1 -c8 -d2s "http://127.0.0.1:$P/" >"$T/wrk.out" 2>&1
else
    for _ in $(seq 500); do "${C[@]}" -o /dev/null "http://127.0.0.1:$P/"; done
fi
scrape m2
v1=$(val m1 process_cpu_seconds_total); v2=$(val m2 process_cpu_seconds_total)
check "process_cpu_seconds_total grows under load ($v1 -> $v2)" eval 'gt "$v2" "$(awk -v a="$v1" "BEGIN {print a + 0.05}")"'
b2=$(val m2 slipway_host_cpu_busy_ratio)
check "the busy ratio since the previous scrape ($b2) shows the load (> 0, <= 1)" eval 'gt "$b2" 0 && ge 1 "$b2"'
i1=$(val m1 'slipway_host_cpu_seconds_total{mode="idle"}'); i2=$(val m2 'slipway_host_cpu_seconds_total{mode="idle"}')
check "host CPU seconds are counters ($i1 -> $i2)" ge "$i2" "$i1"

# ---- scrapes at once: each whole ----------------------------------------------------------------
sp=()
for i in 1 2 3 4 5 6; do scrape "c$i" & sp+=($!); done
wait "${sp[@]}"
bad=0
for i in 1 2 3 4 5 6; do
    [ "$(grep -c '^slipway_proc_readable{source="[a-z_]*"} 1$' "$T/c$i")" = 6 ] || bad=$((bad + 1))
    [ "$(grep -c '^process_open_fds ' "$T/c$i")" = 1 ] || bad=$((bad + 1))
done
check "6 scrapes at once each got every figure once" test "$bad" = 0

# ---- promtool -------------------------------------------------------------------------------------
if command -v promtool >/dev/null; then
    for m in m1 m2 c1; do
        lint=$(promtool check metrics < "$T/$m" 2>&1); prc=$?
        check "promtool check metrics: no error, no warning ($m)" eval 'test "$prc" = 0 && test -z "$lint"'
        [ -z "$lint" ] || printf '%s\n' "$lint" | sed 's/^/# /'
    done
else
    ok "promtool check metrics # SKIP promtool not installed (Debian package prometheus; scripts/install-deps)"
fi

kill "$SERVE"
wait "$SERVE"; src=$?
check "serve exits 0 on SIGTERM (nothing leaked: the test build checks)" test "$src" = 0
check "serve said nothing on stderr but ready" test "$(grep -vc 'slipway serve: ready' "$T/serve.err")" = 0
done_testing

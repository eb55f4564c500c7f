#!/usr/bin/env bash
# The S3 backend proves that an endpoint honours conditional writes before it writes state
# there (src/store/store_s3.c, probe(); docs/store.md, "Conditional writes are proven, not
# assumed"), on one plain moto, counting the requests that reach it in moto's own request
# log ($T/moto-PORT.log, one line per request with its status):
#
# (a) Through tests/e2e/faultproxy.py --strip-header If-None-Match (an endpoint that ignores
#     create-only writes), `deploy DIR --env dev` on a fresh store fails with the one line
#     "this endpoint ignores conditional writes (If-None-Match ...) ... slipway refuses to
#     write state to it", holding no secret; moto saw the probe's If-Match write find no
#     object (404) and both create-only writes accepted (200 200: the second overwrote the
#     first), and no envs/dev/state.json was written (the store's keys listed with the aws CLI).
# (a2) Through --strip-header If-Match (an endpoint that honours create-only writes but ignores
#     If-Match, which every state write and the environment's lease carry): the same refusal,
#     naming If-Match; moto saw one probe write, accepted (200), and no state was written.
# (b) Straight on moto, on a fresh store: the first deploy sends exactly four PUTs of
#     PREFIX/.slipway-probe/conditional-writes (404: If-Match on no object; 200, then 412: the
#     key made create-only twice; 412: If-Match proven on it); a second deploy (a new process
#     in the same project) none, the proof kept in .slipway/cache/cas-proof-*; without that
#     file exactly one (412), and the file is back; with a proof 11 minutes old, one for
#     another store's URL, or of another format, one each. None deletes the key, and the aws
#     CLI finds it holding the first write's 5 bytes ("probe": the refused writes left it as
#     it was).
# (c) The probe object deleted with the aws CLI (and the proof removed): the next deploy works
#     and writes it again (404, 200, 412, 412), and it exists afterwards.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
moto_start || done_testing
moto_bucket probe || done_testing
new_project
MOTO_LOG=$T/moto-$MOTO_PORT.log
PROBE=.slipway-probe/conditional-writes

# probe_log PREFIX [METHOD]: the statuses moto logged for METHOD (default PUT) requests of
# PREFIX's probe key, in order, on one line ("200 412").
probe_log() {
    sed -n "s|.*\"${2:-PUT} /probe/$1/$PROBE HTTP/1.1\" \([0-9]*\) .*|\1|p" "$MOTO_LOG" | tr '\n' ' ' | sed 's/ $//'
}
# probe_puts PREFIX WANT [DELETES]: moto logged exactly the probe PUTs WANT for PREFIX (their
# statuses, all of them so far) and the DELETEs of the key DELETES (none). moto logs a request before it answers it, so
# the log is complete once slipway has exited; the bounded wait only covers the file write.
probe_puts() {
    local end=$(($(date +%s) + 2))
    while [ "$(probe_log "$1")" != "$2" ] && [ "$(date +%s)" -lt $end ]; do sleep 0.05; done
    got=$(probe_log "$1") dels=$(probe_log "$1" DELETE)
    [ "$got" = "$2" ] && [ "$dels" = "${3:-}" ]
}
# deploy PREFIX [ENDPOINT]: `deploy $T/site --env dev` on s3://probe/PREFIX (straight on
# moto, or through ENDPOINT), with a page of its own each time, so every deploy is a change.
n=0
deploy() {
    n=$((n + 1))
    printf '<!doctype html><h1>v%s</h1>\n' "$n" >"$T/site/index.html"
    sw --quiet --store "$(moto_store_url "$1" "${2:-}")" deploy "$T/site" --env dev
}

# refused_through HEADER PREFIX WHAT PROBES: a deploy on PREFIX through a proxy that strips
# HEADER fails with one line, WHAT (a pattern) in it, and no secret; moto logged the probe PUTs
# PROBES (the proxy stripped HEADER from at least as many as PROBES has 200s); and no
# envs/dev/state.json was written (the keys under PREFIX/, listed with the aws CLI).
refused_through() {
    local header=$1 prefix=$2 what=$3 probes=$4 lines
    faultproxy_start --strip-header "$header" --verbose || done_testing
    deploy "$prefix" "$PROXY_URL"
    # The proxy writes its counts every second and when it stops: stop it first, so
    # "stripped" is the final count and not one from before the deploy (seen in CI: stripped 0).
    faultproxy_stop
    lines=$(printf '%s' "$errout" | grep -c '')
    verify "through an endpoint that ignores $header, deploy fails with one line: it refuses to write state there" \
        'echo "# exit $rc, stderr: $errout" | sed "2,\$s/^/# /"' \
        eval '[ "$rc" != 0 ] && [ "$lines" = 1 ] && grep -q "$what" <<<"$errout" &&
            ! grep -qF "$AWS_SECRET_ACCESS_KEY" <<<"$errout$out"'
    local accepted
    accepted=$(printf '%s\n' $probes | grep -c '^200$')
    verify "  moto saw the probe PUTs [$probes], $header stripped from the accepted ones by the proxy" \
        'echo "# probe PUTs: [$got], DELETEs: [$dels], stripped: $(faultproxy_stat stripped)"' \
        eval 'probe_puts "$prefix" "$probes" && [ "$(faultproxy_stat stripped)" -ge "$accepted" ]'
    moto_keys "$prefix/" >"$prefix.keys"
    verify "  no envs/dev/state.json was written (the keys under $prefix/, listed with the aws CLI)" \
        "sed 's/^/# key: /' $prefix.keys" \
        eval '[ -s "$prefix.keys" ] && ! grep -qx "$prefix/envs/dev/state.json" "$prefix.keys"'
}

# ---- (a) an endpoint that ignores If-None-Match: If-Match finds no object (404), then both
# create-only probe writes are accepted ------------------------------------------------------
refused_through If-None-Match nocond \
    "this endpoint ignores conditional writes .*slipway refuses to write state to it" "404 200 200"

# ---- (a2) an endpoint that ignores If-Match: the probe's If-Match write is accepted ----------
refused_through If-Match nomatch \
    "this endpoint ignores conditional writes (a write with If-Match .*slipway refuses to write state to it" \
    "200"

# ---- (b) plain moto: four probe writes on a fresh store, then one a process ---------------------
deploy p
expect_rc "deploy on a fresh store straight on moto" 0
verify "  its probe: If-Match on no object (404), the key made create-only twice (200, 412), If-Match proven (412), no DELETE" \
    'echo "# probe PUTs: [$got], DELETEs: [$dels]"' probe_puts p "404 200 412 412"
deploy p
expect_rc "a second deploy (a new process, in the same project)" 0
verify "  its probe: none, the first deploy's proof kept in the project (.slipway/cache/cas-proof-*)" \
    'echo "# probe PUTs: [$got], DELETEs: [$dels]"; cat .slipway/cache/cas-proof-* | sed "s/^/# proof: /"' \
    eval 'probe_puts p "404 200 412 412" && grep -q "^slipway-cas-proof 1$" .slipway/cache/cas-proof-*'
proof=$(ls .slipway/cache/cas-proof-*)
rm -f "$proof"
deploy p
expect_rc "a deploy without the proof" 0
verify "  its probe: exactly one more PUT, refused (412), no DELETE; the proof kept again" \
    'echo "# probe PUTs: [$got], DELETEs: [$dels]"' \
    eval 'probe_puts p "404 200 412 412 412" && [ -s "$proof" ]'
# A proof older than 10 minutes, one for another store, and one that is not a proof prove nothing.
url=$(sed -n 's/^url //p' "$proof")
for bad in "slipway-cas-proof 1\nurl $url\nat $(($(date +%s%3N) - 11 * 60 * 1000))\n" \
    "slipway-cas-proof 1\nurl $url-other\nat $(date +%s%3N)\n" \
    "slipway-cas-proof 2\nurl $url\nat $(date +%s%3N)\n"; do
    printf "$bad" >"$proof"
    want="$(probe_log p) 412"
    shown=$(head -c 40 "$proof" | tr '\n' ' ')
    deploy p
    verify "  a proof that proves nothing ($shown...): one probe PUT" \
        'echo "# probe PUTs: [$got], want [$want]"' eval '[ "$rc" = 0 ] && probe_puts p "$want"'
done
size=$(moto_head "p/$PROBE" ContentLength 2>&1 | tr '\n' ' ' | sed 's/ *$//')
verify "  the probe object is kept, holding the first write's bytes (head-object: 5 bytes)" \
    'echo "# head-object: $size"' [ "$size" = 5 ]

# ---- (c) the probe object deleted: the next process writes it again ----------------------------
aws s3api delete-object --bucket probe --key "p/$PROBE" >/dev/null || fail "delete-object p/$PROBE"
rm -f "$proof"
deploy p
expect_rc "deploy after the probe object was deleted with the aws CLI (and without the proof)" 0
verify "  its probe wrote the key again: four more PUTs (404, 200, 412, 412), no DELETE but the aws CLI's" \
    'echo "# probe PUTs: [$got], DELETEs: [$dels]"' probe_puts p "404 200 412 412 412 412 412 412 404 200 412 412" 204
size=$(moto_head "p/$PROBE" ContentLength 2>&1 | tr '\n' ' ' | sed 's/ *$//')
verify "  the probe object exists again (head-object: 5 bytes)" 'echo "# head-object: $size"' [ "$size" = 5 ]
moto_stop
done_testing

#!/usr/bin/env bash
# The real binary on an s3 store, read back by independent clients:
#
# (a) a plain moto (the commands that list need it: see moto.sh on --iam): release create,
#     deploy, switch, rollback, history --verify and gc (dry run, then --apply) on
#     s3://site/data; every object under the prefix has ServerSideEncryption AES256
#     (list-objects-v2, then head-object each); every body and manifest read back with
#     `aws s3 cp` and with `s3cmd get` is byte-identical across the two clients and to what
#     slipway wrote: a body to the file it was made of (and to the SHA-256 its key names), a
#     manifest to the SHA-256 slipway put in its x-amz-meta-sha256, and to what
#     `slipway releases` reads.
# (b) moto --iam, which verifies every signature with an IAM user's key: release create,
#     deploy, switch and status (puts, gets and heads of single objects, no listing) signed
#     by slipway and accepted; every object encrypted; a wrong secret is refused with one
#     line naming SignatureDoesNotMatch, without the secret (wrong or right) in any output,
#     and writes nothing (deploy DIR too, whose store opens while it walks DIR). And deploy
#     DIR to a bucket that does not exist says so in one line.
# The releases are made with --no-pack, so that every body is an object of its own for the
# two clients to read back; packed bodies are read back with the aws CLI in
# 417-s3-requests.sh and checked slice by slice by s3check.py (412) and 440.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require s3cmd
new_project
# Three sites sharing their image and stylesheet, each with its own page; the stylesheet is
# large enough to get gzip and br variants (bodies of their own).
for i in 2 3; do
    cp -R "$T/site" "$T/site$i"
    printf '<!doctype html><h1>v%s</h1>\n' "$i" >"$T/site$i/index.html"
done
for i in $(seq 1 300); do printf '.c%d{margin:%dpx;padding:%dpx}\n' "$i" "$i" "$i"; done >"$T/site/css/app.3f9a2c1d.css"
cp "$T/site/css/app.3f9a2c1d.css" "$T/site2/css/" && cp "$T/site/css/app.3f9a2c1d.css" "$T/site3/css/"
# live ENV: the live release of ENV, as `slipway status --json` reads it.
live() {
    sw status --json
    json "[e['live_release'] for e in j['environments'] if e['name'] == '$1'][0]"
}
# sse_all PREFIX: every key under PREFIX (all keys when empty) has ServerSideEncryption
# AES256, asked of each object with head-object (four at a time); prints the count and the
# exceptions.
sse_all() {
    local keys=sse-$MOTO_PORT.keys sse=sse-$MOTO_PORT.txt k heads=()
    moto_keys "$1" >"$keys" || return 1
    [ -s "$keys" ] || return 1
    : >"$sse"
    while IFS= read -r k; do
        printf '%s %s\n' "$(aws s3api head-object --bucket "$MOTO_BUCKET" --key "$k" \
            --query ServerSideEncryption --output text)" "$k" >>"$sse" &
        heads+=($!)
        [ ${#heads[@]} -lt 4 ] || { wait "${heads[@]}"; heads=(); }
    done <"$keys"
    [ ${#heads[@]} = 0 ] || wait "${heads[@]}"
    echo "# $(wc -l <"$keys") objects, $(grep -c '^AES256 ' "$sse") with AES256"
    grep -v '^AES256 ' "$sse" | sed 's/^/# not encrypted: /'
    [ "$(grep -c '^AES256 ' "$sse")" = "$(wc -l <"$keys")" ]
}
# (b) runs on its own moto --iam in a subshell, alongside (a): most of both is waiting on the
# aws CLI. The subshell stops its own servers by PID when it ends (lib.sh's trap is the
# parent's), and its lines are printed after (a)'s.
(
    trap 'kill "${_pids[@]}" 2>/dev/null; wait' EXIT
    _pids=()
    # lib.sh's sw, with a stderr file of its own: (a) runs sw meanwhile.
    sw() {
        out=$("$SLIPWAY" "$@" 2>"$T/.stderr-iam")
        rc=$?
        errout=$(cat "$T/.stderr-iam")
    }
    # ---- (b) moto --iam: every request's signature checked ------------------------------------
    moto_start --iam || done_testing
    moto_bucket iam || done_testing
    SLIPWAY_STORE=$(moto_store_url data)
    export SLIPWAY_STORE
    secret=$AWS_SECRET_ACCESS_KEY
    # refused: how many requests moto has refused, listings apart. release create lists
    # releases/ for variants to reuse (a hint: any failure means compressing again), and
    # moto --iam refuses every listing of a prefix with '/'.
    refused() { grep '" 403 ' "$T/moto-$MOTO_PORT.log" | grep -vc 'list-type=2'; }
    setup_refused=$(refused)
    echo "# moto --iam: the IAM user's key $AWS_ACCESS_KEY_ID; puts, gets and heads only (no listing)"
    sw release create "$T/site" --no-pack -q; I1=$out; expect_rc "IAM-verified: release create" 0
    sw release create "$T/site2" --no-pack -q; I2=$out; expect_rc "IAM-verified: a second release create (bodies reused)" 0
    sw deploy "$I1" --env staging; expect_rc "IAM-verified: deploy (a full release id: no listing)" 0
    sw deploy "$I2" --env staging; expect_rc "IAM-verified: deploy to the idle slot" 0
    sw switch staging; expect_rc "IAM-verified: switch" 0
    sw deploy "$I1" --env dev; expect_rc "IAM-verified: deploy to dev" 0
    check "IAM-verified: status reads I2 live on staging, I1 on dev" \
        eval '[ "$(live staging)" = "$I2" ] && [ "$(live dev)" = "$I1" ]'
    check "moto --iam refused none of slipway's requests but listings" test "$(refused)" = "$setup_refused"
    echo "# listings refused by moto --iam (release create's hint of variants to reuse): $(grep '" 403 ' "$T/moto-$MOTO_PORT.log" | grep -c 'list-type=2')"
    check "IAM-verified: every object is encrypted at rest (AES256)" sse_all ""
    moto_keys >iam-before.txt
    wrong=wrong-secret-$RANDOM$RANDOM
    # deploy DIR opens the store on a thread of its own while it walks DIR: its
    # failure is still the one line.
    for c in "status" "release create $T/site3" "deploy $I2 --env dev" "deploy $T/site3 --env dev"; do
        # shellcheck disable=SC2086 # the command's words
        AWS_SECRET_ACCESS_KEY=$wrong sw $c
        check "a wrong secret: '${c%% *}' is refused with one line naming SignatureDoesNotMatch" \
            eval '[ "$rc" = 1 ] && [ "$(grep -c "" <<<"$errout")" = 1 ] && grep -q SignatureDoesNotMatch <<<"$errout"'
        check "  and neither the wrong secret nor the right one is in its output" \
            eval '! grep -qF -e "$wrong" -e "$secret" <<<"$out$errout"'
    done
    echo "# $(head -1 <<<"$errout")"
    check "the refused requests wrote nothing" eval 'moto_keys | diff iam-before.txt -'
    check "moto --iam refused them" test "$(refused)" -gt "$setup_refused"
    echo "# (b) took ${SECONDS}s"
    exit "$_failed"
) >iam.tap 2>&1 &
iam_pid=$!

# ---- (a) plain moto -----------------------------------------------------------------------
moto_start || done_testing
moto_bucket site || done_testing
export SLIPWAY_STORE
SLIPWAY_STORE=$(moto_store_url data)
sw release create "$T/site" --no-pack -q; R1=$out; expect_rc "release create on s3" 0
sw release create "$T/site2" --no-pack -q; R2=$out
sw release create "$T/site3" --no-pack -q; R3=$out
check "three releases made (R3 is never deployed)" eval '[ -n "$R1" ] && [ -n "$R2" ] && [ -n "$R3" ] && [ "$R1" != "$R2" ]'
# deploy DIR to a bucket that does not exist: the store's open (on a thread of its own, while
# DIR is walked) fails, and that is the one line said, as for any command.
sw --store "s3://nosuchbucket?endpoint=$MOTO_URL&region=us-east-1&path_style=true" deploy "$T/site" --env dev
check "deploy DIR to a bucket that does not exist: one line, no store there, from --store" \
    eval '[ "$rc" = 1 ] && [ "$(grep -c "" <<<"$errout")" = 1 ] &&
        grep -q "no store at s3://nosuchbucket.*the bucket does not exist (.slipway infra apply. creates it) (from --store)$" <<<"$errout"'
echo "# $errout"
# And a release by id: the same line (the deferred open's first request, a HEAD of the
# manifest, finds no bucket; listing the releases then says which).
sw --store "s3://nosuchbucket?endpoint=$MOTO_URL&region=us-east-1&path_style=true" deploy \
    r-20261206-120000-000-abcdef --env dev
check "deploy RELEASE to a bucket that does not exist: the same one line" \
    eval '[ "$rc" = 1 ] && [ "$(grep -c "" <<<"$errout")" = 1 ] &&
        grep -q "no store at s3://nosuchbucket.*the bucket does not exist (.slipway infra apply. creates it) (from --store)$" <<<"$errout"'
echo "# $errout"
sw deploy "$R1" --env staging; expect_rc "deploy R1 to staging (blue, live)" 0
sw deploy "$R2" --env staging; expect_rc "deploy R2 to staging (the idle slot)" 0
check "  R1 stays live until the switch" test "$(live staging)" = "$R1"
sw switch staging; expect_rc "switch staging" 0
check "  R2 is live" test "$(live staging)" = "$R2"
sw rollback staging; expect_rc "rollback staging" 0
check "  R1 is live again" test "$(live staging)" = "$R1"
sw deploy "$R1" --env dev; expect_rc "deploy R1 to dev" 0
sw deploy "${R2:0:26}" --env dev; expect_rc "deploy R2 to dev by a unique prefix (a listing)" 0
check "  R2 is live on dev" test "$(live dev)" = "$R2"
sw history staging --verify
# Six changes: events 1-5 are objects, the sixth is held by the head (docs/store.md).
nobj=$(moto_keys data/events/ | grep -c '/[0-9]*\.json$')
check "history --verify: the audit chain read from S3 is intact (6 events, $nobj objects)" \
    eval '[ "$rc" = 0 ] && [ "$nobj" = 5 ] && grep -q "audit chain intact (6 events checked)" <<<"$out"'
sw history staging --json
check "history --json: staging's four changes in order" \
    test "$(json '" ".join(e["action"] for e in j["events"])')" = "deploy deploy switch rollback"

# gc: R3 is the one release nothing keeps; its page is the one body only it has.
page3=$(sha256sum <"$T/site3/index.html" | cut -d' ' -f1)
page1=$(sha256sum <"$T/site/index.html" | cut -d' ' -f1)
moto_keys data/ >keys.before
sw gc --grace 0s
check "gc (dry run) names R3 and only R3" eval '[ "$rc" = 0 ] && grep -q "$R3" <<<"$out" && ! grep -q "$R1\|$R2" <<<"$out"'
check "  and deletes nothing" eval 'moto_keys data/ | diff keys.before -'
sw gc --apply --grace 0s; expect_rc "gc --apply" 0
moto_keys data/ >keys.after
check "  R3's manifest and its page's body are gone from the bucket, and nothing else" \
    eval '[ "$(diff keys.before keys.after | grep "^[<>]")" = "< data/blobs/sha256/${page3:0:2}/$page3
< data/releases/$R3.json" ]'
sw releases --json
check "  slipway lists R1 and R2" test "$(json '" ".join(r["id"] for r in j["releases"])')" = "$R1 $R2"
sw deploy "$R1" --env staging --switch; expect_rc "a kept release still deploys after gc" 0
sw history staging --verify; expect_rc "the audit chain still verifies after gc" 0

check "every object slipway wrote under data/ is encrypted at rest (head-object: AES256)" sse_all data/

# Every body and manifest, through both clients.
s3cmd_cfg
mkdir aws.out s3cmd.out
aws s3 cp --quiet --recursive s3://site/data/ aws.out/
s3cmd -c "$S3CMD_CFG" -q get --recursive s3://site/data/ s3cmd.out/
check "aws s3 cp and s3cmd get read the same bytes for every object" \
    eval '[ -d aws.out/blobs ] && [ -d aws.out/releases ] && diff -r aws.out s3cmd.out'
# bodies: each hashes to the name of its key; the sites' files are there byte for byte.
bad_blob() {
    local f n=0
    for f in aws.out/blobs/sha256/*/*; do
        n=$((n + 1))
        [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "${f##*/}" ] || { echo "# $f"; return 1; }
    done
    echo "# $n bodies, each the SHA-256 its key names"
    for f in "$T/site/index.html" "$T/site/img/logo.png" "$T/site/css/app.3f9a2c1d.css" "$T/site2/index.html"; do
        n=$(sha256sum <"$f" | cut -d' ' -f1)
        cmp -s "$f" "aws.out/blobs/sha256/${n:0:2}/$n" && cmp -s "$f" "s3cmd.out/blobs/sha256/${n:0:2}/$n" ||
            { echo "# $f differs"; return 1; }
    done
    [ -f "aws.out/blobs/sha256/${page1:0:2}/$page1" ]
}
check "bodies read back are byte-identical to the files released (and to their names)" bad_blob
# manifests: the SHA-256 slipway computed of what it wrote (x-amz-meta-sha256), and what
# slipway reads of them.
manifests_ok() {
    local id sha meta files
    for id in "$R1" "$R2"; do
        sha=$(sha256sum <"aws.out/releases/$id.json" | cut -d' ' -f1)
        meta=$(aws s3api head-object --bucket site --key "data/releases/$id.json" --query Metadata.sha256 --output text)
        [ "$sha" = "$meta" ] || { echo "# $id: $sha read, $meta written"; return 1; }
        files=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files_count"])' "aws.out/releases/$id.json")
        sw releases --json
        [ "$(json "[r['files'] for r in j['releases'] if r['id'] == '$id'][0]")" = "$files" ] || return 1
    done
}
check "manifests read back hash to what slipway wrote (x-amz-meta-sha256) and hold what slipway lists" manifests_ok
moto_stop

echo "# (a) took ${SECONDS}s"
wait $iam_pid || _failed=1
cat iam.tap
done_testing

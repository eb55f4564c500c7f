#!/usr/bin/env bash
# slipway audit export: the audit log copied to a separate logs bucket (moto), read
# back with the aws CLI and verified there by `slipway history --verify`; the copy is
# incremental, refuses a destination holding another chain, and an event altered in the
# copy is caught by the copy's own verification.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/e2e/moto.sh"
moto_require
moto_start || done_testing
new_project
moto_bucket logs
moto_bucket site
S=$(moto_store_url p)
L=$(moto_store_url audit "" | sed 's#s3://site/#s3://logs/#')

sw --store "$S" deploy "$T/site" --env dev -q
expect_rc "deploy to an s3 store" 0
sw --store "$S" audit export --to "$L"
expect_rc "audit export" 0
check "it says how many events it sent" grep -q "1 events, 1 new" <<<"$out"
check "the copy holds the event and the head (read with the aws CLI)" \
    bash -c 'aws s3 ls --recursive s3://logs/audit/events/ | grep -c "\.json" | grep -qx 2'
aws s3 cp --quiet s3://logs/audit/events/000000000001.json "$T/copied.json"
# The store's only event is still held by its head, not an object of its own: the export
# copies it from there.
check "the store holds event 1 in its head only" \
    bash -c '! aws s3 ls s3://site/p/events/000000000001.json >/dev/null'
aws s3 cp --quiet s3://site/p/events/head.json "$T/head.json"
python3 -c 'import json, sys; sys.stdout.write(json.load(open(sys.argv[1]))["event"])' \
    "$T/head.json" >"$T/orig.json"
check "the copied event is byte-identical to the one the head holds" \
    cmp -s "$T/copied.json" "$T/orig.json"
check "the copy is encrypted at rest" bash -c '[ "$(moto_head audit/events/000000000001.json 2>/dev/null || aws s3api head-object --bucket logs --key audit/events/000000000001.json --query ServerSideEncryption --output text)" = AES256 ]'

printf '<h1>v2</h1>\n' >"$T/site/index.html"
sw --store "$S" deploy "$T/site" --env dev -q
sw --store "$S" deploy "$T/site" --env staging -q
sw --store "$S" --json audit export --to "$L"
expect_rc "a second export" 0
check "only the new events are sent" [ "$(json '(j["events"], j["sent"], j["checked"])')" = "(3, 2, 3)" ]
sw --store "$L" history dev --verify
expect_rc "history --verify on the copy in the logs bucket" 0
check "the copy's chain is intact" grep -q "audit chain intact (3 events checked)" <<<"$out"

sw --store "$S" audit export --to "$L"
check "a third export with nothing new sends nothing" grep -q "3 events, 0 new" <<<"$out"

# An event altered in the copy: the copy's verification says so, and so does the next export.
printf '{"forged": true}' | aws s3 cp --quiet - s3://logs/audit/events/000000000002.json
sw --store "$L" history dev --verify
check "an altered event in the copy is detected by history --verify" [ "$rc" != 0 ]
sw --store "$S" audit export --to "$L"
expect_err "the export refuses a destination holding another chain" 1 \
    "events/000000000002.json differs between .* another audit chain"

sw --store "$S" audit export --to "$S"
expect_err "exporting a store to itself is refused" 1 "names the store itself"
sw --store "$S" audit export
expect_err "--to is required" 2 "--to URL is required"
sw --store "$S" audit export --to "s3://nosuchbucket?endpoint=$MOTO_URL"
expect_err "a logs bucket that does not exist is one clear line" 1 "no store at .*bucket does not exist"
done_testing

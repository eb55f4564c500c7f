#!/usr/bin/env bash
# Deploys to direct and blue-green environments, switch, rollback, status and
# history (JSON shapes, the audit chain and tampering), and gc's keep rules.
. "$(dirname "$0")/lib.sh"

new_project
DATA=$T/p/.slipway/data
# site N: a directory with distinct content (one unique body, one shared).
site() {
    mkdir -p "$T/s$1/css"
    printf '<!doctype html><p>site %s</p>\n' "$1" > "$T/s$1/index.html"
    printf 'body{margin:0}\n' > "$T/s$1/css/shared.css"
    echo "$T/s$1"
}
# state ENV EXPR: a python expression over envs/ENV/state.json (as `s`), read directly.
state() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$DATA/envs/$1/state.json"; }
gen() { state "$1" 's["generation"]'; }
rid() { sw release create "$(site "$1")" -q; echo "$out"; }

R1=$(rid 1); R2=$(rid 2); R3=$(rid 3); R4=$(rid 4); R5=$(rid 5)

# ---- direct ---------------------------------------------------------------------
sw deploy "$R1" --env dev; expect_rc "deploy RELEASE to dev (direct)" 0
check "direct: it is live at once" test "$(state dev 's["live_release"], s["live_slot"], s["generation"]')" = "$R1 None 1"
check "direct: the output says what changed" grep -q "dev: deployed (nothing) -> $R1" <<<"$out"
sw deploy "${R2:0:26}" --env dev; expect_rc "deploy by unique prefix" 0
check "prefix resolved to the full id" test "$(state dev 's["live_release"], s["previous_release"]')" = "$R2 $R1"
sw deploy "${R3: -6}" --env dev; expect_rc "deploy by unique suffix" 0
check "suffix resolved" test "$(state dev 's["live_release"]')" = "$R3"
sw deploy r-2 --env dev; expect_err "an ambiguous prefix is refused" 1 "ambiguous"
check "an ambiguous prefix changes nothing" test "$(gen dev)" = 3
printf 'dev only\n' > "$T/s1/extra.txt"
sw deploy "$T/s1" --env dev; expect_rc "deploy DIR to dev" 0
D1=$(state dev 's["live_release"]')
check "deploy DIR made a new release and it is live" test -f "$DATA/releases/$D1.json" -a "$D1" != "$R1"
check "deploy DIR: that release has the directory's files" \
    test "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["files"]))' "$DATA/releases/$D1.json")" = 3
rm "$T/s1/extra.txt"
sw switch dev; expect_err "switch on a direct environment is an error" 1 "dev.*direct"
check "switch dev changed nothing" test "$(gen dev)" = 4
sw rollback dev; expect_rc "rollback dev (direct)" 0
check "direct rollback redeploys the previous release" test "$(state dev 's["live_release"], s["previous_release"]')" = "$R3 $D1"
sw rollback dev --to "$R1" -m "back to one"; expect_rc "rollback dev --to R1" 0
check "rollback --to goes to that release" test "$(state dev 's["live_release"], s["previous_release"]')" = "$R1 $R3"
sw rollback dev --to "$R1"; expect_err "rollback to what is live is an error" 1 "already live"

# ---- blue-green ----------------------------------------------------------------------
sw rollback staging; expect_err "rollback with nothing previous: exit 1" 1 "no previous release"
check "a failed rollback writes no state" test ! -e "$DATA/envs/staging/state.json"
sw switch staging; expect_err "switch with nothing deployed: exit 1" 1 "idle slot.*no release"
sw deploy "$R1" --env staging; expect_rc "first deploy to an empty blue-green environment" 0
check "first deploy goes live at once in blue" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"]')" = "$R1 blue $R1 None"
sw rollback staging; expect_err "rollback after only one deploy: exit 1" 1 "no previous release"
sw deploy "$T/s2" --env staging; expect_rc "deploy DIR to staging" 0
S2=$(state staging 's["slots"]["green"]["release"]')
check "blue-green: the new release goes to the idle slot (green)" test -f "$DATA/releases/$S2.json"
check "blue-green: live is unchanged" test "$(state staging 's["live_release"], s["live_slot"]')" = "$R1 blue"
check "blue-green: the output says to switch" grep -q "slipway switch staging" <<<"$out"
sw switch staging -m "go green"; expect_rc "switch staging" 0
check "switch: green is live, the slots are unchanged, R1 is previous" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"], s["previous_release"]')" = "$S2 green $R1 $S2 $R1"
check "switch prints what changed" grep -q "staging: switched $R1 -> $S2 (live slot: green)" <<<"$out"
sw rollback staging; expect_rc "rollback staging" 0
check "rollback is an instant flip: slots unchanged, live slot back to blue" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"], s["previous_release"]')" = "$R1 blue $R1 $S2 $S2"
sw rollback staging; expect_rc "rollback again flips forward" 0
check "second rollback: green live again, slots unchanged" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"]')" = "$S2 green $R1 $S2"
sw deploy "$R3" --env staging --switch; expect_rc "deploy --switch" 0
check "deploy --switch: written to the idle (blue) slot and live" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"], s["previous_release"]')" = "$R3 blue $R3 $S2 $S2"
sw rollback staging --to "$R4"; expect_rc "rollback --to a release in no slot" 0
check "rollback --to: deployed to the idle slot and switched to" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"], s["previous_release"]')" = "$R4 green $R3 $R4 $R3"
sw rollback staging --to "$R3"; expect_rc "rollback --to the release in the idle slot" 0
check "rollback --to the idle slot's release flips" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["green"]["release"]')" = "$R3 blue $R4"
sw deploy "$R5" --env staging; expect_rc "deploy R5 to staging (idle)" 0
check "deploy to idle replaces the idle slot only" \
    test "$(state staging 's["live_release"], s["live_slot"], s["slots"]["blue"]["release"], s["slots"]["green"]["release"]')" = "$R3 blue $R3 $R5"
sw deploy "$R5" --env staging --json; expect_rc "deploy --json" 0
check "deploy --json fields" test "$(json 'sorted(j)')" = "['action', 'changed', 'env', 'from', 'generation', 'release', 'slot', 'switched', 'to']"

# ---- deploying what is live already; --switch on a direct environment -----------------------
# A deploy of the live release is a no-op that says so: exit 0, one line, no
# new generation, no audit event, the store as it was.
nevents() { ls "$DATA/events" | wc -l; }
g_dev=$(gen dev) g_stg=$(gen staging) n_ev=$(nevents) before=$(snapshot "$DATA")
L_DEV=$(state dev 's["live_release"]') L_STG=$(state staging 's["live_release"]')
sw deploy "$L_DEV" --env dev
check "deploy of dev's live release: exit 0, one line saying nothing changed" \
    test "$rc:$out:$errout" = "0:release $L_DEV is already live on dev; nothing changed:"
sw deploy "$L_STG" --env staging
check "deploy of staging's live release (blue-green): says so" \
    test "$rc:$out" = "0:release $L_STG is already live on staging; nothing changed"
sw deploy "$L_STG" --env staging --switch; check "... with --switch too" test "$rc:$out" = "0:release $L_STG is already live on staging; nothing changed"
sw deploy "${L_DEV:0:26}" --env dev -q; check "... by prefix, --quiet: exit 0, silent" test "$rc:$out:$errout" = "0::"
sw deploy "$L_STG" --env staging --json
check "... --json: changed false, from = to, the current generation and live slot" \
    test "$rc $(json 'j["changed"], j["from"] == j["to"] == j["release"], j["generation"], j["slot"], j["switched"], sorted(j)')" = \
    "0 False True $g_stg blue False ['action', 'changed', 'env', 'from', 'generation', 'release', 'slot', 'switched', 'to']"
check "no new generation" test "$(gen dev) $(gen staging)" = "$g_dev $g_stg"
check "no audit event" test "$(nevents)" = "$n_ev"
check "the store is as it was" test "$before" = "$(snapshot "$DATA")"
sw deploy "$R2" --env dev --switch
expect_err "deploy --switch on a direct environment is a usage error" 2 \
    "^slipway deploy: --switch: dev is a direct environment.*; see 'slipway deploy --help'$"
n_rel=$(ls "$DATA/releases" | wc -l)
sw deploy "$T/s4" --env dev --switch -q; expect_err "deploy DIR --switch on direct: a usage error too" 2 "direct environment"
check "--switch on direct: no release was made, nothing changed" \
    test "$(ls "$DATA/releases" | wc -l) $(gen dev)" = "$n_rel $g_dev" -a "$before" = "$(snapshot "$DATA")"

# ---- status --json: the exact shape ---------------------------------------------------------
sw status --json; expect_rc "status --json" 0
shape=$(printf '%s' "$out" | python3 -c '
import json, re, sys
j = json.load(sys.stdin)
R1, R3, R4, R5, data = sys.argv[1:]
s = json.load(open(data + "/envs/staging/state.json"))
d = json.load(open(data + "/envs/dev/state.json"))
want = {"environments": [
    {"name": "dev", "strategy": "direct", "live_release": R1, "live_slot": None, "slots": {},
     "previous_release": R3, "generation": d["generation"], "lease": None},
    {"name": "staging", "strategy": "blue-green", "live_release": R3, "live_slot": "blue",
     "slots": {"blue": {"release": R3}, "green": {"release": R5}},
     "previous_release": R4, "generation": s["generation"], "lease": None}]}
for e in j["environments"]:
    u = e.pop("updated", "missing")
    if not (isinstance(u, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", u)):
        print("bad updated", u)
if j != want:
    print("got ", json.dumps(j, sort_keys=True))
    print("want", json.dumps(want, sort_keys=True))
if [list(e) for e in j["environments"]][0] != ["name", "strategy", "live_release", "live_slot", "slots", "previous_release", "generation", "lease"]:
    print("key order", [list(e) for e in j["environments"]][0])
 ' "$R1" "$R3" "$R4" "$R5" "$DATA" 2>&1)
check "status --json has exactly the documented shape and values${shape:+ ($shape)}" test -z "$shape"
sw status staging --json
check "status ENV shows only that environment" test "$(json '[e["name"] for e in j["environments"]]')" = "['staging']"
check "status staging: previous release is the one replaced by the last flip" test "$(json 'j["environments"][0]["previous_release"]')" = "$R4"
sw status; expect_rc "status (human)" 0
check "status (human) shows both slots and which is live" grep -qE "blue +$R3 +\[live\]" <<<"$out"
sw status nope; expect_err "status of an unknown environment" 1 "unknown environment 'nope'"

# ---- history ---------------------------------------------------------------------------------
SLIPWAY_ACTOR=carol "$SLIPWAY" switch staging -m "carol's switch" > /dev/null; rc=$?
check "a switch as another actor" test $rc = 0
sw history staging --json; expect_rc "history staging --json" 0
hist=$(printf '%s' "$out" | python3 -c '
import json, sys
j = json.load(sys.stdin)
ev = j["events"]
bad = []
if list(j) != ["events"]: bad.append("top-level keys %s" % list(j))
for e in ev:
    if list(e) != ["seq", "time", "actor", "action", "from", "to", "slot", "switched", "message"]: bad.append("keys %s" % list(e))
seqs = [e["seq"] for e in ev]
if seqs != sorted(seqs) or len(set(seqs)) != len(seqs): bad.append("order %s" % seqs)
print("; ".join(bad) if bad else "ok")
print(" ".join(e["action"] for e in ev))
print(ev[2]["message"], "|", ev[2]["actor"], "|", ev[-1]["actor"], "|", ev[-1]["message"])
print(ev[0]["from"], ev[0]["to"], ev[-1]["from"], ev[-1]["to"])
')
check "history --json: shape and seq order" test "$(sed -n 1p <<<"$hist")" = ok
check "history --json: every staging change, in order" \
    test "$(sed -n 2p <<<"$hist")" = "deploy deploy switch rollback rollback deploy rollback rollback deploy deploy switch"
check "history --json: message and actor (SLIPWAY_ACTOR)" test "$(sed -n 3p <<<"$hist")" = "go green | tester | carol | carol's switch"
check "history --json: from and to" test "$(sed -n 4p <<<"$hist")" = "None $R1 $R3 $R5"
sw history dev --json
check "history dev: only dev's events, with the rollback message" \
    test "$(json '" ".join(e["action"] for e in j["events"]), j["events"][-1]["message"]')" = "deploy deploy deploy deploy rollback rollback back to one"
sw history dev; expect_rc "history (human)" 0
check "history (human): one line per change" test "$(grep -c 'tester' <<<"$out")" = 6
sw history staging
check "history: a blue-green deploy to the idle slot says so" grep -qE " deploy .*\[(blue|green), idle, live unchanged\]" <<<"$out"
check "history: a switch says which slot went live" grep -qE " switch .*\[(blue|green), live\]" <<<"$out"
sw history dev
check "history: a direct environment names no slot" eval '! grep -q "\[" <<<"$out"'
sw history staging --json
check "history --json: slot and switched" test "$(json '[(e["slot"], e["switched"]) for e in j["events"] if e["action"] == "switch"][0][1]')" = True
sw history staging --verify; expect_rc "history --verify on an intact log" 0
# Every event, the newest included, which the head holds (events/head.json's "event") and
# which the next change stores as an object of its own.
newest=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["seq"])' "$DATA/events/head.json")
check "history --verify says how many events it checked" grep -q "audit chain intact ($newest events checked)" <<<"$out"
check "the newest event is held by the head, the others are objects" \
    test "$(ls "$DATA/events" | grep -c '^[0-9]*\.json$')" = $((newest - 1))

# Tampering: edit one field of one event.
cp -a "$DATA/events" "$T/events.orig"
ev5=$(ls "$DATA/events" | sed -n 5p)
python3 - "$DATA/events/$ev5" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
assert '"actor":"tester"' in s
open(p, "w").write(s.replace('"actor":"tester"', '"actor":"mallory"', 1))
EOF
sw history staging --verify
expect_err "an edited event breaks the chain: exit 1" 1 "${ev5%.json}"
sw history staging --json
check "without --verify history still reads" test "$rc" = 0
rm -rf "$DATA/events"; cp -a "$T/events.orig" "$DATA/events"
last=$(printf '%012d' "$newest")
sed -i 's/\\"actor\\":\\"carol\\"/\\"actor\\":\\"mallory\\"/' "$DATA/events/head.json"
check "(the newest event, in the head, was edited)" grep -q mallory "$DATA/events/head.json"
sw history staging --verify
expect_err "an edited newest event is detected too: exit 1 naming it" 1 "$last"
rm -rf "$DATA/events"; cp -a "$T/events.orig" "$DATA/events"
ev3=$(ls "$DATA/events" | sed -n 3p)
rm "$DATA/events/$ev3"
sw history staging --verify
expect_err "a removed event breaks the chain" 1 "events/"
rm -rf "$DATA/events"; cp -a "$T/events.orig" "$DATA/events"
sw history staging --verify; expect_rc "restored log verifies again" 0

# ---- gc ------------------------------------------------------------------------------------------
# A fresh project: dev (direct) and staging (blue-green), retain_releases 3 / 1.
rm -rf "$T/p" "$T"/s[0-9]*; new_project
DATA=$T/p/.slipway/data
envfile() { printf 'strategy: %s\nkeep_previous: %s\nretain_releases: %s\n' "$2" "$3" "$4" > "$T/p/.slipway/environments/$1.yml"; }
envfile dev direct 24h 3
envfile staging blue-green 24h 1
for i in 1 2 3 4 5 6 7; do eval "G$i=\$(rid $i)"; done
for r in "$G1" "$G2" "$G3"; do sw deploy "$r" --env dev -q; done
sw deploy "$G4" --env staging -q; sw deploy "$G5" --env staging --switch -q; sw deploy "$G6" --env staging -q
check "(gc setup: dev live G3 previous G2; staging blue G6 idle, green G5 live, previous G4)" \
    test "$(state dev 's["live_release"], s["previous_release"]'; state staging 's["slots"]["blue"]["release"], s["slots"]["green"]["release"], s["live_slot"], s["previous_release"]')" = \
    "$(printf '%s %s\n%s %s green %s' "$G3" "$G2" "$G6" "$G5" "$G4")"
# G7 was never deployed; give it a body of its own.
printf 'only in seven\n' > "$T/s7/seven.txt"; sw release create "$T/s7" -q; G7b=$out
rm "$T/s7/seven.txt"
seven_hex=$(printf 'only in seven\n' | sha256sum | cut -d' ' -f1)
one_hex=$(sha256sum < "$T/s1/index.html" | cut -d' ' -f1)
shared_hex=$(sha256sum < "$T/s1/css/shared.css" | cut -d' ' -f1)
blob() { echo "$DATA/blobs/sha256/${1:0:2}/$1"; }
exists() { for r in "$@"; do [ -f "$DATA/releases/$r.json" ] || return 1; done; }
gone() { for r in "$@"; do [ ! -e "$DATA/releases/$r.json" ] || return 1; done; }

before=$(snapshot "$DATA")
sw gc --grace 0s; expect_rc "gc without --apply" 0
check "gc without --apply lists G7 and G7b and nothing else" \
    test "$(grep '^would delete release' <<<"$out" | awk '{print $4}' | sort | tr '\n' ' ')" = "$(printf '%s\n' "$G7" "$G7b" | sort | tr '\n' ' ')"
check "gc without --apply deletes nothing" test "$before" = "$(snapshot "$DATA")"
sw gc --grace 0s --json; expect_rc "gc --grace 0s --json (dry run)" 0
check "gc dry run --json: applied false, releases G7 and G7b, their two bodies" \
    test "$(json 'j["applied"], sorted(j["releases"]), j["blobs"]')" = "False $(python3 -c 'import sys; print(sorted(sys.argv[1:]))' "$G7" "$G7b") 2"
check "gc --json without --apply deletes nothing" test "$before" = "$(snapshot "$DATA")"
sw gc --apply; expect_rc "gc --apply with the default 1h grace" 0
check "gc --apply with the default grace deletes nothing that young" test "$before" = "$(snapshot "$DATA")"
sw gc --apply --grace 0s; expect_rc "gc --apply --grace 0s" 0
check "gc: the never-deployed releases are deleted" gone "$G7" "$G7b"
check "gc: the body only they used is deleted" test ! -e "$(blob "$seven_hex")"
check "gc: slots, previous and retained releases are kept" exists "$G1" "$G2" "$G3" "$G4" "$G5" "$G6"
check "gc: every kept release is complete and every blob is referenced" store_check "$DATA" strict

envfile dev direct 24h 1
sw gc --apply --grace 0s; expect_rc "gc with dev retain_releases 1" 0
check "gc: G1 (only in dev's history, beyond retain_releases) is deleted" gone "$G1"
check "gc: its unique body is deleted, the shared one kept" test ! -e "$(blob "$one_hex")" -a -f "$(blob "$shared_hex")"
check "gc: previous releases within keep_previous survive (G2 dev, G4 staging)" exists "$G2" "$G4"
check "gc: live and slot releases survive" exists "$G3" "$G5" "$G6"
check "gc: kept releases complete" store_check "$DATA" strict

envfile dev direct 0s 1
envfile staging blue-green 0s 1
# Switch staging to G6: G5 (now previous, past keep_previous, not the newest
# deployed) is kept only because the idle slot holds it.
sw switch staging -q
sw gc --apply --grace 0s; expect_rc "gc with keep_previous 0s" 0
check "gc: previous releases past keep_previous are deleted (G2; G4 no longer previous)" gone "$G2" "$G4"
check "gc: never the live release (G3, G6)" exists "$G3" "$G6"
check "gc: never a slot's release (G5, idle, kept by nothing else)" exists "$G5"
check "gc: kept releases complete, nothing unreferenced" store_check "$DATA" strict expired-previous
sw gc --apply --grace 0s --json
check "gc again finds nothing" test "$(json 'j["releases"], j["blobs"]')" = "[] 0"
sw rollback staging; expect_rc "staging flips back to the release its idle slot kept" 0
check "after the rollback staging's live release is G5" test "$(state staging 's["live_release"], s["live_slot"]')" = "$G5 green"
sw rollback dev; expect_err "rollback to a collected previous release fails clearly" 1 "$G2.*not found"
sw rollback dev --to "$G1"; expect_err "a deleted release cannot be deployed" 1 "not found"
sw deploy "$G5" --env dev; expect_rc "a kept release still deploys" 0
done_testing

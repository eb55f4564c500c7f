#!/usr/bin/env python3
"""Writes the seed corpora of the store-document fuzz targets.

    python3 fuzz/seeds.py [SLIPWAY]     (default ./slipway; run from the repository)

The valid seeds are what slipway really writes: a project in a temporary
directory (one environment of each strategy, a site inside a git repository
with a tag) gets two releases and a series of deploys, switches and rollbacks;
every manifest, every state document (copied after each change), every audit
event (the newest from the head that holds it) and the head are kept byte for
byte, and the head also as heads were written before they held their event
(naming it by hash). The hostile seeds are mutations of
those documents, each named after what it tries: traversal blob ids, CR LF in
types, unsorted and duplicate paths, huge sizes, bad UTF-8, control
characters, wrong types, deep nesting, duplicate keys, pre-epoch and
overflowing times, broken invariants.

Output: fuzz/corpus/manifest/, fuzz/corpus/state/, fuzz/corpus/event/ (event
seeds start with the byte 'e', head seeds with 'h', the head's local copy 'b':
see fuzz/event.c). Files
this script did not write are left alone (libFuzzer may have added some).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "slipway"))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def run(*args, cwd, env=None):
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


def real_documents(tmp):
    """Runs slipway for real; returns (manifests, states, events, head) as bytes."""
    proj = os.path.join(tmp, "p")
    site = os.path.join(proj, "site")
    os.makedirs(os.path.join(site, "css"))
    os.makedirs(os.path.join(site, "img"))
    os.makedirs(os.path.join(site, ".well-known"))
    os.makedirs(os.path.join(site, "js"))
    files = {
        "index.html": b"<!doctype html><h1>hello</h1>\n",
        "css/app.3f9a2c1d.css": b"body{margin:0}\n",
        "img/logo.png": b"\x89PNG\r\n\x1a\n",
        ".well-known/security.txt": b"Contact: mailto:sec@example.org\n",
        "caf\u00e9 menu.txt": "\u00e9\n".encode(),
        'we"ird name.js': b"x\n",
        "data.json": b"{}\n",
        # 1 KiB or more of text: the manifest names its gzip and br variants
        "js/app.js": b"".join(b"function f%d(a){return a+%d;}\n" % (i, i) for i in range(60)),
    }
    for path, body in files.items():
        with open(os.path.join(site, path), "wb") as f:
            f.write(body)
    env = dict(os.environ, SLIPWAY_ACTOR="alice", GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@x",
               GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@x")
    env.pop("SLIPWAY_STORE", None)
    run(BIN, "init", proj, cwd=tmp, env=env)
    with open(os.path.join(proj, ".slipway", "environments", "dev.yml"), "w") as f:
        f.write("strategy: direct\n")
    with open(os.path.join(proj, ".slipway", "environments", "staging.yml"), "w") as f:
        f.write("strategy: blue-green\n")
    run("git", "init", "-q", "-b", "main", cwd=site, env=env)
    run("git", "add", "-A", cwd=site, env=env)
    run("git", "commit", "-q", "-m", "site", cwd=site, env=env)
    run("git", "tag", "v1.0", cwd=site, env=env)

    def sw(*args, actor="alice"):
        out = subprocess.run([BIN, *args], cwd=proj, env=dict(env, SLIPWAY_ACTOR=actor),
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    r1 = sw("release", "create", "site", "-q", "-m",
            "v1.0: first \"release\" \u2713\nsecond line\twith a tab")
    with open(os.path.join(site, "index.html"), "ab") as f:
        f.write(b"<p>two</p>\n")
    r2 = sw("release", "create", "site", "-q")
    data = os.path.join(proj, ".slipway", "data")
    states = {}

    def keep_state(name, env_name):
        with open(os.path.join(data, "envs", env_name, "state.json"), "rb") as f:
            states[name] = f.read()

    sw("deploy", r1, "--env", "dev", "-m", "first deploy")
    keep_state("direct-first", "dev")
    sw("deploy", r2, "--env", "dev", actor="bob")
    keep_state("direct-second", "dev")
    sw("rollback", "dev", "-m", "back: r2 broke \u00fcml\u00e4uts")
    keep_state("direct-rollback", "dev")
    sw("deploy", r1, "--env", "staging")
    keep_state("bg-first", "staging")
    sw("deploy", r2, "--env", "staging", "-m", "to the idle slot")
    keep_state("bg-idle-deployed", "staging")
    sw("switch", "staging", "-m", 'go "live"')
    keep_state("bg-switched", "staging")
    sw("rollback", "staging")
    keep_state("bg-rollback", "staging")
    sw("deploy", r2, "--env", "staging", "--switch", "-m", "multi\nline")
    keep_state("bg-deploy-switch", "staging")
    sw("history", "staging", "--verify")

    manifests = {}
    for name, rid in (("git-tagged-message", r1), ("plain", r2)):
        with open(os.path.join(data, "releases", rid + ".json"), "rb") as f:
            manifests[name] = f.read()
    events = {}
    for name in sorted(os.listdir(os.path.join(data, "events"))):
        with open(os.path.join(data, "events", name), "rb") as f:
            events[name] = f.read()
    head = events.pop("head.json")
    held = json.loads(head)["event"]
    events["%012d.json" % json.loads(held)["seq"]] = held.encode()
    return manifests, states, events, head


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def nested(depth):
    return "[" * depth + "]" * depth


def manifest_variants(m):
    """name -> bytes: mutations of a parsed manifest m (two or more files)."""
    out = {}

    def put(name, fn):
        c = json.loads(json.dumps(m))
        fn(c)
        out[name] = compact(c)

    def file0(key, value):
        return lambda c: c["files"][0].__setitem__(key, value)

    trav = "./" * ((64 - 22) // 2) + "../../../../etc/passwd"
    assert len(trav) == 64
    put("blob-traversal", file0("blob", trav))
    put("blob-uppercase", lambda c: c["files"][0].__setitem__("blob", c["files"][0]["blob"].upper()))
    put("blob-63", lambda c: c["files"][0].__setitem__("blob", c["files"][0]["blob"][:63]))
    put("blob-65", lambda c: c["files"][0].__setitem__("blob", c["files"][0]["blob"] + "a"))
    put("blob-nonhex", lambda c: c["files"][0].__setitem__("blob", "g" * 64))
    put("blob-number", file0("blob", 1234))
    for name, p in (("dotdot", "../etc/passwd"), ("inner-dotdot", "a/../../b"), ("abs", "/etc/passwd"),
                    ("double-slash", "a//b"), ("dot", "a/./b"), ("trailing-slash", "a/"),
                    ("backslash", "a\\..\\b"), ("tab", "a\tb"), ("nul", "a\u0000b"),
                    ("escape", "a\u001b[2Jb"), ("c1", "a\u0085b"), ("del", "a\u007fb"),
                    ("surrogate", "a\ud800b"), ("empty", ""), ("long", "a" * 1025),
                    ("crlf", "index.html\r\nX: y")):
        if name == "surrogate":
            c = json.loads(json.dumps(m))
            c["files"][0]["path"] = "SURROGATE"
            out["path-" + name] = compact(c).replace(b"SURROGATE", b"a\\ud800b")
        else:
            put("path-" + name, file0("path", p))
    # raw bytes jansson itself must refuse: overlong '/', a lone continuation, 0xff
    for name, raw in (("overlong", b"a\xc0\xafb"), ("continuation", b"a\x80b"), ("ff", b"a\xffb")):
        c = json.loads(json.dumps(m))
        c["files"][0]["path"] = "RAWPATH"
        out["path-utf8-" + name] = compact(c).replace(b"RAWPATH", raw)
    put("paths-reversed", lambda c: c["files"].reverse())
    put("paths-duplicate", lambda c: c["files"].append(dict(c["files"][-1])))
    put("paths-case-unsorted", lambda c: c["files"].sort(key=lambda f: f["path"].lower(), reverse=True))

    def byte_order(c):  # valid: '-' (0x2d) sorts before '/' (0x2f) byte-wise
        f = c["files"][0]
        c["files"] = [dict(f, path="a-b"), dict(f, path="a/b"), dict(f, path="a\u00e9")]
    put("paths-byte-order-ok", byte_order)
    put("type-crlf-header", file0("type", "text/html\r\nSet-Cookie: session=stolen"))
    put("cache-lf", file0("cache", "public\nX-Evil: 1"))
    put("type-empty", file0("type", ""))
    put("type-obs-text", file0("type", "text/plain; charset=\u00e9"))
    put("type-del", file0("type", "text/plain\u007f"))
    put("type-long", file0("type", "t" * 257))
    put("type-number", file0("type", 7))
    put("cache-null", file0("cache", None))
    put("size-negative", file0("size", -1))
    put("size-2-40-plus-1", file0("size", (1 << 40) + 1))
    put("size-2-63", file0("size", (1 << 63) - 1))
    put("size-2-64", file0("size", 1 << 64))
    put("size-float", file0("size", 1.5))
    put("size-string", file0("size", "12"))
    out["size-exponent"] = compact(m).replace(b'"size":', b'"size":1e3,"x":', 1)
    put("mtime-zero", file0("mtime", 0))
    put("mtime-max", file0("mtime", 253402300799))
    put("mtime-year-10000", file0("mtime", 253402300800))
    put("mtime-negative", file0("mtime", -1))
    put("mtime-2-63", file0("mtime", (1 << 63) - 1))
    put("mtime-2-64", file0("mtime", 1 << 64))
    put("mtime-float", file0("mtime", 1.5))
    put("mtime-string", file0("mtime", "784111777"))
    put("mtime-null", file0("mtime", None))
    put("mtime-absent", lambda c: [f.pop("mtime", None) for f in c["files"]])
    put("file-missing-blob", lambda c: c["files"][0].pop("blob"))
    put("file-not-object", lambda c: c["files"].__setitem__(0, "index.html"))
    put("file-extra-field", file0("mode", 420))
    put("id-traversal", lambda c: c.__setitem__("id", "../../envs/dev/state"))
    put("id-empty", lambda c: c.__setitem__("id", ""))
    put("id-dot", lambda c: c.__setitem__("id", ".hidden"))
    put("id-long", lambda c: c.__setitem__("id", "r-" + "1" * 127))
    put("id-number", lambda c: c.__setitem__("id", 42))
    put("created-garbage", lambda c: c.__setitem__("created", "yesterday"))
    put("created-pre-epoch", lambda c: c.__setitem__("created", "1969-12-31T23:59:58.500Z"))
    put("created-year-0", lambda c: c.__setitem__("created", "0000-01-01T00:00:00.250Z"))
    put("created-overflow", lambda c: c.__setitem__("created", "9999-12-31T23:59:60.000Z"))
    put("created-fields-overflow", lambda c: c.__setitem__("created", "2026-99-99T99:99:99Z"))
    put("created-whitespace", lambda c: c.__setitem__("created", " 2026-1-2T 3: 4: 5Z"))
    put("created-no-fraction", lambda c: c.__setitem__("created", "2026-01-01T00:00:00Z"))
    put("created-missing", lambda c: c.pop("created"))
    put("format-2", lambda c: c.__setitem__("format", 2))

    # compressed variants: the file with both is found by name, not by index
    vi = next(i for i, f in enumerate(m["files"]) if "br" in f)

    def var(coding, fn):
        return lambda c: fn(c["files"][vi], coding)
    for coding in ("gzip", "br"):
        put("%s-traversal" % coding, var(coding, lambda f, k: f[k].__setitem__("blob", trav)))
        put("%s-blob-upper" % coding, var(coding, lambda f, k: f[k].__setitem__("blob", f[k]["blob"].upper())))
        put("%s-blob-63" % coding, var(coding, lambda f, k: f[k].__setitem__("blob", f[k]["blob"][:63])))
        put("%s-blob-missing" % coding, var(coding, lambda f, k: f[k].pop("blob")))
        put("%s-size-equal" % coding, var(coding, lambda f, k: f[k].__setitem__("size", f["size"])))
        put("%s-size-larger" % coding, var(coding, lambda f, k: f[k].__setitem__("size", 1 << 40)))
        put("%s-size-zero" % coding, var(coding, lambda f, k: f[k].__setitem__("size", 0)))
        put("%s-size-negative" % coding, var(coding, lambda f, k: f[k].__setitem__("size", -1)))
        put("%s-size-string" % coding, var(coding, lambda f, k: f[k].__setitem__("size", "9")))
        put("%s-null" % coding, var(coding, lambda f, k: f.__setitem__(k, None)))
        put("%s-string" % coding, var(coding, lambda f, k: f.__setitem__(k, f[k]["blob"])))
        put("%s-array" % coding, var(coding, lambda f, k: f.__setitem__(k, [f[k]])))
        put("%s-extra-field-ok" % coding, var(coding, lambda f, k: f[k].__setitem__("level", 9)))
        put("%s-on-empty-file" % coding, var(coding, lambda f, k: f.__setitem__("size", 0)))
    put("variants-removed-ok", var("br", lambda f, k: (f.pop("gzip"), f.pop("br"))))
    put("variant-on-small-file-ok", lambda c: c["files"][0].__setitem__("gzip", dict(c["files"][vi]["gzip"], size=1)))
    # packs: a body as the slice [at, at + size) of packs/sha256/<pack>
    pk = m["files"][vi]["blob"]

    def packed(f, at=0):
        f.update(pack=pk, at=at, size=min(f["size"], 1000))
    put("pack-ok", lambda c: (c.__setitem__("format", 2), packed(c["files"][0], 5)))
    put("pack-variant-ok", var("br", lambda f, k: f[k].update(pack=pk, at=7)))
    put("pack-missing-at", lambda c: c["files"][0].update(pack=pk))
    put("pack-at-alone", lambda c: c["files"][0].update(at=0))
    put("pack-traversal", lambda c: (packed(c["files"][0]), c["files"][0].__setitem__("pack", trav)))
    put("pack-upper", lambda c: (packed(c["files"][0]), c["files"][0].__setitem__("pack", pk.upper())))
    put("pack-at-negative", lambda c: packed(c["files"][0], -1))
    put("pack-at-past-max", lambda c: packed(c["files"][0], (64 << 20)))
    put("pack-at-huge", lambda c: packed(c["files"][0], (1 << 63) - 1))
    put("pack-body-too-large", lambda c: (packed(c["files"][0]), c["files"][0].__setitem__("size", 65537)))
    put("pack-variant-at-string", var("gzip", lambda f, k: f[k].update(pack=pk, at="0")))
    put("format-3", lambda c: c.__setitem__("format", 3))
    put("format-string", lambda c: c.__setitem__("format", "1"))
    put("format-absent", lambda c: c.pop("format"))
    put("message-escape", lambda c: c.__setitem__("message", "hi\u001b]0;owned\u0007"))
    put("message-cr", lambda c: c.__setitem__("message", "ok\rnot ok - forged"))
    put("message-c1", lambda c: c.__setitem__("message", "a\u009bb"))
    put("message-number", lambda c: c.__setitem__("message", 1))
    put("message-null", lambda c: c.__setitem__("message", None))
    put("source-not-object", lambda c: c.__setitem__("source", "laptop"))
    put("source-user-newline", lambda c: c["source"].__setitem__("user", "eve\nroot"))
    put("source-dir-number", lambda c: c["source"].__setitem__("dir", 5))
    put("source-commit-long", lambda c: c["source"].__setitem__("commit", "a" * 65))
    put("source-missing", lambda c: c.pop("source"))
    put("source-empty", lambda c: c.__setitem__("source", {}))
    put("files-object", lambda c: c.__setitem__("files", {"index.html": c["files"][0]}))
    put("files-empty", lambda c: c.__setitem__("files", []))
    put("counts-lie", lambda c: (c.__setitem__("files_count", 10 ** 9), c.__setitem__("bytes", -1)))
    doc = compact(m)
    out["dup-key-top"] = doc.replace(b'"id":', b'"id":"r-x","id":', 1)
    out["dup-key-file"] = doc.replace(b'"size":', b'"size":1,"size":', 1)
    out["dup-key-source"] = doc.replace(b'"dir":', b'"dir":"/","dir":', 1)
    out["deep-nesting-message"] = doc[:-1] + b',"extra":' + nested(2100).encode() + b"}"
    out["deep-nesting-ok"] = doc[:-1] + b',"extra":' + nested(100).encode() + b"}"
    out["truncated"] = doc[: len(doc) // 2]
    out["trailing-garbage"] = doc + b"{}"
    out["bom"] = b"\xef\xbb\xbf" + doc
    out["root-array"] = b"[" + doc + b"]"
    out["root-string"] = b'"releases"'
    out["nul-in-document"] = doc.replace(b'"format"', b'"form\x00at"', 1)
    out["pretty-printed"] = json.dumps(m, indent=2).encode()
    return out


def state_variants(s, name):
    """Mutations of a parsed state document s."""
    out = {}

    def put(n, fn):
        c = json.loads(json.dumps(s))
        fn(c)
        out[name + "-" + n] = json.dumps(c, indent=2, ensure_ascii=False).encode()

    bg = s["strategy"] == "blue-green"
    put("live-release-traversal", lambda c: c.__setitem__("live_release", "../../../etc/passwd"))
    put("strategy-unknown", lambda c: c.__setitem__("strategy", "yolo"))
    put("strategy-number", lambda c: c.__setitem__("strategy", 1))
    put("env-other", lambda c: c.__setitem__("env", "prod"))
    put("env-traversal", lambda c: c.__setitem__("env", "../dev"))
    put("env-absent", lambda c: c.pop("env"))
    put("generation-negative", lambda c: c.__setitem__("generation", -1))
    put("generation-huge", lambda c: c.__setitem__("generation", (1 << 50) + 1))
    put("generation-float", lambda c: c.__setitem__("generation", 3.0))
    put("generation-string", lambda c: c.__setitem__("generation", "3"))
    put("generation-absent", lambda c: c.pop("generation"))
    put("updated-pre-epoch", lambda c: c.__setitem__("updated", "1969-12-31T23:59:58.500Z"))
    put("updated-overflow", lambda c: c.__setitem__("updated", "9999-12-31T23:59:60.000Z"))
    put("updated-garbage", lambda c: c.__setitem__("updated", "now"))
    put("updated-whitespace", lambda c: c.__setitem__("updated", "2026-12-01T\n1:02:03Z"))
    put("previous-number", lambda c: c.__setitem__("previous_release", 5))
    put("last-missing", lambda c: c.pop("last_change"))
    put("last-null", lambda c: c.__setitem__("last_change", None))
    put("last-not-object", lambda c: c.__setitem__("last_change", "deploy"))
    put("last-action-bogus", lambda c: c["last_change"].__setitem__("action", "delete"))
    put("last-action-long", lambda c: c["last_change"].__setitem__("action", "deploy" * 4))
    put("last-action-crlf", lambda c: c["last_change"].__setitem__("action", "deploy\r\n"))
    put("last-actor-newline", lambda c: c["last_change"].__setitem__("actor", "eve\nnot ok - forged"))
    put("last-actor-escape", lambda c: c["last_change"].__setitem__("actor", "eve\u001b[2K"))
    put("last-actor-long", lambda c: c["last_change"].__setitem__("actor", "a" * 257))
    put("last-message-cr", lambda c: c["last_change"].__setitem__("message", "a\rb"))
    put("last-message-multiline", lambda c: c["last_change"].__setitem__("message", "a\n\tb"))
    put("last-generation-ahead", lambda c: c["last_change"].__setitem__("generation", c["generation"] + 1))
    put("last-generation-behind", lambda c: c["last_change"].__setitem__("generation", 0))
    put("last-slot-red", lambda c: c["last_change"].__setitem__("slot", "red"))
    put("last-switched-string", lambda c: c["last_change"].__setitem__("switched", "yes"))
    put("last-time-pre-epoch", lambda c: c["last_change"].__setitem__("time", "1969-12-31T23:59:59.999Z"))
    put("last-to-traversal", lambda c: c["last_change"].__setitem__("to", "../x"))
    if bg:
        put("live-slot-mismatch", lambda c: c.__setitem__("live_slot", "blue" if c["live_slot"] == "green" else "green"))
        put("live-slot-none", lambda c: c.__setitem__("live_slot", None))
        put("live-slot-red", lambda c: c.__setitem__("live_slot", "red"))
        put("live-release-none", lambda c: c.__setitem__("live_release", None))
        put("live-release-other", lambda c: c.__setitem__("live_release", "r-someone-else"))
        put("slots-not-object", lambda c: c.__setitem__("slots", ["blue", "green"]))
        put("slot-not-object", lambda c: c["slots"].__setitem__("blue", "r-1"))
        put("slot-release-traversal", lambda c: c["slots"]["blue"].__setitem__("release", "../../x"))
        put("slot-since-garbage", lambda c: c["slots"]["blue"].__setitem__("since", 12))
        put("slots-empty", lambda c: c.__setitem__("slots", {}))
        put("as-direct", lambda c: c.__setitem__("strategy", "direct"))
    else:
        put("live-slot-blue", lambda c: c.__setitem__("live_slot", "blue"))
        put("with-slots", lambda c: c.__setitem__("slots", {"blue": {"release": c["live_release"], "since": None}}))
        put("as-blue-green", lambda c: c.__setitem__("strategy", "blue-green"))
    return out


def state_raw_variants(doc, name):
    out = {}
    out[name + "-dup-key"] = doc.replace(b'"generation"', b'"generation": 1, "generation"', 1)
    out[name + "-dup-key-last"] = doc.replace(b'"action"', b'"action": "switch", "action"', 1)
    out[name + "-deep-nesting"] = doc.replace(b'"slots"', b'"x": ' + nested(2100).encode() + b', "slots"', 1)
    out[name + "-actor-bad-utf8"] = doc.replace(b'"actor": "', b'"actor": "\xc3\x28', 1)
    out[name + "-truncated"] = doc[: len(doc) * 2 // 3]
    out[name + "-compact"] = compact(json.loads(doc))
    return out


def event_variants(e, name):
    out = {}

    def put(n, fn):
        c = json.loads(json.dumps(e))
        fn(c)
        out["e-" + name + "-" + n] = b"e" + compact(c)

    put("actor-escape", lambda c: c.__setitem__("actor", "mallory\u001b[2K"))
    put("actor-newline", lambda c: c.__setitem__("actor", "eve\n   9  2026-12-01T00:00:00  root"))
    put("actor-c1", lambda c: c.__setitem__("actor", "eve\u0085"))
    put("message-cr", lambda c: c.__setitem__("message", "ok\rforged"))
    put("message-escape", lambda c: c.__setitem__("message", "\u001b]8;;http://x\u0007link"))
    put("message-multiline", lambda c: c.__setitem__("message", "two\nlines\tand a tab"))
    put("message-number", lambda c: c.__setitem__("message", 3))
    put("time-newline", lambda c: c.__setitem__("time", "\n2026-12-01T20:46:52.478Z"))
    put("time-cr-inside", lambda c: c.__setitem__("time", "2026-12-01T\r20:46:52.478Z"))
    put("time-tab", lambda c: c.__setitem__("time", "2026-\t12-01T20:46:52Z"))
    put("time-garbage", lambda c: c.__setitem__("time", "Tuesday"))
    put("time-pre-epoch", lambda c: c.__setitem__("time", "1969-12-31T23:59:58.500Z"))
    put("time-long-fraction", lambda c: c.__setitem__("time", "2026-12-01T20:46:52." + "1" * 200 + "Z"))
    put("seq-zero", lambda c: c.__setitem__("seq", 0))
    put("seq-negative", lambda c: c.__setitem__("seq", -1))
    put("seq-huge", lambda c: c.__setitem__("seq", 1 << 60))
    put("seq-13-digits", lambda c: c.__setitem__("seq", 10 ** 12))
    put("seq-float", lambda c: c.__setitem__("seq", 1.0))
    put("seq-string", lambda c: c.__setitem__("seq", "1"))
    put("generation-zero", lambda c: c.__setitem__("generation", 0))
    put("env-traversal", lambda c: c.__setitem__("env", "../envs"))
    put("env-upper", lambda c: c.__setitem__("env", "Dev"))
    put("env-missing", lambda c: c.pop("env"))
    put("action-bogus", lambda c: c.__setitem__("action", "destroy"))
    put("action-crlf", lambda c: c.__setitem__("action", "deploy\r\n"))
    put("from-traversal", lambda c: c.__setitem__("from", "../../etc/passwd"))
    put("to-number", lambda c: c.__setitem__("to", 7))
    put("slot-red", lambda c: c.__setitem__("slot", "red"))
    put("slot-number", lambda c: c.__setitem__("slot", 0))
    put("switched-string", lambda c: c.__setitem__("switched", "true"))
    put("prev-upper", lambda c: c.__setitem__("prev", "A" * 64))
    put("prev-short", lambda c: c.__setitem__("prev", "a" * 63))
    put("prev-number", lambda c: c.__setitem__("prev", 0))
    put("older-no-slot-switched", lambda c: (c.pop("slot"), c.pop("switched")))
    doc = compact(e)
    out["e-" + name + "-dup-key"] = b"e" + doc.replace(b'"seq":', b'"seq":1,"seq":', 1)
    out["e-" + name + "-deep-nesting"] = b"e" + doc[:-1] + b',"x":' + nested(2100).encode() + b"}"
    out["e-" + name + "-bad-utf8"] = b"e" + doc.replace(b'"actor":"', b'"actor":"\xed\xa0\x80', 1)
    out["e-" + name + "-truncated"] = b"e" + doc[: len(doc) // 2]
    out["e-" + name + "-root-array"] = b"e[" + doc + b"]"
    return out


def held_variants(h):
    """Mutations of the event a head holds, and of how it holds it."""
    out = {}

    def put(n, fn):
        c = json.loads(json.dumps(h))
        ev = json.loads(c["event"])
        if fn(c, ev) != "raw":
            c["event"] = json.dumps(ev, separators=(",", ":"))
        out["h-held-" + n] = b"h" + json.dumps(c, separators=(",", ":"), sort_keys=True).encode()

    def raw(c, k, v):
        c[k] = v
        return "raw"

    put("and-hash", lambda c, ev: c.__setitem__("hash", hashlib.sha256(c["event"].encode()).hexdigest()))
    put("missing", lambda c, ev: (c.pop("event"), "raw")[1])
    put("null", lambda c, ev: raw(c, "event", None))
    put("object", lambda c, ev: raw(c, "event", ev))
    put("garbage", lambda c, ev: raw(c, "event", '{"seq":'))
    put("seq-other", lambda c, ev: ev.__setitem__("seq", ev["seq"] - 1))
    put("env-other", lambda c, ev: ev.__setitem__("env", "elsewhere"))
    put("generation-other", lambda c, ev: ev.__setitem__("generation", ev["generation"] + 1))
    put("actor-escape", lambda c, ev: ev.__setitem__("actor", "a\u001b[2Jb"))
    put("message-cr", lambda c, ev: ev.__setitem__("message", "one\rtwo"))
    put("prev-traversal", lambda c, ev: ev.__setitem__("prev", "../" * 21 + "a"))
    put("seq-zero", lambda c, ev: c.__setitem__("seq", 0))
    return out


def head_variants(h):
    out = held_variants(h)
    # The head as heads were written before they held their event: its hash.
    h = dict(h)
    h["hash"] = hashlib.sha256(h.pop("event").encode()).hexdigest()
    out["h-by-hash"] = b"h" + json.dumps(h, separators=(",", ":"), sort_keys=True).encode()

    def put(n, fn):
        c = json.loads(json.dumps(h))
        fn(c)
        out["h-" + n] = b"h" + json.dumps(c, separators=(",", ":"), sort_keys=True).encode()

    env = sorted(h["envs"])[0]
    put("seq-negative", lambda c: c.__setitem__("seq", -1))
    put("seq-huge", lambda c: c.__setitem__("seq", 1 << 60))
    put("seq-string", lambda c: c.__setitem__("seq", "8"))
    put("hash-missing", lambda c: c.pop("hash"))
    put("hash-null", lambda c: c.__setitem__("hash", None))
    put("hash-upper", lambda c: c.__setitem__("hash", c["hash"].upper()))
    put("hash-traversal", lambda c: c.__setitem__("hash", "../" * 21 + "a"))
    put("envs-missing", lambda c: c.pop("envs"))
    put("envs-array", lambda c: c.__setitem__("envs", []))
    put("env-name-traversal", lambda c: c["envs"].__setitem__("../x", {"seq": 1, "generation": 1}))
    put("env-name-escape", lambda c: c["envs"].__setitem__("a\u001b", {"seq": 1, "generation": 1}))
    put("env-seq-ahead", lambda c: c["envs"][env].__setitem__("seq", c["seq"] + 1))
    put("env-seq-zero", lambda c: c["envs"][env].__setitem__("seq", 0))
    put("env-generation-zero", lambda c: c["envs"][env].__setitem__("generation", 0))
    put("env-generation-missing", lambda c: c["envs"][env].pop("generation"))
    put("env-not-object", lambda c: c["envs"].__setitem__(env, 3))
    put("empty-store", lambda c: (c.__setitem__("seq", 0), c.__setitem__("hash", None), c.__setitem__("envs", {})))
    put("zero-with-envs", lambda c: c.__setitem__("seq", 0))
    put("extra-field", lambda c: c.__setitem__("writer", "someone"))
    doc = json.dumps(h, separators=(",", ":"), sort_keys=True).encode()
    out["h-dup-key"] = b"h" + doc.replace(b'"seq":', b'"seq":1,"seq":', 1)
    out["h-dup-key-env"] = b"h" + doc.replace(b'"generation":', b'"generation":1,"generation":', 1)
    out["h-deep-nesting"] = b"h" + doc[:-1] + b',"x":' + nested(2100).encode() + b"}"
    out["h-truncated"] = b"h" + doc[: len(doc) // 2]
    out["h-pretty"] = b"h" + json.dumps(h, indent=2).encode()
    return out


def copy_variants(head):
    """The head's local copy in a project's cache ('b': see fuzz/event.c)."""
    etag = hashlib.sha256(head).hexdigest()
    empty = b'{"envs":{},"event":null,"seq":0}'

    def copy(e, token, doc):
        return b"bslipway-head-copy 1\netag " + e.encode() + b"\ntoken " + token + b"\n" + doc

    return {
        "b-copy-real": copy(etag, b"63c09222a0d0d31d38a162e55068d8c8", head),
        "b-copy-no-token": copy(etag, b"-", head),
        "b-copy-empty-log": copy(hashlib.sha256(empty).hexdigest(), b"-", empty),
        "b-copy-etag-upper": copy(etag.upper(), b"-", head),
        "b-copy-etag-short": copy(etag[:40], b"-", head),
        "b-copy-token-quote": copy(etag, b'a"b', head),
        "b-copy-token-empty": copy(etag, b"", head),
        "b-copy-token-space": copy(etag, b"a b", head),
        "b-copy-crlf": copy(etag, b"-", head).replace(b"\n", b"\r\n"),
        "b-copy-nul": copy(etag, b"-", head).replace(b"token", b"tok\0en"),
        "b-copy-paused": b"bslipway-head-copy 1\npaused-until 1796600000000\n",
        "b-copy-format-2": copy(etag, b"-", head).replace(b"copy 1", b"copy 2"),
        "b-copy-head-by-hash": copy(etag, b"-", b'{"envs":{"dev":{"generation":1,"seq":1}},"hash":"'
                                    + b"0" * 64 + b'","seq":1}'),
        "b-copy-no-head": copy(etag, b"-", b""),
    }


def write(dirname, docs):
    d = os.path.join(OUT, dirname)
    os.makedirs(d, exist_ok=True)
    for name, body in sorted(docs.items()):
        with open(os.path.join(d, name), "wb") as f:
            f.write(body)
    return len(docs)


def main():
    tmp = tempfile.mkdtemp(prefix="slipway-seeds.")
    try:
        manifests, states, events, head = real_documents(tmp)
    finally:
        shutil.rmtree(tmp)
    mdocs = {"real-" + k: v for k, v in manifests.items()}
    mdocs.update(manifest_variants(json.loads(manifests["git-tagged-message"])))
    sdocs = {"real-" + k: v for k, v in states.items()}
    for name in ("direct-rollback", "bg-deploy-switch", "bg-idle-deployed"):
        sdocs.update(state_variants(json.loads(states[name]), name))
        sdocs.update(state_raw_variants(states[name], name))
    edocs = {"e-real-" + k[:-5]: b"e" + v for k, v in events.items()}
    edocs["h-real"] = b"h" + head
    first, switch = sorted(events)[0], sorted(events)[5]
    edocs.update(event_variants(json.loads(events[first]), "first"))
    edocs.update(event_variants(json.loads(events[switch]), "switch"))
    edocs.update(head_variants(json.loads(head)))
    edocs.update(copy_variants(head))
    counts = (write("manifest", mdocs), write("state", sdocs), write("event", edocs))
    print("seeds: %d manifest, %d state, %d event" % counts)


if __name__ == "__main__":
    main()

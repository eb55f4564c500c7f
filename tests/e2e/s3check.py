#!/usr/bin/env python3
"""Checks a slipway store in a bucket of a plain moto_server, reading it directly (plain
HTTP, stdlib only), never through slipway: lib.sh's store_check for S3.

    s3check.py ENDPOINT BUCKET PREFIX CACHE check [strict] [expired-previous] [locks=FILE [age]]
    s3check.py ENDPOINT BUCKET PREFIX CACHE describes RELEASE SITE
    s3check.py ENDPOINT BUCKET PREFIX - cat KEY
    s3check.py ENDPOINT BUCKET PREFIX - keys SUBPREFIX
    s3check.py ENDPOINT BUCKET PREFIX - live ENV
    s3check.py ENDPOINT BUCKET PREFIX CACHE serve PORT_FILE

check prints every inconsistency and exits 1 when there is one: a release an
environment's state names (live, slots, previous) without a manifest; a state or
manifest that does not parse; a body a manifest lists (a file's own, or its gzip or br
variant) that is missing or of the wrong size (a packed one: its pack missing or too short,
or its slice not hashing to its name); a body or pack whose bytes do not hash to its
name; a live slot that does not hold the live release. With "strict", also a body or pack
no manifest references; with "expired-previous", a previous release without its manifest
(gc removed it after keep_previous) is not one.

With "locks=FILE", after the check, FILE gets "ENV PID" for each lease found in an
envs/*/state.json, the pid it names; with "age" too, each state is then rewritten with its
lease expired long ago (as 050-crash.sh does on fs), so the next deploy takes it over
instead of waiting.

describes: release RELEASE lists exactly SITE's files with their SHA-256 (a manifest
written over another, format 3, read with the ones below it: resolved()).

check also finds a manifest written over another whose base manifest is missing.

cat prints the object KEY of the store (exit 1 when there is none); keys prints every key
of the store under SUBPREFIX, one a line, sorted (as 060-concurrency.sh reads an fs store);
live prints the release envs/ENV/state.json names live (exit 1 when none).

serve listens on a loopback port (written to PORT_FILE) and runs the commands above sent
to it, one a connection (see serve()), with the same CACHE: no start-up per check.

Bodies and manifests never change under their key (a body's key is its SHA-256, a
manifest is written once): one read and checked is remembered in CACHE (a JSON file) with
its size, and later runs only check that the listing still shows it with that size. So a
run after each of many crash trials reads only what is new.

moto checks no signature in its plain mode, but finds the service from the
Authorization header: a placeholder one is sent.

Tests call it once a check (tests/e2e/060-concurrency.sh on S3 once an object): its
start-up is most of its cost, so it speaks HTTP on a plain socket (http.client would
double it), and imports what only some commands need (hashlib, the XML parser) where
they need it.
"""
import json
import os
import socket
import sys
import urllib.parse

AUTH = "AWS4-HMAC-SHA256 Credential=check/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"


class Bucket:
    def __init__(self, endpoint, bucket):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port, self.bucket = u.hostname, u.port or 80, bucket

    def request(self, method, key="", query="", body=None):
        """(status, body) of one request. Plain HTTP/1.1 on a socket of its own: http.client
        would triple this script's start-up, which a test pays on every call."""
        path = "/" + self.bucket + ("/" + urllib.parse.quote(key, safe="/") if key else "")
        body = body or b""
        head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
            method,
            path + ("?" + query if query else ""),
            self.host,
            self.port,
            AUTH,
            len(body),
        )
        with socket.create_connection((self.host, self.port), timeout=60) as c:
            c.sendall(head.encode() + body)
            data = b""
            while True:
                chunk = c.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        head, sep, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not sep or len(lines[0].split()) < 2:
            raise IOError("%s %s: no HTTP answer" % (method, path))
        fields = {n.strip().lower(): v.strip() for n, _, v in (l.partition(":") for l in lines[1:])}
        if fields.get("transfer-encoding", "").lower() == "chunked":
            whole = b""
            while True:
                size, _, data = data.partition(b"\r\n")
                n = int(size.split(b";")[0], 16)
                if n == 0:
                    break
                whole, data = whole + data[:n], data[n + 2 :]
            data = whole
        elif "content-length" in fields:
            if len(data) < int(fields["content-length"]):
                raise IOError("%s %s: the answer was cut short" % (method, path))
            data = data[: int(fields["content-length"])]
        return int(lines[0].split()[1]), data

    def get(self, key):
        status, data = self.request("GET", key)
        if status != 200:
            raise IOError("GET %s: %d" % (key, status))
        return data

    def listing(self, prefix):
        """{key: size} of every key under prefix."""
        out, token = {}, None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            status, data = self.request("GET", query=urllib.parse.urlencode(q))
            if status != 200:
                raise IOError("listing %s: %d" % (prefix, status))
            import xml.etree.ElementTree as ET  # (imported when needed: see the top)

            root = ET.fromstring(data)
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                out[c.find(ns + "Key").text] = int(c.find(ns + "Size").text)
            token = root.findtext(ns + "NextContinuationToken")
            if root.findtext(ns + "IsTruncated") != "true" or not token:
                return out


def resolved(b, pre, rid, depth=0):
    """Release rid's files by path, a format 3 manifest read over its base, as slipway does."""
    doc = json.loads(b.get(pre + "releases/%s.json" % rid))
    files = {f["path"]: f for f in doc["files"]}
    if doc.get("format") != 3:
        return files
    if depth > 8:
        raise ValueError("%s: a chain deeper than 8" % rid)
    base = resolved(b, pre, doc["base"], depth + 1)
    for p in doc["removed"]:
        del base[p]
    base.update(files)
    if len(base) != doc["files_count"]:
        raise ValueError("%s: %d files over its base, not %d" % (rid, len(base), doc["files_count"]))
    return base


def run(b, pre, cache_file, cmd, opts, out):
    """One command; what it prints written to out (binary). Returns its exit status."""

    def say(text):
        out.write(text.encode() + b"\n")

    if cmd == "cat":
        status, data = b.request("GET", pre + opts[0])
        if status != 200:
            return 1
        out.write(data)
        return 0
    if cmd == "keys":
        for key in sorted(b.listing(pre + opts[0])):
            say(key[len(pre) :])
        return 0
    if cmd == "live":
        status, data = b.request("GET", pre + "envs/%s/state.json" % opts[0])
        live = json.loads(data).get("live_release") if status == 200 else None
        if not live:
            return 1
        say(live)
        return 0
    import hashlib  # (imported when needed: see the top)

    if cmd == "describes":
        rid, site = opts
        got = {p: f["blob"] for p, f in resolved(b, pre, rid).items()}
        want = {}
        for d, _, fs in os.walk(site):
            for n in fs:
                p = os.path.join(d, n)
                with open(p, "rb") as f:
                    want[os.path.relpath(p, site)] = hashlib.sha256(f.read()).hexdigest()
        if got != want:
            say("release %s does not describe %s" % (rid, site))
            return 1
        return 0
    strict, expired = "strict" in opts, "expired-previous" in opts
    locks = [o.split("=", 1)[1] for o in opts if o.startswith("locks=")]
    try:
        with open(cache_file) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {"bodies": {}, "manifests": {}}
    keys = b.listing(pre)
    bad, ref = [], set()
    # Manifests: what each lists, read once.
    for key in sorted(k for k in keys if k.startswith(pre + "releases/") and k.endswith(".json")):
        name = key[len(pre) :]
        m = cache["manifests"].get(name)
        if m is None or m["size"] != keys[key]:
            try:
                doc = json.loads(b.get(key))
                m = {"size": keys[key], "bodies": [], "base": doc.get("base")}
                for f in doc["files"]:
                    for what, v in [("", f)] + [(k + " ", f[k]) for k in ("gzip", "br") if k in f]:
                        m["bodies"].append([what + "body of " + f["path"], v["blob"], v["size"],
                                            v.get("pack"), v.get("at")])
                cache["manifests"][name] = m
            except Exception as e:  # a manifest that does not parse is an inconsistency
                bad.append("%s: %s" % (name, e))
                continue
        # Its own bodies are checked here, the rest with its base, which must be there.
        if m.get("base") and pre + "releases/%s.json" % m["base"] not in keys:
            bad.append("%s: its base %s is missing" % (name, m["base"]))
        # (A cache of an older checker holds 3-item bodies: no pack.)
        for what, blob, size, pack, at in ((x + [None, None])[:5] for x in m["bodies"]):
            if pack:  # a slice of a pack: the pack long enough, the slice hashing to the body's name
                ref.add(pack)
                k = pre + "packs/sha256/%s/%s" % (pack[:2], pack)
                if keys.get(k) is None or keys[k] < at + size:
                    bad.append("%s: %s: its pack is missing or too short" % (name, what))
                elif cache["bodies"].get("%s@%d" % (blob, at)) != keys[k]:
                    if hashlib.sha256(b.get(k)[at : at + size]).hexdigest() != blob:
                        bad.append("%s: %s: its bytes in the pack do not hash to its name" % (name, what))
                    else:
                        cache["bodies"]["%s@%d" % (blob, at)] = keys[k]
                continue
            ref.add(blob)
            k = pre + "blobs/sha256/%s/%s" % (blob[:2], blob)
            if keys.get(k) != size:
                bad.append("%s: %s missing or of the wrong size" % (name, what))
    # States: read every time (they change).
    for key in sorted(k for k in keys if k.startswith(pre + "envs/") and k.endswith("/state.json")):
        try:
            s = json.loads(b.get(key))
        except Exception as e:
            bad.append("%s: %s" % (key[len(pre) :], e))
            continue
        slots = s.get("slots") or {}
        prev = [] if expired else [s.get("previous_release")]
        for rid in filter(None, [s.get("live_release")] + prev + [v.get("release") for v in slots.values()]):
            if pre + "releases/%s.json" % rid not in keys:
                bad.append("%s names %s, which has no manifest" % (key[len(pre) :], rid))
        live = s.get("live_slot")
        if live and (slots.get(live) or {}).get("release") != s.get("live_release"):
            bad.append("%s: the live slot does not hold the live release" % key[len(pre) :])
    # Bodies: each read and hashed once.
    for key in sorted(k for k in keys if k.startswith(pre + "blobs/sha256/") or k.startswith(pre + "packs/sha256/")):
        name = key.rsplit("/", 1)[1]
        if cache["bodies"].get(name) != keys[key]:
            data = b.get(key)
            if hashlib.sha256(data).hexdigest() != name or key.split("/")[-2] != name[:2]:
                bad.append("%s: bytes do not hash to its name" % key)
                continue
            cache["bodies"][name] = keys[key]
        if strict and name not in ref:
            bad.append("%s: referenced by no manifest" % key)
    if locks:
        with open(locks[0], "w") as out:
            for key in sorted(k for k in keys if k.startswith(pre + "envs/") and k.endswith("/state.json")):
                try:
                    d = json.loads(b.get(key))
                except (IOError, ValueError):  # gone meanwhile, or not ours to age
                    continue
                lease = d.get("lease") if isinstance(d, dict) else None
                if not isinstance(lease, dict):
                    continue
                out.write("%s %s\n" % (key[len(pre) :].split("/")[1], lease.get("pid")))
                if "age" not in opts:
                    continue
                lease["expires"] = "2000-01-01T00:00:00.000Z"
                b.request("PUT", key, body=json.dumps(d, indent=2).encode())
    tmp = cache_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cache, f)
    os.replace(tmp, cache_file)
    if bad:
        say("\n".join(bad))
    return 1 if bad else 0


def serve(b, pre, cache_file, port_file):
    """Runs commands sent over loopback connections, one a connection, until SIGTERM:
    the fields of the command line each NUL-terminated, then an empty field; the answer
    is the exit status ("RC\\n") and what the command printed. A test making a check
    after each of many trials pays the start-up once."""
    import io

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.replace(port_file + ".tmp", port_file)
    while True:
        c, _ = srv.accept()
        with c:
            req = b""
            while not (req.endswith(b"\0\0") or req == b"\0"):
                chunk = c.recv(65536)
                if not chunk:
                    break
                req += chunk
            args = req.decode().split("\0")[:-2]
            out = io.BytesIO()
            try:
                rc = run(b, pre, cache_file, args[0], args[1:], out) if args else 2
            except Exception as e:  # as the script would: a traceback's last line, exit 1
                out.write(("s3check: %r\n" % (e,)).encode())
                rc = 1
            try:
                c.sendall(b"%d\n" % rc + out.getvalue())
            except OSError:
                pass


def main():
    endpoint, bucket, prefix, cache_file, cmd = sys.argv[1:6]
    b = Bucket(endpoint, bucket)
    pre = prefix.rstrip("/") + "/" if prefix else ""
    if cmd == "serve":
        return serve(b, pre, cache_file, sys.argv[6])
    return run(b, pre, cache_file, cmd, sys.argv[6:], sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""packrel.py DATA RELEASE: moves the bodies of RELEASE in the fs store DATA that a pack may
hold (64 KiB or less: RELEASE_PACK_BODY_MAX) into one pack, as a writer of packs would store
them (docs/store.md, "Packs"): packs/sha256/ab/<sha256 of the pack>, each distinct body once,
after 5 bytes of padding so that no body starts at 0. The manifest is rewritten naming the pack
("pack", "at"; format 2), and each moved blob that no other manifest names is deleted, so the
bodies can only be read from the pack. Prints the pack's name."""
import glob, hashlib, json, os, sys

PACK_BODY_MAX = 64 << 10
data, rid = sys.argv[1], sys.argv[2]
path = "%s/releases/%s.json" % (data, rid)
m = json.load(open(path))
pack, at = bytearray(b"pad\n\n"), {}
moved = []
for f in m["files"]:
    for v in [f] + [f[k] for k in ("gzip", "br") if k in f]:
        if v["size"] > PACK_BODY_MAX:
            continue
        if v["blob"] not in at:
            at[v["blob"]] = len(pack)
            with open("%s/blobs/sha256/%s/%s" % (data, v["blob"][:2], v["blob"]), "rb") as b:
                pack += b.read()
            moved.append(v["blob"])
        v["at"] = at[v["blob"]]
        v["pack"] = None  # named below, once the pack's hash is known
name = hashlib.sha256(pack).hexdigest()
for f in m["files"]:
    for v in [f] + [f[k] for k in ("gzip", "br") if k in f]:
        if "pack" in v:
            v["pack"] = name
m["format"] = 2
os.makedirs("%s/packs/sha256/%s" % (data, name[:2]), exist_ok=True)
with open("%s/packs/sha256/%s/%s" % (data, name[:2], name), "wb") as f:
    f.write(pack)
os.chmod(path, 0o644)
with open(path + ".new", "w") as f:
    json.dump(m, f)
os.replace(path + ".new", path)
others = set()
for p in glob.glob(data + "/releases/*.json"):
    if p != path:
        for f in json.load(open(p))["files"]:
            others.update(v["blob"] for v in [f] + [f[k] for k in ("gzip", "br") if k in f])
for b in moved:
    if b not in others:
        os.unlink("%s/blobs/sha256/%s/%s" % (data, b[:2], b))
print(name)

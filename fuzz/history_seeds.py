#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/history.c (the monitor's history file).

    python3 fuzz/history_seeds.py [SLIPWAY]   (default ./slipway; run from the repository)

The valid seeds are what slipway really writes: `slipway serve` samples every
20 ms for a few seconds over a project with a direct and a blue-green
environment under a little traffic (and a switch), and its file is kept byte
for byte. The hostile seeds are mutations of it and of a small file built
here, each named after what it tries; each carries a correct checksum, so the
structural checks are what must refuse it (fuzz/history.c also fixes the
checksum of every input it is given).

Output: fuzz/corpus/history/. Files this script did not write are left alone.
"""
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "slipway"))
OUT = os.path.join(ROOT, "fuzz", "corpus", "history")


def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_file(tmp):
    proj = os.path.join(tmp, "p")
    subprocess.run([BIN, "init", "-q", proj], check=True, stdout=subprocess.DEVNULL)
    envs = os.path.join(proj, ".slipway", "environments")
    for f in os.listdir(envs):
        os.unlink(os.path.join(envs, f))
    pd, pl, pp = port(), port(), port()
    open(os.path.join(envs, "dev.yml"), "w").write("strategy: direct\nlisten: 127.0.0.1:%d\n" % pd)
    open(os.path.join(envs, "web.yml"), "w").write(
        "strategy: blue-green\nlisten: 127.0.0.1:%d\npreview: 127.0.0.1:%d\n" % (pl, pp))
    site = os.path.join(tmp, "site")
    os.makedirs(site)
    open(os.path.join(site, "index.html"), "w").write("hi\n")
    for env in ("dev", "web", "web"):
        subprocess.run([BIN, "deploy", site, "--env", env, "-q"], cwd=proj, check=True,
                       stdout=subprocess.DEVNULL)
    srv = subprocess.Popen([BIN, "serve", "--monitor-interval", "20ms"], cwd=proj,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        for i in range(40):
            for p in (pd, pl, pp) if i != 20 else ():
                try:
                    urllib.request.urlopen("http://127.0.0.1:%d/%s" % (p, "x" if i % 7 == 0 else ""),
                                           timeout=5).read()
                except Exception:
                    pass
            if i == 20:
                subprocess.run([BIN, "switch", "web", "-q"], cwd=proj, check=True,
                               stdout=subprocess.DEVNULL)
            time.sleep(0.05)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait()
    return open(os.path.join(proj, ".slipway", "cache", "monitor", "history.bin"), "rb").read()


def sign(body):
    return body + hashlib.sha256(body).hexdigest().encode()


def build(steps, series, step_ms=200, version=1, reserved=0):
    """steps: [(at_ms, dur_ms, ok, cpu, mem, disk, pcpu, rss)];
    series: [(name bytes, slot, [(flags, req, err, p50, p95, p99)])]"""
    b = b"SLIPWAYH" + struct.pack("<IIIIq", version, len(steps), len(series), reserved, step_ms)
    for s in steps:
        b += struct.pack("<qIBIIQIQ", *s)
    for name, slot, pts in series:
        b += bytes([len(name)]) + name + bytes([slot])
        for p in pts:
            b += struct.pack("<BIIIII", *p)
    return sign(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        real = real_file(tmp)
    seeds["real-serve"] = real
    body = real[:-64]
    seeds["real-flipped-byte"] = real[:100] + bytes([real[100] ^ 1]) + real[101:]
    seeds["real-truncated"] = real[: len(real) // 2]
    seeds["real-longer"] = sign(body + b"\0")

    t0 = 1700000000000
    st = lambda i: (t0 + i * 200, 200, 31, 250000, 400000, 1 << 20, 50, 30 << 20)
    good = [(1, 100, 2, 90, 95, 99), (3, 5, 0, 1000, 2000, 3000)]
    seeds["small"] = build([st(0), st(1)], [(b"dev", 2, good), (b"web", 0, good)])
    seeds["empty"] = build([], [])
    seeds["version-2"] = build([st(0)], [(b"dev", 2, good[:1])], version=2)
    seeds["reserved"] = build([st(0)], [(b"dev", 2, good[:1])], reserved=1)
    seeds["step-0"] = build([st(0)], [(b"dev", 2, good[:1])], step_ms=0)
    seeds["times-back"] = build([st(1), st(0)], [(b"dev", 2, good)])
    seeds["time-negative"] = build([(-5,) + st(0)[1:]], [(b"dev", 2, good[:1])])
    seeds["ok-unknown"] = build([st(0)[:2] + (64,) + st(0)[3:]], [(b"dev", 2, good[:1])])
    seeds["ok-missing-value"] = build([st(0)[:2] + (0,) + st(0)[3:]], [(b"dev", 2, good[:1])])
    seeds["ratio-above-1"] = build([st(0)[:3] + (1000001,) + st(0)[4:]], [(b"dev", 2, good[:1])])
    seeds["name-traversal"] = build([st(0)], [(b"../etc", 2, good[:1])])
    seeds["name-upper"] = build([st(0)], [(b"Dev", 2, good[:1])])
    seeds["name-nul"] = build([st(0)], [(b"d\0v", 2, good[:1])])
    seeds["name-control"] = build([st(0)], [(b"d\x1bv", 2, good[:1])])
    seeds["slot-3"] = build([st(0)], [(b"dev", 3, good[:1])])
    seeds["series-twice"] = build([st(0)], [(b"dev", 2, good[:1]), (b"dev", 2, good[:1])])
    seeds["series-no-steps"] = build([st(0)], [(b"dev", 2, [(0, 0, 0, 0, 0, 0)])])
    seeds["flags-unknown"] = build([st(0)], [(b"dev", 2, [(4, 1, 0, 1, 1, 1)])])
    seeds["live-absent"] = build([st(0)], [(b"dev", 2, [(2, 1, 0, 1, 1, 1)])])
    seeds["absent-values"] = build([st(0)], [(b"dev", 2, [(0, 1, 0, 1, 1, 1)])])
    seeds["errors-above"] = build([st(0)], [(b"dev", 2, [(3, 1, 2, 1, 1, 1)])])
    seeds["percentiles-unordered"] = build([st(0)], [(b"dev", 2, [(3, 9, 0, 5, 4, 6)])])
    seeds["percentile-overflow"] = build([st(0)], [(b"dev", 2, [(3, 9, 0, 1, 1, 1 << 30)])])
    seeds["no-requests-percentiles"] = build([st(0)], [(b"dev", 2, [(3, 0, 0, 1, 1, 1)])])
    seeds["both-live"] = build([st(0)], [(b"web", 0, good[:1]), (b"web", 1, good[:1])])
    seeds["counts-huge"] = sign(b"SLIPWAYH" + struct.pack("<IIIIq", 1, 0xFFFFFFFF, 0xFFFFFFFF, 0, 200))
    seeds["not-history"] = b"{\"steps\": []}\n"
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs `slipway switch ENV` N times spread evenly over SECONDS, and after each
switch returns polls the live listener until its body turns into the other
release's: that wait is the switch latency.

    switcher.py SLIPWAY ENV PORT N SECONDS BODY_A BODY_B

Prints one JSON object: switches, failures (with stderr), latencies_ms,
median_ms, max_ms, unseen (switches whose new body never appeared within 5 s),
elapsed_s; and from_start_median_ms / from_start_max_ms, measured from the
start of the `slipway switch` process instead (its own run time included).
"""
import http.client
import json
import statistics
import subprocess
import sys
import time

slipway, env, port, n, seconds, body_a, body_b = sys.argv[1:8]
port, n, seconds = int(port), int(n), float(seconds)
body_a, body_b = body_a.encode(), body_b.encode()

conn = None


def get():
    """GET / on a keep-alive connection, reconnecting when it is closed."""
    global conn
    for _ in range(3):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            r = conn.getresponse()
            return r.read()
        except (OSError, http.client.HTTPException):
            conn = None
    return b""


start = time.monotonic()
interval = seconds / n
cur = get()
failures, lat, lat0, unseen = [], [], [], 0
for i in range(n):
    delay = start + i * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    want = body_b if cur == body_a else body_a
    t0 = time.monotonic()
    p = subprocess.run([slipway, "switch", env], capture_output=True, text=True)
    t1 = time.monotonic()
    if p.returncode != 0:
        failures.append({"i": i, "rc": p.returncode, "stderr": p.stderr.strip()})
        cur = get()
        continue
    while True:
        b = get()
        now = time.monotonic()
        if b == want:
            lat.append((now - t1) * 1000)
            lat0.append((now - t0) * 1000)
            break
        if now - t1 > 5:
            unseen += 1
            break
        time.sleep(0.001)
    cur = b

print(json.dumps({
    "switches": n,
    "failures": failures,
    "latencies_ms": [round(x, 2) for x in lat],
    "median_ms": round(statistics.median(lat), 1) if lat else None,
    "max_ms": round(max(lat), 1) if lat else None,
    "from_start_median_ms": round(statistics.median(lat0), 1) if lat0 else None,
    "from_start_max_ms": round(max(lat0), 1) if lat0 else None,
    "unseen": unseen,
    "elapsed_s": round(time.monotonic() - start, 2),
}))

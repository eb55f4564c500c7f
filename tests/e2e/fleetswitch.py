#!/usr/bin/env python3
"""Switches a blue-green environment N times and times how long each node of a
fleet takes to serve the new release (tests/e2e/430-fleet-s3.sh).

    fleetswitch.py SLIPWAY ENV N BODY_A BODY_B PORT...

Each round runs `slipway switch ENV` (in the current directory, with the
caller's environment), and once it has returned polls GET / on every node's
live port (PORT...) until each serves the body the switch made live: that wait
is the node's delay. A node that still serves the old body 5 s later is unseen.
The next round starts when every node has switched (or 5 s passed).

Prints one JSON object: switches, failures (rc and stderr of a switch that
failed), delays_ms (per switch, one figure per node, null when unseen),
max_ms (over every node and switch), spread_ms (per switch: the last node's
delay minus the first's), spread_max_ms, spread_median_ms, unseen,
elapsed_s.
"""
import http.client
import json
import statistics
import subprocess
import sys
import time

slipway, env, n, body_a, body_b = sys.argv[1:6]
ports = [int(p) for p in sys.argv[6:]]
n = int(n)
body_a, body_b = body_a.encode(), body_b.encode()
conns = {}


def get(port):
    """GET / on a keep-alive connection to port; b"" when it cannot be had."""
    for _ in range(2):
        try:
            if port not in conns:
                conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c = conns[port]
            c.request("GET", "/")
            r = c.getresponse()
            return r.read()
        except (OSError, http.client.HTTPException):
            conns.pop(port, None)
    return b""


start = time.monotonic()
cur = get(ports[0])
failures, delays, spreads, unseen = [], [], [], 0
for i in range(n):
    want = body_b if cur == body_a else body_a
    p = subprocess.run([slipway, "switch", env], capture_output=True, text=True)
    t1 = time.monotonic()
    if p.returncode != 0:
        failures.append({"i": i, "rc": p.returncode, "stderr": p.stderr.strip()})
        cur = get(ports[0])
        continue
    seen = {}
    while len(seen) < len(ports) and time.monotonic() - t1 < 5:
        for port in ports:
            if port not in seen and get(port) == want:
                seen[port] = (time.monotonic() - t1) * 1000
        time.sleep(0.005)
    row = [round(seen[p], 1) if p in seen else None for p in ports]
    unseen += row.count(None)
    delays.append(row)
    if len(seen) == len(ports):
        spreads.append(max(seen.values()) - min(seen.values()))
    cur = want

flat = [d for row in delays for d in row if d is not None]
print(json.dumps({
    "switches": n,
    "failures": failures,
    "delays_ms": delays,
    "max_ms": round(max(flat), 1) if flat else None,
    "spread_ms": [round(s, 1) for s in spreads],
    "spread_max_ms": round(max(spreads), 1) if spreads else None,
    "spread_median_ms": round(statistics.median(spreads), 1) if spreads else None,
    "unseen": unseen,
    "elapsed_s": round(time.monotonic() - start, 2),
}))

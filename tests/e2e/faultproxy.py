#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 proxy for the S3 end-to-end tests (stdlib only).

    faultproxy.py --target HOST:PORT [--port N] [--rate R] [--seed S]
                  [--kinds 503,slowdown,reset,stall,trickle] [--stall SECONDS]
                  [--trickle SECONDS] [--cut BYTES] [--only REGEX] [--stats FILE]
                  [--strip-header NAME]... [--keep-alive] [--once] [--verbose]

Listens on 127.0.0.1 (--port, or a port of the kernel's choosing) and prints the
port on stdout once it accepts connections. Every request read from a client is,
with probability --rate (0..1, drawn from a generator seeded with --seed), given
one fault of a kind from --kinds (drawn from a shuffled bag of them, refilled when
empty: the first len(kinds) faults cover every kind, as does each round of
len(kinds) after them); otherwise it is
forwarded to --target untouched and the response relayed byte for byte:

  503       answered here with "503 ServiceUnavailable" (an S3 error document);
            the request never reaches the target
  slowdown  answered here with "503 SlowDown"; never reaches the target
  reset     forwarded (so it may have taken effect), then the response is cut at
            a random point in its body (in its head when it has no body) and
            the connection reset (RST)
  stall     forwarded, the response cut at a random point as for reset, then
            nothing for --stall seconds (default 2), then the connection closed
  trickle   forwarded, and the response relayed a few bytes at a time with
            delays for its first --trickle seconds (default 1), then at full
            speed: slow, but whole

It parses HTTP/1.1 framing so that faults fall per request on kept-alive
connections: request bodies by Content-Length or chunked, with
"Expect: 100-continue" (the interim 100 is relayed, and a final answer before
it closes the connection, as the client may not send the body); responses by
Content-Length, chunked or until close, HEAD, 1xx, 204 and 304 without a body.
Every 1xx is relayed (moto answers "Expect: 100-continue" with two of them).

moto_server (werkzeug) ends every connection after one response ("Connection:
close"), which the proxy relays as it is, so a client makes a connection per
request. With --keep-alive the proxy drops that header from a response it can
frame, keeps the client's connection open and reconnects to the target for the
next request: clients then reuse connections as they would with S3, and faults
fall on reused connections too. When the target cannot be reached (moto
stopped), the client's connection is closed without an answer.

With --cut N, reset and stall cut every response after its first N bytes (all but
the last byte of a shorter one) instead of at a random point: --cut 5 inside the
status line, so the client has received no complete header line; --cut 40 inside
the header fields, after the status line.

With --only REGEX, only requests whose request line ("PUT /bucket/key HTTP/1.1")
matches REGEX (Python re.search) may be given a fault; the others are forwarded
untouched, and draw nothing.

With --once, each distinct request (its method and target) is given at most one
fault: the first time it is drawn one; its repetitions, a client's retries, pass
untouched. With --rate 1 every distinct request is faulted exactly once, whatever
the order in which parallel clients send them.

With --strip-header NAME (repeatable; NAME case-insensitive), every request that
carries a header field NAME loses it (each of its lines) before it is forwarded:
an endpoint that ignores that header. moto in its plain mode checks no signature,
so the request, though it was signed with the field, still goes through (moto
--iam would refuse it). --strip-header If-None-Match makes an endpoint that
ignores create-only writes (tests/e2e/416-s3-probe.sh). Requests answered here
with a fault (503, slowdown) are not counted as stripped, as they go nowhere.

Counts go to --stats as JSON every second and on SIGTERM or SIGINT, after which
the proxy exits; the file is replaced by rename, so a reader never sees half of
it: {"requests": requests read, "forwarded": sent to the target, "faults": {KIND:
faults done to a client (one drawn for a client that went away first is not
counted)}, "connections": n, "outages": n, "up": listening or not, "stripped":
forwarded requests that lost a header to --strip-header, "peak_connections": the most client
connections open at once (through moto, which ends a connection after each response, without
--keep-alive: the most requests in flight at once)}. --verbose logs each request and each
fault done.

SIGUSR1 takes the store away: the proxy stops listening (connections are refused)
and ends every open connection; SIGUSR2 brings it back on the same port, the data
behind it intact. Either rewrites the stats file at once, "up" telling which (moto_stop would lose it: moto keeps everything in memory).
"""
import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import time

KINDS = ("503", "slowdown", "reset", "stall", "trickle")
HEAD_LIMIT = 64 * 1024  # a request or response head longer than this is refused
CUT_BUFFER = 8 * 1024 * 1024  # reset/stall cut within the first 8 MiB of a response


class Closed(Exception):
    """The connection cannot carry another request."""


class Head:
    """One parsed request or response head, kept as raw bytes for forwarding."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw[:-4].decode("latin-1").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise Closed("malformed header line %r" % line[:80])
            self.headers.append((name.lower(), value.strip()))

    def drop_header(self, name):
        lines = self.raw[:-4].split(b"\r\n")
        keep = [lines[0]] + [ln for ln in lines[1:]
                             if ln.split(b":", 1)[0].decode("latin-1").lower() != name]
        self.raw = b"\r\n".join(keep) + b"\r\n\r\n"
        self.headers = [(n, v) for n, v in self.headers if n != name]

    def get(self, name):
        vals = [v for n, v in self.headers if n == name]
        return ",".join(vals) if vals else None

    def has_token(self, name, token):
        v = self.get(name)
        return v is not None and token in [t.strip().lower() for t in v.split(",")]

    def framing(self):
        """("chunked", None), ("length", N) or ("none", 0) for a body-carrying message."""
        if self.has_token("transfer-encoding", "chunked"):
            return "chunked", None
        cl = self.get("content-length")
        if cl is not None:
            parts = {p.strip() for p in cl.split(",")}
            if len(parts) != 1 or not next(iter(parts)).isdigit():
                raise Closed("bad Content-Length %r" % cl)
            return "length", int(next(iter(parts)))
        return "none", 0


async def read_head(reader):
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise Closed("connection closed inside a head")
        return None
    except asyncio.LimitOverrunError:
        raise Closed("head over %d bytes" % HEAD_LIMIT)
    return Head(raw)


async def body_pieces(reader, kind, length):
    """Yields a message body exactly as it is on the wire (chunk framing included)."""
    if kind == "length":
        left = length
        while left > 0:
            data = await reader.read(min(left, 65536))
            if not data:
                raise Closed("connection closed inside a body")
            left -= len(data)
            yield data
    elif kind == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            yield line
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise Closed("bad chunk size %r" % size_text[:20])
            if size == 0:
                while True:  # trailers, up to the empty line
                    t = await reader.readuntil(b"\r\n")
                    yield t
                    if t == b"\r\n":
                        return
            left = size + 2  # the chunk and its CRLF
            while left > 0:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise Closed("connection closed inside a chunk")
                left -= len(data)
                yield data
    elif kind == "eof":
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


def s3_error(code, message, request_id, head_only):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
        "<RequestId>%s</RequestId></Error>" % (code, message, request_id)
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
        "Content-Length: %d\r\nx-amz-request-id: %s\r\n"
        "Server: faultproxy\r\n\r\n" % (len(body), request_id)
    ).encode()
    return head if head_only else head + body


class Proxy:
    def __init__(self, args):
        self.args = args
        # Which requests get which fault comes from one generator, drawn once per request
        # in the order they arrive; where a response is cut and how a trickle goes, from
        # another: so the sequence of faults depends on the seed alone, not on timing.
        self.rng = random.Random(args.seed)
        self.jitter = random.Random("jitter-%d" % args.seed)
        self.bag = []
        self.faulted = set()  # with --once: the request lines already given a fault
        self.kinds = args.kinds
        self.stats = {"requests": 0, "forwarded": 0, "faults": {k: 0 for k in KINDS},
                      "connections": 0, "outages": 0, "up": True, "stripped": 0,
                      "peak_connections": 0}
        self.target = args.target.rsplit(":", 1)
        self.conns = set()
        self.started = time.monotonic()

    def log(self, msg):
        if self.args.verbose:
            print("faultproxy: %s (%.3f s)" % (msg, time.monotonic() - self.started),
                  file=sys.stderr, flush=True)

    def write_stats(self):
        if not self.args.stats:
            return
        tmp = "%s.tmp.%d" % (self.args.stats, os.getpid())
        with open(tmp, "w") as f:
            json.dump(self.stats, f, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.args.stats)

    def draw(self, line):
        """The fault for the next request (its request line), or None: one draw per request,
        in order. Kinds come from a shuffled bag of all of them, refilled when empty: random
        order, yet every kind within the first len(kinds) faults, and as often as any other."""
        if self.args.once and line in self.faulted:
            return None
        if self.args.only and not self.args.only.search(line):
            return None
        if self.args.rate <= 0 or self.rng.random() >= self.args.rate:
            return None
        if self.args.once:
            self.faulted.add(line)
        if not self.bag:
            self.bag = list(self.kinds)
            self.rng.shuffle(self.bag)
        return self.bag.pop()

    def injected(self, n, fault, detail=""):
        """Counts a fault once it has been done to the client (not merely drawn)."""
        self.stats["faults"][fault] += 1
        self.log("#%d injected %s%s" % (n, fault, detail))

    async def handle(self, creader, cwriter):
        self.stats["connections"] += 1
        task = asyncio.current_task()
        self.conns.add(task)
        self.stats["peak_connections"] = max(self.stats["peak_connections"], len(self.conns))
        up = None
        try:
            while True:
                req = await read_head(creader)
                if req is None:
                    return
                self.stats["requests"] += 1
                n = self.stats["requests"]
                method = req.start.split(" ", 1)[0].upper()
                fkind, flen = req.framing()
                fault = self.draw(req.start)
                self.log("#%d %s%s -> %s" % (n, req.start, " (expect 100-continue)" if
                                             req.has_token("expect", "100-continue") else "",
                                             fault or "forward"))
                if fault in ("503", "slowdown"):
                    expect = req.has_token("expect", "100-continue")
                    if not expect:  # read the body, so the connection stays usable
                        async for _ in body_pieces(creader, fkind, flen):
                            pass
                    code, msg = (("ServiceUnavailable", "Service is unable to handle request.")
                                 if fault == "503" else ("SlowDown", "Please reduce your request rate."))
                    cwriter.write(s3_error(code, msg, "faultproxy-%d" % n, method == "HEAD"))
                    await cwriter.drain()
                    self.injected(n, fault)
                    if expect or req.has_token("connection", "close"):
                        # The client may or may not send the body it announced: the
                        # connection's framing is lost, so it ends here, gracefully.
                        await self.close_gracefully(creader, cwriter)
                        return
                    continue
                if up is None or up[0].at_eof():
                    if up is not None:
                        up[1].close()
                    up = await asyncio.open_connection(self.target[0], int(self.target[1]),
                                                       limit=HEAD_LIMIT)
                ureader, uwriter = up
                keep, keep_up = await self.forward(n, req, method, fkind, flen, fault, creader,
                                                   cwriter, ureader, uwriter)
                if not keep:
                    return
                if not keep_up:  # the next request goes on a new connection to the target
                    uwriter.close()
                    up = None
        except (Closed, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, OSError) as e:
            self.log("connection ended: %s" % e)
        finally:
            self.conns.discard(task)
            if up is not None:
                up[1].close()
            cwriter.close()

    async def forward(self, n, req, method, fkind, flen, fault, creader, cwriter, ureader, uwriter):
        """Forwards one request and relays (or damages) its response; False ends the connection."""
        self.stats["forwarded"] += 1
        stripped = [name for name in self.args.strip_header if req.get(name) is not None]
        for name in stripped:
            req.drop_header(name)
        if stripped:
            self.stats["stripped"] += 1
            self.log("#%d stripped %s" % (n, ", ".join(stripped)))
        uwriter.write(req.raw)
        await uwriter.drain()

        async def relay_body():
            async for piece in body_pieces(creader, fkind, flen):
                uwriter.write(piece)
                await uwriter.drain()

        body_task = asyncio.ensure_future(relay_body()) if fkind != "none" else None
        keep = not req.has_token("connection", "close")
        try:
            while True:
                resp = await read_head(ureader)
                if resp is None:
                    raise Closed("target closed the connection")
                status = int(resp.start.split(" ", 2)[1])
                if 100 <= status < 200 and status != 101:
                    self.log("interim %s" % resp.start)
                    cwriter.write(resp.raw)  # 100 Continue: the client may send its body now
                    await cwriter.drain()
                    continue
                break
            if status == 101:
                raise Closed("protocol upgrade not supported")
            if body_task is not None:
                # The body is normally all relayed by now; a final answer before it
                # (an early error, or a refused 100-continue) leaves the rest of it
                # unread, so this connection cannot carry another request.
                done, _ = await asyncio.wait({body_task}, timeout=0.2)
                if not done:
                    body_task.cancel()
                    keep = False
                else:
                    body_task.result()
                body_task = None
        finally:
            if body_task is not None:
                body_task.cancel()
        if method == "HEAD" or status in (204, 304):
            rkind, rlen = "none", 0
        else:
            rkind, rlen = resp.framing()
            if rkind == "none" and resp.get("content-length") is None:
                rkind = "eof"
        keep_up = rkind != "eof" and not resp.has_token("connection", "close")
        if not keep_up:
            if self.args.keep_alive and rkind != "eof" and keep:
                # The target ends the connection after this response, the client's stays:
                # drop the target's "Connection: close" and reconnect for the next request.
                resp.drop_header("connection")
            else:
                keep = False
        pieces = body_pieces(ureader, rkind, rlen)

        if fault in ("reset", "stall"):
            # Buffer the response (up to CUT_BUFFER of body) and cut it at a random
            # point inside its body, or inside its head when it has none.
            buf = bytearray(resp.raw)
            ended = True
            async for p in pieces:
                buf += p
                if len(buf) > len(resp.raw) + CUT_BUFFER:
                    ended = False
                    break
            body_len = len(buf) - len(resp.raw)
            if self.args.cut:
                cut = max(1, min(self.args.cut, len(buf) - 1))
            elif body_len >= 2 or (body_len == 1 and not ended):
                cut = len(resp.raw) + self.jitter.randint(1, body_len - 1 if ended else body_len)
            else:
                cut = self.jitter.randint(1, len(resp.raw) - 1)
            cwriter.write(bytes(buf[:cut]))
            await cwriter.drain()
            self.injected(n, fault, " after %d of %d bytes" % (cut, len(buf)))
            if fault == "reset":
                sock = cwriter.get_extra_info("socket")
                if sock is not None:  # SO_LINGER 0: close() sends RST, not FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                cwriter.transport.abort()
            else:
                await asyncio.sleep(self.args.stall)
            return False, False

        if fault == "trickle":
            self.injected(n, fault)
            loop = asyncio.get_running_loop()
            until = loop.time() + self.args.trickle

            async def send(data):
                i = 0
                while i < len(data) and loop.time() < until:
                    step = self.jitter.randint(1, 16)
                    cwriter.write(data[i:i + step])
                    await cwriter.drain()
                    i += step
                    await asyncio.sleep(self.jitter.uniform(0.005, 0.03))
                if i < len(data):
                    cwriter.write(data[i:])
                    await cwriter.drain()
        else:
            async def send(data):
                cwriter.write(data)
                await cwriter.drain()

        await send(resp.raw)
        async for p in pieces:
            await send(p)
        return keep, keep_up

    async def close_gracefully(self, creader, cwriter):
        """FIN, then reads (and drops) what the client still sends for up to 2 s, so a
        body in flight does not turn the close into a reset that loses the answer."""
        try:
            if cwriter.can_write_eof():
                cwriter.write_eof()
            await asyncio.wait_for(self.drain_input(creader), 2)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass

    @staticmethod
    async def drain_input(reader):
        while await reader.read(65536):
            pass

    async def stats_loop(self):
        while True:
            self.write_stats()
            await asyncio.sleep(1)

    async def listen(self, port):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", port,
                                                 limit=HEAD_LIMIT, reuse_address=True)
        return self.server.sockets[0].getsockname()[1]

    def go_down(self):
        """SIGUSR1: the store goes away. Stops listening (connections are refused) and
        ends every open connection."""
        if self.server is not None:
            self.server.close()
            self.server = None
            self.stats["outages"] += 1
            self.stats["up"] = False
            self.write_stats()
            self.log("down")
        for t in list(self.conns):
            t.cancel()

    async def come_up(self):
        """SIGUSR2: the store is back, on the same port."""
        if self.server is None:
            await self.listen(self.port)
            self.stats["up"] = True
            self.write_stats()
            self.log("up")

    async def run(self):
        self.server = None
        self.port = await self.listen(self.args.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self.go_down)
        loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(self.come_up()))
        self.write_stats()
        ticker = asyncio.ensure_future(self.stats_loop())
        print(self.port, flush=True)
        await stop.wait()
        ticker.cancel()
        if self.server is not None:
            self.server.close()
        for t in list(self.conns):
            t.cancel()
        self.write_stats()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--stall", type=float, default=2.0)
    ap.add_argument("--trickle", type=float, default=1.0)
    ap.add_argument("--cut", type=int, default=0)
    ap.add_argument("--only")
    ap.add_argument("--stats")
    ap.add_argument("--strip-header", action="append", default=[], metavar="NAME")
    ap.add_argument("--keep-alive", action="store_true")
    ap.add_argument("--once", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        ap.error("--kinds: unknown %s (known: %s)" % (",".join(bad) or "(none)", ",".join(KINDS)))
    if not 0 <= args.rate <= 1:
        ap.error("--rate must be within 0..1")
    if ":" not in args.target:
        ap.error("--target must be HOST:PORT")
    args.kinds = kinds
    # Head keeps header names lowercased: compare them so.
    args.strip_header = [h.strip().lower() for h in args.strip_header]
    if any(not h or ":" in h for h in args.strip_header):
        ap.error("--strip-header: a header field name, without ':'")
    try:
        args.only = re.compile(args.only) if args.only else None
    except re.error as e:
        ap.error("--only: %s" % e)
    asyncio.run(Proxy(args).run())


if __name__ == "__main__":
    main()

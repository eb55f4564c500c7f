#!/usr/bin/env python3
"""A proxy that SIGKILLs its client at its K-th request (stdlib only), for the S3 crash
test (tests/e2e/412-s3-crash.sh): the S3 counterpart of killing a deploy at its K-th
fsync, a kill placed by the deploy's own progress, not by the clock.

    killproxy.py --target HOST:PORT --pid-file FILE [--kill-at K] [--after]

Listens on a loopback port of the kernel's choosing and prints it on stdout once it
accepts connections; then prints one line per request read ("N METHOD TARGET"). Every
request is forwarded to --target and its response relayed, except the K-th (counted
over all connections, whatever thread of the client sent it; 0: none): then the
process whose pid FILE holds is sent SIGKILL, and the proxy prints "killed at N" and
closes the connection without an answer,

  - before forwarding it (default): the request never reached the store;
  - with --after, once the target has answered it: the request took effect, but the
    client died without knowing (S3's "it may have landed").

Requests are read by Content-Length (what slipway sends; no chunked bodies, no
"Expect: 100-continue"), one a connection: moto ends every connection after one
response and the proxy relays that. It exits on SIGTERM.
"""
import argparse
import asyncio
import os
import signal
import sys

HEAD_LIMIT = 64 * 1024


async def relay(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            return
        writer.write(data)
        await writer.drain()


class Proxy:
    def __init__(self, args):
        self.host, port = args.target.rsplit(":", 1)
        self.port = int(port)
        self.kill_at = args.kill_at
        self.after = args.after
        self.pid_file = args.pid_file
        self.n = 0

    def kill(self, n):
        with open(self.pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        print("killed at %d" % n, flush=True)

    async def client(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > HEAD_LIMIT:
                return
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            self.n += 1
            n = self.n
            print("%d %s" % (n, head.split(b"\r\n", 1)[0].decode("latin-1")), flush=True)
            if n == self.kill_at and not self.after:
                self.kill(n)
                return
            tr, tw = await asyncio.open_connection(self.host, self.port)
            tw.write(head + body)
            await tw.drain()
            if n == self.kill_at:
                await tr.read()  # the whole answer: the request has taken effect
                tw.close()
                self.kill(n)
                return
            await relay(tr, writer)
            tw.close()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--pid-file", required=True)
    p.add_argument("--kill-at", type=int, default=0)
    p.add_argument("--after", action="store_true")
    args = p.parse_args()
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.client, "127.0.0.1", 0, limit=HEAD_LIMIT)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

#!/usr/bin/env python3
"""A proxy that SIGKILLs its client at its K-th request (stdlib only), for the S3 crash
test (tests/e2e/412-s3-crash.sh): the S3 counterpart of killing a deploy at its K-th
fsync, a kill placed by the deploy's own progress, not by the clock.

    killproxy.py --target HOST:PORT --pid-file FILE

Listens on two loopback ports of the kernel's choosing, the proxy's and a control port,
and prints "PORT CONTROL_PORT" on stdout once it accepts connections. It serves one
trial after another (one process for the whole test: a Python start-up per trial would
cost more than the deploy). Each control connection is one line, answered "0" (a status
line; an unknown one is closed unanswered):

    arm K before|after LOG   a trial begins: the request count starts again from 0, the
                             K-th request (0: none) is the one that kills, and LOG
                             (truncated) gets one line per request read ("N METHOD
                             TARGET") and "killed at N";
    end                      the trial is over: LOG is closed, whole; connections
                             accepted before are closed unanswered from now on (they are
                             the killed client's: a proxy ended with its trial would not
                             forward them either).

Every request is forwarded to --target and its response relayed, except the K-th
(counted over all connections, whatever thread of the client sent it): then the process
whose pid FILE holds is sent SIGKILL, "killed at N" is logged, and the connection is
closed without an answer,

  - before forwarding it ("before"): the request never reached the store;
  - ("after") once the target has answered it: the request took effect, but the client
    died without knowing (S3's "it may have landed").

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
        self.pid_file = args.pid_file
        self.kill_at = 0
        self.after = False
        self.log = None
        self.trial = 0  # which trial a connection belongs to
        self.n = 0

    def line(self, text):
        if self.log:
            self.log.write(text + "\n")
            self.log.flush()

    def kill(self, n):
        with open(self.pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        self.line("killed at %d" % n)

    async def control(self, reader, writer):
        try:
            words = (await reader.readline()).decode().split()
            if words[:1] == ["arm"] and len(words) == 4:
                self.trial += 1
                self.n = 0
                self.kill_at, self.after = int(words[1]), words[2] == "after"
                self.log = open(words[3], "w")
            elif words == ["end"]:
                self.trial += 1
                self.kill_at = 0
                if self.log:
                    self.log.close()
                self.log = None
            else:
                return
            writer.write(b"0\n")
            await writer.drain()
        except (ConnectionError, ValueError, OSError):
            pass
        finally:
            writer.close()

    async def client(self, reader, writer):
        trial = self.trial
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
            if trial != self.trial:
                return
            self.n += 1
            n = self.n
            self.line("%d %s" % (n, head.split(b"\r\n", 1)[0].decode("latin-1")))
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
    args = p.parse_args()
    proxy = Proxy(args)
    server = await asyncio.start_server(proxy.client, "127.0.0.1", 0, limit=HEAD_LIMIT)
    control = await asyncio.start_server(proxy.control, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], control.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server, control:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

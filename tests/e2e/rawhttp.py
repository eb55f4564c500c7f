#!/usr/bin/env python3
"""Raw HTTP/1.x client for the edge tests: sends stdin's bytes as they are and
reports what came back, as one JSON object on stdout.

    rawhttp.py PORT [-n N] [--eof] [--shut] [--wait S] [--head] [--raw FILE]

  -n N      responses to wait for (default 1)
  --eof     after N responses (or an error response), keep reading until the
            server closes the connection or --wait runs out: "closed" then
            says whether the server closed it
  --shut    half-close (SHUT_WR) after sending, so the server sees EOF
  --wait S  overall time limit in seconds (default 2)
  --head    responses carry no body (answers to HEAD)
  --raw F   append every byte received to F
  --brief   print only the statuses and whether the server closed, such as
            "[400] closed" or "[200] open"

Output: {"statuses": [...], "bodies": [...], "headers": [{lower-name: value}],
"closed": bool, "timeout": bool}. A response is parsed by its Content-Length;
bodies are decoded as latin-1.
"""
import json
import socket
import sys
import time


def parse(buf, head_only):
    """Splits complete responses off the front of buf: (responses, rest)."""
    out = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf
        lines = buf[:end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            status = -1
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        n = 0
        if not head_only and status not in (204, 304) and status >= 200:
            n = int(headers.get("content-length", "0"))
        if len(buf) < end + 4 + n:
            return out, buf
        body = buf[end + 4:end + 4 + n]
        out.append((status, headers, body))
        buf = buf[end + 4 + n:]


def main():
    args = sys.argv[1:]
    port = int(args.pop(0))
    want, eof, shut, wait, head, raw, brief = 1, False, False, 2.0, False, None, False
    while args:
        a = args.pop(0)
        if a == "-n":
            want = int(args.pop(0))
        elif a == "--eof":
            eof = True
        elif a == "--shut":
            shut = True
        elif a == "--wait":
            wait = float(args.pop(0))
        elif a == "--head":
            head = True
        elif a == "--raw":
            raw = args.pop(0)
        elif a == "--brief":
            brief = True
        else:
            sys.exit("rawhttp.py: unknown option " + a)
    data = sys.stdin.buffer.read()
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    deadline = time.monotonic() + wait
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server may close before reading everything; still read what it said
    buf, got, closed, timed_out, rx = b"", [], False, False, b""
    while True:
        done = len(got) >= want or any(st >= 400 for st, _, _ in got)
        if done and not eof:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            timed_out = True
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        rx += chunk
        more, buf = parse(buf + chunk, head)
        got += more
    s.close()
    if raw:
        with open(raw, "ab") as f:
            f.write(rx)
    if brief:
        print("[%s]" % ", ".join(str(st) for st, _, _ in got),
              "closed" if closed and not timed_out else "open")
        return
    print(json.dumps({
        "statuses": [st for st, _, _ in got],
        "headers": [h for _, h, _ in got],
        "bodies": [b.decode("latin-1") for _, _, b in got],
        "closed": closed,
        "timeout": timed_out,
        "leftover": len(buf),
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A proxy in front of an S3 endpoint (moto) that misbehaves on cue, for the
multipart tests (415): each rule acts on one kind of request at a known point
of the upload, not at a moment of the clock, so a failure, a race or a kill
lands where the test means it to.

    s3cue.py PORT UPSTREAM_PORT LOG RULE...

Rules (a part is UploadPart, PUT ?partNumber=N&uploadId=...):
    fail-part=N             answer part N with 403 AccessDenied (not forwarded)
    hold-part=N:FILE        hold part N until FILE exists (at most 120 s), then forward it
    complete-error=CODE[:K] answer the first K CompleteMultipartUpload requests
                            (every one without K) with 200 and an <Error> body
Every request is logged to LOG as "METHOD PATH?QUERY -> STATUS" (a held part
as "holding part N" when the hold starts), so a test can wait for a point;
and each part as "parts in flight: N" once its body is in: the parts this
proxy holds at that moment, counted from a body read to the answer sent (the
count drops before the answer goes, so a client that waits for one part's
answer before it sends the next is never seen with two).
"""
import http.client, http.server, os, sys, threading, time
from urllib.parse import parse_qs, urlsplit

port, upstream, logfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rules = dict(r.split("=", 1) for r in sys.argv[4:])
lock = threading.Lock()
completes = [0]
inflight = [0]
log = open(logfile, "a", buffering=1)

def note(line):
    with lock:
        log.write(line + "\n")

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        q = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        self.part = q.get("partNumber", [None])[0] if self.command == "PUT" else None
        if self.part is not None:
            with lock:
                inflight[0] += 1
                log.write("parts in flight: %d\n" % inflight[0])
        if self.part is not None and rules.get("fail-part") == self.part:
            note("%s %s -> 403 (cue)" % (self.command, self.path))
            return self.reply(403, {}, b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                              b"AccessDenied</Code><Message>Access Denied (cue)</Message></Error>")
        if self.part is not None and rules.get("hold-part", ":").split(":", 1)[0] == self.part:
            flag = rules["hold-part"].split(":", 1)[1]
            note("holding part %s" % self.part)
            end = time.time() + 120
            while not os.path.exists(flag) and time.time() < end:
                time.sleep(0.05)
        if self.command == "POST" and "uploadId" in q and "complete-error" in rules:
            code, _, k = rules["complete-error"].partition(":")
            with lock:
                completes[0] += 1
                cue = not k or completes[0] <= int(k)
            if cue:
                note("%s %s -> 200 %s (cue)" % (self.command, self.path, code))
                return self.reply(200, {}, ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n  <Error>"
                                            "<Code>%s</Code><Message>cue</Message></Error>" % code).encode())
        c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        c.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                  headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        note("%s %s -> %d" % (self.command, self.path, r.status))
        keep = {k: v for k, v in r.getheaders()
                if k.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server")}
        self.reply(r.status, keep, data, r.getheader("Content-Length") if self.command == "HEAD" else None)

    def reply(self, status, headers, body, length=None):
        # A part leaves the count before its answer goes (see the top).
        if self.part is not None:
            with lock:
                inflight[0] -= 1
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if not headers:
            self.send_header("Content-Type", "application/xml")
        # A HEAD's length is the object's, sent without a body.
        self.send_header("Content-Length", length or str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()

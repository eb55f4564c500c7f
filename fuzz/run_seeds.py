#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/run.c (the run record parser).

    python3 fuzz/run_seeds.py          (run from the repository)

The valid seeds are records in the form slipway writes them (compact JSON,
keys in its order): a queued run waiting in a concurrency group, a running
one with a matrix job, outputs and steps, and one that ended. The hostile
seeds are mutations of those, each named after what it tries: traversal ids,
ids of another run, control characters and bad UTF-8 in text, statuses and
conclusions outside their lists or inconsistent, claims missing or forged,
oversized and deeply nested data, duplicate keys, times out of range.
tests/unit/test_pipeline_run.c checks that the valid-* seeds are accepted.

Output: fuzz/corpus/run/. Files this script did not write are left alone.
"""
import copy
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "run")
ID = "run-20261205-142233-512-9f3a1c"
HOLDER = "run-20261205-142230-001-0a0b0c"
SHA = "0123456789abcdef0123456789abcdef01234567"


def record(**over):
    r = {
        "format": 1, "id": ID, "generation": 1, "workflow": "CI",
        "workflow_file": ".github/workflows/ci.yml", "event": "push",
        "ref": "refs/heads/main", "sha": SHA, "before": "0" * 40, "after": SHA,
        "actor": "alice", "inputs": None, "status": "queued", "conclusion": None,
        "reason": None, "created_at": "2026-12-05T14:22:33.512Z", "started_at": None,
        "ended_at": None, "claimed_by": None, "concurrency": None, "waiting_for": None,
        "cancel_requested": False, "cancelled_by": None, "jobs": [],
    }
    r.update(over)
    return r


def job(**over):
    j = {"id": "build", "name": "build", "matrix": None, "status": "queued",
         "conclusion": None, "started_at": None, "ended_at": None, "outputs": {}, "steps": []}
    j.update(over)
    return j


CLAIM = {"runner": "runner-1", "host": "ci-host", "pid": 4242,
         "since": "2026-12-05T14:22:34.000Z", "lease_ms": 60000,
         "expires": "2026-12-05T14:23:34.000Z"}

QUEUED = record(
    concurrency={"group": "deploy-refs/heads/main", "cancel_in_progress": False},
    waiting_for=HOLDER,
    reason="waiting for run %s in concurrency group deploy-refs/heads/main" % HOLDER,
    event="workflow_dispatch",
    inputs={"target": "staging", "dry_run": True, "count": 3, "notes": "line 1\nline 2"},
    jobs=[job()])
RUNNING = record(
    generation=7, status="running", started_at="2026-12-05T14:22:34.000Z", claimed_by=CLAIM,
    jobs=[
        job(id="test", name="test (1, linux)", matrix={"n": 1, "os": "linux"},
            status="completed", conclusion="success",
            started_at="2026-12-05T14:22:35.000Z", ended_at="2026-12-05T14:22:40.000Z",
            outputs={"version": "1.4.0", "notes": "multi\nline"},
            steps=[{"name": "Run actions/checkout@v4", "outcome": "success",
                    "conclusion": "success"},
                   {"name": "Run make test", "outcome": "failure", "conclusion": "success"}]),
        job(id="test", name="test (2, linux)", matrix={"n": 2, "os": "linux",
                                                      "extra": {"flags": ["-O2", "-g"]}},
            status="running", started_at="2026-12-05T14:22:35.000Z",
            steps=[{"name": "Set up job", "outcome": None, "conclusion": None}]),
        job(id="deploy", name="Deploy to staging"),
    ])
ENDED = record(
    generation=12, status="failed", conclusion="failure", started_at="2026-12-05T14:22:34.000Z",
    ended_at="2026-12-05T14:30:00.000Z", claimed_by=CLAIM,
    reason="runner runner-1 on ci-host stopped while the run was running (process 4242 is gone)",
    cancel_requested=True, cancelled_by="bob",
    jobs=[job(status="completed", conclusion="failure", started_at="2026-12-05T14:22:35.000Z",
              ended_at="2026-12-05T14:30:00.000Z"),
          job(id="deploy", name="deploy", status="completed", conclusion="skipped",
              ended_at="2026-12-05T14:30:00.000Z")])


def dumps(r):
    return json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode()


def mutated(base, path, value, delete=False):
    r = copy.deepcopy(base)
    cur = r
    for p in path[:-1]:
        cur = cur[p]
    if delete:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return dumps(r)


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {"valid-queued": dumps(QUEUED), "valid-running": dumps(RUNNING),
             "valid-ended": dumps(ENDED),
             "valid-indented": json.dumps(RUNNING, indent=2).encode()}
    m = {
        "id-traversal": (QUEUED, ["id"], "../../etc/passwd"),
        "id-slash": (QUEUED, ["id"], ID + "/x"),
        "id-upper-hex": (QUEUED, ["id"], ID.upper()),
        "id-number": (QUEUED, ["id"], 7),
        "generation-zero": (RUNNING, ["generation"], 0),
        "generation-huge": (RUNNING, ["generation"], 2 ** 60),
        "generation-real": (RUNNING, ["generation"], 1.5),
        "status-bogus": (RUNNING, ["status"], "done"),
        "status-completed": (ENDED, ["status"], "completed"),
        "conclusion-mismatch": (ENDED, ["conclusion"], "success"),
        "conclusion-skipped": (ENDED, ["conclusion"], "skipped"),
        "conclusion-while-running": (RUNNING, ["conclusion"], "failure"),
        "running-unclaimed": (RUNNING, ["claimed_by"], None),
        "queued-claimed": (QUEUED, ["claimed_by"], CLAIM),
        "claim-runner-traversal": (RUNNING, ["claimed_by", "runner"], "../r"),
        "claim-host-newline": (RUNNING, ["claimed_by", "host"], "host\nforged line"),
        "claim-pid-zero": (RUNNING, ["claimed_by", "pid"], 0),
        "claim-pid-huge": (RUNNING, ["claimed_by", "pid"], 2 ** 40),
        "claim-lease-negative": (RUNNING, ["claimed_by", "lease_ms"], -5),
        "claim-expires-bad": (RUNNING, ["claimed_by", "expires"], "tomorrow"),
        "created-pre-epoch": (QUEUED, ["created_at"], "1969-12-31T23:59:59Z"),
        "created-year-10000": (QUEUED, ["created_at"], "10000-01-01T00:00:00Z"),
        "workflow-escape": (QUEUED, ["workflow"], "\x1b[31mred"),
        "workflow-c1": (QUEUED, ["workflow"], "a\u0085b"),
        "workflow-newline": (QUEUED, ["workflow"], "a\nb"),
        "workflow-long": (QUEUED, ["workflow"], "w" * 1025),
        "workflow-file-traversal": (QUEUED, ["workflow_file"], "../../etc/passwd"),
        "workflow-file-absolute": (QUEUED, ["workflow_file"], "/etc/passwd"),
        "event-upper": (QUEUED, ["event"], "Push"),
        "sha-short": (QUEUED, ["sha"], SHA[:-1]),
        "sha-upper": (QUEUED, ["sha"], SHA.upper()),
        "ref-bell": (QUEUED, ["ref"], "refs/heads/\x07"),
        "reason-multiline": (ENDED, ["reason"], "a\nb"),
        "inputs-array": (QUEUED, ["inputs"], []),
        "inputs-object-value": (QUEUED, ["inputs", "target"], {"a": 1}),
        "inputs-bad-name": (QUEUED, ["inputs"], {"1x": "v"}),
        "inputs-many": (QUEUED, ["inputs"], {"i%d" % i: "v" for i in range(101)}),
        "waiting-while-running": (RUNNING, ["waiting_for"], HOLDER),
        "waiting-for-itself": (QUEUED, ["waiting_for"], ID),
        "waiting-without-group": (QUEUED, ["concurrency"], None),
        "group-empty": (QUEUED, ["concurrency", "group"], ""),
        "group-newline": (QUEUED, ["concurrency", "group"], "g\nforged"),
        "cancel-requested-string": (QUEUED, ["cancel_requested"], "yes"),
        "jobs-object": (QUEUED, ["jobs"], {}),
        "jobs-many": (QUEUED, ["jobs"], [job() for _ in range(1025)]),
        "job-id-traversal": (RUNNING, ["jobs", 0, "id"], "../x"),
        "job-status-bogus": (RUNNING, ["jobs", 0, "status"], "done"),
        "job-completed-no-conclusion": (RUNNING, ["jobs", 0, "conclusion"], None),
        "job-queued-with-conclusion": (RUNNING, ["jobs", 2, "conclusion"], "success"),
        "job-matrix-string": (RUNNING, ["jobs", 0, "matrix"], "linux"),
        "job-matrix-deep": (RUNNING, ["jobs", 0, "matrix"], {"k": json.loads("[" * 30 + "]" * 30)}),
        "job-outputs-number": (RUNNING, ["jobs", 0, "outputs", "version"], 1),
        "job-steps-many": (RUNNING, ["jobs", 0, "steps"], [{"name": "s"}] * 1001),
        "step-outcome-bogus": (RUNNING, ["jobs", 0, "steps", 0, "outcome"], "ok"),
        "step-name-escape": (RUNNING, ["jobs", 0, "steps", 0, "name"], "\x1b]0;title\x07"),
    }
    for name, (base, path, value) in m.items():
        seeds[name] = mutated(base, path, value)
    seeds["missing-jobs"] = mutated(QUEUED, ["jobs"], None, delete=True)
    seeds["missing-created"] = mutated(QUEUED, ["created_at"], None, delete=True)
    seeds["dup-key"] = b'{"status":"running",' + dumps(QUEUED)[1:]
    seeds["bad-utf8"] = dumps(QUEUED).replace(b'"alice"', b'"al\xc3\x28ice"')
    seeds["nul-in-string"] = dumps(QUEUED).replace(b'"alice"', b'"al\\u0000ice"')
    seeds["deep-nesting"] = b"[" * 5000 + b"]" * 5000
    seeds["not-object"] = b'"run"'
    seeds["empty"] = b""
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()

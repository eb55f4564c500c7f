#!/usr/bin/env python3
"""Reserves a free TCP port on 127.0.0.1 for as long as a process lives, and
prints it. Used by free_port in lib.sh and by bench/edge.sh.

    port.py OWNER_PID

Asking the kernel for a free port (bind to port 0, read it, close) and handing
it to a server is a race: until the server binds it, another test — in this
checkout or in any other one running on the machine — can be handed the same
port. So a port is reserved instead:

  - it is drawn from outside the kernel's ephemeral range
    (net.ipv4.ip_local_port_range), so the kernel never gives it to anyone's
    connect() or bind to port 0 meanwhile;
  - the reservation is an exclusive flock on /tmp/slipway-ports/PORT, taken
    without waiting: whoever holds it owns the port, everyone else draws
    another;
  - with the lock held, binding the port must succeed, so a port some other
    program is using (or left in TIME_WAIT) is skipped;
  - the lock is kept by a process left behind that exits when OWNER_PID does
    (the test script: after its exit trap has stopped its servers). The kernel
    drops a flock when its holder dies, so a killed test leaves no stale
    reservation.

SLIPWAY_PORT_DIR overrides the lock directory (all users of one machine must
share it for the reservation to mean anything).
"""
import errno
import fcntl
import os
import random
import select
import socket
import sys
import time

LOCK_DIR = os.environ.get("SLIPWAY_PORT_DIR", "/tmp/slipway-ports")


def candidates():
    """Ports 20000..65535 outside the ephemeral range (all of them if that
    leaves fewer than 1000)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    ports = [p for p in range(20000, 65536) if not lo <= p <= hi]
    return ports if len(ports) >= 1000 else list(range(20000, 65536))


def reserve():
    """Returns (port, fd of its lock file, locked), or exits with a message."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    try:
        os.chmod(LOCK_DIR, 0o1777)  # shared by every user of the machine
    except OSError:
        pass
    ports = candidates()
    for _ in range(500):
        port = random.choice(ports)
        try:
            fd = os.open(os.path.join(LOCK_DIR, str(port)), os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue  # reserved by another test
            raise
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))  # no SO_REUSEADDR: TIME_WAIT counts as taken
        except OSError:
            os.close(fd)
            continue
        finally:
            s.close()
        return port, fd
    sys.exit("port.py: no free port after 500 tries")


def wait_for_exit(pid):
    """Returns when process pid has exited."""
    try:
        pfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pfd = None
    if pfd is not None:
        select.select([pfd], [], [])
        return
    while True:  # no pidfd (Python < 3.9 or an old kernel): poll
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(0.2)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: port.py OWNER_PID")
    owner = int(sys.argv[1])
    port, fd = reserve()
    print(port, flush=True)
    if os.fork():
        os._exit(0)
    # The holder: keeps fd (and so the lock) open; lets go of the caller's
    # stdout so that $(...) returns now, not when the holder exits.
    # Nothing else inherited stays open either (a pipe held open would make its
    # reader wait), and the holder sits in / so no directory of the test is busy.
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    os.closerange(3, fd)
    os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir("/")
    wait_for_exit(owner)
    os._exit(0)


if __name__ == "__main__":
    main()

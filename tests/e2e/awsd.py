"""The aws CLI, started once per test and forked for each call (moto.sh's aws function).

    <the aws CLI's own python> awsd.py PORT_FILE

Each `aws` process spends about a second of CPU starting Python and loading the CLI
and botocore before it sends its one request; the S3 tests make a hundred calls. This
server loads the CLI once (awscli.clidriver, as the `aws` script does: the same code,
the same service models), then forks a child for each call, which runs that one
command with CLIDriver.main and exits. The child is a fresh copy of the loaded server,
so nothing one call sets (a --region, resolved credentials, a config file read) is
seen by the next: each call is as independent as a separate `aws` process.

It listens on a loopback port of the kernel's choosing and, once it accepts, writes
"PORT TOKEN" to PORT_FILE (which only the test's directory holds). A call is one
connection carrying NUL-terminated fields:

    TOKEN, N (the argument count), CWD, STDIN, STDOUT, STDERR, the caller's environment
    (NAME=VALUE each), an empty field, then the N arguments

STDIN, STDOUT and STDERR are files the child opens as its fds 0, 1 and 2: the caller's
/proc/PID/fd/0 (its own stdin: a pipe, a file, a terminal; /dev/null when it cannot be
opened), and two files the caller prints once the call is over (bash cannot hand its
descriptors over). The child takes
the caller's environment and directory as its own, runs the command, and answers its
exit status as "RC\\n". A connection without the token gets no answer.
"""
import gc
import os
import secrets
import signal
import socket
import sys

import awscli.clidriver

TOKEN = secrets.token_hex(16)
FIELD_LIMIT = 1 << 20


def read_fields(conn):
    """The request's fields, or None when it is not one."""
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data or len(buf) + len(data) > FIELD_LIMIT:
            return None
        buf += data
        fields = buf.split(b"\0")
        if len(fields) > 1 and fields[0] != TOKEN.encode():
            return None
        fields.pop()  # what follows the last NUL: a field not yet whole
        if b"" not in fields[6:]:
            continue
        sep = fields.index(b"", 6)
        try:
            n = int(fields[1])
        except ValueError:
            return None
        if len(fields) - sep - 1 >= n:
            return [f.decode("utf-8", "surrogateescape") for f in fields[: sep + 1 + n]]


def call(conn, driver, data_path):
    """The child: one command, its status sent back."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    conn.settimeout(60)
    gc.disable()  # a short life: the collector would only copy the server's pages
    fields = read_fields(conn)
    if fields is None:
        os._exit(2)
    cwd, stdin, stdout, stderr = fields[2:6]
    sep = fields.index("", 6)
    env, args = fields[6:sep], fields[sep + 1 :]
    os.environ.clear()
    for e in env:
        name, _, value = e.partition("=")
        os.environ[name] = value
    # awscli adds its own data directory to AWS_DATA_PATH when it is imported.
    os.environ["AWS_DATA_PATH"] = data_path
    if os.environ.get("LC_CTYPE", "") == "UTF-8":  # as the aws script does
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    try:  # the caller's own stdin (a pipe, a file, a terminal), if it can be opened
        f = os.open(stdin, os.O_RDONLY)
    except OSError:
        f = os.open(os.devnull, os.O_RDONLY)
    os.dup2(f, 0)
    os.close(f)
    for fd, path in ((1, stdout), (2, stderr)):
        f = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.dup2(f, fd)
        os.close(f)
    os.chdir(cwd)
    # The server read no config file of the caller's: forget the one it read, so this
    # call reads AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE as the caller set them.
    driver.session._config = None
    driver.session._profile_map = None
    driver.session._credentials = None
    try:
        rc = driver.main(args)
    except SystemExit as e:  # argparse's usage errors: the status the aws script exits with
        rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, (int, type(None))):
            sys.stderr.write("%s\n" % e.code)
    except BaseException as e:  # the aws script would die with a traceback
        sys.stderr.write("awsd: %r\n" % (e,))
        rc = 255
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        conn.sendall(b"%d\n" % (rc if isinstance(rc, int) else 255))
        os._exit(0)


def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main():
    port_file = sys.argv[1]
    data_path = os.environ.get("AWS_DATA_PATH", "")
    driver = awscli.clidriver.create_clidriver()
    # What every call would build first: the command tables of the services the tests
    # use (service models read and parsed once; no client made, nothing resolved).
    table = driver._get_command_table()
    driver._get_argument_table()
    for svc in ("s3api", "iam"):
        table[svc]._get_command_table()
    table["s3"].subcommand_table
    # And the data files every call reads before its request (botocore's loader keeps what
    # it read; they are the installed package's, the same for every caller), and the
    # endpoint resolver made of them.
    loader = driver.session.get_component("data_loader")
    for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration"):
        loader.load_data(name)
    for svc in ("s3", "iam"):
        for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
            try:
                loader.load_service_model(svc, kind)
            except Exception:  # (a service without one)
                pass
    driver.session._get_internal_component("endpoint_resolver")
    # The loaded CLI is never collected: forked children share its pages untouched.
    gc.freeze()
    # Children reaped as they end (so their CPU time counts as the test's, as an aws
    # process's would).
    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %s\n" % (srv.getsockname()[1], TOKEN))
    os.replace(tmp, port_file)
    while True:
        try:
            conn, _ = srv.accept()
        except InterruptedError:  # (Python retries it itself)
            continue
        if os.fork() == 0:
            try:
                srv.close()
                call(conn, driver, data_path)
            finally:
                os._exit(2)  # never back into the server's loop (call ends with _exit)
        conn.close()


if __name__ == "__main__":
    main()

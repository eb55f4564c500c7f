"""moto_server answering one request at a time (moto_start --serial in moto.sh), or with
--threaded each on a thread of its own as moto_server does (every other moto_start).

    python moto_serial.py -H HOST -p PORT [-c CERT -k KEY] [--threaded]
                                            (moto_server's own options, and --threaded)

moto_server serves every request on a thread of its own (werkzeug's
threaded=True), and moto's S3 checks a conditional write's precondition and
stores the object in two steps with no lock between them (moto 5.2,
moto/s3/responses.py, put_object: `If-Match` / `If-None-Match: *` are
compared with get_object, the object is stored later with
backend.put_object). Two conditional PUTs of one ETag sent at the same moment
can therefore both succeed, which S3 never allows: a compare-and-swap test
sees lost updates that are moto's. Objects replaced while another thread still
reads them also fail with "I/O operation on closed file" (500s). Answering one
request at a time makes each request atomic, as S3's are; clients stay
concurrent, their requests are only queued. This is the same application
moto_server runs (the same services, IAM mode included, as
INITIAL_NO_AUTH_ACTION_COUNT is read from the environment by moto itself).

moto also lists its own package directory (some 180 stat calls) on every
request to find the service a host name names; that list never changes while
it runs, so it is read once here, which makes moto about three times as fast (in
both modes: the tests' time goes largely to moto).
"""
import argparse
import os

from werkzeug.serving import run_simple

import moto.backends as backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("-c", "--ssl-cert")
    parser.add_argument("-k", "--ssl-key")
    parser.add_argument("--threaded", action="store_true")
    args = parser.parse_args()
    host, port = args.host, args.port
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    os.environ.setdefault("MOTO_PORT", str(port))
    ssl = (args.ssl_cert, args.ssl_key) if args.ssl_cert and args.ssl_key else None
    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=args.threaded, ssl_context=ssl)


if __name__ == "__main__":
    main()

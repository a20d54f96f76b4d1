"""A minimal Lambda runtime in plain Python, to tell apart what awslambdaric costs from what
the gateway costs: one kept-alive socket to the Runtime API in AWS_LAMBDA_RUNTIME_API, and per
invocation `GET .../invocation/next`, json.loads, the handler, json.dumps, `POST
.../invocation/{id}/response`. No error reporting, no context beyond what the handler needs.

    python raw_runtime.py MODULE.FUNCTION

With RAW_RUNTIME_STATS=FILE, it times each invocation from the end of `next` to the end of
the POST's answer (the handler with its JSON, then the POST's write and answer), and when it
stops (SIGTERM, or the Runtime API closing its connection) writes their p50/p99
(microseconds) to FILE as one JSON line.
"""

import importlib
import json
import os
import signal
import socket
import sys
import time

host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
module, _, function = sys.argv[1].rpartition(".")
sys.path.insert(0, os.getcwd())
handler = getattr(importlib.import_module(module), function)
STATS = os.environ.get("RAW_RUNTIME_STATS")
NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n\r\n"


class Context:
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")

    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id", "")
        self.deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))

    def get_remaining_time_in_millis(self):
        return max(0, self.deadline_ms - int(time.time() * 1000))


def read_response(f):
    if not f.readline():  # the status line
        raise EOFError("the Runtime API closed the connection")
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, f.read(int(headers.get("content-length", "0")))


handling, posting = [], []


def report(*_):
    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))] / 1000 if xs else None

    with open(STATS, "w") as out:
        out.write(json.dumps({
            "invocations": len(handling),
            "handler_with_json": {"p50_us": pct(handling, 0.5), "p99_us": pct(handling, 0.99)},
            "post_round_trip": {"p50_us": pct(posting, 0.5), "p99_us": pct(posting, 0.99)},
        }) + "\n")
    os._exit(0)


def main():
    if STATS:
        signal.signal(signal.SIGTERM, report)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    clock = time.perf_counter_ns
    while True:
        sock.sendall(NEXT)
        headers, body = read_response(f)
        t0 = clock()
        request_id = headers["lambda-runtime-aws-request-id"]
        out = json.dumps(handler(json.loads(body), Context(headers))).encode()
        t1 = clock()
        sock.sendall(
            b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: runtime\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (request_id.encode(), len(out), out)
        )
        read_response(f)
        if STATS:
            t2 = clock()
            handling.append(t1 - t0)
            posting.append(t2 - t1)


try:
    main()
except (EOFError, OSError):
    if STATS:
        report()
    raise

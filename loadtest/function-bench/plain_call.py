"""The same handler without a gateway: imports it and calls handler(event, context) N times
with a prebuilt payload 2.0 event (what turnpike sends for `GET /fn`), timing each call with
time.perf_counter_ns. Prints one JSON line: p50/p99 in microseconds of the bare call and of
the call with the JSON decode of the event and encode of the answer that any runtime does
per invocation.

    python plain_call.py [N] [MODULE.FUNCTION]      # default 20000 handler.handler
"""

import importlib
import json
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
module, _, function = (sys.argv[2] if len(sys.argv) > 2 else "handler.handler").rpartition(".")
handler = getattr(importlib.import_module(module), function)

EVENT = {
    "version": "2.0",
    "routeKey": "GET /fn",
    "rawPath": "/fn",
    "rawQueryString": "",
    "headers": {"host": "127.0.0.1:18200", "user-agent": "turnpike-load"},
    "requestContext": {
        "accountId": "000000000000",
        "apiId": "bench",
        "domainName": "127.0.0.1",
        "domainPrefix": "127",
        "http": {
            "method": "GET",
            "path": "/fn",
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "turnpike-load",
        },
        "requestId": "bench-request-id",
        "routeKey": "GET /fn",
        "stage": "$default",
        "time": "30/Nov/2026:00:00:00 +0000",
        "timeEpoch": 1795996800000,
    },
    "isBase64Encoded": False,
}
EVENT_BYTES = json.dumps(EVENT).encode()


class Context:
    function_name = "bench"
    aws_request_id = "bench-request-id"

    def get_remaining_time_in_millis(self):
        return 3000


def percentiles(samples):
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] / 1000
    return {"p50_us": pick(0.50), "p99_us": pick(0.99)}


def main():
    ctx = Context()
    clock = time.perf_counter_ns
    for _ in range(1000):  # warm-up
        handler(EVENT, ctx)
    bare = []
    for _ in range(N):
        t0 = clock()
        handler(EVENT, ctx)
        bare.append(clock() - t0)
    coded = []
    for _ in range(N):
        t0 = clock()
        json.dumps(handler(json.loads(EVENT_BYTES), ctx)).encode()
        coded.append(clock() - t0)
    print(json.dumps({"calls": N, "bare": percentiles(bare), "with_json": percentiles(coded)}))


main()

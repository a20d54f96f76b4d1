"""Handlers for the function integration tests, chosen by the request path's last part."""
import base64
import json
import os
import signal
import time

if os.environ.get("TERM_MARK"):
    # Shutdown: the gateway sends SIGTERM once the runtime holds nothing.
    def _on_term(*_):
        with open(os.environ["TERM_MARK"], "a") as f:
            f.write(f"{os.getpid()}\n")
        os._exit(0)

    signal.signal(signal.SIGTERM, _on_term)


def handler(event, context):
    path = event.get("rawPath") or event.get("path") or ""
    what = path.rstrip("/").rsplit("/", 1)[-1]
    if what == "echo":
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"event": event, "remaining_ms": context.get_remaining_time_in_millis(),
                                    "request_id": context.aws_request_id, "function": context.function_name})}
    if what == "binary":
        raw = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "isBase64Encoded": True, "body": base64.b64encode(raw[::-1]).decode()}
    if what == "cookies":
        return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
                "headers": {"x-custom": "yes"}, "body": "made"}
    if what == "bare":
        return {"hello": "world"}
    if what == "raise":
        raise ValueError("the handler failed on purpose")
    if what == "sleep":
        time.sleep(float((event.get("queryStringParameters") or {}).get("s", "3")))
        return {"statusCode": 200, "body": str(os.getpid())}
    if what == "crash":
        os._exit(3)
    if what == "api":
        return {"statusCode": 200, "body": os.environ["AWS_LAMBDA_RUNTIME_API"]}
    if what == "env":
        return {"statusCode": 200, "body": json.dumps(sorted(os.environ))}
    if what == "trace":
        return {"statusCode": 200, "body": os.environ.get("_X_AMZN_TRACE_ID", "")}
    if what == "huge":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    if what == "pid":
        return {"statusCode": 200, "body": str(os.getpid())}
    if what == "malformed":
        return {"statusCode": "not a number"}
    if what == "v1":
        return {"statusCode": 200, "multiValueHeaders": {"x-multi": ["a", "b"]},
                "body": json.dumps({"method": event["httpMethod"], "path": event["path"],
                                    "resource": event["resource"], "query": event["multiValueQueryStringParameters"]})}
    return {"statusCode": 404, "body": "no such behaviour"}

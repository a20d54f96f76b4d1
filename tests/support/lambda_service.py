"""A small stand-in for AWS Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`,
AWS Lambda API reference "Invoke"), for the remote-function tests.

Functions by name: `my-function` runs the user's tutorial handler (lambda_function.py);
`boom` fails as an unhandled error does (200 with `X-Amz-Function-Error: Unhandled`);
`throttled` answers 429 TooManyRequestsException; `slow` sleeps 3 s; anything else is 404
ResourceNotFoundException. With `credentials`, every call must be SigV4-signed for service
`lambda`: the signature is recomputed with botocore's own signer from the headers the call
signed, and a mismatch is answered 403 as Lambda does.
"""

import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "functions"))
import lambda_function  # noqa: E402  (the tutorial's handler)

PREFIX = "/2015-03-31/functions/"


class Context:
    function_name = "my-function"
    aws_request_id = "remote-request"

    def get_remaining_time_in_millis(self):
        return 3000


def botocore_signature(method, url, headers, body, access_key, secret, token, region):
    """The Authorization header botocore makes for these headers at their X-Amz-Date."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=url, headers=headers, data=body)
    auth = SigV4Auth(Credentials(access_key, secret, token), "lambda", region)
    req.context["timestamp"] = headers["X-Amz-Date"]
    canonical = auth.canonical_request(req)
    sts = auth.string_to_sign(req, canonical)
    signature = auth.signature(sts, req)
    scope = auth.scope(req)
    signed = auth.signed_headers(auth.headers_to_sign(req))
    return f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}"


class LambdaService:
    def __init__(self, credentials=None, region="us-east-1"):
        """credentials: (access_key_id, secret, session_token or None) the calls must be
        signed with, or None for unsigned calls."""
        self.credentials = credentials
        self.region = region
        self.calls = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = urllib.parse.urlsplit(self.path).path
                service.calls.append({"path": path, "headers": dict(self.headers.items()), "body": body})
                if service.credentials and not service.signed_right(self, body):
                    return self.answer(403, {"message": "The request signature we calculated does not match the signature you provided."})
                if not (path.startswith(PREFIX) and path.endswith("/invocations")):
                    return self.answer(404, {"Type": "User", "message": "Unknown operation"})
                name = urllib.parse.unquote(path[len(PREFIX):-len("/invocations")])
                name = name.split(":function:")[-1].split(":")[0]
                if self.headers.get("X-Amz-Invocation-Type", "RequestResponse") != "RequestResponse":
                    return self.answer(400, {"Type": "User", "message": "expected RequestResponse"})
                event = json.loads(body)
                if name in ("my-function", "function"):
                    return self.answer(200, lambda_function.handler(event, Context()))
                if name == "echo":
                    return self.answer(200, {"statusCode": 200, "body": json.dumps(event)})
                if name == "boom":
                    return self.answer(
                        200,
                        {"errorMessage": "boom on purpose", "errorType": "RuntimeError", "stackTrace": []},
                        [("X-Amz-Function-Error", "Unhandled")],
                    )
                if name == "throttled":
                    return self.answer(429, {"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
                if name == "slow":
                    time.sleep(3)
                    return self.answer(200, {"statusCode": 200, "body": "late"})
                return self.answer(404, {"Type": "User", "message": f"Function not found: {name}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def signed_right(self, handler, body):
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 ") or "X-Amz-Date" not in handler.headers:
            return False
        listed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        headers = {}
        for k, v in handler.headers.items():
            if k.lower() in listed:
                headers[k] = v
        # botocore names the date header itself; keep its spelling.
        headers = {("X-Amz-Date" if k.lower() == "x-amz-date" else k): v for k, v in headers.items()}
        url = f"http://{handler.headers['Host']}{handler.path}"
        access, secret, token = self.credentials
        expected = botocore_signature("POST", url, headers, body, access, secret, token, self.region)
        return auth == expected

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

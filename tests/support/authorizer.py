"""A request ("Lambda") authorizer reached over HTTP, written like the tutorial's
`authorizer.py`: it reads the event the gateway POSTs, looks at the Authorization header and
answers a simple response (`{isAuthorized, context}`) or an IAM policy. Every event is kept in
`events`, so tests count calls (cache hits make none) and check the event's shape.

Tokens choose the answer: `allow`, `deny`, `iam-allow:<resource pattern>`, `iam-deny`,
`slow` (waits 2 s), `garbage` (not JSON), `crash` (status 500), `wrong-type` (isAuthorized
not a boolean), `key:<value>` (allowed, with that usageIdentifierKey).
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def validate_token(token):
    return token.startswith("allow") or token.startswith("key:")


def token_of(event):
    """The Authorization header: lower-case in 2.0 events, as sent in 1.0 ones."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    return headers.get("authorization", "")


def handler(event):
    token = token_of(event)
    if token == "slow":
        time.sleep(2)
    if token == "wrong-type":
        return {"isAuthorized": "yes"}
    if token.startswith("iam-"):
        effect = "Allow" if token.startswith("iam-allow") else "Deny"
        resource = token.split(":", 1)[1] if ":" in token else event.get("routeArn") or event.get("methodArn")
        return {
            "principalId": "user_123",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
            },
            "context": {"userId": "user_123", "role": "admin", "level": 3, "beta": True},
        }
    if validate_token(token):
        answer = {"isAuthorized": True, "context": {"userId": "user_123", "role": "admin"}}
        if token.startswith("key:"):
            answer = {
                "principalId": "user_123",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
                },
                "usageIdentifierKey": token[4:],
            }
        return answer
    return {"isAuthorized": False}


class Authorizer:
    def __init__(self):
        self.events = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                event = json.loads(self.rfile.read(n))
                outer.events.append(event)
                token = token_of(event)
                if token == "crash":
                    status, body = 500, b'{"errorMessage":"boom"}'
                elif token == "garbage":
                    status, body = 200, b"this is not json"
                else:
                    status, body = 200, json.dumps(handler(event)).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/authorize"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls(self, token):
        return sum(1 for e in self.events if token_of(e) == token)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

"""An origin for the cache tests that answers with the caching headers a test asks for.

Every request is recorded (method, path with query, headers) in `requests`. The query
chooses the answer: `cc=...` a Cache-Control value, `etag=...` an ETag (a request whose
If-None-Match carries it gets 304), `vary=...` a Vary value, `lm=...` a Last-Modified (an
HTTP-date), `expires=...`, `status=...`, `location=...`; `size=N` N bytes of body;
`inm_status=N` answers a request with If-None-Match with status N (an origin failing to
revalidate). The body
is JSON with the request's sequence number `n`, so a test tells a stored answer from a new one.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class CacheOrigin:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                with origin.lock:
                    origin.requests.append(
                        {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                    )
                    n = len(origin.requests)
                q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                inm = self.headers.get("if-none-match")
                if inm and "inm_status" in q:
                    body = b"origin trouble"
                    self.send_response(int(q["inm_status"]))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if "etag" in q and inm and q["etag"] in [t.strip() for t in inm.split(",")]:
                    self.send_response(304)
                    self.send_header("ETag", q["etag"])
                    if "cc" in q:
                        self.send_header("Cache-Control", q["cc"])
                    self.send_header("X-Revalidated", str(n))
                    self.end_headers()
                    return
                status = int(q.get("status", 200))
                body = json.dumps({"n": n, "path": self.path, "accept": self.headers.get("accept")}).encode()
                if "size" in q:
                    body = b"x" * int(q["size"])
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-N", str(n))
                for key, name in (("cc", "Cache-Control"), ("etag", "ETag"), ("vary", "Vary"), ("lm", "Last-Modified"), ("expires", "Expires"), ("location", "Location")):
                    if key in q:
                        self.send_header(name, q[key])
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.server.server_address[1]}"

    def count(self, method=None):
        with self.lock:
            return len([r for r in self.requests if method is None or r["method"] == method])

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

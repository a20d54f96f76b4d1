"""A small real HTTP/1.1 origin for the integration tests.

Runs in the test process on a loopback port, one thread per connection, and records every
request that reaches it (method, target, headers as received, body length and digest, and
which connection it came on), so tests can assert what a backend saw -- or that it saw
nothing. Paths choose behaviours:

  /anything            echo the request as JSON (the default)
  /status/<code>       that status, small body
  /bytes/<n>           n bytes with Content-Length
  /chunked/<n>         n bytes chunked (8 KiB chunks), with a trailer
  /close/<n>           n bytes delimited by closing the connection (no length)
  /http10/<n>          an HTTP/1.0 response, n bytes, close-delimited
  /slow/<ms>           wait, then echo
  /hang                read the request, never answer
  /no-response         read the request, close without answering
  /die-mid/<n>         promise n bytes, send half, close
  /die-mid-chunked     send one chunk, close
  /garbage             answer with something that is not HTTP
  /close-after         answer, then close without saying so (stale keep-alive)
  /hop-headers         answer with hop-by-hop headers the gateway must strip
  /download/<n>        n bytes streamed in 64 KiB writes (Content-Length)
  /subprotocol/<name>  200 with `Sec-WebSocket-Protocol: <name>` (a WebSocket $connect
                       backend choosing a subprotocol)
Request bodies are read (Content-Length or chunked) and hashed as they stream; only bodies up to
1 MiB are kept.

`Origin(tls=(certfile, keyfile))` speaks HTTPS instead (`tls=(certfile, keyfile, client_ca)`
also asks for a client certificate chaining to `client_ca`): each accepted connection's
handshake runs in its own thread; the server names clients sent (SNI) are kept in
`server_names`, and handshakes that failed are counted in `tls_failures`.
"""

import hashlib
import json
import socket
import ssl
import threading
import time

KEEP_BODY = 1 << 20


class Recorded:
    def __init__(self, method, target, version, headers, conn, seq):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.conn = conn  # client port of the connection it came on
        self.seq = seq  # index of the request on that connection
        self.body = b""
        self.body_len = 0
        self.body_sha256 = hashlib.sha256().hexdigest()
        self.trailers = []

    def header(self, name):
        """All values of a header, in order (case-insensitive name)."""
        return [v for (k, v) in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<{self.method} {self.target} len={self.body_len} conn={self.conn}#{self.seq}>"


class BadRequest(Exception):
    pass


def pattern(n):
    """Deterministic body bytes for size n."""
    block = bytes(range(256)) * 256  # 64 KiB
    out = bytearray()
    while len(out) < n:
        out += block[: n - len(out)]
    return bytes(out)


class Origin:
    def __init__(self, tls=None):
        self.tls = None
        self.server_names = []
        self.tls_failures = 0
        # Per TLS connection: whether its handshake resumed an earlier session.
        self.resumed = []
        if tls is not None:
            certfile, keyfile, *rest = tls
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            if rest and rest[0] is not None:
                ctx.load_verify_locations(rest[0])
                ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.sni_callback = self._sni
            self.tls = ctx
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopped = False
        self.threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def reset(self):
        with self.lock:
            self.requests = []
            self.connections = 0
            self.server_names = []
            self.tls_failures = 0
            self.resumed = []

    def _sni(self, _sock, name, _ctx):
        with self.lock:
            self.server_names.append(name)

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopped:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, peer), daemon=True)
            t.start()

    # -- reading ---------------------------------------------------------------------------

    def _serve(self, conn, peer):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                conn.settimeout(10)
                conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
                with self.lock:
                    self.resumed.append(conn.session_reused)
            except (OSError, ssl.SSLError):
                with self.lock:
                    self.tls_failures += 1
                conn.close()
                return
        buf = bytearray()
        seq = 0
        try:
            while True:
                head, buf = self._read_head(conn, buf)
                if head is None:
                    return
                req, framing = self._parse_head(head, peer[1], seq)
                seq += 1
                buf = self._read_body(conn, buf, req, framing)
                with self.lock:
                    self.requests.append(req)
                if not self._respond(conn, req):
                    return
        except (OSError, BadRequest):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _recv(conn, buf):
        data = conn.recv(262144)
        if not data:
            return False
        buf += data
        return True

    def _read_head(self, conn, buf):
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                return bytes(buf[: end + 4]), buf[end + 4 :]
            if len(buf) > 1 << 20:
                raise BadRequest("head too large")
            if not self._recv(conn, buf):
                return None, buf

    @staticmethod
    def _parse_head(head, port, seq):
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            raise BadRequest(lines[0])
        method, target, version = (p.decode("latin-1") for p in parts)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        req = Recorded(method, target, version, headers, port, seq)
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if te:
            if te[-1].lower().split(",")[-1].strip() != "chunked" or cl:
                raise BadRequest("bad framing")
            return req, ("chunked", None)
        if len(cl) > 1:
            raise BadRequest("two lengths")
        return req, ("length", int(cl[0]) if cl else 0)

    def _read_body(self, conn, buf, req, framing):
        digest = hashlib.sha256()
        kept = bytearray()

        def take(data):
            req.body_len += len(data)
            digest.update(data)
            if len(kept) < KEEP_BODY:
                kept.extend(data[: KEEP_BODY - len(kept)])

        kind, n = framing
        if kind == "length":
            if buf:
                piece = bytes(buf[:n])
                del buf[: len(piece)]
                take(piece)
                n -= len(piece)
            while n > 0:
                data = conn.recv(min(n, 1 << 20))
                if not data:
                    raise BadRequest("body cut short")
                take(data)
                n -= len(data)
        else:
            pos = 0  # parse position in buf; consumed bytes are dropped in bulk

            def need(k):
                nonlocal buf, pos
                while len(buf) - pos < k:
                    if pos:
                        del buf[:pos]
                        pos = 0
                    if not self._recv(conn, buf):
                        raise BadRequest("chunked body cut short")

            def line():
                nonlocal pos
                while True:
                    i = buf.find(b"\r\n", pos)
                    if i >= 0:
                        out = bytes(buf[pos:i])
                        pos = i + 2
                        return out
                    need(len(buf) - pos + 1)

            while True:
                size = int(line().split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = line()
                        if not t:
                            break
                        name, _, value = t.partition(b":")
                        req.trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
                    break
                need(size + 2)
                take(bytes(buf[pos : pos + size]))
                if buf[pos + size : pos + size + 2] != b"\r\n":
                    raise BadRequest("chunk not ended by CRLF")
                pos += size + 2
            del buf[:pos]
        req.body = bytes(kept)
        req.body_sha256 = digest.hexdigest()
        return buf

    # -- answering -------------------------------------------------------------------------

    @staticmethod
    def _send(conn, status, headers, body=b"", reason="OK"):
        head = f"HTTP/1.1 {status} {reason}\r\n"
        for k, v in headers:
            head += f"{k}: {v}\r\n"
        conn.sendall(head.encode("latin-1") + b"\r\n" + body)

    def _respond(self, conn, req):
        """Answers; returns whether the connection stays open."""
        path = req.target.split("?")[0]
        parts = path.strip("/").split("/")
        head_req = req.method == "HEAD"
        wants_close = any(v.lower() == "close" for v in req.header("connection"))

        def arg(default=0):
            try:
                return int(parts[1])
            except (IndexError, ValueError):
                return default

        def plain(status, body, extra=(), reason="OK", ctype="application/octet-stream"):
            hdrs = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
            hdrs += list(extra)
            if wants_close:
                hdrs.append(("Connection", "close"))
            self._send(conn, status, hdrs, b"" if head_req else body, reason)
            return not wants_close

        name = parts[0]
        if name == "status":
            return plain(arg(200), b"status", reason="Status")
        if name == "bytes":
            return plain(200, pattern(arg()))
        if name == "chunked":
            n = arg()
            body = pattern(n)
            self._send(conn, 200, [("Transfer-Encoding", "chunked"), ("Trailer", "X-Digest")])
            if not head_req:
                for i in range(0, n, 8192):
                    piece = body[i : i + 8192]
                    conn.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                digest = hashlib.sha256(body).hexdigest()
                conn.sendall(b"0\r\nX-Digest: " + digest.encode() + b"\r\n\r\n")
            return not wants_close
        if name == "close":
            self._send(conn, 200, [("Content-Type", "application/octet-stream")], pattern(arg()))
            return False
        if name == "http10":
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + pattern(arg()))
            return False
        if name == "slow":
            time.sleep(arg() / 1000)
        if name == "hang":
            time.sleep(3600)
            return False
        if name == "no-response":
            return False
        if name == "die-mid":
            n = arg(1000)
            self._send(conn, 200, [("Content-Length", str(n))], pattern(n // 2))
            return False
        if name == "die-mid-chunked":
            self._send(conn, 200, [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n")
            return False
        if name == "garbage":
            conn.sendall(b"this is not http\r\n\r\n")
            return False
        if name == "close-after":
            self._send(conn, 200, [("Content-Length", "2")], b"ok")
            return False
        if name == "hop-headers":
            return plain(
                200,
                b"hop",
                [
                    ("Connection", "X-Internal"),
                    ("X-Internal", "secret"),
                    ("Keep-Alive", "timeout=5"),
                    ("Proxy-Authenticate", "Basic"),
                    ("Upgrade", "h2c"),
                    ("X-End-To-End", "kept"),
                ],
            )
        if name == "subprotocol":
            return plain(200, b"ok", [("Sec-WebSocket-Protocol", parts[1] if len(parts) > 1 else "")])
        if name == "download":
            n = arg()
            self._send(conn, 200, [("Content-Length", str(n))])
            block = pattern(65536)
            sent = 0
            while sent < n and not head_req:
                piece = block[: min(65536, n - sent)]
                conn.sendall(piece)
                sent += len(piece)
            return not wants_close
        echo = {
            "method": req.method,
            "target": req.target,
            "version": req.version,
            "headers": req.headers,
            "body_len": req.body_len,
            "body_sha256": req.body_sha256,
            "trailers": req.trailers,
            "conn": req.conn,
            "seq": req.seq,
        }
        return plain(200, json.dumps(echo).encode(), ctype="application/json")

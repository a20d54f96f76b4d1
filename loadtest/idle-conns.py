#!/usr/bin/env python3
"""idle-conns.py: hold N idle keep-alive HTTP/1.1 connections open to one server.

Opens --conns connections to 127.0.0.1:PORT, sends one small keep-alive GET on each and reads
its whole response (Content-Length or chunked), so every connection has been through a request
and sits idle in keep-alive, as an idle client's does. With --tls, each is a TLS 1.3 connection
(a full handshake, ALPN http/1.1, the certificate verified with --cafile for --server-name, or
not at all without --cafile). Then prints one line on stdout:

    ready OPENED FAILED SECONDS

and waits for commands on stdin, one per line:

    check   prints "open K closed M": how many of the held connections the server has not
            closed (a closed one polls readable: EOF or an unexpected byte)
    quit    (or end of input) closes every connection with a reset, so no TIME_WAIT is left
            behind, and exits

It never holds them longer than --hold-max seconds. Used by peer-bench.sh --idle-check.
"""

import argparse
import resource
import select
import socket
import ssl
import struct
import sys
import time


def tls_context(cafile):
    """A TLS 1.3 client context: verifying against cafile, or (None) trusting any certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def closed_by_server(s):
    """True if the server has closed s (EOF, a reset, or bytes nobody asked for). For TLS, a
    readable socket may only hold records without data (a session ticket): read to tell."""
    if not isinstance(s, ssl.SSLSocket):
        return True
    s.setblocking(False)
    try:
        s.recv(1)  # EOF or an unexpected byte: closed either way
        return True
    except ssl.SSLWantReadError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def read_response(s, buf):
    """Reads one whole response from s (buf holds bytes already read); returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if fields.get(b"connection") == b"close":
        raise ConnectionError("the server closes the connection (Connection: close)")
    if b"chunked" in fields.get(b"transfer-encoding", b""):
        while True:
            while b"\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunked body")
                buf += chunk
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            need = size + 2  # the chunk and its CRLF (for the last chunk: the final CRLF)
            while len(buf) < need:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a chunked body")
                buf += chunk
            buf = buf[need:]
            if size == 0:
                return status, buf
    length = int(fields.get(b"content-length", b"-1"))
    if length < 0:
        raise ConnectionError("response has neither Content-Length nor chunked framing")
    while len(buf) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        buf += chunk
    return status, buf[length:]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--path", default="/")
    p.add_argument("--batch", type=int, default=256, help="connections opened before their requests are sent")
    p.add_argument("--timeout", type=float, default=5.0, help="per connect and per response, seconds")
    p.add_argument("--hold-max", type=float, default=600.0, help="exit after this long whatever stdin says")
    p.add_argument("--tls", action="store_true", help="TLS 1.3 connections")
    p.add_argument("--cafile", help="--tls: verify the server's certificate against this PEM file")
    p.add_argument("--server-name", help="--tls: the name sent as SNI and verified (default: no SNI)")
    a = p.parse_args()
    ctx = tls_context(a.cafile) if a.tls else None

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.conns + 64
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
        except (ValueError, OSError):
            pass
    req = f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\nUser-Agent: idle-conns\r\n\r\n".encode()
    held, failed, errors = [], 0, {}
    t0 = time.monotonic()
    deadline = t0 + a.hold_max
    left = a.conns
    while left > 0 and time.monotonic() < deadline:
        batch = []
        for _ in range(min(a.batch, left)):
            left -= 1
            try:
                s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if ctx:
                    # Without --server-name the IP is checked against the certificate (when
                    # verifying) and no SNI is sent, as for an IP address.
                    s = ctx.wrap_socket(s, server_hostname=a.server_name or "127.0.0.1")
                s.sendall(req)
                batch.append(s)
            except OSError as e:
                failed += 1
                errors[str(e)] = errors.get(str(e), 0) + 1
        for s in batch:
            try:
                status, rest = read_response(s, b"")
                if status != 200 or rest:
                    raise ConnectionError(f"status {status}, {len(rest)} stray bytes")
                held.append(s)
            except (OSError, ValueError, IndexError) as e:
                failed += 1
                errors[str(e)] = errors.get(str(e), 0) + 1
                s.close()
    for msg, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print(f"idle-conns: {n} x {msg}", file=sys.stderr)
    print(f"ready {len(held)} {failed} {time.monotonic() - t0:.2f}", flush=True)

    linger = struct.pack("ii", 1, 0)
    while True:
        r, _, _ = select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
        line = sys.stdin.readline() if r else ""
        cmd = line.strip()
        if cmd == "check":
            poller = select.poll()
            for s in held:
                poller.register(s, select.POLLIN | select.POLLRDHUP | select.POLLHUP | select.POLLERR)
            by_fd = {s.fileno(): s for s in held}
            closed = sum(closed_by_server(by_fd[fd]) for fd, _ in poller.poll(0))
            print(f"open {len(held) - closed} closed {closed}", flush=True)
            continue
        if cmd and cmd != "quit":
            print(f"idle-conns: unknown command {cmd!r}", file=sys.stderr)
            continue
        break
    for s in held:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        except OSError:
            pass
        s.close()


if __name__ == "__main__":
    main()

"""WebSocket APIs (`protocol: websocket`): the handshake and $connect (refusals, authorizers),
route selection ($request.body.action, $default, AWS's Forbidden frame), two-way routes over
mock and http_proxy integrations, $disconnect on close and on a dropped connection, the
limits and the idle timeout, and RFC 6455 done strictly (every close code, fragmentation,
masking, ping/pong, permessage-deflate declined). Real clients: websocket-client, and raw
frames from tests/support/wsraw.py."""

import json
import socket
import struct
import time

import pytest
import websocket  # websocket-client

from authorizer import Authorizer
from conftest import log_with
from wsraw import RawWs, frame


def ws_api(origin, **extra):
    api = {
        "name": "chat",
        "protocol": "websocket",
        "integrations": {
            "hello": {"type": "mock", "status": 200, "body": "hello from $default"},
            "echo": {"type": "mock", "status": 200, "body": "{\"echoed\":true}"},
            "backend": {"type": "http_proxy", "uri": f"http://{origin.addr}/join"},
            "bye": {"type": "http_proxy", "uri": f"http://{origin.addr}/disconnect"},
            "welcome": {"type": "http_proxy", "uri": f"http://{origin.addr}/connect"},
        },
        "routes": [
            {"key": "$connect", "integration": "welcome"},
            {"key": "$disconnect", "integration": "bye"},
            {"key": "$default", "integration": "hello", "route_response_selection_expression": "$default"},
            {"key": "echo", "integration": "echo", "route_response_selection_expression": "$default"},
            {"key": "join", "integration": "backend", "route_response_selection_expression": "$default"},
            {"key": "fire", "integration": "backend"},
        ],
        "stages": [{"name": "prod"}],
    }
    api.update(extra)
    return api


def start(gateway, *apis, workers=1):
    return gateway({"gateway": {"throttle": "off", "workers": workers}, "apis": list(apis)})


def connect(g, path="/prod", **kw):
    return websocket.create_connection(f"ws://127.0.0.1:{g.port}{path}", timeout=5, **kw)


def seen(origin, path, timeout=3.0):
    """The requests the origin got on `path`, once there is at least one."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        hits = [r for r in origin.requests if r.target.split("?")[0] == path]
        if hits:
            return hits
        time.sleep(0.02)
    return []


def test_routes_by_action_with_two_way_answers(gateway, origin):
    g = start(gateway, ws_api(origin))
    ws = connect(g)
    ws.send(json.dumps({"action": "echo"}))
    assert json.loads(ws.recv()) == {"echoed": True}
    ws.send(json.dumps({"action": "join", "room": "a"}))
    answer = json.loads(ws.recv())
    assert answer["method"] == "POST"
    [join] = seen(origin, "/join")
    assert join.method == "POST"
    assert join.body == b'{"action": "join", "room": "a"}'
    [conn_id] = join.header("connectionId")
    assert len(conn_id) == 16 and conn_id.endswith("=")
    assert join.header("routeKey") == ["join"]
    # $connect went to its integration with the same id.
    [connected] = seen(origin, "/connect")
    assert connected.header("connectionId") == [conn_id]
    assert connected.header("eventType") == ["CONNECT"]
    # A one-way route answers nothing: the next frame is the echo's.
    ws.send(json.dumps({"action": "fire"}))
    ws.send(json.dumps({"action": "echo"}))
    assert json.loads(ws.recv()) == {"echoed": True}
    assert len(seen(origin, "/join")) == 2
    ws.close()


def test_default_route_takes_non_json_and_unknown_actions(gateway, origin):
    g = start(gateway, ws_api(origin))
    ws = connect(g)
    for msg in ["not json", json.dumps({"action": "nope"}), json.dumps({"other": 1}), "{\"action\": {\"a\": 1}}"]:
        ws.send(msg)
        assert ws.recv() == "hello from $default"
    ws.close()


def test_no_default_route_gets_the_forbidden_frame(gateway, origin):
    api = ws_api(origin)
    api["routes"] = [r for r in api["routes"] if r["key"] != "$default"]
    g = start(gateway, api)
    ws = connect(g)
    ws.send("hello?")
    err = json.loads(ws.recv())
    assert err["message"] == "Forbidden"
    assert len(err["connectionId"]) == 16 and err["requestId"]
    ws.close()


def test_route_selection_expression_combinations(gateway, origin):
    api = ws_api(origin, route_selection_expression="${request.body.service}/${request.body.kind}")
    api["routes"].append({"key": "chat/post", "integration": "echo", "route_response_selection_expression": "$default"})
    g = start(gateway, api)
    ws = connect(g)
    ws.send(json.dumps({"service": "chat", "kind": "post"}))
    assert ws.recv() == '{"echoed":true}'
    ws.send(json.dumps({"service": "chat"}))
    assert ws.recv() == "hello from $default"
    ws.close()


def test_connect_refused_with_the_integrations_status(gateway, origin):
    api = ws_api(origin)
    api["integrations"]["welcome"] = {"type": "mock", "status": 403, "body": "{\"message\":\"go away\"}"}
    g = start(gateway, api)
    raw = RawWs(g.port)
    assert raw.status == 403
    assert raw.headers.get("upgrade") is None
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(g)
    assert e.value.status_code == 403
    # A backend answering 500 on $connect refuses too.
    api["integrations"]["welcome"] = {"type": "http_proxy", "uri": f"http://{origin.addr}/status/500"}
    g2 = start(gateway, api)
    assert RawWs(g2.port).status == 500


def test_connect_runs_the_authorizer(gateway, origin):
    a = Authorizer()
    try:
        api = ws_api(origin)
        api["authorizers"] = {
            "simple": {
                "type": "request",
                "uri": a.uri,
                "enable_simple_responses": True,
                "identity_source": ["$request.header.Authorization"],
                "result_ttl": 0,
            }
        }
        api["routes"][0]["authorizer"] = "simple"
        g = start(gateway, api)
        assert RawWs(g.port).status == 401  # no identity: refused without a call
        assert RawWs(g.port, headers=["Authorization: deny"]).status == 403
        assert not seen(origin, "/connect", timeout=0.3)
        ws = connect(g, header=["Authorization: allow"])
        ws.send(json.dumps({"action": "echo"}))
        assert ws.recv() == '{"echoed":true}'
        assert len(seen(origin, "/connect")) == 1
        ws.close()
    finally:
        a.stop()


def test_connect_authorizer_policies_name_the_route_arn_as_aws(gateway, origin):
    """AWS gives a WebSocket $connect authorizer `.../{api}/{stage}/$connect`; a blueprint
    that allows exactly that must let the client in."""
    a = Authorizer()
    try:
        api = ws_api(origin)
        api["authorizers"] = {
            "iam": {"type": "request", "uri": a.uri, "payload_format": "1.0", "identity_source": ["$request.header.Authorization"], "result_ttl": 0}
        }
        api["routes"][0]["authorizer"] = "iam"
        g = start(gateway, api)
        arn = "arn:aws:execute-api:us-east-1:000000000000:chat/prod/$connect"
        ws = connect(g, header=[f"Authorization: iam-allow:{arn}"])
        ws.close()
        assert a.events[-1]["methodArn"] == arn
        assert RawWs(g.port, headers=["Authorization: iam-allow:arn:aws:execute-api:us-east-1:000000000000:chat/prod/sendmessage"]).status == 403
    finally:
        a.stop()


def test_authorizers_only_on_connect(gateway, origin, tmp_path):
    api = ws_api(origin)
    api["authorizers"] = {"simple": {"type": "request", "uri": "http://127.0.0.1:9/a", "identity_source": ["$request.header.Authorization"]}}
    api["routes"][2]["authorizer"] = "simple"
    with pytest.raises(RuntimeError, match="authorizes only its \\$connect"):
        gateway({"apis": [api]})


def test_disconnect_on_close_and_on_a_dropped_connection(gateway, origin):
    g = start(gateway, ws_api(origin))
    ws = connect(g)
    ws.send(json.dumps({"action": "echo"}))
    ws.recv()
    ws.close(status=4001)
    [bye] = seen(origin, "/disconnect")
    assert bye.header("eventType") == ["DISCONNECT"]
    origin.reset()
    raw = RawWs(g.port)
    assert raw.status == 101
    raw.sock.close()  # no close frame: the TCP connection just goes
    assert len(seen(origin, "/disconnect")) == 1


def test_ping_is_answered_with_pong(gateway, origin):
    g = start(gateway, ws_api(origin))
    raw = RawWs(g.port)
    raw.send(frame(0x9, b"are you there"))
    assert raw.recv_frame() == (0xA, b"are you there")
    # An unsolicited pong is ignored.
    raw.send(frame(0xA, b"x"))
    raw.send_text(json.dumps({"action": "echo"}))
    assert raw.recv_frame() == (0x1, b'{"echoed":true}')


@pytest.mark.parametrize(
    "what,data,code",
    [
        ("RSV1 without permessage-deflate", frame(0x1, b"x", rsv=4), 1002),
        ("RSV2", frame(0x1, b"x", rsv=2), 1002),
        ("reserved opcode", frame(0x3, b""), 1002),
        ("reserved control opcode", frame(0xB, b""), 1002),
        ("fragmented ping", frame(0x9, b"", fin=False), 1002),
        ("ping of 126 bytes", frame(0x9, b"x" * 126), 1002),
        ("unmasked client frame", frame(0x1, b"x", masked=False), 1002),
        ("continuation of nothing", frame(0x0, b"x"), 1002),
        ("new message inside a fragmented one", frame(0x1, b"a", fin=False) + frame(0x1, b"b"), 1002),
        ("invalid close code", frame(0x8, struct.pack(">H", 1005)), 1002),
        ("invalid UTF-8", frame(0x1, b"\xce\xba\xff"), 1007),
        ("invalid UTF-8 split over fragments", frame(0x1, b"a\xc0", fin=False) + frame(0x0, b"\x80"), 1007),
        ("frame over the limit", frame(0x2, b"x" * 1025), 1009),
        ("message over the limit", frame(0x2, b"x" * 1000, fin=False) + frame(0x0, b"x" * 1000, fin=False) + frame(0x0, b"x" * 100), 1009),
    ],
)
def test_violations_close_with_their_code(gateway, origin, what, data, code):
    api = ws_api(origin, websocket={"max_frame_bytes": 1024, "max_message_bytes": 2048})
    g = start(gateway, api)
    raw = RawWs(g.port)
    assert raw.status == 101
    raw.send(data)
    got, _ = raw.recv_close()
    assert got == code, what
    assert raw.closed()
    # $disconnect is told the code.
    assert seen(origin, "/disconnect")


def test_fragments_are_reassembled_around_control_frames(gateway, origin):
    g = start(gateway, ws_api(origin))
    raw = RawWs(g.port)
    msg = json.dumps({"action": "echo", "pad": "κ" * 20000}).encode()  # over one 32 KiB frame
    pieces = [msg[i : i + 7000] for i in range(0, len(msg), 7000)]
    for i, p in enumerate(pieces):
        raw.send(frame(0x1 if i == 0 else 0x0, p, fin=i == len(pieces) - 1))
        if i == 1:
            raw.send(frame(0x9, b"mid"))
    assert raw.recv_frame() == (0xA, b"mid")
    assert raw.recv_frame() == (0x1, b'{"echoed":true}')


def test_limits_default_to_aws(gateway, origin):
    g = start(gateway, ws_api(origin))
    raw = RawWs(g.port)
    raw.send(frame(0x2, b"x" * (32 * 1024)))  # a 32 KiB frame is fine
    assert raw.recv_frame() == (0x1, b"hello from $default")
    raw.send(frame(0x2, b"x" * (32 * 1024 + 1)))
    assert raw.recv_close()[0] == 1009


def test_client_close_is_echoed(gateway, origin):
    g = start(gateway, ws_api(origin))
    raw = RawWs(g.port)
    raw.send(frame(0x8, struct.pack(">H", 4000) + b"done"))
    assert raw.recv_close() == (4000, "")
    assert raw.closed()


def test_idle_timeout_closes_with_1001(gateway, origin):
    g = start(gateway, ws_api(origin, websocket={"idle_timeout_ms": 1000}))
    raw = RawWs(g.port)
    t = time.time()
    raw.send(frame(0x9, b"pings do not count"))
    assert raw.recv_frame()[0] == 0xA
    assert raw.recv_close()[0] == 1001
    assert 0.9 < time.time() - t < 3
    assert seen(origin, "/disconnect")


def test_max_duration_closes_active_connections(gateway, origin):
    g = start(gateway, ws_api(origin, websocket={"idle_timeout_ms": 5000, "max_duration_ms": 1500}))
    ws = connect(g)
    t = time.time()
    with pytest.raises((websocket.WebSocketException, OSError)):
        while time.time() - t < 5:
            ws.send(json.dumps({"action": "echo"}))
            ws.recv()
            time.sleep(0.2)
    assert 1.4 < time.time() - t < 3


def test_handshake_checks(gateway, origin):
    g = start(gateway, ws_api(origin))
    # A plain request to a WebSocket API: 426.
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(b"GET /prod HTTP/1.1\r\nHost: x\r\n\r\n")
    plain = s.recv(4096)
    assert plain.startswith(b"HTTP/1.1 426 ") and b"Upgrade: websocket\r\n" in plain
    raw = RawWs(g.port, headers=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"])
    assert raw.status == 101
    assert "sec-websocket-extensions" not in raw.headers  # declined
    raw.send(frame(0x1, b"x", rsv=4))  # so a compressed frame is a protocol error
    assert raw.recv_close()[0] == 1002
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(
        b"GET /prod HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
    )
    answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13\r\n" in answer
    assert b"Upgrade: websocket\r\n" in answer, "a 426 names the protocol (RFC 9110 15.5.22)"
    # The RFC's example key gets the RFC's accept value.
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(
        b"GET /prod HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in s.recv(4096)


def test_connection_ids_are_unique_across_workers(gateway, origin):
    g = start(gateway, ws_api(origin), workers=2)
    conns = [connect(g) for _ in range(20)]
    ids = [r.header("connectionId")[0] for r in seen(origin, "/connect")]
    deadline = time.time() + 3
    while len(ids) < 20 and time.time() < deadline:
        time.sleep(0.05)
        ids = [r.header("connectionId")[0] for r in origin.requests if r.target == "/connect"]
    assert len(set(ids)) == 20
    for c in conns:
        c.close()


# --- access logs ---------------------------------------------------------------------------

WS_LOG = (
    '{"requestId":"$context.requestId","eventType":"$context.eventType",'
    '"connectionId":"$context.connectionId","routeKey":"$context.routeKey",'
    '"messageId":"$context.messageId","connectedAt":"$context.connectedAt",'
    '"requestTimeEpoch":"$context.requestTimeEpoch","status":"$context.status",'
    '"error":"$context.error.message","ip":"$context.identity.sourceIp",'
    '"stage":"$context.stage","apiId":"$context.apiId",'
    '"integrationLatency":"$context.integrationLatency","integrationStatus":"$context.integrationStatus",'
    '"code":"$context.disconnectStatusCode","reason":"$context.disconnectReason",'
    '"user":"$context.authorizer.userId"}'
)


def logged(api, path):
    api["stages"] = [{"name": "prod", "access_log": {"destination": str(path), "format": WS_LOG}}]
    return api


def log_lines(path, *needles):
    return [json.loads(line) for line in log_with(path, *needles).splitlines()]


def test_access_log_has_a_line_per_connect_message_and_disconnect(gateway, origin, tmp_path):
    path = tmp_path / "ws-access.log"
    g = start(gateway, logged(ws_api(origin), path))
    t = int(time.time() * 1000)
    ws = connect(g)
    ws.send(json.dumps({"action": "echo"}))
    ws.recv()
    ws.send(json.dumps({"action": "join"}))
    ws.recv()
    ws.send("not json")
    ws.recv()
    ws.close(status=4001)
    lines = log_lines(path, '"DISCONNECT"')
    kinds = [(l["eventType"], l["routeKey"]) for l in lines]
    assert kinds == [
        ("CONNECT", "$connect"),
        ("MESSAGE", "echo"),
        ("MESSAGE", "join"),
        ("MESSAGE", "$default"),
        ("DISCONNECT", "$disconnect"),
    ], lines
    [conn_id] = seen(origin, "/connect")[0].header("connectionId")
    for l in lines:
        assert l["connectionId"] == conn_id
        assert l["ip"] == "127.0.0.1" and l["stage"] == "prod" and l["apiId"] == "chat"
        assert l["status"] == "200" and l["error"] == "-"
        assert int(l["connectedAt"]) == int(lines[0]["connectedAt"])
        # Milliseconds, as AWS logs WebSocket events.
        assert t - 1000 <= int(l["requestTimeEpoch"]) <= t + 60_000
        assert l["requestId"] != "-"
    connected, echo, join, default, bye = lines
    assert t - 1000 <= int(connected["connectedAt"]) <= int(echo["requestTimeEpoch"])
    assert connected["messageId"] == "-" and bye["messageId"] == "-"
    assert len({echo["messageId"], join["messageId"], default["messageId"]}) == 3
    # The http_proxy integration's status and latency (a mock takes no time worth a ms).
    assert join["integrationStatus"] == "200" and join["integrationLatency"].isdigit()
    assert connected["integrationStatus"] == "200"
    assert (bye["code"], bye["reason"]) == ("4001", "Client closed")
    assert echo["code"] == "-"


def test_access_log_records_refused_handshakes_and_unrouted_messages(gateway, origin, tmp_path):
    a = Authorizer()
    try:
        path = tmp_path / "ws-access.log"
        api = logged(ws_api(origin), path)
        api["authorizers"] = {
            "simple": {
                "type": "request",
                "uri": a.uri,
                "enable_simple_responses": True,
                "identity_source": ["$request.header.Authorization"],
                "result_ttl": 0,
            }
        }
        api["routes"][0]["authorizer"] = "simple"
        api["routes"] = [r for r in api["routes"] if r["key"] != "$default"]
        g = start(gateway, api)
        assert RawWs(g.port).status == 401
        assert RawWs(g.port, headers=["Authorization: deny"]).status == 403
        ws = connect(g, header=["Authorization: allow"])
        ws.send("no route takes this")
        assert json.loads(ws.recv())["message"] == "Forbidden"
        ws.close()
        lines = log_lines(path, '"DISCONNECT"')
        connects = [l for l in lines if l["eventType"] == "CONNECT"]
        assert [(l["status"], l["error"]) for l in connects] == [
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("200", "-"),
        ]
        # A refused connection has an id (its events would have), but was never connected.
        assert all(len(l["connectionId"]) == 16 for l in connects)
        assert connects[0]["integrationStatus"] == "-"
        [msg] = [l for l in lines if l["eventType"] == "MESSAGE"]
        assert (msg["routeKey"], msg["status"], msg["error"]) == ("-", "403", "Forbidden")
        # The $connect authorizer's context is every event's.
        assert msg["user"] == "user_123"
        assert connects[2]["user"] == "user_123"
    finally:
        a.stop()
    # A $connect integration's refusal, and a malformed handshake.
    path2 = tmp_path / "ws-access-2.log"
    api = logged(ws_api(origin), path2)
    api["integrations"]["welcome"] = {"type": "http_proxy", "uri": f"http://{origin.addr}/status/500"}
    g = start(gateway, api)
    assert RawWs(g.port).status == 500
    s = socket.create_connection(("127.0.0.1", g.port))
    s.sendall(b"GET /prod HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 426 ")
    lines = log_lines(path2, '"426"')
    assert [(l["eventType"], l["status"], l["integrationStatus"]) for l in lines] == [
        ("CONNECT", "500", "500"),
        ("CONNECT", "426", "-"),
    ]
    assert lines[1]["connectionId"] == "-" and lines[1]["error"] == "Upgrade Required"


# --- throttling -----------------------------------------------------------------------------


def test_a_throttled_message_gets_the_error_frame_and_the_connection_stays(gateway, origin, tmp_path):
    path = tmp_path / "ws-access.log"
    api = logged(ws_api(origin), path)
    api["stages"][0]["route_settings"] = {"echo": {"throttle": {"rate_limit": 0.01, "burst_limit": 2}}}
    g = start(gateway, api)
    ws = connect(g)
    for _ in range(2):
        ws.send(json.dumps({"action": "echo"}))
        assert ws.recv() == '{"echoed":true}'
    ws.send(json.dumps({"action": "echo"}))
    err = json.loads(ws.recv())
    assert err["message"] == "Too Many Requests"
    assert len(err["connectionId"]) == 16 and err["requestId"]
    # The connection stays open, other routes are not throttled.
    ws.send("hello?")
    assert ws.recv() == "hello from $default"
    ws.send(json.dumps({"action": "echo"}))
    assert json.loads(ws.recv())["message"] == "Too Many Requests"
    ws.close()
    lines = log_lines(path, '"DISCONNECT"')
    echo = [(l["status"], l["error"]) for l in lines if l["routeKey"] == "echo"]
    assert echo == [("200", "-"), ("200", "-"), ("429", "Too Many Requests"), ("429", "Too Many Requests")]
    metrics = g.admin("GET", "/metrics").text
    throttled = [l for l in metrics.splitlines() if l.startswith("turnpike_throttled_requests_total{") and 'route="echo"' in l]
    assert throttled and throttled[0].endswith(" 2"), throttled


def test_the_stage_default_throttle_applies_to_each_websocket_route(gateway, origin):
    api = ws_api(origin)
    api["stages"][0]["throttle"] = {"rate_limit": 0.01, "burst_limit": 1}
    g = start(gateway, api)
    ws = connect(g)  # $connect has a bucket of its own
    ws.send(json.dumps({"action": "echo"}))
    assert ws.recv() == '{"echoed":true}'
    ws.send("x")
    assert ws.recv() == "hello from $default"  # $default's own bucket
    ws.send(json.dumps({"action": "echo"}))
    assert json.loads(ws.recv())["message"] == "Too Many Requests"
    ws.close()


def test_a_throttled_connect_gets_429(gateway, origin):
    api = ws_api(origin)
    api["stages"][0]["route_settings"] = {"$connect": {"throttle": {"rate_limit": 0.01, "burst_limit": 1}}}
    g = start(gateway, api)
    ws = connect(g)
    raw = RawWs(g.port)
    assert raw.status == 429
    assert raw.headers.get("upgrade") is None
    assert int(raw.headers["retry-after"]) >= 1
    n = int(raw.headers["content-length"])
    raw._need(n)
    assert json.loads(raw.buf[:n]) == {"message": "Too Many Requests"}
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(g)
    assert e.value.status_code == 429
    # The $connect integration was called once: throttling comes first.
    assert len(seen(origin, "/connect")) == 1
    # The open connection is not affected.
    ws.send(json.dumps({"action": "echo"}))
    assert ws.recv() == '{"echoed":true}'
    ws.close()


def test_route_settings_must_name_a_websocket_route(gateway, origin):
    api = ws_api(origin)
    api["stages"][0]["route_settings"] = {"nope": {"throttle": {"rate_limit": 1, "burst_limit": 1}}}
    with pytest.raises(RuntimeError, match="no route \"nope\""):
        gateway({"apis": [api]})


# --- $connect over http_proxy, subprotocols ------------------------------------------------


def test_connect_sends_the_handshake_to_an_http_proxy_backend(gateway, origin):
    api = ws_api(origin)
    api["integrations"]["welcome"]["uri"] = f"http://{origin.addr}/connect?fixed=1"
    g = start(gateway, api)
    ws = connect(
        g,
        path="/prod?room=a&token=t%201",
        header=[
            "X-Token: abc",
            "Authorization: Bearer xyz",
            "connectionId: spoofed",
            "X-Forwarded-For: 203.0.113.9",
            "Sec-WebSocket-Protocol: chat, superchat",
        ],
        subprotocols=None,
    )
    [c] = seen(origin, "/connect")
    assert c.method == "POST"
    assert c.target == "/connect?fixed=1&room=a&token=t%201"
    assert c.header("X-Token") == ["abc"]
    assert c.header("Authorization") == ["Bearer xyz"]
    assert c.header("Sec-WebSocket-Protocol") == ["chat, superchat"]
    assert c.header("eventType") == ["CONNECT"] and c.header("routeKey") == ["$connect"]
    [cid] = c.header("connectionId")
    assert cid != "spoofed" and len(cid) == 16
    assert c.header("X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    for gone in ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Upgrade", "Connection"]:
        assert c.header(gone) in ([], ["keep-alive"]), gone
    assert c.header("Host") == [origin.addr]
    # Messages carry no handshake headers.
    ws.send(json.dumps({"action": "join"}))
    ws.recv()
    [join] = seen(origin, "/join")
    assert not join.header("X-Token") and join.target == "/join"
    ws.close()


def subprotocol_api(origin, welcome):
    api = ws_api(origin)
    api["integrations"]["welcome"] = welcome
    return api


def test_subprotocol_chosen_by_the_connect_integration(gateway, origin):
    # A mock's headers, as a function's or a backend's would.
    g = start(gateway, subprotocol_api(origin, {"type": "mock", "status": 200, "headers": {"Sec-WebSocket-Protocol": "chat"}, "body": ""}))
    ws = connect(g, subprotocols=["superchat", "chat"])
    assert ws.getsubprotocol() == "chat"
    ws.send(json.dumps({"action": "echo"}))
    assert ws.recv() == '{"echoed":true}'
    ws.close()
    # One the client did not offer (or no offer at all): refused, never a 101 the client must fail.
    for offer in (["Sec-WebSocket-Protocol: other"], []):
        raw = RawWs(g.port, headers=offer)
        assert raw.status == 502, offer
        assert raw.headers.get("sec-websocket-protocol") is None
    # An http_proxy backend's response header.
    g2 = start(gateway, subprotocol_api(origin, {"type": "http_proxy", "uri": f"http://{origin.addr}/subprotocol/v2.json"}))
    raw = RawWs(g2.port, headers=["Sec-WebSocket-Protocol: v1.json, v2.json"])
    assert raw.status == 101
    assert raw.headers["sec-websocket-protocol"] == "v2.json"
    [c] = seen(origin, "/subprotocol/v2.json")
    assert c.header("Sec-WebSocket-Protocol") == ["v1.json, v2.json"]
    assert RawWs(g2.port, headers=["Sec-WebSocket-Protocol: v1.json"]).status == 502


def test_no_subprotocol_without_the_integrations_choice(gateway, origin):
    # The integration names none: none is echoed (AWS does the same).
    g = start(gateway, ws_api(origin))
    raw = RawWs(g.port, headers=["Sec-WebSocket-Protocol: chat"])
    assert raw.status == 101
    assert "sec-websocket-protocol" not in raw.headers
    # No $connect route: never.
    api = ws_api(origin)
    api["routes"] = [r for r in api["routes"] if r["key"] != "$connect"]
    g2 = start(gateway, api)
    raw = RawWs(g2.port, headers=["Sec-WebSocket-Protocol: chat"])
    assert raw.status == 101
    assert "sec-websocket-protocol" not in raw.headers


# --- the @connections management API ---------------------------------------------------

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


READER = "AKIAREADONLYEXAMPLE1"


def signed(method, url, body=b"", key_id=KEY_ID):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(key_id, SECRET), "execute-api", "us-east-1").add_auth(req)
    return dict(req.headers)


def managed(gateway, origin, tmp_path, workers=2):
    secret = tmp_path / "ws.secret"
    secret.write_text(SECRET)
    g = gateway(
        {
            "gateway": {"throttle": "off", "workers": workers},
            "iam": {
                "credentials": [
                    {"access_key_id": KEY_ID, "secret_file": str(secret), "principal": "ops"},
                    {
                        "access_key_id": READER,
                        "secret_file": str(secret),
                        "principal": "reader",
                        "resources": ["arn:aws:execute-api:us-east-1:000000000000:chat/prod/GET/@connections/*"],
                    },
                ]
            },
            "apis": [ws_api(origin)],
        }
    )
    return g


def conn_ids(origin, n, timeout=3.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        ids = [r.header("connectionId")[0] for r in origin.requests if r.target == "/connect"]
        if len(ids) >= n:
            return ids
        time.sleep(0.02)
    raise AssertionError("not all connections were seen by $connect")


def test_connections_api_on_the_admin_port_across_cores(gateway, origin, tmp_path):
    import requests

    g = managed(gateway, origin, tmp_path, workers=2)
    clients = [connect(g, header=["User-Agent: tester/1"]) for _ in range(8)]
    ids = conn_ids(origin, 8)
    # The ids name both cores: the admin thread reaches each over its core's inbox.
    for ws, cid in zip(clients, ids):
        pass
    by_id = {}
    for cid in ids:
        r = g.admin("GET", f"/v1/connections/{cid}")
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "tester/1"}
        assert info["connectedAt"].endswith("Z") and info["lastActiveAt"]
        by_id[cid] = info
    # POST reaches the right client, whichever core holds it.
    for cid in ids:
        assert g.admin("POST", f"/v1/connections/{cid}", data=f"to {cid}".encode()).status_code == 200
    got = sorted(ws.recv() for ws in clients)
    assert got == sorted(f"to {cid}" for cid in ids)
    # DELETE closes; the id is then gone.
    assert g.admin("DELETE", f"/v1/connections/{ids[0]}").status_code == 204
    with pytest.raises((websocket.WebSocketException, OSError)):
        clients[0].recv()
        clients[0].recv()
    deadline = time.time() + 2
    while g.admin("GET", f"/v1/connections/{ids[0]}").status_code != 410 and time.time() < deadline:
        time.sleep(0.05)
    assert g.admin("GET", f"/v1/connections/{ids[0]}").status_code == 410
    assert g.admin("POST", "/v1/connections/AAAAAAAAAAAAAAA=", data=b"x").status_code == 410
    assert g.admin("GET", "/v1/connections/nonsense").status_code == 410
    assert requests.get(g.admin_url(f"/v1/connections/{ids[1]}")).status_code == 401
    for ws in clients[1:]:
        ws.close()


def test_connections_api_on_the_gateway_with_sigv4(gateway, origin, tmp_path):
    import requests

    g = managed(gateway, origin, tmp_path, workers=2)
    clients = [connect(g) for _ in range(4)]
    ids = conn_ids(origin, 4)
    for cid in ids:
        url = g.url(f"/prod/@connections/{cid}")
        r = requests.post(url, data=b"hi " + cid.encode(), headers=signed("POST", url, b"hi " + cid.encode()))
        assert r.status_code == 200, r.text
        r = requests.get(url, headers=signed("GET", url))
        assert r.status_code == 200, r.text
        assert r.json()["identity"]["sourceIp"] == "127.0.0.1"
    assert sorted(ws.recv() for ws in clients) == sorted(f"hi {cid}" for cid in ids)
    url = g.url(f"/prod/@connections/{ids[0]}")
    # A credential limited to GET @connections (AWS's ARN: api/stage/METHOD/@connections/id).
    assert requests.get(url, headers=signed("GET", url, key_id=READER)).status_code == 200
    assert requests.post(url, data=b"x", headers=signed("POST", url, b"x", key_id=READER)).status_code == 403
    # Unsigned: AWS's 403.
    r = requests.post(url, data=b"x")
    assert r.status_code == 403
    assert r.json()["message"] == "Missing Authentication Token"
    r = requests.delete(url, headers=signed("DELETE", url))
    assert r.status_code == 204
    with pytest.raises((websocket.WebSocketException, OSError)):
        clients[0].recv()
        clients[0].recv()
    time.sleep(0.3)
    r = requests.get(url, headers=signed("GET", url))
    assert r.status_code == 410
    for ws in clients[1:]:
        ws.close()


def test_the_gateways_connections_api_reaches_only_its_own_apis_connections(gateway, origin, tmp_path):
    """On AWS a callback URL belongs to one API: another API's @connections gets 410."""
    import requests

    secret = tmp_path / "ws.secret"
    secret.write_text(SECRET)
    other = ws_api(origin, name="room")
    g = gateway(
        {
            "gateway": {"throttle": "off", "workers": 1},
            "iam": {"credentials": [{"access_key_id": KEY_ID, "secret_file": str(secret), "principal": "ops"}]},
            "domains": [
                {"name": "chat.test", "mappings": [{"api": "chat", "stage": "prod", "base_path": ""}]},
                {"name": "room.test", "mappings": [{"api": "room", "stage": "prod", "base_path": ""}]},
            ],
            "apis": [ws_api(origin), other],
        }
    )
    ws = connect(g, path="/", host="chat.test")
    (cid,) = conn_ids(origin, 1)
    for host, status in [("room.test", 410), ("chat.test", 200)]:
        url = g.url(f"/@connections/{cid}")
        headers = {"Host": host}
        signed_headers = signed("GET", f"http://{host}/@connections/{cid}")
        r = requests.get(url, headers={**signed_headers, **headers})
        assert r.status_code == status, (host, r.status_code, r.text)
    # The admin port manages every API's connections.
    assert g.admin("GET", f"/v1/connections/{cid}").status_code == 200
    ws.close()


# --- WebSocket upgrades proxied by HTTP APIs --------------------------------------------------


def test_http_api_tunnels_websocket_upgrades_to_its_backend(gateway, origin):
    # The backend is a second gateway serving a WebSocket API.
    backend = start(gateway, ws_api(origin))
    front = gateway(
        {
            "gateway": {"throttle": "off"},
            "apis": [
                {
                    "name": "site",
                    "integrations": {
                        "ws": {"type": "http_proxy", "uri": f"http://127.0.0.1:{backend.port}"},
                        "plain": {"type": "http_proxy", "uri": f"http://{origin.addr}"},
                    },
                    "routes": [
                        {"key": "GET /prod", "integration": "ws"},
                        {"key": "$default", "integration": "plain"},
                    ],
                    "stages": [{"name": "$default"}],
                }
            ],
        }
    )
    ws = connect(front)
    ws.send(json.dumps({"action": "echo"}))
    assert json.loads(ws.recv()) == {"echoed": True}
    ws.send("x" * 30_000)  # larger than one read: the bytes pass in pieces
    assert ws.recv() == "hello from $default"
    ws.ping(b"p")
    ws.close()
    assert seen(origin, "/disconnect")  # the close went through to the backend
    # Close codes come from the backend, through the tunnel.
    raw = RawWs(front.port)
    assert raw.status == 101
    raw.send(frame(0x1, b"\xff"))
    assert raw.recv_close()[0] == 1007
    assert raw.closed()
    # A backend that does not switch protocols: its answer is relayed and the connection closes.
    raw = RawWs(front.port, path="/status/403")
    assert raw.status == 403
    assert raw.headers.get("connection") == "close"
    [seen_req] = [r for r in origin.requests if r.target == "/status/403"]
    assert seen_req.header("Upgrade") == ["websocket"]
    # Plain requests on the same API are unaffected.
    import requests

    assert requests.get(front.url("/anything")).status_code == 200


def test_http_api_tunnel_carries_megabytes_both_ways_under_backpressure(gateway):
    """After the 101 the tunnel copies bytes untouched: 8 MB each way, with the client not
    reading for a while, so every buffer on the way fills and the tunnel waits for room."""
    import base64
    import hashlib
    import os
    import threading

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    def backend():
        c, _ = lsock.accept()
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.recv(4096)
        head, _, rest = head.partition(b"\r\n\r\n")
        key = next(v.strip() for k, _, v in (l.partition(b":") for l in head.split(b"\r\n")) if k.lower() == b"sec-websocket-key")
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + rest)
        while d := c.recv(65536):
            c.sendall(d)  # a byte echo: the tunnel does not read frames
        c.close()

    threading.Thread(target=backend, daemon=True).start()
    g = gateway(
        {
            "gateway": {"throttle": "off"},
            "apis": [
                {
                    "name": "site",
                    "integrations": {"ws": {"type": "http_proxy", "uri": f"http://127.0.0.1:{lsock.getsockname()[1]}"}},
                    "routes": [{"key": "$default", "integration": "ws"}],
                    "stages": [{"name": "$default"}],
                }
            ],
        }
    )
    raw = RawWs(g.port, path="/")
    assert raw.status == 101
    payload = os.urandom(8 << 20)
    got = bytearray(raw.buf)
    raw.sock.settimeout(20)

    def reader():
        time.sleep(1.0)  # let every buffer fill first
        while len(got) < len(payload):
            d = raw.sock.recv(1 << 20)
            if not d:
                break
            got.extend(d)

    t = threading.Thread(target=reader)
    t.start()
    raw.sock.sendall(payload)
    t.join(30)
    assert len(got) == len(payload) and bytes(got) == payload
    # A drain closes an open tunnel at once rather than waiting for it to idle out.
    started = time.time()
    assert g.terminate(timeout=15) == 0
    assert time.time() - started < 5
    assert raw.sock.recv(1) == b""
    lsock.close()


def test_drain_closes_websockets_with_1001(gateway, origin):
    import signal

    g = start(gateway, ws_api(origin))
    raw = RawWs(g.port)
    assert raw.status == 101
    t = time.time()
    g.proc.send_signal(signal.SIGTERM)
    assert raw.recv_close()[0] == 1001
    assert g.proc.wait(10) == 0
    assert time.time() - t < 5


def test_function_integration_gets_awss_websocket_events(gateway, origin, tmp_path):
    """The events validate against aws-lambda-powertools' models of API Gateway's WebSocket
    events (strict pydantic models of what AWS sends)."""
    import os
    import sys

    from aws_lambda_powertools.utilities.parser.models import (
        APIGatewayWebSocketConnectEventModel,
        APIGatewayWebSocketDisconnectEventModel,
        APIGatewayWebSocketMessageEventModel,
    )

    here = os.path.join(os.path.dirname(__file__), "support", "functions")
    events = tmp_path / "events"
    events.mkdir()
    api = ws_api(origin)
    api["integrations"]["fn"] = {"type": "function", "function": "ws-fn"}
    api["routes"][0]["integration"] = "fn"
    api["routes"][1]["integration"] = "fn"
    api["routes"].append({"key": "fn", "integration": "fn", "route_response_selection_expression": "$default"})
    g = gateway(
        {
            "gateway": {"throttle": "off"},
            "functions": [
                {
                    "name": "ws-fn",
                    "command": [sys.executable, "-m", "awslambdaric", "websocket.handler"],
                    "working_dir": here,
                    "environment": {"EVENTS_DIR": str(events)},
                    "timeout_ms": 10000,
                }
            ],
            "apis": [api],
        }
    )
    assert RawWs(g.port, path="/prod?deny=1", timeout=30).status == 403
    # The function sees the offered subprotocols and chooses one (AWS's subprotocol example).
    chosen = connect(g, path="/prod?subprotocol=fn.v1", subprotocols=["fn.v0", "fn.v1"])
    assert chosen.getsubprotocol() == "fn.v1"
    chosen.close()
    ws = connect(g, header=["User-Agent: ws-test"])
    ws.settimeout(30)
    ws.send(json.dumps({"action": "fn", "x": 1}))
    event = json.loads(ws.recv())["event"]
    msg = APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert msg.request_context.event_type == "MESSAGE"
    assert msg.request_context.route_key == "fn"
    assert msg.request_context.stage == "prod"
    assert json.loads(event["body"]) == {"action": "fn", "x": 1}
    cid = event["requestContext"]["connectionId"]
    assert event["requestContext"]["messageId"]
    assert event["requestContext"]["identity"]["userAgent"] == "ws-test"
    ws.send(b"\x00\x01", opcode=websocket.ABNF.OPCODE_BINARY)
    assert ws.recv() == "hello from $default"
    ws.close()
    deadline = time.time() + 20
    while not (events / f"DISCONNECT-{cid}.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    connect_event = json.loads((events / f"CONNECT-{cid}.json").read_text())
    c = APIGatewayWebSocketConnectEventModel.model_validate(connect_event)
    assert c.request_context.event_type == "CONNECT" and c.request_context.route_key == "$connect"
    assert connect_event["headers"]["User-Agent"] == "ws-test"
    d = json.loads((events / f"DISCONNECT-{cid}.json").read_text())
    dm = APIGatewayWebSocketDisconnectEventModel.model_validate(d)
    assert dm.request_context.event_type == "DISCONNECT"
    assert d["requestContext"]["disconnectStatusCode"] == 1000

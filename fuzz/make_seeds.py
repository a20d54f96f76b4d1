#!/usr/bin/env python3
"""Writes the seed corpora under corpus/<target>/ (seed-* files; fuzzing adds its own).

template gets AWS-style templates (mode byte 0) and bodies (mode byte 1); jsonpath gets
paths with their documents. Seeds for request_stream are the llhttp fixture requests in tests/data/llhttp-cases.json
(each "raw" is latin-1: one char per byte), as they are and with a Host header added (most
fixtures are HTTP/1.1 without one, which turnpike refuses before any body is read), plus
hand-written ones. chunked gets the bodies of the chunked fixtures; response_head gets
hand-written responses. Every seed starts with the control byte and piece sizes described in
src/lib.rs (Input). Run from anywhere: python3 fuzz/make_seeds.py
"""
import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
CASES = FUZZ.parent / "tests" / "data" / "llhttp-cases.json"
# Piece sizes cycled over the seeds so each starts with a different cut (() = byte by byte).
CUTS = [(), (7,), (3, 11), (64,), (1, 2, 5), (256,), (13, 1)]


def encode(flags, pieces, stream):
    assert len(pieces) < 8 and flags < 32
    return bytes([(flags << 3) | len(pieces)] + [p - 1 for p in pieces]) + stream


def with_host(raw):
    start = 0
    while raw[start:].startswith(b"\r\n"):
        start += 2
    eol = raw.find(b"\r\n", start)
    if eol < 0:
        return None
    at = eol + 2
    return raw[:at] + b"Host: fixture.test\r\n" + raw[at:]


def write(target, name, data):
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)


REQUESTS = [
    b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
    b"5;name=value\r\nhello\r\n6;q=\"a\\\"b\"\r\n world\r\n0\r\nX-Sum: 11\r\nX-Other: y\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n"
    b"hiPUT /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
    b"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\n\r\nGET http://Example.com:8080/p?q#frag HTTP/1.1\r\nHost: ignored\r\n"
    b"Expect: 100-continue\r\nConnection: keep-alive, X-Hop\r\n\r\n",
    b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nOPTIONS * HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n",
    b"GET /%2e%2E/etc HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"GET /" + b"a" * 80 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    # dot-segments behind encoded separators, overlong UTF-8, double encoding, ;parameters,
    # each after a request that passes (an encoded slash that is data)
    b"GET /files/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\nGET /public/..%2fadmin HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p/x%5c.%2E HTTP/1.1\r\nHost: a\r\n\r\nGET /p/x%5C..%5Cy HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p/%c0%ae%c0 HTTP/1.1\r\nHost: a\r\n\r\nGET /p/%c0%ae%e0%80%ae/y HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p/100%25 HTTP/1.1\r\nHost: a\r\n\r\nGET /p/%252e%25%32%65%252f HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p/a;b=.. HTTP/1.1\r\nHost: a\r\n\r\nGET /p/..;jsessionid=1/y HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p/%2e%2e%2e HTTP/1.1\r\nHost: a\r\n\r\nGET /p/%u002e%u002e/y HTTP/1.1\r\nHost: a\r\n\r\n",
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nbody until close",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"HTTP/1.1 200 OK\nServer: bare-lf\n\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"HTTP/1.1 404\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
]
CHUNKED = [
    b"5;a=b;c=\"x\\\"y\"\r\nhello\r\n6\r\n world\r\n000\r\nVary: *\r\nX-T: 1\r\n\r\nNEXT",
    b"ffffffffffffffff\r\nab",
    b"1\r\nA\r\n0\r\n\r\n",
    b"a\r\n0123456789\r\n0;last\r\n\r\n",
    b"0\r\nX-Empty:\r\nX-Tab:\t v \r\n\r\n",
    b"2 erf\r\naa\r\n0\r\n\r\n",
]

# Mapping templates (mode byte 0, then the template) and bodies (mode byte 1, then the body).
TEMPLATES = [
    "#set($inputRoot = $input.path('$'))\n[\n#foreach($elem in $inputRoot.items)\n  {\n    \"description\" : \"Item $elem.id is a $elem.type.\",\n    \"askingPrice\" : $elem.price\n  }#if($foreach.hasNext),#end\n\n#end\n]",
    "#set($allParams = $input.params())\n{\n#foreach($type in $allParams.keySet())\n  #set($params = $allParams.get($type))\n\"$type\" : {\n  #foreach($paramName in $params.keySet())\n  \"$paramName\" : \"$util.escapeJavaScript($params.get($paramName))\"\n  #if($foreach.hasNext),#end\n  #end\n}\n#if($foreach.hasNext),#end\n#end\n}",
    "#set($inputRoot = $input.path('$'))\n$input.json(\"$\")\n#if($inputRoot.toString().contains(\"error\"))\n#set($context.responseOverride.status = 400)\n#set($context.responseOverride.header.X-Err = \"1\")\n#end\n",
    "#set($m = {'a': [1..3], \"b\": \"v=$input.params('q')\"})#set($m.c = $m.a.size() * 2 - 1 / 3 % 2)${m} $!m.nope #if($m.c >= 5 && !$m.isEmpty() or false)y#elseif(1 ne 2)n#{else}z#end",
    "#foreach($i in [1..5])#if($i == 4)#break#end$i,$foreach.index,$velocityCount#end## c\n#* b *#[[x]]#[[ $raw ]]#",
    "$util.urlEncode($input.path('$.s')) $util.urlDecode('a+b%20') $util.base64Encode($util.base64Decode('aGk=')) $util.parseJson('{\"k\": [1]}').k[0]",
    "#set($s = $input.path('$.s'))$s.length() $s.toUpperCase() $s.replaceAll('[a-z]+', '<$0>') $s.split(' ') $s.substring(1, 3) $s.indexOf('q') $s.matches('.*q.*')",
    "#set($l = [])#set($d = $l.add($input.path('$.a')))#set($d = $l.add(0, 'x'))$l.get(1).b.get(0) $l $context.requestId $stageVariables.backend $context.identity.sourceIp",
]
BODIES = [
    "",
    "{}",
    "[1, 2, 3]",
    "{\"items\": [{\"id\": 1, \"type\": \"dog\", \"price\": 249.99}], \"s\": \"x\"}",
    "{\"errors\": [{\"key\": \"k\", \"message\": \"The value is out of range.\"}]}",
    "[{\"id\": 1, \"type\": \"dog\", \"price\": 249.99}, {\"id\": 2, \"type\": \"cat\", \"price\": 124.99}]",
    "\"just a string\"",
    "not json",
    "{\"a\": 1e400}",
]
# JSONPaths: path, NUL, document.
PATHS = [
    ("$", "{\"a\": 1}"),
    ("$.a.b", "{\"a\": {\"b\": [1, 2]}}"),
    ("$['a'][0]", "{\"a\": [5, 6]}"),
    ("$.items[*].b", "{\"items\": [{\"b\": 1}, {\"b\": 2}]}"),
    ("$..b", "{\"a\": {\"b\": 1, \"c\": {\"b\": 2}}}"),
    ("$.a[-1]", "{\"a\": [1, 2, 3]}"),
    ("$.a[0:2]", "{\"a\": [1, 2, 3]}"),
    ("$.items[?(@.price < 10)].id", "{\"items\": [{\"id\": 1, \"price\": 5}, {\"id\": 2, \"price\": 50}]}"),
    ("$.content-type", "{\"content-type\": \"x\"}"),
    ("name", "{\"name\": \"n\"}"),
    ("$[?length(@.a) > 1 && match(@.b, 'x.*')]", "[{\"a\": [1, 2], \"b\": \"xy\"}]"),
    ("$['a,b', 'c']", "{\"a,b\": 1, \"c\": 2}"),
]


def ws_frame(b0, payload, mask=b"\x37\xfa\x21\x3d", masked=True):
    """A client WebSocket frame with first byte b0 (FIN, RSV, opcode)."""
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if masked else 0) | n])
    elif n <= 0xFFFF:
        head = bytes([b0, (0x80 if masked else 0) | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, (0x80 if masked else 0) | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# Frame streams: good ones (single, fragmented with control frames between, close) and one per
# violation the decoder names (RSV, opcodes, control rules, masking, UTF-8, limits).
WEBSOCKET = [
    ws_frame(0x81, b"Hello"),
    ws_frame(0x01, b"Hel") + ws_frame(0x89, b"ping") + ws_frame(0x80, b"lo"),
    ws_frame(0x82, bytes(range(200))) + ws_frame(0x8A, b"") + ws_frame(0x88, b"\x03\xe8bye"),
    ws_frame(0x01, "κό".encode()[:1]) + ws_frame(0x00, "κό".encode()[1:3]) + ws_frame(0x80, "κό".encode()[3:]),
    ws_frame(0x81, b'{"action":"join","room":"a"}') * 3,
    ws_frame(0xC1, b"deflated?"),
    ws_frame(0x83, b""),
    ws_frame(0x09, b""),
    ws_frame(0x89, bytes(126)),
    ws_frame(0x81, b"x", masked=False),
    ws_frame(0x80, b"orphan"),
    ws_frame(0x01, b"a") + ws_frame(0x81, b"b"),
    ws_frame(0x81, b"\xce\xba\xff"),
    ws_frame(0x88, b"\x03"),
    ws_frame(0x88, b"\x03\xed"),
    ws_frame(0x88, b"\x03\xe8\xff"),
    ws_frame(0x82, bytes(70000)),
    bytes([0x81, 0xFE, 0, 5]) + b"\x00\x00\x00\x00hello",
    bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]),
    ws_frame(0x02, bytes(60)) + ws_frame(0x00, bytes(60)) * 4 + ws_frame(0x80, bytes(60)),
]


def main():
    cases = json.loads(CASES.read_text(encoding="utf-8"))
    for i, case in enumerate(cases):
        raw = case["raw"].encode("latin-1")
        cut = CUTS[i % len(CUTS)]
        write("request_stream", f"llhttp-{i:03}", encode(0, cut, raw))
        hosted = with_host(raw)
        if hosted is not None:
            write("request_stream", f"llhttp-{i:03}-host", encode(4, cut, hosted))
        if b"chunked" in raw.lower() and b"\r\n\r\n" in raw:
            body = raw.split(b"\r\n\r\n", 1)[1]
            if body:
                write("chunked", f"llhttp-{i:03}", encode(0, cut, body))
    for i, raw in enumerate(REQUESTS):
        for flags in (0, 1 | 4):  # default limits; 64-byte heads, fresh heads
            write("request_stream", f"hand-{i:02}-{flags}", encode(flags, CUTS[i % len(CUTS)], raw))
    for i, raw in enumerate(CHUNKED):
        write("chunked", f"hand-{i:02}", encode(0, CUTS[i % len(CUTS)], raw))
    for i, raw in enumerate(RESPONSES):
        for flags in (0, 1, 2):  # plain; after HEAD; 64-byte heads, 3 headers
            write("response_head", f"hand-{i:02}-{flags}", encode(flags, CUTS[i % len(CUTS)], raw))
    for i, src in enumerate(TEMPLATES):
        write("template", f"template-{i:02}", b"\x00" + src.encode())
    for i, body in enumerate(BODIES):
        write("template", f"body-{i:02}", b"\x01" + body.encode())
    for i, (path, doc) in enumerate(PATHS):
        write("jsonpath", f"path-{i:02}", path.encode() + b"\x00" + doc.encode())
    for i, raw in enumerate(WEBSOCKET):
        for flags in (0, 1):  # AWS's limits; frames of 64 bytes, messages of 256
            write("websocket_frames", f"hand-{i:02}-{flags}", encode(flags, CUTS[i % len(CUTS)], raw))


if __name__ == "__main__":
    main()

use super::{
    CloseCode, Decoder, Event, FrameLimits, Opcode, encode, handshake, id::ConnectionId,
    route::SelectionExpression,
};

const LIMITS: FrameLimits = FrameLimits {
    max_frame_bytes: 1024,
    max_message_bytes: 4096,
};

/// A client frame: first byte as given, masked with a fixed key.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn decode_all(input: &[u8]) -> Result<Vec<Event>, CloseCode> {
    let mut d = Decoder::new();
    let mut at = 0;
    let mut out = Vec::new();
    while at < input.len() {
        match d.decode(&input[at..], &LIMITS) {
            Ok(Some((n, e))) => {
                at += n;
                out.extend(e);
            }
            Ok(None) => break,
            Err(v) => return Err(v.code),
        }
    }
    Ok(out)
}

#[test]
fn rfc_example_masked_hello() {
    // RFC 6455 section 5.7: a single-frame masked text message "Hello".
    let f = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(decode_all(&f), Ok(vec![Event::Text("Hello".into())]));
}

#[test]
fn fragments_reassemble_with_control_frames_between() {
    let mut s = client_frame(0x01, b"Hel");
    s.extend(client_frame(0x89, b"p"));
    s.extend(client_frame(0x80, b"lo"));
    assert_eq!(
        decode_all(&s),
        Ok(vec![
            Event::Ping(b"p".to_vec()),
            Event::Text("Hello".into())
        ])
    );
}

#[test]
fn incomplete_frames_consume_nothing() {
    let f = client_frame(0x82, &[7u8; 300]);
    let mut d = Decoder::new();
    for cut in 0..f.len() {
        assert_eq!(d.decode(&f[..cut], &LIMITS), Ok(None), "cut at {cut}");
    }
    assert_eq!(
        d.decode(&f, &LIMITS),
        Ok(Some((f.len(), Some(Event::Binary(vec![7u8; 300])))))
    );
}

#[test]
fn protocol_errors_are_1002() {
    let cases: &[(&str, Vec<u8>)] = &[
        ("RSV1 (no deflate negotiated)", client_frame(0xC1, b"x")),
        ("RSV2", client_frame(0xA1, b"x")),
        ("RSV3", client_frame(0x91, b"x")),
        ("reserved data opcode", client_frame(0x83, b"")),
        ("reserved control opcode", client_frame(0x8B, b"")),
        ("fragmented ping", client_frame(0x09, b"")),
        ("ping of 126 bytes", client_frame(0x89, &[0; 126])),
        ("unmasked", vec![0x81, 0x01, b'x']),
        ("continuation of nothing", client_frame(0x80, b"x")),
        ("close of one byte", client_frame(0x88, &[3])),
        (
            "close code 1005",
            client_frame(0x88, &1005u16.to_be_bytes()),
        ),
        ("close code 999", client_frame(0x88, &999u16.to_be_bytes())),
        (
            "close code 5000",
            client_frame(0x88, &5000u16.to_be_bytes()),
        ),
        (
            "non-minimal 16-bit length",
            vec![0x81, 0x80 | 126, 0, 5, 0, 0, 0, 0, 1, 2, 3, 4, 5],
        ),
        (
            "64-bit length high bit",
            vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for (what, f) in cases {
        assert_eq!(decode_all(f), Err(CloseCode::Protocol), "{what}");
    }
    let mut interrupted = client_frame(0x01, b"a");
    interrupted.extend(client_frame(0x81, b"b"));
    assert_eq!(decode_all(&interrupted), Err(CloseCode::Protocol));
}

#[test]
fn invalid_utf8_is_1007_even_mid_message() {
    assert_eq!(
        decode_all(&client_frame(0x81, &[0xce, 0xba, 0xff])),
        Err(CloseCode::InvalidData)
    );
    // Caught on the first fragment, before the message ends.
    let mut d = Decoder::new();
    assert_eq!(
        d.decode(&client_frame(0x01, &[b'a', 0xc0, 0x80]), &LIMITS)
            .map_err(|v| v.code),
        Err(CloseCode::InvalidData)
    );
    // A sequence split across fragments is fine.
    let mut s = client_frame(0x01, &[0xce]);
    s.extend(client_frame(0x80, &[0xba]));
    assert_eq!(decode_all(&s), Ok(vec![Event::Text("κ".into())]));
    assert_eq!(
        decode_all(&client_frame(0x88, &[0x03, 0xe8, 0xff])),
        Err(CloseCode::InvalidData)
    );
}

#[test]
fn limits_are_1009_from_the_header() {
    let big = client_frame(0x82, &[0; 1025]);
    // The header alone is enough to refuse it.
    let mut d = Decoder::new();
    assert_eq!(
        d.decode(&big[..8], &LIMITS).map_err(|v| v.code),
        Err(CloseCode::TooBig)
    );
    let mut s = Vec::new();
    for _ in 0..4 {
        s.extend(client_frame(0x00, &[1; 1024]));
    }
    s[0] = 0x02;
    s.extend(client_frame(0x80, b"x"));
    assert_eq!(decode_all(&s), Err(CloseCode::TooBig));
}

#[test]
fn close_frames() {
    assert_eq!(
        decode_all(&client_frame(0x88, b"")),
        Ok(vec![Event::Close {
            code: None,
            reason: String::new()
        }])
    );
    let mut p = 4000u16.to_be_bytes().to_vec();
    p.extend_from_slice(b"bye");
    assert_eq!(
        decode_all(&client_frame(0x88, &p)),
        Ok(vec![Event::Close {
            code: Some(4000),
            reason: "bye".into()
        }])
    );
}

#[test]
fn server_frames() {
    let mut out = Vec::new();
    encode::frame(&mut out, Opcode::Text, b"Hello");
    assert_eq!(out, b"\x81\x05Hello");
    out.clear();
    encode::frame(&mut out, Opcode::Binary, &[0; 256]);
    assert_eq!(&out[..4], &[0x82, 126, 1, 0]);
    out.clear();
    encode::frame(&mut out, Opcode::Binary, &[0; 70000]);
    assert_eq!(&out[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    out.clear();
    encode::close(&mut out, CloseCode::TooBig, &"é".repeat(100));
    assert_eq!(out[0], 0x88);
    assert!(out[1] <= 125);
    assert_eq!(&out[2..4], &1009u16.to_be_bytes());
    assert!(std::str::from_utf8(&out[4..]).is_ok());
}

#[test]
fn accept_key_rfc_example() {
    // RFC 6455 section 1.3.
    assert_eq!(
        &handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn handshake_checks() {
    use crate::h1::request::{HeadScanner, Limits, RequestHead, parse};
    let limits = Limits {
        max_head_bytes: 8192,
        max_headers: 100,
    };
    let run = |text: &str| {
        let buf = text.as_bytes();
        let mut sc = HeadScanner::default();
        let (s, e) = sc.scan(buf, &limits).unwrap().unwrap();
        let mut head = RequestHead::default();
        parse(buf, s, e, &limits, &mut head).unwrap();
        handshake::check(buf, &head)
    };
    let good = "GET /prod HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    assert_eq!(run(good), Ok(*b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_eq!(
        run(&good.replace("Version: 13", "Version: 8")),
        Err(handshake::HandshakeError::Version)
    );
    assert_eq!(
        run(&good.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")),
        Err(handshake::HandshakeError::Key)
    );
    assert_eq!(
        run(&good.replace("Upgrade: WebSocket\r\n", "")),
        Err(handshake::HandshakeError::NotUpgrade)
    );
    assert_eq!(
        run(&good.replace("GET", "POST")),
        Err(handshake::HandshakeError::NotGet)
    );
}

#[test]
fn connection_ids_round_trip_and_look_like_aws() {
    let id = ConnectionId::new(1_764_495_000_123, 3, 987_654_321);
    let s = id.encode();
    assert_eq!(s.len(), 16);
    assert_eq!(s[15], b'=');
    assert!(
        s[..15]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(b))
    );
    assert_eq!(ConnectionId::parse(&s), Some(id));
    assert_ne!(
        ConnectionId::new(1_764_495_000_123, 3, 987_654_322).encode(),
        s
    );
    assert_ne!(
        ConnectionId::new(1_764_495_000_124, 3, 987_654_321).encode(),
        s
    );
    assert_eq!(ConnectionId::parse(b"not an id"), None);
    assert_eq!(ConnectionId::parse(b"################"), None);
}

#[test]
fn route_selection() {
    let e = SelectionExpression::parse("$request.body.action").unwrap();
    assert_eq!(e.select(br#"{"action":"join"}"#), Some("join".into()));
    assert_eq!(e.select(br#"{"action":7}"#), Some("7".into()));
    assert_eq!(e.select(br#"{"action":{"a":1}}"#), None);
    assert_eq!(e.select(b"not json"), None);
    assert_eq!(e.select(br#"{"other":1}"#), None);
    let e = SelectionExpression::parse("${request.body.service}/${request.body.msg.kind}").unwrap();
    assert_eq!(
        e.select(br#"{"service":"chat","msg":{"kind":"post"}}"#),
        Some("chat/post".into())
    );
    assert_eq!(e.select(br#"{"service":"chat"}"#), None);
    for bad in [
        "",
        "action",
        "$request.header.x",
        "${request.body.a",
        "$request.body..a",
    ] {
        assert!(SelectionExpression::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn function_answers() {
    use super::event::parse_answer;
    let short = |p: &[u8]| parse_answer(p).map(|a| (a.status, a.body));
    assert_eq!(short(br#"{"statusCode":200}"#), Ok((200, None)));
    assert_eq!(
        short(br#"{"statusCode":403,"body":"no"}"#),
        Ok((403, Some(b"no".to_vec())))
    );
    assert_eq!(
        short(br#"{"body":{"a":1}}"#),
        Ok((200, Some(br#"{"a":1}"#.to_vec())))
    );
    assert_eq!(short(br#""hi""#), Ok((200, Some(b"hi".to_vec()))));
    assert!(parse_answer(br#"{"statusCode":"x"}"#).is_err());
    assert!(parse_answer(b"nope").is_err());
    // The subprotocol a $connect function chose, from headers (any case) or multiValueHeaders.
    let chosen = |p: &[u8]| parse_answer(p).map(|a| a.subprotocol);
    assert_eq!(
        chosen(br#"{"statusCode":200,"headers":{"Sec-WebSocket-Protocol":"myprotocol"}}"#),
        Ok(Some("myprotocol".into()))
    );
    assert_eq!(
        chosen(br#"{"multiValueHeaders":{"sec-websocket-protocol":["b","c"]}}"#),
        Ok(Some("b".into()))
    );
    assert_eq!(chosen(br#"{"headers":{"X":"y"}}"#), Ok(None));
    assert_eq!(chosen(br#""Sec-WebSocket-Protocol""#), Ok(None));
}

#[test]
fn offered_subprotocols() {
    use crate::h1::request::{HeadScanner, Limits, RequestHead, parse};
    let limits = Limits {
        max_head_bytes: 8192,
        max_headers: 100,
    };
    let buf = b"GET /prod HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: chat, superchat\r\nsec-websocket-protocol:  v2.json \r\n\r\n";
    let mut sc = HeadScanner::default();
    let (s, e) = sc.scan(buf, &limits).unwrap().unwrap();
    let mut head = RequestHead::default();
    parse(buf, s, e, &limits, &mut head).unwrap();
    for yes in ["chat", "superchat", "v2.json"] {
        assert!(
            handshake::offers_subprotocol(buf, &head, yes.as_bytes()),
            "{yes}"
        );
    }
    for no in ["Chat", "chat, superchat", "", "v2"] {
        assert!(
            !handshake::offers_subprotocol(buf, &head, no.as_bytes()),
            "{no}"
        );
    }
}

#[test]
fn events_have_aws_shape() {
    use super::event::{EventType, WsEvent, to_json};
    let headers = vec![("Host".to_owned(), "h".to_owned())];
    let e = WsEvent {
        event_type: EventType::Message,
        route_key: "join",
        connection_id: "AAAAAAAAAAAAAAA=",
        message_id: Some("m1"),
        request_id: "r1",
        api_id: "chat",
        stage: "prod",
        domain_name: "h",
        connected_at: 5,
        request_time_epoch: 6,
        source_ip: "127.0.0.1",
        user_agent: "ua",
        headers: &headers,
        query: &[],
        body: Some((b"{\"action\":\"join\"}", false)),
        disconnect: None,
        authorizer: None,
    };
    let v: serde_json::Value = serde_json::from_slice(&to_json(&e)).unwrap();
    assert_eq!(v["requestContext"]["eventType"], "MESSAGE");
    assert_eq!(v["requestContext"]["routeKey"], "join");
    assert_eq!(v["requestContext"]["messageId"], "m1");
    assert_eq!(v["requestContext"]["connectedAt"], 5);
    assert_eq!(v["body"], "{\"action\":\"join\"}");
    assert!(v.get("headers").is_none());
}

//! `function::parse_response`: what a Lambda function returns, which the gateway writes to the
//! client. `data[0] % 2` picks the payload format (0: 1.0, 1: 2.0), the rest is the payload.
//!
//! Checked besides "no panic": an accepted status is 200-599; every header name is a
//! non-empty RFC 9110 token; no header value or cookie holds CR, LF, NUL or another control
//! byte but HTAB; no hop-by-hop or framing header gets through; 1.0 accepts only an object
//! with `statusCode`; 2.0 accepts every JSON document.

use turnpike_core::auth::request_authorizer::PayloadFormat;
use turnpike_core::function::parse_response;
use turnpike_core::h1::head::{HeaderKind, is_tchar};

pub fn check(data: &[u8]) {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let format = if mode % 2 == 0 {
        PayloadFormat::V1
    } else {
        PayloadFormat::V2
    };
    let json: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let Ok(r) = parse_response(payload, format) else {
        if format == PayloadFormat::V2 {
            // Only a document with statusCode can be refused once it is JSON.
            if let Some(v) = &json {
                assert!(
                    v.get("statusCode").is_some(),
                    "2.0 refused JSON without statusCode"
                );
            }
        }
        return;
    };
    let json = json.expect("an accepted response is JSON");
    if format == PayloadFormat::V1 {
        assert!(
            json.get("statusCode").is_some(),
            "1.0 accepted no statusCode"
        );
    }
    assert!((200..=599).contains(&r.status), "status {}", r.status);
    let clean = |v: &str| !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f);
    for (name, value) in &r.headers {
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "name {name:?}"
        );
        assert!(clean(value), "value {value:?}");
        assert!(
            !HeaderKind::of(name.as_bytes()).is_hop_by_hop(),
            "{name} passed"
        );
    }
    for c in &r.cookies {
        assert!(clean(c), "cookie {c:?}");
    }
}

//! Response framing on arbitrary bytes: parsing a head and skipping a body must never panic,
//! and feeding a body in two pieces must consume exactly what feeding it whole does.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/response.rs"]
#[allow(dead_code)]
mod response;

use response::{Body, Framing, parse_head};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let head_request = split & 1 == 1;
    let body_at = match parse_head(data, head_request) {
        Ok(Some(h)) => Some((h.len, h.framing)),
        _ => None,
    };
    let (start, framing) = body_at.unwrap_or((0, Framing::Chunked));
    let body = &data[start.min(data.len())..];
    let whole = {
        let mut b = Body::new(framing);
        b.consume(body).map(|n| (n, b.is_done()))
    };
    let at = usize::from(split).min(body.len());
    let pieces = {
        let mut b = Body::new(framing);
        b.consume(&body[..at]).and_then(|n| {
            if b.is_done() {
                return Ok((n, true));
            }
            b.consume(&body[at..]).map(|m| (n + m, b.is_done()))
        })
    };
    assert_eq!(whole.is_ok(), pieces.is_ok());
    if let (Ok(w), Ok(p)) = (whole, pieces) {
        assert_eq!(w, p);
    }
});

//! `turnpike_core::auth::sigv4::verify` on arbitrary requests.
//!
//! Input: fields separated by 0x00, in order method, path, query, `Authorization` value,
//! `X-Amz-Date` value, `x-amz-content-sha256` value (absent when empty), body (absent means
//! `Payload::Unavailable`). Checks besides "no panic": an unsigned request (per `is_signed`)
//! is never accepted; every error has a non-empty message and a 403/411 status; a request
//! that verifies stops verifying when its last byte of `Authorization` changes.

use turnpike_core::auth::sigv4::{Payload, SigV4Request, SigV4Scope, is_signed, verify};

const SCOPE: SigV4Scope = SigV4Scope {
    region: "us-east-1",
    service: "execute-api",
};
const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 20150830T123600Z
const NOW: u64 = 1_440_938_160;

pub fn check(data: &[u8]) {
    let mut f = data.split(|&b| b == 0);
    let mut next = || f.next().unwrap_or(b"");
    let (method, path, query, auth, date, sha) = (next(), next(), next(), next(), next(), next());
    let body = f.next();
    let mut headers: Vec<(&[u8], &[u8])> =
        vec![(b"Host", b"abc123.execute-api.us-east-1.amazonaws.com")];
    if !auth.is_empty() {
        headers.push((b"Authorization", auth));
    }
    if !date.is_empty() {
        headers.push((b"X-Amz-Date", date));
    }
    if !sha.is_empty() {
        headers.push((b"x-amz-content-sha256", sha));
    }
    let req = SigV4Request {
        method,
        path,
        query,
        headers: &headers,
        payload: body.map_or(Payload::Unavailable, Payload::Body),
    };
    match verify(&req, &SCOPE, |_| Some(SECRET), NOW) {
        Ok(_) => {
            assert!(is_signed(&req), "accepted an unsigned request");
            if !auth.is_empty() {
                let mut changed = auth.to_vec();
                let last = changed.len() - 1;
                changed[last] ^= 1;
                let mut changed_headers = headers.clone();
                changed_headers[1].1 = &changed;
                let req = SigV4Request {
                    headers: &changed_headers,
                    ..req
                };
                assert!(verify(&req, &SCOPE, |_| Some(SECRET), NOW).is_err());
            }
        }
        Err(e) => {
            assert!(!e.message().is_empty());
            assert!(matches!(e.status(), 403 | 411));
        }
    }
}

//! The canonical request of AWS "Create a canonical request for Signature Version 4", built
//! from the request exactly as received, and the byte helpers it needs (URI encoding, hex).
//!
//! Shapes (one line each, joined by `\n`):
//!
//! ```text
//! METHOD
//! /canonical/uri          (normalized, every byte but unreserved and '/' encoded once more)
//! a=1&b=2                 (decoded, re-encoded, sorted by name then value)
//! name:trimmed value\n    (one line per signed header, lower-case name, sorted)
//! signed;header;names
//! payload hash
//! ```

use std::cmp::Ordering;

/// The RFC 3986 unreserved characters AWS leaves as they are; every other byte is `%XX`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// AWS `UriEncode`: unreserved bytes kept, every other byte as `%XX` (upper-case hex);
/// `keep_slash` leaves '/' as it is (paths).
pub(super) fn uri_encode_into(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 15)],
            ]);
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` sequences decoded; a '%' not followed by two hex digits is kept as a literal '%'
/// (it is re-encoded as `%25`, as the AWS SDKs sign such a query). `+` stays `+`: SigV4
/// query strings are not form-encoded.
pub(super) fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let hex = match b {
            b'%' => bytes
                .get(i + 1)
                .copied()
                .and_then(hex_val)
                .zip(bytes.get(i + 2).copied().and_then(hex_val)),
            _ => None,
        };
        if let Some((h, l)) = hex {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Lower-case hex of `bytes`.
pub(super) fn hex_lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        s.push(char::from(HEX_LOWER[usize::from(b & 15)]));
    }
    s
}

/// The canonical URI for non-S3 services: dot segments removed and empty segments dropped
/// (botocore's `remove_dot_segments`, the suite's `*-normalized` cases), then the path as
/// received encoded once more. Since the client already percent-encoded the path it sent,
/// this is AWS's "encode each segment twice": `%3D` becomes `%253D`, a raw `@` `%40`.
pub(super) fn canonical_uri(out: &mut Vec<u8>, path: &[u8]) {
    let mut segments: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    out.push(b'/');
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        uri_encode_into(out, seg, false);
    }
    if path.ends_with(b"/") && !segments.is_empty() {
        out.push(b'/');
    }
}

/// One query parameter, name and value decoded then encoded the AWS way.
struct QueryPair {
    name: Vec<u8>,
    value: Vec<u8>,
}

/// The canonical query string: each `name[=value]` decoded and re-encoded, sorted by encoded
/// name then encoded value, joined with `&`; a name without `=` gets an empty value.
/// `skip` says which raw parameters to leave out (presigned requests drop
/// `X-Amz-Signature`); it is given the decoded name.
pub(super) fn canonical_query(out: &mut Vec<u8>, query: &[u8], skip: impl Fn(&[u8]) -> bool) {
    let mut pairs: Vec<QueryPair> = Vec::new();
    for raw in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (n, v) = match raw.iter().position(|&b| b == b'=') {
            Some(i) => (&raw[..i], &raw[i + 1..]),
            None => (raw, &b""[..]),
        };
        let n = percent_decode(n);
        if skip(&n) {
            continue;
        }
        let mut name = Vec::with_capacity(n.len());
        uri_encode_into(&mut name, &n, false);
        let mut value = Vec::with_capacity(v.len());
        uri_encode_into(&mut value, &percent_decode(v), false);
        pairs.push(QueryPair { name, value });
    }
    pairs.sort_by(|a, b| match a.name.cmp(&b.name) {
        Ordering::Equal => a.value.cmp(&b.value),
        o => o,
    });
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&p.name);
        out.push(b'=');
        out.extend_from_slice(&p.value);
    }
}

/// Appends `value` trimmed, with every run of spaces and tabs inside collapsed to one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if b == b' ' || b == b'\t' {
            pending_space = started;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(b);
        started = true;
    }
}

/// The canonical headers block: for each name of `signed` (already lower-case, sorted, as
/// the client listed them) `name:value\n`, where value is every received header of that
/// name (any case) trimmed and joined with ',' in the order received. Returns the signed
/// name that the request does not carry, if any.
pub(super) fn canonical_headers<'s>(
    out: &mut Vec<u8>,
    signed: &[&'s [u8]],
    headers: &[(&[u8], &[u8])],
) -> Result<(), &'s [u8]> {
    for &name in signed {
        out.extend_from_slice(name);
        out.push(b':');
        let mut found = false;
        for (n, v) in headers {
            if n.eq_ignore_ascii_case(name) {
                if found {
                    out.push(b',');
                }
                push_trimmed(out, v);
                found = true;
            }
        }
        if !found {
            return Err(name);
        }
        out.push(b'\n');
    }
    Ok(())
}

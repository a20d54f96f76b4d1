//! Upstream response heads on arbitrary bytes, read the way `upstream::read_response_head`
//! does: parse, skip interim (1xx) responses, parse again.
//!
//! Checked for each accepted head: `end` within the buffer, the size limit and ending a line;
//! every span inside the head; the header count within the limit; the body framing the
//! proxy derives from it (RFC 9112 section 6.3); never reusing a connection whose framing was
//! ambiguous. Streaming: every prefix shorter than `end` is "incomplete", never an error or
//! a different head, and the head parsed alone reads the same as with bytes after it.
//!
//! Flags (see [`crate::Input`]): bit 0 = the request was HEAD; bits 1-2 pick the limits.
//! Piece sizes pick the prefix lengths tried.

use turnpike_core::h1::HeaderKind;
use turnpike_core::h1::head::{parse_content_length, trim_ows};
use turnpike_core::h1::response::{ResponseBody, ResponseError, ResponseHead, parse};

use crate::{Input, is_tchar};

/// (max_head_bytes, max_headers)
const LIMITS: [(usize, usize); 4] = [(16 * 1024, 100), (64, 3), (512, 1), (4096, 1000)];

pub fn check(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let head_request = input.flags & 1 != 0;
    let (max_bytes, max_headers) = LIMITS[usize::from(input.flags >> 1 & 3)];
    let mut buf = input.stream;
    let mut head = ResponseHead::default();
    // Interim responses are drained and the next head parsed from what follows.
    for _ in 0..16 {
        let result = parse(buf, max_bytes, max_headers, head_request, &mut head);
        match result {
            Ok(false) => {
                assert!(buf.len() <= max_bytes, "incomplete past the limit");
                return;
            }
            Err(ResponseError::Malformed(_) | ResponseError::TooLarge) => return,
            Ok(true) => {}
        }
        check_head(buf, &head, max_bytes, max_headers, head_request);
        check_prefixes(
            buf,
            &head,
            &input.pieces,
            max_bytes,
            max_headers,
            head_request,
        );
        if !head.is_interim() {
            return;
        }
        buf = &buf[head.end..];
    }
}

fn check_head(
    buf: &[u8],
    head: &ResponseHead,
    max_bytes: usize,
    max_headers: usize,
    head_request: bool,
) {
    let end = head.end;
    assert!(
        end > 0 && end <= buf.len() && end <= max_bytes,
        "end {end} of {}",
        buf.len()
    );
    assert_eq!(buf[end - 1], b'\n', "head does not end a line");
    assert!(
        buf[..end].ends_with(b"\n\n") || buf[..end].ends_with(b"\n\r\n"),
        "head does not end with an empty line"
    );
    assert!((100..=999).contains(&head.status));
    assert!(head.minor_version <= 1);
    assert!(head.headers.len() <= max_headers);
    let inside = |s: turnpike_core::h1::Span| s.start <= s.end && (s.end as usize) <= end;
    assert!(inside(head.reason));
    for h in &head.headers {
        assert!(inside(h.name) && inside(h.value));
        let name = h.name.get(buf);
        assert!(
            !name.is_empty() && name.iter().all(|&b| is_tchar(b)),
            "name {name:?}"
        );
        assert_eq!(h.kind, HeaderKind::of(name));
        assert!(!h.value.get(buf).iter().any(|&b| b == b'\r' || b == b'\n'));
    }

    let lengths: Vec<u64> = head
        .headers
        .iter()
        .filter(|h| h.kind == HeaderKind::ContentLength)
        .map(|h| parse_content_length(trim_ows(h.value.get(buf))).expect("accepted length parses"))
        .collect();
    assert!(
        lengths.windows(2).all(|w| w[0] == w[1]),
        "conflicting lengths accepted"
    );
    let te = head
        .headers
        .iter()
        .rfind(|h| h.kind == HeaderKind::TransferEncoding);
    let bodiless = head_request || matches!(head.status, 100..=199 | 204 | 304);
    match head.body {
        _ if bodiless => assert_eq!(head.body, ResponseBody::None),
        ResponseBody::None => assert!(te.is_none() && lengths.first() == Some(&0)),
        ResponseBody::Length(n) => assert!(te.is_none() && n > 0 && lengths.first() == Some(&n)),
        ResponseBody::Chunked => {
            let v = te
                .expect("chunked without Transfer-Encoding")
                .value
                .get(buf);
            let last = v.rsplit(|&b| b == b',').next().unwrap_or_default();
            assert!(trim_ows(last).eq_ignore_ascii_case(b"chunked"));
        }
        ResponseBody::UntilClose => assert!(te.is_some() || lengths.is_empty()),
    }
    if head.reusable {
        assert!(head.body != ResponseBody::UntilClose);
        assert!(
            te.is_none() || lengths.is_empty(),
            "reusable despite ambiguous framing"
        );
        assert!(!head.connection.close);
        assert!(head.minor_version == 1 || head.connection.keep_alive);
    }
}

/// The head arriving in pieces: shorter prefixes are incomplete, and the head alone reads the
/// same as the head with bytes after it.
fn check_prefixes(
    buf: &[u8],
    whole: &ResponseHead,
    pieces: &[usize],
    max_bytes: usize,
    max_headers: usize,
    head_request: bool,
) {
    let end = whole.end;
    let mut scratch = ResponseHead::default();
    let mut at = 0;
    for &p in pieces.iter().cycle().take(64) {
        at += p;
        if at >= end {
            break;
        }
        assert_eq!(
            parse(
                &buf[..at],
                max_bytes,
                max_headers,
                head_request,
                &mut scratch
            ),
            Ok(false),
            "prefix of {at} bytes of a {end}-byte head"
        );
    }
    assert_eq!(
        parse(
            &buf[..end],
            max_bytes,
            max_headers,
            head_request,
            &mut scratch
        ),
        Ok(true)
    );
    assert_eq!(
        (
            scratch.end,
            scratch.status,
            scratch.body,
            scratch.reusable,
            scratch.headers.len()
        ),
        (
            whole.end,
            whole.status,
            whole.body,
            whole.reusable,
            whole.headers.len()
        )
    );
}

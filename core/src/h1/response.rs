//! Upstream response heads: parse, and decide how the body is delimited (RFC 9112 section 6.3).
//!
//! Upstreams are trusted more than clients but not blindly: a response whose framing is
//! ambiguous (differing Content-Lengths, a malformed one) is refused as a bad gateway rather
//! than guessed at.

use std::mem::MaybeUninit;

use super::head::{ConnectionOptions, Header, HeaderKind, Span, parse_content_length, trim_ows};
use super::request::MAX_HEADERS_CAP;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseBody {
    #[default]
    None,
    Length(u64),
    Chunked,
    /// Delimited by the upstream closing the connection.
    UntilClose,
}

#[derive(Debug, Default)]
pub struct ResponseHead {
    /// Offset just past the head.
    pub end: usize,
    pub status: u16,
    pub reason: Span,
    pub minor_version: u8,
    pub headers: Vec<Header>,
    pub connection: ConnectionOptions,
    pub body: ResponseBody,
    /// The upstream connection can carry another request once this body is read.
    pub reusable: bool,
}

impl ResponseHead {
    /// 1xx other than 101: skipped by the proxy (it answers `Expect` itself).
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    Malformed(&'static str),
    TooLarge,
}

/// Parses a response head at the start of `buf`. `Ok(false)`: incomplete.
pub fn parse(
    buf: &[u8],
    max_head_bytes: usize,
    max_headers: usize,
    request_was_head: bool,
    head: &mut ResponseHead,
) -> Result<bool, ResponseError> {
    let mut storage: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS_CAP] =
        [const { MaybeUninit::uninit() }; MAX_HEADERS_CAP];
    let mut res = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let n = match config.parse_response_with_uninit_headers(
        &mut res,
        buf,
        &mut storage[..max_headers.min(MAX_HEADERS_CAP)],
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > max_head_bytes {
                Err(ResponseError::TooLarge)
            } else {
                Ok(false)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooLarge),
        Err(_) => return Err(ResponseError::Malformed("malformed response head")),
    };
    if n > max_head_bytes {
        return Err(ResponseError::TooLarge);
    }
    let (Some(status), Some(minor)) = (res.code, res.version) else {
        return Err(ResponseError::Malformed("malformed status line"));
    };
    // httparse takes any three digits; "050" would be forwarded as the two-digit "50".
    if status < 100 {
        return Err(ResponseError::Malformed("status code below 100"));
    }
    head.end = n;
    head.status = status;
    head.minor_version = minor;
    // httparse gives a static "" (no slice of `buf`) for a missing reason phrase or one with
    // obs-text: only a non-empty reason may become a span.
    head.reason = match res.reason {
        Some(r) if !r.is_empty() => Span::of(buf, r.as_bytes()),
        _ => Span::default(),
    };
    head.headers.clear();
    head.connection.clear();
    let mut length: Option<u64> = None;
    let mut te_chunked: Option<bool> = None;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let kind = HeaderKind::of(name);
        let value = Span::of(buf, h.value);
        match kind {
            HeaderKind::ContentLength => {
                let v = parse_content_length(trim_ows(h.value))
                    .ok_or(ResponseError::Malformed("invalid Content-Length"))?;
                if length.is_some_and(|l| l != v) {
                    return Err(ResponseError::Malformed("conflicting Content-Length"));
                }
                length = Some(v);
            }
            HeaderKind::TransferEncoding => {
                let last = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .map(trim_ows)
                    .unwrap_or(b"");
                te_chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            HeaderKind::Connection if !head.connection.add(buf, value) => {
                return Err(ResponseError::Malformed("invalid Connection"));
            }
            _ => {}
        }
        head.headers.push(Header {
            name: Span::of(buf, name),
            value,
            kind,
        });
    }
    let persistent = if minor == 1 {
        !head.connection.close
    } else {
        head.connection.keep_alive && !head.connection.close
    };
    head.body =
        if request_was_head || status == 204 || status == 304 || (100..200).contains(&status) {
            ResponseBody::None
        } else {
            match (te_chunked, length) {
                (Some(true), _) => ResponseBody::Chunked,
                (Some(false), _) => ResponseBody::UntilClose,
                (None, Some(0)) => ResponseBody::None,
                (None, Some(n)) => ResponseBody::Length(n),
                (None, None) => ResponseBody::UntilClose,
            }
        };
    // Content-Length beside Transfer-Encoding is a framing conflict: read this response as
    // chunked but never trust the connection again.
    head.reusable = persistent
        && head.body != ResponseBody::UntilClose
        && !(te_chunked.is_some() && length.is_some());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &[u8], head_req: bool) -> Result<ResponseHead, ResponseError> {
        let mut h = ResponseHead::default();
        assert!(parse(raw, 16384, 100, head_req, &mut h)?, "complete");
        Ok(h)
    }

    #[test]
    fn framing() {
        let h = p(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false).expect("ok");
        assert_eq!(
            (h.status, h.body, h.reusable, h.end),
            (200, ResponseBody::Length(5), true, 38)
        );
        let h = p(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        )
        .expect("ok");
        assert_eq!(h.body, ResponseBody::Chunked);
        let h = p(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        )
        .expect("ok");
        assert_eq!((h.body, h.reusable), (ResponseBody::Chunked, false));
        let h = p(b"HTTP/1.0 200 OK\r\n\r\n", false).expect("ok");
        assert_eq!((h.body, h.reusable), (ResponseBody::UntilClose, false));
        let h = p(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true).expect("ok");
        assert_eq!((h.body, h.reusable), (ResponseBody::None, true));
        let h = p(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .expect("ok");
        assert_eq!(h.body, ResponseBody::None);
        let h = p(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        )
        .expect("ok");
        assert!(!h.reusable);
        let h = p(b"HTTP/1.1 100 Continue\r\n\r\n", false).expect("ok");
        assert!(h.is_interim());
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
        ] {
            assert!(p(raw, false).is_err(), "{}", String::from_utf8_lossy(raw));
        }
        let mut h = ResponseHead::default();
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nA: b\r\n", 16384, 100, false, &mut h),
            Ok(false)
        );
        assert_eq!(
            parse(&[b'a'; 100], 50, 100, false, &mut h),
            Err(ResponseError::Malformed("malformed response head"))
        );
    }
}

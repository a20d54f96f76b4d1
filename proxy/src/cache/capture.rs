//! Capturing a response as it is written to the client, for the cache store: the head as the
//! gateway wrote it (after any response mapping), less the lines that are per answer, and the
//! body as it streams by, up to the stage's `max_entry_bytes`. The client's response is never
//! held back: the tap copies what passes.

use crate::h1::encode;

/// Header lines never stored: framing (the hit writes its own length), hop-by-hop and
/// per-answer lines (finish_head writes them on every answer).
const PER_ANSWER: &[&[u8]] = &[
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"keep-alive",
    b"apigw-requestid",
    b"retry-after",
    b"www-authenticate",
];

/// A response being captured.
pub struct Tap {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    /// Most bytes (head and body) kept.
    limit: usize,
    /// Past `limit`: nothing will be stored.
    pub over: bool,
    /// `http` mode: where and how to store it.
    pub http: Option<Box<super::rfc::HttpStore>>,
}

impl Tap {
    /// A tap whose stored head is `written` (a head as written to the client, up to at most
    /// the blank line) filtered by [`stored_head`]; `None` when the head alone is over
    /// `limit`. `expected`: the body's length when known, to size the buffer once.
    pub fn new(
        status: u16,
        written: &[u8],
        http: bool,
        limit: u64,
        expected: Option<u64>,
    ) -> Option<Tap> {
        let mut head = Vec::with_capacity(written.len());
        stored_head(&mut head, written, http);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if head.len() > limit || expected.is_some_and(|n| n > (limit - head.len()) as u64) {
            return None;
        }
        let body = Vec::with_capacity(expected.map_or(0, |n| n as usize));
        Some(Tap {
            status,
            head,
            body,
            limit,
            over: false,
            http: None,
        })
    }

    /// Takes a piece of the body as it passes.
    #[inline]
    pub fn take(&mut self, data: &[u8]) {
        if self.over {
            return;
        }
        if self.head.len() + self.body.len() + data.len() > self.limit {
            self.over = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(data);
    }
}

/// Copies the status line and header lines of `written` (a response head as the gateway
/// writes it; anything from the blank line on is ignored) to `out`, without the lines in
/// [`PER_ANSWER`] and CORS lines (written per request's Origin); in `aws` mode (not `http`)
/// without `Date` (each answer has its own), in `http` mode without `Age` (each hit has its
/// own; RFC 9111 section 4.2.3) but with the origin's `Date`.
pub fn stored_head(out: &mut Vec<u8>, written: &[u8], http: bool) {
    let mut lines = written.split_inclusive(|&b| b == b'\n');
    if let Some(status_line) = lines.next() {
        out.extend_from_slice(status_line);
    }
    for line in lines {
        if line == encode::CRLF {
            break;
        }
        let name = line
            .iter()
            .position(|&b| b == b':')
            .map_or(&line[..0], |i| &line[..i]);
        let drop = PER_ANSWER.iter().any(|n| name.eq_ignore_ascii_case(n))
            || (!http && name.eq_ignore_ascii_case(b"date"))
            || (http && name.eq_ignore_ascii_case(b"age"))
            || turnpike_core::cors::CorsPolicy::is_cors_header(name);
        if !drop {
            out.extend_from_slice(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_heads_keep_only_what_every_answer_shares() {
        let written = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: x\r\nContent-Length: 5\r\nETag: \"1\"\r\nAccess-Control-Allow-Origin: *\r\napigw-requestid: abc\r\nConnection: close\r\n\r\nhello";
        let mut out = Vec::new();
        stored_head(&mut out, written, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"1\"\r\n"
        );
        out.clear();
        stored_head(&mut out, written, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: x\r\nETag: \"1\"\r\n"
        );
    }

    #[test]
    fn a_tap_gives_up_past_its_limit() {
        let mut t = Tap::new(200, b"HTTP/1.1 200 OK\r\n\r\n", false, 40, None).unwrap();
        t.take(b"0123456789");
        assert!(!t.over);
        t.take(b"0123456789abcdef");
        assert!(t.over && t.body.is_empty());
        assert!(Tap::new(200, b"HTTP/1.1 200 OK\r\n\r\n", false, 40, Some(100)).is_none());
    }
}

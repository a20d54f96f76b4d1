//! Request heads: find where one ends, then parse it strictly.
//!
//! httparse does the tokenizing; on top of it this refuses what a smuggling-safe proxy must
//! refuse (RFC 9112 and llhttp's strict mode): bare LF or CR, Content-Length with
//! Transfer-Encoding, duplicate or malformed Content-Length, any transfer coding but a lone
//! final `chunked`, Transfer-Encoding in HTTP/1.0, missing or repeated Host, userinfo in the
//! target, dot-segments (also encoded and behind encoded separators), malformed percent escapes,
//! bytes outside the URI grammar. Every refusal closes the connection.

use std::mem::MaybeUninit;

use memchr::memchr2;

use super::head::{
    ConnectionOptions, Header, HeaderKind, Span, is_tchar, parse_content_length, trim_ows,
};

/// Hard ceiling on header fields (the configurable limit must stay below it).
pub const MAX_HEADERS_CAP: usize = 1000;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
}

/// Why a request head was refused; each maps to one status (the proxy's `reject` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    BadRequest(&'static str),
    UriTooLong,
    HeaderTooLarge,
    MethodNotAllowed,
    NotImplemented,
    ExpectationFailed,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyKind {
    #[default]
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head, as spans into the connection's read buffer.
#[derive(Debug, Default)]
pub struct RequestHead {
    /// Offset just past the head's final CRLF.
    pub end: usize,
    pub method: Span,
    /// The path as routed and forwarded; empty for an absolute-form target without a path,
    /// which means `/`.
    pub path: Span,
    /// The query without '?'.
    pub query: Option<Span>,
    pub minor_version: u8,
    /// From the absolute-form target if there is one, else the Host header.
    pub host: Option<Span>,
    pub headers: Vec<Header>,
    pub body: BodyKind,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub connection: ConnectionOptions,
}

impl RequestHead {
    pub fn method<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.method.get(buf)
    }

    pub fn is_head(&self, buf: &[u8]) -> bool {
        self.method.get(buf) == b"HEAD"
    }

    /// Empties the head: no method, path, host or fields, no keep-alive. For answering a
    /// request whose head could not be parsed, so nothing reads spans of another head.
    pub fn forget(&mut self) {
        self.headers.clear();
        self.connection.clear();
        self.method = Span::default();
        self.path = Span::default();
        self.query = None;
        self.host = None;
        self.body = BodyKind::None;
        self.keep_alive = false;
        self.expect_continue = false;
        self.end = 0;
    }

    /// The value of the first header field named `name` (ASCII case-insensitive). A scan of
    /// the parsed fields: for headers only some policies read (Origin, User-Agent).
    #[inline]
    pub fn find(&self, buf: &[u8], name: &[u8]) -> Option<Span> {
        self.headers
            .iter()
            .find(|h| h.name.get(buf).eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Safe to send twice (RFC 9110 idempotent methods).
    pub fn is_idempotent(&self, buf: &[u8]) -> bool {
        matches!(
            self.method.get(buf),
            b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
        )
    }
}

/// Finds the end of a head as bytes arrive, checking line endings on the way so a bare CR or
/// LF is refused as soon as it is seen. Each byte is scanned once however the head trickles in.
#[derive(Debug, Default)]
pub struct HeadScanner {
    start: usize,
    scanned: usize,
    /// End of the request line, once seen.
    line_end: Option<usize>,
}

impl HeadScanner {
    pub fn reset(&mut self) {
        *self = HeadScanner::default();
    }

    /// Scans `buf` (which only grows between calls until the head is complete).
    /// `Ok(Some((start, end)))`: a complete head is `buf[start..end]` (leading empty lines
    /// skipped, as RFC 9112 allows). `Ok(None)`: need more bytes.
    pub fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(usize, usize)>, HeadError> {
        // Empty lines before a request line are ignored (RFC 9112 section 2.2).
        if self.scanned == self.start {
            while buf.len() >= self.start + 2 && &buf[self.start..self.start + 2] == b"\r\n" {
                self.start += 2;
            }
            self.scanned = self.start;
            match buf.get(self.start) {
                None => return Ok(None),
                Some(b'\n') => return Err(HeadError::BadRequest("bare LF")),
                Some(b'\r') if buf.len() == self.start + 1 => return Ok(None),
                _ => {}
            }
        }
        let mut i = self.scanned;
        let mut resume = buf.len();
        while let Some(off) = memchr2(b'\r', b'\n', &buf[i..]) {
            let at = i + off;
            if buf[at] == b'\n' {
                if at == self.start || buf[at - 1] != b'\r' {
                    return Err(HeadError::BadRequest("bare LF"));
                }
                self.line_end.get_or_insert(at);
                if at >= self.start + 3 && &buf[at - 3..at] == b"\r\n\r" {
                    // Complete, but maybe too large: the whole head can arrive in one read.
                    return match self.oversize(at + 1, limits) {
                        Some(e) => Err(e),
                        None => Ok(Some((self.start, at + 1))),
                    };
                }
            } else {
                match buf.get(at + 1) {
                    // A CR at the end: look at it again once its LF may have arrived.
                    None => {
                        resume = at;
                        break;
                    }
                    Some(b'\n') => {}
                    Some(_) => return Err(HeadError::BadRequest("bare CR")),
                }
            }
            i = at + 1;
        }
        self.scanned = resume;
        match self.oversize(buf.len(), limits) {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// 414 if the request line alone is over the limit, 431 if the head is.
    fn oversize(&self, end: usize, limits: &Limits) -> Option<HeadError> {
        if end - self.start <= limits.max_head_bytes {
            return None;
        }
        let line_too_long = self
            .line_end
            .is_none_or(|e| e - self.start > limits.max_head_bytes);
        Some(if line_too_long {
            HeadError::UriTooLong
        } else {
            HeadError::HeaderTooLarge
        })
    }
}

/// Parses the complete head `buf[start..end]` into `head` (spans index `buf`).
pub fn parse(
    buf: &[u8],
    start: usize,
    end: usize,
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    head.headers.clear();
    head.connection.clear();
    head.end = end;
    head.query = None;
    head.host = None;
    head.body = BodyKind::None;
    head.expect_continue = false;

    let bytes = &buf[start..end];
    let mut storage: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS_CAP] =
        [const { MaybeUninit::uninit() }; MAX_HEADERS_CAP];
    let max = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(bytes, &mut storage[..max]) {
        Ok(httparse::Status::Complete(n)) if n == bytes.len() => {}
        Ok(_) => return Err(HeadError::BadRequest("malformed head")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeaderTooLarge),
        Err(httparse::Error::Version) => {
            return Err(HeadError::BadRequest("unsupported HTTP version"));
        }
        Err(_) => return Err(HeadError::BadRequest("malformed head")),
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::BadRequest("malformed request line"));
    };
    match method {
        "CONNECT" => return Err(HeadError::MethodNotAllowed),
        m if !KNOWN_METHODS.contains(&m) => return Err(HeadError::NotImplemented),
        _ => {}
    }
    head.method = Span::of(buf, method.as_bytes());
    head.minor_version = minor;
    parse_target(buf, target.as_bytes(), method.as_bytes(), head)?;

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let kind = HeaderKind::of(name);
        let value = Span::of(buf, h.value);
        match kind {
            HeaderKind::ContentLength => {
                if content_length.is_some() {
                    return Err(HeadError::BadRequest("duplicate Content-Length"));
                }
                content_length = Some(
                    parse_content_length(h.value)
                        .ok_or(HeadError::BadRequest("invalid Content-Length"))?,
                );
            }
            HeaderKind::TransferEncoding => {
                transfer_encoding = true;
                for coding in h.value.split(|&b| b == b',') {
                    let coding = trim_ows(coding);
                    if chunked {
                        // Anything after `chunked` means chunked is not the final coding.
                        return Err(HeadError::BadRequest(
                            "chunked must be the final transfer coding",
                        ));
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked = true;
                    } else if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
                        return Err(HeadError::BadRequest("malformed Transfer-Encoding"));
                    } else {
                        // A coding we do not decode (gzip, identity, xchunked ...): the body's
                        // length cannot be known, so the request is refused like any other
                        // ambiguous framing (400 and close), not answered 501.
                        return Err(HeadError::BadRequest("unsupported Transfer-Encoding"));
                    }
                }
            }
            HeaderKind::Host => {
                hosts += 1;
                if !valid_host(h.value) {
                    return Err(HeadError::BadRequest("invalid Host"));
                }
                if head.host.is_none() {
                    head.host = Some(value);
                }
            }
            HeaderKind::Connection if !head.connection.add(buf, value) => {
                return Err(HeadError::BadRequest("invalid Connection"));
            }
            HeaderKind::Expect => {
                if trim_ows(h.value).eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                } else {
                    return Err(HeadError::ExpectationFailed);
                }
            }
            _ => {}
        }
        head.headers.push(Header {
            name: Span::of(buf, name),
            value,
            kind,
        });
    }
    if hosts > 1 {
        return Err(HeadError::BadRequest("more than one Host"));
    }
    if minor == 1 && hosts == 0 {
        return Err(HeadError::BadRequest("HTTP/1.1 request without Host"));
    }
    if transfer_encoding {
        if content_length.is_some() {
            return Err(HeadError::BadRequest(
                "Content-Length with Transfer-Encoding",
            ));
        }
        if minor == 0 {
            return Err(HeadError::BadRequest("Transfer-Encoding in HTTP/1.0"));
        }
        if !chunked {
            return Err(HeadError::BadRequest("malformed Transfer-Encoding"));
        }
        head.body = BodyKind::Chunked;
    } else if let Some(n) = content_length
        && n > 0
    {
        head.body = BodyKind::Length(n);
    }
    head.keep_alive = if minor == 1 {
        !head.connection.close
    } else {
        head.connection.keep_alive && !head.connection.close
    };
    Ok(())
}

fn parse_target(
    buf: &[u8],
    target: &[u8],
    method: &[u8],
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    if target == b"*" {
        if method != b"OPTIONS" {
            return Err(HeadError::BadRequest("'*' target is only for OPTIONS"));
        }
        head.path = Span::of(buf, target);
        return Ok(());
    }
    // A fragment is client-side only (RFC 9110 section 4.2.5): it is dropped, never forwarded.
    let target = match memchr::memchr(b'#', target) {
        Some(f) => &target[..f],
        None => target,
    };
    let rest = if target.first() == Some(&b'/') {
        target
    } else {
        let after = strip_scheme(target).ok_or(HeadError::BadRequest("invalid request target"))?;
        let auth_end = after
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(after.len());
        let authority = &after[..auth_end];
        if authority.is_empty() || authority.contains(&b'@') || !valid_host(authority) {
            return Err(HeadError::BadRequest("invalid authority in request target"));
        }
        head.host = Some(Span::of(buf, authority));
        &after[auth_end..]
    };
    let (path, query) = match rest.iter().position(|&b| b == b'?') {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    if !path.iter().all(|&b| PATH_BYTE[b as usize]) {
        return Err(HeadError::BadRequest("invalid byte in path"));
    }
    if let Some(problem) = path_problem(path) {
        return Err(HeadError::BadRequest(problem));
    }
    if let Some(q) = query {
        if !q.iter().all(|&b| QUERY_BYTE[b as usize]) {
            return Err(HeadError::BadRequest("invalid byte in query"));
        }
        head.query = Some(Span::of(buf, q));
    }
    head.path = Span::of(buf, path);
    Ok(())
}

fn strip_scheme(t: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&t[scheme.len()..]);
        }
    }
    None
}

/// Why a path is refused, if it is: a malformed percent escape, or a dot-segment.
///
/// A dot-segment is `.` or `..` as a whole segment *as some origin may read the path*, since a
/// backend that normalizes it would serve a different path than the one routed (and past any
/// rule on the other path): `/public/..%2fadmin` is `/admin` to nginx, which decodes `%2F`
/// before it resolves dots. So, in any case of the hex digits:
///
/// - a dot is `.`, `%2e`, or an overlong UTF-8 form of it (`%c0%ae`, `%e0%80%ae`, ...: invalid
///   UTF-8 that old IIS and other lax decoders read as `.`);
/// - a segment ends at `/`, `%2f`, `\` encoded as `%5c` (a separator to Windows origins and
///   some frameworks; a literal `\` is refused as a byte), their overlong forms, or the path's
///   start or end;
/// - what follows a `;` in a segment is dropped first, as servlet containers do with path
///   parameters (Tomcat serves `/..;/admin` as `/admin`);
/// - a path is read after one, two and three decoding passes, so `%252e%252e%252f` (`../` to an
///   origin that decodes twice, like IIS before CVE-2001-0333 was fixed, or an application that
///   decodes a path its server already decoded) is refused too. No common origin decodes twice
///   (nginx, Apache, Envoy and Go's net/http do not); the cost is refusing the literal segment
///   `%2e%2e`, which no legitimate client sends, so the gateway errs on the safe side.
///
/// Everything else passes byte for byte: `%2F` inside a segment (`/files/a%2Fb`) is data.
fn path_problem(path: &[u8]) -> Option<&'static str> {
    let mut seg = Segment::default();
    let mut i = 0;
    while i < path.len() {
        let (unit, len) = match path[i] {
            b'/' => (PathUnit::Separator, 1),
            b'.' => (PathUnit::Dot, 1),
            b';' => (PathUnit::Params, 1),
            b'%' => {
                // RFC 3986 pct-encoded is `%` HEXDIG HEXDIG; anything else is read differently
                // by different origins (`%u002e` is `.` to IIS), so it is refused.
                if !path
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                {
                    return Some("invalid percent-encoding in path");
                }
                decoded_unit(path, i)
            }
            _ => (PathUnit::Other, 1),
        };
        if seg.push(unit) {
            return Some("dot-segment in path");
        }
        i += len;
    }
    seg.push(PathUnit::Separator)
        .then_some("dot-segment in path")
}

/// What a piece of a path is to an origin that decodes and normalizes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathUnit {
    Separator,
    Dot,
    /// `;`: path parameters follow, up to the next separator.
    Params,
    Other,
}

/// The segment read so far.
#[derive(Debug, Default)]
struct Segment {
    dots: u8,
    /// Something other than a dot came before any `;`.
    other: bool,
    params: bool,
}

impl Segment {
    /// Takes the next unit; true when it ends a segment that is `.` or `..`.
    fn push(&mut self, unit: PathUnit) -> bool {
        match unit {
            PathUnit::Separator => {
                let dot_segment = !self.other && (self.dots == 1 || self.dots == 2);
                *self = Segment::default();
                return dot_segment;
            }
            _ if self.params => {}
            PathUnit::Params => self.params = true,
            PathUnit::Dot => self.dots = self.dots.saturating_add(1),
            PathUnit::Other => self.other = true,
        }
        false
    }
}

/// How many decoding passes [`path_problem`] looks through (see there why more than one).
const DECODE_PASSES: u8 = 3;

/// The unit at `path[i]` (a well-formed `%` escape) and how many bytes it spans.
fn decoded_unit(path: &[u8], i: usize) -> (PathUnit, usize) {
    let Some((byte, mut len)) = decoded_byte(path, i, DECODE_PASSES) else {
        return (PathUnit::Other, 1);
    };
    let mut ch = byte;
    if let Some((ascii, more)) = overlong_ascii(path, i + len, byte) {
        ch = ascii;
        len += more;
    }
    let unit = match ch {
        b'.' => PathUnit::Dot,
        b'/' | b'\\' => PathUnit::Separator,
        b';' => PathUnit::Params,
        _ => PathUnit::Other,
    };
    (unit, len)
}

/// The byte at `path[i]` after `passes` rounds of percent-decoding, and how many bytes of
/// `path` it spans. An escape that is not one after a round (`%25zz`) stays a literal `%`.
fn decoded_byte(path: &[u8], i: usize, passes: u8) -> Option<(u8, usize)> {
    if passes == 0 {
        return path.get(i).map(|&b| (b, 1));
    }
    let (b, n) = decoded_byte(path, i, passes - 1)?;
    if b != b'%' {
        return Some((b, n));
    }
    let hex = |at: usize| {
        decoded_byte(path, at, passes - 1)
            .and_then(|(d, m)| Some((char::from(d).to_digit(16)? as u8, m)))
    };
    Some(
        hex(i + n)
            .and_then(|(hi, m)| hex(i + n + m).map(|(lo, k)| ((hi << 4) | lo, n + m + k)))
            .unwrap_or((b'%', n)),
    )
}

/// An overlong UTF-8 encoding of an ASCII byte whose lead byte `lead` was just decoded and
/// whose continuation bytes start at `path[i]`: the ASCII byte and the continuation's length.
fn overlong_ascii(path: &[u8], i: usize, lead: u8) -> Option<(u8, usize)> {
    // Lead bytes 0xC0..=0xFD announce 1 to 5 continuation bytes (the 5- and 6-byte forms are
    // obsolete, which is what lax decoders accept them as).
    let continuations = match lead {
        0xC0..=0xDF => 1,
        0xE0..=0xEF => 2,
        0xF0..=0xF7 => 3,
        0xF8..=0xFB => 4,
        0xFC..=0xFD => 5,
        _ => return None,
    };
    let mut code = u32::from(lead & (0x7F >> (continuations + 1)));
    let mut len = 0;
    for _ in 0..continuations {
        let (b, n) = decoded_byte(path, i + len, DECODE_PASSES)?;
        if b & 0xC0 != 0x80 {
            return None;
        }
        code = (code << 6) | u32::from(b & 0x3F);
        len += n;
    }
    u8::try_from(code)
        .ok()
        .filter(u8::is_ascii)
        .map(|ascii| (ascii, len))
}

/// Host header / authority: RFC 3986 host characters and an optional port, nothing else.
fn valid_host(v: &[u8]) -> bool {
    !v.is_empty()
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b))
}

/// HTTP methods a request may use: the IANA registry's methods that llhttp's strict mode
/// knows for HTTP (RTSP and ICE methods are refused, as llhttp does). Unknown methods get 501.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "TRACE",
    "QUERY",
    "COPY",
    "LOCK",
    "MKCOL",
    "MOVE",
    "PROPFIND",
    "PROPPATCH",
    "SEARCH",
    "UNLOCK",
    "BIND",
    "REBIND",
    "UNBIND",
    "ACL",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "MERGE",
    "M-SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "PURGE",
    "MKCALENDAR",
    "LINK",
    "UNLINK",
    "SOURCE",
];

/// Bytes allowed in a path: RFC 3986 pchar and '/', plus the characters httparse admits that
/// clients send unencoded in practice (`"`, `|`, `{`, `}`, `^`, `` ` ``, `<`, `>`) — but never
/// `\`, controls, space or non-ASCII. (`#` never gets here: the fragment is cut first.)
static PATH_BYTE: [bool; 256] = byte_table(b"\\#");
/// Query bytes: as the path, and `\` too (it cannot change the routed path).
static QUERY_BYTE: [bool; 256] = byte_table(b"#");

const fn byte_table(except: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = true;
        b += 1;
    }
    let mut i = 0;
    while i < except.len() {
        t[except[i] as usize] = false;
        i += 1;
    }
    t
}

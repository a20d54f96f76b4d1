//! A client's byte stream read the way a connection reads it: scan for a head as bytes arrive
//! (the buffer only grows), parse it, decode its body, then the next pipelined request while
//! the client keeps the connection open.
//!
//! The stream is read twice, once arriving whole and once cut into the input's pieces, and
//! both readings must agree on every message, every body byte and how the stream ends. Along
//! the way each call is checked against its contract: spans inside the buffer, heads that end
//! in CRLFCRLF and carry no bare CR or LF, never both Content-Length and Transfer-Encoding,
//! decoders that consume no more than they were given.
//!
//! Flags (see [`crate::Input`]): bits 0-1 pick the limits; bit 2 makes the whole reading
//! parse every head into a fresh `RequestHead` while the cut one reuses one (as a connection
//! does), so state left over from a previous head shows up as a difference.

use turnpike_core::h1::body::BodyDecoder;
use turnpike_core::h1::chunked::{ChunkError, ChunkedDecoder, Event};
use turnpike_core::h1::head::parse_content_length;
use turnpike_core::h1::request::{BodyKind, HeadError, HeadScanner, Limits, RequestHead, parse};
use turnpike_core::h1::{HeaderKind, Span};

use crate::{Feeder, Input, has_bare_cr_or_lf, is_tchar};

const LIMITS: [Limits; 4] = [
    Limits {
        max_head_bytes: 16 * 1024,
        max_headers: 100,
    },
    Limits {
        max_head_bytes: 64,
        max_headers: 3,
    },
    Limits {
        max_head_bytes: 512,
        max_headers: 16,
    },
    Limits {
        max_head_bytes: 4096,
        max_headers: 1000,
    },
];

/// One request as read, in owned bytes so two readings can be compared.
#[derive(Debug, PartialEq)]
struct Message {
    /// Offsets in the stream: where the head starts (after skipped empty lines) and ends,
    /// and where the body ends.
    head: (usize, usize),
    body_end: usize,
    method: Vec<u8>,
    path: Vec<u8>,
    query: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
    minor_version: u8,
    headers: Vec<(Vec<u8>, Vec<u8>, HeaderKind)>,
    body_kind: BodyKind,
    keep_alive: bool,
    expect_continue: bool,
    connection: (bool, bool, bool, bool),
    body: Vec<u8>,
    trailers: Vec<u8>,
}

#[derive(Debug, PartialEq)]
enum End {
    /// The stream ended inside a message (or between messages).
    Incomplete,
    /// The last message did not keep the connection open; later bytes are never read.
    Closed,
    HeadRejected(HeadError),
    BodyRejected(ChunkError),
}

pub fn check(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let limits = LIMITS[usize::from(input.flags & 3)];
    let fresh_heads = input.flags & 4 != 0;
    let stream = input.stream;
    let whole = read(stream, Feeder::whole(stream.len()), &limits, fresh_heads);
    let cut = read(
        stream,
        Feeder::split(&input.pieces, stream.len()),
        &limits,
        false,
    );
    assert_eq!(whole.0, cut.0, "messages differ between whole and cut");
    let same_end = whole.1 == cut.1
        // Scanning a whole head finds a bad line ending before it checks the size; arriving in
        // pieces, the size limit can trip first. Both refuse the request.
        || matches!(
            (&whole.1, &cut.1),
            (
                End::HeadRejected(HeadError::BadRequest("bare LF" | "bare CR")),
                End::HeadRejected(HeadError::UriTooLong | HeadError::HeaderTooLarge)
            )
        );
    assert!(same_end, "whole ends {:?}, cut ends {:?}", whole.1, cut.1);
}

/// Reads requests from `stream` as `feed` lets bytes arrive.
fn read(stream: &[u8], mut feed: Feeder<'_>, limits: &Limits, fresh: bool) -> (Vec<Message>, End) {
    let mut msgs = Vec::new();
    let mut reused = RequestHead::default();
    let mut scanner = HeadScanner::default();
    // Where the connection's read buffer starts: bytes before it were drained.
    let mut pos = 0;
    loop {
        // The head: scan whenever bytes are buffered, read more until one is complete.
        scanner.reset();
        let (start, end) = loop {
            let buf = &stream[pos..feed.fed];
            if !buf.is_empty() {
                match scanner.scan(buf, limits) {
                    Ok(Some(span)) => break check_span(buf, span, limits),
                    Ok(None) => {}
                    Err(e) => return (msgs, End::HeadRejected(e)),
                }
            }
            if !feed.more() {
                return (msgs, End::Incomplete);
            }
        };
        let buf = &stream[pos..feed.fed];
        let mut fresh_head = RequestHead::default();
        let head = if fresh { &mut fresh_head } else { &mut reused };
        if let Err(e) = parse(buf, start, end, limits, head) {
            return (msgs, End::HeadRejected(e));
        }
        let mut msg = check_head(buf, start, end, head);
        msg.head = (pos + start, pos + end);

        // The body, over whatever follows the head, reading more as the decoder asks.
        let mut decoder = match head.body {
            BodyKind::None => BodyDecoder::Length(0),
            BodyKind::Length(n) => BodyDecoder::Length(n),
            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
        };
        let mut at = pos + end;
        loop {
            let input = &stream[at..feed.fed];
            let (n, ev) = match decoder.decode(input) {
                Ok(r) => r,
                Err(e) => return (msgs, End::BodyRejected(e)),
            };
            assert!(n <= input.len(), "consumed {n} of {}", input.len());
            match ev {
                Event::Data(r) => {
                    assert!(r.start < r.end && r.end <= n, "data {r:?}, consumed {n}");
                    msg.body.extend_from_slice(&input[r]);
                }
                Event::Trailer(r) => {
                    assert!(head.body == BodyKind::Chunked);
                    assert!(r.start < r.end && r.end <= n, "trailer {r:?}, consumed {n}");
                    msg.trailers.extend_from_slice(&input[r]);
                }
                Event::LastChunk => assert!(n > 0 && head.body == BodyKind::Chunked),
                Event::Done => {
                    at += n;
                    break;
                }
                Event::NeedMore => {
                    assert_eq!(n, input.len(), "NeedMore with input left");
                    at += n;
                    if !feed.more() {
                        return (msgs, End::Incomplete);
                    }
                    continue;
                }
            }
            at += n;
        }
        assert!(decoder.is_done());
        match head.body {
            BodyKind::None => assert!(msg.body.is_empty()),
            BodyKind::Length(n) => assert_eq!(msg.body.len() as u64, n),
            BodyKind::Chunked => {
                assert_eq!(msg.body.len() as u64, decoder.chunked_total());
                check_trailers(&msg.trailers);
            }
        }
        msg.body_end = at;
        let keep_alive = head.keep_alive;
        msgs.push(msg);
        if !keep_alive {
            return (msgs, End::Closed);
        }
        // The connection drains what this request used and reads the next one.
        pos = at;
    }
}

/// `scan`'s answer: a head inside the buffer, after empty lines only, ending in CRLFCRLF,
/// within the size limit, with every line ended by CRLF.
fn check_span(buf: &[u8], (start, end): (usize, usize), limits: &Limits) -> (usize, usize) {
    assert!(
        start < end && end <= buf.len(),
        "span {start}..{end} of {}",
        buf.len()
    );
    assert!(
        buf[..start].chunks(2).all(|c| c == b"\r\n"),
        "skipped bytes that are not empty lines"
    );
    let head = &buf[start..end];
    assert!(head.len() >= 4 && head.ends_with(b"\r\n\r\n"), "{head:?}");
    assert!(head[0] != b'\r' && head[0] != b'\n');
    assert!(
        head.len() <= limits.max_head_bytes,
        "head of {} bytes over the limit of {}",
        head.len(),
        limits.max_head_bytes
    );
    assert!(!has_bare_cr_or_lf(head), "bare CR or LF in {head:?}");
    (start, end)
}

fn inside(s: Span, start: usize, end: usize) -> bool {
    s.start <= s.end && start <= s.start as usize && s.end as usize <= end
}

/// What `parse` accepted: every span inside the head, and a head a smuggling-safe proxy may
/// forward. Returns the message's owned form (body still empty).
fn check_head(buf: &[u8], start: usize, end: usize, head: &RequestHead) -> Message {
    assert_eq!(head.end, end);
    let spans = [head.method, head.path]
        .into_iter()
        .chain(head.query)
        .chain(head.host)
        .chain(head.headers.iter().flat_map(|h| [h.name, h.value]));
    for s in spans {
        assert!(inside(s, start, end), "span {s:?} outside {start}..{end}");
    }
    let raw = &buf[start..end];
    assert!(!has_bare_cr_or_lf(raw));

    let method = head.method.get(buf);
    assert!(!method.is_empty() && method.iter().all(|&b| is_tchar(b)));
    assert_ne!(method, b"CONNECT");
    assert!(head.minor_version <= 1);

    let path = head.path.get(buf);
    if path == b"*" {
        assert_eq!(method, b"OPTIONS");
    } else {
        assert!(path.is_empty() || path[0] == b'/', "path {path:?}");
        assert!(
            path.iter()
                .all(|&b| (0x21..0x7f).contains(&b) && b != b'\\' && b != b'#')
        );
        assert!(!has_dot_segment(path), "dot-segment in {path:?}");
        assert!(
            path.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'%')
                .all(|(i, _)| path
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))),
            "malformed percent escape in {path:?}"
        );
    }
    if let Some(q) = head.query {
        assert!(
            q.get(buf)
                .iter()
                .all(|&b| (0x21..0x7f).contains(&b) && b != b'#')
        );
    }
    if let Some(h) = head.host {
        let h = h.get(buf);
        assert!(!h.is_empty() && !h.contains(&b'@') && !h.contains(&b'/'));
    }

    let count = |k: HeaderKind| head.headers.iter().filter(|h| h.kind == k).count();
    let (cl, te, hosts) = (
        count(HeaderKind::ContentLength),
        count(HeaderKind::TransferEncoding),
        count(HeaderKind::Host),
    );
    assert!(cl <= 1, "{cl} Content-Length headers");
    assert!(cl == 0 || te == 0, "Content-Length with Transfer-Encoding");
    assert!(hosts <= 1, "{hosts} Host headers");
    if head.minor_version == 1 {
        assert!(head.host.is_some(), "HTTP/1.1 without a host");
    }
    for h in &head.headers {
        let name = h.name.get(buf);
        assert!(
            !name.is_empty() && name.iter().all(|&b| is_tchar(b)),
            "name {name:?}"
        );
        assert_eq!(h.kind, HeaderKind::of(name));
        let value = h.value.get(buf);
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "value {value:?}"
        );
    }
    let length = head
        .headers
        .iter()
        .find(|h| h.kind == HeaderKind::ContentLength)
        .map(|h| parse_content_length(h.value.get(buf)).expect("accepted Content-Length parses"));
    match head.body {
        BodyKind::None => assert!(te == 0 && length.unwrap_or(0) == 0),
        BodyKind::Length(n) => assert!(te == 0 && n > 0 && length == Some(n)),
        BodyKind::Chunked => {
            assert!(te > 0 && head.minor_version == 1);
            let last = head
                .headers
                .iter()
                .rfind(|h| h.kind == HeaderKind::TransferEncoding)
                .map(|h| h.value.get(buf))
                .unwrap_or_default();
            let last = last.rsplit(|&b| b == b',').next().unwrap_or_default();
            assert!(trim(last).eq_ignore_ascii_case(b"chunked"), "{last:?}");
        }
    }
    let c = &head.connection;
    let want_keep_alive = if head.minor_version == 1 {
        !c.close
    } else {
        c.keep_alive && !c.close
    };
    assert_eq!(head.keep_alive, want_keep_alive);

    let own = |s: Span| s.get(buf).to_vec();
    Message {
        head: (start, end),
        body_end: 0,
        method: method.to_vec(),
        path: path.to_vec(),
        query: head.query.map(own),
        host: head.host.map(own),
        minor_version: head.minor_version,
        headers: head
            .headers
            .iter()
            .map(|h| (own(h.name), own(h.value), h.kind))
            .collect(),
        body_kind: head.body,
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
        connection: (c.close, c.keep_alive, c.upgrade, c.has_names()),
        body: Vec::new(),
        trailers: Vec::new(),
    }
}

/// Trailer bytes handed out are whole `name: value CRLF` lines.
fn check_trailers(t: &[u8]) {
    if t.is_empty() {
        return;
    }
    assert!(t.ends_with(b"\r\n") && !has_bare_cr_or_lf(t), "{t:?}");
    for line in t[..t.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .expect("trailer has a colon");
        assert!(colon > 0 && line[..colon].iter().all(|&b| is_tchar(b)));
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(s, |e| e + 1);
    &v[s..e]
}

/// A `.` or `..` segment as some origin may read the path, written independently of the
/// parser's unit-by-unit reading: the whole path after zero to three rounds of percent-decoding
/// (each round left to right over the previous one), overlong UTF-8 for ASCII folded to the
/// ASCII byte, `/` and `\` both separators, a segment's `;` parameters dropped.
fn has_dot_segment(path: &[u8]) -> bool {
    let mut form = path.to_vec();
    for round in 0..=3 {
        if round > 0 {
            form = percent_decode(&form);
        }
        let folded = fold_overlong(&form);
        let dot = folded.split(|&b| b == b'/' || b == b'\\').any(|seg| {
            let seg = seg.split(|&b| b == b';').next().unwrap_or_default();
            seg == b"." || seg == b".."
        });
        if dot {
            return true;
        }
    }
    false
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).and_then(|&b| hex(b)),
                s.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Replaces each overlong encoding of an ASCII byte (`C0 AE`, `E0 80 AE`, ... up to the old
/// six-byte form) with that byte.
fn fold_overlong(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let lead = s[i];
        let n = match lead {
            0xC0..=0xDF => 1,
            0xE0..=0xEF => 2,
            0xF0..=0xF7 => 3,
            0xF8..=0xFB => 4,
            0xFC..=0xFD => 5,
            _ => 0,
        };
        let cont = s
            .get(i + 1..i + 1 + n)
            .filter(|c| c.iter().all(|&b| b & 0xC0 == 0x80));
        if n > 0
            && let Some(cont) = cont
        {
            let value = cont
                .iter()
                .fold(u64::from(lead) & (0x7F >> (n + 1)), |v, &b| {
                    (v << 6) | u64::from(b & 0x3F)
                });
            if value < 0x80 {
                out.push(value as u8);
                i += 1 + n;
                continue;
            }
        }
        out.push(lead);
        i += 1;
    }
    out
}

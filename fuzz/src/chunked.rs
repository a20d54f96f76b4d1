//! The chunked decoder alone: a body read whole and cut into the input's pieces must decode to
//! the same data, trailers and end; the decoded total must be the sum of the `Data` ranges; and
//! the outcome must match a small non-streaming decoder written from the grammar the decoder
//! documents (RFC 9112 section 7.1, strict: no whitespace, CRLF only).

use turnpike_core::h1::chunked::{ChunkError, ChunkedDecoder, Event};

use crate::{Feeder, Input, is_tchar};

#[derive(Debug, PartialEq)]
enum End {
    /// Done after this many bytes of the stream.
    Done(usize),
    Incomplete,
    Rejected(ChunkError),
}

#[derive(Debug, PartialEq)]
struct Decoded {
    data: Vec<u8>,
    trailers: Vec<u8>,
    last_chunk: bool,
    end: End,
}

pub fn check(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let stream = input.stream;
    let whole = decode(stream, Feeder::whole(stream.len()));
    let cut = decode(stream, Feeder::split(&input.pieces, stream.len()));
    if matches!(whole.end, End::Rejected(_)) {
        // Trailer bytes go out as they are validated, so a cut body hands out the start of a
        // trailer line that a whole one refuses before handing it out (found by this target:
        // not a decoder bug, the same holds for data before a framing error).
        assert_eq!(
            (&whole.data, whole.last_chunk, &whole.end),
            (&cut.data, cut.last_chunk, &cut.end),
            "whole and cut decode differently"
        );
        assert!(cut.trailers.starts_with(&whole.trailers));
    } else {
        assert_eq!(whole, cut, "whole and cut decode differently");
    }

    // The limits on size lines and trailers are the decoder's own; the reference has none.
    if matches!(
        whole.end,
        End::Rejected(ChunkError::Malformed(
            "chunk size line too long" | "trailers too large"
        ))
    ) {
        return;
    }
    match (reference(stream), &whole.end) {
        (
            Reference::Done {
                data,
                trailers,
                used,
            },
            End::Done(n),
        ) => {
            assert_eq!((&data, &trailers, used), (&whole.data, &whole.trailers, *n));
        }
        (Reference::Incomplete, End::Incomplete) | (Reference::Invalid, End::Rejected(_)) => {}
        (r, _) => panic!("reference decoder says {r:?}, decoder {whole:?}"),
    }
}

fn decode(stream: &[u8], mut feed: Feeder<'_>) -> Decoded {
    let mut d = ChunkedDecoder::new();
    let mut out = Decoded {
        data: Vec::new(),
        trailers: Vec::new(),
        last_chunk: false,
        end: End::Incomplete,
    };
    let mut at = 0;
    let mut sum: u64 = 0;
    out.end = loop {
        let input = &stream[at..feed.fed];
        let (n, ev) = match d.decode(input) {
            Ok(r) => r,
            Err(e) => break End::Rejected(e),
        };
        assert!(n <= input.len(), "consumed {n} of {}", input.len());
        match ev {
            Event::Data(r) => {
                assert!(!out.last_chunk, "data after the last chunk");
                assert!(r.start < r.end && r.end <= n, "data {r:?}, consumed {n}");
                sum += r.len() as u64;
                out.data.extend_from_slice(&input[r]);
            }
            Event::Trailer(r) => {
                assert!(out.last_chunk, "trailer before the last chunk");
                assert!(r.start < r.end && r.end <= n, "trailer {r:?}, consumed {n}");
                out.trailers.extend_from_slice(&input[r]);
            }
            Event::LastChunk => {
                assert!(!out.last_chunk && n > 0);
                out.last_chunk = true;
            }
            Event::Done => {
                assert!(out.last_chunk && d.is_done());
                at += n;
                // A finished decoder consumes nothing more.
                assert_eq!(d.decode(&stream[at..feed.fed]), Ok((0, Event::Done)));
                break End::Done(at);
            }
            Event::NeedMore => {
                assert_eq!(n, input.len(), "NeedMore with input left");
                at += n;
                if !feed.more() {
                    break End::Incomplete;
                }
                continue;
            }
        }
        at += n;
    };
    assert_eq!(d.total, sum, "total is not the sum of the data ranges");
    assert_eq!(d.is_done(), matches!(out.end, End::Done(_)));
    out
}

#[derive(Debug)]
enum Reference {
    Done {
        data: Vec<u8>,
        trailers: Vec<u8>,
        used: usize,
    },
    Incomplete,
    Invalid,
}

/// The whole body at once: `chunk-size [ext] CRLF data CRLF ... 0 [ext] CRLF trailers CRLF`
/// where `ext = *( ";" token [ "=" ( token / quoted-string ) ] )` and a trailer line is
/// `token ":" *( HTAB / SP / VCHAR / obs-text ) CRLF`. A byte that cannot continue the grammar
/// is `Invalid`; running out first is `Incomplete`.
fn reference(b: &[u8]) -> Reference {
    macro_rules! at {
        ($i:expr) => {
            match b.get($i) {
                Some(&c) => c,
                None => return Reference::Incomplete,
            }
        };
    }
    let qdtext = |c: u8| matches!(c, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..);
    let escaped = |c: u8| matches!(c, b'\t' | b' ' | 0x21..=0x7e | 0x80..);
    let mut data = Vec::new();
    let mut i = 0;
    loop {
        let mut size: u64 = 0;
        let mut digits = 0;
        let mut c = at!(i);
        while let Some(d) = (c as char).to_digit(16) {
            digits += 1;
            if digits > 16 {
                return Reference::Invalid;
            }
            size = size << 4 | u64::from(d);
            i += 1;
            c = at!(i);
        }
        if digits == 0 {
            return Reference::Invalid;
        }
        while c == b';' {
            i += 1;
            if !is_tchar(at!(i)) {
                return Reference::Invalid;
            }
            while is_tchar(at!(i)) {
                i += 1;
            }
            if at!(i) == b'=' {
                i += 1;
                if at!(i) == b'"' {
                    i += 1;
                    loop {
                        match at!(i) {
                            b'"' => break,
                            b'\\' if escaped(at!(i + 1)) => i += 2,
                            q if qdtext(q) => i += 1,
                            _ => return Reference::Invalid,
                        }
                    }
                    i += 1;
                } else {
                    if !is_tchar(at!(i)) {
                        return Reference::Invalid;
                    }
                    while is_tchar(at!(i)) {
                        i += 1;
                    }
                }
            }
            c = at!(i);
        }
        if c != b'\r' || at!(i + 1) != b'\n' {
            return Reference::Invalid;
        }
        i += 2;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if b.len() - i < size {
            return Reference::Incomplete;
        }
        data.extend_from_slice(&b[i..i + size]);
        i += size;
        if at!(i) != b'\r' || at!(i + 1) != b'\n' {
            return Reference::Invalid;
        }
        i += 2;
    }
    let trailers_from = i;
    loop {
        if at!(i) == b'\r' {
            if at!(i + 1) != b'\n' {
                return Reference::Invalid;
            }
            return Reference::Done {
                data,
                trailers: b[trailers_from..i].to_vec(),
                used: i + 2,
            };
        }
        if !is_tchar(at!(i)) {
            return Reference::Invalid;
        }
        while is_tchar(at!(i)) {
            i += 1;
        }
        if at!(i) != b':' {
            return Reference::Invalid;
        }
        i += 1;
        while matches!(at!(i), b'\t' | 0x20..=0x7e | 0x80..) {
            i += 1;
        }
        if at!(i) != b'\r' || at!(i + 1) != b'\n' {
            return Reference::Invalid;
        }
        i += 2;
    }
}

use super::*;

fn head(text: &str) -> Head {
    parse_head(text.as_bytes(), false)
        .expect("valid")
        .expect("complete")
}

#[test]
fn frames_heads() {
    let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(
        (h.status, h.framing, h.close, h.len),
        (200, Framing::Length(5), false, 38)
    );
    assert_eq!(head("HTTP/1.1 204 No\r\n\r\n").framing, Framing::Empty);
    assert_eq!(
        head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing,
        Framing::Empty
    );
    let h =
        head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(h.framing, Framing::Chunked);
    let h = head("HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!((h.framing, h.close), (Framing::UntilClose, true));
    assert!(head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").close);
    assert!(!head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n").close);
    assert!(head("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 1\r\n\r\n").close);
    let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
    assert_eq!(h.expect("ok").expect("complete").framing, Framing::Empty);
}

#[test]
fn partial_and_bad_heads() {
    assert_eq!(
        parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false),
        Ok(None)
    );
    assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", false).is_err());
    assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
    assert!(
        parse_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err()
    );
}

/// Feeds `body` to a decoder in pieces of `step` bytes; returns bytes consumed when done.
fn skip(framing: Framing, body: &[u8], step: usize) -> Result<usize, ResponseError> {
    let mut b = Body::new(framing);
    let mut at = 0;
    while !b.is_done() && at < body.len() {
        let end = (at + step).min(body.len());
        at += b.consume(&body[at..end])?;
    }
    assert!(b.is_done(), "not done after {at} bytes");
    Ok(at)
}

#[test]
fn skips_chunked_bodies_across_any_split() {
    let body = b"5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    for step in 1..body.len() {
        assert_eq!(
            skip(Framing::Chunked, body, step),
            Ok(body.len() - 4),
            "step {step}"
        );
    }
    assert_eq!(skip(Framing::Chunked, b"0\r\n\r\n", 1), Ok(5));
    assert_eq!(skip(Framing::Chunked, b"0\n\n", 2), Ok(3));
}

#[test]
fn skips_length_bodies() {
    assert_eq!(skip(Framing::Length(3), b"abcdef", 1), Ok(3));
    assert_eq!(skip(Framing::Length(3), b"abcdef", 10), Ok(3));
}

#[test]
fn refuses_bad_chunks() {
    assert!(skip(Framing::Chunked, b"x\r\n", 1).is_err());
    assert!(skip(Framing::Chunked, b"1\r\nab\r\n", 1).is_err());
    assert!(skip(Framing::Chunked, b"ffffffffffffffffff\r\n", 1).is_err());
}

/// The fuzz target's property (see loadtest/fuzz) on generated inputs, so stable CI runs it:
/// never panic, and splitting a body anywhere changes nothing.
#[test]
fn arbitrary_bytes_never_panic_and_splits_agree() {
    const PIECES: [&[u8]; 12] = [
        b"HTTP/1.1 200 OK\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Content-Length: 3\r\n",
        b"\r\n",
        b"5\r\nhello\r\n",
        b"0\r\n\r\n",
        b"ffffffff;x\r\n",
        b"abc",
        b"\n",
        b"X-T: 1\r\n",
        b"HTTP/1.0 204 No\r\n",
        b"\x00\xff",
    ];
    let mut rng = crate::request::Rng::new(42);
    for _ in 0..20_000 {
        let mut data = Vec::new();
        for _ in 0..rng.below(8) {
            data.extend_from_slice(PIECES[rng.below(PIECES.len() as u64) as usize]);
        }
        let (start, framing) = match parse_head(&data, rng.below(2) == 1) {
            Ok(Some(h)) => (h.len, h.framing),
            _ => (0, Framing::Chunked),
        };
        let body = &data[start..];
        let mut whole = Body::new(framing);
        let w = whole.consume(body).map(|n| (n, whole.is_done()));
        let at = rng.below(body.len() as u64 + 1) as usize;
        let mut split = Body::new(framing);
        let p = split.consume(&body[..at]).and_then(|n| {
            if split.is_done() {
                return Ok((n, true));
            }
            split.consume(&body[at..]).map(|m| (n + m, split.is_done()))
        });
        assert_eq!(w.is_ok(), p.is_ok(), "{data:?} split at {at}");
        if let (Ok(w), Ok(p)) = (w, p) {
            assert_eq!(w, p, "{data:?} split at {at}");
        }
    }
}

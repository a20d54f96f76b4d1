//! A streaming chunked-body decoder (RFC 9112 section 7.1) that validates every byte.
//!
//! Input arrives in pieces; [`ChunkedDecoder::decode`] consumes what it can and reports one
//! [`Event`] at a time, so the caller can forward data as it comes and re-frame it. It is
//! strict like llhttp: no whitespace around the size, extensions must be `;token[=token|"..."]`,
//! every line ends in CRLF, trailer fields are well-formed.

use std::ops::Range;

/// Longest chunk-size line (size and extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// Most trailer bytes accepted.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Malformed framing: the message cannot be delimited; the connection must close.
    Malformed(&'static str),
}

/// What the decoder found in the input it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Chunk data: this range of the input.
    Data(Range<usize>),
    /// The zero-size chunk line was read; trailers (if any) and the final CRLF follow.
    LastChunk,
    /// Raw, validated trailer-field bytes (whole or partial lines, CRLFs included).
    Trailer(Range<usize>),
    /// The body is complete.
    Done,
    /// All input consumed; more is needed.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Size,
    ExtStart,
    ExtName,
    ExtValueStart,
    ExtValueToken,
    ExtQuoted,
    ExtQuotedEscape,
    ExtQuotedEnd,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u8,
    line: usize,
    trailers: usize,
    /// Decoded data bytes so far (for body-size limits).
    pub total: u64,
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder::default()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`; returns how many bytes were consumed and what was found.
    /// Call again with the rest of the input until `NeedMore` or `Done`.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Event), ChunkError> {
        use State::*;
        let bad = ChunkError::Malformed;
        let mut i = 0;
        // A trailer line cut by the end of the previous input continues here.
        let mut trailer_from =
            matches!(self.state, TrailerName | TrailerValue | TrailerLf).then_some(0);
        while i < input.len() {
            let b = input[i];
            match self.state {
                Data => {
                    let n = usize::try_from(self.size)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    self.size -= n as u64;
                    self.total += n as u64;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    return Ok((i + n, Event::Data(i..i + n)));
                }
                Size => {
                    let d = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        b'A'..=b'F' => b - b'A' + 10,
                        b';' if self.digits > 0 => {
                            self.state = ExtStart;
                            i += 1;
                            continue;
                        }
                        b'\r' if self.digits > 0 => {
                            self.state = SizeLf;
                            i += 1;
                            continue;
                        }
                        _ => return Err(bad("invalid chunk size")),
                    };
                    if self.digits == 16 {
                        return Err(bad("chunk size too long"));
                    }
                    self.digits += 1;
                    self.size = (self.size << 4) | u64::from(d);
                }
                ExtStart => {
                    self.state = if is_tchar(b) {
                        ExtName
                    } else {
                        return Err(bad("invalid chunk extension"));
                    }
                }
                ExtName => {
                    self.state = match b {
                        b'=' => ExtValueStart,
                        b';' => ExtStart,
                        b'\r' => SizeLf,
                        _ if is_tchar(b) => ExtName,
                        _ => return Err(bad("invalid chunk extension")),
                    }
                }
                ExtValueStart => {
                    self.state = match b {
                        b'"' => ExtQuoted,
                        _ if is_tchar(b) => ExtValueToken,
                        _ => return Err(bad("invalid chunk extension value")),
                    }
                }
                ExtValueToken => {
                    self.state = match b {
                        b';' => ExtStart,
                        b'\r' => SizeLf,
                        _ if is_tchar(b) => ExtValueToken,
                        _ => return Err(bad("invalid chunk extension value")),
                    }
                }
                ExtQuoted => {
                    self.state = match b {
                        b'"' => ExtQuotedEnd,
                        b'\\' => ExtQuotedEscape,
                        b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => ExtQuoted,
                        _ => return Err(bad("invalid quoted chunk extension")),
                    }
                }
                ExtQuotedEscape => {
                    self.state = match b {
                        b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => ExtQuoted,
                        _ => return Err(bad("invalid quoted chunk extension")),
                    }
                }
                ExtQuotedEnd => {
                    self.state = match b {
                        b';' => ExtStart,
                        b'\r' => SizeLf,
                        _ => return Err(bad("invalid chunk extension")),
                    }
                }
                SizeLf => {
                    if b != b'\n' {
                        return Err(bad("chunk size line not ended by CRLF"));
                    }
                    self.line = 0;
                    self.digits = 0;
                    if self.size == 0 {
                        self.state = TrailerLineStart;
                        return Ok((i + 1, Event::LastChunk));
                    }
                    self.state = Data;
                }
                DataCr => {
                    if b != b'\r' {
                        return Err(bad("chunk data not ended by CRLF"));
                    }
                    self.state = DataLf;
                }
                DataLf => {
                    if b != b'\n' {
                        return Err(bad("chunk data not ended by CRLF"));
                    }
                    self.state = Size;
                }
                TrailerLineStart => {
                    if b == b'\r' {
                        if let Some(from) = trailer_from {
                            return Ok((i, Event::Trailer(from..i)));
                        }
                        self.state = FinalLf;
                    } else if is_tchar(b) {
                        trailer_from.get_or_insert(i);
                        self.state = TrailerName;
                    } else {
                        return Err(bad("invalid trailer field"));
                    }
                }
                TrailerName => {
                    self.state = match b {
                        b':' => TrailerValue,
                        _ if is_tchar(b) => TrailerName,
                        _ => return Err(bad("invalid trailer field name")),
                    }
                }
                TrailerValue => {
                    self.state = match b {
                        b'\r' => TrailerLf,
                        b'\t' | b' '..=0x7e | 0x80..=0xff => TrailerValue,
                        _ => return Err(bad("invalid trailer field value")),
                    }
                }
                TrailerLf => {
                    if b != b'\n' {
                        return Err(bad("trailer field not ended by CRLF"));
                    }
                    self.state = TrailerLineStart;
                }
                FinalLf => {
                    if b != b'\n' {
                        return Err(bad("chunked body not ended by CRLF"));
                    }
                    self.state = Done;
                    return Ok((i + 1, Event::Done));
                }
                Done => return Ok((i, Event::Done)),
            }
            if matches!(
                self.state,
                TrailerName | TrailerValue | TrailerLf | TrailerLineStart
            ) {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err(bad("trailers too large"));
                }
            } else if self.state != Data && self.state != DataCr && self.state != DataLf {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err(bad("chunk size line too long"));
                }
            }
            i += 1;
        }
        if self.state == State::Done {
            return Ok((i, Event::Done));
        }
        match trailer_from {
            Some(from) if from < i => Ok((i, Event::Trailer(from..i))),
            _ => Ok((i, Event::NeedMore)),
        }
    }
}

#[inline]
fn is_tchar(b: u8) -> bool {
    super::head::is_tchar(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns (data, trailers, consumed).
    fn run(input: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let (mut data, mut trailers) = (Vec::new(), Vec::new());
        let mut fed = 0;
        let mut pos = 0;
        loop {
            fed = (fed + step).min(input.len());
            loop {
                let (n, ev) = d.decode(&input[pos..fed])?;
                match ev {
                    Event::Data(r) => data.extend_from_slice(&input[pos..fed][r]),
                    Event::Trailer(r) => trailers.extend_from_slice(&input[pos..fed][r]),
                    Event::Done => return Ok((data, trailers, pos + n)),
                    Event::LastChunk => {}
                    Event::NeedMore => {
                        pos += n;
                        break;
                    }
                }
                pos += n;
            }
            if fed == input.len() {
                return Err(ChunkError::Malformed("incomplete"));
            }
        }
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        let body =
            b"5;a=b;c=\"x\\\"y\"\r\nhello\r\n6\r\n world\r\n000\r\nVary: *\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, body.len()] {
            let (data, trailers, used) = run(body, step).expect("valid");
            assert_eq!(data, b"hello world", "step {step}");
            assert_eq!(trailers, b"Vary: *\r\nX-T: 1\r\n", "step {step}");
            assert_eq!(&body[used..], b"NEXT", "step {step}");
        }
    }

    #[test]
    fn counts_decoded_bytes() {
        let mut d = ChunkedDecoder::new();
        let input = b"a\r\n0123456789\r\n0\r\n\r\n";
        let mut pos = 0;
        while !d.is_done() {
            let (n, _) = d.decode(&input[pos..]).expect("valid");
            pos += n;
        }
        assert_eq!(d.total, 10);
    }

    #[test]
    fn refuses_malformed_framing() {
        for bad in [
            &b"a \r\n0123456789\r\n0\r\n\r\n"[..],
            b"2 erf\r\naa\r\n0\r\n\r\n",
            b"2;\r\naa\r\n0\r\n\r\n",
            b"5;a=\"abc\r\nhello\r\n0\r\n\r\n",
            b"5\r\nABCDE0\r\n",
            b"5\r\r;ABCD\r\n",
            b"3 \n  \r\nfoo\r\n\r\n",
            b"1\nA\n0\n\n",
            b"\r\n",
            b"x\r\n",
            b"-1\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"0\r\nBad Name: x\r\n\r\n",
            b"0\r\nX: a\x00b\r\n\r\n",
            b"0\r\n\n",
        ] {
            let r = run(bad, 1);
            assert!(
                matches!(r, Err(ChunkError::Malformed(m)) if m != "incomplete"),
                "{:?} -> {r:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_huge_size_is_fine_until_data_runs_out() {
        let mut d = ChunkedDecoder::new();
        let (n, ev) = d.decode(b"ffffffffffffffff\r\nab").expect("valid");
        assert_eq!(ev, Event::Data(18..20));
        assert_eq!(n, 20);
    }
}

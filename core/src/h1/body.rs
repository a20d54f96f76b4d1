//! Body framing for both directions: a fixed length, chunked, or until the peer closes.
//! One decoder type so request and response bodies stream through the same loop.

use super::chunked::{ChunkError, ChunkedDecoder, Event};

#[derive(Debug)]
pub enum BodyDecoder {
    /// Bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Everything until EOF (responses only).
    UntilClose,
}

impl BodyDecoder {
    /// Consumes from `input`; same contract as [`ChunkedDecoder::decode`]. A length body
    /// reports `Done` once its last byte was handed out.
    #[inline]
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Event), ChunkError> {
        match self {
            BodyDecoder::Length(0) => Ok((0, Event::Done)),
            BodyDecoder::Length(left) => {
                if input.is_empty() {
                    return Ok((0, Event::NeedMore));
                }
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                *left -= n as u64;
                Ok((n, Event::Data(0..n)))
            }
            BodyDecoder::Chunked(d) => d.decode(input),
            BodyDecoder::UntilClose => {
                if input.is_empty() {
                    return Ok((0, Event::NeedMore));
                }
                Ok((input.len(), Event::Data(0..input.len())))
            }
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Length(left) => *left == 0,
            BodyDecoder::Chunked(d) => d.is_done(),
            BodyDecoder::UntilClose => false,
        }
    }

    /// Whether EOF is the body's proper end.
    pub fn ends_at_eof(&self) -> bool {
        matches!(self, BodyDecoder::UntilClose)
    }

    /// Decoded data bytes so far, for chunked bodies (a length body's size is known upfront).
    pub fn chunked_total(&self) -> u64 {
        match self {
            BodyDecoder::Chunked(d) => d.total,
            _ => 0,
        }
    }
}

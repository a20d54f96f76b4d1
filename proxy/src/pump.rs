//! Streams a message body from one socket to another, never holding more than one buffer of
//! it: decode the input framing (length, chunked, until-close), write the output framing (raw
//! or re-chunked). Used for request bodies (client -> upstream) and response bodies (upstream
//! -> client) alike.

use std::time::Duration;

use crate::{
    h1::{body::BodyDecoder, chunked::Event, encode},
    stream::Stream,
    watch::{ConnWatch, Side},
};

/// Output framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Data bytes only (a Content-Length or close-delimited body).
    Raw,
    /// Re-chunked: each data piece as a chunk, trailers kept, last chunk written.
    Chunked,
}

/// Below this size data is copied next to pending output so both leave in one write.
const COALESCE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpError {
    /// The source closed before the body ended.
    SrcEof,
    SrcIo,
    SrcTimeout,
    /// The source's framing is malformed.
    Malformed,
    /// The body passed the size limit.
    TooLarge,
    DstIo,
    DstTimeout,
}

/// Buffers handed back after pumping, with where the unread input after the body starts.
pub struct Pumped {
    pub input: Vec<u8>,
    /// `input[rest..]` came after the body (a pipelined request, or upstream excess).
    pub rest: usize,
    pub scratch: Vec<u8>,
    pub result: Result<(), PumpError>,
    /// Body bytes (decoded, without framing) moved.
    pub bytes: u64,
}

pub struct Pump<'a> {
    pub src: &'a mut Stream,
    pub dst: &'a mut Stream,
    /// The client connection's deadlines, armed around every read and write.
    pub watch: &'a ConnWatch,
    pub decoder: &'a mut BodyDecoder,
    pub out: Out,
    /// Longest wait for the source between reads.
    pub read_idle: Duration,
    /// Longest wait for the destination to take a write.
    pub write_idle: Duration,
    /// Most decoded bytes allowed.
    pub limit: u64,
    /// The cache store's copy of the body as it passes (`None`: not stored).
    pub tap: Option<&'a mut crate::cache::Tap>,
}

impl Pump<'_> {
    /// `input[pos..]` is body input already read; `scratch` may hold output to send first (a
    /// response head), so it leaves with the first piece of body.
    pub async fn run(self, mut input: Vec<u8>, mut pos: usize, mut scratch: Vec<u8>) -> Pumped {
        let Pump {
            src,
            dst,
            watch,
            decoder,
            out,
            read_idle,
            write_idle,
            limit,
            mut tap,
        } = self;
        let (src_fd, dst_fd) = (src.fd(), dst.fd());
        let direct = out == Out::Raw && !matches!(decoder, BodyDecoder::Chunked(_));
        let mut total: u64 = 0;
        macro_rules! fail {
            ($e:expr) => {
                return Pumped {
                    input,
                    rest: pos,
                    scratch,
                    result: Err($e),
                    bytes: total,
                }
            };
        }
        loop {
            let mut done = false;
            let mut direct_range = None;
            while !done {
                let (n, ev) = match decoder.decode(&input[pos..]) {
                    Ok(x) => x,
                    Err(_) => fail!(PumpError::Malformed),
                };
                match ev {
                    Event::Data(r) => {
                        let (s, e) = (pos + r.start, pos + r.end);
                        total += (e - s) as u64;
                        if total > limit {
                            fail!(PumpError::TooLarge);
                        }
                        if let Some(t) = tap.as_deref_mut() {
                            t.take(&input[s..e]);
                        }
                        if direct {
                            if scratch.is_empty() || e - s > COALESCE {
                                direct_range = Some((s, e));
                            } else {
                                scratch.extend_from_slice(&input[s..e]);
                            }
                        } else if out == Out::Chunked {
                            encode::chunk_head(&mut scratch, e - s);
                            scratch.extend_from_slice(&input[s..e]);
                            scratch.extend_from_slice(encode::CRLF);
                        } else {
                            scratch.extend_from_slice(&input[s..e]);
                        }
                    }
                    Event::LastChunk if out == Out::Chunked => scratch.extend_from_slice(b"0\r\n"),
                    Event::Trailer(r) if out == Out::Chunked => {
                        scratch.extend_from_slice(&input[pos + r.start..pos + r.end])
                    }
                    Event::LastChunk | Event::Trailer(_) => {}
                    Event::Done => {
                        if out == Out::Chunked && matches!(decoder, BodyDecoder::Chunked(_)) {
                            scratch.extend_from_slice(encode::CRLF);
                        }
                        done = true;
                    }
                    Event::NeedMore => {
                        pos += n;
                        break;
                    }
                }
                pos += n;
                if direct_range.is_some() {
                    break;
                }
            }
            if !scratch.is_empty() {
                let armed = watch.arm(write_idle, dst_fd, Side::Both);
                let (res, s) = dst.write_all(scratch).await;
                drop(armed);
                scratch = s;
                scratch.clear();
                if res.is_err() {
                    fail!(write_error(watch));
                }
            }
            if let Some((s, e)) = direct_range {
                let armed = watch.arm(write_idle, dst_fd, Side::Both);
                let (res, i) = dst.write_range(input, s, e).await;
                drop(armed);
                input = i;
                if res.is_err() {
                    fail!(write_error(watch));
                }
                continue;
            }
            if done {
                return Pumped {
                    input,
                    rest: pos,
                    scratch,
                    result: Ok(()),
                    bytes: total,
                };
            }
            // Everything read was used: read the next piece into the start of the buffer.
            if pos == input.len() {
                input.clear();
            } else {
                input.drain(..pos);
            }
            pos = 0;
            let cap = input.capacity().max(crate::worker::IO_BUF);
            let armed = watch.arm(read_idle, src_fd, Side::Read);
            let (res, i) = src.read_more(input, cap).await;
            drop(armed);
            input = i;
            if watch.fired() {
                fail!(PumpError::SrcTimeout);
            }
            match res {
                Ok(0) => {
                    if decoder.ends_at_eof() {
                        if out == Out::Chunked {
                            scratch.extend_from_slice(encode::LAST_CHUNK);
                            let armed = watch.arm(write_idle, dst_fd, Side::Both);
                            let (res, s) = dst.write_all(scratch).await;
                            drop(armed);
                            scratch = s;
                            scratch.clear();
                            if res.is_err() {
                                fail!(write_error(watch));
                            }
                        }
                        return Pumped {
                            input,
                            rest: 0,
                            scratch,
                            result: Ok(()),
                            bytes: total,
                        };
                    }
                    fail!(PumpError::SrcEof);
                }
                Ok(_) => {}
                Err(_) => fail!(PumpError::SrcIo),
            }
        }
    }
}

fn write_error(watch: &ConnWatch) -> PumpError {
    if watch.fired() {
        PumpError::DstTimeout
    } else {
        PumpError::DstIo
    }
}

//! Fuzz harnesses for turnpike's HTTP/1.1 codec (`turnpike_core::h1`).
//!
//! Each module is one target: `check(data)` takes libFuzzer's bytes and panics when an
//! invariant breaks. They assert properties, not only "no panic"; the one that matters most for
//! a streaming proxy is that bytes arriving whole or cut at arbitrary points are read the same
//! way (same messages, same body bytes, same accept / reject). The harnesses never touch a
//! socket or a clock, like the code they drive.
//!
//! - [`request_stream`]: head scan -> parse -> body decode -> next pipelined request, as
//!   `conn.rs` and `pump.rs` do it;
//! - [`chunked`]: the chunked decoder alone, against a reference decoder written from the
//!   grammar;
//! - [`response_head`]: upstream response heads, including interim responses and prefixes;
//! - [`auth_policy`]: CIDR lists, `X-Forwarded-For` walking, IAM wildcards and authorizer
//!   answers (`turnpike_core::auth`); its input is a mode byte and the text under test;
//! - [`function_response`]: Lambda function responses (`function::parse_response`); its
//!   input is a format byte and the payload;
//! - [`sigv4`]: SigV4 verification of requests built from separated fields;
//! - [`jws`]: JWT authorizer tokens (`auth::jwt::verify`) and JWKS documents; its input is the
//!   token or document itself, no control byte;
//! - [`template`]: mapping templates (`turnpike_core::template`), arbitrary template text over
//!   a fixed request or fixed templates over an arbitrary body (a mode byte first);
//! - [`jsonpath`]: JSONPath parsing and selection (`path NUL document`);
//! - [`websocket_frames`]: the WebSocket frame decoder (`turnpike_core::websocket`), whole vs
//!   cut, against a reference reassembly;
//! - [`cluster_wire`]: cluster datagrams (sealing and counter payloads); its input is the
//!   datagram itself.
//!
//! Inputs start with a control byte (and, for the streaming targets, piece sizes) so libFuzzer
//! mutates the segmentation along with the bytes: see [`Input`].

pub mod auth_policy;
pub mod chunked;
pub mod cluster_wire;
pub mod function_response;
pub mod jsonpath;
pub mod jws;
pub mod request_stream;
pub mod response_head;
pub mod sigv4;
pub mod template;
pub mod websocket_frames;

/// A fuzz input split into its control part and the bytes under test.
///
/// Layout: `data[0]` is a control byte; its low 3 bits are `n`, the number of piece-size
/// bytes that follow; its high 5 bits are `flags` for the target. Each size byte `b` is a piece
/// of `b + 1` bytes; pieces cycle until the stream is used up. `n == 0` means one byte at a time.
pub struct Input<'a> {
    pub flags: u8,
    pub pieces: Vec<usize>,
    pub stream: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn parse(data: &'a [u8]) -> Option<Input<'a>> {
        let (&control, rest) = data.split_first()?;
        let n = usize::from(control & 7);
        if rest.len() < n {
            return None;
        }
        let (sizes, stream) = rest.split_at(n);
        let mut pieces: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();
        if pieces.is_empty() {
            pieces.push(1);
        }
        Some(Input {
            flags: control >> 3,
            pieces,
            stream,
        })
    }

    /// The bytes of a seed file: control byte, piece sizes (each 1..=256), stream.
    pub fn encode(flags: u8, pieces: &[usize], stream: &[u8]) -> Vec<u8> {
        assert!(pieces.len() < 8 && flags < 32);
        let mut out = vec![(flags << 3) | pieces.len() as u8];
        out.extend(pieces.iter().map(|&p| (p.clamp(1, 256) - 1) as u8));
        out.extend_from_slice(stream);
        out
    }
}

/// How much of a stream has "arrived": grows by one piece per call to [`Feeder::more`].
pub struct Feeder<'p> {
    pieces: &'p [usize],
    next: usize,
    len: usize,
    /// Bytes received so far.
    pub fed: usize,
}

impl<'p> Feeder<'p> {
    /// Everything arrives in one read.
    pub fn whole(len: usize) -> Feeder<'static> {
        Feeder {
            pieces: &[usize::MAX],
            next: 0,
            len,
            fed: 0,
        }
    }

    /// The stream arrives in pieces of the given sizes, cycled.
    pub fn split(pieces: &'p [usize], len: usize) -> Feeder<'p> {
        assert!(pieces.iter().all(|&p| p > 0));
        Feeder {
            pieces,
            next: 0,
            len,
            fed: 0,
        }
    }

    /// Receives the next piece; `false` at end of stream (the peer closed).
    pub fn more(&mut self) -> bool {
        if self.fed == self.len {
            return false;
        }
        let piece = self.pieces[self.next % self.pieces.len()];
        self.next += 1;
        self.fed = self.fed.saturating_add(piece).min(self.len);
        true
    }
}

/// A bare LF (not after CR) or a bare CR (not before LF) in `b`.
pub fn has_bare_cr_or_lf(b: &[u8]) -> bool {
    b.iter().enumerate().any(|(i, &c)| match c {
        b'\n' => i == 0 || b[i - 1] != b'\r',
        b'\r' => b.get(i + 1) != Some(&b'\n'),
        _ => false,
    })
}

/// RFC 9110 tchar.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

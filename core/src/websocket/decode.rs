//! The frame decoder: client frames (RFC 6455 section 5) in, whole messages and control
//! frames out, every violation named with the close code to answer it.
//!
//! Strict, as a server must be: a client frame must be masked (5.1), reserved bits must be
//! clear since no extension is negotiated (5.2), reserved opcodes are refused (5.2), control
//! frames are at most 125 bytes and never fragmented (5.5), lengths use the minimal encoding
//! (5.2), a continuation must continue something and a new data frame must not interrupt a
//! fragmented message (5.4), text is UTF-8 (8.1, checked as fragments arrive so a bad byte is
//! caught at once), a close frame carries nothing, or a valid code and a UTF-8 reason (5.5.1,
//! 7.4). Frames over `max_frame_bytes` and messages over `max_message_bytes` are refused with
//! 1009 as soon as their header says so, before the payload is read.
//!
//! The decoder holds only a message being reassembled; between messages it holds nothing.

use super::{CloseCode, Opcode, is_valid_close_code};

/// Size limits for client frames and reassembled messages, in payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest frame payload (AWS: 32 KiB).
    pub max_frame_bytes: usize,
    /// Largest message payload, all fragments together (AWS: 128 KiB).
    pub max_message_bytes: usize,
}

impl FrameLimits {
    /// API Gateway's WebSocket quotas: frames of 32 KiB, messages of 128 KiB.
    pub const AWS: FrameLimits = FrameLimits {
        max_frame_bytes: 32 * 1024,
        max_message_bytes: 128 * 1024,
    };

    /// The most bytes one frame can take on the wire (header, mask and payload).
    pub fn max_wire_frame(&self) -> usize {
        self.max_frame_bytes + MAX_HEADER
    }
}

/// The longest frame header a client sends: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER: usize = 14;

/// What a decoded frame gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (UTF-8, checked).
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping with its payload (to be answered with a pong carrying the same).
    Ping(Vec<u8>),
    /// A pong (unsolicited ones are allowed and ignored).
    Pong(Vec<u8>),
    /// The client closes: its code (`None`: the frame had no payload) and reason.
    Close { code: Option<u16>, reason: String },
}

/// Why the connection must be closed, and with which code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub code: CloseCode,
    /// A short reason, sent in the close frame (at most 123 bytes).
    pub reason: &'static str,
}

const fn violation(code: CloseCode, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// A frame header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: Opcode,
    pub mask: [u8; 4],
    /// Payload length.
    pub len: usize,
    /// Header length (2 to 14 bytes).
    pub header_len: usize,
}

/// Parses the header at the start of `input`. `Ok(None)`: not all of it has arrived. Checks
/// what a header alone can violate (not the state of a fragmented message).
pub fn parse_header(input: &[u8], limits: &FrameLimits) -> Result<Option<FrameHeader>, Violation> {
    let [b0, b1, ..] = *input else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(violation(CloseCode::Protocol, "reserved bits set"));
    }
    let Some(opcode) = Opcode::from_nibble(b0 & 0x0F) else {
        return Err(violation(CloseCode::Protocol, "reserved opcode"));
    };
    let fin = b0 & 0x80 != 0;
    if b1 & 0x80 == 0 {
        return Err(violation(CloseCode::Protocol, "client frame not masked"));
    }
    if opcode.is_control() && !fin {
        return Err(violation(CloseCode::Protocol, "fragmented control frame"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => {
            let Some(b) = input.get(2..4) else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
            if len < 126 {
                return Err(violation(
                    CloseCode::Protocol,
                    "length not minimally encoded",
                ));
            }
            (len, 4)
        }
        127 => {
            let Some(b) = input.get(2..10) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let len = u64::from_be_bytes(a);
            if len >> 63 != 0 {
                return Err(violation(CloseCode::Protocol, "length's high bit set"));
            }
            if len <= 0xFFFF {
                return Err(violation(
                    CloseCode::Protocol,
                    "length not minimally encoded",
                ));
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && len > 125 {
        return Err(violation(
            CloseCode::Protocol,
            "control frame over 125 bytes",
        ));
    }
    if len > limits.max_frame_bytes as u64 {
        return Err(violation(CloseCode::TooBig, "frame too big"));
    }
    let Some(m) = input.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask: [m[0], m[1], m[2], m[3]],
        len: len as usize,
        header_len: at + 4,
    }))
}

/// XORs `payload` with the masking key (RFC 6455 section 5.3).
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let mut chunks = payload.chunks_exact_mut(4);
    for c in &mut chunks {
        for (b, m) in c.iter_mut().zip(mask) {
            *b ^= m;
        }
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask) {
        *b ^= m;
    }
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Partial {
    text: bool,
    payload: Vec<u8>,
    /// How much of a text payload is known to be UTF-8 (the rest is an incomplete sequence).
    valid_to: usize,
}

/// Reassembles messages from client frames. Feed it the bytes received, from the start of a
/// frame; each call consumes at most one frame.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Option<Box<Partial>>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Whether a fragmented message is in progress.
    pub fn in_message(&self) -> bool {
        self.partial.is_some()
    }

    /// Decodes the frame at the start of `input`. `Ok(None)`: the frame is not complete yet
    /// (nothing consumed). `Ok(Some((n, event)))`: the frame took `n` bytes; `event` is a
    /// whole message or a control frame, `None` for a fragment that continues a message.
    pub fn decode(
        &mut self,
        input: &[u8],
        limits: &FrameLimits,
    ) -> Result<Option<(usize, Option<Event>)>, Violation> {
        let Some(h) = parse_header(input, limits)? else {
            return Ok(None);
        };
        // What the header says about the message state, before waiting for the payload.
        match (h.opcode, &self.partial) {
            (Opcode::Continuation, None) => {
                return Err(violation(CloseCode::Protocol, "continuation of nothing"));
            }
            (Opcode::Text | Opcode::Binary, Some(_)) => {
                return Err(violation(
                    CloseCode::Protocol,
                    "new message inside a fragmented one",
                ));
            }
            (Opcode::Continuation, Some(p))
                if p.payload.len() + h.len > limits.max_message_bytes =>
            {
                return Err(violation(CloseCode::TooBig, "message too big"));
            }
            (Opcode::Text | Opcode::Binary, None) if h.len > limits.max_message_bytes => {
                return Err(violation(CloseCode::TooBig, "message too big"));
            }
            _ => {}
        }
        let end = h.header_len + h.len;
        if input.len() < end {
            return Ok(None);
        }
        let raw = &input[h.header_len..end];
        let event = match h.opcode {
            Opcode::Ping => Some(Event::Ping(unmasked(raw, h.mask))),
            Opcode::Pong => Some(Event::Pong(unmasked(raw, h.mask))),
            Opcode::Close => Some(close_event(&unmasked(raw, h.mask))?),
            Opcode::Text | Opcode::Binary if h.fin => {
                let payload = unmasked(raw, h.mask);
                Some(message(h.opcode == Opcode::Text, payload)?)
            }
            Opcode::Text | Opcode::Binary => {
                let mut p = Box::new(Partial {
                    text: h.opcode == Opcode::Text,
                    payload: Vec::with_capacity(h.len),
                    valid_to: 0,
                });
                append(&mut p, raw, h.mask)?;
                self.partial = Some(p);
                None
            }
            Opcode::Continuation => {
                let Some(p) = self.partial.as_mut() else {
                    return Err(violation(CloseCode::Protocol, "continuation of nothing"));
                };
                append(p, raw, h.mask)?;
                if h.fin {
                    let p = self.partial.take().map(|b| *b);
                    match p {
                        Some(p) => Some(message(p.text, p.payload)?),
                        None => None,
                    }
                } else {
                    None
                }
            }
        };
        Ok(Some((end, event)))
    }
}

fn unmasked(raw: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut v = raw.to_vec();
    unmask(&mut v, mask);
    v
}

/// Appends a fragment, checking text as it comes: an invalid sequence fails now, an
/// incomplete one at the end waits for the next fragment.
fn append(p: &mut Partial, raw: &[u8], mask: [u8; 4]) -> Result<(), Violation> {
    let from = p.payload.len();
    p.payload.extend_from_slice(raw);
    unmask(&mut p.payload[from..], mask);
    if p.text {
        match std::str::from_utf8(&p.payload[p.valid_to..]) {
            Ok(_) => p.valid_to = p.payload.len(),
            Err(e) if e.error_len().is_some() => {
                return Err(violation(CloseCode::InvalidData, "text is not UTF-8"));
            }
            Err(e) => p.valid_to += e.valid_up_to(),
        }
    }
    Ok(())
}

fn message(text: bool, payload: Vec<u8>) -> Result<Event, Violation> {
    if text {
        String::from_utf8(payload)
            .map(Event::Text)
            .map_err(|_| violation(CloseCode::InvalidData, "text is not UTF-8"))
    } else {
        Ok(Event::Binary(payload))
    }
}

fn close_event(payload: &[u8]) -> Result<Event, Violation> {
    match payload {
        [] => Ok(Event::Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(violation(CloseCode::Protocol, "close frame of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !is_valid_close_code(code) {
                return Err(violation(CloseCode::Protocol, "invalid close code"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| violation(CloseCode::InvalidData, "close reason is not UTF-8"))?;
            Ok(Event::Close {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

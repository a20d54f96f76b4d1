//! WebSocket (RFC 6455) without I/O: the opening handshake's checks and answer key
//! ([`handshake`]), the frame decoder that reassembles messages within limits and names the
//! close code of every violation ([`decode`]), the server's frame encoder ([`encode`]), and
//! the WebSocket API model: route selection expressions and connection ids ([`route`],
//! [`id`]).
//!
//! The framing is written here rather than taken from tungstenite: tungstenite reads through
//! `std::io::Read` into a read buffer it owns per connection, which fits neither monoio's owned
//! buffers nor the goal of holding no buffer on an idle connection. A sans-io decoder over a
//! byte slice does both, and is fuzzed (`fuzz/`, target `websocket_frames`).
//!
//! Nothing here touches a socket, a clock or a random source.

pub mod api;
pub mod decode;
pub mod encode;
pub mod event;
pub mod handshake;
pub mod id;
pub mod route;
#[cfg(test)]
mod tests;

pub use decode::{Decoder, Event, FrameLimits, Violation};

/// Frame opcodes (RFC 6455 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl Opcode {
    /// The opcode of a frame's low nibble; `None` for the reserved ones (3-7, B-F).
    pub fn from_nibble(b: u8) -> Option<Opcode> {
        Some(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong (RFC 6455 section 5.5): at most 125 bytes, never fragmented.
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Close status codes the gateway sends (RFC 6455 section 7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    Normal = 1000,
    /// 1001: the server goes away (drain, idle timeout, maximum duration).
    GoingAway = 1001,
    /// 1002: a protocol error (RSV bits, unknown opcode, a fragmented or oversized control
    /// frame, an unmasked client frame, a continuation out of place).
    Protocol = 1002,
    /// 1003: a data type the endpoint cannot accept.
    Unsupported = 1003,
    /// 1007: a text message (or close reason) that is not UTF-8.
    InvalidData = 1007,
    /// 1008: a policy violation (the connection was deleted through @connections).
    Policy = 1008,
    /// 1009: a frame or message over the limits.
    TooBig = 1009,
    /// 1011: the server failed.
    Internal = 1011,
}

impl CloseCode {
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

/// Whether a peer may send `code` in a close frame (RFC 6455 section 7.4: 1000-1003,
/// 1007-1011 and the IANA-registered 1012-1014; 3000-4999 for libraries and applications).
/// 1004-1006 and 1015 are reserved and never sent on the wire.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

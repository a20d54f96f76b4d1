//! Server frames (RFC 6455 section 5.2): unmasked, never fragmented (a message the gateway
//! sends goes out as one frame; clients reassemble any size).

use super::{CloseCode, Opcode};

/// Appends one final, unmasked frame.
pub fn frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    out.push(0x80 | opcode as u8);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` (cut to the 123 bytes a control frame
/// leaves, at a character boundary).
pub fn close(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = [0u8; 125];
    payload[..2].copy_from_slice(&code.as_u16().to_be_bytes());
    payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
    frame(out, Opcode::Close, &payload[..2 + cut]);
}

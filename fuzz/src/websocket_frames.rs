//! Target `websocket_frames`: `websocket::Decoder` over a stream of client frames, as the
//! WebSocket connection driver feeds it.
//!
//! Input: the [`Input`] layout. Flag bit 0 picks small limits (frames of 64 bytes, messages
//! of 256) instead of AWS's, so the fuzzer reaches the 1009 paths with short inputs.
//!
//! Checks besides "no panic": the stream read whole and cut at the input's piece sizes gives
//! the same events and the same end (incomplete / violation with the same code); the decoder
//! never consumes more than given, and `Ok(None)` only when the frame really is incomplete;
//! control payloads are at most 125 bytes; messages within the message limit; a close code
//! it reports is a valid one; every data message it gives equals the unmasked payloads of the
//! frames that made it (checked by a reference reassembly written apart from the decoder).

use turnpike_core::websocket::{
    CloseCode, Decoder, Event, FrameLimits, Violation, decode::unmask, is_valid_close_code,
};

use crate::{Feeder, Input};

#[derive(Debug, PartialEq)]
enum End {
    Incomplete,
    Refused(CloseCode),
}

fn run(stream: &[u8], feeder: &mut Feeder<'_>, limits: &FrameLimits) -> (Vec<Event>, End) {
    let mut d = Decoder::new();
    let mut at = 0;
    let mut events = Vec::new();
    loop {
        let avail = &stream[at..feeder.fed];
        match d.decode(avail, limits) {
            Ok(Some((n, e))) => {
                assert!(n > 0 && n <= avail.len(), "consumed {n} of {}", avail.len());
                at += n;
                events.extend(e);
            }
            Ok(None) => {
                if !feeder.more() {
                    return (events, End::Incomplete);
                }
            }
            Err(Violation { code, reason }) => {
                assert!(!reason.is_empty() && reason.len() <= 123);
                return (events, End::Refused(code));
            }
        }
    }
}

/// Reference: the data messages a well-formed stream holds, reassembled from raw headers
/// (only called on a stream the decoder accepted frame by frame).
fn reference_messages(stream: &[u8]) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(bool, Vec<u8>)> = None;
    let mut at = 0;
    while at + 2 <= stream.len() {
        let b0 = stream[at];
        let b1 = stream[at + 1] & 0x7F;
        let (len, hl) = match b1 {
            126 if at + 4 <= stream.len() => (
                u16::from_be_bytes([stream[at + 2], stream[at + 3]]) as usize,
                4,
            ),
            127 if at + 10 <= stream.len() => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&stream[at + 2..at + 10]);
                (u64::from_be_bytes(a) as usize, 10)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        let start = at + hl + 4;
        let Some(end) = start.checked_add(len).filter(|&e| e <= stream.len()) else {
            break;
        };
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&stream[at + hl..start]);
        let mut payload = stream[start..end].to_vec();
        unmask(&mut payload, mask);
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0F {
            1 | 2 => cur = Some((b0 & 0x0F == 1, payload)),
            0 => {
                if let Some(c) = cur.as_mut() {
                    c.1.extend(payload)
                }
            }
            _ => {}
        }
        if fin && b0 & 0x08 == 0 {
            out.extend(cur.take());
        }
        at = end;
    }
    out
}

pub fn check(data: &[u8]) {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let limits = if input.flags & 1 != 0 {
        FrameLimits {
            max_frame_bytes: 64,
            max_message_bytes: 256,
        }
    } else {
        FrameLimits::AWS
    };
    let s = input.stream;
    let mut whole = Feeder::whole(s.len());
    whole.more();
    let (events, end) = run(s, &mut whole, &limits);
    let mut cut = Feeder::split(&input.pieces, s.len());
    let (cut_events, cut_end) = run(s, &mut cut, &limits);
    assert_eq!(events, cut_events, "whole vs cut events");
    assert_eq!(end, cut_end, "whole vs cut end");
    let mut data_messages = Vec::new();
    for e in &events {
        match e {
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Close { code, reason } => {
                assert!(reason.len() <= 123);
                assert!(code.is_none_or(is_valid_close_code));
            }
            Event::Text(t) => {
                assert!(t.len() <= limits.max_message_bytes);
                data_messages.push((true, t.as_bytes().to_vec()));
            }
            Event::Binary(b) => {
                assert!(b.len() <= limits.max_message_bytes);
                data_messages.push((false, b.clone()));
            }
        }
    }
    let mut reference = reference_messages(s);
    reference.truncate(data_messages.len());
    assert_eq!(data_messages, reference, "messages vs reference reassembly");
}

//! See `turnpike_fuzz::websocket_frames` for the input format and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnpike_fuzz::websocket_frames::check(data));

//! See `turnpike_fuzz::sigv4` for the input format and what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnpike_fuzz::sigv4::check(data));

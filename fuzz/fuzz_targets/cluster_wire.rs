//! See `turnpike_fuzz::cluster_wire` for what is checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| turnpike_fuzz::cluster_wire::check(data));

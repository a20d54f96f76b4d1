//! Cluster datagrams (`turnpike_core::cluster::wire`): the input is read as a sealed datagram
//! (which must be refused unless its tag verifies, and never panic) and as a counter payload.
//! Besides "no panic": a payload that decodes encodes back to the same entries, and merging its
//! entries into a book twice changes nothing the second time (merges are idempotent).

use turnpike_core::cluster::{CounterBook, Secret, WireError, wire};

pub fn check(data: &[u8]) {
    let secret = Secret::new(b"fuzzing-cluster-secret");
    match secret.open(data) {
        // Forging a tag by mutation is a 2^-128 event: an input that opens was sealed by us.
        Ok(_) => {}
        Err(WireError::BadTag | WireError::NotOurs | WireError::Unsupported) => {}
        Err(WireError::Malformed) => panic!("open never reads the payload"),
    }
    let mut entries = Vec::new();
    let Ok(from) = wire::decode_entries(data, &mut entries) else {
        return;
    };
    let mut again = Vec::new();
    let mut sorted = entries.clone();
    wire::encode_entries(from, &mut sorted, 1400, |p| {
        assert!(p.len() <= 1400);
        assert_eq!(wire::decode_entries(p, &mut again), Ok(from));
    });
    let mut a = entries.clone();
    a.sort();
    again.sort();
    assert_eq!(a, again, "entries survive a round trip");
    let mut book = CounterBook::new(1);
    book.merge(&entries);
    assert_eq!(book.merge(&entries), 0, "a repeated merge changes nothing");
}

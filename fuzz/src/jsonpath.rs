//! JSONPath (`turnpike_core::jsonpath`): the input is a path, a NUL byte, and a JSON document.
//! Besides "no panic": parsing is deterministic; `select_aws` and `select_jayway` agree with
//! `select`; a path `is_definite` says names at most one node selects at most one.

use turnpike_core::jsonpath::{JsonPath, Selection};

pub fn check(data: &[u8]) {
    let (path, doc) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (
            data,
            &b"{\"a\": {\"b\": [1, 2, {\"c\": 3}]}, \"d\": \"e\"}"[..],
        ),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let parsed = JsonPath::parse(path);
    assert_eq!(parsed.is_ok(), JsonPath::parse(path).is_ok());
    let Ok(p) = parsed else {
        return;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(doc) else {
        return;
    };
    let all = p.select(&doc);
    if p.is_definite() {
        assert!(
            all.len() <= 1,
            "a definite path selected {} nodes",
            all.len()
        );
    }
    match p.select_aws(&doc) {
        Selection::Nothing => assert!(all.is_empty()),
        Selection::One(v) => assert!(all.len() == 1 && std::ptr::eq(v, all[0])),
        Selection::Many(vs) => assert!(vs.len() > 1 && vs.len() == all.len()),
    }
    match p.select_jayway(&doc) {
        Selection::Nothing => assert!(p.is_definite() && all.is_empty()),
        Selection::One(v) => assert!(p.is_definite() && std::ptr::eq(v, all[0])),
        Selection::Many(vs) => assert!(!p.is_definite() && vs.len() == all.len()),
    }
}

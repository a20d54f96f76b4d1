//! `auth::policy` and `auth::request_authorizer`: what a client, a config file or an
//! authorizer function controls. `data[0] % 4` picks the part under test, the rest is its input.
//!
//! - 0: `CidrSet::parse` of the lines of the input; every accepted entry's own address is then
//!   contained in the set (masking must keep the network).
//! - 1: `client_ip` over the input as `X-Forwarded-For`, behind a trusted peer: the answer is
//!   the peer or one of the header's entries, and an untrusted peer is always its own answer.
//! - 2: `glob_match` against a dynamic-programming matcher written apart (pattern and text
//!   split at the first NUL, both case modes).
//! - 3: `parse_answer` in every format / response mode: no panic, and an answer with
//!   `allowed` in a simple response means `isAuthorized` was `true`.

use std::net::IpAddr;

use turnpike_core::auth::policy::{CidrSet, client_ip, glob_match};
use turnpike_core::auth::request_authorizer::{PayloadFormat, parse_answer};

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => cidrs(rest),
        1 => forwarded(rest),
        2 => glob(rest),
        _ => answers(rest),
    }
}

fn cidrs(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let items: Vec<String> = text.lines().map(str::to_owned).collect();
    let Ok(set) = CidrSet::parse(&items) else {
        return;
    };
    for item in &items {
        let addr = item.trim().split('/').next().unwrap_or("");
        let ip: IpAddr = addr.parse().expect("an accepted entry has an address");
        assert!(set.contains(ip), "{item:?} not in its own set");
    }
}

fn forwarded(rest: &[u8]) {
    let trusted =
        CidrSet::parse(&["10.0.0.0/8".to_owned(), "::1/128".to_owned()]).expect("valid proxies");
    let peer: IpAddr = "10.0.0.1".parse().expect("an address");
    let got = client_ip(peer, Some(rest), &trusted);
    let entries: Vec<IpAddr> = rest
        .split(|&b| b == b',')
        .filter_map(|e| std::str::from_utf8(e.trim_ascii()).ok()?.parse().ok())
        .collect();
    assert!(
        got == peer || entries.contains(&got),
        "{got} came from nowhere"
    );
    let outsider: IpAddr = "192.0.2.1".parse().expect("an address");
    assert_eq!(client_ip(outsider, Some(rest), &trusted), outsider);
}

fn glob(rest: &[u8]) {
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (Ok(p), Ok(t)) = (
        std::str::from_utf8(&rest[..split]),
        std::str::from_utf8(rest.get(split + 1..).unwrap_or(&[])),
    ) else {
        return;
    };
    for ignore_case in [false, true] {
        assert_eq!(
            glob_match(p, t, ignore_case),
            reference(p, t, ignore_case),
            "{p:?} vs {t:?} (ignore_case {ignore_case})"
        );
    }
}

/// matches[i][j]: the first i pattern chars match the first j text chars.
fn reference(p: &str, t: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = p.chars().collect();
    let t: Vec<char> = t.chars().collect();
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        for j in 0..=t.len() {
            m[i][j] = match p[i - 1] {
                '*' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                '?' => j > 0 && m[i - 1][j - 1],
                c => {
                    j > 0
                        && m[i - 1][j - 1]
                        && (c == t[j - 1] || (ignore_case && c.eq_ignore_ascii_case(&t[j - 1])))
                }
            };
        }
    }
    m[p.len()][t.len()]
}

fn answers(rest: &[u8]) {
    let arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/pets";
    for format in [PayloadFormat::V1, PayloadFormat::V2] {
        for simple in [false, true] {
            let Ok(a) = parse_answer(rest, format, simple, arn) else {
                continue;
            };
            if format == PayloadFormat::V2 && simple && a.allowed {
                let v: serde_json::Value = serde_json::from_slice(rest).expect("it parsed");
                assert_eq!(v["isAuthorized"], serde_json::Value::Bool(true));
            }
        }
    }
}

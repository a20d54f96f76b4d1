use super::*;
use serde_json::json;

fn set(items: &[&str]) -> CidrSet {
    let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    CidrSet::parse(&items).expect("valid CIDRs")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn parse_err(items: &[&str]) -> CidrError {
    let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    CidrSet::parse(&items).expect_err("an error")
}

#[test]
fn cidr_v4_prefixes_and_single_hosts() {
    let s = set(&["10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"]);
    assert!(s.contains(ip("10.255.1.2")));
    assert!(s.contains(ip("192.168.1.7")));
    assert!(!s.contains(ip("192.168.1.8")));
    assert!(s.contains(ip("172.31.255.255")));
    assert!(!s.contains(ip("172.32.0.0")));
    assert!(!s.contains(ip("11.0.0.1")));
    assert!(!s.contains(ip("::1")));
}

#[test]
fn cidr_zero_prefix_matches_every_address_of_its_family() {
    let s = set(&["0.0.0.0/0"]);
    assert!(s.contains(ip("1.2.3.4")));
    assert!(s.contains(ip("255.255.255.255")));
    assert!(!s.contains(ip("2001:db8::1")));
    let s = set(&["::/0"]);
    assert!(s.contains(ip("2001:db8::1")));
}

#[test]
fn cidr_v6() {
    let s = set(&["::1/128", "2001:db8::/32"]);
    assert!(s.contains(ip("::1")));
    assert!(!s.contains(ip("::2")));
    assert!(s.contains(ip("2001:db8:ffff::1")));
    assert!(!s.contains(ip("2001:db9::1")));
    assert!(!s.contains(ip("127.0.0.1")));
}

#[test]
fn ipv4_mapped_addresses_match_ipv4_entries() {
    let s = set(&["10.0.0.0/8"]);
    assert!(s.contains(ip("::ffff:10.1.2.3")));
    assert!(!s.contains(ip("::ffff:11.1.2.3")));
    // A mapped entry is the IPv4 entry it maps.
    let s = set(&["::ffff:192.168.0.0/112"]);
    assert!(s.contains(ip("192.168.4.5")));
    assert!(s.contains(ip("::ffff:192.168.4.5")));
    assert!(!s.contains(ip("192.169.0.1")));
    // A short IPv6 prefix covering the mapped range covers mapped addresses too.
    let s = set(&["::/0"]);
    assert!(s.contains(ip("::ffff:1.2.3.4")));
    assert!(!s.contains(ip("1.2.3.4")));
}

#[test]
fn host_bits_past_the_prefix_are_masked() {
    let s = set(&["10.1.2.3/8", "2001:db8::1/32"]);
    assert!(s.contains(ip("10.200.0.1")));
    assert!(s.contains(ip("2001:db8:1::")));
}

#[test]
fn cidr_errors_name_the_entry_and_the_reason() {
    let e = parse_err(&["10.0.0.0/8", "10.0.0.256"]);
    assert_eq!((e.index, e.reason), (1, CidrReason::BadAddress));
    assert_eq!(
        parse_err(&["10.0.0.0/33"]).reason,
        CidrReason::PrefixTooLong
    );
    assert_eq!(parse_err(&["::/129"]).reason, CidrReason::PrefixTooLong);
    assert_eq!(parse_err(&["10.0.0.0/"]).reason, CidrReason::BadPrefix);
    assert_eq!(parse_err(&["10.0.0.0/+8"]).reason, CidrReason::BadPrefix);
    assert_eq!(parse_err(&["10.0.0.0/x"]).reason, CidrReason::BadPrefix);
    assert_eq!(parse_err(&["10.0.0.0/1000"]).reason, CidrReason::BadPrefix);
    assert_eq!(parse_err(&["example.com"]).reason, CidrReason::BadAddress);
    assert_eq!(parse_err(&[""]).reason, CidrReason::BadAddress);
    let text = parse_err(&["a", "b/8"]).to_string();
    assert!(text.contains("entry 0") && text.contains("\"a\""), "{text}");
}

fn proxies() -> CidrSet {
    set(&["10.0.0.0/8", "::1/128"])
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
    let got = client_ip(ip("203.0.113.9"), Some(b"1.1.1.1"), &proxies());
    assert_eq!(got, ip("203.0.113.9"));
}

#[test]
fn a_trusted_peer_without_the_header_is_the_client() {
    assert_eq!(client_ip(ip("10.0.0.1"), None, &proxies()), ip("10.0.0.1"));
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(b""), &proxies()),
        ip("10.0.0.1")
    );
}

#[test]
fn the_walk_stops_at_the_first_untrusted_address_from_the_right() {
    // The client sent a spoofed "6.6.6.6"; the first proxy appended the real address.
    let xff = b"6.6.6.6, 198.51.100.7, 10.0.0.2";
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(xff), &proxies()),
        ip("198.51.100.7")
    );
    // A spoofed trusted-looking entry on the left is never reached.
    let xff = b"10.9.9.9, 198.51.100.7";
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(xff), &proxies()),
        ip("198.51.100.7")
    );
}

#[test]
fn all_trusted_gives_the_leftmost() {
    let xff = b"10.0.0.5,10.0.0.4 ,\t10.0.0.3";
    assert_eq!(client_ip(ip("::1"), Some(xff), &proxies()), ip("10.0.0.5"));
}

#[test]
fn an_unparsable_entry_stops_at_the_last_trusted_address() {
    let xff = b"198.51.100.7, garbage, 10.0.0.3";
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(xff), &proxies()),
        ip("10.0.0.3")
    );
    // Rightmost unparsable: only the peer is vouched for.
    let xff = b"198.51.100.7, 1.2.3.4:80";
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(xff), &proxies()),
        ip("10.0.0.1")
    );
    let xff = b"198.51.100.7, \xff\xfe";
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(xff), &proxies()),
        ip("10.0.0.1")
    );
}

#[test]
fn empty_entries_are_skipped_and_v6_entries_read() {
    let xff = b"2001:db8::7,, ::1,";
    assert_eq!(
        client_ip(ip("10.0.0.1"), Some(xff), &proxies()),
        ip("2001:db8::7")
    );
}

#[test]
fn a_mapped_peer_is_trusted_as_its_ipv4_address() {
    let xff = b"198.51.100.7";
    let got = client_ip(ip("::ffff:10.0.0.1"), Some(xff), &proxies());
    assert_eq!(got, ip("198.51.100.7"));
}

#[test]
fn resource_policy_deny_wins_and_empty_allow_admits_everyone() {
    let p = ResourcePolicy::new(set(&["10.0.0.0/8"]), set(&["10.0.0.66"]));
    assert!(p.admits(ip("10.1.1.1")));
    assert!(!p.admits(ip("10.0.0.66")));
    assert!(p.denies_explicitly(ip("10.0.0.66")));
    assert!(!p.admits(ip("192.0.2.1")));
    assert!(!p.denies_explicitly(ip("192.0.2.1")));

    let p = ResourcePolicy::new(CidrSet::default(), set(&["192.0.2.0/24"]));
    assert!(p.admits(ip("8.8.8.8")));
    assert!(!p.admits(ip("192.0.2.1")));

    let p = ResourcePolicy::allow_list_only(CidrSet::default(), CidrSet::default());
    assert!(!p.admits(ip("8.8.8.8")));
}

#[test]
fn refusal_messages_are_aws_text() {
    let arn = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets";
    assert_eq!(
        anonymous_denied_message(arn),
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: \
         arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets"
    );
    assert_eq!(
        anonymous_explicit_deny_message(arn),
        format!("{} with an explicit deny", anonymous_denied_message(arn))
    );
}

#[test]
fn method_arns() {
    assert_eq!(
        method_arn(
            "us-east-1",
            "123456789012",
            "abcdef123",
            "test",
            "GET",
            "/request"
        ),
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request"
    );
    assert_eq!(
        method_arn("eu-west-1", "1", "api", "$default", "POST", "/a/b/c"),
        "arn:aws:execute-api:eu-west-1:1:api/$default/POST/a/b/c"
    );
    assert_eq!(
        method_arn("eu-west-1", "1", "api", "prod", "GET", "/"),
        "arn:aws:execute-api:eu-west-1:1:api/prod/GET/"
    );
}

#[test]
fn glob_edge_cases() {
    let m = |p: &str, t: &str| glob_match(p, t, false);
    assert!(m("", ""));
    assert!(!m("", "a"));
    assert!(m("*", ""));
    assert!(m("*", "anything/with:slashes"));
    assert!(m("abc", "abc"));
    assert!(!m("abc", "abd"));
    assert!(!m("abc", "abcd"));
    assert!(!m("abcd", "abc"));
    assert!(m("a*", "a"));
    assert!(m("*c", "abc"));
    assert!(!m("*c", "abcd"));
    assert!(m("a*c*e", "abcde"));
    assert!(m("a*c*e", "ace"));
    assert!(m("a**c", "abbbc"));
    assert!(!m("a*c*e", "abcdf"));
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(m("???", "abc"));
    assert!(!m("???", "ab"));
    assert!(m("?*", "x"));
    assert!(!m("?*", ""));
    // '?' is one character, not one byte.
    assert!(m("a?c", "aéc"));
    assert!(m("*é", "xxé"));
    assert!(m("*/GET/*", "arn:aws:execute-api:r:1:api/prod/GET/pets/1"));
    assert!(!m(
        "*/POST/*",
        "arn:aws:execute-api:r:1:api/prod/GET/pets/1"
    ));
    // Case: exact for resources, ignored for actions.
    assert!(!m("ABC", "abc"));
    assert!(glob_match("execute-api:invoke", "execute-api:Invoke", true));
}

#[test]
fn glob_on_long_inputs_stays_fast() {
    // Exponential backtracking would never finish on these.
    let text = "a".repeat(10_000);
    let pattern = format!("{}b", "a*".repeat(50));
    assert!(!glob_match(&pattern, &text, false));
    let pattern = format!("{}a", "*a".repeat(50));
    assert!(glob_match(&pattern, &text, false));
    assert!(glob_match("*", &text, false));
}

const ROUTE: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request";
const INVOKE: &str = "execute-api:Invoke";

fn doc(v: serde_json::Value) -> PolicyDocument {
    PolicyDocument::parse(&v).expect("a valid policy")
}

#[test]
fn a_single_statement_object_allows() {
    let d = doc(json!({
        "Version": "2012-10-17",
        "Statement": {"Action": INVOKE, "Effect": "Allow", "Resource": ROUTE}
    }));
    assert!(d.allows(INVOKE, ROUTE));
    assert!(!d.allows(INVOKE, &ROUTE.replace("GET", "POST")));
    assert!(!d.allows("execute-api:ManageConnections", ROUTE));
}

#[test]
fn explicit_deny_wins_over_allow() {
    let d = doc(json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Action": "execute-api:*", "Effect": "Allow", "Resource": "*"},
            {"Action": [INVOKE], "Effect": "Deny", "Resource": ["arn:aws:execute-api:*:*:*/*/DELETE/*"]}
        ]
    }));
    assert!(d.allows(INVOKE, ROUTE));
    assert!(!d.allows(INVOKE, &ROUTE.replace("GET", "DELETE")));
}

#[test]
fn no_matching_statement_denies() {
    let d = doc(json!({"Statement": []}));
    assert!(!d.allows(INVOKE, ROUTE));
    let d = doc(json!({"Statement": [{"Action": "*", "Effect": "Deny", "Resource": "*"}]}));
    assert!(!d.allows(INVOKE, ROUTE));
}

#[test]
fn action_arrays_and_patterns() {
    let d = doc(json!({
        "Statement": [{
            "Action": ["s3:GetObject", "execute-api:Inv*"],
            "Effect": "Allow",
            "Resource": ["arn:aws:s3:::b/*", "arn:aws:execute-api:us-east-1:123456789012:abcdef123/*/GET/*"]
        }]
    }));
    assert!(d.allows(INVOKE, ROUTE));
    assert!(d.allows("execute-api:invoke", ROUTE));
    let d = doc(
        json!({"Statement": [{"Action": "*", "Effect": "Allow", "Resource": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/???/request"}]}),
    );
    assert!(d.allows(INVOKE, ROUTE));
    assert!(!d.allows(INVOKE, &ROUTE.replace("GET", "POST")));
}

#[test]
fn policy_parse_errors_say_why() {
    let err = |v: serde_json::Value| PolicyDocument::parse(&v).expect_err("an error");
    assert!(err(json!([])).contains("not an object"));
    assert!(err(json!({})).contains("no Statement"));
    assert!(err(json!({"Statement": "x"})).contains("Statement"));
    assert!(err(json!({"Version": "2020-01-01", "Statement": []})).contains("Version"));
    let e = err(json!({"Statement": [{"Action": INVOKE, "Effect": "allow", "Resource": "*"}]}));
    assert!(e.contains("Statement[0].Effect"), "{e}");
    let e = err(json!({"Statement": {"Effect": "Allow", "Resource": "*"}}));
    assert!(e.contains("Action"), "{e}");
    let e = err(json!({"Statement": {"Effect": "Allow", "Action": "*"}}));
    assert!(e.contains("Resource"), "{e}");
    let e = err(json!({"Statement": {"Effect": "Allow", "Action": ["*", 1], "Resource": "*"}}));
    assert!(e.contains("Action[1]"), "{e}");
    let e = err(json!({"Statement": {"Effect": "Allow", "NotAction": "x", "Resource": "*"}}));
    assert!(e.contains("NotAction"), "{e}");
    let e = err(
        json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}}),
    );
    assert!(e.contains("Condition"), "{e}");
}

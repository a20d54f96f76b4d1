//! The bench inputs take the paths their benches are named after, and those paths allocate
//! nothing per request once their reused buffers have grown.

use turnpike_core::route::RouteTable;
use turnpike_proxy::{
    h1::{
        request::BodyKind,
        response::{ResponseBody, parse as parse_response},
    },
    respond,
    upstream::response as up_response,
};

use super::*;

fn matched_key(table: &RouteTable<u32>, keys: &[&str], c: &RouteCase) -> Option<String> {
    table
        .find(c.method.as_bytes(), c.path.as_bytes())
        .map(|m| keys[*m.value as usize].to_owned())
}

#[test]
fn request_samples_parse_as_described() {
    let [curl, browser, post] = request_samples();
    assert_eq!(curl.head_len, CURL_GET.len());
    assert!(
        (650..=750).contains(&browser.head_len),
        "browser head is {} bytes",
        browser.head_len
    );
    let head = parsed_request(browser.bytes);
    assert!(head.headers.len() >= 15, "{} headers", head.headers.len());
    assert!(head.query.is_some() && head.keep_alive);

    let head = parsed_request(post.bytes);
    assert_eq!(head.end, post.head_len);
    let BodyKind::Length(n) = head.body else {
        panic!("POST has a Content-Length body: {:?}", head.body)
    };
    assert_eq!(post.bytes.len() - post.head_len, n as usize);
}

#[test]
fn response_samples_parse_as_described() {
    let head = parsed_response(UPSTREAM_RESPONSE);
    assert_eq!(
        (head.status, head.body, head.reusable),
        (200, ResponseBody::Length(1842), true)
    );
    let head = parsed_response(UPSTREAM_RESPONSE_CHUNKED);
    assert_eq!(head.body, ResponseBody::Chunked);
}

#[test]
fn chunked_body_decodes_to_its_data() {
    let body = chunked_body(64 * 1024, 4096);
    assert!(body.starts_with(b"1000\r\naaaa"));
    assert_eq!(decode_chunked(&mut ChunkedDecoder::new(), &body), 64 * 1024);
    let odd = chunked_body(1000, 300);
    assert_eq!(decode_chunked(&mut ChunkedDecoder::new(), &odd), 1000);
}

#[test]
fn router_cases_match_their_routes() {
    let small = small_table();
    let small_keys: Vec<&str> = SMALL_API.iter().map(|(k, _)| *k).collect();
    // $default is not counted as a route.
    assert_eq!(small.len(), SMALL_API.len() - 1);
    for c in SMALL_CASES {
        assert_eq!(
            matched_key(&small, &small_keys, c).as_deref(),
            c.expect,
            "{}",
            c.name
        );
    }
    let large = large_table();
    assert_eq!(large.len(), LARGE_ROUTES);
    let owned = large_api_keys();
    let large_keys: Vec<&str> = owned.iter().map(String::as_str).collect();
    for c in LARGE_CASES {
        assert_eq!(
            matched_key(&large, &large_keys, c).as_deref(),
            c.expect,
            "{}",
            c.name
        );
    }
    let hit = large
        .find(b"GET", b"/r4950/items/42")
        .expect("middle route");
    assert_eq!(hit.params.get("id"), Some(&b"42"[..]));
}

#[test]
fn resolve_cases_reach_their_routes() {
    for (yaml, cases) in [
        (shop_config_yaml(), SHOP_RESOLVE_CASES),
        (large_config_yaml(), LARGE_RESOLVE_CASES),
    ] {
        let config = config(&yaml);
        for c in cases {
            let found = config.resolve(c.host.as_bytes(), c.method.as_bytes(), c.path.as_bytes());
            assert_eq!(found.map(|f| f.route.key.as_str()), c.expect, "{}", c.name);
        }
    }
}

/// The upstream head of each request sample through the shop config.
fn upstream_head(snap: &Snapshot, raw: &[u8]) -> String {
    let head = parsed_request(raw);
    let mut out = Vec::new();
    route(snap, raw, &head).write_head(&mut out, raw, &head, &client());
    String::from_utf8(out).expect("ascii")
}

#[test]
fn upstream_heads_are_rewritten() {
    let snap = snapshot(&shop_config_yaml());
    let curl = upstream_head(&snap, CURL_GET);
    assert!(
        curl.starts_with("GET /users/42 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"),
        "{curl}"
    );
    let browser = upstream_head(&snap, BROWSER_GET);
    assert!(
        browser.starts_with(
            "GET /products/12345?ref=home&utm_source=newsletter HTTP/1.1\r\nHost: 127.0.0.1:9002\r\n"
        ),
        "{browser}"
    );
    assert!(!browser.contains("Connection:"), "{browser}");
    assert!(browser.contains("\r\nX-Forwarded-For: 198.51.100.23\r\n"));
    let post = upstream_head(&snap, POST_JSON);
    assert!(post.starts_with("POST /orders HTTP/1.1\r\n"), "{post}");
    assert!(post.contains("\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.23\r\n"));
    assert!(post.ends_with("\r\nContent-Length: 48\r\n\r\n"), "{post}");
}

#[test]
fn hot_paths_allocate_nothing_in_steady_state() {
    let l = limits();
    let mut scanner = HeadScanner::default();
    let mut head = RequestHead::default();
    for s in request_samples() {
        let n = steady_state_allocations(100, || {
            scan_and_parse(s.bytes, &l, &mut scanner, &mut head).expect("parses");
        });
        assert_eq!(n, 0, "scan + parse {}", s.name);
    }

    let mut resp = ResponseHead::default();
    let n = steady_state_allocations(100, || {
        parse_response(UPSTREAM_RESPONSE, 16384, 100, false, &mut resp).expect("parses");
    });
    assert_eq!(n, 0, "response parse");

    let body = chunked_body(64 * 1024, 4096);
    let n = steady_state_allocations(100, || {
        decode_chunked(&mut ChunkedDecoder::new(), &body);
    });
    assert_eq!(n, 0, "chunked decode");

    let large = large_table();
    for c in LARGE_CASES {
        let n = steady_state_allocations(100, || {
            let _ = large.find(c.method.as_bytes(), c.path.as_bytes());
        });
        assert_eq!(n, 0, "route find {}", c.name);
    }

    let snap = snapshot(&shop_config_yaml());
    for c in SHOP_RESOLVE_CASES {
        let n = steady_state_allocations(100, || {
            let _ = snap
                .config
                .resolve(c.host.as_bytes(), c.method.as_bytes(), c.path.as_bytes());
        });
        assert_eq!(n, 0, "resolve {}", c.name);
    }

    let client = client();
    let mut out = Vec::new();
    for s in request_samples() {
        let head = parsed_request(s.bytes);
        let routed = route(&snap, s.bytes, &head);
        let n = steady_state_allocations(100, || {
            out.clear();
            routed.write_head(&mut out, s.bytes, &head, &client);
        });
        assert_eq!(n, 0, "upstream request head {}", s.name);
    }

    let resp = parsed_response(UPSTREAM_RESPONSE);
    let framing = up_response::client_framing(&resp, 1);
    let n = steady_state_allocations(100, || {
        out.clear();
        up_response::write_head(&mut out, UPSTREAM_RESPONSE, &resp, framing, false);
        respond::finish_head(&mut out, &answer_lines());
    });
    assert_eq!(n, 0, "client response head");
}

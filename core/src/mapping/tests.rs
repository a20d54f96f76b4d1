use std::{cell::OnceCell, collections::BTreeMap};

use super::*;

struct Req {
    headers: Vec<(&'static str, &'static str)>,
    query: Vec<(&'static str, &'static str)>,
    body: &'static str,
    json: OnceCell<Option<serde_json::Value>>,
    path: &'static str,
    params: Vec<(&'static str, &'static str)>,
    vars: Vec<(&'static str, &'static str)>,
    ctx: RequestContext<'static>,
}

impl Req {
    fn new() -> Req {
        Req {
            headers: vec![
                ("X-Tenant", "acme"),
                ("Accept", "text/html"),
                ("accept", "application/json"),
            ],
            query: vec![("type", "dog"), ("type", "cat"), ("limit", "10")],
            body: r#"{"name":"Rex","tags":["a","b"],"owner":{"id":7},"items":[{"id":1},{"id":2}]}"#,
            json: OnceCell::new(),
            path: "/pets/42",
            params: vec![("id", "42")],
            vars: vec![("env", "prod")],
            ctx: RequestContext {
                request_id: "req-1",
                stage: "prod",
                method: "GET",
                ..RequestContext::default()
            },
        }
    }
}

impl Source for Req {
    fn header(&self, name: &str, out: &mut Vec<u8>) -> bool {
        let mut found = false;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(name) {
                if found {
                    out.push(b',');
                }
                out.extend_from_slice(v.as_bytes());
                found = true;
            }
        }
        found
    }
    fn querystring(&self, name: &str, out: &mut Vec<u8>) -> bool {
        let mut found = false;
        for (n, v) in &self.query {
            if *n == name {
                if found {
                    out.push(b',');
                }
                out.extend_from_slice(v.as_bytes());
                found = true;
            }
        }
        found
    }
    fn body(&self) -> &[u8] {
        self.body.as_bytes()
    }
    fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_str(self.body).ok())
            .as_ref()
    }
    fn path(&self) -> &[u8] {
        self.path.as_bytes()
    }
    fn path_parameter(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
    fn stage_variable(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    fn context(&self) -> &RequestContext<'_> {
        &self.ctx
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn request(pairs: &[(&str, &str)]) -> Edits {
    let m = ParameterMapping::compile(&map(pairs), &BTreeMap::new())
        .unwrap()
        .unwrap();
    m.request_edits(&Req::new())
}

fn header<'e>(e: &'e Edits, name: &str) -> Vec<(Action, &'e str)> {
    e.headers
        .iter()
        .filter(|h| &*h.name == name)
        .map(|h| (h.action, h.value.as_str()))
        .collect()
}

#[test]
fn every_value_kind() {
    let e = request(&[
        ("append:header.h-header", "$request.header.x-tenant"),
        ("append:header.h-multi", "$request.header.accept"),
        ("append:header.h-query", "$request.querystring.type"),
        ("append:header.h-body", "$request.body.name"),
        ("append:header.h-body-obj", "$request.body.owner"),
        ("append:header.h-body-many", "$request.body.items[*].id"),
        ("append:header.h-body-idx", "$request.body.tags[1]"),
        ("append:header.h-path", "$request.path"),
        ("append:header.h-param", "$request.path.id"),
        ("append:header.h-context", "$context.requestId"),
        ("append:header.h-stage", "$stageVariables.env"),
        ("append:header.h-static", "static text"),
        (
            "append:header.h-combined",
            "${request.path.id}-${context.stage} ${stageVariables.env}",
        ),
        ("append:header.h-braced", "${request.header.x-tenant}"),
    ]);
    let one = |n| header(&e, n)[0].1.to_owned();
    assert_eq!(one("h-header"), "acme");
    assert_eq!(one("h-multi"), "text/html,application/json");
    assert_eq!(one("h-query"), "dog,cat");
    assert_eq!(one("h-body"), "Rex");
    assert_eq!(one("h-body-obj"), r#"{"id":7}"#);
    assert_eq!(one("h-body-many"), "[1,2]");
    assert_eq!(one("h-body-idx"), "b");
    assert_eq!(one("h-path"), "/pets/42");
    assert_eq!(one("h-param"), "42");
    assert_eq!(one("h-context"), "req-1");
    assert_eq!(one("h-stage"), "prod");
    assert_eq!(one("h-static"), "static text");
    assert_eq!(one("h-combined"), "42-prod prod");
    assert_eq!(one("h-braced"), "acme");
}

#[test]
fn missing_single_reference_skips_its_key_and_is_empty_in_text() {
    let e = request(&[
        ("append:header.a", "$request.header.nope"),
        ("append:header.b", "$request.body.nope"),
        ("append:header.c", "$context.authorizer.claims.sub"),
        ("append:header.d", "x-${request.querystring.nope}-y"),
        ("overwrite:querystring.q", "$stageVariables.nope"),
    ]);
    assert!(header(&e, "a").is_empty());
    assert!(header(&e, "b").is_empty());
    assert!(header(&e, "c").is_empty());
    assert_eq!(header(&e, "d"), [(Action::Append, "x--y")]);
    assert!(e.query.is_empty());
}

#[test]
fn edits_come_removals_first() {
    let e = request(&[
        ("append:header.z", "1"),
        ("remove:header.a", "''"),
        ("overwrite:header.m", "2"),
    ]);
    let order: Vec<Action> = e.headers.iter().map(|h| h.action).collect();
    assert_eq!(order, [Action::Remove, Action::Overwrite, Action::Append]);
}

#[test]
fn path_and_query() {
    let e = request(&[
        ("overwrite:path", "/v2/${request.path.id} x?"),
        ("overwrite:querystring.limit", "5"),
        ("append:querystring.added", "a b&c"),
        ("remove:querystring.type", ""),
    ]);
    assert_eq!(e.path.as_deref(), Some("/v2/42%20x%3F"));
    let mut q = String::new();
    edit_query("type=dog&limit=10&keep=1&type=cat", &e.query, &mut q);
    assert_eq!(q, "keep=1&limit=5&added=a%20b%26c");
    let e = request(&[("overwrite:path", "relative")]);
    assert_eq!(e.path.as_deref(), Some("/relative"));
}

#[test]
fn header_lines_are_edited_in_place() {
    let e = request(&[
        ("remove:header.x-drop", ""),
        ("overwrite:header.x-over", "new"),
        ("append:header.x-add", "more"),
    ]);
    let mut head =
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Drop: 1\r\nx-over: old\r\nX-Add: first\r\n\r\n".to_vec();
    edit_header_lines(&mut head, 16, &e.headers);
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "GET / HTTP/1.1\r\nHost: a\r\nX-Add: first\r\nx-over: new\r\nx-add: more\r\n\r\n"
    );
    let mut pairs = vec![("X-Drop", "1"), ("X-Over", "old"), ("Keep", "k")];
    edit_pairs(&mut pairs, &e.headers);
    assert_eq!(pairs, [("Keep", "k"), ("x-over", "new"), ("x-add", "more")]);
}

#[test]
fn header_values_cannot_break_a_line() {
    let mut r = Req::new();
    r.body = "{\"name\":\"a\\r\\nInjected: 1\"}";
    let m = ParameterMapping::compile(
        &map(&[("append:header.x", "$request.body.name")]),
        &BTreeMap::new(),
    )
    .unwrap()
    .unwrap();
    let e = m.request_edits(&r);
    assert_eq!(
        header(&e, "x"),
        [(Action::Append, "a\\x0d\\x0aInjected: 1")]
    );
}

#[test]
fn response_mapping_by_status() {
    let responses = BTreeMap::from([
        (
            "500".to_owned(),
            map(&[
                ("overwrite:statuscode", "403"),
                ("append:header.header1", "$context.requestId"),
            ]),
        ),
        (
            "200".to_owned(),
            map(&[("append:header.x-name", "$response.body.name")]),
        ),
    ]);
    let m = ParameterMapping::compile(&BTreeMap::new(), &responses)
        .unwrap()
        .unwrap();
    assert!(!m.maps_requests());
    assert!(m.maps_response(500) && !m.maps_response(404));
    assert!(m.reads_response_body(200) && !m.reads_response_body(500));
    let e = m.response_edits(500, &Req::new()).unwrap();
    assert_eq!(e.status, Some(403));
    assert_eq!(header(&e, "header1"), [(Action::Append, "req-1")]);
    let e = m.response_edits(200, &Req::new()).unwrap();
    assert_eq!(header(&e, "x-name"), [(Action::Append, "Rex")]);
    assert!(m.response_edits(404, &Req::new()).is_none());
}

fn request_error(key: &str, value: &str) -> String {
    let errs = ParameterMapping::compile(&map(&[(key, value)]), &BTreeMap::new()).unwrap_err();
    errs[0].reason.clone()
}

#[test]
fn refusals_say_why() {
    for (key, value, says) in [
        ("append:header.Authorization", "x", "reserves it"),
        ("overwrite:header.content-length", "1", "reserves it"),
        ("append:header.X-Amz-Date", "1", "starting with \"x-amz-\""),
        ("append:header.access-control-allow-origin", "*", "reserves"),
        ("append:header.x-authorizer-role", "admin", "reserves"),
        ("prepend:header.x", "1", "unknown action"),
        ("append:cookie.x", "1", "unknown parameter"),
        ("append:path", "/x", "only be overwritten"),
        ("overwrite:statuscode", "200", "response parameter"),
        ("append:header.bad name", "1", "not a header name"),
        (
            "append:header.x",
            "$response.header.y",
            "not available here",
        ),
        (
            "append:header.x",
            "$request.body..name",
            "recursive descent",
        ),
        ("append:header.x", "$request.body.items[?(@.id)]", "filter"),
        (
            "append:header.x",
            "$context.requestid",
            "did you mean $context.requestId",
        ),
        ("append:header.x", "$request.cookie.x", "unknown value"),
        (
            "append:header.x",
            "Bearer $request.header.t",
            "enclosed in `${}`",
        ),
        ("append:header.x", "${request.header.t", "no closing"),
    ] {
        let why = request_error(key, value);
        assert!(why.contains(says), "{key}: {value} -> {why}");
    }
    let errs = ParameterMapping::compile(
        &BTreeMap::new(),
        &BTreeMap::from([
            ("2xx".to_owned(), BTreeMap::new()),
            (
                "200".to_owned(),
                map(&[
                    ("overwrite:statuscode", "700"),
                    ("append:querystring.x", "1"),
                ]),
            ),
        ]),
    )
    .unwrap_err();
    let reasons: Vec<&str> = errs.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(errs.len(), 3, "{reasons:?}");
}

#[test]
fn host_and_ordinary_headers_may_be_mapped() {
    assert!(reserved("Host").is_none());
    assert!(reserved("x-api-version").is_none());
    assert_eq!(reserved("TE"), Some("te"));
    assert_eq!(reserved("X-Amzn-Trace-Id"), Some("x-amzn-"));
}

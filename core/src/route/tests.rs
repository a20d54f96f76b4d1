use super::*;

fn table(keys: &[&str]) -> RouteTable<usize> {
    let mut t = RouteTable::new();
    for (i, k) in keys.iter().enumerate() {
        t.insert(&RouteKey::parse(k).expect(k), i).expect(k);
    }
    t
}

fn hit(t: &RouteTable<usize>, method: &str, path: &str) -> Option<usize> {
    t.find(method.as_bytes(), path.as_bytes()).map(|m| *m.value)
}

#[test]
fn parses_keys_and_prints_them_back() {
    for k in [
        "$default",
        "GET /",
        "ANY /{proxy+}",
        "POST /users/{id}/orders",
        "GET /a/b.json",
    ] {
        assert_eq!(RouteKey::parse(k).expect(k).to_string(), k);
    }
}

#[test]
fn refuses_bad_keys() {
    let cases = [
        ("GET", KeyError::Shape),
        ("GET users", KeyError::NoLeadingSlash),
        ("GETT /x", KeyError::Method("GETT".into())),
        ("get /x", KeyError::Method("get".into())),
        ("GET /a//b", KeyError::EmptySegment),
        ("GET /a/", KeyError::EmptySegment),
        (
            "GET /a/{id}.json",
            KeyError::PartialParam("{id}.json".into()),
        ),
        ("GET /{a+}/b", KeyError::GreedyNotLast("a".into())),
        ("GET /{a}/{a}", KeyError::DuplicateParam("a".into())),
        ("GET /{}", KeyError::ParamName("".into())),
        ("GET /a b", KeyError::Shape),
        ("GET /a\"b", KeyError::BadChar("a\"b".into())),
    ];
    for (k, want) in cases {
        assert_eq!(RouteKey::parse(k), Err(want), "{k}");
    }
}

#[test]
fn static_beats_param_beats_greedy() {
    let t = table(&[
        "GET /users/me",
        "GET /users/{id}",
        "ANY /{proxy+}",
        "$default",
    ]);
    assert_eq!(hit(&t, "GET", "/users/me"), Some(0));
    assert_eq!(hit(&t, "GET", "/users/42"), Some(1));
    assert_eq!(hit(&t, "GET", "/users/42/x"), Some(2));
    assert_eq!(hit(&t, "GET", "/orders"), Some(2));
    assert_eq!(
        hit(&t, "GET", "/"),
        Some(3),
        "greedy needs at least one segment"
    );
}

#[test]
fn exact_method_beats_any_and_falls_through_when_absent() {
    let t = table(&[
        "ANY /items",
        "GET /items",
        "POST /things/{id}",
        "ANY /{proxy+}",
    ]);
    assert_eq!(hit(&t, "GET", "/items"), Some(1));
    assert_eq!(hit(&t, "DELETE", "/items"), Some(0));
    assert_eq!(hit(&t, "POST", "/things/1"), Some(2));
    // GET has no route at /things/{id}: backtrack to the greedy route.
    assert_eq!(hit(&t, "GET", "/things/1"), Some(3));
    // Methods outside AWS's set only match ANY.
    assert_eq!(hit(&t, "PROPFIND", "/items"), Some(0));
}

#[test]
fn backtracks_from_a_dead_static_branch_into_a_param() {
    let t = table(&["GET /a/b/c", "GET /a/{x}/d"]);
    assert_eq!(hit(&t, "GET", "/a/b/d"), Some(1));
    let m = t.find(b"GET", b"/a/b/d").expect("match");
    assert_eq!(m.params.get("x"), Some(&b"b"[..]));
}

#[test]
fn captures_params_and_greedy_rest() {
    let t = table(&["GET /users/{id}/files/{path+}"]);
    let m = t.find(b"GET", b"/users/7/files/a/b%20c/").expect("match");
    assert_eq!(m.params.get("id"), Some(&b"7"[..]));
    assert_eq!(m.params.get("path"), Some(&b"a/b%20c/"[..]));
    assert_eq!(m.params.get("nope"), None);
    let all: Vec<_> = m.params.iter().collect();
    assert_eq!(all, vec![("id", &b"7"[..]), ("path", &b"a/b%20c/"[..])]);
}

#[test]
fn trailing_slash_and_empty_segments_do_not_match_params() {
    let t = table(&["GET /users", "GET /users/{id}"]);
    assert_eq!(hit(&t, "GET", "/users"), Some(0));
    assert_eq!(hit(&t, "GET", "/users/"), None);
    assert_eq!(hit(&t, "GET", "/users//"), None);
    assert_eq!(hit(&t, "GET", "users"), None);
}

#[test]
fn root_route() {
    let t = table(&["GET /", "GET /x"]);
    assert_eq!(hit(&t, "GET", "/"), Some(0));
    assert_eq!(hit(&t, "GET", ""), Some(0));
    assert_eq!(hit(&t, "GET", "/x"), Some(1));
}

#[test]
fn refuses_conflicting_routes() {
    let mut t = RouteTable::new();
    t.insert(&RouteKey::parse("GET /u/{id}").expect("key"), 0)
        .expect("first");
    let again = t.insert(&RouteKey::parse("GET /u/{uid}").expect("key"), 1);
    assert_eq!(again, Err(table::Conflict(0)));
    t.insert(&RouteKey::parse("ANY /u/{id}").expect("key"), 2)
        .expect("ANY is distinct");
    t.insert(&RouteKey::parse("$default").expect("key"), 3)
        .expect("default");
    assert!(
        t.insert(&RouteKey::parse("$default").expect("key"), 4)
            .is_err()
    );
}

#[test]
fn ten_thousand_routes_use_the_hash_index() {
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("GET /r{i}/items/{{id}}"))
        .collect();
    let mut t = RouteTable::new();
    for (i, k) in keys.iter().enumerate() {
        t.insert(&RouteKey::parse(k).expect("key"), i)
            .expect("insert");
    }
    assert_eq!(t.len(), 10_000);
    t.assert_indexed();
    let m = t.find(b"GET", b"/r9999/items/5").expect("match");
    assert_eq!(*m.value, 9999);
    assert_eq!(m.params.get("id"), Some(&b"5"[..]));
    assert!(t.find(b"GET", b"/r10000/items/5").is_none());
}

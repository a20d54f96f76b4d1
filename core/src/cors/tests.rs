use super::*;

fn file(origins: &[&str]) -> CorsFile {
    CorsFile {
        allow_origins: origins.iter().map(|s| s.to_string()).collect(),
        ..CorsFile::default()
    }
}

fn compile(f: &CorsFile) -> CorsPolicy {
    let mut errors = Vec::new();
    let policy = check(f, "apis[0].cors", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    policy.expect("a policy when there is no error")
}

fn errors_of(f: &CorsFile) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let policy = check(f, "apis[0].cors", &mut errors);
    assert!(policy.is_none(), "errors must mean no policy");
    errors.into_iter().map(|e| (e.path, e.reason)).collect()
}

fn lines(out: &[u8]) -> Vec<&str> {
    std::str::from_utf8(out)
        .expect("utf-8")
        .split_terminator("\r\n")
        .collect()
}

type Preflight<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

fn full() -> CorsFile {
    CorsFile {
        allow_origins: vec!["https://myapp.com".into(), "https://*.example.com".into()],
        allow_methods: vec!["GET".into(), "POST".into()],
        allow_headers: vec!["content-type".into(), "Authorization".into()],
        expose_headers: vec!["x-request-id".into()],
        max_age: Some(300),
        allow_credentials: true,
    }
}

#[test]
fn origin_matching_table() {
    let p = compile(&file(&[
        "https://myapp.com",
        "http://localhost:3000",
        "https://*.example.com",
        "https://*.ports.test:8443",
        "https://[::1]:9000",
    ]));
    let table: &[(&str, bool)] = &[
        // exact
        ("https://myapp.com", true),
        ("https://MyApp.COM", true),
        ("HTTPS://myapp.com", true),
        ("http://myapp.com", false),
        ("https://myapp.com.evil.com", false),
        ("https://evilmyapp.com", false),
        ("https://myapp.co", false),
        ("https://myapp.com/", false),
        ("https://myapp.com:443", false),
        ("https://myapp.com:8443", false),
        // port
        ("http://localhost:3000", true),
        ("http://localhost:3001", false),
        ("http://localhost", false),
        // wildcard depth and lookalikes
        ("https://a.example.com", true),
        ("https://a.b.example.com", true),
        ("https://A.Example.Com", true),
        ("https://example.com", false),
        ("https://evil-example.com", false),
        ("https://.example.com", false),
        ("https://a..example.com", false),
        ("https://a.example.com.evil.com", false),
        ("http://a.example.com", false),
        ("https://a.example.com:8443", false),
        ("https://a.example.com/", false),
        ("https://a/b.example.com", false),
        ("https://a.ports.test:8443", true),
        ("https://a.ports.test", false),
        ("https://a.ports.test:443", false),
        // IPv6
        ("https://[::1]:9000", true),
        ("https://[::1]", false),
        // not origins
        ("null", false),
        ("", false),
        ("myapp.com", false),
        ("*", false),
    ];
    for (origin, want) in table {
        assert_eq!(p.allows_origin(origin.as_bytes()), *want, "{origin}");
    }
}

#[test]
fn scheme_wildcard_takes_every_origin_of_its_scheme() {
    // AWS: "https://*" allows all origins that begin with https://.
    let p = compile(&file(&["https://*"]));
    assert!(p.allows_origin(b"https://a.com"));
    assert!(p.allows_origin(b"https://a.b.com:8443"));
    assert!(p.allows_origin(b"https://[::1]:9000"));
    assert!(!p.allows_origin(b"http://a.com"));
    assert!(!p.allows_origin(b"https://"));
    assert!(!p.allows_origin(b"https://a.com/x"));
    assert!(!p.allows_origin(b"https://a.com:99999"));
    assert!(!p.allows_origin(b"https://a\r\nx: y"));
    assert!(!p.allows_origin(b"null"));
}

#[test]
fn star_takes_every_origin_and_answers_star() {
    let p = compile(&file(&["*"]));
    for o in ["https://a.com", "http://x:1", "null"] {
        assert!(p.allows_origin(o.as_bytes()), "{o}");
    }
    let mut out = Vec::new();
    assert!(p.write_actual(b"https://a.com", &mut out));
    // `*` is the same for every origin: no Vary (Fetch, CORS protocol and HTTP caches).
    assert_eq!(lines(&out), ["Access-Control-Allow-Origin: *"]);
}

#[test]
fn preflight_detection() {
    let o = Some(&b"https://a.com"[..]);
    let m = Some(&b"PUT"[..]);
    assert!(CorsPolicy::is_preflight(b"OPTIONS", o, m));
    assert!(!CorsPolicy::is_preflight(b"OPTIONS", None, m));
    assert!(!CorsPolicy::is_preflight(b"OPTIONS", o, None));
    assert!(!CorsPolicy::is_preflight(b"OPTIONS", o, Some(b"")));
    assert!(!CorsPolicy::is_preflight(b"OPTIONS", Some(b""), m));
    assert!(!CorsPolicy::is_preflight(b"GET", o, m));
    assert!(!CorsPolicy::is_preflight(b"options", o, m));
}

#[test]
fn preflight_allowed_lists_the_configuration() {
    let p = compile(&full());
    let mut out = Vec::new();
    assert!(p.write_preflight(
        b"https://a.example.com",
        b"POST",
        Some(b"content-type,authorization"),
        &mut out
    ));
    assert_eq!(
        lines(&out),
        [
            "Access-Control-Allow-Origin: https://a.example.com",
            "Access-Control-Allow-Methods: GET, POST",
            "Access-Control-Allow-Headers: content-type, Authorization",
            "Access-Control-Allow-Credentials: true",
            "Access-Control-Max-Age: 300",
            "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ]
    );
}

#[test]
fn preflight_echoes_the_origin_as_sent() {
    let p = compile(&full());
    let mut out = Vec::new();
    assert!(p.write_preflight(b"https://MyApp.com", b"GET", None, &mut out));
    assert_eq!(
        lines(&out)[0],
        "Access-Control-Allow-Origin: https://MyApp.com"
    );
}

#[test]
fn preflight_refused_appends_nothing() {
    let p = compile(&full());
    // (origin, Access-Control-Request-Method, Access-Control-Request-Headers)
    let cases: &[Preflight] = &[
        // origin
        (b"https://evil.com", b"GET", None),
        (b"null", b"GET", None),
        // method: not listed, wrong case, not a token
        (b"https://myapp.com", b"DELETE", None),
        (b"https://myapp.com", b"post", None),
        (b"https://myapp.com", b"GE T", None),
        (b"https://myapp.com", b"", None),
        // headers: one not listed, not a token
        (
            b"https://myapp.com",
            b"GET",
            Some(b"content-type, x-secret"),
        ),
        (b"https://myapp.com", b"GET", Some(b"x\r\ny")),
    ];
    for (origin, method, headers) in cases {
        let mut out = b"HTTP/1.1 204 No Content\r\n".to_vec();
        let before = out.clone();
        assert!(
            !p.write_preflight(origin, method, *headers, &mut out),
            "{:?} {:?} {:?}",
            String::from_utf8_lossy(origin),
            String::from_utf8_lossy(method),
            headers.map(String::from_utf8_lossy)
        );
        assert_eq!(out, before);
    }
}

#[test]
fn preflight_header_names_compare_case_insensitively() {
    let p = compile(&full());
    let mut out = Vec::new();
    assert!(p.write_preflight(
        b"https://myapp.com",
        b"GET",
        Some(b" Content-Type ,, AUTHORIZATION"),
        &mut out
    ));
}

#[test]
fn preflight_star_echoes_method_and_headers() {
    let f = CorsFile {
        allow_methods: vec!["*".into()],
        allow_headers: vec!["*".into()],
        ..file(&["https://myapp.com"])
    };
    let p = compile(&f);
    let mut out = Vec::new();
    assert!(p.write_preflight(
        b"https://myapp.com",
        b"PATCH",
        Some(b"authorization, x-custom"),
        &mut out
    ));
    assert_eq!(
        lines(&out),
        [
            "Access-Control-Allow-Origin: https://myapp.com",
            "Access-Control-Allow-Methods: PATCH",
            "Access-Control-Allow-Headers: authorization, x-custom",
            "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ]
    );

    // No requested headers: no Allow-Headers line to echo.
    let mut out = Vec::new();
    assert!(p.write_preflight(b"https://myapp.com", b"DELETE", Some(b" "), &mut out));
    assert_eq!(
        lines(&out),
        [
            "Access-Control-Allow-Origin: https://myapp.com",
            "Access-Control-Allow-Methods: DELETE",
            "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ]
    );
}

#[test]
fn preflight_with_star_origin() {
    let f = CorsFile {
        allow_methods: vec!["GET".into()],
        max_age: Some(-1),
        ..file(&["*"])
    };
    let p = compile(&f);
    let mut out = Vec::new();
    assert!(p.write_preflight(b"https://anyone.net", b"GET", None, &mut out));
    assert_eq!(
        lines(&out),
        [
            "Access-Control-Allow-Origin: *",
            "Access-Control-Allow-Methods: GET",
            // AWS's -1, said in a way every browser reads as "do not cache".
            "Access-Control-Max-Age: 0",
            "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ]
    );
    // A requested header with none configured is refused.
    assert!(!p.write_preflight(b"https://anyone.net", b"GET", Some(b"x-a"), &mut Vec::new()));
}

#[test]
fn empty_allow_methods_refuses_every_preflight() {
    let p = compile(&file(&["https://myapp.com"]));
    assert!(!p.write_preflight(b"https://myapp.com", b"GET", None, &mut Vec::new()));
    // ...while simple requests still get their headers.
    let mut out = Vec::new();
    assert!(p.write_actual(b"https://myapp.com", &mut out));
}

#[test]
fn actual_answer_headers() {
    let p = compile(&full());
    let mut out = Vec::new();
    assert!(p.write_actual(b"https://a.b.example.com", &mut out));
    assert_eq!(
        lines(&out),
        [
            "Access-Control-Allow-Origin: https://a.b.example.com",
            "Access-Control-Allow-Credentials: true",
            "Access-Control-Expose-Headers: x-request-id",
            "Vary: Origin",
        ]
    );
    let mut out = Vec::new();
    assert!(!p.write_actual(b"https://evil.com", &mut out));
    assert!(out.is_empty());
    p.write_vary(&mut out);
    assert_eq!(lines(&out), ["Vary: Origin"]);
}

#[test]
fn expose_star_without_credentials() {
    let f = CorsFile {
        expose_headers: vec!["*".into()],
        ..file(&["https://myapp.com"])
    };
    let mut out = Vec::new();
    assert!(compile(&f).write_actual(b"https://myapp.com", &mut out));
    assert_eq!(
        lines(&out),
        [
            "Access-Control-Allow-Origin: https://myapp.com",
            "Access-Control-Expose-Headers: *",
            "Vary: Origin",
        ]
    );
}

#[test]
fn cors_headers_of_an_integration() {
    for name in [
        "access-control-allow-origin",
        "Access-Control-Allow-Credentials",
        "ACCESS-CONTROL-MAX-AGE",
        "access-control-expose-headers",
    ] {
        assert!(CorsPolicy::is_cors_header(name.as_bytes()), "{name}");
    }
    for name in [
        "vary",
        "access-control-",
        "access-control",
        "content-type",
        "x-access-control-a",
    ] {
        assert!(!CorsPolicy::is_cors_header(name.as_bytes()), "{name}");
    }
}

#[test]
fn star_with_credentials_is_refused() {
    let f = CorsFile {
        allow_credentials: true,
        ..file(&["https://myapp.com", "*"])
    };
    let errors = errors_of(&f);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "apis[0].cors.allow_origins[1]");
    assert!(errors[0].1.contains("browsers refuse"), "{}", errors[0].1);
    assert!(errors[0].1.contains("AWS"), "{}", errors[0].1);
}

#[test]
fn check_errors_name_their_paths() {
    let f = CorsFile {
        allow_origins: vec![
            "https://ok.com".into(),
            "https://myapp.com/".into(),
            "https://a.*.example.com".into(),
            "null".into(),
            "myapp.com".into(),
            "https://myapp.com:443".into(),
            "https://*example.com".into(),
            "https://myapp.com:70000".into(),
            "https://user@myapp.com".into(),
            "1https://a.com".into(),
            "https://".into(),
        ],
        allow_methods: vec!["GET".into(), "get".into(), "BAD METHOD".into(), "".into()],
        allow_headers: vec!["content-type".into(), "x y".into()],
        expose_headers: vec!["x:y".into(), "*".into()],
        max_age: Some(86_401),
        allow_credentials: true,
    };
    let paths: Vec<String> = errors_of(&f).into_iter().map(|(p, _)| p).collect();
    let at = |s: &str| format!("apis[0].cors.{s}");
    assert_eq!(
        paths,
        [
            at("allow_origins[1]"),
            at("allow_origins[2]"),
            at("allow_origins[3]"),
            at("allow_origins[4]"),
            at("allow_origins[5]"),
            at("allow_origins[6]"),
            at("allow_origins[7]"),
            at("allow_origins[8]"),
            at("allow_origins[9]"),
            at("allow_origins[10]"),
            at("allow_methods[1]"),
            at("allow_methods[2]"),
            at("allow_methods[3]"),
            at("allow_headers[1]"),
            at("expose_headers[0]"),
            at("expose_headers"),
            at("max_age"),
        ]
    );
}

#[test]
fn check_reasons_say_how_to_fix() {
    let reason = |o: &str| errors_of(&file(&[o]))[0].1.clone();
    assert!(reason("https://myapp.com/").contains("\"https://myapp.com\""));
    assert!(reason("https://myapp.com:443").contains("\"https://myapp.com\""));
    assert!(reason("https://a.*.example.com").contains("leftmost"));
    let f = CorsFile {
        allow_methods: vec!["delete".into()],
        ..file(&["*"])
    };
    assert!(errors_of(&f)[0].1.starts_with("write DELETE"));
}

#[test]
fn empty_origins_is_an_error() {
    assert_eq!(
        errors_of(&CorsFile::default())
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        ["apis[0].cors.allow_origins"]
    );
}

#[test]
fn max_age_bounds() {
    for (age, ok) in [
        (-2, false),
        (-1, true),
        (0, true),
        (86_400, true),
        (86_401, false),
    ] {
        let f = CorsFile {
            max_age: Some(age),
            ..file(&["*"])
        };
        let mut errors = Vec::new();
        assert_eq!(check(&f, "c", &mut errors).is_some(), ok, "{age}");
    }
}

#[test]
fn errors_elsewhere_do_not_stop_a_valid_section() {
    let mut errors = vec![ConfigError::new("apis[0].name", "earlier problem")];
    assert!(check(&full(), "apis[1].cors", &mut errors).is_some());
    assert_eq!(errors.len(), 1);
}

#[test]
fn yaml_round_trip() {
    let yaml = r#"
allow_origins: ["https://myapp.com", "https://*.example.com"]
allow_methods: [GET, POST]
allow_headers: [content-type, Authorization]
expose_headers: [x-request-id]
max_age: 300
allow_credentials: true
"#;
    let parsed: CorsFile = serde_saphyr::from_str(yaml).expect("yaml");
    assert_eq!(parsed, full());
    let text = serde_saphyr::to_string(&parsed).expect("serialize");
    let again: CorsFile = serde_saphyr::from_str(&text).expect("yaml again");
    assert_eq!(again, parsed);
}

#[test]
fn json_leaves_out_what_is_unset() {
    let f = file(&["*"]);
    let json = serde_json::to_string(&f).expect("json");
    assert_eq!(json, r#"{"allow_origins":["*"]}"#);
    let back: CorsFile = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, f);
}

#[test]
fn unknown_fields_are_refused() {
    let r: Result<CorsFile, _> = serde_json::from_str(r#"{"allow_origin":["*"]}"#);
    assert!(r.is_err());
}

#[test]
fn host_wildcard_with_a_port() {
    let p = compile(&file(&["http://*:8080"]));
    assert!(p.allows_origin(b"http://a.test:8080"));
    assert!(p.allows_origin(b"http://127.0.0.1:8080"));
    assert!(!p.allows_origin(b"http://a.test"));
    assert!(!p.allows_origin(b"http://a.test:8081"));
}

#[test]
fn pattern_matches_are_echoed() {
    let f = CorsFile {
        allow_methods: vec!["GET".into()],
        ..file(&["http://*"])
    };
    let mut out = Vec::new();
    assert!(compile(&f).write_preflight(b"http://localhost:5173", b"GET", None, &mut out));
    assert_eq!(
        lines(&out)[0],
        "Access-Control-Allow-Origin: http://localhost:5173"
    );
}

#[test]
fn star_among_listed_origins_answers_star() {
    let p = compile(&file(&["https://myapp.com", "*"]));
    let mut out = Vec::new();
    assert!(p.write_actual(b"https://myapp.com", &mut out));
    assert_eq!(lines(&out), ["Access-Control-Allow-Origin: *"]);
}

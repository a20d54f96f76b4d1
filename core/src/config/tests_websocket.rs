//! Checks of WebSocket APIs (`check_websocket.rs`).

use super::*;

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn has(errs: &[String], path: &str, needle: &str) -> bool {
    errs.iter()
        .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(needle))
}

const CHAT: &str = r#"
apis:
  - name: chat
    protocol: websocket
    route_selection_expression: "${request.body.service}/${request.body.action}"
    websocket: { idle_timeout_ms: 30000, max_frame_bytes: 1024 }
    authorizers:
      auth: { type: request, uri: "http://127.0.0.1:9100/authorize", identity_source: ["$request.header.Authorization"] }
    integrations:
      hello: { type: mock, body: "hi" }
      backend: { type: http_proxy, uri: "http://127.0.0.1:9000/messages" }
    routes:
      - { key: $connect, integration: backend, authorizer: auth }
      - { key: $disconnect, integration: backend }
      - { key: $default, integration: hello, route_response_selection_expression: $default }
      - { key: chat/post, integration: backend }
    stages: [ { name: prod } ]
"#;

#[test]
fn a_websocket_api_loads_with_its_routes_and_limits() {
    let (file, config) = load(CHAT).expect("valid");
    let ws = config.apis[0].websocket.as_ref().expect("a WebSocket API");
    assert_eq!(
        (ws.connect, ws.disconnect, ws.default),
        (Some(0), Some(1), Some(2))
    );
    assert_eq!(ws.keys.get("chat/post"), Some(&3));
    assert_eq!(ws.two_way, vec![false, false, true, false]);
    assert_eq!(ws.settings.idle_timeout, std::time::Duration::from_secs(30));
    assert_eq!(
        ws.settings.max_duration,
        std::time::Duration::from_secs(7200)
    );
    assert_eq!(ws.settings.limits.max_frame_bytes, 1024);
    assert_eq!(ws.settings.limits.max_message_bytes, 128 * 1024);
    assert_eq!(
        ws.route_for(br#"{"service":"chat","action":"post"}"#),
        Some(3)
    );
    assert_eq!(ws.route_for(b"not json"), Some(2));
    assert!(config.apis[0].table.is_empty());
    assert_eq!(parse(&to_yaml(&file)).expect("yaml"), file);
}

#[test]
fn websocket_mistakes_are_refused_with_their_paths() {
    let e = errors(&CHAT.replace(
        "{ key: $disconnect, integration: backend }",
        "{ key: $disconnect, integration: backend, authorizer: auth }",
    ));
    assert!(
        has(&e, "apis[0].routes[1].authorizer", "only its $connect"),
        "{e:?}"
    );
    let e = errors(&CHAT.replace("key: chat/post", "key: $custom"));
    assert!(
        has(
            &e,
            "apis[0].routes[3].key",
            "$connect, $disconnect, $default"
        ),
        "{e:?}"
    );
    let e = errors(&CHAT.replace("key: chat/post", "key: $default"));
    assert!(has(&e, "apis[0].routes[3].key", "a second route"), "{e:?}");
    let e = errors(&CHAT.replace("max_frame_bytes: 1024", "max_frame_bytes: 200000"));
    assert!(
        has(
            &e,
            "apis[0].websocket.max_frame_bytes",
            "more than max_message_bytes"
        ),
        "{e:?}"
    );
    let e = errors(&CHAT.replace("idle_timeout_ms: 30000", "idle_timeout_ms: 10"));
    assert!(
        has(
            &e,
            "apis[0].websocket.idle_timeout_ms",
            "milliseconds, 1000 to"
        ),
        "{e:?}"
    );
    let e = errors(&CHAT.replace(
        "\"${request.body.service}/${request.body.action}\"",
        "\"$request.header.x\"",
    ));
    assert!(
        has(&e, "apis[0].route_selection_expression", "$request.body"),
        "{e:?}"
    );
    let e = errors(&CHAT.replace(
        "route_response_selection_expression: $default",
        "route_response_selection_expression: $request.body.x",
    ));
    assert!(
        has(
            &e,
            "apis[0].routes[2].route_response_selection_expression",
            "only $default"
        ),
        "{e:?}"
    );
    // The WebSocket fields on an HTTP API.
    let e = errors(&CHAT.replace("protocol: websocket", "protocol: http"));
    assert!(
        has(
            &e,
            "apis[0].route_selection_expression",
            "only WebSocket APIs"
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "apis[0].websocket", "only for WebSocket APIs"),
        "{e:?}"
    );
}

#[test]
fn route_settings_name_websocket_route_keys() {
    let text = CHAT.replace(
        "stages: [ { name: prod } ]",
        r#"stages:
      - name: prod
        throttle: { rate_limit: 100, burst_limit: 50 }
        route_settings:
          chat/post: { throttle: { rate_limit: 1, burst_limit: 2 } }
          $connect: { throttle: { rate_limit: 5, burst_limit: 5 } }"#,
    );
    let (_, config) = load(&text).expect("valid");
    let limits = &config.apis[0].stages[0].route_throttle;
    let rate = |r: usize| match limits[r] {
        Some(crate::usage::Limit::Rate(q)) => Some(q.burst()),
        _ => None,
    };
    // $connect, $disconnect, $default, chat/post: each its own entry or the stage's default.
    assert_eq!(
        (rate(0), rate(1), rate(2), rate(3)),
        (Some(5), Some(50), Some(50), Some(2))
    );
    let errs = errors(&text.replace("chat/post: {", "chat/nope: {"));
    assert!(
        has(
            &errs,
            "apis[0].stages[0].route_settings.chat/nope",
            "no route"
        ),
        "{errs:?}"
    );
}

#[test]
fn route_keys_that_look_like_mistakes_are_warned_about() {
    let text = CHAT
        .replace("key: $default,", "key: default,")
        .replace("key: chat/post,", "key: \"GET /oneway\",");
    let (_, config) = load(&text).expect("valid, with warnings");
    let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        has(
            &warnings,
            "apis[0].routes[2].key",
            "did you mean \"$default\""
        ),
        "{warnings:?}"
    );
    assert!(
        has(
            &warnings,
            "apis[0].routes[3].key",
            "looks like an HTTP route key"
        ),
        "{warnings:?}"
    );
    let (_, clean) = load(CHAT).expect("valid");
    assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);
}

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use super::*;

const CERT: ClientCertInfo<'static> = ClientCertInfo {
    pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    subject_dn: "CN=client,O=Example",
    issuer_dn: "CN=Example CA",
    serial_number: "0A:1B",
    not_before: "May 28 12:30:02 2019 GMT",
    not_after: "Aug  5 09:36:04 2021 GMT",
};

/// The request AWS logged in a real HTTP API access log (`GET /api/v1/users/me`, 401), plus
/// values for the variables that log left at `-`.
fn full() -> RequestContext<'static> {
    RequestContext {
        request_id: "KyDfdgZ9oAMEYpA=",
        extended_request_id: "",
        source_ip: Some(IpAddr::V4(Ipv4Addr::new(71, 142, 4, 44))),
        user_agent: Some("curl/8.5.0"),
        request_time_epoch_ms: 1_747_602_530_123,
        method: "GET",
        path: "/api/v1/users/me",
        protocol: "HTTP/1.1",
        route_key: "GET /api/v1/users/me",
        stage: "$default",
        api_id: "qi9k0zm7z8",
        domain_name: "qi9k0zm7z8.execute-api.us-east-1.amazonaws.com",
        domain_prefix: "",
        base_path_matched: Some("v1/orders"),
        account_id: Some("825765427811"),
        status: 401,
        response_length: 47,
        response_latency_ms: 71,
        integration_latency_ms: Some(39),
        integration_status: Some(401),
        integration_error: Some("connect refused"),
        integration_request_id: Some("88d54618-b7bc-445e-9bd2-d2eb1e8a2045"),
        error_message: Some("Unauthorized"),
        error_response_type: Some("UNAUTHORIZED"),
        validation_error: Some("Missing required request parameters: [limit]"),
        data_processed: 1234,
        client_cert: Some(CERT),
        authorizer_error: Some("expired"),
        authorizer_principal_id: Some("user-1"),
        authorizer: None,
        identity_access_key: Some("AKIDEXAMPLE"),
        identity_caller: Some("ci-deployer"),
        cache_status: Some("hit"),
        websocket: None,
    }
}

fn render(t: &str, ctx: &RequestContext, esc: Escape) -> String {
    let mut out = Vec::new();
    Template::parse(t)
        .expect("template")
        .render(ctx, esc, &mut out);
    String::from_utf8(out).expect("utf-8")
}

fn one(var: Var, ctx: &RequestContext) -> String {
    render(&format!("$context.{}", var.name()), ctx, Escape::None)
}

#[test]
fn every_variable_renders_from_a_known_context() {
    let ctx = full();
    let expect = |v: Var| -> &str {
        match v {
            Var::AccountId => "825765427811",
            Var::ApiId => "qi9k0zm7z8",
            Var::AuthorizerError => "expired",
            Var::CacheStatus => "hit",
            Var::AuthorizerPrincipalId => "user-1",
            Var::AwsEndpointRequestId | Var::IntegrationRequestId => {
                "88d54618-b7bc-445e-9bd2-d2eb1e8a2045"
            }
            Var::CustomDomainBasePathMatched => "v1/orders",
            Var::DataProcessed => "1234",
            Var::DomainName => "qi9k0zm7z8.execute-api.us-east-1.amazonaws.com",
            Var::DomainPrefix => "qi9k0zm7z8",
            Var::ErrorMessage => "Unauthorized",
            Var::ErrorMessageString => "\"Unauthorized\"",
            Var::ErrorResponseType => "UNAUTHORIZED",
            Var::ErrorValidationErrorString => "Missing required request parameters: [limit]",
            Var::ExtendedRequestId | Var::RequestId => "KyDfdgZ9oAMEYpA=",
            Var::HttpMethod => "GET",
            Var::IdentityClientCertPem => {
                "-----BEGIN CERTIFICATE-----\\x0aMIIB\\x0a-----END CERTIFICATE-----"
            }
            Var::IdentityClientCertIssuerDn => "CN=Example CA",
            Var::IdentityClientCertSerialNumber => "0A:1B",
            Var::IdentityClientCertSubjectDn => "CN=client,O=Example",
            Var::IdentityClientCertNotAfter => "Aug  5 09:36:04 2021 GMT",
            Var::IdentityClientCertNotBefore => "May 28 12:30:02 2019 GMT",
            Var::IdentitySourceIp => "71.142.4.44",
            Var::IdentityUserAgent => "curl/8.5.0",
            Var::IdentityAccessKey => "AKIDEXAMPLE",
            Var::IdentityCaller | Var::IdentityUser => "ci-deployer",
            Var::IntegrationError | Var::IntegrationErrorMessage => "connect refused",
            Var::IntegrationIntegrationStatus
            | Var::IntegrationStatusDotted
            | Var::IntegrationStatus => "401",
            Var::IntegrationLatencyDotted | Var::IntegrationLatency => "39",
            Var::Path => "/api/v1/users/me",
            Var::Protocol => "HTTP/1.1",
            Var::RequestTime => "18/May/2025:21:08:50 +0000",
            Var::RequestTimeEpoch => "1747602530",
            Var::ResponseLatency => "71",
            Var::ResponseLength => "47",
            Var::RouteKey => "GET /api/v1/users/me",
            Var::Stage => "$default",
            Var::Status => "401",
            Var::AwsEndpointRequestId2
            | Var::IdentityAccountId
            | Var::IdentityCognitoAuthenticationProvider
            | Var::IdentityCognitoAuthenticationType
            | Var::IdentityCognitoIdentityId
            | Var::IdentityCognitoIdentityPoolId
            | Var::IdentityPrincipalOrgId
            | Var::IdentityUserArn => "-",
            // WebSocket events only.
            Var::ConnectedAt
            | Var::ConnectionId
            | Var::DisconnectStatusCode
            | Var::DisconnectReason
            | Var::EventType
            | Var::MessageId => "-",
        }
    };
    for &v in Var::ALL {
        assert_eq!(one(v, &ctx), expect(v), "{}", v.name());
        // The braced spelling renders the same.
        assert_eq!(
            render(&format!("${{context.{}}}", v.name()), &ctx, Escape::None),
            expect(v),
            "{}",
            v.name()
        );
    }
}

#[test]
fn websocket_events_render_their_variables() {
    let message = RequestContext {
        request_id: "XfGLwFTktjMFsLg=",
        request_time_epoch_ms: 1_607_854_667_186,
        route_key: "sendmessage",
        status: 200,
        websocket: Some(WebsocketContext {
            event_type: "MESSAGE",
            connection_id: "XfGLwfymhcwCENw=",
            message_id: Some("XfGLwFTktjMFsLg="),
            connected_at_ms: 1_607_854_667_185,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        render(
            "$context.eventType $context.connectionId $context.messageId $context.connectedAt $context.requestTimeEpoch $context.routeKey $context.status $context.disconnectStatusCode",
            &message,
            Escape::None
        ),
        // requestTimeEpoch in milliseconds, as AWS logs WebSocket events.
        "MESSAGE XfGLwfymhcwCENw= XfGLwFTktjMFsLg= 1607854667185 1607854667186 sendmessage 200 -"
    );
    let refused = RequestContext {
        request_time_epoch_ms: 1_607_854_667_186,
        websocket: Some(WebsocketContext {
            event_type: "CONNECT",
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        render(
            "$context.connectionId $context.connectedAt $context.messageId",
            &refused,
            Escape::None
        ),
        "- - -"
    );
    let gone = RequestContext {
        websocket: Some(WebsocketContext {
            event_type: "DISCONNECT",
            disconnect_status_code: Some(1006),
            disconnect_reason: Some("Connection dropped"),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        render(
            r#"{"code":"$context.disconnectStatusCode","why":"$context.disconnectReason"}"#,
            &gone,
            Escape::Json
        ),
        r#"{"code":"1006","why":"Connection dropped"}"#
    );
}

#[test]
fn names_round_trip_and_are_unique() {
    assert!(Var::ALL.len() <= 128, "the uses mask is a u128");
    let mut seen = HashSet::new();
    for &v in Var::ALL {
        assert!(seen.insert(v.name()), "{} twice", v.name());
        assert_eq!(Var::parse(v.name()), Some(v));
    }
    assert_eq!(Var::parse("requestid"), None);
    assert_eq!(Var::parse("$context.requestId"), None);
}

#[test]
fn missing_values_render_a_dash() {
    let ctx = RequestContext::default();
    for &v in Var::ALL {
        let want = match v {
            Var::ResponseLength | Var::ResponseLatency | Var::DataProcessed => "0",
            _ => "-",
        };
        assert_eq!(one(v, &ctx), want, "{}", v.name());
    }
    // An empty header is not a missing one.
    let ua = RequestContext {
        user_agent: Some(""),
        ..Default::default()
    };
    assert_eq!(one(Var::IdentityUserAgent, &ua), "");
    // extendedRequestId falls back to requestId; an explicit one wins.
    let ids = RequestContext {
        request_id: "a",
        extended_request_id: "b",
        ..Default::default()
    };
    assert_eq!(one(Var::ExtendedRequestId, &ids), "b");
}

#[test]
fn error_message_string_is_a_json_literal() {
    let ctx = RequestContext {
        request_id: "JKJaXmhLoAMEJeQ=",
        error_message: Some("Not Found"),
        ..Default::default()
    };
    let body = render(
        r#"{"message":$context.error.messageString,"id":"$context.requestId"}"#,
        &ctx,
        Escape::Json,
    );
    assert_eq!(body, r#"{"message":"Not Found","id":"JKJaXmhLoAMEJeQ="}"#);
    let hostile = RequestContext {
        error_message: Some("a\"b\\c\nd"),
        ..Default::default()
    };
    let body = render(
        r#"{"message":$context.error.messageString}"#,
        &hostile,
        Escape::Json,
    );
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["message"], "a\"b\\c\nd");
    assert_eq!(
        render("$context.error.messageString", &hostile, Escape::Xml),
        "&quot;a\\&quot;b\\\\c\\nd&quot;"
    );
    assert_eq!(
        render("$context.error.messageString", &hostile, Escape::Csv),
        "\"\"\"a\\\"\"b\\\\c\\nd\"\"\""
    );
}

const HOSTILE: &str = "a\"b\\c\nd\re\tf\u{1}g\u{7f}h<i&j>k'l,m é";

#[test]
fn escapes_hostile_values() {
    let ctx = RequestContext {
        user_agent: Some(HOSTILE),
        ..Default::default()
    };
    let ua = "$context.identity.userAgent";
    assert_eq!(
        render(ua, &ctx, Escape::None),
        "a\"b\\c\\x0ad\\x0de\\x09f\\x01g\\x7fh<i&j>k'l,m é"
    );
    assert_eq!(
        render(ua, &ctx, Escape::Json),
        "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\u{7f}h<i&j>k'l,m é"
    );
    let json = render(&format!("{{\"ua\":\"{ua}\"}}"), &ctx, Escape::Json);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["ua"], HOSTILE);
    assert_eq!(
        render(ua, &ctx, Escape::Xml),
        "a&quot;b\\c&#10;d&#13;e&#9;f\u{fffd}g\u{7f}h&lt;i&amp;j&gt;k&apos;l,m é"
    );
    assert_eq!(
        render(ua, &ctx, Escape::Csv),
        "\"a\"\"b\\c\\x0ad\\x0de\\x09f\\x01g\\x7fh<i&j>k'l,m é\""
    );
    // A CSV value without a comma or quote is not quoted.
    let plain = RequestContext {
        user_agent: Some("curl/8"),
        ..Default::default()
    };
    assert_eq!(render(ua, &plain, Escape::Csv), "curl/8");
    // No mode lets a value end the line.
    for esc in [Escape::None, Escape::Json, Escape::Xml, Escape::Csv] {
        let s = render(ua, &ctx, esc);
        assert!(!s.contains('\n') && !s.contains('\r'), "{esc:?}: {s:?}");
    }
}

#[test]
fn literals_are_never_escaped() {
    let ctx = RequestContext {
        method: "GET",
        ..Default::default()
    };
    assert_eq!(
        render("<a href=\"x\">&$context.httpMethod,\n", &ctx, Escape::Xml),
        "<a href=\"x\">&GET,\n"
    );
}

#[test]
fn longest_match_and_boundaries() {
    let ctx = full();
    assert_eq!(
        render(
            "$context.status.$context.requestTimeEpoch",
            &ctx,
            Escape::None
        ),
        "401.1747602530"
    );
    assert_eq!(
        render("[$context.requestTime]", &ctx, Escape::None),
        "[18/May/2025:21:08:50 +0000]"
    );
    assert_eq!(
        render(
            "$context.error.messageString/$context.error.message",
            &ctx,
            Escape::None
        ),
        "\"Unauthorized\"/Unauthorized"
    );
    assert_eq!(
        render(
            "$context.integrationStatus-$context.integration.status",
            &ctx,
            Escape::None
        ),
        "401-401"
    );
    assert_eq!(render("${context.status}x", &ctx, Escape::None), "401x");
    // `$` that is not a reference is literal text.
    assert_eq!(
        render(
            "$ $$ $foo ${stage} $contextual $context",
            &ctx,
            Escape::None
        ),
        "$ $$ $foo ${stage} $contextual $context"
    );
    // A name running on into letters is not a shorter variable.
    assert!(Template::parse("$context.statusCode").is_err());
}

#[test]
fn unknown_variables_are_named_with_close_names() {
    let err = Template::parse("id=$context.requestid").expect_err("unknown");
    assert_eq!(
        err,
        "unknown variable $context.requestid at byte 3; did you mean $context.requestId?"
    );
    let err = Template::parse("$context.sourceIp").expect_err("unknown");
    assert!(err.contains("$context.identity.sourceIp"), "{err}");
    let err = Template::parse("$context.resourcePath").expect_err("unknown");
    assert!(
        err.starts_with("unknown variable $context.resourcePath at byte 0"),
        "{err}"
    );
    let err = Template::parse("${context.nope}").expect_err("unknown");
    assert!(
        err.starts_with("unknown variable $context.nope at byte 0"),
        "{err}"
    );
    let err = Template::parse("a $context.zzzzzzzz").expect_err("unknown");
    assert!(err.contains("Customize HTTP API access logs"), "{err}");
    let err = Template::parse("$context.").expect_err("empty");
    assert!(err.contains("empty variable name"), "{err}");
    let err = Template::parse("${context.status").expect_err("unclosed");
    assert!(err.contains("no closing"), "{err}");
    let err = Template::parse("$context.authorizer.").expect_err("no key");
    assert!(err.contains("authorizer"), "{err}");
}

struct Claims;

impl super::AuthorizerValues for Claims {
    fn claim(&self, name: &str) -> Option<&str> {
        (name == "sub" || name == "cognito:groups").then_some("user-1")
    }
    fn property(&self, name: &str) -> Option<&str> {
        (name == "role").then_some("ad\"min")
    }
}

#[test]
fn authorizer_values_render_by_name() {
    let t = Template::parse(
        "$context.authorizer.claims.sub ${context.authorizer.claims.cognito:groups} \
         $context.authorizer.role. $context.authorizer.missing $context.authorizer.principalId",
    )
    .expect("parses");
    let ctx = RequestContext {
        authorizer: Some(super::AuthorizerRef(&Claims)),
        authorizer_principal_id: Some("p-1"),
        ..RequestContext::default()
    };
    let mut out = Vec::new();
    t.render(&ctx, Escape::Json, &mut out);
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "user-1 user-1 ad\\\"min. - p-1"
    );
    let mut out = Vec::new();
    t.render(&RequestContext::default(), Escape::None, &mut out);
    assert_eq!(String::from_utf8(out).expect("utf-8"), "- - -. - -");
}

#[test]
fn uses_reports_every_spelling() {
    let t = Template::parse("$context.status ${context.integration.latency}").expect("parse");
    assert!(t.uses(Var::Status));
    assert!(t.uses(Var::IntegrationLatencyDotted));
    assert!(!t.uses(Var::IntegrationLatency));
    assert!(!t.uses(Var::RequestId));
    assert_eq!(t.source(), "$context.status ${context.integration.latency}");
}

#[test]
fn request_time_formats_utc() {
    let f = |ms| RequestTime::from_epoch_ms(ms).as_str().to_owned();
    assert_eq!(f(0), "01/Jan/1970:00:00:00 +0000");
    assert_eq!(f(999), "01/Jan/1970:00:00:00 +0000");
    // Leap days, in a leap year, a century leap year, and around a non-leap century.
    assert_eq!(f(951_782_400_000), "29/Feb/2000:00:00:00 +0000");
    assert_eq!(f(1_709_251_199_000), "29/Feb/2024:23:59:59 +0000");
    assert_eq!(f(1_709_251_200_000), "01/Mar/2024:00:00:00 +0000");
    assert_eq!(f(4_107_542_400_000), "01/Mar/2100:00:00:00 +0000");
    assert_eq!(f(4_107_542_399_000), "28/Feb/2100:23:59:59 +0000");
    assert_eq!(f(1_735_689_599_000), "31/Dec/2024:23:59:59 +0000");
    assert_eq!(f(1_747_602_530_000), "18/May/2025:21:08:50 +0000");
    // Beyond year 9999 the time is clamped, the width kept.
    assert_eq!(f(u64::MAX), "31/Dec/9999:23:59:59 +0000");
}

fn is_aws_shaped(id: &RequestId) -> bool {
    let b = id.as_bytes();
    b[15] == b'='
        && b[..15]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && id.as_str().len() == 16
}

#[test]
fn request_ids_are_aws_shaped_and_unique() {
    let mut ids = RequestIds::new(0, 42);
    let mut seen = HashSet::with_capacity(2_000_000);
    let now = 1_747_602_530_123;
    // A million in one millisecond, then time moving on and stepping back.
    for i in 0..1_000_000u64 {
        let id = ids.next(now + i / 250_000);
        assert!(is_aws_shaped(&id), "{id}");
        assert!(seen.insert(id), "{id} repeated");
    }
    for _ in 0..1000 {
        assert!(
            seen.insert(ids.next(now - 5_000)),
            "clock step back repeated an id"
        );
    }
    // Another worker in the same process, same seed, same milliseconds.
    let mut other = RequestIds::new(1, 42);
    for i in 0..1_000_000u64 {
        assert!(
            seen.insert(other.next(now + i / 250_000)),
            "workers collided"
        );
    }
}

#[test]
fn request_ids_differ_across_seeds_and_survive_a_full_millisecond() {
    let now = 1_700_000_000_000;
    let a = RequestIds::new(3, 1).next(now);
    let b = RequestIds::new(3, 2).next(now);
    assert_ne!(a, b);
    // Exhausting a millisecond's 2^30 sequences borrows the next millisecond.
    let mut ids = RequestIds::new(0, 7);
    let first = ids.next(now);
    ids.issued = 1 << 30;
    let borrowed = ids.next(now);
    assert_ne!(first, borrowed);
    assert_eq!(ids.last_ms, now + 1);
}

#[test]
fn other_dollar_words_with_a_dot_are_refused_but_plain_dollars_are_text() {
    for bad in [
        "$contxt.status",
        "x $stageVariables.backend y",
        "$input.body",
    ] {
        let e = Template::parse(bad).expect_err(bad);
        assert!(e.contains("only `$context.` variables"), "{bad}: {e}");
    }
    let t = Template::parse("$default costs $5 and $ alone.").expect("plain dollars");
    let mut out = Vec::new();
    t.render(&RequestContext::default(), Escape::None, &mut out);
    assert_eq!(out, b"$default costs $5 and $ alone.");
}

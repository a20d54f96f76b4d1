use super::*;
use serde_json::json;

const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/pets/7";

const HEADERS: &[(&str, &str)] = &[
    ("Host", "abcdef123.example.com"),
    ("Authorization", "Bearer t"),
    ("X-Multi", "a"),
    ("Cookie", "c1=v1; c2=v2"),
    ("x-multi", "b"),
    ("cookie", "c3=v3"),
    ("User-Agent", "curl/8"),
];

fn facts<'a>(raw_query: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestFacts<'a> {
    RequestFacts {
        method: "GET",
        path: "/prod/pets/7",
        raw_query,
        headers,
        path_parameters: &[("id", "7")],
        stage_variables: &[("env", "production")],
        route_key: "GET /pets/{id}",
        stage: "prod",
        api_id: "abcdef123",
        account_id: "123456789012",
        domain_name: "abcdef123.execute-api.us-east-1.amazonaws.com",
        request_id: "JKJaXmPLvHcESHA=",
        source_ip: "198.51.100.7",
        user_agent: "curl/8",
        protocol: "HTTP/1.1",
        time_epoch_ms: 1_583_348_638_390,
        route_arn: ARN,
    }
}

fn parse(bytes: Vec<u8>) -> Value {
    serde_json::from_slice(&bytes).expect("the event is JSON")
}

#[test]
fn event_v2_field_by_field() {
    let q = "a=1&a=2&b=x%20y&c=1+2&d&e=%zz&&%C3%A9=%E2%82%AC";
    let e = parse(event_v2(&facts(q, HEADERS), &["Bearer t", "7"]));
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["type"], "REQUEST");
    assert_eq!(e["routeArn"], ARN);
    assert_eq!(e["identitySource"], json!(["Bearer t", "7"]));
    assert_eq!(e["routeKey"], "GET /pets/{id}");
    assert_eq!(e["rawPath"], "/prod/pets/7");
    assert_eq!(e["rawQueryString"], q);
    assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2", "c3=v3"]));
    assert_eq!(
        e["headers"],
        json!({
            "host": "abcdef123.example.com",
            "authorization": "Bearer t",
            "x-multi": "a,b",
            "user-agent": "curl/8",
        })
    );
    assert_eq!(
        e["queryStringParameters"],
        json!({"a": "1,2", "b": "x y", "c": "1+2", "d": "", "e": "%zz", "é": "€"})
    );
    let rc = &e["requestContext"];
    assert_eq!(rc["accountId"], "123456789012");
    assert_eq!(rc["apiId"], "abcdef123");
    assert_eq!(
        rc["domainName"],
        "abcdef123.execute-api.us-east-1.amazonaws.com"
    );
    assert_eq!(rc["domainPrefix"], "abcdef123");
    assert_eq!(
        rc["http"],
        json!({
            "method": "GET",
            "path": "/prod/pets/7",
            "protocol": "HTTP/1.1",
            "sourceIp": "198.51.100.7",
            "userAgent": "curl/8",
        })
    );
    assert_eq!(rc["requestId"], "JKJaXmPLvHcESHA=");
    assert_eq!(rc["routeKey"], "GET /pets/{id}");
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["time"], "04/Mar/2020:19:03:58 +0000");
    assert_eq!(rc["timeEpoch"], 1_583_348_638_390u64);
    assert_eq!(e["pathParameters"], json!({"id": "7"}));
    assert_eq!(e["stageVariables"], json!({"env": "production"}));
    let keys: Vec<&String> = e.as_object().expect("an object").keys().collect();
    assert_eq!(keys.len(), 13, "{keys:?}");
}

#[test]
fn event_v2_leaves_out_what_is_empty() {
    let mut f = facts("", &[("Host", "h")]);
    f.path_parameters = &[];
    f.stage_variables = &[];
    let e = parse(event_v2(&f, &[]));
    let e = e.as_object().expect("an object");
    for absent in [
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        assert!(!e.contains_key(absent), "{absent} should be left out");
    }
    assert_eq!(e["rawQueryString"], "");
    assert_eq!(e["identitySource"], json!([]));
    assert_eq!(e["headers"], json!({"host": "h"}));
}

#[test]
fn event_v1_field_by_field() {
    let e = parse(event_v1(&facts("a=1&a=2&b=x%2By", HEADERS), "Bearer t,7"));
    assert_eq!(e["version"], "1.0");
    assert_eq!(e["type"], "REQUEST");
    assert_eq!(e["methodArn"], ARN);
    assert_eq!(e["identitySource"], "Bearer t,7");
    assert_eq!(e["authorizationToken"], "Bearer t,7");
    assert_eq!(e["resource"], "/pets/{id}");
    assert_eq!(e["path"], "/prod/pets/7");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["headers"]["X-Multi"], "b");
    assert_eq!(e["headers"]["Cookie"], "c3=v3");
    assert_eq!(e["headers"]["Authorization"], "Bearer t");
    assert_eq!(e["multiValueHeaders"]["X-Multi"], json!(["a", "b"]));
    assert_eq!(
        e["multiValueHeaders"]["Cookie"],
        json!(["c1=v1; c2=v2", "c3=v3"])
    );
    assert!(e["headers"].get("x-multi").is_none());
    assert_eq!(e["queryStringParameters"], json!({"a": "2", "b": "x+y"}));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"a": ["1", "2"], "b": ["x+y"]})
    );
    let rc = &e["requestContext"];
    assert_eq!(rc["accountId"], "123456789012");
    assert_eq!(rc["apiId"], "abcdef123");
    assert_eq!(rc["httpMethod"], "GET");
    assert_eq!(rc["identity"]["sourceIp"], "198.51.100.7");
    assert_eq!(rc["identity"]["userAgent"], "curl/8");
    assert_eq!(rc["identity"]["user"], Value::Null);
    assert_eq!(rc["path"], "/prod/pets/7");
    assert_eq!(rc["resourcePath"], "/pets/{id}");
    assert_eq!(rc["requestTime"], "04/Mar/2020:19:03:58 +0000");
    assert_eq!(rc["requestTimeEpoch"], 1_583_348_638_390u64);
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["requestId"], "JKJaXmPLvHcESHA=");
    assert_eq!(e["pathParameters"], json!({"id": "7"}));
    assert_eq!(e["stageVariables"], json!({"env": "production"}));
}

#[test]
fn event_v1_sends_null_maps_and_no_token_when_empty() {
    let mut f = facts("", &[]);
    f.path_parameters = &[];
    f.stage_variables = &[];
    f.route_key = "$default";
    let e = parse(event_v1(&f, ""));
    for null in [
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        assert_eq!(e[null], Value::Null, "{null}");
    }
    assert!(e.get("authorizationToken").is_none());
    assert_eq!(e["identitySource"], "");
    assert_eq!(e["resource"], "/prod/pets/7");
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("plain+text"), "plain+text");
    assert_eq!(percent_decode("a%2Fb%2fc"), "a/b/c");
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%4"), "%4");
    assert_eq!(percent_decode("%ff"), "\u{fffd}");
}

fn answer(
    body: Value,
    format: PayloadFormat,
    simple: bool,
) -> Result<AuthorizerAnswer, AnswerError> {
    let body = serde_json::to_vec(&body).expect("json");
    parse_answer(&body, format, simple, ARN)
}

fn policy(effect: &str, resource: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]
    })
}

#[test]
fn simple_responses() {
    let a = answer(
        json!({"isAuthorized": true, "context": {"s": "v", "n": 1, "f": 1.5, "b": true, "nul": null}}),
        PayloadFormat::V2,
        true,
    )
    .expect("an answer");
    assert!(a.allowed);
    assert_eq!(a.principal_id, None);
    let mut ctx: Vec<(&str, &str)> = a.context.iter().map(|(k, v)| (&**k, &**v)).collect();
    ctx.sort();
    assert_eq!(ctx, [("b", "true"), ("f", "1.5"), ("n", "1"), ("s", "v")]);

    let a = answer(json!({"isAuthorized": false}), PayloadFormat::V2, true).expect("an answer");
    assert!(!a.allowed);
    assert!(a.context.is_empty());
}

#[test]
fn simple_responses_need_a_boolean_is_authorized() {
    for body in [
        json!({}),
        json!({"isAuthorized": "true"}),
        json!({"policyDocument": {}}),
    ] {
        assert_eq!(
            answer(body, PayloadFormat::V2, true),
            Err(AnswerError::NoIsAuthorized)
        );
    }
}

#[test]
fn iam_responses_allow_and_deny_on_the_route_arn() {
    for format in [PayloadFormat::V1, PayloadFormat::V2] {
        let a = answer(
            json!({
                "principalId": "user-1",
                "policyDocument": policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:abcdef123/*/GET/*"),
                "context": {"tier": "gold"},
                "usageIdentifierKey": "key-1",
            }),
            format,
            false,
        )
        .expect("an answer");
        assert!(a.allowed);
        assert_eq!(a.principal_id.as_deref(), Some("user-1"));
        assert_eq!(a.usage_identifier_key.as_deref(), Some("key-1"));
        assert_eq!(&*a.context, &[("tier".into(), "gold".into())]);

        let a = answer(
            json!({"principalId": "u", "policyDocument": policy("Deny", ARN)}),
            format,
            false,
        )
        .expect("an answer");
        assert!(!a.allowed);
        let a = answer(
            json!({"principalId": "u", "policyDocument": policy("Allow", "arn:aws:execute-api:*:*:other/*")}),
            format,
            false,
        )
        .expect("an answer");
        assert!(!a.allowed, "a policy for another API allows nothing here");
    }
}

#[test]
fn version_1_is_always_an_iam_answer() {
    let e = answer(json!({"isAuthorized": true}), PayloadFormat::V1, true);
    assert_eq!(e, Err(AnswerError::NoPolicyDocument));
}

#[test]
fn nested_context_values_are_refused_in_1_0_and_kept_as_json_in_2_0() {
    let body = json!({
        "principalId": "u",
        "policyDocument": policy("Allow", ARN),
        "context": {"arrayKey": ["v1", "v2"], "mapKey": {"k": "v"}},
    });
    let e = answer(body.clone(), PayloadFormat::V1, false).expect_err("refused");
    assert!(matches!(e, AnswerError::ContextValue(_)), "{e}");
    let a = answer(body, PayloadFormat::V2, false).expect("an answer");
    let mut ctx: Vec<(&str, &str)> = a.context.iter().map(|(k, v)| (&**k, &**v)).collect();
    ctx.sort();
    assert_eq!(
        ctx,
        [("arrayKey", r#"["v1","v2"]"#), ("mapKey", r#"{"k":"v"}"#)]
    );
}

#[test]
fn malformed_answers_say_why() {
    assert!(matches!(
        parse_answer(b"{not json", PayloadFormat::V2, true, ARN),
        Err(AnswerError::NotJson(_))
    ));
    assert_eq!(
        parse_answer(b"[true]", PayloadFormat::V2, true, ARN),
        Err(AnswerError::NotAnObject)
    );
    assert_eq!(
        answer(json!({"principalId": "u"}), PayloadFormat::V2, false),
        Err(AnswerError::NoPolicyDocument)
    );
    assert!(matches!(
        answer(
            json!({"policyDocument": {"Statement": 3}}),
            PayloadFormat::V1,
            false
        ),
        Err(AnswerError::BadPolicy(_))
    ));
    assert_eq!(
        answer(
            json!({"principalId": 7, "policyDocument": policy("Allow", ARN)}),
            PayloadFormat::V1,
            false
        ),
        Err(AnswerError::NotAString("principalId"))
    );
    assert_eq!(
        answer(
            json!({"isAuthorized": true, "context": "x"}),
            PayloadFormat::V2,
            true
        ),
        Err(AnswerError::ContextNotAnObject)
    );
}

#[test]
fn identity_source_expressions() {
    use IdentitySource::*;
    let ok = |e: &str| IdentitySource::parse(e).expect(e);
    assert_eq!(
        ok("$request.header.Authorization"),
        Header("authorization".into())
    );
    assert_eq!(
        ok("method.request.header.X-Token"),
        Header("x-token".into())
    );
    assert_eq!(ok("route.request.header.Auth"), Header("auth".into()));
    assert_eq!(ok("$request.querystring.Token"), Query("Token".into()));
    assert_eq!(
        ok("method.request.querystring.token"),
        Query("token".into())
    );
    assert_eq!(ok("$context.routeKey"), Context("routeKey".into()));
    assert_eq!(
        ok("context.identity.sourceIp"),
        Context("identity.sourceIp".into())
    );
    assert_eq!(ok("$stageVariables.tenant"), StageVariable("tenant".into()));
    assert_eq!(
        ok("stageVariables.tenant_1"),
        StageVariable("tenant_1".into())
    );
    for bad in [
        "",
        "Authorization",
        "$request.header.",
        "$request.header.Bad Name",
        "$request.body.x",
        "$stageVariables.a-b",
        "$request.querystring.a b",
        "$context.",
    ] {
        assert!(
            IdentitySource::parse(bad).is_err(),
            "{bad:?} should be refused"
        );
    }
}

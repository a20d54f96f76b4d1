use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::*;
use crate::auth::request_authorizer::{PayloadFormat, RequestFacts};
use crate::context::ClientCertInfo;

// The request of AWS's payload-format examples ("Working with AWS Lambda proxy integrations
// for HTTP APIs"), with repeated headers and a stage prefix added.
const HEADERS: &[(&str, &str)] = &[
    ("Header1", "value1"),
    ("Header2", "value1"),
    ("Cookie", "cookie1; cookie2"),
    ("header2", "value2"),
    ("Content-Type", "text/plain; charset=utf-8"),
];
const QUERY: &str = "parameter1=value1&parameter1=value2&parameter2=value";

fn facts() -> RequestFacts<'static> {
    RequestFacts {
        method: "POST",
        path: "/my/path",
        raw_query: QUERY,
        headers: HEADERS,
        path_parameters: &[("parameter1", "value1")],
        stage_variables: &[("stageVariable1", "value1"), ("stageVariable2", "value2")],
        route_key: "$default",
        stage: "$default",
        api_id: "id",
        account_id: "123456789012",
        domain_name: "id.execute-api.us-east-1.amazonaws.com",
        request_id: "id",
        source_ip: "192.0.2.1",
        user_agent: "agent",
        protocol: "HTTP/1.1",
        time_epoch_ms: 1_583_348_638_390,
        route_arn: "arn:aws:execute-api:us-east-1:123456789012:id/$default/POST/my/path",
    }
}

fn event<'a>(body: &'a [u8], authorizer: EventAuthorizer<'a>) -> ProxyEvent<'a> {
    ProxyEvent {
        facts: facts(),
        body,
        content_type: Some("text/plain; charset=utf-8"),
        authorizer,
        client_cert: None,
    }
}

fn parse(bytes: Vec<u8>) -> Value {
    serde_json::from_slice(&bytes).expect("the event is JSON")
}

const CERT: ClientCertInfo<'static> = ClientCertInfo {
    pem: "CERT_CONTENT",
    subject_dn: "www.example.com",
    issuer_dn: "Example issuer",
    serial_number: "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
    not_before: "May 28 12:30:02 2019 GMT",
    not_after: "Aug  5 09:36:04 2021 GMT",
};

type Pairs = Vec<(Box<str>, Box<str>)>;

fn jwt_parts() -> (Pairs, Vec<Box<str>>) {
    (
        vec![
            ("claim1".into(), "value1".into()),
            ("claim2".into(), "value2".into()),
        ],
        vec!["scope1".into(), "scope2".into()],
    )
}

#[test]
fn event_v2_matches_the_aws_example_field_by_field() {
    let (claims, scopes) = jwt_parts();
    let mut e = event(
        b"Hello from Lambda",
        EventAuthorizer::Jwt {
            claims: &claims,
            scopes: &scopes,
        },
    );
    e.client_cert = Some(CERT);
    let v = parse(event_v2(&e));
    assert_eq!(v["version"], "2.0");
    assert_eq!(v["routeKey"], "$default");
    assert_eq!(v["rawPath"], "/my/path");
    assert_eq!(v["rawQueryString"], QUERY);
    assert_eq!(v["cookies"], json!(["cookie1", "cookie2"]));
    assert_eq!(
        v["headers"],
        json!({
            "header1": "value1",
            "header2": "value1,value2",
            "content-type": "text/plain; charset=utf-8",
        })
    );
    assert_eq!(
        v["queryStringParameters"],
        json!({"parameter1": "value1,value2", "parameter2": "value"})
    );
    assert_eq!(v["pathParameters"], json!({"parameter1": "value1"}));
    assert_eq!(
        v["stageVariables"],
        json!({"stageVariable1": "value1", "stageVariable2": "value2"})
    );
    assert_eq!(v["body"], "Hello from Lambda");
    assert_eq!(v["isBase64Encoded"], false);
    let rc = &v["requestContext"];
    assert_eq!(rc["accountId"], "123456789012");
    assert_eq!(rc["apiId"], "id");
    assert_eq!(
        rc["authentication"],
        json!({"clientCert": {
            "clientCertPem": "CERT_CONTENT",
            "subjectDN": "www.example.com",
            "issuerDN": "Example issuer",
            "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
            "validity": {
                "notBefore": "May 28 12:30:02 2019 GMT",
                "notAfter": "Aug  5 09:36:04 2021 GMT",
            },
        }})
    );
    assert_eq!(
        rc["authorizer"],
        json!({"jwt": {
            "claims": {"claim1": "value1", "claim2": "value2"},
            "scopes": ["scope1", "scope2"],
        }})
    );
    assert_eq!(rc["domainName"], "id.execute-api.us-east-1.amazonaws.com");
    assert_eq!(rc["domainPrefix"], "id");
    assert_eq!(
        rc["http"],
        json!({
            "method": "POST",
            "path": "/my/path",
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.1",
            "userAgent": "agent",
        })
    );
    assert_eq!(rc["requestId"], "id");
    assert_eq!(rc["routeKey"], "$default");
    assert_eq!(rc["stage"], "$default");
    assert_eq!(rc["time"], "04/Mar/2020:19:03:58 +0000");
    assert_eq!(rc["timeEpoch"], 1_583_348_638_390u64);
}

#[test]
fn event_v2_leaves_out_what_the_request_does_not_have() {
    let mut e = event(b"", EventAuthorizer::None);
    e.facts.raw_query = "";
    e.facts.headers = &[("Host", "h")];
    e.facts.path_parameters = &[];
    e.facts.stage_variables = &[];
    let v = parse(event_v2(&e));
    let o = v.as_object().expect("object");
    for absent in [
        "body",
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        assert!(!o.contains_key(absent), "{absent} should be absent");
    }
    assert_eq!(v["isBase64Encoded"], false);
    assert_eq!(v["rawQueryString"], "");
    let rc = v["requestContext"].as_object().expect("object");
    assert!(!rc.contains_key("authorizer"));
    assert!(!rc.contains_key("authentication"));
}

#[test]
fn binary_bodies_go_base64() {
    let png = b"\x89PNG\r\n\x1a\n\0\0";
    let mut e = event(png, EventAuthorizer::None);
    e.content_type = Some("image/png");
    for v in [parse(event_v2(&e)), parse(event_v1(&e))] {
        assert_eq!(v["isBase64Encoded"], true);
        let body = v["body"].as_str().expect("body");
        assert_eq!(STANDARD.decode(body).expect("base64"), png);
    }
    // Not UTF-8: base64 even when the content type says text.
    e.content_type = Some("text/plain");
    assert_eq!(parse(event_v2(&e))["isBase64Encoded"], true);
    // Text under a binary content type (a form post) is base64 too.
    e.body = b"a=1&b=2";
    e.content_type = Some("application/x-www-form-urlencoded");
    let v = parse(event_v2(&e));
    assert_eq!(v["isBase64Encoded"], true);
    assert_eq!(v["body"], "YT0xJmI9Mg==");
    e.content_type = Some("Application/JSON; charset=utf-8");
    let v = parse(event_v2(&e));
    assert_eq!(v["isBase64Encoded"], false);
    assert_eq!(v["body"], "a=1&b=2");
}

#[test]
fn is_binary_rule() {
    for text in [
        "text/plain",
        "TEXT/HTML; charset=utf-8",
        "text/csv",
        "application/json",
        "application/xml",
        "application/javascript",
        " application/json ;charset=utf-8",
    ] {
        assert!(!is_binary(Some(text)), "{text}");
    }
    for binary in [
        "application/octet-stream",
        "image/png",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/problem+json",
        "",
        "text",
    ] {
        assert!(is_binary(Some(binary)), "{binary}");
    }
    assert!(is_binary(None));
}

#[test]
fn event_v2_authorizer_shapes() {
    let context: Pairs = vec![
        ("exampleKey1".into(), "exampleValue1".into()),
        ("exampleKey2".into(), "exampleValue2".into()),
    ];
    let v = parse(event_v2(&event(
        b"",
        EventAuthorizer::Lambda {
            context: &context,
            principal_id: Some("user"),
        },
    )));
    assert_eq!(
        v["requestContext"]["authorizer"],
        json!({"lambda": {"exampleKey1": "exampleValue1", "exampleKey2": "exampleValue2"}})
    );

    let v = parse(event_v2(&event(
        b"",
        EventAuthorizer::Iam {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            caller: "arn:aws:iam::123456789012:user/Admin",
        },
    )));
    assert_eq!(
        v["requestContext"]["authorizer"],
        json!({"iam": {
            "accessKey": "AKIAIOSFODNN7EXAMPLE",
            "accountId": "123456789012",
            "callerId": "arn:aws:iam::123456789012:user/Admin",
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": "arn:aws:iam::123456789012:user/Admin",
            "userId": "arn:aws:iam::123456789012:user/Admin",
        }})
    );
    let v = parse(event_v2(&event(
        b"",
        EventAuthorizer::Iam {
            access_key: "AKIA",
            caller: "ci",
        },
    )));
    assert_eq!(
        v["requestContext"]["authorizer"]["iam"]["userArn"],
        Value::Null
    );

    let claims: Pairs = vec![("sub".into(), "u1".into())];
    let v = parse(event_v2(&event(
        b"",
        EventAuthorizer::Jwt {
            claims: &claims,
            scopes: &[],
        },
    )));
    assert_eq!(
        v["requestContext"]["authorizer"],
        json!({"jwt": {"claims": {"sub": "u1"}, "scopes": null}})
    );
}

#[test]
fn event_v1_matches_the_aws_example_field_by_field() {
    let mut e = event(b"Hello from Lambda!", EventAuthorizer::None);
    e.facts.method = "GET";
    e.facts.path_parameters = &[];
    e.facts.stage_variables = &[];
    e.facts.headers = &[
        ("Header1", "value1"),
        ("Header2", "value1"),
        ("Header2", "value2"),
    ];
    e.client_cert = Some(CERT);
    let v = parse(event_v1(&e));
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["resource"], "/my/path");
    assert_eq!(v["path"], "/my/path");
    assert_eq!(v["httpMethod"], "GET");
    assert_eq!(
        v["headers"],
        json!({"Header1": "value1", "Header2": "value2"})
    );
    assert_eq!(
        v["multiValueHeaders"],
        json!({"Header1": ["value1"], "Header2": ["value1", "value2"]})
    );
    assert_eq!(
        v["queryStringParameters"],
        json!({"parameter1": "value2", "parameter2": "value"})
    );
    assert_eq!(
        v["multiValueQueryStringParameters"],
        json!({"parameter1": ["value1", "value2"], "parameter2": ["value"]})
    );
    assert_eq!(v["pathParameters"], Value::Null);
    assert_eq!(v["stageVariables"], Value::Null);
    assert_eq!(v["body"], "Hello from Lambda!");
    assert_eq!(v["isBase64Encoded"], false);
    let rc = &v["requestContext"];
    assert_eq!(rc["accountId"], "123456789012");
    assert_eq!(rc["apiId"], "id");
    assert_eq!(rc["authorizer"], json!({"claims": null, "scopes": null}));
    assert_eq!(rc["domainName"], "id.execute-api.us-east-1.amazonaws.com");
    assert_eq!(rc["domainPrefix"], "id");
    assert_eq!(rc["extendedRequestId"], "id");
    assert_eq!(rc["httpMethod"], "GET");
    assert_eq!(
        rc["identity"],
        json!({
            "accessKey": null,
            "accountId": null,
            "caller": null,
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": "192.0.2.1",
            "user": null,
            "userAgent": "agent",
            "userArn": null,
            "clientCert": {
                "clientCertPem": "CERT_CONTENT",
                "subjectDN": "www.example.com",
                "issuerDN": "Example issuer",
                "serialNumber": "a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1:a1",
                "validity": {
                    "notBefore": "May 28 12:30:02 2019 GMT",
                    "notAfter": "Aug  5 09:36:04 2021 GMT",
                },
            },
        })
    );
    assert_eq!(rc["path"], "/my/path");
    assert_eq!(rc["protocol"], "HTTP/1.1");
    assert_eq!(rc["requestId"], "id");
    assert_eq!(rc["requestTime"], "04/Mar/2020:19:03:58 +0000");
    assert_eq!(rc["requestTimeEpoch"], 1_583_348_638_390u64);
    assert_eq!(rc["resourceId"], Value::Null);
    assert_eq!(rc["resourcePath"], "/my/path");
    assert_eq!(rc["stage"], "$default");
}

#[test]
fn event_v1_empty_body_is_null_and_authorizer_shapes() {
    let context: Pairs = vec![("tenant".into(), "t1".into())];
    let v = parse(event_v1(&event(
        b"",
        EventAuthorizer::Lambda {
            context: &context,
            principal_id: Some("user|a1"),
        },
    )));
    assert_eq!(v["body"], Value::Null);
    assert_eq!(v["isBase64Encoded"], false);
    assert_eq!(
        v["requestContext"]["authorizer"],
        json!({"tenant": "t1", "principalId": "user|a1"})
    );

    let (claims, scopes) = jwt_parts();
    let v = parse(event_v1(&event(
        b"",
        EventAuthorizer::Jwt {
            claims: &claims,
            scopes: &scopes,
        },
    )));
    assert_eq!(
        v["requestContext"]["authorizer"],
        json!({"claims": {"claim1": "value1", "claim2": "value2"}, "scopes": ["scope1", "scope2"]})
    );

    let v = parse(event_v1(&event(
        b"",
        EventAuthorizer::Iam {
            access_key: "AKIA",
            caller: "arn:aws:iam::123456789012:role/ci",
        },
    )));
    let id = &v["requestContext"]["identity"];
    assert_eq!(id["accessKey"], "AKIA");
    assert_eq!(id["accountId"], "123456789012");
    assert_eq!(id["caller"], "arn:aws:iam::123456789012:role/ci");
    assert_eq!(id["user"], "arn:aws:iam::123456789012:role/ci");
    assert_eq!(id["userArn"], "arn:aws:iam::123456789012:role/ci");
    assert_eq!(
        v["requestContext"]["authorizer"],
        json!({"claims": null, "scopes": null})
    );
}

// ---- responses ----

fn v2(payload: &str) -> Result<FunctionResponse, ResponseError> {
    parse_response(payload.as_bytes(), PayloadFormat::V2)
}

fn v1(payload: &str) -> Result<FunctionResponse, ResponseError> {
    parse_response(payload.as_bytes(), PayloadFormat::V1)
}

fn json_200(body: &[u8]) -> FunctionResponse {
    FunctionResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        cookies: vec![],
        body: body.to_vec(),
    }
}

#[test]
fn v2_infers_a_200_from_json_without_status_code() {
    // AWS's two examples.
    assert_eq!(
        v2(r#""Hello from Lambda!""#),
        Ok(json_200(b"Hello from Lambda!"))
    );
    let object = r#"{ "message": "Hello from Lambda!" }"#;
    assert_eq!(v2(object), Ok(json_200(object.as_bytes())));
    for other in [
        "[1,2]",
        "42",
        "true",
        "null",
        r#"{"body":"x","headers":{}}"#,
    ] {
        assert_eq!(v2(other), Ok(json_200(other.as_bytes())), "{other}");
    }
}

#[test]
fn not_json_is_an_error() {
    for bad in ["", "Hello", "{\"statusCode\":200", "\u{0}"] {
        assert!(matches!(v2(bad), Err(ResponseError::NotJson(_))), "{bad:?}");
        assert!(matches!(v1(bad), Err(ResponseError::NotJson(_))), "{bad:?}");
    }
}

#[test]
fn v2_full_response() {
    let r = v2(r#"{
        "cookies": ["cookie1=a; Path=/", "cookie2=b"],
        "isBase64Encoded": false,
        "statusCode": 201,
        "headers": {"Content-Type": "text/plain", "X-Count": 3, "X-Flag": true, "X-Gone": null},
        "body": "Hello from Lambda!"
    }"#)
    .expect("valid");
    assert_eq!(r.status, 201);
    assert_eq!(
        r.headers,
        vec![
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-Count".to_owned(), "3".to_owned()),
            ("X-Flag".to_owned(), "true".to_owned()),
        ]
    );
    assert_eq!(r.cookies, vec!["cookie1=a; Path=/", "cookie2=b"]);
    assert_eq!(r.body, b"Hello from Lambda!");
}

#[test]
fn status_code_alone_is_an_empty_response_without_content_type() {
    let r = v2(r#"{"statusCode": 204}"#).expect("valid");
    assert_eq!(
        r,
        FunctionResponse {
            status: 204,
            headers: vec![],
            cookies: vec![],
            body: vec![],
        }
    );
}

#[test]
fn base64_bodies_are_decoded() {
    let png = b"\x89PNG\r\n\x1a\n\0\xff";
    for payload in [
        format!(
            r#"{{"statusCode":200,"isBase64Encoded":true,"body":"{}"}}"#,
            STANDARD.encode(png)
        ),
        // Unpadded base64 decodes too.
        format!(
            r#"{{"statusCode":200,"isBase64Encoded":true,"body":"{}"}}"#,
            STANDARD.encode(png).trim_end_matches('=')
        ),
    ] {
        assert_eq!(v2(&payload).expect("valid").body, png);
        assert_eq!(v1(&payload).expect("valid").body, png);
    }
    assert!(matches!(
        v2(r#"{"statusCode":200,"isBase64Encoded":true,"body":"not base64!"}"#),
        Err(ResponseError::BadBase64(_))
    ));
    assert_eq!(
        v2(r#"{"statusCode":200,"isBase64Encoded":"true","body":""}"#),
        Err(ResponseError::Base64FlagNotABool)
    );
}

#[test]
fn bad_status_codes() {
    for bad in [
        "99", "100", "199", "600", "200.5", "-1", "\"200\"", "null", "70000",
    ] {
        let payload = format!(r#"{{"statusCode":{bad}}}"#);
        assert!(
            matches!(v2(&payload), Err(ResponseError::BadStatusCode(_))),
            "{bad}"
        );
        assert!(
            matches!(v1(&payload), Err(ResponseError::BadStatusCode(_))),
            "{bad}"
        );
    }
    for good in [200, 302, 404, 599] {
        assert_eq!(
            v1(&format!(r#"{{"statusCode":{good}}}"#)).map(|r| r.status),
            Ok(good)
        );
    }
}

#[test]
fn v1_requires_an_object_with_status_code() {
    assert_eq!(v1(r#"{"body":"x"}"#), Err(ResponseError::NoStatusCode));
    for not_object in [r#""Hello""#, "[1]", "42", "null"] {
        assert_eq!(
            v1(not_object),
            Err(ResponseError::NotAnObject),
            "{not_object}"
        );
    }
}

#[test]
fn v1_merges_headers_and_multi_value_headers() {
    let r = v1(r#"{
        "statusCode": 200,
        "headers": {"X-Single": "s", "X-Both": "from-headers"},
        "multiValueHeaders": {"x-both": ["m1", "m2"], "Set-Cookie": ["a=1", "b=2"]},
        "cookies": ["ignored=1"],
        "body": "ok"
    }"#)
    .expect("valid");
    assert_eq!(
        r.headers,
        vec![
            ("X-Single".to_owned(), "s".to_owned()),
            ("Set-Cookie".to_owned(), "a=1".to_owned()),
            ("Set-Cookie".to_owned(), "b=2".to_owned()),
            ("x-both".to_owned(), "m1".to_owned()),
            ("x-both".to_owned(), "m2".to_owned()),
        ]
    );
    assert!(r.cookies.is_empty(), "1.0 has no cookies field");
    assert_eq!(r.body, b"ok");
    // 2.0 reads multiValueHeaders the same way.
    let r = v2(r#"{"statusCode":200,"multiValueHeaders":{"X-M":["1",2]}}"#).expect("valid");
    assert_eq!(
        r.headers,
        vec![
            ("X-M".to_owned(), "1".to_owned()),
            ("X-M".to_owned(), "2".to_owned())
        ]
    );
}

#[test]
fn header_injection_is_refused() {
    let cases = [
        (r#"{"X-A": "v\r\nSet-Cookie: evil=1"}"#, "X-A"),
        (r#"{"X-A": "v\nx"}"#, "X-A"),
        (r#"{"X-A": "v\r"}"#, "X-A"),
        (r#"{"X-A": "v\u0000"}"#, "X-A"),
        (r#"{"X-A": "v\u007f"}"#, "X-A"),
    ];
    for (headers, name) in cases {
        for field in ["headers", "multiValueHeaders"] {
            let headers = if field == "headers" {
                headers.to_owned()
            } else {
                headers.replace(": \"", ": [\"").replace("\"}", "\"]}")
            };
            let payload = format!(r#"{{"statusCode":200,"{field}":{headers}}}"#);
            assert_eq!(
                v2(&payload),
                Err(ResponseError::BadHeaderValue(name.into())),
                "{payload}"
            );
        }
    }
    for name in ["X-A\r\nEvil", "X A", "X:A", "", "X-\u{e9}", "X-A\n"] {
        let payload = json!({"statusCode": 200, "headers": {name: "v"}}).to_string();
        assert_eq!(
            v1(&payload),
            Err(ResponseError::BadHeaderName(name.into())),
            "{name:?}"
        );
    }
    assert_eq!(
        v2(r#"{"statusCode":200,"cookies":["a=1\r\nX-Evil: 1"]}"#),
        Err(ResponseError::BadCookie)
    );
    // Tabs and non-ASCII text are allowed in values.
    let r = v2(r#"{"statusCode":200,"headers":{"X-A":"a\tb \u00e9"}}"#).expect("valid");
    assert_eq!(
        r.headers,
        vec![("X-A".to_owned(), "a\tb \u{e9}".to_owned())]
    );
}

#[test]
fn framing_and_hop_by_hop_headers_are_dropped() {
    let r = v2(r#"{"statusCode":200,"headers":{
        "Content-Length": "999", "Transfer-Encoding": "chunked", "Connection": "close",
        "Keep-Alive": "timeout=5", "Upgrade": "h2c", "TE": "trailers", "Trailer": "x",
        "Proxy-Authenticate": "Basic", "X-Kept": "yes"
    },"body":"hi"}"#)
    .expect("valid");
    assert_eq!(r.headers, vec![("X-Kept".to_owned(), "yes".to_owned())]);
    assert_eq!(r.body, b"hi");
}

#[test]
fn wrong_types_are_errors() {
    let cases: [(&str, ResponseError); 7] = [
        (
            r#"{"statusCode":200,"headers":"x"}"#,
            ResponseError::NotAnObjectField("headers"),
        ),
        (
            r#"{"statusCode":200,"multiValueHeaders":[]}"#,
            ResponseError::NotAnObjectField("multiValueHeaders"),
        ),
        (
            r#"{"statusCode":200,"headers":{"X":{"a":1}}}"#,
            ResponseError::HeaderValueType {
                field: "headers",
                name: "X".into(),
            },
        ),
        (
            r#"{"statusCode":200,"multiValueHeaders":{"X":"a"}}"#,
            ResponseError::HeaderValueType {
                field: "multiValueHeaders",
                name: "X".into(),
            },
        ),
        (
            r#"{"statusCode":200,"cookies":"a=1"}"#,
            ResponseError::CookiesNotStrings,
        ),
        (
            r#"{"statusCode":200,"cookies":[1]}"#,
            ResponseError::CookiesNotStrings,
        ),
        (
            r#"{"statusCode":200,"body":{"a":1}}"#,
            ResponseError::BodyNotAString,
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(v2(payload), Err(want), "{payload}");
    }
}

use super::suite_tests::{ParsedRequest, find, parse_request};
use super::*;

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const EXECUTE_API: SigV4Scope = SigV4Scope {
    region: "us-east-1",
    service: "execute-api",
};
/// 20150830T123600Z, the suite's signing time.
const SUITE_NOW: u64 = 1_440_938_160;

fn epoch(iso: &str) -> u64 {
    AmzDate::parse_iso_basic(iso.as_bytes())
        .expect("date")
        .epoch_s
}

fn suite(case: &str, file: &str) -> ParsedRequest {
    let path = format!(
        "{}/src/auth/sigv4/testdata/{case}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    parse_request(&std::fs::read_to_string(path).expect("suite file"))
}

const SUITE_SCOPE: SigV4Scope = SigV4Scope {
    region: "us-east-1",
    service: "service",
};

fn check(req: &ParsedRequest, scope: &SigV4Scope, now: u64) -> Result<String, SigV4Error> {
    req.verify(scope, KEY_ID, SECRET, now)
}

/// Requests botocore 1.44.8 signed (`SigV4Auth` / `SigV4QueryAuth`, expires 3600, service
/// execute-api, region us-east-1, AKIDEXAMPLE), as they go on the wire: urllib3 sends the
/// URL's path as given. Signed at 20261130T030032Z by `botocore_sign.py`; its presigned POST
/// is left out (botocore moves a presigned body into the query).
const BOTOCORE_NOW: &str = "20261130T030032Z";
const BOTOCORE: &[&str] = &[
    // URL /prod/pets/a%20b: botocore encodes the path once more (%2520), as API Gateway does.
    "GET /prod/pets/a%20b HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\nX-Amz-Date:20261130T030032Z\nAuthorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=c79c391e3620360901bbd2172af3ab5eb71f8f94eaf65c0b3caf48de8fd7e424\n\n",
    "GET /prod/pets/a%20b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20261130T030032Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=7c0e65450a30dbc7015e6c8b5969da5436ae1bf148b5b8b2818cf64565df6ae4 HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\n\n",
    "GET /prod/pets/%7Euser HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\nX-Amz-Date:20261130T030032Z\nAuthorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=be9603b7e51c7956adf28c1dd08a78d66c3429d2bb77e1827d9a066613929dbd\n\n",
    "GET /prod/pets/%7Euser?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20261130T030032Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=5e1d552f140d897025daf1134189b9904ec137dc744d633bf91e3dd20d51848d HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\n\n",
    "GET /prod/pets?type=dog&page=2&q=a%20b HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\nX-Amz-Date:20261130T030032Z\nAuthorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=1e0c65bff279043e4675f7a16898a5da828b03ada1020ed0a124faeb1a99b65b\n\n",
    "GET /prod/pets?type=dog&page=2&q=a%20b&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20261130T030032Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=60cb07eac1cd2b71137d614fae02dd832a3968ce8e0d0cf1a03eea2987554ce9 HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\n\n",
    "POST /prod/pets HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\nContent-Type:application/json\nX-Amz-Date:20261130T030032Z\nAuthorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=e754d1b8d22ce3612366b327b109bc87a6bfa59d7cfdd916cdfd3cc23c398e90\nContent-Length:29\n\n{\"type\":\"dog\",\"price\":249.99}",
];

/// botocore given the URL `/prod/pets/a b` signs `/prod/pets/a%20b` (it encodes the raw
/// path once) while urllib3 sends `a%20b`, which a double-encoding verifier (API Gateway,
/// turnpike) canonicalizes as `a%2520b`: such requests only verify if the space reaches us raw.
const BOTOCORE_RAW_SPACE: &str = "GET /prod/pets/a b HTTP/1.1\nHost:abc123.execute-api.us-east-1.amazonaws.com\nX-Amz-Date:20261130T030032Z\nAuthorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=588a7738d0405ce49388d961617c6d54cd0902164c3fb218ff32998f5a9b3935\n\n";

#[test]
fn botocore_signed_requests_verify() {
    for text in BOTOCORE {
        let req = parse_request(text);
        assert_eq!(
            check(&req, &EXECUTE_API, epoch(BOTOCORE_NOW)).as_deref(),
            Ok(KEY_ID),
            "{text}"
        );
    }
}

#[test]
fn botocore_raw_space_only_verifies_unencoded() {
    let raw = parse_request(BOTOCORE_RAW_SPACE);
    assert!(check(&raw, &EXECUTE_API, epoch(BOTOCORE_NOW)).is_ok());
    let mut on_wire = parse_request(BOTOCORE_RAW_SPACE);
    on_wire.path = b"/prod/pets/a%20b".to_vec();
    assert_eq!(
        check(&on_wire, &EXECUTE_API, epoch(BOTOCORE_NOW)),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn canonical_uri_encodes_the_received_path_again() {
    let uri = |p: &[u8]| {
        let mut out = Vec::new();
        canonical::canonical_uri(&mut out, p);
        String::from_utf8(out).expect("ascii")
    };
    assert_eq!(uri(b"/prod/pets/%7Euser"), "/prod/pets/%257Euser");
    assert_eq!(uri(b"/prod/pets/a%20b"), "/prod/pets/a%2520b");
    assert_eq!(
        uri(b"/test/@connections/x%3D"),
        "/test/%40connections/x%253D"
    );
    assert_eq!(uri(b"//a/./b/../c//"), "/a/c/");
    assert_eq!(uri(b""), "/");
    assert_eq!(uri(b"/.."), "/");
}

#[test]
fn body_tampered_after_signing_is_a_mismatch() {
    let mut req = parse_request(BOTOCORE[6]);
    req.body = b"{\"type\":\"cat\",\"price\":249.99}".to_vec();
    assert_eq!(
        check(&req, &EXECUTE_API, epoch(BOTOCORE_NOW)),
        Err(SigV4Error::SignatureMismatch)
    );
    // With x-amz-content-sha256 signed, the header no longer matches the body.
    let mut req = suite("post-x-www-form-urlencoded", "header-signed-request.txt");
    req.body = b"Param1=value2".to_vec();
    assert_eq!(
        check(&req, &SUITE_SCOPE, SUITE_NOW),
        Err(SigV4Error::SignatureMismatch)
    );
}

#[test]
fn signing_time_must_be_within_five_minutes() {
    let req = suite("get-vanilla", "header-signed-request.txt");
    assert!(check(&req, &SUITE_SCOPE, SUITE_NOW + 300).is_ok());
    assert!(check(&req, &SUITE_SCOPE, SUITE_NOW - 300).is_ok());
    let expired = check(&req, &SUITE_SCOPE, SUITE_NOW + 301).unwrap_err();
    assert_eq!(
        expired.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T124101Z - 5 min.)"
    );
    let future = check(&req, &SUITE_SCOPE, SUITE_NOW - 301).unwrap_err();
    assert_eq!(
        future,
        SigV4Error::SignatureNotYetCurrent {
            signed_at: SUITE_NOW,
            now: SUITE_NOW - 301
        }
    );
    assert_eq!(future.status(), 403);
}

#[test]
fn presigned_url_is_valid_until_it_expires() {
    let req = suite("get-vanilla", "query-signed-request.txt");
    assert!(check(&req, &SUITE_SCOPE, SUITE_NOW + 3600).is_ok());
    let err = check(&req, &SUITE_SCOPE, SUITE_NOW + 3601).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::SignatureExpired {
            signed_at: SUITE_NOW,
            now: SUITE_NOW + 3601,
            allowed_s: 3600
        }
    );
    assert!(err.message().ends_with("- 60 min.)"), "{}", err.message());
    let mut long = suite("get-vanilla", "query-signed-request.txt");
    let at = find(&long.query, b"X-Amz-Expires=3600").expect("expires");
    long.query
        .splice(at..at + 18, b"X-Amz-Expires=604801".iter().copied());
    assert_eq!(
        check(&long, &SUITE_SCOPE, SUITE_NOW),
        Err(SigV4Error::InvalidExpires)
    );
}

#[test]
fn unknown_key_id_is_an_invalid_token() {
    let req = suite("get-vanilla", "header-signed-request.txt");
    let err = req.verify(&SUITE_SCOPE, "AKIDOTHER", SECRET, SUITE_NOW);
    assert_eq!(err, Err(SigV4Error::InvalidToken));
    assert_eq!(
        SigV4Error::InvalidToken.message(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn scope_must_name_the_gateways_region_service_and_date() {
    let req = suite("get-vanilla", "header-signed-request.txt");
    let west = SigV4Scope {
        region: "us-west-2",
        service: "service",
    };
    let err = check(&req, &west, SUITE_NOW).unwrap_err();
    assert_eq!(err, SigV4Error::WrongRegion);
    assert_eq!(
        err.message(),
        "Credential should be scoped to a valid region. "
    );
    let err = check(&req, &EXECUTE_API, SUITE_NOW).unwrap_err();
    assert_eq!(
        err.message(),
        "Credential should be scoped to correct service: 'execute-api'. "
    );

    let mut next_day = suite("get-vanilla", "header-signed-request.txt");
    for (n, v) in &mut next_day.headers {
        if n.eq_ignore_ascii_case(b"x-amz-date") {
            *v = b"20150831T000100Z".to_vec();
        }
    }
    let err = check(&next_day, &SUITE_SCOPE, epoch("20150831T000100Z")).unwrap_err();
    assert_eq!(
        err.message(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20150830' != '20150831', from '20150831T000100Z'."
    );
}

#[test]
fn host_must_be_signed() {
    let mut req = suite("get-vanilla", "header-signed-request.txt");
    for (n, v) in &mut req.headers {
        if n.eq_ignore_ascii_case(b"authorization") {
            let text = String::from_utf8(v.clone()).expect("ascii");
            *v = text
                .replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date")
                .into_bytes();
        }
    }
    assert_eq!(
        check(&req, &SUITE_SCOPE, SUITE_NOW),
        Err(SigV4Error::HostNotSigned)
    );
}

#[test]
fn missing_and_incomplete_authorization() {
    let host: &[(&[u8], &[u8])] = &[(b"Host", b"example.amazonaws.com")];
    let req = |headers| SigV4Request {
        method: b"GET",
        path: b"/",
        query: b"",
        headers,
        payload: Payload::Body(b""),
    };
    let none = req(host);
    assert!(!is_signed(&none));
    let err = verify(&none, &EXECUTE_API, |_| Some(SECRET), SUITE_NOW).unwrap_err();
    assert_eq!(err.message(), "Missing Authentication Token");

    let bearer: &[(&[u8], &[u8])] = &[(b"authorization", b"Bearer eyJ0eXAi")];
    let err = verify(&req(bearer), &EXECUTE_API, |_| Some(SECRET), SUITE_NOW).unwrap_err();
    assert_eq!(
        err.message(),
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    );

    let no_sig: &[(&[u8], &[u8])] = &[
        (b"X-Amz-Date", b"20150830T123600Z"),
        (
            b"Authorization",
            b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date",
        ),
    ];
    assert!(is_signed(&req(no_sig)));
    assert_eq!(
        verify(&req(no_sig), &EXECUTE_API, |_| Some(SECRET), SUITE_NOW),
        Err(SigV4Error::IncompleteSignature {
            missing: MissingParts::SIGNATURE
        })
    );
}

/// Signs `req` the way a client would, reusing this module's canonical request (which the
/// suite checks), to exercise the payload rules.
fn sign_with_payload_hash(req: &mut ParsedRequest, payload_hash: &str) {
    let date = AmzDate::from_epoch(SUITE_NOW);
    req.headers
        .push((b"X-Amz-Date".to_vec(), date.iso.to_vec()));
    req.headers.push((
        b"x-amz-content-sha256".to_vec(),
        payload_hash.as_bytes().to_vec(),
    ));
    let headers: Vec<(&[u8], &[u8])> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let signed: &[&[u8]] = &[b"host", b"x-amz-content-sha256", b"x-amz-date"];
    let mut creq = Vec::new();
    creq.extend_from_slice(&req.method);
    creq.push(b'\n');
    canonical::canonical_uri(&mut creq, &req.path);
    creq.extend_from_slice(b"\n\n");
    canonical::canonical_headers(&mut creq, signed, &headers).expect("headers");
    creq.extend_from_slice(b"\nhost;x-amz-content-sha256;x-amz-date\n");
    creq.extend_from_slice(payload_hash.as_bytes());
    let scope = CredentialScope {
        date: date.day(),
        region: b"us-east-1",
        service: b"execute-api",
        terminator: b"aws4_request",
    };
    let key = signing_key(SECRET, date.day(), b"us-east-1", b"execute-api");
    let sig = signature(&key, &date, scope, &creq);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"
    );
    req.headers
        .push((b"Authorization".to_vec(), auth.into_bytes()));
}

fn verify_unavailable(req: &ParsedRequest) -> Result<VerifiedCaller<'_>, SigV4Error> {
    let headers: Vec<(&[u8], &[u8])> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let r = SigV4Request {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &headers,
        payload: Payload::Unavailable,
    };
    verify(&r, &EXECUTE_API, |_| Some(SECRET), SUITE_NOW).map(|c| VerifiedCaller {
        access_key_id: "AKIDEXAMPLE",
        unchecked_payload_sha256: c.unchecked_payload_sha256.map(|_| "given"),
    })
}

#[test]
fn unsigned_payload_header_skips_the_body() {
    let mut req = parse_request("PUT /prod/upload HTTP/1.1\nHost:h.example\n\nanything");
    sign_with_payload_hash(&mut req, "UNSIGNED-PAYLOAD");
    assert!(check(&req, &EXECUTE_API, SUITE_NOW).is_ok());
    req.body = b"something else".to_vec();
    assert!(check(&req, &EXECUTE_API, SUITE_NOW).is_ok());
    assert_eq!(
        verify_unavailable(&req).map(|c| c.unchecked_payload_sha256),
        Ok(None)
    );
}

#[test]
fn unavailable_body_needs_a_content_sha256_header() {
    let text = "POST /prod/pets HTTP/1.1\nHost:h.example\n\n{}";
    let hash = canonical::hex_lower(digest::digest(&digest::SHA256, b"{}").as_ref());
    let mut req = parse_request(text);
    sign_with_payload_hash(&mut req, &hash);
    assert!(check(&req, &EXECUTE_API, SUITE_NOW).is_ok());
    assert_eq!(
        verify_unavailable(&req).map(|c| c.unchecked_payload_sha256),
        Ok(Some("given"))
    );

    let botocore = parse_request(BOTOCORE[6]);
    let headers: Vec<(&[u8], &[u8])> = botocore
        .headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let r = SigV4Request {
        method: &botocore.method,
        path: &botocore.path,
        query: &botocore.query,
        headers: &headers,
        payload: Payload::Unavailable,
    };
    let err = verify(&r, &EXECUTE_API, |_| Some(SECRET), epoch(BOTOCORE_NOW)).unwrap_err();
    assert_eq!(err, SigV4Error::PayloadUnavailable);
    assert_eq!(err.status(), 411);
}

#[test]
fn date_header_stands_in_for_x_amz_date() {
    assert_eq!(
        AmzDate::parse_http_date(b"Sun, 30 Aug 2015 12:36:00 GMT"),
        AmzDate::parse_iso_basic(b"20150830T123600Z")
    );
    assert_eq!(AmzDate::parse_iso_basic(b"20150230T123600Z"), None);
    assert_eq!(AmzDate::parse_iso_basic(b"20150830T123660Z"), None);
}

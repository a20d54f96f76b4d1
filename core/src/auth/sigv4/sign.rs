//! Signing the gateway's own calls with SigV4 (header-signed, AWS "Create a signed AWS API
//! request"): Lambda's Invoke API for remote functions. The canonical request is built by the
//! same code that verifies clients' signatures, so both sides agree by construction; the
//! signer is checked against the AWS signing test suite's `Authorization` headers.

use ring::digest;

use super::{
    ALGORITHM, CredentialScope, SigV4Scope, amz_date::AmzDate, canonical, signature, signing_key,
};

/// Who signs: an access key and its secret, and the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SigningKey {
    pub access_key_id: String,
    pub secret_access_key: Box<[u8]>,
    /// `X-Amz-Security-Token`, signed like any other header.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// The headers a signed request adds to its own (`host` and the rest already in it), in
/// order: `X-Amz-Date`, `X-Amz-Security-Token` (temporary credentials only), `Authorization`.
pub type SignedHeaders = Vec<(&'static str, String)>;

/// A request to sign, as it will go on the wire.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    pub method: &'a [u8],
    /// The request-target's path, percent-encoded once (as any HTTP client sends it).
    pub path: &'a [u8],
    /// The raw query string without '?', possibly empty.
    pub query: &'a [u8],
    /// The request's own headers, `Host` included: every one of them is signed.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub body: &'a [u8],
}

/// Signs `req` for `scope` (region and service) at `now_epoch_s`; returns the headers to
/// add.
pub fn sign(
    key: &SigningKey,
    scope: &SigV4Scope<'_>,
    req: &ToSign<'_>,
    now_epoch_s: u64,
) -> SignedHeaders {
    let date = AmzDate::from_epoch(now_epoch_s);
    let iso = String::from_utf8_lossy(&date.iso).into_owned();
    let mut all: Vec<(&[u8], &[u8])> = req.headers.to_vec();
    all.push((b"x-amz-date", &date.iso));
    if let Some(token) = &key.session_token {
        all.push((b"x-amz-security-token", token.as_bytes()));
    }
    let authorization = authorization(
        key,
        scope,
        &ToSign {
            headers: &all,
            ..*req
        },
        &date,
    );
    let mut out: SignedHeaders = Vec::with_capacity(3);
    out.push(("X-Amz-Date", iso));
    if let Some(token) = &key.session_token {
        out.push(("X-Amz-Security-Token", token.clone()));
    }
    out.push(("Authorization", authorization));
    out
}

/// The `Authorization` value for a request whose headers (all signed) already include
/// `X-Amz-Date` for `date`.
fn authorization(
    key: &SigningKey,
    scope: &SigV4Scope<'_>,
    req: &ToSign<'_>,
    date: &AmzDate,
) -> String {
    let mut names: Vec<Vec<u8>> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let signed: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    let signed_list = signed.join(&b';');

    let mut creq = Vec::with_capacity(256);
    creq.extend_from_slice(req.method);
    creq.push(b'\n');
    canonical::canonical_uri(&mut creq, req.path);
    creq.push(b'\n');
    canonical::canonical_query(&mut creq, req.query, |_| false);
    creq.push(b'\n');
    // Every name comes from the request's headers, so none is missing.
    let _ = canonical::canonical_headers(&mut creq, &signed, req.headers);
    creq.push(b'\n');
    creq.extend_from_slice(&signed_list);
    creq.push(b'\n');
    let payload = digest::digest(&digest::SHA256, req.body);
    creq.extend_from_slice(canonical::hex_lower(payload.as_ref()).as_bytes());

    let (region, service) = (scope.region, scope.service);
    let cred = CredentialScope {
        date: date.day(),
        region: region.as_bytes(),
        service: service.as_bytes(),
        terminator: b"aws4_request",
    };
    let signing = signing_key(&key.secret_access_key, cred.date, cred.region, cred.service);
    let sig = signature(&signing, date, cred, &creq);
    format!(
        "{} Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={sig}",
        String::from_utf8_lossy(ALGORITHM),
        key.access_key_id,
        String::from_utf8_lossy(date.day()),
        String::from_utf8_lossy(&signed_list),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{
        Payload, SigV4Request, suite_tests::parse_request, suite_tests::suite_case, verify,
    };
    use super::*;

    /// Each suite case's header-signed request, its `Authorization` taken off and signed
    /// again with the case's credentials and time, gets the suite's `Authorization` back.
    #[test]
    fn signs_as_the_aws_signing_test_suite() {
        let mut checked = 0;
        for (case, ctx, text) in suite_case("header-signed-request.txt") {
            let req = parse_request(&text);
            let expected = req
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(b"authorization"))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .expect("authorization");
            // Only the cases that sign every header they carry can be re-signed blind.
            let listed = expected
                .split("SignedHeaders=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or_default()
                .to_owned();
            let headers: Vec<(&[u8], &[u8])> = req
                .headers
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(b"authorization"))
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .collect();
            let mut names: Vec<String> = headers
                .iter()
                .map(|(n, _)| String::from_utf8_lossy(n).to_ascii_lowercase())
                .collect();
            names.sort();
            names.dedup();
            if names.join(";") != listed {
                continue;
            }
            let key = SigningKey {
                access_key_id: ctx.key_id.clone(),
                secret_access_key: ctx.secret.as_bytes().into(),
                session_token: None,
            };
            let date = AmzDate::from_epoch(ctx.now);
            let scope = SigV4Scope {
                region: &ctx.region,
                service: &ctx.service,
            };
            let to_sign = ToSign {
                method: &req.method,
                path: &req.path,
                query: &req.query,
                headers: &headers,
                body: &req.body,
            };
            let got = authorization(&key, &scope, &to_sign, &date);
            assert_eq!(got, expected, "{case}");
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} suite cases signed");
    }

    /// What `sign` produces verifies, session token and all; a changed body does not.
    #[test]
    fn signed_requests_verify() {
        let key = SigningKey {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: (*b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").into(),
            session_token: Some("FQoGZXIvYXdzEXAMPLE".into()),
        };
        let now = 1_700_000_000;
        let path = b"/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-function/invocations";
        let body = br#"{"version":"2.0"}"#;
        let own: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"lambda.us-east-1.amazonaws.com"),
            (b"Content-Type", b"application/json"),
        ];
        let scope = SigV4Scope {
            region: "us-east-1",
            service: "lambda",
        };
        let to_sign = ToSign {
            method: b"POST",
            path,
            query: b"",
            headers: &own,
            body,
        };
        let added = sign(&key, &scope, &to_sign, now);
        assert_eq!(added[0].0, "X-Amz-Date");
        assert_eq!(
            added[1],
            ("X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLE".into())
        );
        assert!(
            added[2]
                .1
                .contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,")
        );
        let mut headers = own.clone();
        headers.extend(added.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let check = |body: &[u8]| {
            let req = SigV4Request {
                method: b"POST",
                path,
                query: b"",
                headers: &headers,
                payload: Payload::Body(body),
            };
            verify(&req, &scope, |_| Some(&key.secret_access_key[..]), now)
                .map(|c| c.access_key_id.to_owned())
        };
        assert_eq!(check(body).as_deref(), Ok("AKIDEXAMPLE"));
        assert!(check(b"{}").is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let key = SigningKey {
            access_key_id: "AKID".into(),
            secret_access_key: (*b"very-secret").into(),
            session_token: Some("token-secret".into()),
        };
        let shown = format!("{key:?}");
        assert!(shown.contains("AKID") && !shown.contains("secret\"") && !shown.contains("very"));
        assert!(!shown.contains("token-secret"));
    }
}

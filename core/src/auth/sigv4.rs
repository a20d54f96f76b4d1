//! AWS Signature Version 4 verification for `AWS_IAM` routes (service `execute-api`), sans I/O.
//!
//! Sources: AWS "Signature Version 4 signing process" and "Create a canonical request for
//! Signature Version 4" (header-signed requests), "Authenticating Requests: Using Query
//! Parameters" (presigned URLs). Checked against the AWS signing test suite (copied under
//! `sigv4/testdata/`) and against requests botocore's `SigV4Auth` signs for `execute-api`.
//!
//! The caller hands over the request as received plus `now`; this module never reads a
//! clock, never looks a key up by itself (`secret_for` does) and never logs secrets.
//!
//! - `canonical`: the canonical request (URI, query, headers) and byte helpers.
//! - `amz_date`: `X-Amz-Date` / `Date` parsing.
//! - `error`: [`SigV4Error`] and API Gateway's 403 messages.
//! - `sign`: [`sign`], the other direction: the gateway's own calls (remote functions).
//!
//! Session tokens (`X-Amz-Security-Token`) are signed like any other header or parameter and
//! not validated: the gateway knows long-term keys only.

mod amz_date;
mod canonical;
mod error;
mod sign;

use std::borrow::Cow;

use ring::{digest, hmac};
use subtle::ConstantTimeEq;

use amz_date::AmzDate;
pub use error::{MissingParts, SigV4Error};
pub use sign::{SignedHeaders, SigningKey, ToSign, sign};

const ALGORITHM: &[u8] = b"AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &[u8] = b"UNSIGNED-PAYLOAD";
/// How far the signing time may be from `now` either way (header-signed requests, and the
/// future side of presigned ones).
const CLOCK_SKEW_S: u64 = 300;
/// The longest `X-Amz-Expires` AWS allows: 7 days.
const MAX_EXPIRES_S: u64 = 604_800;

/// A request as received, borrowed from the connection's buffers.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a [u8],
    /// The request-target's path exactly as received (still percent-encoded as the client
    /// sent it), without the query.
    pub path: &'a [u8],
    /// The raw query string without '?', possibly empty.
    pub query: &'a [u8],
    /// Headers as received: names in any case, repeated names possible.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub payload: Payload<'a>,
}

/// What the verifier may know of the body.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The whole body.
    Body(&'a [u8]),
    /// The body was not buffered (chunked, too large): only `x-amz-content-sha256:
    /// UNSIGNED-PAYLOAD` or the hash that header gives can go into the canonical request.
    Unavailable,
}

/// A secret access key, as the caller's key store hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Credential<'a> {
    pub secret_access_key: &'a [u8],
}

/// The scope every credential must name: the gateway's region and `execute-api`.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Who signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedCaller<'a> {
    /// Borrowed from the request (`Authorization` header or `X-Amz-Credential`).
    pub access_key_id: &'a str,
    /// With [`Payload::Unavailable`] and an `x-amz-content-sha256` hash: the signature
    /// covers that hash, which the caller must compare with the body it streams (lower-case
    /// hex). `None` when the body was checked here or is `UNSIGNED-PAYLOAD`.
    pub unchecked_payload_sha256: Option<&'a str>,
}

/// Whether the request carries a SigV4 signature at all: an `Authorization:
/// AWS4-HMAC-SHA256 ...` header or an `X-Amz-Algorithm` query parameter.
pub fn is_signed(req: &SigV4Request) -> bool {
    header(req.headers, b"authorization").is_some_and(is_aws4_authorization)
        || query_param(req.query, b"X-Amz-Algorithm").is_some()
}

/// Verifies a header-signed or presigned request signed for `scope` at most 5 minutes from
/// `now_epoch_s` (presigned: until `X-Amz-Date + X-Amz-Expires`). `secret_for` maps the
/// access key id to its secret; it is called once, after the cheap checks, and `None` means
/// an unknown key.
pub fn verify<'a, 'k>(
    req: &SigV4Request<'a>,
    scope: &SigV4Scope<'_>,
    secret_for: impl FnOnce(&str) -> Option<&'k [u8]>,
    now_epoch_s: u64,
) -> Result<VerifiedCaller<'a>, SigV4Error> {
    let auth = match header(req.headers, b"authorization") {
        Some(v) if is_aws4_authorization(v) => from_authorization_header(v, req.headers)?,
        _ if query_param(req.query, b"X-Amz-Algorithm").is_some() => from_query(req.query)?,
        Some(_) => {
            return Err(SigV4Error::IncompleteSignature {
                missing: MissingParts::ALL,
            });
        }
        None => return Err(SigV4Error::MissingAuthenticationToken),
    };

    let signed_headers: Vec<&[u8]> = auth.signed_headers.split(|&b| b == b';').collect();
    if !signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case(b"host"))
    {
        return Err(SigV4Error::HostNotSigned);
    }
    let cred = auth.scope;
    if cred.terminator != b"aws4_request" {
        return Err(SigV4Error::WrongTerminator);
    }
    if cred.service != scope.service.as_bytes() {
        return Err(SigV4Error::WrongService {
            expected: if scope.service == "execute-api" {
                "execute-api"
            } else {
                "the gateway's service"
            },
        });
    }
    if cred.region != scope.region.as_bytes() {
        return Err(SigV4Error::WrongRegion);
    }
    if cred.date != auth.date.day() {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: ascii_u32(cred.date),
            request_date: ascii_u32(auth.date.day()),
            signed_at: auth.date.epoch_s,
        });
    }
    check_time(auth.date.epoch_s, auth.expires_s, now_epoch_s)?;

    let secret = secret_for(auth.access_key_id).ok_or(SigV4Error::InvalidToken)?;
    let (payload_hashes, unchecked) = payload_hashes(req, auth.presigned)?;

    // Everything of the canonical request but the payload hash, which may have two
    // candidates for a presigned URL (the body's hash, as botocore and the test suite sign,
    // or UNSIGNED-PAYLOAD, as S3-style presigners do).
    let mut creq = Vec::with_capacity(256);
    creq.extend_from_slice(req.method);
    creq.push(b'\n');
    canonical::canonical_uri(&mut creq, req.path);
    creq.push(b'\n');
    canonical::canonical_query(&mut creq, req.query, |name| {
        auth.presigned && name == b"X-Amz-Signature"
    });
    creq.push(b'\n');
    canonical::canonical_headers(&mut creq, &signed_headers, req.headers)
        .map_err(|_| SigV4Error::SignatureMismatch)?;
    creq.push(b'\n');
    creq.extend_from_slice(&auth.signed_headers);
    creq.push(b'\n');

    let key = signing_key(secret, cred.date, cred.region, cred.service);
    for hash in &payload_hashes {
        let mut full = creq.clone();
        full.extend_from_slice(hash);
        let expected = signature(&key, &auth.date, cred, &full);
        if bool::from(expected.as_bytes().ct_eq(&auth.signature)) {
            return Ok(VerifiedCaller {
                access_key_id: auth.access_key_id,
                unchecked_payload_sha256: unchecked,
            });
        }
    }
    Err(SigV4Error::SignatureMismatch)
}

/// The credential scope `date/region/service/aws4_request`, after the access key id.
#[derive(Debug, Clone, Copy)]
struct CredentialScope<'c> {
    date: &'c [u8],
    region: &'c [u8],
    service: &'c [u8],
    terminator: &'c [u8],
}

/// What the `Authorization` header or the `X-Amz-*` parameters say.
struct SignedAuth<'a> {
    access_key_id: &'a str,
    scope: CredentialScope<'a>,
    signed_headers: Cow<'a, [u8]>,
    signature: Cow<'a, [u8]>,
    date: AmzDate,
    /// `X-Amz-Expires` of a presigned URL.
    expires_s: Option<u64>,
    presigned: bool,
}

fn is_aws4_authorization(v: &[u8]) -> bool {
    v.strip_prefix(ALGORITHM)
        .is_some_and(|rest| rest.first().is_some_and(|&b| b == b' '))
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/execute-api/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
fn from_authorization_header<'a>(
    value: &'a [u8],
    headers: &'a [(&'a [u8], &'a [u8])],
) -> Result<SignedAuth<'a>, SigV4Error> {
    let params = &value[ALGORITHM.len()..];
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in params.split(|&b| b == b',') {
        let part = part.trim_ascii();
        let Some(eq) = part.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (k, v) = (&part[..eq], &part[eq + 1..]);
        match k {
            b"Credential" => credential = Some(v),
            b"SignedHeaders" => signed_headers = Some(v),
            b"Signature" => signature = Some(v),
            _ => {}
        }
    }
    let date = match header(headers, b"x-amz-date") {
        Some(d) => Some(AmzDate::parse_iso_basic(d.trim_ascii())),
        None => header(headers, b"date").map(|d| AmzDate::parse_http_date(d.trim_ascii())),
    };
    let mut missing = MissingParts::default();
    for (absent, part) in [
        (credential.is_none(), MissingParts::CREDENTIAL),
        (signature.is_none(), MissingParts::SIGNATURE),
        (signed_headers.is_none(), MissingParts::SIGNED_HEADERS),
        (date.is_none(), MissingParts::DATE),
    ] {
        if absent {
            missing.insert(part);
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date)) =
        (credential, signed_headers, signature, date)
    else {
        return Err(SigV4Error::IncompleteSignature { missing });
    };
    let (access_key_id, scope) = split_credential(credential)?;
    Ok(SignedAuth {
        access_key_id,
        scope,
        signed_headers: Cow::Borrowed(signed_headers),
        signature: Cow::Borrowed(signature),
        date: date.ok_or(SigV4Error::InvalidDate)?,
        expires_s: None,
        presigned: false,
    })
}

/// `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders`, `X-Amz-Signature` of a presigned URL.
fn from_query(query: &[u8]) -> Result<SignedAuth<'_>, SigV4Error> {
    let get = |name: &[u8]| query_param(query, name).ok_or(SigV4Error::IncompletePresignedQuery);
    let algorithm = get(b"X-Amz-Algorithm")?;
    let credential = get(b"X-Amz-Credential")?;
    let date = get(b"X-Amz-Date")?;
    let expires = get(b"X-Amz-Expires")?;
    let signed_headers = get(b"X-Amz-SignedHeaders")?;
    let signature = get(b"X-Amz-Signature")?;
    if canonical::percent_decode(algorithm) != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm);
    }
    // Presigners encode the credential's slashes as %2F; split_credential takes both.
    let (access_key_id, scope) = split_credential(credential)?;
    let date = AmzDate::parse_iso_basic(&canonical::percent_decode(date))
        .ok_or(SigV4Error::InvalidDate)?;
    let expires_s = std::str::from_utf8(expires)
        .ok()
        .and_then(|e| e.parse::<u64>().ok())
        .filter(|&e| e <= MAX_EXPIRES_S)
        .ok_or(SigV4Error::InvalidExpires)?;
    Ok(SignedAuth {
        access_key_id,
        scope,
        signed_headers: decoded(signed_headers),
        signature: decoded(signature),
        date,
        expires_s: Some(expires_s),
        presigned: true,
    })
}

/// `AKID/20150830/us-east-1/execute-api/aws4_request`, with '/' as such or as `%2F` (a
/// presigned URL's encoding). Every part is borrowed; a part needing other decoding is not
/// a valid key id, date, region or service anyway.
fn split_credential(v: &[u8]) -> Result<(&str, CredentialScope<'_>), SigV4Error> {
    let mut parts: [&[u8]; 5] = [b""; 5];
    let mut n = 0;
    let mut start = 0;
    let mut i = 0;
    while i <= v.len() {
        let sep = if i == v.len() || v[i] == b'/' {
            1
        } else if v[i] == b'%'
            && v.get(i + 1) == Some(&b'2')
            && matches!(v.get(i + 2), Some(b'F' | b'f'))
        {
            3
        } else {
            i += 1;
            continue;
        };
        if n == 5 {
            return Err(SigV4Error::MalformedCredential);
        }
        parts[n] = &v[start..i];
        n += 1;
        i += sep;
        start = i;
    }
    if n != 5 || parts[0].is_empty() {
        return Err(SigV4Error::MalformedCredential);
    }
    let key_id = std::str::from_utf8(parts[0]).map_err(|_| SigV4Error::InvalidToken)?;
    let scope = CredentialScope {
        date: parts[1],
        region: parts[2],
        service: parts[3],
        terminator: parts[4],
    };
    Ok((key_id, scope))
}

fn check_time(signed_at: u64, expires_s: Option<u64>, now: u64) -> Result<(), SigV4Error> {
    if signed_at > now.saturating_add(CLOCK_SKEW_S) {
        return Err(SigV4Error::SignatureNotYetCurrent { signed_at, now });
    }
    let allowed_s = expires_s.unwrap_or(CLOCK_SKEW_S);
    if now > signed_at.saturating_add(allowed_s) {
        return Err(SigV4Error::SignatureExpired {
            signed_at,
            now,
            allowed_s,
        });
    }
    Ok(())
}

/// The payload hashes the signature may cover, and the hash the caller still has to check
/// against the streamed body.
type PayloadHashes<'a> = (Vec<Cow<'a, [u8]>>, Option<&'a str>);

fn payload_hashes<'a>(
    req: &SigV4Request<'a>,
    presigned: bool,
) -> Result<PayloadHashes<'a>, SigV4Error> {
    let body_hash = match req.payload {
        Payload::Body(b) => Some(canonical::hex_lower(
            digest::digest(&digest::SHA256, b).as_ref(),
        )),
        Payload::Unavailable => None,
    };
    if let Some(given) = header(req.headers, b"x-amz-content-sha256") {
        let given = given.trim_ascii();
        if given == UNSIGNED_PAYLOAD {
            return Ok((vec![Cow::Borrowed(given)], None));
        }
        return match body_hash {
            Some(h) if h.as_bytes() == given => Ok((vec![Cow::Borrowed(given)], None)),
            Some(_) => Err(SigV4Error::SignatureMismatch),
            None if given.len() == 64 && given.iter().all(|b| b.is_ascii_hexdigit()) => {
                let s = std::str::from_utf8(given).map_err(|_| SigV4Error::SignatureMismatch)?;
                Ok((vec![Cow::Borrowed(given)], Some(s)))
            }
            None => Err(SigV4Error::SignatureMismatch),
        };
    }
    match (body_hash, presigned) {
        (Some(h), false) => Ok((vec![Cow::Owned(h.into_bytes())], None)),
        (Some(h), true) => Ok((
            vec![Cow::Owned(h.into_bytes()), Cow::Borrowed(UNSIGNED_PAYLOAD)],
            None,
        )),
        (None, true) => Ok((vec![Cow::Borrowed(UNSIGNED_PAYLOAD)], None)),
        (None, false) => Err(SigV4Error::PayloadUnavailable),
    }
}

fn hmac_sign(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn signing_key(secret: &[u8], date: &[u8], region: &[u8], service: &[u8]) -> hmac::Key {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret);
    let k_date = hmac_sign(&k_secret, date);
    let k_region = hmac_sign(k_date.as_ref(), region);
    let k_service = hmac_sign(k_region.as_ref(), service);
    let k_signing = hmac_sign(k_service.as_ref(), b"aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

/// Lower-case hex HMAC of the string to sign:
/// `AWS4-HMAC-SHA256\n<iso date>\n<date>/<region>/<service>/aws4_request\n<hex sha256(creq)>`.
fn signature(key: &hmac::Key, date: &AmzDate, scope: CredentialScope, creq: &[u8]) -> String {
    let mut sts = Vec::with_capacity(160);
    sts.extend_from_slice(ALGORITHM);
    sts.push(b'\n');
    sts.extend_from_slice(&date.iso);
    sts.push(b'\n');
    for part in [scope.date, scope.region, scope.service] {
        sts.extend_from_slice(part);
        sts.push(b'/');
    }
    sts.extend_from_slice(b"aws4_request\n");
    let creq_hash = digest::digest(&digest::SHA256, creq);
    sts.extend_from_slice(canonical::hex_lower(creq_hash.as_ref()).as_bytes());
    canonical::hex_lower(hmac::sign(key, &sts).as_ref())
}

/// The first header named `name` (lower-case), any case on the wire.
fn header<'a>(headers: &[(&'a [u8], &'a [u8])], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

/// The raw value of the first query parameter whose decoded name is `name` (exact case).
fn query_param<'a>(query: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (n, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (n == name || (n.contains(&b'%') && canonical::percent_decode(n) == name)).then_some(v)
    })
}

fn decoded(v: &[u8]) -> Cow<'_, [u8]> {
    if v.contains(&b'%') {
        Cow::Owned(canonical::percent_decode(v))
    } else {
        Cow::Borrowed(v)
    }
}

/// `YYYYMMDD` as a number for messages (0 when not eight digits).
fn ascii_u32(v: &[u8]) -> u32 {
    if v.len() != 8 {
        return 0;
    }
    v.iter()
        .try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod suite_tests;
#[cfg(test)]
mod tests;

//! JWS compact tokens (RFC 7515 section 7.1) verified as an AWS HTTP API JWT authorizer does:
//! the signature against a key of the issuer's JWKS ([`JwkSet`], in `jwk.rs`), then `iss`,
//! `aud` / `client_id`, `exp`, `nbf` and `iat` (RFC 7519 section 4.1), then the scopes a route
//! may require.
//!
//! Hot path: [`verify`] runs for every request on a JWT route whose token is not cached. It
//! decodes the token's three parts once into one buffer, checks the signature before reading
//! the payload, and allocates only that buffer, the payload's JSON tree (needed to hand back
//! every claim) and the rendered claims; the key material was decoded when the set was
//! parsed. No logging, no clock (the caller passes `now_s`), no key fetching:
//! [`JwtError::is_unknown_kid`] tells the caller when a fresh JWKS might help.
//!
//! Header members other than `alg`, `kid` and `crit` are ignored; in particular `jku`, `x5u`
//! and `jwk` never choose a key (only the configured JWKS does), and `typ` is not checked.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::borrow::Cow;

pub use super::jwk::{Algorithm, JwkSet, JwksError};
use super::jwk::{Jwk, KeyMaterial};

/// Longest token [`verify`] reads, in bytes: 16 KiB. AWS caps a whole header at 10 KiB; this
/// bounds the decoding and JSON work an unauthenticated caller can ask for.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was refused. Each variant's message is short and fit for a log line; none
/// repeats token content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a JWS compact serialization this module reads: not three base64url parts, JSON that
    /// does not parse or is not an object, no `alg`, a `crit` header, over [`MAX_TOKEN_BYTES`].
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not one of [`Algorithm`]'s (e.g. `none`, `HS256`, `ES512`).
    #[error("unsupported signature algorithm")]
    UnsupportedAlgorithm,
    /// No key of the set has the token's `kid` (or, without a `kid`, no key fits its `alg`).
    #[error("no key in the JWKS for the token's kid")]
    UnknownKid,
    /// The `kid`'s key is of another type or curve than `alg` needs, or its own `alg` differs.
    #[error("the token's alg does not fit its key")]
    AlgorithmKeyMismatch,
    #[error("signature does not verify")]
    BadSignature,
    #[error("iss is not the authorizer's issuer")]
    WrongIssuer,
    /// Neither `aud` nor (without `aud`) `client_id` is one of the authorizer's audiences.
    #[error("aud/client_id is not one of the authorizer's audiences")]
    WrongAudience,
    /// `exp` <= now.
    #[error("token expired")]
    Expired,
    /// `nbf` > now.
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    /// `iat` > now.
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    /// A registered claim is missing where required or has the wrong JSON type.
    #[error("bad claim: {0}")]
    ClaimType(&'static str),
}

impl JwtError {
    /// The token names a key the set does not have: the issuer may have rotated its keys, so
    /// the caller may refetch the JWKS (rate-limited) and verify again.
    pub fn is_unknown_kid(&self) -> bool {
        matches!(self, JwtError::UnknownKid)
    }
}

/// What an authorizer requires of a token besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRules {
    /// Compared exactly with the `iss` claim (no trailing-slash folding).
    pub issuer: String,
    /// The token's `aud` (or `client_id`) must be one of these. Empty: every token is refused.
    pub audience: Vec<String>,
}

/// A token whose signature and claims passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// `exp`, in seconds since the Unix epoch (fraction dropped); always present on a verified
    /// token, an `Option` for callers that build one otherwise.
    pub exp: Option<u64>,
    /// Every top-level claim, sorted by name, with its value rendered as AWS renders
    /// `$context.authorizer.claims.<name>`: strings as they are, numbers, booleans, null and
    /// objects as JSON text, arrays as `[a b c]` (elements space-separated, strings bare).
    pub claims: Box<[(Box<str>, Box<str>)]>,
    /// The token's scopes: `scope` split on spaces (RFC 8693 section 4.2), or, without
    /// `scope`, `scp` as an array of strings or a space-separated string.
    pub scopes: Box<[Box<str>]>,
}

impl VerifiedJwt {
    /// AWS's route check: the token carries at least one of the route's authorization scopes.
    /// A route without scopes lets any verified token in.
    pub fn has_scopes(&self, required: &[Box<str>]) -> bool {
        required.is_empty() || required.iter().any(|r| self.scopes.contains(r))
    }

    /// The rendered value of a top-level claim.
    pub fn claim(&self, name: &str) -> Option<&str> {
        let i = self
            .claims
            .binary_search_by(|(n, _)| (**n).cmp(name))
            .ok()?;
        Some(&self.claims[i].1)
    }
}

/// The token in an `Authorization` value: the value itself, or what follows a
/// case-insensitive `Bearer ` prefix, spaces trimmed. `None` when nothing is left (a bare
/// `Bearer` included).
pub fn token_from_header(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let token = match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii_start(),
        _ if value.eq_ignore_ascii_case(b"bearer") => return None,
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

/// The JOSE header members read (RFC 7515 section 4.1). A duplicate one is refused by serde.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    crit: Option<IgnoredAny>,
}

/// Verifies a JWS compact token (`header.payload.signature`, RFC 7515 section 7.1) with
/// `keys` and checks its claims against `rules` at `now_s` (seconds since the Unix epoch), with
/// no leeway. The steps, in order: size and shape; header (`alg`, `kid`; `crit` refused since
/// no extension is understood, RFC 7515 section 4.1.11); key choice (by `kid`; without one,
/// every key that fits `alg` is tried); signature; then, from the payload, `iss`, `aud` or
/// `client_id`, `exp` (required), `nbf`, `iat`, and the scopes.
pub fn verify(
    token: &[u8],
    keys: &JwkSet,
    rules: &JwtRules,
    now_s: u64,
) -> Result<VerifiedJwt, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed("over 16 KiB"));
    }
    let mut dots = memchr::memchr_iter(b'.', token);
    let (Some(d1), Some(d2), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(JwtError::Malformed("not three dot-separated parts"));
    };
    let (header_b64, payload_b64, sig_b64) = (&token[..d1], &token[d1 + 1..d2], &token[d2 + 1..]);
    let signed = &token[..d2];

    // One buffer for the three decoded parts.
    let mut buf = Vec::with_capacity(token.len() / 4 * 3 + 3);
    let parts = [header_b64, payload_b64, sig_b64].map(|part| {
        let start = buf.len();
        URL_SAFE_NO_PAD
            .decode_vec(part, &mut buf)
            .map(|()| start..buf.len())
            .map_err(|_| JwtError::Malformed("bad base64url"))
    });
    let [header, payload, sig] = parts;
    let (header, payload, sig) = (&buf[header?], &buf[payload?], &buf[sig?]);

    if header.trim_ascii_start().first() != Some(&b'{') {
        return Err(JwtError::Malformed("header is not a JSON object"));
    }
    let header: Header<'_> =
        serde_json::from_slice(header).map_err(|_| JwtError::Malformed("bad header JSON"))?;
    if header.crit.is_some() {
        return Err(JwtError::Malformed(
            "crit header: no extension is understood",
        ));
    }
    let alg = header.alg.ok_or(JwtError::Malformed("no alg"))?;
    let alg = Algorithm::from_name(&alg).ok_or(JwtError::UnsupportedAlgorithm)?;

    check_signature(keys.keys(), header.kid.as_deref(), alg, signed, sig)?;

    let claims: Map<String, Value> = serde_json::from_slice(payload)
        .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?;
    check_claims(&claims, rules, now_s)
}

/// Picks the keys the token may be signed with and checks the signature with each until one
/// verifies. With a `kid`, that is the keys with that `kid` (normally one); without, every key
/// that fits `alg`, so the work is bounded by the set's size.
fn check_signature(
    keys: &[Jwk],
    kid: Option<&str>,
    alg: Algorithm,
    signed: &[u8],
    sig: &[u8],
) -> Result<(), JwtError> {
    let fits = |k: &&Jwk| k.material.fits(alg) && k.alg.is_none_or(|a| a == alg);
    let mut tried = false;
    match kid {
        Some(kid) => {
            let mut named = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return Err(JwtError::UnknownKid);
            }
            for key in named.filter(fits) {
                tried = true;
                if verify_with(&key.material, alg, signed, sig) {
                    return Ok(());
                }
            }
            if !tried {
                return Err(JwtError::AlgorithmKeyMismatch);
            }
        }
        None => {
            for key in keys.iter().filter(fits) {
                tried = true;
                if verify_with(&key.material, alg, signed, sig) {
                    return Ok(());
                }
            }
            if !tried {
                return Err(JwtError::UnknownKid);
            }
        }
    }
    Err(JwtError::BadSignature)
}

/// One signature check with ring; `key` fits `alg` (see [`KeyMaterial::fits`]).
fn verify_with(key: &KeyMaterial, alg: Algorithm, signed: &[u8], sig: &[u8]) -> bool {
    use Algorithm::*;
    let params: &'static signature::RsaParameters = match (key, alg) {
        (KeyMaterial::P256(point), Es256) => {
            return UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, sig)
                .is_ok();
        }
        (KeyMaterial::P384(point), Es384) => {
            return UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(signed, sig)
                .is_ok();
        }
        (KeyMaterial::Ed25519(x), EdDsa) => {
            return UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(signed, sig)
                .is_ok();
        }
        (KeyMaterial::Rsa { .. }, Rs256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyMaterial::Rsa { .. }, Rs384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyMaterial::Rsa { .. }, Rs512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyMaterial::Rsa { .. }, Ps256) => &signature::RSA_PSS_2048_8192_SHA256,
        (KeyMaterial::Rsa { .. }, Ps384) => &signature::RSA_PSS_2048_8192_SHA384,
        (KeyMaterial::Rsa { .. }, Ps512) => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return false,
    };
    let KeyMaterial::Rsa { n, e } = key else {
        return false;
    };
    RsaPublicKeyComponents { n, e }
        .verify(params, signed, sig)
        .is_ok()
}

/// The claim checks of an AWS JWT authorizer, after the signature verified.
fn check_claims(
    claims: &Map<String, Value>,
    rules: &JwtRules,
    now_s: u64,
) -> Result<VerifiedJwt, JwtError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => {}
        Some(Value::String(_)) | None => return Err(JwtError::WrongIssuer),
        Some(_) => return Err(JwtError::ClaimType("iss is not a string")),
    }
    check_audience(claims, &rules.audience)?;

    let now = now_s as f64;
    let exp = numeric_date(claims, "exp")?.ok_or(JwtError::ClaimType("exp is missing"))?;
    if exp <= now {
        return Err(JwtError::Expired);
    }
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now) {
        return Err(JwtError::NotYetValid);
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > now) {
        return Err(JwtError::IssuedInFuture);
    }

    let scopes = scopes(claims)?;
    let claims = claims
        .iter()
        .map(|(name, value)| (name.as_str().into(), render(value)))
        .collect();
    Ok(VerifiedJwt {
        // Saturating cast: exp > now >= 0 here, and the fraction is dropped.
        exp: Some(exp as u64),
        claims,
        scopes,
    })
}

/// `aud` (a string or an array of strings, RFC 7519 section 4.1.3) must hold one of the
/// audiences; without `aud`, `client_id` (Cognito access tokens) must be one. AWS reads
/// `client_id` only when `aud` is absent.
fn check_audience(claims: &Map<String, Value>, audience: &[String]) -> Result<(), JwtError> {
    let known = |s: &str| audience.iter().any(|a| a == s);
    let ok = match (claims.get("aud"), claims.get("client_id")) {
        (Some(Value::String(aud)), _) => known(aud),
        (Some(Value::Array(auds)), _) => {
            let mut ok = false;
            for aud in auds {
                let aud = aud
                    .as_str()
                    .ok_or(JwtError::ClaimType("aud holds a non-string"))?;
                ok |= known(aud);
            }
            ok
        }
        (Some(_), _) => return Err(JwtError::ClaimType("aud is not a string or array")),
        (None, Some(Value::String(client_id))) => known(client_id),
        (None, Some(_)) => return Err(JwtError::ClaimType("client_id is not a string")),
        (None, None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(JwtError::WrongAudience)
    }
}

/// A NumericDate claim (RFC 7519 section 2: seconds since the epoch, possibly fractional).
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(JwtError::ClaimType(match name {
            "exp" => "exp is not a number",
            "nbf" => "nbf is not a number",
            _ => "iat is not a number",
        })),
    }
}

fn scopes(claims: &Map<String, Value>) -> Result<Box<[Box<str>]>, JwtError> {
    let split = |s: &str| {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(Into::into)
            .collect()
    };
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => Ok(split(s)),
        (Some(_), _) => Err(JwtError::ClaimType("scope is not a string")),
        (None, Some(Value::String(s))) => Ok(split(s)),
        (None, Some(Value::Array(items))) => items
            .iter()
            .map(|v| v.as_str().map(Into::into))
            .collect::<Option<_>>()
            .ok_or(JwtError::ClaimType("scp holds a non-string")),
        (None, Some(_)) => Err(JwtError::ClaimType("scp is not a string or array")),
        (None, None) => Ok(Box::default()),
    }
}

/// A claim's value as `$context.authorizer.claims.<name>` shows it (see [`VerifiedJwt::claims`]).
fn render(value: &Value) -> Box<str> {
    match value {
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut out = String::from("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                match item {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
            }
            out.push(']');
            out.into()
        }
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests;

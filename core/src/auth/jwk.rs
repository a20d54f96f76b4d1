//! JSON Web Key Sets (RFC 7517) reduced to the public keys a JWT authorizer can verify with.
//!
//! [`JwkSet::parse`] reads the document an issuer serves at its `jwks_uri` and keeps, per key,
//! what verification needs already decoded (RSA modulus and exponent, EC point, Ed25519 key), so
//! [`super::jwt::verify`] decodes nothing from the set per request. Keys this module cannot use
//! (other key types or curves, encryption keys, bad parameters) are skipped, not fatal: issuers
//! publish such keys beside their signing keys, and one odd key must not lock every caller out.
//! Fetching and caching the document is the proxy crate's job.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::Value;

/// base64url (RFC 4648 section 5) for JWK members. RFC 7517 asks for no padding; a padded
/// value from an issuer's own document is still unambiguous, so both are read.
const JWK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a JWKS document was refused as a whole (a single unusable key is skipped instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS is not valid JSON: {0}")]
    Json(String),
    #[error("JWKS is not a JSON object with a \"keys\" array (RFC 7517 section 5)")]
    NoKeys,
}

/// JWS signature algorithms this module verifies (RFC 7518 section 3.1, RFC 8037 section 3.1).
/// Everything else, `none` and the HMAC `HS*` family included, is refused: an authorizer holds
/// public keys only, and a public key used as an HMAC secret is the classic JWT forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Algorithm {
    /// The algorithm named by a JWS `alg` header or a JWK `alg` member, if supported.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Some(match name {
            "RS256" => Algorithm::Rs256,
            "RS384" => Algorithm::Rs384,
            "RS512" => Algorithm::Rs512,
            "PS256" => Algorithm::Ps256,
            "PS384" => Algorithm::Ps384,
            "PS512" => Algorithm::Ps512,
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "EdDSA" => Algorithm::EdDsa,
            _ => return None,
        })
    }
}

/// Key material, decoded once at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial {
    /// `kty: RSA` (RFC 7518 section 6.3.1): big-endian modulus and exponent, leading zeros
    /// removed; the modulus is 2048 to 8192 bits, as ring verifies.
    Rsa { n: Box<[u8]>, e: Box<[u8]> },
    /// `kty: EC`, `crv: P-256` (RFC 7518 section 6.2.1): the uncompressed point 0x04||x||y,
    /// 65 bytes.
    P256(Box<[u8]>),
    /// `kty: EC`, `crv: P-384`: 0x04||x||y, 97 bytes.
    P384(Box<[u8]>),
    /// `kty: OKP`, `crv: Ed25519` (RFC 8037 section 2): the 32-byte public key.
    Ed25519([u8; 32]),
}

impl KeyMaterial {
    /// Whether a token signed with `alg` can be checked with this key (RFC 7518 section 3).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyMaterial::Rsa { .. } => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            KeyMaterial::P256(_) => alg == Es256,
            KeyMaterial::P384(_) => alg == Es384,
            KeyMaterial::Ed25519(_) => alg == EdDsa,
        }
    }
}

/// One usable verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jwk {
    pub(crate) kid: Option<Box<str>>,
    /// The key's own `alg` member (RFC 7517 section 4.4): when present, the only algorithm
    /// the key may be used with.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) material: KeyMaterial,
}

/// The verification keys of a JWKS document (RFC 7517 section 5), in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Box<[Jwk]>,
}

/// The members of a JWK this module reads; any of them with the wrong JSON type makes the
/// key unusable (skipped).
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl JwkSet {
    /// Reads a JWKS document (RFC 7517 section 5): a JSON object whose `keys` member is an
    /// array of JWKs. Fails only when the document is not such an object; each key that is
    /// not a public signature key of a supported type (`RSA`; `EC` on P-256 or P-384; `OKP`
    /// on Ed25519), has `use` other than `sig`, `key_ops` without `verify`, an `alg` this
    /// module does not verify or that does not fit its type, or malformed parameters, is
    /// skipped. An empty result is not an error: every token will then be `UnknownKid`.
    pub fn parse(json: &[u8]) -> Result<JwkSet, JwksError> {
        let doc: Value =
            serde_json::from_slice(json).map_err(|e| JwksError::Json(e.to_string()))?;
        let Some(Value::Array(raw)) = doc.as_object().and_then(|o| o.get("keys")) else {
            return Err(JwksError::NoKeys);
        };
        let keys = raw
            .iter()
            .filter_map(|k| RawJwk::deserialize(k).ok())
            .filter_map(|k| k.usable())
            .collect();
        Ok(JwkSet { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a usable key has this `kid` (lets a caller skip a refetch for a known kid).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub(crate) fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}

impl RawJwk {
    fn usable(self) -> Option<Jwk> {
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        if self
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return None;
        }
        let alg = match &self.alg {
            Some(name) => Some(Algorithm::from_name(name)?),
            None => None,
        };
        let material = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => rsa(self.n.as_deref()?, self.e.as_deref()?)?,
            ("EC", Some("P-256")) => KeyMaterial::P256(ec_point(&self.x?, &self.y?, 32)?),
            ("EC", Some("P-384")) => KeyMaterial::P384(ec_point(&self.x?, &self.y?, 48)?),
            ("OKP", Some("Ed25519")) => {
                KeyMaterial::Ed25519(JWK_BASE64.decode(self.x?).ok()?.try_into().ok()?)
            }
            _ => return None,
        };
        if alg.is_some_and(|a| !material.fits(a)) {
            return None;
        }
        Some(Jwk {
            kid: self.kid.map(Into::into),
            alg,
            material,
        })
    }
}

/// RSA parameters ring accepts for verification: a 2048-8192 bit modulus and an odd exponent
/// of at least 3 that fits in 33 bits (ring's `RSA_PKCS1_2048_8192_*` / `RSA_PSS_2048_8192_*`).
fn rsa(n: &str, e: &str) -> Option<KeyMaterial> {
    let n = strip_zeros(JWK_BASE64.decode(n).ok()?);
    let e = strip_zeros(JWK_BASE64.decode(e).ok()?);
    let n_bits = n.len() * 8 - n.first()?.leading_zeros() as usize;
    if !(2048..=8192).contains(&n_bits) || e.len() > 5 {
        return None;
    }
    let e_value = e.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
    if e_value < 3 || e_value % 2 == 0 || e_value >= 1 << 33 {
        return None;
    }
    Some(KeyMaterial::Rsa {
        n: n.into(),
        e: e.into(),
    })
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

/// 0x04||x||y with x and y exactly `len` bytes (RFC 7518 section 6.2.1.2: the full size of a
/// coordinate, even with leading zeros). Whether the point is on the curve is ring's check,
/// at verification.
fn ec_point(x: &str, y: &str, len: usize) -> Option<Box<[u8]>> {
    let (x, y) = (JWK_BASE64.decode(x).ok()?, JWK_BASE64.decode(y).ok()?);
    if x.len() != len || y.len() != len {
        return None;
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some(point.into())
}

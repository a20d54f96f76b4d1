//! JWS compact tokens and JWKS documents (`turnpike_core::auth::jwt`): the input is read as a
//! token (bare and as an `Authorization` value) verified against fixed key sets, and as a JWKS
//! document. Besides "no panic": a token that verifies holds what `verify` promises (issuer,
//! unexpired, claims sorted and reachable by name), and `token_from_header` returns a trimmed,
//! non-empty piece of its input.
//!
//! The fixed sets are the PyJWT vectors of core's tests (RS256, ES256, EdDSA), so seeds built
//! from those tokens reach the signature check and, unmodified, the claim checks.

use std::sync::OnceLock;

use turnpike_core::auth::jwt::{JwkSet, JwtRules, token_from_header, verify};

/// The PyJWT vectors' `iat` plus a little; their exp is 2100-01-01.
const NOW_S: u64 = 1_700_000_100;
const ISSUER: &str = "https://issuer.example.com";

fn fixture() -> &'static (Vec<JwkSet>, JwtRules) {
    static FIXTURE: OnceLock<(Vec<JwkSet>, JwtRules)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let sets = [
            include_str!("../../core/src/auth/jwt/testdata/rs256.jwks.json"),
            include_str!("../../core/src/auth/jwt/testdata/es256.jwks.json"),
            include_str!("../../core/src/auth/jwt/testdata/eddsa.jwks.json"),
        ]
        .map(|doc| JwkSet::parse(doc.as_bytes()).expect("fixture JWKS"));
        let rules = JwtRules {
            issuer: ISSUER.into(),
            audience: vec!["turnpike-tests".into()],
        };
        (sets.into(), rules)
    })
}

pub fn check(data: &[u8]) {
    let (sets, rules) = fixture();
    let header_token = token_from_header(data);
    if let Some(token) = header_token {
        assert!(!token.is_empty());
        assert!(!token.starts_with(b" ") && !token.ends_with(b" "));
        let start = token.as_ptr() as usize - data.as_ptr() as usize;
        assert!(
            start + token.len() <= data.len(),
            "token outside the header value"
        );
    }
    for keys in sets {
        for token in [Some(data), header_token].into_iter().flatten() {
            if let Ok(jwt) = verify(token, keys, rules, NOW_S) {
                assert!(jwt.exp.is_some_and(|exp| exp > NOW_S));
                assert_eq!(jwt.claim("iss"), Some(ISSUER));
                assert!(jwt.claims.windows(2).all(|w| w[0].0 < w[1].0));
                for (name, value) in &jwt.claims {
                    assert_eq!(jwt.claim(name), Some(&**value));
                }
            }
        }
    }
    if let Ok(set) = JwkSet::parse(data) {
        // The point is that the two agree, so compare them as written.
        #[allow(clippy::len_zero)]
        let agree = set.is_empty() == (set.len() == 0);
        assert!(agree);
    }
}

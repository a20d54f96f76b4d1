//! JWT authorizer verification (`turnpike_core::auth::jwt::verify`) without a cache: what a
//! request on a JWT route pays when its token has not been seen yet. One bench per key type,
//! with the tokens PyJWT minted for core's tests (`core/src/auth/jwt/testdata/`): RS256 with a
//! 2048-bit key, ES256 (P-256) and EdDSA (Ed25519). Each verify decodes the token, checks the
//! signature with ring, parses the claims and renders them as `$context.authorizer.claims`.
//!
//! The allocation count printed first is per verify: the decoded-parts buffer, the claims map
//! serde builds, and the rendered claims handed back.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::auth::jwt::{JwkSet, JwtRules, verify};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The PyJWT vectors' `iat` plus a little: every token verifies (exp is 2100-01-01).
const NOW_S: u64 = 1_700_000_100;

const VECTORS: [(&str, &str, &str); 3] = [
    (
        "RS256_2048",
        include_str!("../../core/src/auth/jwt/testdata/rs256.jwt"),
        include_str!("../../core/src/auth/jwt/testdata/rs256.jwks.json"),
    ),
    (
        "ES256",
        include_str!("../../core/src/auth/jwt/testdata/es256.jwt"),
        include_str!("../../core/src/auth/jwt/testdata/es256.jwks.json"),
    ),
    (
        "EdDSA",
        include_str!("../../core/src/auth/jwt/testdata/eddsa.jwt"),
        include_str!("../../core/src/auth/jwt/testdata/eddsa.jwks.json"),
    ),
];

fn jwt(c: &mut Criterion) {
    let rules = JwtRules {
        issuer: "https://issuer.example.com".into(),
        audience: vec!["turnpike-tests".into()],
    };
    let mut g = c.benchmark_group("jwt/verify");
    for (name, token, jwks) in VECTORS {
        let keys = JwkSet::parse(jwks.as_bytes()).expect("jwks");
        let token = token.trim().as_bytes();
        // A token that fails would time an error path.
        verify(token, &keys, &rules, NOW_S).expect("the bench token verifies");
        print_allocations(&format!("jwt/verify/{name}"), || {
            verify(black_box(token), &keys, &rules, NOW_S).is_ok()
        });
        g.bench_function(name, |b| {
            b.iter(|| verify(black_box(token), black_box(&keys), &rules, NOW_S).is_ok())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = jwt
}
criterion_main!(benches);

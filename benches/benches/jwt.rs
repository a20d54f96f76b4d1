//! JWT authorizer verification (`turnpike_core::auth::jwt::verify`) without a cache: what a
//! request on a JWT route pays when its token has not been seen yet; and the per-core cache
//! (`turnpike_proxy::auth::cache::AuthCache::jwt`) that every later request with that token
//! pays instead. One bench per key type,
//! with the tokens PyJWT minted for core's tests (`core/src/auth/jwt/testdata/`): RS256 with a
//! 2048-bit key, ES256 (P-256) and EdDSA (Ed25519). Each verify decodes the token, checks the
//! signature with ring, parses the claims and renders them as `$context.authorizer.claims`.
//!
//! The allocation count printed first is per verify: the decoded-parts buffer, the claims map
//! serde builds, and the rendered claims handed back.
//!
//! `jwt/cache/hit` looks up one cached token; `jwt/cache/1000_tokens` goes round-robin over
//! 1,000 cached tokens, so the map's buckets do not all sit in L1. The 1,000 are the RS256
//! vector with a distinct suffix each, all kept with the one verified result: the cache finds
//! a token by its last bytes and compares it whole, never verifying again, so they need not
//! verify.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use turnpike_benches::{CountingAlloc, print_allocations};
use turnpike_core::auth::jwt::{JwkSet, JwtRules, verify};
use turnpike_proxy::auth::cache::AuthCache;

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

/// An authorizer uid and key set version, as a compiled JWT route would carry them.
const UID: u64 = 0x5eed;
const KEYS_VERSION: u64 = 1;
const WORKING_SET: usize = 1_000;

fn jwt_cache(c: &mut Criterion) {
    let (_, token, jwks) = VECTORS[0];
    let keys = JwkSet::parse(jwks.as_bytes()).expect("jwks");
    let token = token.trim().as_bytes();
    let rules = JwtRules {
        issuer: "https://issuer.example.com".into(),
        audience: vec!["turnpike-tests".into()],
    };
    let verified = verify(token, &keys, &rules, NOW_S).expect("the bench token verifies");
    let cache = AuthCache::new();
    cache.keep_jwt(UID, token, KEYS_VERSION, verified.clone(), NOW_S);
    // A miss would time the hash alone.
    assert!(cache.jwt(UID, token, KEYS_VERSION, NOW_S).is_some());

    let tokens: Vec<Vec<u8>> = (0..WORKING_SET)
        .map(|i| [token, format!(".{i:04}").as_bytes()].concat())
        .collect();
    for t in &tokens {
        cache.keep_jwt(UID, t, KEYS_VERSION, verified.clone(), NOW_S);
    }
    assert!(
        tokens
            .iter()
            .all(|t| cache.jwt(UID, t, KEYS_VERSION, NOW_S).is_some())
    );

    print_allocations("jwt/cache/hit", || {
        cache
            .jwt(UID, black_box(token), KEYS_VERSION, NOW_S)
            .is_some()
    });
    let mut g = c.benchmark_group("jwt/cache");
    g.bench_function("hit", |b| {
        b.iter(|| {
            cache
                .jwt(UID, black_box(token), KEYS_VERSION, NOW_S)
                .is_some()
        })
    });
    let mut i = 0;
    g.bench_function("1000_tokens", |b| {
        b.iter(|| {
            i = (i + 1) % WORKING_SET;
            cache
                .jwt(UID, black_box(&tokens[i]), KEYS_VERSION, NOW_S)
                .is_some()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = turnpike_benches::criterion();
    targets = jwt, jwt_cache
}
criterion_main!(benches);

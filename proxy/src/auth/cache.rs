//! Per-core caches of authorization results: verified JWTs (until their `exp`) and request
//! authorizer answers (for the authorizer's `result_ttl`). Each core keeps its own, so a
//! lookup takes no lock and touches no shared cache line; a token or identity first seen on
//! another core is verified (or the authorizer called) once more there.
//!
//! Verified tokens are found by a cheap hash of the authorizer's uid and the token's last
//! bytes (its signature, which the client cannot steer without the issuer's key), and the
//! entry keeps the whole token, compared on every hit: a different token never matches, and
//! a 600-byte token costs a 16-byte hash and one `memcmp` instead of hashing all of it.
//! Authorizer answers are keyed by a 128-bit SipHash of the uid and the identity values under
//! a key drawn per process (the values are not kept). An authorizer's uid changes when its
//! settings do, so a reload keeps the entries of unchanged authorizers and strands those of
//! changed ones (evicted as any other). Each cache holds at most [`MAX_ENTRIES`]; a full cache
//! first drops what expired, then everything.

use std::{cell::RefCell, hash::Hasher, rc::Rc};

use rustc_hash::FxHashMap;
use siphasher::sip128::{Hasher128, SipHasher13};
use turnpike_core::auth::{jwt::VerifiedJwt, request_authorizer::AuthorizerAnswer};

/// Most entries per cache per core.
pub const MAX_ENTRIES: usize = 16_384;

struct CachedJwt {
    uid: u64,
    token: Box<[u8]>,
    verified: Rc<VerifiedJwt>,
    /// Seconds since the epoch after which the token is expired.
    exp_s: u64,
    /// The key set's version it was verified with.
    keys_version: u64,
}

struct CachedAnswer {
    answer: Rc<AuthorizerAnswer>,
    /// Milliseconds since the epoch until which the answer is reused.
    until_ms: u64,
}

/// One core's caches.
pub struct AuthCache {
    key: (u64, u64),
    jwts: RefCell<FxHashMap<u64, CachedJwt>>,
    answers: RefCell<FxHashMap<u128, CachedAnswer>>,
}

impl AuthCache {
    pub fn new() -> AuthCache {
        let mut seed = [0u8; 16];
        let _ = getrandom::fill(&mut seed);
        AuthCache {
            key: (
                u64::from_le_bytes(seed[..8].try_into().unwrap_or_default()),
                u64::from_le_bytes(seed[8..].try_into().unwrap_or_default()),
            ),
            jwts: RefCell::default(),
            answers: RefCell::default(),
        }
    }

    /// The fingerprint of an authorizer's uid and the given parts.
    pub fn fingerprint<'a>(&self, uid: u64, parts: impl IntoIterator<Item = &'a [u8]>) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write_u64(uid);
        for p in parts {
            h.write_usize(p.len());
            h.write(p);
        }
        h.finish128().as_u128()
    }

    /// A token verified before on this core for authorizer `uid`, with the same key set
    /// version and not expired at `now_s`.
    #[inline]
    pub fn jwt(
        &self,
        uid: u64,
        token: &[u8],
        keys_version: u64,
        now_s: u64,
    ) -> Option<Rc<VerifiedJwt>> {
        let jwts = self.jwts.borrow();
        let hit = jwts.get(&jwt_slot(uid, token))?;
        (hit.uid == uid
            && hit.keys_version == keys_version
            && now_s < hit.exp_s
            && *hit.token == *token)
            .then(|| hit.verified.clone())
    }

    /// Keeps a verified token until its `exp`.
    pub fn keep_jwt(
        &self,
        uid: u64,
        token: &[u8],
        keys_version: u64,
        v: VerifiedJwt,
        now_s: u64,
    ) -> Rc<VerifiedJwt> {
        let verified = Rc::new(v);
        let Some(exp_s) = verified.exp else {
            return verified;
        };
        let slot = jwt_slot(uid, token);
        let mut jwts = self.jwts.borrow_mut();
        if jwts.len() >= MAX_ENTRIES {
            jwts.retain(|_, e| e.exp_s > now_s);
            if jwts.len() >= MAX_ENTRIES {
                jwts.clear();
            }
        }
        jwts.insert(
            slot,
            CachedJwt {
                uid,
                token: token.into(),
                verified: verified.clone(),
                exp_s,
                keys_version,
            },
        );
        verified
    }

    /// An answer cached under `fp` still fresh at `now_ms`.
    #[inline]
    pub fn answer(&self, fp: u128, now_ms: u64) -> Option<Rc<AuthorizerAnswer>> {
        let answers = self.answers.borrow();
        let hit = answers.get(&fp)?;
        (now_ms < hit.until_ms).then(|| hit.answer.clone())
    }

    /// Keeps an answer under `fp` until `until_ms`.
    pub fn keep_answer(&self, fp: u128, answer: Rc<AuthorizerAnswer>, now_ms: u64, until_ms: u64) {
        let mut answers = self.answers.borrow_mut();
        if answers.len() >= MAX_ENTRIES {
            answers.retain(|_, e| e.until_ms > now_ms);
            if answers.len() >= MAX_ENTRIES {
                answers.clear();
            }
        }
        answers.insert(fp, CachedAnswer { answer, until_ms });
    }
}

/// Where a token lives in the cache: its authorizer, length and last 16 bytes (a slot shared
/// by two tokens holds the newer one; the full token decides a hit).
#[inline]
fn jwt_slot(uid: u64, token: &[u8]) -> u64 {
    use std::hash::Hash;
    let mut h = rustc_hash::FxHasher::default();
    uid.hash(&mut h);
    token.len().hash(&mut h);
    token[token.len().saturating_sub(16)..].hash(&mut h);
    h.finish()
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(exp: u64) -> VerifiedJwt {
        VerifiedJwt {
            exp: Some(exp),
            claims: Box::new([("sub".into(), "alice".into())]),
            scopes: Box::new([]),
        }
    }

    #[test]
    fn a_cached_token_is_found_only_by_itself_its_authorizer_and_its_key_set() {
        let cache = AuthCache::new();
        let token = b"header.payload.signature-0123456789abcdef";
        cache.keep_jwt(7, token, 1, verified(1_000), 500);
        assert!(cache.jwt(7, token, 1, 999).is_some());
        // Expired, another key set, another authorizer.
        assert!(cache.jwt(7, token, 1, 1_000).is_none());
        assert!(cache.jwt(7, token, 2, 999).is_none());
        assert!(cache.jwt(8, token, 1, 999).is_none());
        // Same length and same signature tail, another payload: the slot is shared, the token
        // is not.
        let forged = b"header.PAYLOAD.signature-0123456789abcdef";
        assert_eq!(jwt_slot(7, token), jwt_slot(7, forged));
        assert!(cache.jwt(7, forged, 1, 999).is_none());
    }

    #[test]
    fn tokens_without_exp_are_not_kept_and_answers_expire() {
        let cache = AuthCache::new();
        let mut v = verified(0);
        v.exp = None;
        cache.keep_jwt(1, b"t", 0, v, 0);
        assert!(cache.jwt(1, b"t", 0, 0).is_none());
        let fp = cache.fingerprint(3, [&b"allow"[..]]);
        assert_ne!(fp, cache.fingerprint(4, [&b"allow"[..]]));
        let answer = Rc::new(AuthorizerAnswer {
            allowed: true,
            principal_id: None,
            context: Box::new([]),
            usage_identifier_key: None,
        });
        cache.keep_answer(fp, answer, 100, 200);
        assert!(cache.answer(fp, 199).is_some());
        assert!(cache.answer(fp, 200).is_none());
    }
}

//! Per-core caches of authorization results: verified JWTs (until their `exp`) and request
//! authorizer answers (for the authorizer's `result_ttl`). Each core keeps its own, so a
//! lookup takes no lock and touches no shared cache line; a token or identity first seen on
//! another core is verified (or the authorizer called) once more there.
//!
//! Entries are keyed by a 128-bit SipHash of the authorizer's uid and the token or identity
//! values under a key drawn per process: the token itself is not kept. An authorizer's uid
//! changes when its settings do, so a reload keeps the entries of unchanged authorizers and
//! strands those of changed ones (evicted as any other). Each cache holds at most
//! [`MAX_ENTRIES`]; a full cache first drops what expired, then everything.

use std::{cell::RefCell, hash::Hasher, rc::Rc};

use rustc_hash::FxHashMap;
use siphasher::sip128::{Hasher128, SipHasher13};
use turnpike_core::auth::{jwt::VerifiedJwt, request_authorizer::AuthorizerAnswer};

/// Most entries per cache per core.
pub const MAX_ENTRIES: usize = 16_384;

struct CachedJwt {
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
    jwts: RefCell<FxHashMap<u128, CachedJwt>>,
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
        let fp = self.fingerprint(uid, [token]);
        let jwts = self.jwts.borrow();
        let hit = jwts.get(&fp)?;
        (hit.keys_version == keys_version && now_s < hit.exp_s).then(|| hit.verified.clone())
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
        let fp = self.fingerprint(uid, [token]);
        let mut jwts = self.jwts.borrow_mut();
        if jwts.len() >= MAX_ENTRIES {
            jwts.retain(|_, e| e.exp_s > now_s);
            if jwts.len() >= MAX_ENTRIES {
                jwts.clear();
            }
        }
        jwts.insert(
            fp,
            CachedJwt {
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

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache::new()
    }
}

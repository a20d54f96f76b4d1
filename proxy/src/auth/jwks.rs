//! JSON Web Key Sets for JWT authorizers, fetched off the request path.
//!
//! Every key location (an issuer's discovery document, or a `jwks_uri`) has one [`JwksSlot`],
//! shared by every snapshot that names it, so a reload never drops fetched keys. A fetcher
//! thread (started with the server) loads each slot, refreshes it on the key set's cache
//! lifetime (`Cache-Control: max-age`, clamped to 30 s .. 1 h; 1 h when absent), retries
//! failures with a backoff while the old keys keep serving, and refetches early when a worker
//! saw a token whose `kid` no key has — at most once per [`UNKNOWN_KID_REFETCH`] per slot, so a
//! flood of forged `kid`s costs one fetch. Workers only load an `Arc` (lock-free) and set a
//! flag: a worker never waits on the network for keys.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use turnpike_core::auth::{jwt::JwkSet, model::KeyLocation};

/// Least time between two refetches caused by unknown `kid`s, per key location.
pub const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);
const MIN_LIFETIME: Duration = Duration::from_secs(30);
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(300);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest discovery document or key set read (bytes).
const MAX_DOCUMENT: u64 = 1 << 20;

/// One key location's keys, as workers read them.
pub struct JwksSlot {
    pub location: KeyLocation,
    keys: ArcSwapOption<JwkSet>,
    /// Bumped each time the keys change: cached verifications made with older keys are
    /// checked again.
    version: AtomicU64,
    /// A worker saw a `kid` no key has.
    unknown_kid: AtomicBool,
}

impl JwksSlot {
    /// The keys, once fetched, and their version.
    #[inline]
    pub fn keys(&self) -> (Option<Arc<JwkSet>>, u64) {
        (self.keys.load_full(), self.version.load(Ordering::Acquire))
    }

    /// Asks the fetcher for a refetch (rate-limited there). Never blocks.
    #[inline]
    pub fn report_unknown_kid(&self) {
        self.unknown_kid.store(true, Ordering::Relaxed);
    }
}

// A std Mutex: taken when a snapshot is built and by the fetcher thread, never per request.
#[allow(clippy::disallowed_types)]
type Slots = std::sync::Mutex<Vec<Arc<JwksSlot>>>;

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Default::default)
}

/// The slot of `location`, the same one every snapshot naming it gets.
pub fn slot(location: &KeyLocation) -> Arc<JwksSlot> {
    let mut all = slots().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = all.iter().find(|s| &s.location == location) {
        return s.clone();
    }
    let s = Arc::new(JwksSlot {
        location: location.clone(),
        keys: ArcSwapOption::empty(),
        version: AtomicU64::new(0),
        unknown_kid: AtomicBool::new(false),
    });
    all.push(s.clone());
    s
}

/// Starts the fetcher thread (once per process).
pub fn start_fetcher() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("jwks".into())
            .spawn(fetch_loop);
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the JWKS fetcher: JWT authorizers will refuse every token");
        }
    });
}

/// When a slot is due next.
struct Schedule {
    slot: Arc<JwksSlot>,
    due: Instant,
    retry: Duration,
    last_kid_refetch: Option<Instant>,
}

fn fetch_loop() {
    let agent = agent();
    let mut schedule: Vec<Schedule> = Vec::new();
    loop {
        {
            let mut all = slots().lock().unwrap_or_else(|p| p.into_inner());
            // Slots no snapshot holds any more (only the registry and the schedule do).
            all.retain(|s| {
                let scheduled = schedule.iter().any(|x| Arc::ptr_eq(&x.slot, s));
                Arc::strong_count(s) > 1 + usize::from(scheduled)
            });
            schedule.retain(|x| all.iter().any(|s| Arc::ptr_eq(s, &x.slot)));
            for s in all.iter() {
                if !schedule.iter().any(|x| Arc::ptr_eq(&x.slot, s)) {
                    schedule.push(Schedule {
                        slot: s.clone(),
                        due: Instant::now(),
                        retry: FIRST_RETRY,
                        last_kid_refetch: None,
                    });
                }
            }
        }
        let now = Instant::now();
        for x in &mut schedule {
            let kid_wanted = x.slot.unknown_kid.load(Ordering::Relaxed)
                && x.last_kid_refetch
                    .is_none_or(|t| now.duration_since(t) >= UNKNOWN_KID_REFETCH);
            if now < x.due && !kid_wanted {
                continue;
            }
            if kid_wanted {
                x.last_kid_refetch = Some(now);
            }
            x.slot.unknown_kid.store(false, Ordering::Relaxed);
            let url = x.slot.location.url().to_owned();
            match fetch(&agent, &x.slot.location) {
                Ok((set, lifetime)) => {
                    let n = set.len();
                    x.slot.keys.store(Some(Arc::new(set)));
                    x.slot.version.fetch_add(1, Ordering::AcqRel);
                    x.due = Instant::now() + lifetime;
                    x.retry = FIRST_RETRY;
                    tracing::info!(%url, keys = n, refresh_s = lifetime.as_secs(), "JWKS fetched");
                }
                Err(e) => {
                    x.due = Instant::now() + x.retry;
                    tracing::warn!(%url, error = %e, retry_s = x.retry.as_secs(), "JWKS fetch failed; cached keys (if any) keep serving");
                    x.retry = (x.retry * 2).min(MAX_RETRY);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(3)
        .build()
        .new_agent()
}

/// Fetches a key set (through the discovery document when that is the location) and its
/// cache lifetime.
fn fetch(agent: &ureq::Agent, location: &KeyLocation) -> Result<(JwkSet, Duration), String> {
    let jwks_uri = match location {
        KeyLocation::Jwks(u) => u.clone(),
        KeyLocation::Discovery(u) => {
            let (doc, _) = get(agent, u)?;
            let doc: serde_json::Value = serde_json::from_slice(&doc)
                .map_err(|e| format!("discovery document is not JSON: {e}"))?;
            doc.get("jwks_uri")
                .and_then(|v| v.as_str())
                .ok_or("discovery document has no jwks_uri")?
                .to_owned()
        }
    };
    let (body, max_age) = get(agent, &jwks_uri)?;
    let set = JwkSet::parse(&body).map_err(|e| format!("{jwks_uri}: {e}"))?;
    if set.is_empty() {
        return Err(format!("{jwks_uri}: no usable signing keys"));
    }
    let lifetime = max_age
        .unwrap_or(MAX_LIFETIME)
        .clamp(MIN_LIFETIME, MAX_LIFETIME);
    Ok((set, lifetime))
}

/// GETs `url`: the body and the `Cache-Control: max-age`, if any.
fn get(agent: &ureq::Agent, url: &str) -> Result<(Vec<u8>, Option<Duration>), String> {
    let mut resp = agent
        .get(url)
        .header("accept", "application/json")
        .call()
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("{url}: status {status}"));
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT)
        .read_to_vec()
        .map_err(|e| format!("{url}: {e}"))?;
    Ok((body, max_age))
}

/// `max-age=N` in a Cache-Control value (RFC 9111 section 5.2.2.1).
fn max_age(v: &str) -> Option<Duration> {
    v.split(',').find_map(|d| {
        let d = d.trim();
        let (name, value) = d.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| {
                value
                    .trim()
                    .trim_matches('"')
                    .parse()
                    .ok()
                    .map(Duration::from_secs)
            })
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("MAX-AGE=\"5\""), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=x"), None);
    }
}

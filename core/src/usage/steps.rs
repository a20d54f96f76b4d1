//! The request steps of traffic control, run in DESIGN.md's order once a request is routed:
//! the API key (AWS's `apiKeyRequired`), then every throttle that applies (the gateway's
//! account-level limit, the route's limit on its stage, the key's usage plan limit or its
//! per-route override), then the plan's quota. A request takes a token from every bucket;
//! the first empty one refuses it. The quota is counted last, so a throttled request never
//! uses quota.
//!
//! Steps are a plain enum, compiled per route plan when a snapshot is built; a route with no
//! step configured has an empty list and runs nothing. Sans-io: the clock is the [`Now`]
//! passed in.

use super::{ApiKeyTable, Bucket, Limit, UsageSlots};

/// The clock, read once per request by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Nanoseconds on a monotonic clock shared by every worker (the buckets' clock).
    pub mono_ns: u64,
    /// Milliseconds since 1970 (UTC): quota periods and usage days.
    pub epoch_ms: u64,
}

/// One step.
#[derive(Debug, Clone)]
pub enum RequestStep {
    /// The request must carry an enabled API key with a usage plan for this stage.
    RequireApiKey,
    /// A throttle on every request of the route (account-level, or the stage's route limit).
    Throttle(Bucket),
    /// A route's throttle with `scope: cluster`: the cluster's summed usage against the limit.
    ClusterThrottle(crate::cluster::ClusterBucket),
    /// The key's usage plan: its throttle (or the plan's override for this route) and quota.
    UsagePlan,
}

/// Why a request was refused, which decides its gateway response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// No key, an unknown or disabled key, or a key with no plan for this stage: 403
    /// `INVALID_API_KEY` (AWS answers `{"message":"Forbidden"}`).
    InvalidApiKey,
    /// A bucket was empty: 429 `THROTTLED`.
    Throttled,
    /// The key's quota for the period is used: 429 `QUOTA_EXCEEDED`.
    QuotaExceeded,
}

/// A refused request: why, and when trying again could succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// Milliseconds until a retry could pass; `None` when no wait helps.
    pub retry_after_ms: Option<u64>,
}

/// What the steps read from the request.
#[derive(Debug, Clone, Copy)]
pub struct StepInput<'a> {
    /// The `x-api-key` header's value.
    pub api_key: Option<&'a [u8]>,
    /// [`super::stage_uid`] of the request's API stage.
    pub stage: u32,
    /// The matched route key (`GET /pets`).
    pub route_key: &'a str,
}

/// The steps for a route: an API key if required, the account-level throttle, the route's
/// throttle on its stage, and the usage plan if a key is required. Empty when none applies.
pub fn compile(
    api_key_required: bool,
    account: Option<&Bucket>,
    route: Option<&Bucket>,
) -> Box<[RequestStep]> {
    compile_steps(
        api_key_required,
        account,
        route.cloned().map(RequestStep::Throttle),
    )
}

/// As [`compile`], with the route's throttle given as a step (a per-node
/// [`RequestStep::Throttle`] or a [`RequestStep::ClusterThrottle`]).
pub fn compile_steps(
    api_key_required: bool,
    account: Option<&Bucket>,
    route: Option<RequestStep>,
) -> Box<[RequestStep]> {
    let mut steps = Vec::new();
    if api_key_required {
        steps.push(RequestStep::RequireApiKey);
    }
    steps.extend(account.cloned().map(RequestStep::Throttle));
    steps.extend(route);
    if api_key_required {
        steps.push(RequestStep::UsagePlan);
    }
    steps.into()
}

/// Runs `steps` for one request. Lock-free: a hash lookup and a compare-and-swap per bucket.
#[inline]
pub fn admit(
    steps: &[RequestStep],
    input: StepInput<'_>,
    keys: &ApiKeyTable,
    slots: &UsageSlots,
    now: Now,
) -> Result<(), Refusal> {
    let mut plan = None;
    for step in steps {
        match step {
            RequestStep::RequireApiKey => {
                plan = input
                    .api_key
                    .and_then(|v| keys.find(v))
                    .filter(|k| k.enabled())
                    .and_then(|k| k.plan_for(input.stage));
                if plan.is_none() {
                    return Err(Refusal {
                        kind: RefusalKind::InvalidApiKey,
                        retry_after_ms: None,
                    });
                }
            }
            RequestStep::Throttle(b) => b.limit.take(&b.gcra, now.mono_ns).map_err(throttled)?,
            RequestStep::ClusterThrottle(b) => b.take(now.mono_ns).map_err(throttled)?,
            RequestStep::UsagePlan => {
                let Some((limits, stage, first)) = plan else {
                    continue;
                };
                let (limit, slot): (Option<&Limit>, u32) = match stage.route(input.route_key) {
                    Some((limit, offset)) => (Some(limit), first + offset),
                    None => (limits.throttle.as_ref(), first),
                };
                let cluster = if limits.cluster {
                    keys.cluster(first)
                } else {
                    None
                };
                if let Some(b) = cluster.and_then(|c| c.throttle(slot - first)) {
                    b.take(now.mono_ns).map_err(throttled)?;
                } else if let Some(limit) = limit
                    && let Some(s) = slots.get(slot)
                {
                    limit.take(&s.bucket, now.mono_ns).map_err(throttled)?;
                }
                let Some(s) = slots.get(first) else {
                    continue;
                };
                if let Some(q) = &limits.quota {
                    let period = q.period_number(now.epoch_ms);
                    let counted = match cluster.and_then(|c| c.quota.as_deref()) {
                        Some(c) => c.take_quota(period, q.limit),
                        None => s.count_quota(period, q.limit),
                    };
                    if !counted {
                        return Err(Refusal {
                            kind: RefusalKind::QuotaExceeded,
                            retry_after_ms: Some(q.ms_until_next_period(now.epoch_ms)),
                        });
                    }
                }
                s.count_day((now.epoch_ms / 86_400_000) as u32);
            }
        }
    }
    Ok(())
}

#[inline]
fn throttled(wait_ns: Option<u64>) -> Refusal {
    Refusal {
        kind: RefusalKind::Throttled,
        retry_after_ms: wait_ns.map(|ns| ns.div_ceil(1_000_000)),
    }
}

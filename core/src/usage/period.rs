//! Quota periods as AWS defines them (API Gateway `QuotaSettings`): a period of `DAY`, `WEEK`
//! or `MONTH`, aligned in UTC, whose start is moved by `offset`, "the day that a time period
//! starts": with `WEEK`, offset 0 starts weeks on Sunday and 1 on Monday; with `MONTH`, offset
//! `n` starts months on day `n + 1`; with `DAY`, the only offset is 0.
//!
//! Periods are numbered (days, weeks or months since 1970) so a counter can hold its period
//! number beside its count in one atomic word.

use serde::{Deserialize, Serialize};

use crate::context::time::{civil_from_days, days_from_civil};

/// `DAY`, `WEEK` or `MONTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

/// A usage plan's quota: `{ limit: 10000, period: MONTH, offset: 0 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// Requests allowed per key per period.
    pub limit: u32,
    pub period: QuotaPeriod,
    /// Where periods start: see the module docs. Default 0.
    #[serde(default)]
    pub offset: u32,
    /// `cluster`: the limit holds for each key's requests over the whole cluster (see the
    /// README's "Cluster"); `node` (the default): for this node's alone.
    #[serde(default, skip_serializing_if = "crate::cluster::Scope::is_node")]
    pub scope: crate::cluster::Scope,
}

const DAY_MS: u64 = 86_400_000;

impl QuotaPeriod {
    /// AWS's spelling: `DAY`, `WEEK`, `MONTH`.
    pub fn as_str(&self) -> &'static str {
        match self {
            QuotaPeriod::Day => "DAY",
            QuotaPeriod::Week => "WEEK",
            QuotaPeriod::Month => "MONTH",
        }
    }
}

impl QuotaSettings {
    /// Checks `offset` against `period`, as AWS does: 0 for `DAY`, 0..=6 for `WEEK`, 0..=27
    /// for `MONTH`.
    pub fn check(&self) -> Result<(), String> {
        let max = match self.period {
            QuotaPeriod::Day => 0,
            QuotaPeriod::Week => 6,
            QuotaPeriod::Month => 27,
        };
        if self.offset > max {
            return Err(format!(
                "offset {} is out of range for period {:?} (0..={max})",
                self.offset, self.period
            ));
        }
        Ok(())
    }

    /// The number of the period `epoch_ms` falls in (days, weeks or months since 1970).
    #[inline]
    pub fn period_number(&self, epoch_ms: u64) -> u32 {
        let days = epoch_ms / DAY_MS;
        match self.period {
            QuotaPeriod::Day => days as u32,
            // 1970-01-01 was a Thursday: day 3 was the first Sunday.
            QuotaPeriod::Week => ((days + 4 - u64::from(self.offset.min(6))) / 7) as u32,
            QuotaPeriod::Month => {
                let (y, m, d) = civil_from_days(days);
                let n = y * 12 + (m - 1);
                (if d <= u64::from(self.offset) {
                    n - 1
                } else {
                    n
                }) as u32
            }
        }
    }

    /// The first day (days since 1970) of period number `n`.
    pub fn period_start_day(&self, n: u32) -> u64 {
        let n = u64::from(n);
        match self.period {
            QuotaPeriod::Day => n,
            QuotaPeriod::Week => (n * 7 + u64::from(self.offset.min(6))).saturating_sub(4),
            QuotaPeriod::Month => days_from_civil(n / 12, n % 12 + 1, u64::from(self.offset) + 1),
        }
    }

    /// Milliseconds from `epoch_ms` to the start of the next period: the `Retry-After` of a
    /// key whose quota is used up.
    pub fn ms_until_next_period(&self, epoch_ms: u64) -> u64 {
        let next = self.period_start_day(self.period_number(epoch_ms) + 1) * DAY_MS;
        next.saturating_sub(epoch_ms)
    }
}

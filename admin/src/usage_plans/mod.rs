//! API keys and usage plans, the control plane's half of AWS's traffic control: the keys
//! clients send in `x-api-key`, the plans that give each key a throttle and a quota on some
//! API stages, the associations between them, and the usage counters the data plane moves.
//!
//! - [`records`]: the stored records, request bodies, checks and JSON views;
//! - [`model`]: the in-memory model ([`UsagePlans`]) the key table is built from and writes
//!   are checked against, with the slots each association holds;
//! - [`table`]: building and publishing the data plane's [`turnpike_core::usage::ApiKeyTable`];
//! - [`persist`]: loading at start, saving counters, the usage report.
//!
//! The admin API serves them (`crate::api`'s `api_keys` and `usage_plans` modules). Nothing
//! here runs on a worker: the data plane only reads published tables and moves atomics.

pub mod model;
pub mod persist;
pub mod records;
pub mod table;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Duration};

pub use model::{AssocError, UsagePlans};

use crate::{api::Admin, plane::DataPlane};

/// How often counters are saved: a crash loses at most about this much counting.
pub const SAVE_PERIOD: Duration = Duration::from_secs(1);

/// Starts the thread that saves the usage counters every `period` (see [`persist`]). Call
/// [`Admin::save_usage`] once more after the workers stopped, before exiting.
pub fn spawn_saver<P: DataPlane>(admin: Arc<Admin<P>>, period: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("turnpike-usage-save".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                admin.save_usage();
            }
        })?;
    Ok(())
}

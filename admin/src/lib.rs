//! turnpike-admin: the control plane.

pub mod api;
pub mod certificates;
pub mod db;
pub mod plane;
pub mod prometheus;
pub mod resources;
pub mod server;
pub mod startup;
pub mod store;
#[cfg(test)]
mod testing;
pub mod tls_files;
pub mod token;
pub mod usage_plans;

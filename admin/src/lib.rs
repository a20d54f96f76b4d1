//! turnpike-admin: the control plane.

pub mod api;
pub mod db;
pub mod plane;
pub mod prometheus;
pub mod resources;
pub mod server;
pub mod startup;
pub mod store;
pub mod token;

//! turnpike-admin: the control plane.
pub mod prometheus;
pub mod resources;
pub mod store;
pub mod token;

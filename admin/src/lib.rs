//! turnpike-admin: the control plane.
pub mod prometheus;
pub mod resources;
pub mod token;

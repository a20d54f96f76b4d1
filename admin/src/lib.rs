//! turnpike-admin: the control plane.
pub mod resources;
pub mod token;

//! turnpike-proxy: the data plane.

pub mod h1;

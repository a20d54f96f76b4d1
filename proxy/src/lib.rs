//! turnpike-proxy: the data plane.

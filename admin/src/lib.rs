//! turnpike-admin: the control plane.

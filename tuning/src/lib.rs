//! turnpike-tuning: what this host can do and how the gateway should use it.

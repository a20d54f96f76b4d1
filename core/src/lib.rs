//! turnpike-core: everything the gateway decides without touching a socket or a clock.

//! turnpike-tuning: what this host can do and how the gateway should use it.
//!
//! - [`driver`] builds one monoio runtime per worker thread with the fastest io_uring setup the
//!   kernel accepts, falling back step by step to epoll, and says which one it got.
//! - [`cpu`] lists the CPUs this process may run on and pins a thread to one of them.
//! - [`rlimit`] raises the open-file limit so that many connections fit.
//! - [`host`] reports what on this host holds the gateway back, with the fixes
//!   (`turnpike tune check`, `GET /v1/tuning/host`), and writes the sysctl drop-in
//!   (`turnpike tune apply`).
//!
//! Nothing here runs on the request path; it is called once per thread at start-up.

pub mod cpu;
pub mod driver;
pub mod host;
pub mod rlimit;

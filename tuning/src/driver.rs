//! Builds a worker's runtime: io_uring with the best ring setup flags the kernel accepts, else
//! epoll.
//!
//! Measured on a 2-core VM (kernel 6.18) with a trivial monoio responder: the default ring setup
//! reaches ~0.58x nginx, `COOP_TASKRUN` ~0.97x, `SINGLE_ISSUER + DEFER_TASKRUN` ~1.03x and the
//! epoll driver ~1.0x. So the chain is: defer-taskrun -> coop-taskrun -> plain ring -> epoll.
//! `SINGLE_ISSUER` binds the ring to the thread that creates it: call [`build_runtime`] on the
//! worker thread itself, never hand a runtime to another thread.

use std::{fmt, io, str::FromStr};

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder, time::TimeDriver};

/// The runtime every worker thread runs: io_uring or epoll, both with timers.
pub type Runtime = monoio::FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Which driver the operator asked for (the `driver` tuning knob).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// The fastest that works here; honours `MONOIO_FORCE_LEGACY_DRIVER=1`.
    #[default]
    Auto,
    /// io_uring only: fail rather than fall back to epoll.
    IoUring,
    /// epoll only.
    Epoll,
}

impl FromStr for DriverChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "io_uring" | "iouring" | "uring" => Ok(Self::IoUring),
            "epoll" | "legacy" => Ok(Self::Epoll),
            other => Err(format!(
                "unknown driver {other:?}: expected auto, io_uring or epoll"
            )),
        }
    }
}

/// The driver a runtime actually got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    /// io_uring with `SINGLE_ISSUER | DEFER_TASKRUN` (kernel >= 6.1).
    IoUringDeferTaskrun,
    /// io_uring with `COOP_TASKRUN` (kernel >= 5.19).
    IoUringCoopTaskrun,
    /// io_uring with the kernel's default setup.
    IoUring,
    /// epoll (io_uring unavailable, blocked by seccomp, or forced).
    Epoll,
}

impl DriverKind {
    /// Short stable name used in logs, status and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::IoUringDeferTaskrun => "io_uring",
            Self::IoUringCoopTaskrun => "io_uring",
            Self::IoUring => "io_uring",
            Self::Epoll => "epoll",
        }
    }

    /// The ring setup, for logs (`defer_taskrun`, `coop_taskrun`, `default`, `-`).
    pub fn setup(self) -> &'static str {
        match self {
            Self::IoUringDeferTaskrun => "single_issuer+defer_taskrun",
            Self::IoUringCoopTaskrun => "coop_taskrun",
            Self::IoUring => "default",
            Self::Epoll => "-",
        }
    }

    pub fn is_io_uring(self) -> bool {
        self != Self::Epoll
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Epoll => f.write_str("epoll"),
            _ => write!(f, "io_uring ({})", self.setup()),
        }
    }
}

/// Builds a runtime on the calling thread. `entries` sizes the submission queue.
pub fn build_runtime(choice: DriverChoice, entries: u32) -> io::Result<(Runtime, DriverKind)> {
    let try_uring = match choice {
        DriverChoice::Epoll => false,
        DriverChoice::IoUring => true,
        DriverChoice::Auto => monoio::utils::detect_uring(),
    };
    if try_uring {
        let mut last_err = None;
        for kind in [
            DriverKind::IoUringDeferTaskrun,
            DriverKind::IoUringCoopTaskrun,
            DriverKind::IoUring,
        ] {
            match build_uring(kind, entries) {
                Ok(rt) => return Ok((rt, kind)),
                Err(e) => last_err = Some(e),
            }
        }
        if choice == DriverChoice::IoUring {
            return Err(last_err.unwrap_or_else(|| io::Error::other("io_uring unavailable")));
        }
    }
    let rt = RuntimeBuilder::<LegacyDriver>::new()
        .with_entries(entries)
        .enable_timer()
        .build()?;
    Ok((rt.into(), DriverKind::Epoll))
}

fn build_uring(kind: DriverKind, entries: u32) -> io::Result<Runtime> {
    let mut ring = io_uring::IoUring::builder();
    match kind {
        DriverKind::IoUringDeferTaskrun => {
            ring.setup_single_issuer().setup_defer_taskrun();
        }
        DriverKind::IoUringCoopTaskrun => {
            ring.setup_coop_taskrun();
        }
        DriverKind::IoUring | DriverKind::Epoll => {}
    }
    let rt = RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(entries)
        .uring_builder(ring)
        .enable_timer()
        .build()?;
    Ok(rt.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_runtime_that_runs_timers() {
        for choice in [DriverChoice::Auto, DriverChoice::Epoll] {
            let (mut rt, kind) = build_runtime(choice, 256).expect("runtime");
            if choice == DriverChoice::Epoll {
                assert_eq!(kind, DriverKind::Epoll);
            }
            let out = rt.block_on(async {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                7
            });
            assert_eq!(out, 7);
        }
    }

    #[test]
    fn parses_choice() {
        assert_eq!("epoll".parse::<DriverChoice>(), Ok(DriverChoice::Epoll));
        assert!("kqueue".parse::<DriverChoice>().is_err());
    }
}

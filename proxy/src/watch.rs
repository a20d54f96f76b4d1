//! A worker's client connections and their deadlines.
//!
//! Timeouts are not timers per operation: a connection arms one deadline (a few `Cell` writes)
//! around each read or write, and the worker's tick (every [`TICK`]) shuts down the socket of
//! any connection past its deadline. The pending operation then completes (EOF or an error) on
//! either I/O driver, and the connection sees [`ConnWatch::fired`]. Reads are stopped with
//! `SHUT_RD`, so a client can still be answered (408); writes with `SHUT_RDWR`. The same
//! registry lets a drain close idle connections at once.
//!
//! The clock is coarse (the tick's): a deadline fires between its timeout and its timeout plus
//! two ticks. An [`Armed`] guard disarms when dropped, so a deadline never outlives the
//! operation — or the socket — it was armed for.

use std::{
    cell::{Cell, RefCell},
    os::fd::RawFd,
    rc::Rc,
    time::{Duration, Instant},
};

use rustc_hash::FxHashMap;

/// How often deadlines are checked.
pub const TICK: Duration = Duration::from_millis(50);

/// Which half of a socket a deadline stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A read: the socket can still carry an answer.
    Read,
    /// A write: the socket is done.
    Both,
}

struct Watch {
    fd: RawFd,
    idle: Cell<bool>,
    /// Milliseconds since the watchdog's epoch; 0 when disarmed.
    deadline: Cell<u64>,
    target: Cell<RawFd>,
    side: Cell<Side>,
    fired: Cell<bool>,
}

/// The registry of one worker's client connections.
pub struct Watchdog {
    epoch: Instant,
    now_ms: Cell<u64>,
    next_id: Cell<u64>,
    conns: RefCell<FxHashMap<u64, Rc<Watch>>>,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            epoch: Instant::now(),
            now_ms: Cell::new(1),
            next_id: Cell::new(0),
            conns: RefCell::new(FxHashMap::default()),
        }
    }
}

impl Watchdog {
    /// Registers a client connection; it leaves the registry when the returned handle drops.
    pub fn register(self: &Rc<Self>, fd: RawFd) -> ConnWatch {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let watch = Rc::new(Watch {
            fd,
            // Not idle until it has served a request: a connection just accepted (its task not
            // run yet) has a request coming, which a drain answers rather than cuts off.
            idle: Cell::new(false),
            deadline: Cell::new(0),
            target: Cell::new(fd),
            side: Cell::new(Side::Read),
            fired: Cell::new(false),
        });
        self.conns.borrow_mut().insert(id, watch.clone());
        ConnWatch {
            dog: self.clone(),
            id,
            watch,
        }
    }

    /// The coarse clock, in milliseconds since this watchdog started.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    /// Advances the clock and stops every operation past its deadline.
    pub fn tick(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.now_ms.set(now);
        for w in self.conns.borrow().values() {
            let d = w.deadline.get();
            if d != 0 && d <= now {
                w.deadline.set(0);
                w.fired.set(true);
                let how = match w.side.get() {
                    Side::Read => libc::SHUT_RD,
                    Side::Both => libc::SHUT_RDWR,
                };
                // SAFETY: the target is open while armed (`Armed` disarms before its socket
                // can be dropped); shutdown(2) on it has no memory effects.
                unsafe {
                    libc::shutdown(w.target.get(), how);
                }
            }
        }
    }

    pub fn active(&self) -> usize {
        self.conns.borrow().len()
    }

    /// Ends the read side of every idle connection (waiting for a request to begin).
    pub fn close_idle(&self) {
        for w in self.conns.borrow().values() {
            if w.idle.get() {
                crate::rt::shutdown_read(w.fd);
            }
        }
    }

    /// A deadline `timeout` from now, rounded up by a tick so it never fires early.
    #[inline]
    pub fn deadline_in(&self, timeout: Duration) -> u64 {
        self.now_ms() + timeout.as_millis() as u64 + TICK.as_millis() as u64
    }
}

/// A client connection's entry in its worker's registry.
pub struct ConnWatch {
    dog: Rc<Watchdog>,
    id: u64,
    watch: Rc<Watch>,
}

impl ConnWatch {
    /// Idle: waiting for a request to begin (a drain may close it).
    #[inline]
    pub fn set_idle(&self, idle: bool) {
        self.watch.idle.set(idle);
    }

    /// Arms a deadline `timeout` from now for an operation on `fd`.
    #[inline]
    pub fn arm(&self, timeout: Duration, fd: RawFd, side: Side) -> Armed<'_> {
        self.arm_at(self.dog.deadline_in(timeout), fd, side)
    }

    /// Arms an absolute deadline (from [`ConnWatch::deadline_in`]) for an operation on `fd`.
    #[inline]
    pub fn arm_at(&self, deadline: u64, fd: RawFd, side: Side) -> Armed<'_> {
        let w = &*self.watch;
        w.fired.set(false);
        w.target.set(fd);
        w.side.set(side);
        w.deadline.set(deadline.max(1));
        Armed(w)
    }

    #[inline]
    pub fn deadline_in(&self, timeout: Duration) -> u64 {
        self.dog.deadline_in(timeout)
    }

    /// Whether the last armed deadline passed (its socket was shut down).
    #[inline]
    pub fn fired(&self) -> bool {
        self.watch.fired.get()
    }
}

impl Drop for ConnWatch {
    fn drop(&mut self) {
        self.dog.conns.borrow_mut().remove(&self.id);
    }
}

/// An armed deadline; disarms when dropped.
pub struct Armed<'a>(&'a Watch);

impl Drop for Armed<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.deadline.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_passed_deadline_shuts_the_socket_and_reports_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let dog = Rc::new(Watchdog::default());
        let watch = dog.register(server.as_raw_fd());
        assert_eq!(dog.active(), 1);
        {
            let _armed = watch.arm(Duration::from_secs(60), server.as_raw_fd(), Side::Read);
            dog.tick();
            assert!(!watch.fired(), "far deadline");
        }
        let _armed = watch.arm_at(1, server.as_raw_fd(), Side::Read);
        dog.tick();
        assert!(watch.fired());
        // SHUT_RD: the server now reads EOF, yet can still write.
        let mut buf = [0u8; 1];
        assert_eq!(
            std::io::Read::read(&mut &server, &mut buf).expect("read"),
            0
        );
        assert_eq!(std::io::Write::write(&mut &server, b"x").expect("write"), 1);
        drop(client);
        drop(_armed);
        drop(watch);
        assert_eq!(dog.active(), 0);
    }

    #[test]
    fn disarmed_deadlines_never_fire() {
        let dog = Rc::new(Watchdog::default());
        let watch = dog.register(-1);
        drop(watch.arm_at(1, -1, Side::Both));
        dog.tick();
        assert!(!watch.fired());
    }
}

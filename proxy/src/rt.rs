//! The runtime seam: everything the data plane takes from monoio goes through here, so the
//! runtime can be replaced (DESIGN: monoio 0.2.4 has known bugs fixed only later).
//!
//! Rules kept here: buffers are owned and handed back; a read that times out loses its buffer
//! and its connection (io_uring cancellation is best-effort, data may still land); accepts are
//! never cancelled (a cancelled accept can leak the fd it still returns) — listeners are
//! stopped with `shutdown(2)` instead.

use std::{
    io,
    os::fd::RawFd,
    time::{Duration, Instant},
};

pub use monoio::net::{TcpListener, TcpStream};
use monoio::{
    buf::{IoBuf, SliceMut},
    io::{AsyncReadRent, AsyncWriteRent},
};

/// Reads more bytes after `buf`'s current contents, growing it if full (never past
/// `max_capacity`, which must exceed the current length).
#[inline]
pub async fn read_more(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    max_capacity: usize,
) -> (io::Result<usize>, Vec<u8>) {
    make_room(&mut buf, max_capacity);
    let (len, cap) = (buf.len(), buf.capacity());
    let (res, slice) = stream.read(SliceMut::new(buf, len, cap)).await;
    (res, slice.into_inner())
}

/// Grows a full buffer so a read has room (never past `max_capacity`, at least one byte).
#[inline]
pub fn make_room(buf: &mut Vec<u8>, max_capacity: usize) {
    if buf.len() == buf.capacity() {
        let grow = buf
            .capacity()
            .max(4096)
            .min(max_capacity.saturating_sub(buf.len()).max(1));
        buf.reserve_exact(grow);
    }
}

/// A failed write, and whether any byte had been accepted by the kernel before it failed.
#[derive(Debug)]
pub struct WriteError {
    pub error: io::Error,
    pub nothing_written: bool,
}

/// Writes all of `buf`.
#[inline]
pub async fn write_all(stream: &mut TcpStream, buf: Vec<u8>) -> (Result<(), WriteError>, Vec<u8>) {
    let len = buf.len();
    write_range(stream, buf, 0, len).await
}

/// Writes all of `buf[from..to]`, telling on failure whether nothing at all was written (the
/// condition under which a request may be retried on another connection). No timeout here:
/// callers arm their connection's deadline (see `crate::watch`).
pub async fn write_range(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    from: usize,
    to: usize,
) -> (Result<(), WriteError>, Vec<u8>) {
    let mut at = from;
    while at < to {
        let (res, slice) = stream.write(buf.slice(at..to)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let error = io::Error::new(io::ErrorKind::WriteZero, "peer stopped reading");
                return (
                    Err(WriteError {
                        error,
                        nothing_written: at == from,
                    }),
                    buf,
                );
            }
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                return (
                    Err(WriteError {
                        error,
                        nothing_written: at == from,
                    }),
                    buf,
                );
            }
        }
    }
    (Ok(()), buf)
}

/// Runs `fut` until `deadline`; `None` if the deadline passed first (the future is dropped).
/// A timer per call: only for rare operations (upstream connects); per-request operations use
/// their connection's deadline (`crate::watch`).
#[inline]
pub async fn until<F: std::future::Future>(deadline: Instant, fut: F) -> Option<F::Output> {
    let left = deadline.saturating_duration_since(Instant::now());
    monoio::time::timeout(left, fut).await.ok()
}

pub async fn sleep(d: Duration) {
    monoio::time::sleep(d).await
}

pub fn spawn<F>(fut: F)
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    drop(monoio::spawn(fut));
}

/// Spawns a client connection's task so that a panic in it (a bug, never an expected path)
/// ends that connection only, not the worker and every other connection on its core. The
/// panic is logged; the task's state is dropped as usual (its socket closes, its registry
/// entry goes).
pub fn spawn_guarded<F>(fut: F)
where
    F: std::future::Future<Output = ()> + 'static,
{
    drop(monoio::spawn(Guarded(fut)));
}

struct Guarded<F>(F);

impl<F: std::future::Future<Output = ()>> std::future::Future for Guarded<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        // SAFETY: structural pinning: the inner future is pinned with its wrapper and never
        // moved out of it.
        let inner = unsafe { self.map_unchecked_mut(|g| &mut g.0) };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                tracing::error!("a connection task panicked; that connection is closed");
                std::task::Poll::Ready(())
            }
        }
    }
}

/// Ends the read side of a socket: a pending read returns EOF, a pending accept on a listener
/// fails. How idle connections and listeners are stopped without cancelling I/O.
pub fn shutdown_read(fd: RawFd) {
    // SAFETY: shutdown(2) on an fd we own; failure (already closed) is harmless here.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RD);
    }
}

/// Sends FIN: the peer reads EOF after what was written, while this side can still read.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: as `shutdown_read`.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
    }
}

/// Reads what is already in a socket's receive queue into `buf`'s spare capacity with one
/// non-blocking `recv(2)`, without going through the I/O driver: for a socket just reported
/// readable, this saves the driver a read operation and the task a second wake-up. `Err` with
/// `WouldBlock` when nothing was there after all.
pub fn recv_ready(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.capacity() - buf.len();
    if spare == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    // SAFETY: recv writes at most `spare` bytes into the vector's spare capacity, and only the
    // bytes it reports written are then counted as initialised.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().add(buf.len()).cast(),
            spare,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel initialised `n` more bytes after the current length.
    unsafe { buf.set_len(buf.len() + n as usize) };
    Ok(n as usize)
}

/// Sends what it can of `data` on `fd` without waiting: one `send(2)` (`MSG_DONTWAIT`,
/// `MSG_NOSIGNAL`). `Err(WouldBlock)`: the socket's send buffer is full.
pub fn send_ready(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: send reads at most `data.len()` bytes from the slice.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Whether an idle keep-alive connection was closed (or sent something unasked) by its peer:
/// a non-blocking peek. Either way it must not carry a request.
pub fn peer_gone(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv into one local byte; MSG_PEEK leaves the socket's data in place and
    // MSG_DONTWAIT makes it a non-blocking probe.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        );
    }
    true
}

/// Whether `addr` is free to listen on: binds a socket there without listening, then closes
/// it. `Err(AddrInUse)` when another socket listens there (Linux refuses the bind even with
/// `SO_REUSEADDR`, and this socket does not ask for `SO_REUSEPORT`).
///
/// A probe that listened (as `std::net::TcpListener::bind` does) would accept a client that
/// connects in that moment and then reset it: a client waiting for the port to open would
/// see it open, then be refused.
pub fn probe_bind(addr: std::net::SocketAddr) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) takes integers; the result is checked before use.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new socket this function owns; OwnedFd closes it on every path.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let one: libc::c_int = 1;
    // SAFETY: a valid socket and a pointer to a c_int of the size given.
    unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // SAFETY: zeroed sockaddr structs are valid; each is filled in for its family and passed
    // with its own size.
    let rc = unsafe {
        match addr {
            std::net::SocketAddr::V4(a) => {
                let mut sa: libc::sockaddr_in = std::mem::zeroed();
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_port = a.port().to_be();
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                libc::bind(
                    raw,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            std::net::SocketAddr::V6(a) => {
                let mut sa: libc::sockaddr_in6 = std::mem::zeroed();
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_port = a.port().to_be();
                sa.sin6_addr.s6_addr = a.ip().octets();
                sa.sin6_scope_id = a.scope_id();
                libc::bind(
                    raw,
                    (&sa as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// For a `pre_exec` closure (between fork and exec: system calls only): marks every descriptor
/// from 3 up close-on-exec, then clears the mark on `keep`, so the program started gets its
/// standard streams and `keep` and nothing else. Client sockets accepted through io_uring are
/// not close-on-exec (its accept takes no flags), so without this a started program (an
/// upgrade's new process, a function runtime) would hold them open.
///
/// `close_range(2)` with `CLOSE_RANGE_CLOEXEC` (Linux 5.11+); on an older kernel the call
/// fails and only `keep` is handled.
pub fn cloexec_all_but(keep: &[RawFd]) -> io::Result<()> {
    // close_range's number is 436 on every architecture turnpike builds for (the generic
    // syscall table; x86_64 and aarch64 alike).
    const SYS_CLOSE_RANGE: libc::c_long = 436;
    // SAFETY: close_range only changes descriptor flags; async-signal-safe.
    unsafe {
        libc::syscall(
            SYS_CLOSE_RANGE,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    for &fd in keep {
        // SAFETY: fcntl on a descriptor number; async-signal-safe.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, rc::Rc};

    #[test]
    fn a_panicking_connection_task_leaves_the_runtime_serving() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        let ran = Rc::new(Cell::new(false));
        let seen = ran.clone();
        rt.block_on(async move {
            super::spawn_guarded(async { panic!("a bug in one connection") });
            super::sleep(std::time::Duration::from_millis(10)).await;
            super::spawn_guarded(async move { seen.set(true) });
            super::sleep(std::time::Duration::from_millis(10)).await;
        });
        assert!(ran.get(), "a task spawned after the panic still runs");
    }

    #[test]
    fn probe_bind_tells_a_listened_port_from_a_free_one_and_never_listens() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let addr = held.local_addr().expect("addr");
        let e = super::probe_bind(addr).expect_err("in use");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(held);
        super::probe_bind(addr).expect("free again");
        // The probe only bound: nothing accepted a connection while it existed.
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}

//! A connection's byte stream: plain TCP, or TLS over TCP. Client connections and upstream
//! connections both use it, so the connection driver, the body pump and the upstream exchange
//! read and write without knowing which it is.
//!
//! Plain streams use the runtime's owned-buffer I/O ([`crate::rt`]). TLS streams are driven by
//! readiness: rustls reads ciphertext straight from the socket with non-blocking `recv(2)`
//! into its own record buffer and writes records with `writev(2)`, and the task waits for
//! readability or writability only when the socket has nothing or takes nothing. So a TLS
//! connection holds no buffer of its own beyond rustls's (about 4 KiB for records in flight)
//! and decrypted bytes land directly in the request's buffer.
//!
//! Hot path: no locks, no blocking calls, no logging above debug.

use std::{
    io::{self, BufRead, Read, Write},
    os::fd::{AsRawFd, RawFd},
};

use turnpike_core::tls::material::ClientCertificate;

use crate::rt::{self, TcpStream, WriteError};

/// Plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// A TLS connection (either side) over a TCP stream.
pub struct TlsStream {
    tcp: TcpStream,
    conn: rustls::Connection,
    /// The client's certificate on a mutual TLS connection, parsed once after the handshake.
    client_cert: Option<Box<ClientCertificate>>,
    /// Server side: the identity of the TLS settings the handshake used (see
    /// `tls::server::TlsServer::identity_for`); 0 on the client side.
    identity: u64,
}

impl Stream {
    #[inline]
    pub fn fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(t) => t.tcp.as_raw_fd(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Whether decrypted bytes are waiting inside the TLS layer (always `false` for plain TCP,
    /// whose unread bytes stay in the socket where a peek sees them).
    pub fn has_buffered(&mut self) -> bool {
        match self {
            Stream::Tls(t) => t.plaintext_waiting(),
            Stream::Plain(_) => false,
        }
    }

    /// The client certificate of a mutual TLS connection.
    pub fn client_cert(&self) -> Option<&ClientCertificate> {
        match self {
            Stream::Tls(t) => t.client_cert.as_deref(),
            Stream::Plain(_) => None,
        }
    }

    /// Waits until a read would find something (or the peer closed). Strict readiness: see
    /// `conn::wait_readable`. A TLS stream with decrypted bytes waiting is ready at once.
    pub async fn readable(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.readable(false).await,
            Stream::Tls(t) => {
                if t.plaintext_waiting() {
                    return Ok(());
                }
                t.tcp.readable(false).await
            }
        }
    }

    /// Reads what is already there into `buf`'s spare capacity, without waiting: one
    /// `recv(2)` on a plain stream, decrypted bytes (and records already received) on a TLS
    /// one. `Ok(0)`: the peer closed. `Err(WouldBlock)`: nothing yet.
    pub fn read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => rt::recv_ready(s.as_raw_fd(), buf),
            Stream::Tls(t) => t.read_now(buf),
        }
    }

    /// Reads more bytes after `buf`'s current contents, growing it if full (never past
    /// `max_capacity`, which must exceed the current length). `Ok(0)`: the peer closed.
    pub async fn read_more(
        &mut self,
        mut buf: Vec<u8>,
        max_capacity: usize,
    ) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Stream::Plain(s) => rt::read_more(s, buf, max_capacity).await,
            Stream::Tls(t) => {
                rt::make_room(&mut buf, max_capacity);
                let res = t.read(&mut buf).await;
                (res, buf)
            }
        }
    }

    /// Writes all of `buf`.
    #[inline]
    pub async fn write_all(&mut self, buf: Vec<u8>) -> (Result<(), WriteError>, Vec<u8>) {
        let len = buf.len();
        self.write_range(buf, 0, len).await
    }

    /// Writes all of `buf[from..to]`; on failure, tells whether nothing at all reached the
    /// socket (the condition under which a request may be retried on another connection).
    pub async fn write_range(
        &mut self,
        buf: Vec<u8>,
        from: usize,
        to: usize,
    ) -> (Result<(), WriteError>, Vec<u8>) {
        match self {
            Stream::Plain(s) => rt::write_range(s, buf, from, to).await,
            Stream::Tls(t) => {
                let res = t.write(&buf[from..to]).await;
                (res, buf)
            }
        }
    }
}

impl TlsStream {
    /// Wraps a connection whose handshake is complete; `identity`: see [`TlsStream::identity`].
    pub fn new(tcp: TcpStream, conn: rustls::Connection, identity: u64) -> TlsStream {
        let client_cert = match &conn {
            rustls::Connection::Server(s) => s
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| ClientCertificate::from_der(leaf))
                .map(Box::new),
            rustls::Connection::Client(_) => None,
        };
        TlsStream {
            tcp,
            conn,
            client_cert,
            identity,
        }
    }

    /// Which TLS settings (certificate, policy, truststore) a server-side handshake used.
    pub fn identity(&self) -> u64 {
        self.identity
    }

    pub fn connection(&self) -> &rustls::Connection {
        &self.conn
    }

    fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    fn plaintext_waiting(&mut self) -> bool {
        self.conn
            .process_new_packets()
            .is_ok_and(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed())
    }

    /// See [`Stream::read_now`].
    fn read_now(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let spare = buf.capacity() - buf.len();
        if spare == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut eof = false;
        loop {
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                Ok(data) if !data.is_empty() => {
                    let n = data.len().min(spare);
                    buf.extend_from_slice(&data[..n]);
                    reader.consume(n);
                    return Ok(n);
                }
                // close_notify received.
                Ok(_) => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The TCP stream ended without close_notify: treated as a close, as HTTP/1.1
                // framing tells whether a message was cut short.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if eof {
                return Ok(0);
            }
            match self.conn.read_tls(&mut FdIo(self.tcp.as_raw_fd())) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // rustls queued an alert saying why; send it if the socket takes it now.
                let _ = self.conn.write_tls(&mut FdIo(self.fd()));
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if self.conn.wants_write() {
                // A post-handshake message (a key update reply, tickets): best effort now,
                // the next write flushes the rest.
                let _ = self.conn.write_tls(&mut FdIo(self.fd()));
            }
        }
    }

    async fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            match self.read_now(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.tcp.readable(false).await?;
                }
                other => return other,
            }
        }
    }

    async fn write(&mut self, mut data: &[u8]) -> Result<(), WriteError> {
        let mut sent_any = false;
        let fail = |error: io::Error, sent_any: bool| WriteError {
            error,
            nothing_written: !sent_any,
        };
        while !data.is_empty() {
            let n = self
                .conn
                .writer()
                .write(data)
                .map_err(|e| fail(e, sent_any))?;
            data = &data[n..];
            self.flush(&mut sent_any)
                .await
                .map_err(|e| fail(e, sent_any))?;
        }
        Ok(())
    }

    /// Writes every queued record; `sent_any` is set once a byte reached the socket.
    async fn flush(&mut self, sent_any: &mut bool) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut FdIo(self.fd())) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => *sent_any = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.tcp.writable(false).await?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Drop for TlsStream {
    /// Says goodbye with close_notify if the socket takes it at once (never waits).
    fn drop(&mut self) {
        if !self.conn.is_handshaking() {
            self.conn.send_close_notify();
            let _ = self.conn.write_tls(&mut FdIo(self.fd()));
        }
    }
}

/// Drives a handshake to its end over `tcp`: writes what rustls queued, reads what it wants,
/// waiting for readiness in between. Errors: the peer closed, an I/O error, or the TLS error
/// (after its alert was sent, if the socket took it).
pub async fn handshake(tcp: &TcpStream, conn: &mut rustls::Connection) -> io::Result<()> {
    let fd = tcp.as_raw_fd();
    loop {
        while conn.wants_write() {
            match conn.write_tls(&mut FdIo(fd)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.writable(false).await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        match conn.read_tls(&mut FdIo(fd)) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    let _ = conn.write_tls(&mut FdIo(fd));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.readable(false).await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A socket as `io::Read`/`io::Write` for rustls: non-blocking `recv`/`send`, never raising
/// SIGPIPE.
pub struct FdIo(pub RawFd);

impl Read for FdIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let n = unsafe {
            libc::recv(
                self.0,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl Write for FdIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: msghdr points at the caller's iovecs (IoSlice is ABI-compatible with
        // iovec) for the duration of the call; sendmsg only reads them.
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len().min(1024) as _;
            libc::sendmsg(self.0, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

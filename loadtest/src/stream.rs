//! A connection's byte stream: plain TCP, or TLS run by a rustls [`ClientConnection`] over the
//! same monoio socket. [`crate::conn`] reads and writes through [`Stream`] and does not know
//! which one it has.
//!
//! HOT PATH (see conn.rs). TLS is pumped by hand rather than through an async TLS crate:
//! ciphertext goes between the socket and two buffers owned here, reused for the connection's
//! life (monoio's owned-buffer I/O lends them to the kernel and gets them back), and plaintext
//! goes into the caller's read buffer with `fill_buf`/`consume`, so on a kept-alive connection
//! nothing is zeroed or allocated per request here (rustls itself allocates per record). A new
//! connection allocates its buffers and rustls state, small beside a handshake's key exchange.

use std::io::{self, BufRead, Write};

use monoio::{
    buf::{IoBuf, IoBufMut},
    io::{AsyncReadRent, AsyncWriteRentExt},
    net::TcpStream,
};
use rustls::{ClientConnection, HandshakeKind};

/// Ciphertext read per receive: a few full TLS records (at most 16 KiB of plaintext each).
const TLS_READ_BUF: usize = 64 << 10;

/// An open connection to the target.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Writes all of `buf`, lending it to the runtime and handing it back.
    pub async fn write_all<T: IoBuf + AsRef<[u8]>>(&mut self, buf: T) -> (io::Result<()>, T) {
        match self {
            Stream::Plain(tcp) => {
                let (res, buf) = tcp.write_all(buf).await;
                (res.map(drop), buf)
            }
            Stream::Tls(tls) => {
                let res = tls.write_all(buf.as_ref()).await;
                (res, buf)
            }
        }
    }

    /// Appends what arrives to `buf`, into its spare capacity (which must not be zero); 0 at
    /// the end of the stream.
    pub async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Stream::Plain(tcp) => {
                let len = buf.len();
                let (res, buf) = tcp.read(buf.slice_mut(len..)).await;
                (res, buf.into_inner())
            }
            Stream::Tls(tls) => tls.read(buf).await,
        }
    }
}

/// A TLS client connection over a monoio socket.
pub struct TlsStream {
    tcp: TcpStream,
    tls: ClientConnection,
    /// Ciphertext received and not yet taken by rustls: `incoming[taken..]`.
    incoming: Vec<u8>,
    taken: usize,
    /// Ciphertext rustls produced, on its way to the socket.
    outgoing: Vec<u8>,
    /// The socket reached its end.
    eof: bool,
    /// The server closed its side: a close_notify, or the socket's end.
    closed: bool,
}

impl TlsStream {
    pub fn new(tcp: TcpStream, tls: ClientConnection) -> Self {
        Self {
            tcp,
            tls,
            incoming: Vec::with_capacity(TLS_READ_BUF),
            taken: 0,
            outgoing: Vec::new(),
            eof: false,
            closed: false,
        }
    }

    /// Runs the handshake to its end (the client's Finished sent); says whether it was full or
    /// resumed. A server that closes before that is an error, not an end of stream.
    pub async fn handshake(&mut self) -> io::Result<HandshakeKind> {
        while self.tls.is_handshaking() {
            if self.tls.wants_write() {
                self.flush().await?;
            } else if !self.pull().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake",
                ));
            }
        }
        self.flush().await?;
        Ok(self.tls.handshake_kind().unwrap_or(HandshakeKind::Full))
    }

    /// The negotiated protocol version and cipher suite, for the report.
    pub fn negotiated(&self) -> (Option<&'static str>, Option<&'static str>) {
        (
            self.tls.protocol_version().and_then(|v| v.as_str()),
            self.tls
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str()),
        )
    }

    /// Encrypts and sends all of `data`. rustls buffers a bounded amount of ciphertext, so a
    /// large body goes out in pieces.
    async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.tls.writer().write(data)?;
            data = &data[n..];
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends whatever ciphertext rustls has queued.
    async fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.outgoing.clear();
            self.tls.write_tls(&mut self.outgoing)?;
            let (res, buf) = self.tcp.write_all(std::mem::take(&mut self.outgoing)).await;
            self.outgoing = buf;
            res?;
        }
        Ok(())
    }

    /// Gives rustls more ciphertext (receiving it first if none is left) and lets it process
    /// the records; false once the socket is at its end and rustls has been told.
    async fn pull(&mut self) -> io::Result<bool> {
        if self.taken == self.incoming.len() {
            if self.eof {
                return Ok(false);
            }
            self.incoming.clear();
            self.taken = 0;
            let (res, buf) = self.tcp.read(std::mem::take(&mut self.incoming)).await;
            self.incoming = buf;
            if res? == 0 {
                self.eof = true;
                // Reading nothing tells rustls the peer closed; its reader then says whether
                // that was clean (close_notify) or not.
                self.tls.read_tls(&mut io::empty())?;
                self.process()?;
                return Ok(false);
            }
        }
        let n = self.tls.read_tls(&mut &self.incoming[self.taken..])?;
        self.taken += n;
        self.process()?;
        Ok(true)
    }

    fn process(&mut self) -> io::Result<()> {
        let state = self.tls.process_new_packets().map_err(io::Error::other)?;
        self.closed = state.peer_has_closed();
        Ok(())
    }

    /// Appends decrypted bytes to `dst`, up to its capacity; 0 at the end of the stream.
    ///
    /// An unclean close (no close_notify) also reads as the end: the HTTP framing above finds
    /// a truncated response on its own, and servers commonly skip the alert on `Connection:
    /// close`.
    async fn read(&mut self, mut dst: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        loop {
            match self.take_plaintext(&mut dst) {
                Ok(0) => {}
                Ok(n) => return (Ok(n), dst),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return (Ok(0), dst),
                Err(e) => return (Err(e), dst),
            }
            if self.closed {
                return (Ok(0), dst);
            }
            if let Err(e) = self.pull().await {
                return (Err(e), dst);
            }
            // Post-handshake messages (a key update) may need an answer; usually nothing to send.
            if let Err(e) = self.flush().await {
                return (Err(e), dst);
            }
        }
    }

    /// Moves plaintext rustls holds into `dst`'s spare capacity; 0 when it holds none (or the
    /// stream ended cleanly: the caller then sees `closed`).
    fn take_plaintext(&mut self, dst: &mut Vec<u8>) -> io::Result<usize> {
        let mut moved = 0;
        let mut reader = self.tls.reader();
        while dst.len() < dst.capacity() {
            let chunk = match reader.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Hand over what was read; the error comes again on the next call.
                Err(_) if moved > 0 => break,
                Err(e) => return Err(e),
            };
            let n = chunk.len().min(dst.capacity() - dst.len());
            dst.extend_from_slice(&chunk[..n]);
            reader.consume(n);
            moved += n;
        }
        Ok(moved)
    }
}

//! The admin HTTP/1.1 server: its own threads (never a worker's), blocking sockets with
//! timeouts, the same strict request parser as the data plane, keep-alive.
//!
//! Each connection gets a thread, up to [`MAX_CONNECTIONS`]; the admin is for operators and
//! scrapers, not for traffic, so simplicity beats throughput here.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use turnpike_core::h1::{
    body::BodyDecoder,
    chunked::{ChunkedDecoder, Event},
    encode,
    request::{self, BodyKind, HeadScanner, Limits, RequestHead},
};

use crate::{
    api::{Admin, Request, Response},
    plane::DataPlane,
};

/// Concurrent admin connections; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// Largest request body (a whole config document) accepted.
pub const MAX_BODY: u64 = 16 * 1024 * 1024;
/// Largest body of an authenticated `POST /v1/apikeys/import`: a million keys of JSON lines
/// (about 200 bytes each) in one all-or-nothing import.
pub const MAX_IMPORT_BODY: u64 = 512 * 1024 * 1024;
const IMPORT_PATH: &[u8] = b"/v1/apikeys/import";
const LIMITS: Limits = Limits {
    max_head_bytes: 64 * 1024,
    max_headers: 100,
};
/// A silent client is dropped after this.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The admin threads' nice value. They share cores with the workers: when both want a core,
/// the scheduler gives the worker about nine times the admin thread's share (CFS weight 1024
/// against 110), so compiling a large config under load slows the admin, not the traffic, and
/// the admin still gets enough to answer. It does not break up one scrape's burst of
/// formatting (shorter than a scheduler slice): the encoder yields for that itself
/// (`prometheus.rs`).
const ADMIN_NICE: libc::c_int = 10;

/// Binds the admin port (before the data plane starts, so a taken port fails start-up).
pub fn bind(listen: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(listen)
}

/// Serves the admin API on `listener` from background threads.
pub fn spawn<P: DataPlane>(admin: Arc<Admin<P>>, listener: TcpListener) -> io::Result<SocketAddr> {
    let bound = listener.local_addr()?;
    thread::Builder::new()
        .name("turnpike-admin".into())
        .spawn(move || {
            // Connection threads inherit the acceptor's nice value.
            lower_priority();
            let active = Arc::new(AtomicUsize::new(0));
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::AcqRel);
                    let _ = respond(
                        &stream,
                        &Response::message(503, "too many admin connections"),
                        true,
                    );
                    continue;
                }
                let (admin, active) = (admin.clone(), active.clone());
                let spawned = thread::Builder::new()
                    .name("turnpike-admin-conn".into())
                    .spawn(move || {
                        serve(&admin, stream);
                        active.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    tracing::warn!("could not start an admin connection thread");
                }
            }
        })?;
    Ok(bound)
}

/// Lowers the calling thread (only: on Linux a thread id names one thread) to [`ADMIN_NICE`].
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread's own id; no memory is passed.
    let failed = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, ADMIN_NICE) != 0
    };
    if failed {
        tracing::debug!(
            "could not lower the admin thread's priority: {}",
            io::Error::last_os_error()
        );
    }
}

fn serve<P: DataPlane>(admin: &Admin<P>, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(8192),
        done: 0,
    };
    let mut head = RequestHead::default();
    loop {
        // Only a caller with the token may send a body past MAX_BODY, and only to import.
        let large = |head: &RequestHead, buf: &[u8]| {
            head.path.get(buf) == IMPORT_PATH
                && admin.accepts_token(
                    head.headers
                        .iter()
                        .find(|h| h.name.get(buf).eq_ignore_ascii_case(b"authorization"))
                        .map(|h| h.value.get(buf)),
                )
        };
        let (resp, keep) = match conn.read_request(&mut head, &large) {
            Ok(None) => return,
            Ok(Some((body, consumed))) => {
                let buf = &conn.buf;
                let headers: Vec<(&[u8], &[u8])> = head
                    .headers
                    .iter()
                    .map(|h| (h.name.get(buf), h.value.get(buf)))
                    .collect();
                let path = if head.path.is_empty() {
                    &b"/"[..]
                } else {
                    head.path.get(buf)
                };
                let req = Request {
                    method: std::str::from_utf8(head.method.get(buf)).unwrap_or(""),
                    path: std::str::from_utf8(path).unwrap_or(""),
                    query: head
                        .query
                        .map_or("", |q| std::str::from_utf8(q.get(buf)).unwrap_or("")),
                    headers: &headers,
                    body: &body,
                };
                let mut resp = admin.handle(&req);
                if req.method == "HEAD" {
                    resp.body.clear();
                }
                conn.done = consumed;
                (resp, head.keep_alive)
            }
            Err(resp) => (resp, false),
        };
        if respond(&conn.stream, &resp, !keep).is_err() || !keep {
            return;
        }
        let done = conn.done;
        conn.buf.drain(..done);
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// End of the request just served in `buf`; what follows is the next one.
    done: usize,
}

impl Conn {
    /// Reads one request: its body and where it ends in `buf` (pipelined bytes may follow);
    /// `Ok(None)` if the client closed first.
    fn read_request(
        &mut self,
        head: &mut RequestHead,
        large: &dyn Fn(&RequestHead, &[u8]) -> bool,
    ) -> Result<Option<(Vec<u8>, usize)>, Response> {
        let mut scanner = HeadScanner::default();
        let (start, end) = loop {
            if !self.buf.is_empty() {
                match scanner.scan(&self.buf, &LIMITS) {
                    Ok(Some(span)) => break span,
                    Ok(None) => {}
                    Err(e) => return Err(refusal(e)),
                }
            }
            if !self.fill()? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(Response::message(400, "Bad Request"))
                };
            }
        };
        request::parse(&self.buf, start, end, &LIMITS, head).map_err(refusal)?;
        let max_body = if large(head, &self.buf) {
            MAX_IMPORT_BODY
        } else {
            MAX_BODY
        };
        let mut decoder = match head.body {
            BodyKind::None => return Ok(Some((Vec::new(), end))),
            BodyKind::Length(n) if n > max_body => {
                return Err(Response::message(413, "Request Entity Too Large"));
            }
            BodyKind::Length(n) => BodyDecoder::Length(n),
            BodyKind::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
        };
        if head.expect_continue && self.buf.len() == end {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut body = Vec::new();
        let mut at = end;
        loop {
            let (n, ev) = decoder
                .decode(&self.buf[at..])
                .map_err(|_| Response::message(400, "Bad Request"))?;
            match ev {
                Event::Data(r) => {
                    body.extend_from_slice(&self.buf[at..][r]);
                    if body.len() as u64 > max_body {
                        return Err(Response::message(413, "Request Entity Too Large"));
                    }
                }
                Event::Done => {
                    at += n;
                    break;
                }
                Event::NeedMore => {
                    if !self.fill()? {
                        return Err(Response::message(400, "Bad Request"));
                    }
                }
                Event::LastChunk | Event::Trailer(_) => {}
            }
            at += n;
        }
        Ok(Some((body, at)))
    }

    /// Reads more bytes; `Ok(false)` at EOF.
    fn fill(&mut self) -> Result<bool, Response> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(Response::message(408, "Request Timeout"))
            }
            Err(_) => Ok(false),
        }
    }
}

fn refusal(e: request::HeadError) -> Response {
    use request::HeadError::*;
    match e {
        BadRequest(why) => Response::message(400, format!("Bad Request: {why}")),
        UriTooLong => Response::message(414, "Request-URI Too Long"),
        HeaderTooLarge => Response::message(431, "Request Header Fields Too Large"),
        MethodNotAllowed => Response::message(405, "Method Not Allowed"),
        NotImplemented => Response::message(501, "Not Implemented"),
        ExpectationFailed => Response::message(417, "Expectation Failed"),
    }
}

fn respond(mut stream: &TcpStream, resp: &Response, close: bool) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    encode::status_line(
        &mut out,
        resp.status,
        encode::reason(resp.status).as_bytes(),
    );
    // A 204 has neither a body nor a length (RFC 9110 §8.6).
    if resp.status != 204 {
        encode::header(&mut out, b"Content-Type", resp.content_type.as_bytes());
        encode::content_length(&mut out, resp.body.len() as u64);
    }
    if let Some(v) = resp.etag {
        encode::header(&mut out, b"ETag", format!("\"{v}\"").as_bytes());
    }
    encode::header(&mut out, b"Cache-Control", b"no-store");
    if close {
        encode::header(&mut out, b"Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&resp.body);
    stream.write_all(&out)
}

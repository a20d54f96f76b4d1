//! The `http_proxy` integration: send the request upstream over a pooled keep-alive
//! connection, stream the body, relay the response.
//!
//! - [`pool`]: per-core idle connections;
//! - [`request`] / [`response`]: the heads as rewritten for the other side (pure);
//! - this file: the exchange itself, with its timeouts and its single retry (a pooled
//!   connection that fails before any byte of an idempotent request was written). Failures
//!   before the response head return to [`crate::exchange`], which answers them.
//!
//! Hot path: no locks, no blocking calls, no logging above debug.

pub mod call;
pub mod pool;
pub mod request;
pub mod response;
pub mod tunnel;

use std::{
    rc::Rc,
    time::{Duration, Instant},
};

use turnpike_core::config::UpstreamPolicy;

use self::response::ClientFraming;
use crate::{
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    h1::{
        body::BodyDecoder,
        chunked::ChunkedDecoder,
        encode,
        request::BodyKind,
        response::{self as h1response, ResponseBody, ResponseError},
    },
    plan::{ProxyPlan, ProxyTarget, RoutePlan},
    pump::{Out, Pump, PumpError},
    respond,
    rt::{self, TcpStream},
    snapshot::SnapshotRef,
    stream::Stream,
    watch::Side,
    worker::Worker,
};

/// Request bodies up to this size that already arrived with the head go out in the same write.
const INLINE_BODY: u64 = 16 * 1024;

/// How a proxied exchange ended.
pub enum Forwarded {
    /// The upstream's response was relayed (wholly, or as far as the client took it);
    /// `keep`: the client connection can carry another request.
    Done { keep: bool },
    /// The client went away before an answer could be written.
    ClientGone,
    /// Nothing was sent to the client yet; the gateway answers `error`. `request_read`: the
    /// request body was read to its end, so the connection could stay open.
    Failed {
        error: GatewayError,
        request_read: bool,
    },
}

const fn up(kind: ErrorKind, reason: &'static str) -> GatewayError {
    GatewayError::upstream(kind, reason)
}

/// Proxies the request parsed in `st`, whose upstream head is in `out`, and relays the
/// response. Errors before the response head reached the client come back as
/// [`Forwarded::Failed`] for the gateway to answer.
#[allow(clippy::too_many_arguments)]
pub async fn forward(
    worker: &Rc<Worker>,
    snap: &SnapshotRef,
    c: &mut Client,
    st: &mut RequestState,
    mut out: Vec<u8>,
    p: &ProxyPlan,
    plan: &RoutePlan,
    x: &mut RequestCtx,
) -> Forwarded {
    let gw = &snap.config.gateway;
    let sent_at = Instant::now();
    // The integration timeout covers connecting, sending the request and receiving the
    // response head.
    let until = sent_at + p.timeout;
    let deadline = c.watch.deadline_in(p.timeout);
    let head_only = st.head.is_head(&st.rbuf);
    let idempotent = st.head.is_idempotent(&st.rbuf);
    let body_start = st.head.end;
    let addr = p.target.addr;
    let key = p.target.pool_key;

    // The request body: small and already here -> along with the head; else streamed.
    let mut body = match st.head.body {
        BodyKind::None => None,
        BodyKind::Length(n) if n <= INLINE_BODY && (st.rbuf.len() - body_start) as u64 >= n => {
            let end = body_start + n as usize;
            out.extend_from_slice(&st.rbuf[body_start..end]);
            st.consumed = end;
            x.request_length = n;
            None
        }
        BodyKind::Length(n) => Some(BodyDecoder::Length(n)),
        BodyKind::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new())),
    };

    let attempt = Attempt {
        policy: &gw.upstream,
        target: &p.target,
        idempotent,
        deadline,
        until,
    };
    let sent = send_head(worker, c, &attempt, &mut out, false).await;
    let (mut upstream, reused) = match sent {
        Ok(u) => u,
        Err(error) => {
            worker.bufs.give(out);
            x.integration_micros = Some(sent_at.elapsed().as_micros() as u64);
            return Forwarded::Failed {
                error,
                request_read: body.is_none(),
            };
        }
    };

    // Stream the rest of the request body.
    let mut upstream_write_failed = false;
    if let Some(decoder) = body.as_mut() {
        if st.head.expect_continue && st.head.minor_version == 1 {
            out.clear();
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let armed = c.watch.arm(gw.idle_timeout, c.fd, Side::Both);
            let (res, o) = c.stream.write_all(out).await;
            drop(armed);
            out = o;
            if res.is_err() {
                worker.bufs.give(out);
                return Forwarded::ClientGone;
            }
        }
        out.clear();
        let mut input = worker.bufs.take();
        input.extend_from_slice(&st.rbuf[body_start..]);
        let framing = if matches!(decoder, BodyDecoder::Chunked(_)) {
            Out::Chunked
        } else {
            Out::Raw
        };
        let pumped = Pump {
            src: &mut c.stream,
            dst: &mut upstream,
            watch: &c.watch,
            decoder,
            out: framing,
            read_idle: gw.idle_timeout,
            write_idle: p.timeout,
            limit: plan.body_limit,
            tap: None,
        }
        .run(input, 0, out)
        .await;
        out = pumped.scratch;
        x.request_length = pumped.bytes;
        // What followed the body (a pipelined request) goes right after the head, which stays
        // where it is: its spans are read until the access log line is written. The head
        // counts as consumed, so the next request starts with what followed.
        st.rbuf.truncate(body_start);
        st.rbuf
            .extend_from_slice(&pumped.input[pumped.rest.min(pumped.input.len())..]);
        st.consumed = body_start;
        worker.bufs.give(pumped.input);
        match pumped.result {
            Ok(()) => {}
            Err(PumpError::DstIo) | Err(PumpError::DstTimeout) => upstream_write_failed = true,
            Err(e) => {
                worker.bufs.give(out);
                let error = match e {
                    PumpError::SrcTimeout => GatewayError::client(
                        ErrorKind::RequestTimeout,
                        "request body not received in time",
                    ),
                    PumpError::Malformed => {
                        GatewayError::client(ErrorKind::BadRequest, "malformed chunked body")
                    }
                    PumpError::TooLarge => GatewayError::client(
                        ErrorKind::PayloadTooLarge,
                        "request body over max_body_bytes",
                    ),
                    _ => return Forwarded::ClientGone,
                };
                return Forwarded::Failed {
                    error,
                    request_read: false,
                };
            }
        }
    }
    let body_complete = !upstream_write_failed;
    c.linger |= upstream_write_failed;

    // The response head; interim 1xx responses are relayed as they come.
    let mut input = worker.bufs.take();
    let mut head_result =
        read_response_head(&mut upstream, &mut input, c, st, snap, head_only, deadline).await;
    if let Err(HeadFailure::ClosedUnanswered) = head_result
        && reused
        && idempotent
        && body.is_none()
    {
        // The upstream closed a pooled connection just as the request went out (a keep-alive
        // race): nothing of the request was answered, so it goes once more on a new
        // connection, as nginx and HAProxy do for idempotent requests.
        tracing::debug!(%addr, "pooled upstream connection closed unanswered; retrying on a new one");
        input.clear();
        head_result = match send_head(worker, c, &attempt, &mut out, true).await {
            Ok((fresh, _)) => {
                upstream = fresh;
                read_response_head(&mut upstream, &mut input, c, st, snap, head_only, deadline)
                    .await
            }
            Err(e) => Err(HeadFailure::Error(e)),
        };
    }
    x.integration_micros = Some(sent_at.elapsed().as_micros() as u64);
    if let Err(failure) = head_result {
        worker.bufs.give(input);
        worker.bufs.give(out);
        let Some(error) = failure.error() else {
            return Forwarded::ClientGone;
        };
        return Forwarded::Failed {
            error,
            request_read: body_complete,
        };
    }
    let status = st.response.status;
    x.integration_status = Some(status);
    x.status = status;
    // Cache (http mode): the answer to the gateway's own revalidation (a 304, or an error
    // when a stale answer may be given instead) is answered from the store.
    if x.cache.is_some()
        && let Some(keep) = crate::cache::rfc::revalidated(worker, c, st, x, plan, &input).await
    {
        let extra = input.len() > st.response.end;
        worker.bufs.give(input);
        worker.bufs.give(out);
        let bodyless = matches!(st.response.body, ResponseBody::None);
        if st.response.reusable && body_complete && bodyless && !extra {
            worker.pool.checkin(key, upstream, &gw.upstream);
        }
        return Forwarded::Done { keep };
    }

    let framing = response::client_framing(&st.response, st.head.minor_version);
    let keep = respond::keep_alive(
        &st.head,
        body_complete,
        framing == ClientFraming::UntilClose,
        worker.draining(),
    );
    out.clear();
    let drop_cors = plan.policies.cors.is_some();
    response::write_head(&mut out, &input, &st.response, framing, drop_cors);
    if let Some(m) = &plan.mapping
        && m.maps_response(status)
    {
        if m.reads_response_body(status)
            && let ResponseBody::Length(n) = st.response.body
        {
            let want = st.response.end + (n as usize).min(crate::mapping::JSON_BODY_LIMIT);
            read_until(&mut upstream, &mut input, want, c, deadline).await;
        }
        let head_end = st.response.end;
        let body = match st.response.body {
            ResponseBody::Length(n) => &input[head_end..input.len().min(head_end + n as usize)],
            _ => &[][..],
        };
        let fields = crate::mapping::Fields::Head(&input, &st.response.headers);
        if let Some(e) =
            crate::mapping::map_response(worker, c, st, x, plan, m, status, fields, body)
        {
            x.status = crate::mapping::edit_response_head(&mut out, 0, status, &e);
        }
    }
    // Cache store (crate::cache): a copy of the response as it is written, when storable.
    let mut tap = crate::cache::tap(worker, x, plan, &out, st, &input);
    respond::finish_head(
        &mut out,
        &x.lines(plan, &st.rbuf, keep, st.head.minor_version),
    );

    let reusable = st.response.reusable && body_complete;
    let mut decoder = match st.response.body {
        ResponseBody::None => None,
        ResponseBody::Length(n) => Some(BodyDecoder::Length(n)),
        ResponseBody::Chunked => Some(BodyDecoder::Chunked(ChunkedDecoder::new())),
        ResponseBody::UntilClose => Some(BodyDecoder::UntilClose),
    };
    let head_end = st.response.end;
    let Some(decoder) = decoder.as_mut() else {
        let extra = input.len() > head_end;
        worker.bufs.give(input);
        if reusable && !extra {
            worker.pool.checkin(key, upstream, &gw.upstream);
        }
        crate::cache::store(worker, x, plan, tap, true);
        return Forwarded::Done {
            keep: crate::exchange::send(worker, c, out).await && keep,
        };
    };
    let pumped = Pump {
        src: &mut upstream,
        dst: &mut c.stream,
        watch: &c.watch,
        decoder,
        out: if framing == ClientFraming::Chunked {
            Out::Chunked
        } else {
            Out::Raw
        },
        read_idle: p.timeout,
        write_idle: gw.idle_timeout,
        limit: u64::MAX,
        tap: tap.as_mut(),
    }
    .run(input, head_end, out)
    .await;
    x.response_length = pumped.bytes;
    let clean = pumped.result.is_ok() && pumped.rest == pumped.input.len();
    crate::cache::store(worker, x, plan, tap, pumped.result.is_ok());
    worker.bufs.give(pumped.input);
    worker.bufs.give(pumped.scratch);
    if reusable && clean {
        worker.pool.checkin(key, upstream, &gw.upstream);
    }
    Forwarded::Done {
        keep: pumped.result.is_ok() && keep,
    }
}

/// Reads the upstream response into `input` until it holds `want` bytes, the upstream stops
/// sending, or the integration deadline passes (a response mapping reading the body reads
/// what arrived).
async fn read_until(
    upstream: &mut Stream,
    input: &mut Vec<u8>,
    want: usize,
    c: &Client,
    deadline: u64,
) {
    while input.len() < want {
        let armed = c.watch.arm_at(deadline, upstream.fd(), Side::Read);
        let (res, b) = upstream.read_more(std::mem::take(input), want + 1).await;
        drop(armed);
        *input = b;
        if c.watch.fired() || !matches!(res, Ok(n) if n > 0) {
            return;
        }
    }
}

/// What sending a request upstream needs, the same for a retry.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    policy: &'a UpstreamPolicy,
    target: &'a ProxyTarget,
    idempotent: bool,
    /// The integration deadline, on the connection watch's clock (ms).
    deadline: u64,
    /// The same deadline as an instant (for the connect timer).
    until: Instant,
}

/// Gets an upstream connection (a pooled one unless `fresh`) and writes the request head on it.
/// A pooled connection that fails before any byte was written is replaced once by a fresh one,
/// for idempotent requests. Returns the connection and whether it came from the pool.
async fn send_head(
    worker: &Worker,
    c: &Client,
    a: &Attempt<'_>,
    out: &mut Vec<u8>,
    fresh: bool,
) -> Result<(Stream, bool), GatewayError> {
    let Attempt {
        policy,
        target,
        idempotent,
        deadline,
        until,
    } = *a;
    let mut pooled = if fresh {
        None
    } else {
        worker.pool.checkout(target.pool_key, policy)
    };
    let addr = target.addr;
    let mut retried = false;
    loop {
        let reused = pooled.is_some();
        let mut upstream = match pooled.take() {
            Some(u) => u,
            None => connect(target, policy.connect_timeout, until).await?,
        };
        let armed = c.watch.arm_at(deadline, upstream.fd(), Side::Both);
        let (res, o) = upstream.write_all(std::mem::take(out)).await;
        drop(armed);
        *out = o;
        match res {
            Ok(()) => return Ok((upstream, reused)),
            Err(_) if c.watch.fired() => {
                return Err(up(
                    ErrorKind::GatewayTimeout,
                    "integration timed out sending the request",
                ));
            }
            Err(e) if reused && e.nothing_written && idempotent && !retried => {
                tracing::debug!(%addr, error = %e.error, "pooled upstream connection was closed; retrying on a new one");
                retried = true;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e.error, "upstream write failed");
                return Err(up(
                    ErrorKind::BadGateway,
                    "upstream closed the connection while the request was sent",
                ));
            }
        }
    }
}

/// Connects (and, for `https://`, completes the TLS handshake) within the connect timeout and
/// what is left of the integration timeout, whichever ends first.
async fn connect(
    target: &ProxyTarget,
    timeout: Duration,
    until: Instant,
) -> Result<Stream, GatewayError> {
    let tcp = connect_tcp(target, timeout, until).await?;
    let Some(client) = &target.tls else {
        return Ok(Stream::Plain(tcp));
    };
    let connect_until = Instant::now() + timeout;
    match rt::until(
        connect_until.min(until),
        crate::tls::client::connect(tcp, client),
    )
    .await
    {
        None => Err(up(
            ErrorKind::GatewayTimeout,
            "upstream TLS handshake timed out",
        )),
        Some(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
        Some(Err(e)) => {
            tracing::debug!(addr = %target.addr, error = %e, "upstream TLS handshake failed");
            Err(up(ErrorKind::BadGateway, tls_failure(&e)))
        }
    }
}

/// Why a backend's TLS handshake failed, in words fit for a log line and
/// `$context.integrationErrorMessage`.
fn tls_failure(e: &std::io::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match tls_error(e) {
        Some(E::InvalidCertificate(C::UnknownIssuer)) => {
            "upstream TLS handshake failed: certificate not trusted (unknown issuer)"
        }
        Some(E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            "upstream TLS handshake failed: certificate not valid for the server name"
        }
        Some(E::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            "upstream TLS handshake failed: certificate expired"
        }
        Some(E::InvalidCertificate(_)) => "upstream TLS handshake failed: certificate refused",
        Some(E::AlertReceived(A::CertificateRequired)) => {
            "upstream TLS handshake failed: the upstream requires a client certificate"
        }
        Some(E::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate,
        )) => "upstream TLS handshake failed: the upstream refused the client certificate",
        Some(E::AlertReceived(_)) => "upstream TLS handshake failed: the upstream sent an alert",
        Some(_) => "upstream TLS handshake failed",
        None => "upstream closed the connection during the TLS handshake",
    }
}

/// The rustls error inside an I/O error, if it is one.
fn tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
}

async fn connect_tcp(
    target: &ProxyTarget,
    timeout: Duration,
    until: Instant,
) -> Result<TcpStream, GatewayError> {
    let addr = target.addr;
    let connect_until = Instant::now() + timeout;
    let integration_first = until < connect_until;
    match rt::until(connect_until.min(until), TcpStream::connect_addr(addr)).await {
        None if integration_first => Err(up(
            ErrorKind::GatewayTimeout,
            "integration timed out connecting to the upstream",
        )),
        None => Err(up(ErrorKind::GatewayTimeout, "upstream connect timed out")),
        Some(Err(e)) => {
            tracing::debug!(%addr, error = %e, "upstream connect failed");
            Err(up(
                ErrorKind::BadGateway,
                match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "upstream refused the connection",
                    _ => "upstream connect failed",
                },
            ))
        }
        Some(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// Why no response head came.
enum HeadFailure {
    Error(GatewayError),
    /// The upstream closed (or reset) the connection before sending a single byte.
    ClosedUnanswered,
    /// The client went away while an interim response was relayed.
    ClientGone,
}

impl HeadFailure {
    fn error(&self) -> Option<GatewayError> {
        match self {
            HeadFailure::Error(e) => Some(*e),
            HeadFailure::ClosedUnanswered => Some(up(
                ErrorKind::BadGateway,
                "upstream closed the connection before a response head",
            )),
            HeadFailure::ClientGone => None,
        }
    }
}

/// Reads the upstream's final response head into `input` / `st.response`, by `deadline`.
/// Interim responses other than 100 and 101 (102, 103 Early Hints) are relayed to HTTP/1.1
/// clients as they arrive (RFC 9110 section 15.2); 100 is dropped (the gateway answered
/// `Expect` itself) and 101 refused (no protocol switch on an HTTP route).
#[allow(clippy::too_many_arguments)]
async fn read_response_head(
    upstream: &mut Stream,
    input: &mut Vec<u8>,
    c: &mut Client,
    st: &mut RequestState,
    snap: &SnapshotRef,
    head_only: bool,
    deadline: u64,
) -> Result<(), HeadFailure> {
    let limits = snap.upstream_limits;
    let mut received = false;
    let max = limits.max_head_bytes;
    loop {
        if !input.is_empty() {
            match h1response::parse(input, max, limits.max_headers, head_only, &mut st.response) {
                Ok(true) if st.response.is_interim() => {
                    let status = st.response.status;
                    if status != 100 && st.head.minor_version == 1 {
                        // Rare: its own small buffer.
                        let mut head = Vec::with_capacity(st.response.end + 64);
                        response::write_head(
                            &mut head,
                            input,
                            &st.response,
                            ClientFraming::None,
                            false,
                        );
                        head.extend_from_slice(encode::CRLF);
                        let armed = c
                            .watch
                            .arm(snap.config.gateway.idle_timeout, c.fd, Side::Both);
                        let (res, _) = c.stream.write_all(head).await;
                        drop(armed);
                        if res.is_err() {
                            return Err(HeadFailure::ClientGone);
                        }
                    }
                    input.drain(..st.response.end);
                    continue;
                }
                Ok(true) if st.response.status == 101 => {
                    return Err(HeadFailure::Error(up(
                        ErrorKind::BadGateway,
                        "upstream switched protocols on an HTTP route",
                    )));
                }
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(ResponseError::TooLarge) => {
                    return Err(HeadFailure::Error(up(
                        ErrorKind::BadGateway,
                        "upstream response head over the limits (gateway.upstream.max_response_header_bytes / max_response_headers)",
                    )));
                }
                Err(ResponseError::Malformed(_)) => {
                    return Err(HeadFailure::Error(up(
                        ErrorKind::BadGateway,
                        "upstream sent a malformed response head",
                    )));
                }
            }
        }
        let armed = c.watch.arm_at(deadline, upstream.fd(), Side::Read);
        let (res, b) = upstream.read_more(std::mem::take(input), max + 1).await;
        drop(armed);
        *input = b;
        if c.watch.fired() {
            return Err(HeadFailure::Error(up(
                ErrorKind::GatewayTimeout,
                "integration timed out waiting for the response head",
            )));
        }
        match res {
            Ok(n) if n > 0 => received = true,
            // A TLS alert instead of a response (TLS 1.3 backends refuse a client
            // certificate only after the handshake): say which, and do not retry.
            Err(e) if tls_error(&e).is_some() => {
                return Err(HeadFailure::Error(up(
                    ErrorKind::BadGateway,
                    tls_failure(&e),
                )));
            }
            Ok(_) | Err(_) if !received => return Err(HeadFailure::ClosedUnanswered),
            Ok(_) => {
                return Err(HeadFailure::Error(up(
                    ErrorKind::BadGateway,
                    "upstream closed the connection before a response head",
                )));
            }
            Err(_) => {
                return Err(HeadFailure::Error(up(
                    ErrorKind::BadGateway,
                    "upstream read failed",
                )));
            }
        }
    }
}

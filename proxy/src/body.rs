//! Request bodies read whole into the connection's read buffer, for the steps that need all
//! of a body before anything goes on (a SigV4 payload hash, a function's event). Everything
//! else streams bodies (`crate::pump`).

use crate::{
    auth::Refused,
    conn::{Client, RequestState},
    error::ErrorKind,
    exchange::send,
    h1::{
        chunked::{ChunkedDecoder, Event},
        request::BodyKind,
    },
    watch::Side,
    worker::Worker,
};

/// Reads a request body with a length into the read buffer, after the head (answering
/// `Expect: 100-continue` first), for a check that needs all of it. `None`: a chunked body,
/// which is streamed as usual.
pub async fn read_whole(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    limit: u64,
) -> Result<Option<std::ops::Range<usize>>, Refused> {
    if st.head.body == BodyKind::Chunked {
        return Ok(None);
    }
    read_whole_any(worker, c, st, limit).await.map(Some)
}

/// [`read_whole`] for chunked bodies too: a chunked body (RFC 9112 §7.1) is decoded, up to
/// `limit` bytes of data, and put back in the read buffer as if it had come with a
/// `Content-Length` (trailer fields are dropped, as RFC 9112 §7.1.2 allows a recipient that
/// does not forward them). A malformed chunked body is 400.
pub async fn read_whole_any(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    limit: u64,
) -> Result<std::ops::Range<usize>, Refused> {
    if st.head.body == BodyKind::Chunked {
        dechunk(worker, c, st, limit).await?;
    }
    let start = st.head.end;
    let n = match st.head.body {
        BodyKind::None => return Ok(start..start),
        BodyKind::Chunked => unreachable!("dechunked above"),
        BodyKind::Length(n) if n > limit => {
            return Err(Refused::new(
                ErrorKind::PayloadTooLarge,
                "request body over max_body_bytes",
            ));
        }
        BodyKind::Length(n) => n as usize,
    };
    let end = start + n;
    if st.rbuf.len() < end {
        continue_once(worker, c, st).await?;
    }
    while st.rbuf.len() < end {
        read_more(worker, c, st, end).await?;
    }
    Ok(start..end)
}

/// Continues `Expect: 100-continue` once, when the body has not arrived yet.
async fn continue_once(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
) -> Result<(), Refused> {
    if st.head.expect_continue && st.head.minor_version == 1 {
        let mut out = worker.bufs.take();
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        if !send(worker, c, out).await {
            return Err(Refused::new(ErrorKind::BadRequest, "client went away"));
        }
        st.head.expect_continue = false;
    }
    Ok(())
}

/// Reads more of the request into the read buffer (room for at least `want` bytes in all),
/// under the idle timeout.
async fn read_more(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    want: usize,
) -> Result<(), Refused> {
    let idle = worker.snapshot().config.gateway.idle_timeout;
    let armed = c.watch.arm(idle, c.fd, Side::Read);
    let want = want.max(st.rbuf.capacity());
    let (res, buf) = c.stream.read_more(std::mem::take(&mut st.rbuf), want).await;
    drop(armed);
    st.rbuf = buf;
    match res {
        Ok(got) if got > 0 => Ok(()),
        _ if c.watch.fired() => Err(Refused::new(
            ErrorKind::RequestTimeout,
            "request body not received in time",
        )),
        _ => Err(Refused::new(
            ErrorKind::BadRequest,
            "client closed mid-body",
        )),
    }
}

/// Decodes the chunked body after the head in place: the encoded bytes are replaced by the
/// data, and the head says `Length` from then on.
async fn dechunk(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    limit: u64,
) -> Result<(), Refused> {
    let start = st.head.end;
    let mut decoder = ChunkedDecoder::new();
    let mut data: Vec<u8> = Vec::new();
    let mut at = start;
    loop {
        let (n, event) = decoder
            .decode(&st.rbuf[at..])
            .map_err(|_| Refused::new(ErrorKind::BadRequest, "malformed chunked body"))?;
        match event {
            Event::Data(r) => {
                if (data.len() + r.len()) as u64 > limit {
                    return Err(Refused::new(
                        ErrorKind::PayloadTooLarge,
                        "request body over max_body_bytes",
                    ));
                }
                data.extend_from_slice(&st.rbuf[at + r.start..at + r.end]);
            }
            Event::Done => {
                at += n;
                break;
            }
            Event::LastChunk | Event::Trailer(_) => {}
            Event::NeedMore => {
                at += n;
                if st.rbuf.len() == at {
                    continue_once(worker, c, st).await?;
                }
                read_more(worker, c, st, at + 16 * 1024).await?;
                continue;
            }
        }
        at += n;
    }
    let len = data.len();
    st.rbuf.splice(start..at, data);
    st.head.body = BodyKind::Length(len as u64);
    Ok(())
}

//! Request bodies read whole into the connection's read buffer, for the steps that need all
//! of a body before anything goes on (a SigV4 payload hash, a function's event). Everything
//! else streams bodies (`crate::pump`).

use crate::{
    auth::Refused,
    conn::{Client, RequestState},
    error::ErrorKind,
    exchange::send,
    h1::request::BodyKind,
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
    let start = st.head.end;
    let n = match st.head.body {
        BodyKind::None => return Ok(Some(start..start)),
        BodyKind::Chunked => return Ok(None),
        BodyKind::Length(n) if n > limit => {
            return Err(Refused::new(
                ErrorKind::PayloadTooLarge,
                "request body over max_body_bytes",
            ));
        }
        BodyKind::Length(n) => n as usize,
    };
    let end = start + n;
    if st.rbuf.len() < end && st.head.expect_continue && st.head.minor_version == 1 {
        let mut out = worker.bufs.take();
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        if !send(worker, c, out).await {
            return Err(Refused::new(ErrorKind::BadRequest, "client went away"));
        }
        st.head.expect_continue = false;
    }
    let idle = worker.snapshot().config.gateway.idle_timeout;
    while st.rbuf.len() < end {
        let armed = c.watch.arm(idle, c.fd, Side::Read);
        let want = end.max(st.rbuf.capacity());
        let (res, buf) = c.stream.read_more(std::mem::take(&mut st.rbuf), want).await;
        drop(armed);
        st.rbuf = buf;
        match res {
            Ok(got) if got > 0 => {}
            _ if c.watch.fired() => {
                return Err(Refused::new(
                    ErrorKind::RequestTimeout,
                    "request body not received in time",
                ));
            }
            _ => {
                return Err(Refused::new(
                    ErrorKind::BadRequest,
                    "client closed mid-body",
                ));
            }
        }
    }
    Ok(Some(start..end))
}

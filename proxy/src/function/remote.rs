//! Remote functions: invocations sent to an endpoint that speaks Lambda's Invoke API (AWS
//! Lambda API reference, "Invoke"): `POST /2015-03-31/functions/{FunctionName}/invocations`
//! with `X-Amz-Invocation-Type: RequestResponse`, the event as the body, signed with SigV4
//! (service `lambda`) when the function has credentials.
//!
//! The answer: 200 with the function's result, or 200 with `X-Amz-Function-Error` and the
//! function's error as the body; 429 when Lambda throttles; other statuses are the service's
//! own errors (`{"Type": ..., "message": ...}`). The call goes through the worker's upstream
//! pool like an `http_proxy` request, so nothing here blocks or crosses threads.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use turnpike_core::{
    auth::sigv4::{self, SigV4Scope, SigningKey, ToSign},
    config::{ConfigError, RemoteFunction},
};

use super::FunctionHandle;
use crate::{
    conn::Client,
    error::{ErrorKind, GatewayError},
    h1::encode,
    plan::ProxyTarget,
    upstream::call,
    worker::Worker,
};

/// Largest answer taken from the endpoint (bytes): Lambda's 6 MB synchronous response limit
/// with room for the encoding.
const MAX_ANSWER: usize = 6 * 1024 * 1024 + 64 * 1024;

/// A remote function's endpoint made ready to call.
pub struct RemoteCall {
    target: ProxyTarget,
    /// `/2015-03-31/functions/{FunctionName}/invocations`.
    path: Box<str>,
    /// The key and region the calls are signed with.
    signing: Option<(SigningKey, String)>,
}

impl RemoteCall {
    /// Resolves the endpoint (and builds its TLS client); errors go to `errors` under
    /// `field`.
    pub fn new(
        r: &RemoteFunction,
        field: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Result<RemoteCall, Arc<str>> {
        let target = crate::snapshot::target_for(field, &r.target, None, None, errors)?;
        Ok(RemoteCall {
            target,
            path: r.path.as_str().into(),
            signing: r.signing.clone(),
        })
    }

    /// The request: head and body.
    fn request(&self, out: &mut Vec<u8>, payload: &[u8]) {
        const CONTENT_TYPE: &[u8] = b"application/json";
        const INVOCATION_TYPE: &[u8] = b"RequestResponse";
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        encode::header(out, b"Host", &self.target.host_header);
        encode::header(out, b"Content-Type", CONTENT_TYPE);
        encode::header(out, b"X-Amz-Invocation-Type", INVOCATION_TYPE);
        if let Some((key, region)) = &self.signing {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let scope = SigV4Scope {
                region,
                service: "lambda",
            };
            let own: [(&[u8], &[u8]); 3] = [
                (b"host", &self.target.host_header),
                (b"content-type", CONTENT_TYPE),
                (b"x-amz-invocation-type", INVOCATION_TYPE),
            ];
            let to_sign = ToSign {
                method: b"POST",
                path: self.path.as_bytes(),
                query: b"",
                headers: &own,
                body: payload,
            };
            let signed = sigv4::sign(key, &scope, &to_sign, now);
            for (name, value) in &signed {
                encode::header(out, name.as_bytes(), value.as_bytes());
            }
        }
        encode::header(out, b"User-Agent", b"turnpike");
        encode::content_length(out, payload.len() as u64);
        out.extend_from_slice(encode::CRLF);
        out.extend_from_slice(payload);
    }
}

/// Invokes `function` (remote: `remote`) with `payload` under its timeout. The function's
/// error (`X-Amz-Function-Error`) and the service's errors are 500 with the cause in the log;
/// Lambda's throttling (429) is 503; no answer within the timeout is 504; an endpoint that
/// cannot be reached is 502.
pub async fn call(
    worker: &Worker,
    c: &Client,
    function: &FunctionHandle,
    remote: &RemoteCall,
    payload: Vec<u8>,
) -> Result<Vec<u8>, GatewayError> {
    let shared = &function.shared;
    let mut request = worker.bufs.take();
    remote.request(&mut request, &payload);
    shared.invocations.fetch_add(1, Relaxed);
    let started = Instant::now();
    let called = call::call(
        worker,
        c,
        &remote.target,
        request,
        function.timeout,
        MAX_ANSWER,
    )
    .await;
    shared
        .duration_us
        .fetch_add(super::host::micros(started.elapsed()), Relaxed);
    let called = called.map_err(|e| {
        if e.kind == ErrorKind::GatewayTimeout {
            shared.timeouts.fetch_add(1, Relaxed);
            return GatewayError::upstream(
                ErrorKind::GatewayTimeout,
                "the function did not answer within its timeout",
            );
        }
        shared.errors.fetch_add(1, Relaxed);
        tracing::warn!(function = %function.name, reason = e.reason, "the function's endpoint cannot be reached");
        e
    })?;
    let fail = |why: &'static str| GatewayError::upstream(ErrorKind::IntegrationFailure, why);
    match called.status {
        200 => match called.header(b"x-amz-function-error") {
            None => Ok(called.body),
            Some(kind) => {
                shared.errors.fetch_add(1, Relaxed);
                tracing::warn!(
                    function = %function.name,
                    kind = %String::from_utf8_lossy(kind),
                    error = %String::from_utf8_lossy(&called.body),
                    "the function failed"
                );
                Err(fail("the function failed"))
            }
        },
        429 => {
            shared.throttles.fetch_add(1, Relaxed);
            tracing::warn!(
                function = %function.name,
                error = %String::from_utf8_lossy(&called.body[..called.body.len().min(512)]),
                "the function's endpoint throttled the invocation"
            );
            Err(GatewayError::upstream(
                ErrorKind::ServiceUnavailable,
                "the function's endpoint throttled the invocation (429)",
            ))
        }
        status => {
            shared.errors.fetch_add(1, Relaxed);
            tracing::warn!(
                function = %function.name,
                status,
                error = %String::from_utf8_lossy(&called.body[..called.body.len().min(512)]),
                "the function's endpoint refused the invocation"
            );
            Err(fail("the function's endpoint refused the invocation"))
        }
    }
}

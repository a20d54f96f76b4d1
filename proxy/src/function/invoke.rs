//! A worker's side of a function invocation: the request body read whole, the proxy event
//! built (payload 2.0 or 1.0), the invocation queued without waiting, its outcome awaited under
//! the function's timeout, and the function's response parsed by AWS's rules.

use std::{rc::Rc, sync::atomic::Ordering::Relaxed, time::Instant};

use turnpike_core::{
    auth::request_authorizer::PayloadFormat,
    function::{
        event::{self, EventAuthorizer, ProxyEvent},
        response::{FunctionResponse, parse_response},
    },
};

use super::{FunctionHandle, Invocation, Outcome};
use crate::{
    auth::Authorized,
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    plan::{FunctionPlan, RoutePlan},
    worker::Worker,
};

const fn failed(kind: ErrorKind, reason: &'static str) -> GatewayError {
    GatewayError::upstream(kind, reason)
}

/// Invokes the plan's function with the request in `st`, whose body is `body` (read whole).
#[allow(clippy::too_many_arguments)]
pub async fn invoke(
    worker: &Rc<Worker>,
    c: &Client,
    st: &RequestState,
    x: &mut RequestCtx,
    plan: &RoutePlan,
    fp: &FunctionPlan,
    path: &[u8],
    params: &[(Box<str>, Box<str>)],
    body: &[u8],
    edits: Option<&turnpike_core::mapping::Edits>,
) -> Result<FunctionResponse, GatewayError> {
    let buf = &st.rbuf;
    let content_type = st
        .head
        .find(buf, b"content-type")
        .and_then(|s| std::str::from_utf8(s.get(buf)).ok());
    let authorizer = match &x.authorized {
        None => EventAuthorizer::None,
        Some(Authorized::Jwt(v)) => EventAuthorizer::Jwt {
            claims: &v.claims,
            scopes: &v.scopes,
        },
        Some(Authorized::Custom(a)) => EventAuthorizer::Lambda {
            context: &a.context,
            principal_id: a.principal_id.as_deref(),
        },
        Some(Authorized::Iam {
            access_key,
            principal,
        }) => EventAuthorizer::Iam {
            access_key,
            caller: principal,
        },
    };
    let client_cert = c.stream.client_cert().map(|cert| cert.info());
    let payload = crate::event::with_facts(worker, c, st, x, plan, path, params, edits, |facts| {
        let e = ProxyEvent {
            facts: *facts,
            body,
            content_type,
            authorizer,
            client_cert,
        };
        match fp.format {
            PayloadFormat::V2 => event::event_v2(&e),
            PayloadFormat::V1 => event::event_v1(&e),
        }
    });

    let function = &fp.function;
    let started = Instant::now();
    let payload = call(worker, c, function, payload).await;
    x.integration_micros = Some(started.elapsed().as_micros() as u64);
    let payload = payload?;
    parse_response(&payload, fp.format).map_err(|e| {
        tracing::warn!(function = %function.name, error = %e, "the function's response is malformed");
        failed(
            ErrorKind::IntegrationFailure,
            "the function's response is malformed",
        )
    })
}

/// Invokes `function` with `payload` and returns its answer (JSON). A function the gateway
/// runs gets the invocation queued (503 at once when its queue is full) and answers under
/// its timeout (504 past it); a remote one is called (see [`super::remote::call`]). The
/// function's own failure is a 500 whose cause goes to the log.
pub async fn call(
    worker: &Worker,
    c: &Client,
    function: &FunctionHandle,
    payload: Vec<u8>,
) -> Result<Vec<u8>, GatewayError> {
    if let Some(remote) = &function.remote {
        return super::remote::call(worker, c, function, remote, payload).await;
    }
    if function.shared.broken.load(Relaxed) {
        function.shared.errors.fetch_add(1, Relaxed);
        return Err(failed(
            ErrorKind::IntegrationFailure,
            "the function's runtime cannot start (the log says why)",
        ));
    }
    let now = Instant::now();
    // At most one timeout in the queue, then the function's timeout in a runtime.
    let start_by = now + function.timeout;
    // The supervisor kills an overrunning runtime within a poll (20 ms) of its deadline and
    // says so (a 500, as Lambda's "Task timed out"); the margin lets that answer arrive
    // before this wait gives up with a 504.
    let deadline = start_by + function.timeout + std::time::Duration::from_millis(250);
    let (reply, outcome) = flume::bounded(1);
    let queued = function.queue.try_send(Invocation {
        payload,
        queued: now,
        start_by,
        reply,
    });
    match queued {
        Ok(()) => {}
        Err(flume::TrySendError::Full(_)) => {
            function.shared.throttles.fetch_add(1, Relaxed);
            return Err(failed(
                ErrorKind::ServiceUnavailable,
                "the function's queue is full",
            ));
        }
        Err(flume::TrySendError::Disconnected(_)) => {
            return Err(failed(
                ErrorKind::IntegrationFailure,
                "the function is not running",
            ));
        }
    }
    match crate::rt::until(deadline, outcome.recv_async()).await {
        // The runtime threads count timeouts (they kill the runtime or drop the queued
        // invocation), once each.
        None | Some(Ok(Outcome::TimedOut)) => Err(failed(
            ErrorKind::GatewayTimeout,
            "no runtime took the invocation within the function's timeout",
        )),
        Some(Err(_)) => Err(failed(
            ErrorKind::IntegrationFailure,
            "the function stopped before answering",
        )),
        Some(Ok(Outcome::Overran)) => {
            tracing::warn!(
                function = %function.name,
                "Task timed out after {} ms: the runtime was killed",
                function.timeout.as_millis()
            );
            Err(failed(
                ErrorKind::IntegrationFailure,
                "the function timed out",
            ))
        }
        Some(Ok(Outcome::Error(error))) => {
            tracing::warn!(function = %function.name, %error, "the function failed");
            Err(failed(ErrorKind::IntegrationFailure, "the function failed"))
        }
        Some(Ok(Outcome::Crashed(why))) => {
            tracing::warn!(function = %function.name, %why, "the function's runtime crashed");
            Err(failed(
                ErrorKind::IntegrationFailure,
                "the function's runtime crashed",
            ))
        }
        Some(Ok(Outcome::Response(p))) => Ok(p),
    }
}

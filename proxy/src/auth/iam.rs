//! `aws_iam` routes: the request's SigV4 signature verified against the gateway's IAM
//! credentials (service `execute-api`, the configured Region), then the principal's allowed
//! resources against the request's ARN. AWS's 403 bodies: "Missing Authentication Token",
//! "Signature expired: ...", "The security token included in the request is invalid.", "The
//! request signature we calculated does not match ...".

use std::sync::Arc;

use turnpike_core::auth::{
    model::IamCredential,
    policy,
    sigv4::{self, Payload, SigV4Error, SigV4Request, SigV4Scope},
};

use super::{Authorized, Refused};
use crate::{
    conn::RequestState, error::ErrorKind, exchange::RequestCtx, plan::RoutePlan, worker::Worker,
};

/// The gateway's IAM principals, as `aws_iam` routes use them.
pub struct IamPlan {
    pub credentials: Arc<[IamCredential]>,
    pub region: Box<str>,
}

/// Verifies the request in `st`. `body`: the whole request body when it was read (a body
/// without a length cannot be hashed: only `UNSIGNED-PAYLOAD` passes then). `path`: the path
/// below the stage, for the request's ARN.
pub fn check_iam(
    worker: &Worker,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    iam: &IamPlan,
    path: &[u8],
    body: Option<&[u8]>,
) -> Result<Authorized, Refused> {
    let buf = &st.rbuf;
    let headers: smallvec::SmallVec<[(&[u8], &[u8]); 24]> = st
        .head
        .headers
        .iter()
        .map(|h| (h.name.get(buf), h.value.get(buf)))
        .collect();
    let req = SigV4Request {
        method: st.head.method(buf),
        path: if st.head.path.is_empty() {
            b"/"
        } else {
            st.head.path.get(buf)
        },
        query: st.head.query.map_or(&b""[..], |q| q.get(buf)),
        headers: &headers,
        payload: body.map_or(Payload::Unavailable, Payload::Body),
    };
    let scope = SigV4Scope {
        region: &iam.region,
        service: "execute-api",
    };
    let mut found: Option<&IamCredential> = None;
    let verified = sigv4::verify(
        &req,
        &scope,
        |id| {
            found = iam.credentials.iter().find(|c| c.access_key_id == id);
            found.map(|c| &*c.secret_access_key)
        },
        x.epoch_ms / 1000,
    );
    let caller = match verified {
        Ok(v) => v,
        Err(e) => return Err(refusal(e)),
    };
    let Some(credential) = found else {
        return Err(refusal(SigV4Error::InvalidToken));
    };
    // A chunked body signed by its hash: the hash covers bytes not read yet. Checking them
    // would mean holding the whole body; AWS requires a length here too.
    if caller.unchecked_payload_sha256.is_some() {
        return Err(refusal(SigV4Error::PayloadUnavailable));
    }
    if !credential.resources.is_empty() {
        let arn = super::request_arn(worker, st, plan, path);
        if !credential
            .resources
            .iter()
            .any(|p| policy::glob_match(p, &arn, false))
        {
            return Err(Refused::new(
                ErrorKind::AccessDenied,
                "the principal may not invoke this resource",
            )
            .with_message(format!(
                "User: {} is not authorized to perform: execute-api:Invoke on resource: {arn}",
                credential.principal
            )));
        }
    }
    Ok(Authorized::Iam {
        access_key: caller.access_key_id.into(),
        principal: credential.principal.as_str().into(),
    })
}

fn refusal(e: SigV4Error) -> Refused {
    let kind = match e {
        SigV4Error::MissingAuthenticationToken => ErrorKind::MissingAuthenticationToken,
        SigV4Error::SignatureExpired { .. } => ErrorKind::ExpiredToken,
        SigV4Error::PayloadUnavailable => ErrorKind::LengthRequired,
        _ => ErrorKind::InvalidSignature,
    };
    Refused::new(kind, "SigV4 verification failed").with_message(e.message())
}

//! The request validation step (AWS REST request validators): required parameters, then the
//! body, read whole, against the route's model for its content type. A refused request never
//! reaches the integration; why is `$context.error.validationErrorString`.

use turnpike_core::validation::{Invalid, ParamIn, RequestValidation};

use crate::{
    auth::Refused,
    conn::{Client, RequestState},
    error::{ErrorKind, GatewayError},
    exchange::RequestCtx,
    worker::Worker,
};

/// Validates the request in `st` (`params`: the route's path parameters) as `v` says. The
/// body, when checked, is read whole into the read buffer first (up to `body_limit`).
pub async fn validate(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &mut RequestCtx,
    v: &RequestValidation,
    params: &[(Box<str>, Box<str>)],
    body_limit: u64,
) -> Result<(), Refused> {
    let checked = {
        let buf = &st.rbuf;
        let query = st.head.query.map(|q| q.get(buf));
        v.check_parameters(|at, name| match at {
            ParamIn::Query => query.is_some_and(|q| has_query_param(q, name)),
            ParamIn::Header => st.head.find(buf, name.as_bytes()).is_some(),
            ParamIn::Path => params.iter().any(|(n, v)| &**n == name && !v.is_empty()),
        })
    };
    checked.map_err(|e| refusal(x, e))?;
    if !v.checks_body() {
        return Ok(());
    }
    let body = crate::body::read_whole_any(worker, c, st, body_limit).await?;
    let buf = &st.rbuf;
    let content_type = st.head.find(buf, b"content-type").map(|s| s.get(buf));
    v.check_body(content_type, &buf[body])
        .map_err(|e| refusal(x, e))
}

/// Whether the raw query string has a parameter `name` (names decoded as the events decode
/// them; an empty value counts, as AWS counts `?limit=`).
fn has_query_param(query: &[u8], name: &str) -> bool {
    let query = String::from_utf8_lossy(query);
    turnpike_core::auth::request_authorizer::query_pairs(&query).any(|(n, _)| n == name)
}

fn refusal(x: &mut RequestCtx, e: Invalid) -> Refused {
    let (kind, reason) = match &e {
        Invalid::MissingParameters(_) => (
            ErrorKind::BadRequestParameters,
            "a required request parameter is missing",
        ),
        Invalid::UnsupportedMediaType => (
            ErrorKind::UnsupportedMediaType,
            "no model for the request's content type",
        ),
        Invalid::Body(_) => (
            ErrorKind::BadRequestBody,
            "the request body does not conform to its model",
        ),
    };
    let why = e.validation_error_string();
    let message = matches!(e, Invalid::MissingParameters(_)).then(|| why.clone().into());
    x.validation_error = Some(why.into());
    Refused {
        error: GatewayError::client(kind, reason),
        message,
        challenge: None,
        who: None,
    }
}

#[cfg(test)]
mod tests {
    use super::has_query_param;

    #[test]
    fn query_parameters_are_found_by_their_decoded_names() {
        assert!(has_query_param(b"limit=10&x=1", "limit"));
        assert!(has_query_param(b"a=1&limit", "limit"));
        assert!(has_query_param(b"limit=", "limit"));
        assert!(has_query_param(b"page%20size=2", "page size"));
        assert!(!has_query_param(b"limits=1&xlimit=2", "limit"));
        assert!(!has_query_param(b"", "limit"));
    }
}

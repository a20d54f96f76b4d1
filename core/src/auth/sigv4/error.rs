//! Why a SigV4 request was refused, with the message API Gateway puts in its 403 body.
//!
//! Messages are AWS's wording where it is known (API Gateway answers and the AWS SDK issue
//! trackers quote them); the parts AWS fills with request data that a `Copy` error cannot
//! hold (the `Authorization` header echoed after an incomplete-signature message, the region
//! or key id the client sent) are left out. `Display` writes [`SigV4Error::message`].

use std::borrow::Cow;

use super::amz_date::AmzDate;

/// The parts an `Authorization: AWS4-HMAC-SHA256 ...` header lacked, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissingParts(u8);

impl MissingParts {
    pub const CREDENTIAL: MissingParts = MissingParts(1);
    pub const SIGNATURE: MissingParts = MissingParts(2);
    pub const SIGNED_HEADERS: MissingParts = MissingParts(4);
    pub const DATE: MissingParts = MissingParts(8);
    pub const ALL: MissingParts = MissingParts(15);

    pub fn contains(self, other: MissingParts) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn insert(&mut self, other: MissingParts) {
        self.0 |= other.0;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A refused SigV4 request. Every variant but [`SigV4Error::PayloadUnavailable`] is a 403
/// with `{"message": <message()>}`, as API Gateway answers `AWS_IAM` failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm` in the query.
    #[error("{}", self.message())]
    MissingAuthenticationToken,
    /// An `Authorization` header without some of Credential, Signature, SignedHeaders, or a
    /// request without `X-Amz-Date`/`Date`. A header of another scheme (`Bearer ...`) counts
    /// as missing all three parameters, as API Gateway answers it.
    #[error("{}", self.message())]
    IncompleteSignature { missing: MissingParts },
    /// A presigned URL without one of the `X-Amz-*` parameters.
    #[error("{}", self.message())]
    IncompletePresignedQuery,
    /// An algorithm other than `AWS4-HMAC-SHA256` (SigV4A is not supported).
    #[error("{}", self.message())]
    UnsupportedAlgorithm,
    /// `Credential` is not `keyid/YYYYMMDD/region/service/aws4_request`.
    #[error("{}", self.message())]
    MalformedCredential,
    /// `X-Amz-Date` (or `Date`) does not parse.
    #[error("{}", self.message())]
    InvalidDate,
    /// `X-Amz-Expires` is not a number of seconds up to 604800 (7 days).
    #[error("{}", self.message())]
    InvalidExpires,
    /// The signing time (plus `X-Amz-Expires` for a presigned URL, else 5 minutes) is before
    /// `now`. Times are epoch seconds; `allowed_s` is the window that ran out.
    #[error("{}", self.message())]
    SignatureExpired {
        signed_at: u64,
        now: u64,
        allowed_s: u64,
    },
    /// The signing time is more than 5 minutes after `now`.
    #[error("{}", self.message())]
    SignatureNotYetCurrent { signed_at: u64, now: u64 },
    /// The credential scope names another region than the gateway's.
    #[error("{}", self.message())]
    WrongRegion,
    /// The credential scope names another service than `execute-api`.
    #[error("{}", self.message())]
    WrongService { expected: &'static str },
    /// The credential scope does not end in `aws4_request`.
    #[error("{}", self.message())]
    WrongTerminator,
    /// The credential scope's date is not the date of the signing time (both `YYYYMMDD`).
    #[error("{}", self.message())]
    ScopeDateMismatch {
        scope_date: u32,
        request_date: u32,
        signed_at: u64,
    },
    /// `host` is not among the signed headers.
    #[error("{}", self.message())]
    HostNotSigned,
    /// The access key id is not one the gateway knows.
    #[error("{}", self.message())]
    InvalidToken,
    /// The signature (or `x-amz-content-sha256`) does not match the request.
    #[error("{}", self.message())]
    SignatureMismatch,
    /// The body was not buffered and the client sent no `x-amz-content-sha256`: the
    /// signature covers a body hash that cannot be computed here. The caller answers 411
    /// (no length) or 413 (too large to buffer).
    #[error("{}", self.message())]
    PayloadUnavailable,
}

fn iso(epoch_s: u64) -> String {
    String::from_utf8_lossy(&AmzDate::from_epoch(epoch_s).iso).into_owned()
}

fn window(s: u64) -> String {
    if s.is_multiple_of(60) {
        format!("{} min.", s / 60)
    } else {
        format!("{s} sec.")
    }
}

impl SigV4Error {
    /// The message of API Gateway's 403 body. Static except where AWS puts times or dates in
    /// it (expiry, scope date), hence the `Cow`.
    pub fn message(&self) -> Cow<'static, str> {
        use SigV4Error::*;
        match *self {
            MissingAuthenticationToken => "Missing Authentication Token".into(),
            IncompleteSignature { missing } => {
                let mut m = Vec::new();
                if missing.contains(MissingParts::CREDENTIAL) {
                    m.push("Authorization header requires 'Credential' parameter.");
                }
                if missing.contains(MissingParts::SIGNATURE) {
                    m.push("Authorization header requires 'Signature' parameter.");
                }
                if missing.contains(MissingParts::SIGNED_HEADERS) {
                    m.push("Authorization header requires 'SignedHeaders' parameter.");
                }
                if missing.contains(MissingParts::DATE) {
                    m.push(
                        "Authorization header requires existence of either a 'X-Amz-Date' or \
                         a 'Date' header.",
                    );
                }
                m.join(" ").into()
            }
            IncompletePresignedQuery => "Query-string authentication version 4 requires the \
                 X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, \
                 X-Amz-SignedHeaders, and X-Amz-Expires parameters."
                .into(),
            UnsupportedAlgorithm => "Unsupported AWS 'algorithm': only 'AWS4-HMAC-SHA256' is \
                 accepted."
                .into(),
            MalformedCredential => "Credential must have exactly 5 slash-delimited elements, \
                 e.g. keyid/date/region/service/term."
                .into(),
            InvalidDate => "Date must be in ISO-8601 'basic format'.".into(),
            InvalidExpires => {
                "X-Amz-Expires must be less than a week (in seconds) that is 604800".into()
            }
            SignatureExpired {
                signed_at,
                now,
                allowed_s,
            } => format!(
                "Signature expired: {} is now earlier than {} ({} - {})",
                iso(signed_at),
                iso(now.saturating_sub(allowed_s)),
                iso(now),
                window(allowed_s)
            )
            .into(),
            SignatureNotYetCurrent { signed_at, now } => format!(
                "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                iso(signed_at),
                iso(now + 300),
                iso(now)
            )
            .into(),
            WrongRegion => "Credential should be scoped to a valid region. ".into(),
            WrongService { expected } => {
                format!("Credential should be scoped to correct service: '{expected}'. ").into()
            }
            WrongTerminator => {
                "Credential should be scoped with a valid terminator: 'aws4_request'. ".into()
            }
            ScopeDateMismatch {
                scope_date,
                request_date,
                signed_at,
            } => format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{scope_date:08}' != '{request_date:08}', from '{}'.",
                iso(signed_at)
            )
            .into(),
            HostNotSigned => {
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into()
            }
            InvalidToken => "The security token included in the request is invalid.".into(),
            SignatureMismatch => "The request signature we calculated does not match the \
                 signature you provided. Check your AWS Secret Access Key and signing method. \
                 Consult the service documentation for details."
                .into(),
            PayloadUnavailable => "The request body must be sent with a Content-Length (or an \
                 x-amz-content-sha256 header) to be checked against its signature."
                .into(),
        }
    }

    /// The HTTP status to answer with: 403, or 411 for [`SigV4Error::PayloadUnavailable`]
    /// (the caller may prefer 413 when the body had a length but was too large to buffer).
    pub fn status(&self) -> u16 {
        match self {
            SigV4Error::PayloadUnavailable => 411,
            _ => 403,
        }
    }
}

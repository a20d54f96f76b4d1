//! Authorization: who the caller is and whether the route lets them in, decided without I/O.
//!
//! - `jwt`: JWS compact tokens verified against a JSON Web Key Set (RFC 7515, 7517, 7518,
//!   8037) and checked as AWS HTTP API JWT authorizers do (issuer, audience, times, scopes).
//! - `sigv4`: AWS Signature Version 4 verification of header-signed and presigned requests.
//! - `policy`: source-IP resource policies, trusted proxies, and the IAM policy documents
//!   request authorizers return (`execute-api:Invoke` ARN patterns).
//! - `request_authorizer`: the event a request ("Lambda") authorizer receives and the answer it
//!   gives (simple or IAM-policy responses).
//!
//! Everything here takes bytes and a `now`; fetching keys and calling authorizers is the proxy
//! crate's job.

pub mod file;
pub mod jwk;
pub mod jwt;
pub mod model;
pub mod policy;
pub mod request_authorizer;
pub mod sigv4;

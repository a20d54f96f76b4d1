//! TLS as the config describes it: certificates (PEM files or stored resources), security
//! policies by AWS's names, mutual TLS truststores, and TLS settings for backends.
//!
//! - [`file`]: the document's shapes (`gateway.tls`, `certificates[]`, `domains[].mutual_tls`,
//!   an integration's `tls_config`);
//! - [`policy`]: [`SecurityPolicy`], the protocol versions and cipher suites each allows;
//! - [`material`]: PEM -> a checked [`Certificate`] (key matches, key type and size allowed,
//!   details for checks and the admin API) or [`Truststore`]; SAN coverage of a host name;
//! - [`verify`]: [`verify::AcceptAnyCertificate`], for backends whose certificates are not
//!   verified (and the load generator's `--insecure`);
//! - [`source`]: where the checker gets PEM bytes ([`TlsSource`]: files and stored
//!   certificates, supplied by the caller so this crate does no I/O).
//!
//! No I/O and no clock here: the caller reads files and passes `now`.

pub mod file;
pub mod material;
pub mod policy;
pub mod source;
pub mod verify;

pub use file::{CertificateFile, IntegrationTlsFile, MutualTlsFile, TlsFile};
pub use material::{
    Certificate, CertificateDetails, ClientCertificate, Truststore, covers, iso_time, openssl_time,
    parse_certificate, parse_truststore, pem_encode,
};
pub use policy::SecurityPolicy;
pub use source::{MapTlsSource, NoTlsSource, StoredCertificates, StoredPem, TlsSource};

#[cfg(test)]
mod tests;

//! Where the config checker gets certificate bytes from. The caller supplies it: the data
//! plane reads files and the admin's certificate store; unit tests supply maps.

use std::collections::BTreeMap;

/// A certificate chain and its private key, PEM encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPem {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Certificates kept by the admin API's store (`/v1/certificates`, `/v1/clientcertificates`),
/// by id, as handed to a config check.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredCertificates {
    pub certificates: BTreeMap<String, StoredPem>,
    pub client_certificates: BTreeMap<String, StoredPem>,
    /// Why the store could not be read (`turnpike check` while a gateway holds it): an id
    /// not found is then a warning, not an error.
    pub unreadable: Option<String>,
}

/// Everything TLS-related a config check needs from outside the document.
pub trait TlsSource {
    /// The bytes of a file the config names (a certificate chain, a key, a truststore).
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
    /// A certificate uploaded through the admin API (`/v1/certificates`), by id.
    fn certificate(&self, id: &str) -> Option<StoredPem>;
    /// A client certificate generated through the admin API (`/v1/clientcertificates`), by id.
    fn client_certificate(&self, id: &str) -> Option<StoredPem>;
    /// Now, in seconds since the Unix epoch (for expiry checks).
    fn now(&self) -> i64;
    /// Why stored certificates could not be read, if they could not: ids are then not
    /// judged.
    fn stored_unreadable(&self) -> Option<&str> {
        None
    }
}

/// No files and no stored certificates: for checking documents without TLS.
#[derive(Debug, Default)]
pub struct NoTlsSource;

impl TlsSource for NoTlsSource {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!("{path}: files are not read in this check"))
    }

    fn certificate(&self, _: &str) -> Option<StoredPem> {
        None
    }

    fn client_certificate(&self, _: &str) -> Option<StoredPem> {
        None
    }

    fn now(&self) -> i64 {
        0
    }
}

/// Files and certificates from maps, with a fixed `now`: for tests.
#[derive(Debug, Default, Clone)]
pub struct MapTlsSource {
    pub files: BTreeMap<String, Vec<u8>>,
    pub certificates: BTreeMap<String, StoredPem>,
    pub client_certificates: BTreeMap<String, StoredPem>,
    pub now: i64,
}

impl TlsSource for MapTlsSource {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| format!("{path}: No such file or directory"))
    }

    fn certificate(&self, id: &str) -> Option<StoredPem> {
        self.certificates.get(id).cloned()
    }

    fn client_certificate(&self, id: &str) -> Option<StoredPem> {
        self.client_certificates.get(id).cloned()
    }

    fn now(&self) -> i64 {
        self.now
    }
}

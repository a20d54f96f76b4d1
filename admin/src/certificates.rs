//! Certificates as resources, the self-hosted counterparts of an imported ACM certificate
//! (`/v1/certificates`) and of an API Gateway REST client certificate
//! (`/v1/clientcertificates`): their stored records, the checks an import must pass, the
//! generation of a client certificate, what the API shows of each, and which parts of a
//! config document use one.
//!
//! No I/O and no clock: the caller passes `now` (seconds since the Unix epoch) and does the
//! storing ([`crate::db`]) and the serving ([`crate::api`]). A private key never leaves a
//! record through anything here: the JSON views have no field for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use turnpike_core::{
    config::ConfigFile,
    tls::{CertificateDetails, StoredCertificates, StoredPem, iso_time, parse_certificate},
};

use crate::db::{DbError, ResourceDb, Table};

/// Client certificates are valid this long from their creation (as API Gateway's are).
pub const CLIENT_CERTIFICATE_DAYS: i64 = 365;
/// Longest `name` or `description`, in bytes.
const MAX_LABEL: usize = 256;
/// Most tags on one resource (AWS's limit).
const MAX_TAGS: usize = 50;

/// An imported certificate as stored (table `certificates`, key = `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// PEM: the leaf first, then its intermediates.
    pub chain_pem: String,
    /// PEM: the private key. Never shown.
    pub key_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub imported_at: i64,
    /// When the chain and key were last replaced (`PUT`), seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<i64>,
}

/// A generated client certificate as stored (table `client_certificates`, key = its id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCertificateRecord {
    /// PEM: the self-signed certificate (public: backends download it to trust it).
    pub pem: String,
    /// PEM: its private key. Never shown.
    pub key_pem: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
}

/// The body of `POST /v1/certificates` and `PUT /v1/certificates/{id}`: our names
/// (`certificate_chain`: leaf and intermediates in one PEM, as in the config's
/// `certificates[]`) or AWS's (`certificateBody` the leaf, `certificateChain` the
/// intermediates, `privateKey` / `certificatePrivateKey`, `certificateName`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    #[serde(default)]
    pub certificate_chain: Option<String>,
    #[serde(default, rename = "certificateBody")]
    pub certificate_body: Option<String>,
    #[serde(default, rename = "certificateChain")]
    pub intermediates: Option<String>,
    #[serde(default, alias = "privateKey", alias = "certificatePrivateKey")]
    pub private_key: Option<String>,
    #[serde(default, alias = "certificateName")]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// What an import accepted: the PEMs to store, their details, and what is worth a warning.
#[derive(Debug)]
pub struct Imported {
    pub chain_pem: String,
    pub key_pem: String,
    pub name: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    pub details: CertificateDetails,
    pub warnings: Vec<String>,
}

/// Checks an import: a chain and a key are given (in one naming only), they parse, the key
/// matches the leaf and is of an accepted type and size, and the leaf has not expired at
/// `now`. A leaf not valid yet is accepted with a warning.
///
/// Errors: one sentence saying what is wrong, for a 400.
pub fn check_import(body: ImportBody, now: i64) -> Result<Imported, String> {
    let chain_pem = match (body.certificate_chain, body.certificate_body) {
        (Some(_), Some(_)) => {
            return Err("give certificate_chain or certificateBody, not both".to_owned());
        }
        (Some(chain), None) => {
            if body.intermediates.is_some() {
                return Err(
                    "certificateChain goes with certificateBody; certificate_chain already \
                     holds the intermediates"
                        .to_owned(),
                );
            }
            chain
        }
        (None, Some(leaf)) => match body.intermediates {
            Some(rest) => format!("{}\n{}", leaf.trim_end(), rest),
            None => leaf,
        },
        (None, None) => {
            return Err(
                "certificate_chain (PEM: the certificate, then its intermediates) is required"
                    .to_owned(),
            );
        }
    };
    let key_pem = body
        .private_key
        .ok_or_else(|| "private_key (PEM) is required".to_owned())?;
    check_label("name", body.name.as_deref())?;
    check_tags(body.tags.as_ref())?;
    let cert = parse_certificate(chain_pem.as_bytes(), key_pem.as_bytes())?;
    let details = cert.details;
    if details.not_after < now {
        return Err(format!(
            "the certificate expired on {}",
            iso_time(details.not_after)
        ));
    }
    let mut warnings = Vec::new();
    if details.not_before > now {
        warnings.push(format!(
            "the certificate is not valid before {}: clients refuse it until then",
            iso_time(details.not_before)
        ));
    }
    Ok(Imported {
        chain_pem,
        key_pem,
        name: body.name,
        tags: body.tags,
        details,
        warnings,
    })
}

/// The body of `POST /v1/clientcertificates`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// Makes a client certificate for `id`: a fresh ECDSA P-256 key and a self-signed
/// certificate with subject `CN=<id>`, the `clientAuth` extended key usage, a random 128-bit
/// serial, valid from `now` for [`CLIENT_CERTIFICATE_DAYS`].
///
/// Errors: the description or tags are refused, or key generation or signing failed.
pub fn generate_client_certificate(
    id: &str,
    body: GenerateBody,
    now: i64,
) -> Result<ClientCertificateRecord, String> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
    };

    check_label("description", body.description.as_deref())?;
    check_tags(body.tags.as_ref())?;
    let expires_at = now + CLIENT_CERTIFICATE_DAYS * 86_400;
    let time =
        |t: i64| time::OffsetDateTime::from_unix_timestamp(t).map_err(|e| format!("time {t}: {e}"));
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("generating a key pair: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, id);
    params.distinguished_name = dn;
    params.not_before = time(now)?;
    params.not_after = time(expires_at)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| format!("random serial: {e}"))?;
    // Positive and of full length (DER integers are signed; a leading zero byte would be
    // dropped).
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    let record = ClientCertificateRecord {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        description: body.description.unwrap_or_default(),
        tags: body.tags.unwrap_or_default(),
        created_at: now,
        expires_at,
    };
    // What the config check will do with it when a stage names it: better to fail here.
    parse_certificate(record.pem.as_bytes(), record.key_pem.as_bytes())
        .map_err(|e| format!("the generated certificate does not check: {e}"))?;
    Ok(record)
}

fn check_label(field: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        Some(v) if v.len() > MAX_LABEL => Err(format!(
            "{field} is {} bytes long; at most {MAX_LABEL}",
            v.len()
        )),
        Some(v) if v.chars().any(char::is_control) => {
            Err(format!("{field} holds control characters"))
        }
        _ => Ok(()),
    }
}

fn check_tags(tags: Option<&BTreeMap<String, String>>) -> Result<(), String> {
    let Some(tags) = tags else { return Ok(()) };
    if tags.len() > MAX_TAGS {
        return Err(format!("{} tags; at most {MAX_TAGS}", tags.len()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(format!(
                "tag {k:?}: keys are 1 to 128 bytes, values at most 256"
            ));
        }
    }
    Ok(())
}

/// What `GET /v1/certificates/{id}` shows (`with_chain`: the chain's PEM too, which is
/// public; lists leave it out). Never the key.
pub fn certificate_json(
    id: &str,
    record: &CertificateRecord,
    in_use_by: &[String],
    with_chain: bool,
) -> Value {
    let mut v = json!({
        "id": id,
        "name": record.name,
        "tags": record.tags,
        "imported_at": iso_time(record.imported_at),
        "in_use_by": in_use_by,
    });
    if let Some(at) = record.rotated_at {
        v["rotated_at"] = json!(iso_time(at));
    }
    // Checked on import, so this parses; a record damaged since says so instead of failing
    // the whole list.
    match parse_certificate(record.chain_pem.as_bytes(), record.key_pem.as_bytes()) {
        Ok(cert) => {
            let d = cert.details;
            v["subject"] = json!(d.subject);
            v["sans"] = json!(d.sans);
            v["issuer"] = json!(d.issuer);
            v["serial"] = json!(d.serial);
            v["not_before"] = json!(iso_time(d.not_before));
            v["not_after"] = json!(iso_time(d.not_after));
            v["fingerprint_sha256"] = json!(d.fingerprint_sha256);
            v["key_type"] = json!(d.key_type);
            v["chain_len"] = json!(d.chain_len);
        }
        Err(e) => v["error"] = json!(e),
    }
    if with_chain {
        v["certificate_chain"] = json!(record.chain_pem);
    }
    v
}

/// What `/v1/clientcertificates` shows: API Gateway REST's `ClientCertificate` shape (dates
/// as ISO 8601), with `in_use_by`. Never the key.
pub fn client_certificate_json(
    id: &str,
    record: &ClientCertificateRecord,
    in_use_by: &[String],
) -> Value {
    json!({
        "clientCertificateId": id,
        "description": record.description,
        "pemEncodedCertificate": record.pem,
        "createdDate": iso_time(record.created_at),
        "expirationDate": iso_time(record.expires_at),
        "tags": record.tags,
        "in_use_by": in_use_by,
    })
}

/// Where `doc` uses the stored certificate `id`: `gateway.tls` and the names of the domains
/// that name it. A `certificates[]` entry named like the id shadows the stored one (the check
/// resolves names there first), so then nothing uses the stored one.
pub fn certificate_users(doc: &ConfigFile, id: &str) -> Vec<String> {
    if doc.certificates.iter().any(|c| c.name == id) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if doc
        .gateway
        .tls
        .as_ref()
        .is_some_and(|t| t.certificate.as_deref() == Some(id))
    {
        out.push("gateway.tls".to_owned());
    }
    for d in &doc.domains {
        if d.certificate.as_deref() == Some(id) {
            out.push(d.name.clone());
        }
    }
    out
}

/// Where `doc` uses the client certificate `id`: `<api>/<stage>` of every stage naming it.
pub fn client_certificate_users(doc: &ConfigFile, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for api in &doc.apis {
        for stage in &api.stages {
            if stage.client_certificate.as_deref() == Some(id) {
                out.push(format!("{}/{}", api.name, stage.name));
            }
        }
    }
    out
}

/// The stored resources `doc` names: certificate ids (`gateway.tls.certificate` and
/// `domains[].certificate` values that are no `certificates[]` name) and client certificate
/// ids (stages' `client_certificate`), sorted, each once. A document naming none can be
/// checked without the resource store.
pub fn stored_ids_named(doc: &ConfigFile) -> (Vec<String>, Vec<String>) {
    let file_names: Vec<&str> = doc.certificates.iter().map(|c| c.name.as_str()).collect();
    let mut certs: Vec<String> = doc
        .gateway
        .tls
        .as_ref()
        .and_then(|t| t.certificate.as_ref())
        .into_iter()
        .chain(doc.domains.iter().filter_map(|d| d.certificate.as_ref()))
        .filter(|n| !file_names.contains(&n.as_str()))
        .cloned()
        .collect();
    let mut clients: Vec<String> = doc
        .apis
        .iter()
        .flat_map(|a| a.stages.iter().filter_map(|s| s.client_certificate.clone()))
        .collect();
    for v in [&mut certs, &mut clients] {
        v.sort();
        v.dedup();
    }
    (certs, clients)
}

/// The ids `doc` names (see [`stored_ids_named`]) that `stored` does not hold.
pub fn unknown_ids(doc: &ConfigFile, stored: &StoredCertificates) -> Vec<String> {
    let (certs, clients) = stored_ids_named(doc);
    certs
        .into_iter()
        .filter(|id| !stored.certificates.contains_key(id))
        .chain(
            clients
                .into_iter()
                .filter(|id| !stored.client_certificates.contains_key(id)),
        )
        .collect()
}

/// Every stored certificate and client certificate, as a config check takes them.
pub fn load_stored(db: &ResourceDb) -> Result<StoredCertificates, DbError> {
    let mut stored = StoredCertificates::default();
    for (id, r) in db.list::<CertificateRecord>(Table::Certificates)? {
        stored.certificates.insert(
            id,
            StoredPem {
                chain_pem: r.chain_pem,
                key_pem: r.key_pem,
            },
        );
    }
    for (id, r) in db.list::<ClientCertificateRecord>(Table::ClientCertificates)? {
        stored.client_certificates.insert(
            id,
            StoredPem {
                chain_pem: r.pem,
                key_pem: r.key_pem,
            },
        );
    }
    Ok(stored)
}

#[cfg(test)]
mod tests;

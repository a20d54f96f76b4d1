//! `/v1/certificates` and `/v1/clientcertificates`: requests to responses.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/certificates` | 200 `{"certificates": [details..]}` |
//! | `POST /v1/certificates` (import) | 201 details (+ `warnings`); 400 with the reason |
//! | `GET /v1/certificates/{id}` | 200 details with `certificate_chain`; 404 |
//! | `PUT /v1/certificates/{id}` (rotate) | 200 details (+ `config_version` when the running config was republished); 400; 404 |
//! | `DELETE /v1/certificates/{id}` | 204; 409 with `in_use_by` while the running config names it; 404 |
//! | `GET /v1/clientcertificates` | 200 `{"item": [..]}` |
//! | `POST /v1/clientcertificates` (generate) | 201 `{clientCertificateId, description, pemEncodedCertificate, createdDate, expirationDate, ..}` |
//! | `GET /v1/clientcertificates/{id}` | 200; 404 |
//! | `DELETE /v1/clientcertificates/{id}` | 204; 409 while a stage names it; 404 |
//!
//! Every write is durable (a committed store transaction) before it is answered. No answer
//! carries a private key.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use turnpike_core::tls::StoredPem;

use super::{Admin, Response, State};
use crate::{
    certificates::{
        CertificateRecord, ClientCertificateRecord, GenerateBody, ImportBody, certificate_json,
        certificate_users, check_import, client_certificate_json, client_certificate_users,
        generate_client_certificate,
    },
    db::{
        DbError, Table,
        ids::{certificate_id, client_certificate_id, is_certificate_id, is_client_certificate_id},
    },
    plane::DataPlane,
};

/// Fresh ids tried before giving up (a clash is already one in 2^51).
const ID_TRIES: usize = 5;

impl<P: DataPlane> Admin<P> {
    pub(super) fn certificates(&self, st: &mut State<P>, req: &super::Request) -> Response {
        let id = req.path["/v1/certificates".len()..].strip_prefix('/');
        match (req.method, id) {
            ("GET" | "HEAD", None) => list_certificates(st),
            ("POST", None) => import(st, req),
            (_, None) => Response::message(405, "Method Not Allowed"),
            (_, Some(id)) if !is_certificate_id(id) => no_certificate(id),
            ("GET" | "HEAD", Some(id)) => show_certificate(st, id),
            ("PUT", Some(id)) => self.rotate(st, id, req),
            ("DELETE", Some(id)) => delete_certificate(st, id),
            _ => Response::message(405, "Method Not Allowed"),
        }
    }

    pub(super) fn client_certificates(&self, st: &mut State<P>, req: &super::Request) -> Response {
        let id = req.path["/v1/clientcertificates".len()..].strip_prefix('/');
        match (req.method, id) {
            ("GET" | "HEAD", None) => list_client_certificates(st),
            ("POST", None) => generate(st, req),
            (_, None) => Response::message(405, "Method Not Allowed"),
            (_, Some(id)) if !is_client_certificate_id(id) => no_client_certificate(id),
            ("GET" | "HEAD", Some(id)) => show_client_certificate(st, id),
            ("DELETE", Some(id)) => delete_client_certificate(st, id),
            _ => Response::message(405, "Method Not Allowed"),
        }
    }

    /// Replaces a certificate's chain and key under the same id. When the running config
    /// names it, the config is checked with the new certificate first (a certificate that
    /// no longer covers a domain is refused with the domain's field path), and after the
    /// store commit it is published as a new version (source `certificate:<id>`), so new
    /// handshakes present the new certificate and open connections are kept.
    fn rotate(&self, st: &mut State<P>, id: &str, req: &super::Request) -> Response {
        let old: CertificateRecord = match st.resources.get(Table::Certificates, id) {
            Ok(Some(r)) => r,
            Ok(None) => return no_certificate(id),
            Err(e) => return store_failed(&e),
        };
        let body: ImportBody = match json_body(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let now = now_unix();
        let imported = match check_import(body, now) {
            Ok(i) => i,
            Err(e) => return Response::message(400, e),
        };
        let record = CertificateRecord {
            chain_pem: imported.chain_pem,
            key_pem: imported.key_pem,
            name: imported.name.or(old.name),
            tags: imported.tags.unwrap_or(old.tags),
            imported_at: old.imported_at,
            rotated_at: Some(now),
        };
        let mut candidate = st.stored.clone();
        candidate
            .certificates
            .insert(id.to_owned(), pem_of(&record));
        let users = certificate_users(&st.current, id);
        let doc = st.current.clone();
        let prepared = if users.is_empty() {
            None
        } else {
            match self.prepare(st, &doc, Some(&candidate)) {
                Ok(p) => Some(p),
                Err(e) => return Response::edit_error(e),
            }
        };
        if let Err(e) = st.resources.put(Table::Certificates, id, &record) {
            return store_failed(&e);
        }
        st.stored = candidate;
        let mut shown = certificate_json(id, &record, &users, true);
        if let Some(p) = prepared {
            match self.commit(st, doc, &format!("certificate:{id}"), p) {
                Ok(applied) => shown["config_version"] = json!(applied.meta.version),
                // The certificate is stored; the running config still serves the old one
                // until the next change or restart.
                Err(e) => {
                    return Response::message(
                        500,
                        format!(
                            "certificate {id} was stored, but the running config was not \
                             republished with it: {}",
                            e.message
                        ),
                    );
                }
            }
        }
        if !imported.warnings.is_empty() {
            shown["warnings"] = json!(imported.warnings);
        }
        Response::json(200, &shown)
    }
}

fn list_certificates<P: DataPlane>(st: &State<P>) -> Response {
    match st.resources.list::<CertificateRecord>(Table::Certificates) {
        Ok(all) => {
            let shown: Vec<Value> = all
                .iter()
                .map(|(id, r)| certificate_json(id, r, &certificate_users(&st.current, id), false))
                .collect();
            Response::json(200, &json!({ "certificates": shown }))
        }
        Err(e) => store_failed(&e),
    }
}

fn show_certificate<P: DataPlane>(st: &State<P>, id: &str) -> Response {
    match st
        .resources
        .get::<CertificateRecord>(Table::Certificates, id)
    {
        Ok(Some(r)) => Response::json(
            200,
            &certificate_json(id, &r, &certificate_users(&st.current, id), true),
        ),
        Ok(None) => no_certificate(id),
        Err(e) => store_failed(&e),
    }
}

fn import<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let body: ImportBody = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = now_unix();
    let imported = match check_import(body, now) {
        Ok(i) => i,
        Err(e) => return Response::message(400, e),
    };
    let record = CertificateRecord {
        chain_pem: imported.chain_pem,
        key_pem: imported.key_pem,
        name: imported.name,
        tags: imported.tags.unwrap_or_default(),
        imported_at: now,
        rotated_at: None,
    };
    for _ in 0..ID_TRIES {
        let id = match certificate_id() {
            Ok(id) => id,
            Err(e) => return Response::message(500, format!("no random id: {e}")),
        };
        match st.resources.insert_new(Table::Certificates, &id, &record) {
            Ok(true) => {
                st.stored.certificates.insert(id.clone(), pem_of(&record));
                tracing::info!(id, subject = %imported.details.subject, "certificate imported");
                let mut shown = certificate_json(&id, &record, &[], true);
                if !imported.warnings.is_empty() {
                    shown["warnings"] = json!(imported.warnings);
                }
                return Response::json(201, &shown);
            }
            Ok(false) => continue,
            Err(e) => return store_failed(&e),
        }
    }
    Response::message(500, "no unused certificate id found")
}

fn delete_certificate<P: DataPlane>(st: &mut State<P>, id: &str) -> Response {
    let users = certificate_users(&st.current, id);
    if !users.is_empty() {
        return in_use(format!("certificate {id}"), users);
    }
    match st.resources.remove(Table::Certificates, id) {
        Ok(true) => {
            st.stored.certificates.remove(id);
            tracing::info!(id, "certificate deleted");
            Response::no_content()
        }
        Ok(false) => no_certificate(id),
        Err(e) => store_failed(&e),
    }
}

fn list_client_certificates<P: DataPlane>(st: &State<P>) -> Response {
    match st
        .resources
        .list::<ClientCertificateRecord>(Table::ClientCertificates)
    {
        Ok(all) => {
            let shown: Vec<Value> = all
                .iter()
                .map(|(id, r)| {
                    client_certificate_json(id, r, &client_certificate_users(&st.current, id))
                })
                .collect();
            Response::json(200, &json!({ "item": shown }))
        }
        Err(e) => store_failed(&e),
    }
}

fn show_client_certificate<P: DataPlane>(st: &State<P>, id: &str) -> Response {
    match st
        .resources
        .get::<ClientCertificateRecord>(Table::ClientCertificates, id)
    {
        Ok(Some(r)) => Response::json(
            200,
            &client_certificate_json(id, &r, &client_certificate_users(&st.current, id)),
        ),
        Ok(None) => no_client_certificate(id),
        Err(e) => store_failed(&e),
    }
}

fn generate<P: DataPlane>(st: &mut State<P>, req: &super::Request) -> Response {
    let body: GenerateBody = if req.body.iter().all(u8::is_ascii_whitespace) {
        GenerateBody::default()
    } else {
        match json_body(req) {
            Ok(b) => b,
            Err(r) => return r,
        }
    };
    let now = now_unix();
    for _ in 0..ID_TRIES {
        let id = match client_certificate_id() {
            Ok(id) => id,
            Err(e) => return Response::message(500, format!("no random id: {e}")),
        };
        // The certificate carries its id (CN), so a clash means generating again.
        let record = match generate_client_certificate(&id, body.clone(), now) {
            Ok(r) => r,
            Err(e) => return Response::message(400, e),
        };
        match st
            .resources
            .insert_new(Table::ClientCertificates, &id, &record)
        {
            Ok(true) => {
                st.stored.client_certificates.insert(
                    id.clone(),
                    StoredPem {
                        chain_pem: record.pem.clone(),
                        key_pem: record.key_pem.clone(),
                    },
                );
                tracing::info!(id, "client certificate generated");
                return Response::json(201, &client_certificate_json(&id, &record, &[]));
            }
            Ok(false) => continue,
            Err(e) => return store_failed(&e),
        }
    }
    Response::message(500, "no unused client certificate id found")
}

fn delete_client_certificate<P: DataPlane>(st: &mut State<P>, id: &str) -> Response {
    let users = client_certificate_users(&st.current, id);
    if !users.is_empty() {
        return in_use(format!("client certificate {id}"), users);
    }
    match st.resources.remove(Table::ClientCertificates, id) {
        Ok(true) => {
            st.stored.client_certificates.remove(id);
            tracing::info!(id, "client certificate deleted");
            Response::no_content()
        }
        Ok(false) => no_client_certificate(id),
        Err(e) => store_failed(&e),
    }
}

fn pem_of(r: &CertificateRecord) -> StoredPem {
    StoredPem {
        chain_pem: r.chain_pem.clone(),
        key_pem: r.key_pem.clone(),
    }
}

/// A JSON body as `T`; 400 with serde's reason (an unknown field is named) otherwise.
fn json_body<T: DeserializeOwned>(req: &super::Request) -> Result<T, Response> {
    serde_json::from_slice(req.body)
        .map_err(|e| Response::message(400, format!("the body is not the expected JSON: {e}")))
}

fn in_use(what: String, users: Vec<String>) -> Response {
    Response::json(
        409,
        &json!({
            "message": format!(
                "{what} is in use by the running config ({}); change the config first",
                users.join(", ")
            ),
            "in_use_by": users,
        }),
    )
}

fn no_certificate(id: &str) -> Response {
    Response::message(404, format!("no certificate {id:?}"))
}

fn no_client_certificate(id: &str) -> Response {
    Response::message(404, format!("no client certificate {id:?}"))
}

pub(super) fn store_failed(e: &DbError) -> Response {
    tracing::error!("resource store: {e}");
    Response::message(500, format!("the resource store failed: {e}"))
}

/// Seconds since the Unix epoch (0 on a clock before 1970: a broken host, which then sees
/// every certificate as not yet valid rather than a refusal).
pub(super) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

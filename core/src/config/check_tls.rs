//! The TLS parts of a config check: `certificates[]`, `gateway.tls`, `domains[]`'s
//! certificate, security policy and mutual TLS, stages' client certificates and integrations'
//! `tls_config`. File contents and stored certificates come from the caller's [`TlsSource`].

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use super::{
    ConfigFile,
    check::Checker,
    model::{Api, DomainTls, IntegrationKind, Listener, TlsConfig, UpstreamTls},
};
use crate::tls::{
    Certificate, SecurityPolicy, TlsSource, Truststore, covers, iso_time,
    material::{parse_certificate, parse_truststore},
};

/// Certificates as they are resolved: by the name the config uses.
struct Certs<'s> {
    src: &'s dyn TlsSource,
    list: Vec<(String, Arc<Certificate>)>,
    by_name: HashMap<String, u32>,
    /// `certificates[]` names whose files were refused (already reported).
    refused: HashSet<String>,
}

impl Checker {
    /// Checks every TLS setting of `file` and returns what the listeners serve; fills in the
    /// stages' client certificates and the integrations' backend TLS in `apis`.
    pub(super) fn tls(
        &mut self,
        file: &ConfigFile,
        listen: &[Listener],
        apis: &mut [Api],
        src: &dyn TlsSource,
    ) -> TlsConfig {
        let mut certs = Certs {
            src,
            list: Vec::new(),
            by_name: HashMap::new(),
            refused: HashSet::new(),
        };
        for (i, c) in file.certificates.iter().enumerate() {
            let at = format!("certificates[{i}]");
            if c.name.is_empty() || certs.by_name.contains_key(&c.name) {
                self.err(
                    format!("{at}.name"),
                    format!("{:?} is empty or already the name of a certificate", c.name),
                );
                continue;
            }
            let chain = src
                .read(&c.certificate_chain)
                .map_err(|e| self.err(format!("{at}.certificate_chain"), e))
                .ok();
            let key = src
                .read(&c.private_key)
                .map_err(|e| self.err(format!("{at}.private_key"), e))
                .ok();
            let cert = match (chain, key) {
                (Some(chain), Some(key)) => self.certificate(&at, &chain, &key, src.now()),
                _ => None,
            };
            match cert {
                Some(cert) => {
                    certs.add(&c.name, cert);
                }
                None => {
                    certs.refused.insert(c.name.clone());
                }
            }
        }

        let gw = file.gateway.tls.clone().unwrap_or_default();
        let default_policy = match &gw.security_policy {
            Some(p) => SecurityPolicy::parse(p)
                .map_err(|e| self.err("gateway.tls.security_policy", e))
                .unwrap_or_default(),
            None => SecurityPolicy::default(),
        };
        let default = gw.certificate.as_ref().and_then(|name| {
            let certificate = self.resolve(&mut certs, "gateway.tls.certificate", name)?;
            Some(DomainTls {
                certificate,
                policy: default_policy,
                truststore: None,
            })
        });

        let mut domains = Vec::new();
        for (i, d) in file.domains.iter().enumerate() {
            let at = format!("domains[{i}]");
            if d.certificate.is_none() && d.security_policy.is_none() && d.mutual_tls.is_none() {
                continue;
            }
            let certificate = match &d.certificate {
                Some(name) => self.resolve(&mut certs, &format!("{at}.certificate"), name),
                None => match &default {
                    Some(t) => Some(t.certificate),
                    None => {
                        self.err(
                            format!("{at}.certificate"),
                            "a domain with a security policy or mutual TLS needs a certificate \
                             (here or in gateway.tls.certificate)",
                        );
                        None
                    }
                },
            };
            let policy = match &d.security_policy {
                Some(p) => SecurityPolicy::parse(p)
                    .map_err(|e| self.err(format!("{at}.security_policy"), e))
                    .unwrap_or_default(),
                None => default_policy,
            };
            let truststore = d.mutual_tls.as_ref().and_then(|m| {
                self.truststore(&format!("{at}.mutual_tls.truststore"), &m.truststore, src)
            });
            let Some(certificate) = certificate else {
                continue;
            };
            let (cert_name, cert) = &certs.list[certificate as usize];
            if !covers(&cert.details.sans, &d.name) {
                self.err(
                    format!("{at}.certificate"),
                    format!(
                        "certificate {cert_name:?} does not cover {:?} (its names: {})",
                        d.name,
                        cert.details.sans.join(", ")
                    ),
                );
            }
            domains.push((
                d.name.to_ascii_lowercase(),
                DomainTls {
                    certificate,
                    policy,
                    truststore,
                },
            ));
        }

        let https: Vec<usize> = (0..listen.len()).filter(|&i| listen[i].tls).collect();
        if let Some(&i) = https.first()
            && default.is_none()
            && domains.is_empty()
            && src.stored_unreadable().is_none()
        {
            self.err(
                format!("gateway.listen[{i}]"),
                "an https:// listener needs a certificate: set gateway.tls.certificate or a \
                 domain's certificate",
            );
        }
        if https.is_empty() && (default.is_some() || !domains.is_empty()) {
            self.warn(
                "gateway.listen",
                "certificates are configured but no listener is https://, so none is served",
            );
        }

        self.backend_tls(file, apis, src);
        TlsConfig {
            certificates: certs.list,
            default,
            domains,
        }
    }

    /// A parsed certificate, with its dates judged against `now`.
    fn certificate(
        &mut self,
        at: &str,
        chain: &[u8],
        key: &[u8],
        now: i64,
    ) -> Option<Arc<Certificate>> {
        let cert = parse_certificate(chain, key)
            .map_err(|e| self.err(at.to_owned(), e))
            .ok()?;
        if cert.details.not_after < now {
            self.err(
                at.to_owned(),
                format!(
                    "the certificate expired on {}",
                    iso_time(cert.details.not_after)
                ),
            );
            return None;
        }
        if cert.details.not_before > now {
            self.warn(
                at.to_owned(),
                format!(
                    "the certificate is not valid before {}: clients refuse it until then",
                    iso_time(cert.details.not_before)
                ),
            );
        }
        Some(Arc::new(cert))
    }

    /// A certificate by the name the config uses: a `certificates[]` name, else a stored
    /// certificate's id.
    fn resolve(&mut self, certs: &mut Certs, at: &str, name: &str) -> Option<u32> {
        if let Some(&i) = certs.by_name.get(name) {
            return Some(i);
        }
        if certs.refused.contains(name) {
            // Its own error says why; "no certificate" here would only mislead.
            return None;
        }
        let Some(pem) = certs.src.certificate(name) else {
            if let Some(why) = certs.src.stored_unreadable() {
                self.warn(
                    at.to_owned(),
                    format!("stored certificate {name:?} not checked: {why}"),
                );
                return None;
            }
            self.err(
                at.to_owned(),
                format!(
                    "no certificate {name:?}: neither a certificates[] name nor a stored \
                     certificate id"
                ),
            );
            return None;
        };
        let cert = self.certificate(
            at,
            pem.chain_pem.as_bytes(),
            pem.key_pem.as_bytes(),
            certs.src.now(),
        )?;
        Some(certs.add(name, cert))
    }

    fn truststore(&mut self, at: &str, path: &str, src: &dyn TlsSource) -> Option<Arc<Truststore>> {
        let pem = src
            .read(path)
            .map_err(|e| self.err(at.to_owned(), e))
            .ok()?;
        parse_truststore(&pem)
            .map_err(|e| self.err(at.to_owned(), format!("{path}: {e}")))
            .ok()
            .map(Arc::new)
    }

    /// Stages' client certificates and http_proxy integrations' `tls_config`.
    fn backend_tls(&mut self, file: &ConfigFile, apis: &mut [Api], src: &dyn TlsSource) {
        if apis.len() != file.apis.len() {
            // An API already failed its check; the indices no longer line up.
            return;
        }
        for (a, (fa, api)) in file.apis.iter().zip(apis.iter_mut()).enumerate() {
            for (s, (fs, stage)) in fa.stages.iter().zip(api.stages.iter_mut()).enumerate() {
                let Some(id) = &fs.client_certificate else {
                    continue;
                };
                let at = format!("apis[{a}].stages[{s}].client_certificate");
                match src.client_certificate(id) {
                    None => self.err(at, format!("no client certificate with id {id:?}")),
                    Some(pem) => {
                        if let Some(cert) = self.certificate(
                            &at,
                            pem.chain_pem.as_bytes(),
                            pem.key_pem.as_bytes(),
                            src.now(),
                        ) {
                            stage.client_certificate = Some((id.clone(), cert));
                        }
                    }
                }
            }
            for (name, fi) in &fa.integrations {
                let at = format!("apis[{a}].integrations.{name}.tls_config");
                let Some(integration) = api.integrations.iter_mut().find(|i| &i.name == name)
                else {
                    continue;
                };
                let IntegrationKind::HttpProxy(p) = &mut integration.kind else {
                    if fi.tls_config.is_some() {
                        self.err(at, "not a field of type mock");
                    }
                    continue;
                };
                let Some(tls) = &mut p.tls else {
                    if fi.tls_config.is_some() {
                        self.err(at, "tls_config applies to https:// URIs only");
                    }
                    continue;
                };
                let Some(conf) = &fi.tls_config else {
                    continue;
                };
                *tls = UpstreamTls {
                    server_name: conf.server_name_to_verify.clone(),
                    ca_bundle: conf
                        .ca_bundle
                        .as_ref()
                        .and_then(|path| self.truststore(&format!("{at}.ca_bundle"), path, src)),
                    insecure_skip_verification: conf.insecure_skip_verification,
                };
                if let Some(n) = &conf.server_name_to_verify
                    && rustls::pki_types::ServerName::try_from(n.as_str()).is_err()
                {
                    self.err(
                        format!("{at}.server_name_to_verify"),
                        format!("{n:?} is not a DNS name or IP address"),
                    );
                }
                if conf.insecure_skip_verification {
                    self.warn(
                        format!("{at}.insecure_skip_verification"),
                        "the backend's certificate is not verified: any server can stand in \
                         for it (for test backends only)",
                    );
                }
                if conf.insecure_skip_verification && conf.ca_bundle.is_some() {
                    self.warn(
                        format!("{at}.ca_bundle"),
                        "ignored: insecure_skip_verification accepts any certificate",
                    );
                }
            }
        }
    }
}

impl Certs<'_> {
    fn add(&mut self, name: &str, cert: Arc<Certificate>) -> u32 {
        let i = self.list.len() as u32;
        self.list.push((name.to_owned(), cert));
        self.by_name.insert(name.to_owned(), i);
        i
    }
}

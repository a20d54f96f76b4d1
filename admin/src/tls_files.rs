//! The TLS files a config names (certificate chains, private keys, truststores, CA bundles),
//! and the watch that re-publishes the running config when one changes on disk.
//!
//! Two triggers lead to [`Admin::reload_tls_files`]: SIGHUP (wired in the binary) and
//! [`spawn_watch`], a thread that stats every named file every [`WATCH_PERIOD`] and calls it
//! when a file's inode, size, mtime or ctime moved. The reload itself compares file contents
//! with those the running config was built from, so a trigger with nothing new (a logrotate
//! SIGHUP, a `touch`) costs a few reads and changes nothing.

use std::{os::unix::fs::MetadataExt, sync::Arc, thread, time::Duration};

use turnpike_core::config::ConfigFile;

use crate::{api::Admin, plane::DataPlane};

/// How often [`spawn_watch`] looks at the files.
pub const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// The paths of every TLS file `doc` names, sorted, each once: `certificates[]`' chains and
/// keys, `domains[].mutual_tls.truststore`, integrations' `tls_config.ca_bundle`.
pub fn paths(doc: &ConfigFile) -> Vec<String> {
    let mut out = Vec::new();
    for c in &doc.certificates {
        out.push(c.certificate_chain.clone());
        out.push(c.private_key.clone());
    }
    for d in &doc.domains {
        if let Some(m) = &d.mutual_tls {
            out.push(m.truststore.clone());
        }
    }
    for api in &doc.apis {
        for i in api.integrations.values() {
            if let Some(bundle) = i.tls_config.as_ref().and_then(|t| t.ca_bundle.as_ref()) {
                out.push(bundle.clone());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Each path with its bytes, or `None` where it cannot be read (the check reports why).
pub type Contents = Vec<(String, Option<Vec<u8>>)>;

/// Reads every path (blocking; the files are small).
pub fn read(paths: &[String]) -> Contents {
    paths
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).ok()))
        .collect()
}

/// What a stat says about a file that changes when it is rewritten or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

/// Stats every path, following symlinks (certbot's `live/` links and Kubernetes' secret
/// mounts swap a link's target); `None` for a path that cannot be stat'ed.
pub fn stamps(paths: &[String]) -> Vec<(String, Option<Stamp>)> {
    paths
        .iter()
        .map(|p| {
            let stamp = std::fs::metadata(p).ok().map(|m| Stamp {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            });
            (p.clone(), stamp)
        })
        .collect()
}

/// Starts the thread that stats the running config's TLS files every `every` and asks
/// `admin` to reload them when one changed. It runs for the life of the process.
///
/// Errors: the thread could not be started.
pub fn spawn_watch<P: DataPlane>(admin: Arc<Admin<P>>, every: Duration) -> std::io::Result<()> {
    thread::Builder::new()
        .name("turnpike-tls-watch".into())
        .spawn(move || {
            let mut last = stamps(&admin.tls_file_paths());
            // A file changed between the start-up check and the first stat: nothing would
            // move the stamps again, so compare contents once.
            admin.reload_tls_files("start");
            loop {
                thread::sleep(every);
                let now = stamps(&admin.tls_file_paths());
                // A config that names other files also lands here; the reload then finds
                // the contents it was built from and does nothing.
                if now != last {
                    admin.reload_tls_files("a TLS file changed");
                }
                last = now;
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use turnpike_core::config::parse;

    use super::*;

    #[test]
    fn paths_are_every_tls_file_once() {
        let doc = parse(
            r#"
certificates:
  - { name: a, certificate_chain: /etc/a.pem, private_key: /etc/a.key }
  - { name: b, certificate_chain: /etc/b.pem, private_key: /etc/a.key }
domains:
  - { name: x.example.com, certificate: a, mutual_tls: { truststore: /etc/ca.pem }, mappings: [ { api: s, stage: p } ] }
apis:
  - name: s
    integrations:
      up: { type: http_proxy, uri: "https://127.0.0.1:9000", tls_config: { ca_bundle: /etc/ca.pem } }
      m: { type: mock }
    routes: [ { key: "$default", integration: up } ]
    stages: [ { name: p } ]
"#,
        )
        .expect("doc");
        assert_eq!(
            paths(&doc),
            ["/etc/a.key", "/etc/a.pem", "/etc/b.pem", "/etc/ca.pem"]
        );
    }

    #[test]
    fn stamps_move_when_a_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.pem");
        std::fs::write(&p, "one").expect("write");
        let paths = vec![p.display().to_string()];
        let first = stamps(&paths);
        assert!(first[0].1.is_some());
        let tmp = dir.path().join("c.pem.new");
        std::fs::write(&tmp, "two").expect("write");
        std::fs::rename(&tmp, &p).expect("rename");
        assert_ne!(stamps(&paths), first, "a new inode");
        std::fs::remove_file(&p).expect("rm");
        assert_eq!(stamps(&paths)[0].1, None);
        assert_eq!(read(&paths)[0].1, None);
    }
}

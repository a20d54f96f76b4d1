//! Which config a starting gateway serves.
//!
//! The config file (or the embedded default) seeds the first start and is stored as a `seed`
//! version. Once a config has been applied through the admin API, the state directory holds
//! the truth: a restart serves the newest stored version and ignores the file (saying so at
//! WARN when the file differs from it), unless `--replace-state` sets the stored versions
//! aside. SIGHUP applies the file as a new version (`Admin::reload_config_file`). While only seeds are stored, an
//! edited file is picked up at the next start.

use turnpike_core::config::ConfigFile;

use crate::store::{ConfigStore, StoreError};

/// The config to serve, its version, and a note for the log when the file was not used.
#[derive(Debug)]
pub struct Startup {
    pub document: ConfigFile,
    pub version: u64,
    pub note: Option<String>,
}

pub fn choose(
    store: &mut ConfigStore,
    seed: &ConfigFile,
    seed_name: &str,
    replace_state: bool,
) -> Result<Startup, StoreError> {
    if replace_state {
        store.set_aside()?;
    }
    match store.latest()? {
        Some(stored) if stored.meta.source != "seed" => Ok(Startup {
            note: (stored.document != *seed).then(|| {
                format!(
                    "{seed_name} differs from the stored config version {} (source {:?}), which \
                     is what serves: apply the file with `systemctl reload turnpike` (SIGHUP) or \
                     `turnpike admin put {seed_name}` once running, or start over from it with \
                     --replace-state",
                    stored.meta.version, stored.meta.source
                )
            }),
            version: stored.meta.version,
            document: stored.document,
        }),
        Some(stored) if stored.document == *seed => Ok(Startup {
            version: stored.meta.version,
            document: stored.document,
            note: None,
        }),
        _ => {
            let meta = store.append(seed, "seed")?;
            Ok(Startup {
                document: seed.clone(),
                version: meta.version,
                note: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use turnpike_core::config::parse;

    use super::*;

    fn doc(body: &str) -> ConfigFile {
        parse(&format!(
            "apis:\n  - name: a\n    integrations: {{ m: {{ type: mock, body: {body} }} }}\n    routes: [ {{ key: '$default', integration: m }} ]\n    stages: [ {{ name: $default }} ]\n"
        ))
        .expect("doc")
    }

    #[test]
    fn seeds_then_follows_the_file_until_the_api_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = ConfigStore::open(dir.path(), 10).expect("store");
        let first = choose(&mut store, &doc("one"), "f.yaml", false).expect("first");
        assert_eq!((first.version, first.note.is_none()), (1, true));
        let same = choose(&mut store, &doc("one"), "f.yaml", false).expect("same");
        assert_eq!(same.version, 1, "an unchanged seed is not stored again");
        let edited = choose(&mut store, &doc("two"), "f.yaml", false).expect("edited");
        assert_eq!((edited.version, edited.document), (2, doc("two")));

        store.append(&doc("api"), "api").expect("api write");
        let after = choose(&mut store, &doc("three"), "f.yaml", false).expect("after api");
        assert_eq!(
            after.document,
            doc("api"),
            "the state directory holds the truth"
        );
        assert!(
            after
                .note
                .as_deref()
                .is_some_and(|n| n.contains("--replace-state"))
        );

        let same_as_stored = choose(&mut store, &doc("api"), "f.yaml", false).expect("same");
        assert!(
            same_as_stored.note.is_none(),
            "a file that holds the stored config is no news"
        );

        let replaced = choose(&mut store, &doc("three"), "f.yaml", true).expect("replace");
        assert_eq!(replaced.document, doc("three"));
        assert!(
            replaced.version > after.version,
            "version numbers keep growing"
        );
    }
}

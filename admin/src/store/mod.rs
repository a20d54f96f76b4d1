//! The config store: every config the admin API accepts, kept durably as a numbered version in
//! the state directory, so a restart serves the last applied config and an operator can roll
//! back to any of the newest `keep` versions.
//!
//! Layout, under `state_dir/config/` (mode 0700):
//! - `v0000000042.json`: version 42, pretty JSON
//!   `{"version":42,"applied_at_unix_ms":..,"source":"api","document":{..the ConfigFile..}}`;
//! - `next`: the next version number, written when no version file would otherwise carry it
//!   (by [`ConfigStore::set_aside`]); numbers are never reused;
//! - `replaced-<unix_ms>/`: versions moved aside by `turnpike serve --replace-state`;
//! - `lock`: held while a store is open (one writer per state directory);
//! - `.tmp-<pid>-<n>`: a write in progress; left over only by a crash, deleted on open.
//!
//! Writes go through `disk::write_atomically`, whose comment argues why a crash at any
//! moment leaves the previous set of versions or the new one. The store never checks a
//! document's meaning (the admin API does that before appending) and never panics on what it
//! reads from disk: a file that does not parse is skipped with a warning, never fatal.

mod disk;

pub(crate) use disk::{PrivateDirError, private_dir};
mod scan;
#[cfg(test)]
mod tests;

use std::{
    fs::{self, File},
    io,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use turnpike_core::config::ConfigFile;

use disk::{io_error, parse_version_file_name, version_file_name};

/// What the store knows about a version without reading its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionMeta {
    pub version: u64,
    pub applied_at_unix_ms: u64,
    /// Where the change came from: `seed`, `api`, `tuning`, `rollback:<n>`.
    pub source: String,
    /// Size of the version's file.
    pub bytes: u64,
}

/// A version as read back from disk.
#[derive(Debug, Clone)]
pub struct StoredConfig {
    pub meta: VersionMeta,
    pub document: ConfigFile,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{from}: cannot rename to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("{path}: not a stored config version: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: cannot render version {version} as JSON: {reason}")]
    Render {
        path: PathBuf,
        version: u64,
        reason: String,
    },
    #[error("{dir}: config version {version} is not stored (pruned, set aside, or never applied)")]
    NotFound { dir: PathBuf, version: u64 },
    #[error("{dir}: no config version numbers left")]
    Exhausted { dir: PathBuf },
    #[error(
        "{path}: locked by another process; is another turnpike running on this state directory?"
    )]
    Locked { path: PathBuf },
    #[error(
        "{path}: belongs to uid {owner}, but turnpike runs as uid {uid}: run it as the \
         directory's owner (the installed service runs as `turnpike`), or set admin.state_dir \
         to a directory of your own"
    )]
    Owner { path: PathBuf, owner: u32, uid: u32 },
}

/// The versions in one state directory. Holds the directory's lock while alive.
#[derive(Debug)]
pub struct ConfigStore {
    /// `state_dir/config`.
    dir: PathBuf,
    keep: usize,
    /// Stored versions, oldest first.
    index: Vec<VersionMeta>,
    next: u64,
    _lock: File,
}

/// A version file as written. The document is serialized by serde like `config::to_json`, but
/// with the error returned instead of turned into text, so a failure can never be stored.
#[derive(Serialize)]
struct VersionFileOut<'a> {
    version: u64,
    applied_at_unix_ms: u64,
    source: &'a str,
    document: &'a ConfigFile,
}

/// A version file as read. The document goes through `config::parse`, so a document that no
/// longer fits the config's shape is reported with its field path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFileIn {
    version: u64,
    applied_at_unix_ms: u64,
    source: String,
    document: serde_json::Value,
}

impl ConfigStore {
    /// Opens (creating with mode 0700 if missing) `state_dir/config/`, indexes the stored
    /// versions, deletes leftover temporary files from interrupted writes, and skips (with a
    /// warning naming the file) any file that does not parse: one bad file never stops a start.
    ///
    /// `keep` below 1 is taken as 1: the newest version is what a restart serves.
    /// Fails if the directory cannot be created, listed or locked (another process has it).
    pub fn open(state_dir: &Path, keep: usize) -> Result<ConfigStore, StoreError> {
        let dir = state_dir.join("config");
        disk::private_dir(&dir).map_err(|e| match e {
            PrivateDirError::Io { op, source } => io_error(op, &dir)(source),
            PrivateDirError::Owner { owner, uid } => StoreError::Owner {
                path: dir.clone(),
                owner,
                uid,
            },
        })?;
        // Creating the lock file also proves the directory is writable, so an unwritable state
        // directory fails the start, not the operator's first change.
        let lock = disk::lock(&dir)?;
        let mut store = ConfigStore {
            keep: keep.max(1),
            index: Vec::new(),
            next: 1,
            _lock: lock,
            dir,
        };
        store.scan()?;
        store.prune();
        Ok(store)
    }

    /// The newest stored version, if any (read from disk).
    pub fn latest(&self) -> Result<Option<StoredConfig>, StoreError> {
        match self.index.last() {
            Some(meta) => self.read(meta.version).map(Some),
            None => Ok(None),
        }
    }

    /// One stored version (read from disk); [`StoreError::NotFound`] if it is not kept.
    pub fn get(&self, version: u64) -> Result<StoredConfig, StoreError> {
        if self
            .index
            .binary_search_by_key(&version, |m| m.version)
            .is_err()
        {
            return Err(StoreError::NotFound {
                dir: self.dir.clone(),
                version,
            });
        }
        self.read(version)
    }

    /// Stored versions, newest first.
    pub fn list(&self) -> Vec<VersionMeta> {
        self.index.iter().rev().cloned().collect()
    }

    /// Version number the next append will get (1 for an empty store; never reused, even
    /// after pruning or [`set_aside`](Self::set_aside)).
    pub fn next_version(&self) -> u64 {
        self.next
    }

    /// Durably stores `document` as the next version and returns only once it is on disk (see
    /// `disk::write_atomically`); then prunes to the newest `keep` versions.
    /// `source` says where the change came from: `seed`, `api`, `tuning`, `rollback:<n>`.
    pub fn append(
        &mut self,
        document: &ConfigFile,
        source: &str,
    ) -> Result<VersionMeta, StoreError> {
        let version = self.next;
        // u64::MAX is never handed out: it is what `scan` saturates to when a (hand-made) file
        // already has that number, and using it would overwrite that file.
        if version == u64::MAX {
            return Err(StoreError::Exhausted {
                dir: self.dir.clone(),
            });
        }
        let path = self.dir.join(version_file_name(version));
        let applied_at_unix_ms = now_unix_ms();
        let mut text = serde_json::to_string_pretty(&VersionFileOut {
            version,
            applied_at_unix_ms,
            source,
            document,
        })
        .map_err(|e| StoreError::Render {
            path: path.clone(),
            version,
            reason: e.to_string(),
        })?;
        text.push('\n');
        // Taken before touching the disk: a failed write may still have put the file in
        // place, and its number must not then be given to a different document.
        self.next = version + 1;
        disk::write_atomically(&self.dir, &path, text.as_bytes())?;
        let meta = VersionMeta {
            version,
            applied_at_unix_ms,
            source: source.to_owned(),
            bytes: text.len() as u64,
        };
        self.index.push(meta.clone());
        // The version is durable whatever pruning does; a file it fails to remove is retried
        // on the next append or open.
        self.prune();
        Ok(meta)
    }

    /// For `turnpike serve --replace-state`: moves every stored version into
    /// `config/replaced-<unix_ms>/` (kept, not deleted), so the next start seeds from the
    /// config file again. Version numbers keep increasing.
    ///
    /// Versions move oldest first: if this is interrupted, what is left in `config/` is the
    /// newest versions, so a restart serves the same config as before, never an older one.
    pub fn set_aside(&mut self) -> Result<(), StoreError> {
        // Once the files move, their names no longer carry the highest number in config/
        // itself; `next` must be durable before the first one goes.
        let next_path = self.dir.join(disk::NEXT_FILE);
        disk::write_atomically(&self.dir, &next_path, format!("{}\n", self.next).as_bytes())?;

        // Every file named as a version moves, including ones open() skipped as unparsable.
        let mut versions = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_error("list", &self.dir))? {
            let entry = entry.map_err(io_error("list", &self.dir))?;
            let name = entry.file_name();
            if let Some(v) = name.to_str().and_then(parse_version_file_name) {
                versions.push((v, entry.path()));
            }
        }
        if versions.is_empty() {
            return Ok(());
        }
        versions.sort_unstable_by_key(|(v, _)| *v);

        let aside = disk::new_replaced_dir(&self.dir, now_unix_ms());
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&aside)
            .map_err(io_error("create directory", &aside))?;
        for (version, from) in versions {
            let to = aside.join(version_file_name(version));
            fs::rename(&from, &to).map_err(|source| StoreError::Rename { from, to, source })?;
            self.index.retain(|m| m.version != version);
        }
        disk::sync_dir(&aside)?;
        disk::sync_dir(&self.dir)?;
        tracing::info!(to = %aside.display(), "stored config versions set aside");
        Ok(())
    }

    /// Reads a version file and checks that it is the version its name says.
    fn read(&self, version: u64) -> Result<StoredConfig, StoreError> {
        let path = self.dir.join(version_file_name(version));
        let text = fs::read_to_string(&path).map_err(io_error("read", &path))?;
        let stored = decode(&path, &text)?;
        if stored.meta.version != version {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("it says it is version {}", stored.meta.version),
            });
        }
        Ok(stored)
    }

    /// Deletes the oldest versions beyond `keep`, counting tuning changes (source `tuning`)
    /// apart from the rest: a burst of `turnpike admin tuning` never pushes the configs that
    /// were applied on purpose out of the history (and the reverse). Never fails: a file that
    /// cannot be removed stays listed and is retried by the next prune.
    ///
    /// No directory fsync: a removal a crash takes back only brings back an old version, which
    /// the next open prunes again. The newest version is never pruned, so the highest number
    /// ever used stays in a file name.
    fn prune(&mut self) {
        loop {
            let is_tuning = |m: &VersionMeta| m.source == "tuning";
            let tuning = self.index.iter().filter(|m| is_tuning(m)).count();
            let other = self.index.len() - tuning;
            let victim = if other > self.keep {
                self.index.iter().position(|m| !is_tuning(m))
            } else if tuning > self.keep {
                self.index.iter().position(is_tuning)
            } else {
                None
            };
            let Some(at) = victim.filter(|&at| at + 1 < self.index.len()) else {
                return;
            };
            let version = self.index[at].version;
            let path = self.dir.join(version_file_name(version));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(
                        file = %path.display(),
                        error = %e,
                        "config store: cannot prune an old version",
                    );
                    return;
                }
            }
            self.index.remove(at);
        }
    }
}

/// Parses a version file's text.
fn decode(path: &Path, text: &str) -> Result<StoredConfig, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let file: VersionFileIn = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    // Only an object is a stored config. Checked here so that nothing else reaches `parse`'s
    // YAML path (taken for any text not starting with `{`), whose rules are looser than JSON's.
    if !file.document.is_object() {
        return Err(corrupt("document: not a JSON object".to_owned()));
    }
    let document = turnpike_core::config::parse(&file.document.to_string())
        .map_err(|e| corrupt(format!("document: {e}")))?;
    Ok(StoredConfig {
        meta: VersionMeta {
            version: file.version,
            applied_at_unix_ms: file.applied_at_unix_ms,
            source: file.source,
            bytes: text.len() as u64,
        },
        document,
    })
}

fn now_unix_ms() -> u64 {
    // A clock before 1970 is a broken host, not a reason to refuse a config change.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

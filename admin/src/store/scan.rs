//! What [`ConfigStore::open`] learns from the directory: the index of readable versions and
//! the next version number; and the cleanup of temp files left by interrupted writes.
//!
//! Nothing here may fail the start because of one file: a file that cannot be read or parsed
//! is skipped with a warning naming it. Only an unlistable directory is an error.

use std::fs;

use super::{
    ConfigStore, StoreError,
    disk::{self, io_error, parse_version_file_name},
};

impl ConfigStore {
    /// Builds the index and the next version number from the directory, deleting temp files.
    pub(super) fn scan(&mut self) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        let mut highest_named = 0;
        let mut next_from_file = 1;
        let mut removed_temp = false;
        for entry in fs::read_dir(&dir).map_err(io_error("list", &dir))? {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %e,
                        "config store: skipping an unreadable directory entry",
                    );
                    continue;
                }
            };
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(
                    file = %path.display(),
                    "config store: ignoring a file whose name is not UTF-8",
                );
                continue;
            };
            if name.starts_with(disk::TMP_PREFIX) {
                match fs::remove_file(&path) {
                    Ok(()) => removed_temp = true,
                    Err(e) => {
                        tracing::warn!(
                            file = %path.display(),
                            error = %e,
                            "config store: cannot remove a leftover temp file",
                        )
                    }
                }
            } else if let Some(version) = parse_version_file_name(&name) {
                // Counted even if unreadable: its name is taken, and a new version must never
                // overwrite it.
                highest_named = highest_named.max(version);
                match self.read(version) {
                    Ok(stored) => self.index.push(stored.meta),
                    Err(e) => {
                        tracing::warn!(
                            file = %path.display(),
                            error = %e,
                            "config store: skipping a stored version that does not parse",
                        )
                    }
                }
            } else if name == disk::NEXT_FILE {
                match fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| t.trim().parse::<u64>().map_err(|e| e.to_string()))
                {
                    Ok(n) => next_from_file = n,
                    Err(e) => {
                        tracing::warn!(
                            file = %path.display(),
                            error = %e,
                            "config store: ignoring an unreadable next-version file",
                        )
                    }
                }
            } else if name.starts_with(disk::REPLACED_PREFIX) && path.is_dir() {
                // `next` already covers these; reading their names too keeps numbers unique
                // even if `next` was lost or edited by hand.
                match disk::highest_version_named_in(&path) {
                    Ok(v) => highest_named = highest_named.max(v.unwrap_or(0)),
                    Err(e) => {
                        tracing::warn!(
                            dir = %path.display(),
                            error = %e,
                            "config store: cannot list a set-aside folder",
                        )
                    }
                }
            }
        }
        if removed_temp {
            // Not needed for correctness (a temp file that comes back is deleted next time),
            // only so the cleanup sticks.
            if let Err(e) = disk::sync_dir(&dir) {
                tracing::warn!(error = %e, "config store: removed temp files may reappear");
            }
        }
        self.index.sort_unstable_by_key(|m| m.version);
        self.next = next_from_file.max(highest_named.saturating_add(1));
        Ok(())
    }
}

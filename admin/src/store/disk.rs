//! The store's file system primitives: the atomic replace-by-rename write, directory fsync,
//! the single-writer lock, and the names of the files in `config/`.
//!
//! Everything that decides what survives a crash lives here, so the argument for it can be read
//! in one place. This module knows nothing of versions' contents and never parses a document.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use super::StoreError;

/// Prefix of a write in progress; anything with it is garbage from an interrupted write.
pub(super) const TMP_PREFIX: &str = ".tmp-";
/// Holds the highest version number ever handed out (+1), for when no version file carries it.
pub(super) const NEXT_FILE: &str = "next";
/// Held with `flock` for as long as a `ConfigStore` is open.
pub(super) const LOCK_FILE: &str = "lock";
/// `replaced-<unix_ms>/`: versions moved aside by `--replace-state`.
pub(super) const REPLACED_PREFIX: &str = "replaced-";

/// Distinguishes temp files of concurrent writes within one process; the pid in the name
/// distinguishes processes.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// `v0000000042.json`.
pub(super) fn version_file_name(version: u64) -> String {
    format!("v{version:010}.json")
}

/// The version number in a version file's name, or `None` if the name is not one.
pub(super) fn parse_version_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('v')?.strip_suffix(".json")?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io { op, path, source }
}

/// Why a state directory could not be made ready (see [`private_dir`]).
#[derive(Debug)]
pub(crate) enum PrivateDirError {
    Io {
        op: &'static str,
        source: io::Error,
    },
    /// It belongs to another user.
    Owner {
        owner: u32,
        uid: u32,
    },
}

/// Creates `dir` (0700, with its parents) if missing and checks that it belongs to the user
/// the gateway runs as: root starting a gateway on an installed service's directory would
/// leave files (written 0600) the service cannot read. Shared by every store in the state
/// directory.
pub(crate) fn private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let io = |op| move |source| PrivateDirError::Io { op, source };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory"))?;
    let owner = fs::metadata(dir).map_err(io("inspect"))?.uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if owner != uid {
        return Err(PrivateDirError::Owner { owner, uid });
    }
    Ok(())
}

/// Makes `dest` hold exactly `bytes`, or leaves it as it was: never anything in between.
///
/// Why a crash (kill -9, or power loss) can never leave a partial `dest`:
/// 1. the bytes go to a fresh temp file in the same directory, which no reader looks at;
/// 2. `fsync` on the temp file puts its contents on disk before its name can point at them;
/// 3. `rename` replaces the name atomically: every observer (and the disk after a crash) sees
///    the old entry or the new, complete file;
/// 4. `fsync` on the directory makes the rename itself durable. Only after that does this
///    return, so a caller that acknowledges the write never acknowledges something a power
///    loss could take back.
///
/// A crash between 1 and 3 leaves only a temp file, which [`super::ConfigStore::open`] deletes.
pub(super) fn write_atomically(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(format!(
        "{TMP_PREFIX}{}-{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let staged = stage(&tmp, bytes).and_then(|()| {
        fs::rename(&tmp, dest).map_err(|source| StoreError::Rename {
            from: tmp.clone(),
            to: dest.to_owned(),
            source,
        })
    });
    if let Err(e) = staged {
        // Best effort: open() deletes it anyway if this fails too.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Steps 1 and 2 of [`write_atomically`]. Mode 0600: a config can hold secrets (API keys in
/// stage variables, authorizer settings).
fn stage(tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    // create_new: a leftover with the same name (pid reuse) is never appended to.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io_error("create", tmp))?;
    file.write_all(bytes).map_err(io_error("write", tmp))?;
    file.sync_all().map_err(io_error("fsync", tmp))
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Takes the store's lock file, so two gateways started on one state directory cannot both
/// hand out the same version number and overwrite each other's versions. The lock lasts as
/// long as the returned file is open, and the kernel drops it when the process dies, so a
/// crash never leaves a stale lock behind.
pub(super) fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_error("create", &path))?;
    // SAFETY: flock only takes a file descriptor, which `file` keeps open across the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(if err.kind() == io::ErrorKind::WouldBlock {
            StoreError::Locked { path }
        } else {
            StoreError::Io {
                op: "lock",
                path,
                source: err,
            }
        });
    }
    Ok(file)
}

/// Highest version number named by a file in `dir` (not looking into subfolders).
pub(super) fn highest_version_named_in(dir: &Path) -> Result<Option<u64>, StoreError> {
    let mut highest = None;
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        if let Some(v) = entry.file_name().to_str().and_then(parse_version_file_name) {
            highest = highest.max(Some(v));
        }
    }
    Ok(highest)
}

/// A fresh `replaced-<unix_ms>` folder name in `dir` (suffixed if that millisecond is taken).
pub(super) fn new_replaced_dir(dir: &Path, unix_ms: u64) -> PathBuf {
    let mut path = dir.join(format!("{REPLACED_PREFIX}{unix_ms}"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{REPLACED_PREFIX}{unix_ms}-{n}"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_file_names_round_trip_and_sort_by_number() {
        assert_eq!(version_file_name(42), "v0000000042.json");
        assert_eq!(parse_version_file_name("v0000000042.json"), Some(42));
        assert_eq!(
            parse_version_file_name(&version_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        for not_a_version in [
            "v42.json",
            "v00000000x2.json",
            "v0000000042.json.bak",
            ".tmp-1-2",
            "next",
            "v+000000042.json",
        ] {
            assert_eq!(
                parse_version_file_name(not_a_version),
                None,
                "{not_a_version}"
            );
        }
        assert!(version_file_name(9) < version_file_name(10));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("next");
        write_atomically(dir.path(), &dest, b"1\n").expect("first write");
        write_atomically(dir.path(), &dest, b"2\n").expect("second write");
        assert_eq!(fs::read(&dest).expect("read"), b"2\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["next"]);
    }

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = lock(dir.path()).expect("first lock");
        match lock(dir.path()) {
            Err(StoreError::Locked { path }) => assert_eq!(path, dir.path().join(LOCK_FILE)),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        lock(dir.path()).expect("lock after the holder closed it");
    }
}

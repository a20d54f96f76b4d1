//! The resource store: resources that live beside the config document rather than in it
//! (certificates, client certificates, API keys, usage plans, their associations and usage
//! counters), in one embedded transactional database file in the state directory.
//!
//! Layout: `state_dir/resources/` (mode 0700) holds `resources.redb` (mode 0600; it holds
//! private keys). One redb table per resource kind ([`Table`]), keyed by the resource's id,
//! each value the record as JSON, so a record gains fields with serde defaults and no
//! migration.
//!
//! Why redb: one file, pure Rust (no C toolchain, no background threads), ACID transactions
//! with copy-on-write pages and a checksummed commit slot, so a kill or power loss at any
//! moment leaves the last committed transaction, never a torn record; a commit returns only
//! after fsync (durability `Immediate`, the default). The file is `flock`ed while open, so two
//! processes never write it at once.
//!
//! This module knows nothing of what a record means: [`crate::certificates`] does.

pub mod ids;
#[cfg(test)]
mod tests;

use std::{
    fs::{self, OpenOptions},
    io,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use crate::store::{PrivateDirError, private_dir};

use redb::{Database, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

/// `state_dir/resources`.
pub const DIR: &str = "resources";
/// The database file in [`DIR`].
pub const FILE: &str = "resources.redb";
/// How long [`ResourceDb::open`] waits for another process (`turnpike check`, reading it) to
/// let go of the file.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// redb's page cache: the records are a few KB each.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A resource kind: one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `/v1/certificates`: imported certificate chains with their private keys.
    Certificates,
    /// `/v1/clientcertificates`: generated client certificates with their private keys.
    ClientCertificates,
    /// `/v1/apikeys`: API keys, by key id.
    ApiKeys,
    /// `/v1/usageplans`: usage plans, by plan id.
    UsagePlans,
    /// Which keys each plan covers: `plan_id/key_id` -> when the key was added.
    UsagePlanKeys,
    /// Each association's quota counter and today's count as the data plane left them:
    /// `plan_id/key_id` -> the two packed words.
    UsageCounters,
    /// Requests admitted per association per UTC day: `plan_id/key_id/DDDDDDDD` (days since
    /// 1970, zero-padded so the byte order is the day order) -> a count.
    UsageDays,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Certificates,
        Table::ClientCertificates,
        Table::ApiKeys,
        Table::UsagePlans,
        Table::UsagePlanKeys,
        Table::UsageCounters,
        Table::UsageDays,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Certificates => "certificates",
            Table::ClientCertificates => "client_certificates",
            Table::ApiKeys => "api_keys",
            Table::UsagePlans => "usage_plans",
            Table::UsagePlanKeys => "usage_plan_keys",
            Table::UsageCounters => "usage_counters",
            Table::UsageDays => "usage_days",
        }
    }

    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: cannot {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{path}: locked by another process; is another turnpike running on this state directory?"
    )]
    Locked { path: PathBuf },
    #[error(
        "{path}: belongs to uid {owner}, but turnpike runs as uid {uid}: run it as the \
         directory's owner, or set admin.state_dir to a directory of your own"
    )]
    Owner { path: PathBuf, owner: u32, uid: u32 },
    #[error("{path}: cannot {op}: {reason}")]
    Storage {
        op: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{path}: {table} record {id:?} cannot be {op}: {reason}")]
    Record {
        op: &'static str,
        path: PathBuf,
        table: &'static str,
        id: String,
        reason: String,
    },
}

/// The open resource database. Holds the file's lock while alive.
pub struct ResourceDb {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for ResourceDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceDb")
            .field("path", &self.path)
            .finish()
    }
}

impl ResourceDb {
    /// Opens `state_dir/resources/resources.redb`, creating the directory (0700) and the file
    /// (0600) if missing, and every table. A file left by a killed process is repaired by
    /// redb on open (back to its last commit).
    ///
    /// Errors: the directory or file cannot be created or belongs to another user, the file
    /// is not a redb database, or another process holds it for longer than a few seconds.
    pub fn open(state_dir: &Path) -> Result<ResourceDb, DbError> {
        let dir = state_dir.join(DIR);
        private_dir(&dir).map_err(|e| match e {
            PrivateDirError::Io { op, source } => io_error(op, &dir)(source),
            PrivateDirError::Owner { owner, uid } => DbError::Owner {
                path: dir.clone(),
                owner,
                uid,
            },
        })?;
        let path = dir.join(FILE);
        let db = open_locked(&path, true)?;
        // A file made by hand (or an older umask) is brought back to private.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(io_error("chmod 0600", &path))?;
        let db = ResourceDb { db, path };
        db.create_tables()?;
        Ok(db)
    }

    /// Opens the database only if it exists, creating nothing: for `turnpike check`, which
    /// must not leave a state directory behind. `Ok(None)` if there is no file.
    pub fn open_existing(state_dir: &Path) -> Result<Option<ResourceDb>, DbError> {
        let path = state_dir.join(DIR).join(FILE);
        if !path.exists() {
            return Ok(None);
        }
        let db = open_once(&path, false)?;
        Ok(Some(ResourceDb { db, path }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create_tables(&self) -> Result<(), DbError> {
        let txn = self
            .db
            .begin_write()
            .map_err(storage("begin a transaction", &self.path))?;
        for t in Table::ALL {
            txn.open_table(t.definition())
                .map_err(storage("create a table", &self.path))?;
        }
        txn.commit().map_err(storage("commit", &self.path))
    }

    /// One record, `None` if there is no such id.
    pub fn get<T: DeserializeOwned>(&self, table: Table, id: &str) -> Result<Option<T>, DbError> {
        let txn = self
            .db
            .begin_read()
            .map_err(storage("begin a transaction", &self.path))?;
        let t = match txn.open_table(table.definition()) {
            Ok(t) => t,
            // open_existing does not create tables: a file from before a kind existed.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage("open a table", &self.path)(e)),
        };
        let Some(bytes) = t.get(id).map_err(storage("read", &self.path))? else {
            return Ok(None);
        };
        self.decode(table, id, bytes.value()).map(Some)
    }

    /// Every record of a table, by id. A record that no longer decodes is skipped with a
    /// warning naming it: one bad record never hides the others.
    pub fn list<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(String, T)>, DbError> {
        let txn = self
            .db
            .begin_read()
            .map_err(storage("begin a transaction", &self.path))?;
        let t = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage("open a table", &self.path)(e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(storage("read", &self.path))? {
            let (k, v) = entry.map_err(storage("read", &self.path))?;
            match self.decode(table, k.value(), v.value()) {
                Ok(record) => out.push((k.value().to_owned(), record)),
                Err(e) => tracing::warn!("resource store: skipping a record: {e}"),
            }
        }
        Ok(out)
    }

    /// Stores `record` under `id` if no record has that id yet; `Ok(false)` (and nothing
    /// written) if one has. Durable when this returns.
    pub fn insert_new<T: Serialize>(
        &self,
        table: Table,
        id: &str,
        record: &T,
    ) -> Result<bool, DbError> {
        self.write(table, id, record, false)
    }

    /// Stores `record` under `id`, replacing any record there. Durable when this returns.
    pub fn put<T: Serialize>(&self, table: Table, id: &str, record: &T) -> Result<(), DbError> {
        self.write(table, id, record, true).map(|_| ())
    }

    /// One write transaction storing `record` under `id`; unless `replace`, only if the id is
    /// free (`Ok(false)`, nothing written, when it is not).
    fn write<T: Serialize>(
        &self,
        table: Table,
        id: &str,
        record: &T,
        replace: bool,
    ) -> Result<bool, DbError> {
        let bytes = self.encode(table, id, record)?;
        let txn = self
            .db
            .begin_write()
            .map_err(storage("begin a transaction", &self.path))?;
        {
            let mut t = txn
                .open_table(table.definition())
                .map_err(storage("open a table", &self.path))?;
            if !replace && t.get(id).map_err(storage("read", &self.path))?.is_some() {
                return Ok(false);
            }
            t.insert(id, bytes.as_slice())
                .map_err(storage("write", &self.path))?;
        }
        txn.commit().map_err(storage("commit", &self.path))?;
        Ok(true)
    }

    /// Deletes a record; `Ok(false)` if there was none. Durable when this returns.
    pub fn remove(&self, table: Table, id: &str) -> Result<bool, DbError> {
        let txn = self
            .db
            .begin_write()
            .map_err(storage("begin a transaction", &self.path))?;
        let removed = {
            let mut t = txn
                .open_table(table.definition())
                .map_err(storage("open a table", &self.path))?;
            t.remove(id)
                .map_err(storage("delete", &self.path))?
                .is_some()
        };
        txn.commit().map_err(storage("commit", &self.path))?;
        Ok(removed)
    }

    /// Up to `limit` records of `table` whose ids start with `prefix`, in id order, starting
    /// after `after` (exclusive) when given: one page of a listing, or every row of one plan.
    /// Records that no longer decode are skipped with a warning, as in [`ResourceDb::list`].
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>, DbError> {
        let txn = self
            .db
            .begin_read()
            .map_err(storage("begin a transaction", &self.path))?;
        let t = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage("open a table", &self.path)(e)),
        };
        let start = match after {
            Some(a) if a >= prefix => a,
            _ => prefix,
        };
        let mut out = Vec::new();
        for entry in t.range(start..).map_err(storage("read", &self.path))? {
            let (k, v) = entry.map_err(storage("read", &self.path))?;
            let id = k.value();
            if !id.starts_with(prefix) || out.len() >= limit {
                break;
            }
            if after == Some(id) {
                continue;
            }
            match self.decode(table, id, v.value()) {
                Ok(record) => out.push((id.to_owned(), record)),
                Err(e) => tracing::warn!("resource store: skipping a record: {e}"),
            }
        }
        Ok(out)
    }

    /// A write transaction for many records at once: nothing of it is visible or durable
    /// until [`Batch::commit`]; dropped uncommitted, it changes nothing (a kill mid-batch
    /// leaves the last commit).
    pub fn batch(&self) -> Result<Batch<'_>, DbError> {
        let txn = self
            .db
            .begin_write()
            .map_err(storage("begin a transaction", &self.path))?;
        Ok(Batch { db: self, txn })
    }

    fn encode<T: Serialize>(&self, table: Table, id: &str, record: &T) -> Result<Vec<u8>, DbError> {
        let mut out = Vec::new();
        self.encode_into(table, id, record, &mut out)?;
        Ok(out)
    }

    /// Writes `record`'s JSON into `out` (cleared first), for a caller reusing one buffer.
    fn encode_into<T: Serialize>(
        &self,
        table: Table,
        id: &str,
        record: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), DbError> {
        out.clear();
        serde_json::to_writer(out, record).map_err(|e| DbError::Record {
            op: "encoded",
            path: self.path.clone(),
            table: table.name(),
            id: id.to_owned(),
            reason: e.to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(
        &self,
        table: Table,
        id: &str,
        bytes: &[u8],
    ) -> Result<T, DbError> {
        serde_json::from_slice(bytes).map_err(|e| DbError::Record {
            op: "decoded",
            path: self.path.clone(),
            table: table.name(),
            id: id.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// One write transaction of many records (see [`ResourceDb::batch`]).
pub struct Batch<'a> {
    db: &'a ResourceDb,
    txn: redb::WriteTransaction,
}

impl Batch<'_> {
    /// `table`, opened in this transaction.
    fn open(&self, table: Table) -> Result<redb::Table<'_, &'static str, &'static [u8]>, DbError> {
        self.txn
            .open_table(table.definition())
            .map_err(storage("open a table", &self.db.path))
    }

    /// Stores `record` under `id`, replacing any record there.
    pub fn put<T: Serialize>(&mut self, table: Table, id: &str, record: &T) -> Result<(), DbError> {
        self.put_all(table, [(id, record)])
    }

    /// Stores every `(id, record)` of `records` in `table`, opening the table once.
    pub fn put_all<'r, T: Serialize + 'r>(
        &mut self,
        table: Table,
        records: impl IntoIterator<Item = (&'r str, &'r T)>,
    ) -> Result<(), DbError> {
        let path = &self.db.path;
        let mut t = self.open(table)?;
        let mut bytes = Vec::new();
        for (id, record) in records {
            self.db.encode_into(table, id, record, &mut bytes)?;
            t.insert(id, bytes.as_slice())
                .map_err(storage("write", path))?;
        }
        Ok(())
    }

    /// Whether `table` has a record `id` (as this transaction sees it).
    pub fn contains(&self, table: Table, id: &str) -> Result<bool, DbError> {
        let path = &self.db.path;
        let t = self.open(table)?;
        Ok(t.get(id).map_err(storage("read", path))?.is_some())
    }

    /// Deletes a record; `Ok(false)` if there was none.
    pub fn remove(&mut self, table: Table, id: &str) -> Result<bool, DbError> {
        let path = &self.db.path;
        let mut t = self.open(table)?;
        Ok(t.remove(id).map_err(storage("delete", path))?.is_some())
    }

    /// Deletes every record whose id starts with `prefix`; returns how many went.
    pub fn remove_prefix(&mut self, table: Table, prefix: &str) -> Result<usize, DbError> {
        let path = &self.db.path;
        let mut t = self.open(table)?;
        let ids: Vec<String> = t
            .range(prefix..)
            .map_err(storage("read", path))?
            .map_while(|e| {
                e.ok()
                    .map(|(k, _)| k.value().to_owned())
                    .filter(|k| k.starts_with(prefix))
            })
            .collect();
        for id in &ids {
            t.remove(id.as_str()).map_err(storage("delete", path))?;
        }
        Ok(ids.len())
    }

    /// Makes every change durable at once (fsync before this returns).
    pub fn commit(self) -> Result<(), DbError> {
        self.txn.commit().map_err(storage("commit", &self.db.path))
    }
}

/// Opens the file, waiting up to [`LOCK_WAIT`] while another process holds it: `turnpike
/// check` may be reading it at the moment the gateway starts.
fn open_locked(path: &Path, create: bool) -> Result<Database, DbError> {
    let started = Instant::now();
    loop {
        match open_once(path, create) {
            Err(DbError::Locked { .. }) if started.elapsed() < LOCK_WAIT => {
                thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn open_once(path: &Path, create: bool) -> Result<Database, DbError> {
    // Created here, not by redb, for the mode: the file holds private keys.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_error("open", path))?;
    match redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create_file(file)
    {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(DbError::Locked {
            path: path.to_owned(),
        }),
        Err(e) => Err(storage("open the database", path)(e)),
    }
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DbError {
    let path = path.to_owned();
    move |source| DbError::Io { op, path, source }
}

fn storage<E: Into<redb::Error>>(op: &'static str, path: &Path) -> impl FnOnce(E) -> DbError {
    let path = path.to_owned();
    move |e| DbError::Storage {
        op,
        path,
        reason: e.into().to_string(),
    }
}

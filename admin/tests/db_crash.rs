//! The resource store under kill -9: a child process stores certificate records as fast as it
//! can, rotating an older one between inserts, and is killed at random moments; after every
//! kill the store must open, hold only complete records, and have kept every write the child
//! was told was durable.
//!
//! The child is this same test binary, re-run with `--ignored --exact db_crash_child` and the
//! state directory in `DB_CRASH_DIR`; it prints `ack <n>` after each write returns.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use turnpike_admin::db::{ResourceDb, Table};

const DIR_VAR: &str = "DB_CRASH_DIR";
const CYCLES: usize = 12;
const MIN_WRITES: u64 = 100;

/// Write `n`: record `id(n)` inserted with content `n`; and, for even `n`, record
/// `id(n / 2)` rotated to content `n` (one transaction each, in that order).
fn id(n: u64) -> String {
    format!("cert-{n:012}")
}

/// A record shaped like a stored certificate.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CertificateRecord {
    chain_pem: String,
    key_pem: String,
    name: Option<String>,
    imported_at: i64,
}

fn record(n: u64) -> CertificateRecord {
    CertificateRecord {
        // Large enough to span pages: a torn write would show.
        chain_pem: format!("chain {n}\n{}", "x".repeat(6000)),
        key_pem: format!("key {n}"),
        name: Some(format!("name {n}")),
        imported_at: n as i64,
    }
}

/// The child: writes until killed (or, should the parent be gone, for at most 30 s).
#[test]
#[ignore = "run by db_survives_kill_9_at_random_moments as a child process"]
fn db_crash_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let db = ResourceDb::open(Path::new(&dir)).expect("child: open");
    let mut n = db
        .list::<CertificateRecord>(Table::Certificates)
        .expect("child: list")
        .len() as u64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        n += 1;
        assert!(
            db.insert_new(Table::Certificates, &id(n), &record(n))
                .expect("child: insert"),
            "id {n} was free"
        );
        println!("ack {n}");
        if n & 1 == 0 {
            db.put(Table::Certificates, &id(n / 2), &record(n))
                .expect("child: rotate");
            println!("ack {n}r");
        }
    }
}

#[test]
fn db_survives_kill_9_at_random_moments() {
    let state = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut rng = XorShift::seeded();
    eprintln!("kill delays from seed {}", rng.0);

    // Rotations acknowledged so far, and how many records the store held after the last kill
    // (the child goes on from there).
    let mut rotated: Vec<u64> = Vec::new();
    let mut records = 0;
    let mut writes = 0;
    let mut cycle = 0;
    let started = Instant::now();
    while cycle < CYCLES || writes < MIN_WRITES {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "only {writes} writes in {cycle} kill cycles"
        );
        cycle += 1;
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "db_crash_child", "--nocapture"])
            .env(DIR_VAR, state.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.strip_prefix("ack ") {
                    let _ = tx.send(a.to_owned());
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the child acknowledges a first write");
        thread::sleep(Duration::from_millis(3 + rng.next() % 60));
        child.kill().expect("SIGKILL the child");
        assert!(!child.wait().expect("reap").success());
        reader.join().expect("the reader thread");

        let mut last_insert = records;
        for a in std::iter::once(first).chain(rx.try_iter()) {
            writes += 1;
            match a.strip_suffix('r') {
                Some(n) => rotated.push(n.parse().expect("a number")),
                None => {
                    let n: u64 = a.parse().expect("a number");
                    assert_eq!(n, last_insert + 1, "inserts are consecutive");
                    last_insert = n;
                }
            }
        }
        records = check(state.path(), last_insert, &rotated);
    }
    eprintln!(
        "{writes} acknowledged writes in {cycle} kill cycles, {:?}",
        started.elapsed()
    );
}

/// After a kill: the store opens, is still private, and every acknowledged write is there
/// whole. Record `m` holds content `m`, or `2m` once the rotation at write `2m` happened
/// (certainly if it was acknowledged; maybe if the kill came between its commit and its ack).
/// Returns how many records there are.
fn check(state: &Path, last_insert: u64, rotated: &[u64]) -> u64 {
    let db = ResourceDb::open(state).expect("open after a kill");
    assert_eq!(
        std::fs::metadata(db.path())
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let stored: BTreeMap<String, CertificateRecord> = db
        .list(Table::Certificates)
        .expect("list after a kill")
        .into_iter()
        .collect();
    let count = stored.len() as u64;
    // The last insert may be durable without its ack: one more record, never more.
    assert!(
        (last_insert..=last_insert + 1).contains(&count),
        "{count} records, last acknowledged insert {last_insert}"
    );
    for m in 1..=count {
        let got = stored
            .get(&id(m))
            .unwrap_or_else(|| panic!("record {m} missing"));
        let expected: &[u64] = if rotated.contains(&(2 * m)) {
            &[2 * m]
        } else if 2 * m <= count {
            &[m, 2 * m]
        } else {
            &[m]
        };
        assert!(
            expected.iter().any(|&c| *got == record(c)),
            "record {m} holds {:?}, expected content {expected:?}",
            got.name
        );
    }
    count
}

/// Kill delays: no test RNG crate is a dependency, and these need no quality, only spread.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() as u64);
        XorShift(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

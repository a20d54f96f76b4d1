//! The config store under kill -9: a child process appends versions as fast as it can and is
//! killed at random moments; after every kill the store must open, hold only complete
//! versions, and have kept everything the child was told was stored.
//!
//! The child is this same test binary, re-run with `--ignored --exact store_crash_child` and
//! the store directory in `STORE_CRASH_DIR`; it prints `ack <n>` after each append returns.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use turnpike_admin::store::ConfigStore;
use turnpike_core::config::{ConfigFile, parse};

const DIR_VAR: &str = "STORE_CRASH_DIR";
const KEEP: usize = 5;
const CYCLES: usize = 20;
const MIN_WRITES: u64 = 200;

const BASE: &str = r#"
apis:
  - name: shop
    integrations:
      hello: { type: mock, status: 200, body: "hello" }
    routes:
      - { key: "$default", integration: hello }
    stages:
      - { name: prod, variables: { backend: "127.0.0.1:9000" } }
"#;

/// What version `n` must contain: the base config with `revision = n` in the prod stage.
fn expected(n: u64) -> ConfigFile {
    let mut file = parse(BASE).expect("the test config parses");
    file.apis[0].stages[0]
        .variables
        .insert("revision".to_owned(), n.to_string());
    file
}

/// The child: appends until killed (or, should the parent be gone, for at most 30 s).
#[test]
#[ignore = "run by store_survives_kill_9_at_random_moments as a child process"]
fn store_crash_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let mut store = ConfigStore::open(Path::new(&dir), KEEP).expect("child: open");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let n = store.next_version();
        let meta = store.append(&expected(n), "api").expect("child: append");
        assert_eq!(meta.version, n);
        // println! flushes at the newline, so the parent sees each ack as soon as it is true.
        println!("ack {n}");
    }
}

#[test]
fn store_survives_kill_9_at_random_moments() {
    let state = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut rng = XorShift::seeded();
    eprintln!("kill delays from seed {}", rng.0);

    let mut last_ack = 0;
    let mut writes = 0;
    let mut cycle = 0;
    let started = Instant::now();
    while cycle < CYCLES || writes < MIN_WRITES {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "only {writes} writes in {cycle} kill cycles"
        );
        cycle += 1;
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "store_crash_child", "--nocapture"])
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
                if let Some(n) = line.strip_prefix("ack ") {
                    let n: u64 = n.parse().expect("an ack carries a number");
                    // The parent may have stopped listening; the acks are still counted below.
                    let _ = tx.send(n);
                }
            }
        });

        // Kill while appends are running, not while the child is still starting: wait for the
        // first ack, then a random 3..100 ms.
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the child acknowledges a first version");
        thread::sleep(Duration::from_millis(3 + rng.next() % 98));
        child.kill().expect("SIGKILL the child");
        let status = child.wait().expect("reap the child");
        assert!(!status.success(), "the child was killed, not finished");
        reader.join().expect("the reader thread");

        let acked: Vec<u64> = std::iter::once(first).chain(rx.try_iter()).collect();
        for pair in acked.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "acks are consecutive");
        }
        assert!(first > last_ack, "version {first} was handed out twice");
        last_ack = *acked.last().expect("at least the first ack");
        writes += acked.len() as u64;

        check_store(state.path(), last_ack);
    }
    eprintln!(
        "{writes} acknowledged writes in {cycle} kill cycles, {:?}",
        started.elapsed()
    );
}

/// After a kill: every version file parses, the store opens, kept nothing it must not, and the
/// newest version is at least the last acknowledged one, with exactly that version's content.
fn check_store(state: &Path, last_ack: u64) {
    let config = state.join("config");
    for entry in fs::read_dir(&config).expect("list config/") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if name.ends_with(".json") {
            let text = fs::read_to_string(config.join(&name)).expect("read a version");
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{name} is not complete JSON after a kill: {e}"));
        }
    }

    let store = ConfigStore::open(state, KEEP).expect("open after a kill");
    let names: Vec<String> = fs::read_dir(&config)
        .expect("list config/")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".tmp-")),
        "open() removes temp files: {names:?}"
    );
    let listed = store.list();
    assert!(
        listed.len() <= KEEP && !listed.is_empty(),
        "{} versions kept",
        listed.len()
    );
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".json")).count(),
        listed.len(),
        "every version file is listed: {names:?}"
    );
    for meta in &listed {
        let stored = store.get(meta.version).expect("get a listed version");
        assert_eq!(stored.document, expected(meta.version), "v{}", meta.version);
    }

    let latest = store.latest().expect("read latest").expect("a version");
    // The child may have been killed after a write became durable but before its ack: then
    // the store is one ahead of the acks, never more.
    assert!(
        (last_ack..=last_ack + 1).contains(&latest.meta.version),
        "latest is v{} but v{last_ack} was the last acknowledged",
        latest.meta.version
    );
    assert_eq!(latest.document, expected(latest.meta.version));
    assert_eq!(store.next_version(), latest.meta.version + 1);
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

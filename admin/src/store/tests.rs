use std::{fs, os::unix::fs::PermissionsExt, path::Path};

use turnpike_core::config::{ConfigFile, parse};

use super::{ConfigStore, StoreError, disk};

const SHOP: &str = r#"
gateway: { listen: ["127.0.0.1:8080"], workers: 2 }
apis:
  - name: shop
    default: true
    integrations:
      users: { type: http_proxy, uri: "http://127.0.0.1:9000/users", timeout_ms: 30000 }
      catchall: { type: http_proxy, uri: "http://${stageVariables.backend}/{proxy}" }
      hello: { type: mock, status: 200, headers: { content-type: text/plain }, body: "hello" }
    routes:
      - { key: "GET /users", integration: users }
      - { key: "ANY /{proxy+}", integration: catchall }
      - { key: "$default", integration: hello }
    stages:
      - { name: prod, variables: { backend: "127.0.0.1:9000" } }
      - { name: $default }
domains:
  - { name: api.example.com, mappings: [ { api: shop, stage: prod, base_path: "" } ] }
"#;

/// The shop config with the prod stage's `revision` variable set to `n`, so versions differ.
fn shop(n: u64) -> ConfigFile {
    let mut file = parse(SHOP).expect("the test config parses");
    file.apis[0].stages[0]
        .variables
        .insert("revision".to_owned(), n.to_string());
    file
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

fn versions(store: &ConfigStore) -> Vec<u64> {
    store.list().iter().map(|m| m.version).collect()
}

#[test]
fn a_real_config_round_trips_through_a_pretty_json_file() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(state.path(), 10).expect("open");
    let original = shop(1);
    let meta = store.append(&original, "seed").expect("append");
    assert_eq!((meta.version, meta.source.as_str()), (1, "seed"));

    let path = state.path().join("config/v0000000001.json");
    let text = fs::read_to_string(&path).expect("the version file exists");
    assert_eq!(meta.bytes, text.len() as u64);
    assert!(text.starts_with("{\n  \"version\": 1,\n"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["source"], "seed");
    assert_eq!(json["applied_at_unix_ms"], meta.applied_at_unix_ms);
    assert_eq!(json["document"]["apis"][0]["name"], "shop");
    assert_eq!(
        fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(state.path().join("config"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    let back = store.get(1).expect("get");
    assert_eq!(back.document, original);
    assert_eq!(back.meta, meta);
}

#[test]
fn append_list_get_and_latest_agree_before_and_after_reopening() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(state.path(), 10).expect("open");
    assert!(store.latest().expect("latest").is_none());
    assert!(store.list().is_empty());
    assert_eq!(store.next_version(), 1);

    for (n, source) in [(1, "seed"), (2, "api"), (3, "rollback:1")] {
        assert_eq!(store.append(&shop(n), source).expect("append").version, n);
    }
    let listed = store.list();
    assert_eq!(versions(&store), [3, 2, 1]);
    assert_eq!(listed[0].source, "rollback:1");
    assert_eq!(store.get(2).expect("get 2").document, shop(2));
    let latest = store.latest().expect("latest").expect("some");
    assert_eq!(
        (latest.meta.clone(), latest.document),
        (listed[0].clone(), shop(3))
    );
    match store.get(9) {
        Err(StoreError::NotFound { version: 9, dir }) => {
            assert_eq!(dir, state.path().join("config"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }

    drop(store);
    let store = ConfigStore::open(state.path(), 10).expect("reopen");
    assert_eq!(store.list(), listed);
    assert_eq!(store.next_version(), 4);
    assert_eq!(
        store.latest().expect("latest").expect("some").document,
        shop(3)
    );
}

#[test]
fn pruning_keeps_exactly_the_newest_keep_versions() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(state.path(), 3).expect("open");
    for n in 1..=7 {
        store.append(&shop(n), "api").expect("append");
        assert_eq!(store.list().len(), n.min(3) as usize);
    }
    assert_eq!(versions(&store), [7, 6, 5]);
    assert!(matches!(
        store.get(4),
        Err(StoreError::NotFound { version: 4, .. })
    ));
    let config = state.path().join("config");
    assert_eq!(
        names_in(&config),
        [
            "lock",
            "v0000000005.json",
            "v0000000006.json",
            "v0000000007.json"
        ]
    );

    // A smaller keep at the next start prunes at once; keep 0 still keeps the newest.
    drop(store);
    let store = ConfigStore::open(state.path(), 2).expect("reopen");
    assert_eq!(versions(&store), [7, 6]);
    drop(store);
    let store = ConfigStore::open(state.path(), 0).expect("reopen");
    assert_eq!(versions(&store), [7]);
    assert_eq!(store.get(7).expect("get").document, shop(7));
}

#[test]
fn tuning_changes_are_counted_apart_from_applied_configs() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(state.path(), 2).expect("open");
    store.append(&shop(1), "seed").expect("append");
    store.append(&shop(2), "api").expect("append");
    for n in 3..=8 {
        store.append(&shop(n), "tuning").expect("append");
    }
    // The two configs applied on purpose survive six tuning changes; tuning keeps its own 2.
    assert_eq!(versions(&store), [8, 7, 2, 1]);
    store.append(&shop(9), "api").expect("append");
    assert_eq!(versions(&store), [9, 8, 7, 2]);
}

#[test]
fn version_numbers_are_never_reused_after_pruning() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(state.path(), 1).expect("open");
    for n in 1..=3 {
        store.append(&shop(n), "api").expect("append");
    }
    assert_eq!(store.next_version(), 4);
    drop(store);
    let mut store = ConfigStore::open(state.path(), 1).expect("reopen");
    assert_eq!(store.next_version(), 4);
    assert_eq!(store.append(&shop(4), "api").expect("append").version, 4);
}

#[test]
fn set_aside_keeps_the_files_and_never_reuses_their_numbers() {
    let state = tempfile::tempdir().expect("tempdir");
    let config = state.path().join("config");
    let mut store = ConfigStore::open(state.path(), 10).expect("open");
    for n in 1..=3 {
        store.append(&shop(n), "api").expect("append");
    }
    store.set_aside().expect("set aside");
    assert!(store.list().is_empty());
    assert!(store.latest().expect("latest").is_none());
    assert_eq!(store.next_version(), 4);

    let aside: Vec<String> = names_in(&config)
        .into_iter()
        .filter(|n| n.starts_with("replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        names_in(&config.join(&aside[0])),
        ["v0000000001.json", "v0000000002.json", "v0000000003.json"]
    );
    assert!(
        !names_in(&config).iter().any(|n| n.ends_with(".json")),
        "no version left in config/"
    );

    drop(store);
    let mut store = ConfigStore::open(state.path(), 10).expect("reopen");
    assert!(
        store.latest().expect("latest").is_none(),
        "a start seeds again"
    );
    assert_eq!(store.next_version(), 4);
    assert_eq!(store.append(&shop(4), "seed").expect("append").version, 4);

    // Setting aside twice in one millisecond, and losing `next`, still reuses nothing: the
    // set-aside folders' file names carry the numbers too.
    store.set_aside().expect("set aside again");
    store.set_aside().expect("set aside with nothing stored");
    drop(store);
    fs::remove_file(config.join("next")).expect("remove next");
    let store = ConfigStore::open(state.path(), 10).expect("reopen");
    assert_eq!(store.next_version(), 5);
}

#[test]
fn open_skips_files_that_do_not_parse_and_deletes_temp_files() {
    let state = tempfile::tempdir().expect("tempdir");
    let config = state.path().join("config");
    let mut store = ConfigStore::open(state.path(), 10).expect("open");
    store.append(&shop(1), "seed").expect("append");
    store.append(&shop(2), "api").expect("append");
    drop(store);

    let good = fs::read_to_string(config.join("v0000000002.json")).expect("read");
    let bad = [
        ("v0000000003.json", "{\"version\":3,\"applied_at".to_owned()),
        (
            "v0000000004.json",
            good.replace("\"version\": 2", "\"version\": 4")
                .replace("\"listen\"", "\"lisen\""),
        ),
        (
            "v0000000005.json",
            good.replace("\"version\": 2", "\"version\": 6"),
        ),
        ("v0000000006.json", String::new()),
        (
            "v0000000007.json",
            "{\"version\":7,\"applied_at_unix_ms\":1,\"source\":\"api\",\"document\":null}"
                .to_owned(),
        ),
    ];
    for (name, text) in &bad {
        fs::write(config.join(name), text).expect("write a bad file");
    }
    fs::write(config.join(".tmp-1-1"), "half a versi").expect("write temp");
    fs::write(config.join(".tmp-999999-3"), "").expect("write temp");
    fs::write(config.join("next"), "not a number").expect("write next");

    let mut store = ConfigStore::open(state.path(), 10).expect("open despite bad files");
    assert_eq!(versions(&store), [2, 1]);
    assert_eq!(
        store.latest().expect("latest").expect("some").document,
        shop(2)
    );
    let names = names_in(&config);
    assert!(!names.iter().any(|n| n.starts_with(".tmp-")), "{names:?}");
    // The bad files' names are taken: the next version goes past them and overwrites nothing.
    assert_eq!(store.next_version(), 8);
    assert_eq!(store.append(&shop(8), "api").expect("append").version, 8);
    for (name, text) in &bad {
        assert_eq!(&fs::read_to_string(config.join(name)).expect("kept"), text);
    }
}

#[test]
fn a_version_damaged_after_open_is_an_error_naming_its_file() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut store = ConfigStore::open(state.path(), 10).expect("open");
    store.append(&shop(1), "seed").expect("append");
    let path = state.path().join("config/v0000000001.json");
    fs::write(&path, "{").expect("damage");
    let err = store.latest().expect_err("damaged");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_state_dir_that_cannot_be_created_is_an_error_naming_the_path() {
    let root = tempfile::tempdir().expect("tempdir");
    let file = root.path().join("not-a-dir");
    fs::write(&file, "").expect("write");
    let err = ConfigStore::open(&file, 10).expect_err("a file is no state dir");
    let config = file.join("config");
    assert!(
        matches!(&err, StoreError::Io { path, .. } if *path == config),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&config.display().to_string()),
        "{err}"
    );
}

#[test]
fn an_unwritable_state_dir_is_an_error_naming_the_path() {
    let root = tempfile::tempdir().expect("tempdir");
    let config = root.path().join("config");
    fs::create_dir(&config).expect("mkdir");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o500)).expect("chmod");
    // root ignores permission bits; there is nothing to observe then.
    if fs::write(config.join("probe"), "").is_ok() {
        eprintln!("skipped: running with CAP_DAC_OVERRIDE");
        return;
    }
    let err = ConfigStore::open(root.path(), 10).expect_err("unwritable");
    let lock = config.join(disk::LOCK_FILE);
    assert!(
        matches!(&err, StoreError::Io { path, .. } if *path == lock),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&lock.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_second_store_on_the_same_state_dir_is_refused() {
    let state = tempfile::tempdir().expect("tempdir");
    let store = ConfigStore::open(state.path(), 10).expect("open");
    let err = ConfigStore::open(state.path(), 10).expect_err("second open");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("config/lock"), "{err}");
    drop(store);
    ConfigStore::open(state.path(), 10).expect("open after the first closed");
}

#[test]
fn a_state_directory_of_another_user_is_refused() {
    // Only root can hand a directory to another user; elsewhere there is nothing to test.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot make a directory owned by another user");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("config");
    fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    let err = ConfigStore::open(tmp.path(), 10).expect_err("another user's directory");
    assert!(
        matches!(
            err,
            StoreError::Owner {
                owner: 65534,
                uid: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("admin.state_dir"), "{err}");
    assert!(
        !dir.join("lock").exists(),
        "refused before anything is written into it"
    );
}

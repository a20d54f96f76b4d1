use std::{fs, os::unix::fs::PermissionsExt};

use serde::{Deserialize, Serialize};

use super::{DIR, DbError, FILE, ResourceDb, Table};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Rec {
    n: u64,
    text: String,
}

fn rec(n: u64) -> Rec {
    Rec {
        n,
        text: format!("record {n}"),
    }
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn records_round_trip_per_table_and_survive_a_reopen() {
    let state = tempfile::tempdir().expect("tempdir");
    {
        let db = ResourceDb::open(state.path()).expect("open");
        assert!(db.insert_new(Table::Certificates, "a", &rec(1)).expect("a"));
        assert!(
            !db.insert_new(Table::Certificates, "a", &rec(9))
                .expect("a again"),
            "an id is never reused"
        );
        db.put(Table::ClientCertificates, "a", &rec(2))
            .expect("same id, other table");
        db.put(Table::Certificates, "b", &rec(3)).expect("b");
        db.put(Table::Certificates, "b", &rec(4))
            .expect("b replaced");
        assert_eq!(
            db.get::<Rec>(Table::Certificates, "a").expect("get"),
            Some(rec(1))
        );
        assert_eq!(db.get::<Rec>(Table::Certificates, "z").expect("get"), None);
    }
    let db = ResourceDb::open(state.path()).expect("reopen");
    let certs: Vec<(String, Rec)> = db.list(Table::Certificates).expect("list");
    assert_eq!(certs, [("a".into(), rec(1)), ("b".into(), rec(4))]);
    let clients: Vec<(String, Rec)> = db.list(Table::ClientCertificates).expect("list");
    assert_eq!(clients, [("a".into(), rec(2))]);
    assert!(db.remove(Table::Certificates, "a").expect("remove"));
    assert!(!db.remove(Table::Certificates, "a").expect("remove again"));
    assert_eq!(db.list::<Rec>(Table::Certificates).expect("list").len(), 1);
}

#[test]
fn the_file_is_private_and_its_directory_too() {
    let state = tempfile::tempdir().expect("tempdir");
    let db = ResourceDb::open(state.path()).expect("open");
    assert_eq!(db.path(), state.path().join(DIR).join(FILE));
    assert_eq!(mode(db.path()), 0o600);
    assert_eq!(mode(&state.path().join(DIR)), 0o700);
    drop(db);
    // A file whose mode was widened by hand is made private again.
    fs::set_permissions(
        state.path().join(DIR).join(FILE),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let db = ResourceDb::open(state.path()).expect("reopen");
    assert_eq!(mode(db.path()), 0o600);
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_file() {
    let state = tempfile::tempdir().expect("tempdir");
    let held = ResourceDb::open(state.path()).expect("open");
    match ResourceDb::open_existing(state.path()) {
        Err(DbError::Locked { path }) => assert_eq!(path, held.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(held);
    assert!(
        ResourceDb::open_existing(state.path())
            .expect("open after the holder closed it")
            .is_some()
    );
}

#[test]
fn open_existing_creates_nothing() {
    let state = tempfile::tempdir().expect("tempdir");
    assert!(
        ResourceDb::open_existing(state.path())
            .expect("no file")
            .is_none()
    );
    assert!(!state.path().join(DIR).exists());
}

#[test]
fn a_record_that_does_not_decode_is_skipped_in_lists_and_an_error_alone() {
    let state = tempfile::tempdir().expect("tempdir");
    let db = ResourceDb::open(state.path()).expect("open");
    db.put(Table::Certificates, "good", &rec(1)).expect("good");
    db.put(Table::Certificates, "bad", &"not a record")
        .expect("bad");
    let listed: Vec<(String, Rec)> = db.list(Table::Certificates).expect("list");
    assert_eq!(listed, [("good".into(), rec(1))]);
    let err = db
        .get::<Rec>(Table::Certificates, "bad")
        .expect_err("bad record");
    assert!(err.to_string().contains("\"bad\""), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let state = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(state.path().join(DIR)).expect("mkdir");
    fs::write(
        state.path().join(DIR).join(FILE),
        b"this is not a redb file, not at all, and it is long enough to look at".repeat(100),
    )
    .expect("write");
    let err = ResourceDb::open(state.path()).expect_err("garbage");
    assert!(matches!(err, DbError::Storage { .. }), "{err}");
}

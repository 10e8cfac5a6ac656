//! A database held by another process, corrupt or unwritable: the program runs on, and
//! events of a held database are not lost.

mod common;

use common::{db_dir, scenario};
use stacktrace::{Store, StoreError};

#[test]
fn held_database_spools_and_merges_on_next_open() {
    let (_dir, db) = db_dir();
    let holder = Store::open(&db).unwrap();
    let again = Store::open(&db);
    assert!(matches!(again, Err(StoreError::Locked { .. })), "{again:?}");

    let run = scenario("keep-running", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("still running"));
    assert!(run.stdout.contains("held by another process"), "{run:?}");
    assert!(run.stdout.contains("storing: true"));
    assert!(
        run.stderr.contains(".spool"),
        "says where events go: {}",
        run.stderr
    );
    assert_eq!(holder.query().count().unwrap(), 0);
    drop(holder);

    let store = Store::open(&db).unwrap();
    let events = store.query().run().unwrap().events;
    let mut messages: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
    messages.sort();
    assert_eq!(messages, ["failure at site b", "while locked"]);
    assert_eq!(
        store.groups(stacktrace::GroupOrder::Count).unwrap().len(),
        2
    );
    drop(store);
    // Merged once: opening again adds nothing.
    assert_eq!(Store::open(&db).unwrap().query().count().unwrap(), 2);
    assert!(!db.with_file_name("events.db.spool").exists());
}

#[test]
fn a_file_where_the_database_should_be_is_a_clear_error_and_the_program_runs_on() {
    let (_dir, db) = db_dir();
    std::fs::write(&db, b"this is not a database").unwrap();
    let err = Store::open(&db).unwrap_err();
    assert!(err.to_string().contains("events.db"), "{err}");
    let run = scenario("keep-running", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("still running"));
    assert!(
        run.stdout.contains("install error: cannot open database"),
        "{run:?}"
    );
    assert!(run.stdout.contains("storing: false"));
}

#[test]
fn a_corrupt_database_is_a_clear_error_and_the_program_runs_on() {
    let (_dir, db) = db_dir();
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("conf"), b"\xff\xfe garbage").unwrap();
    std::fs::write(db.join("db"), vec![0xAB; 4096]).unwrap();
    let run = scenario("keep-running", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("still running"), "{run:?}");
    assert!(run.stdout.contains("install error"), "{run:?}");
}

#[test]
fn a_path_below_a_file_is_a_clear_error() {
    let (dir, _) = db_dir();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let db = file.join("sub").join("events.db");
    let err = Store::open(&db).unwrap_err();
    assert!(err.to_string().contains("plain-file"), "{err}");
    let run = scenario("keep-running", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("still running"));
}

//! A database held by another process, corrupt or unwritable: the program runs on, and
//! events of a held database are not lost.

mod support;

use std::path::{Path, PathBuf};

use stacktrace::{Store, StoreError};
use support::cli::get;
use support::scenario::{copy_dir, db_dir, moved_aside, scenario};

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

// Pins: garbage written over sled's data file (`db`, with `conf` intact) opened as an empty
// database without a word; every earlier event was gone and nothing said so.
#[test]
fn a_damaged_data_file_is_named_moved_aside_once_and_a_fresh_database_stores_again() {
    let (_dir, db) = db_dir();
    let run = scenario("fill", &db, "20");
    assert_eq!(run.code, Some(0), "{run:?}");
    // An event a program spooled (or journaled) and no program merged yet: it must reach
    // the fresh database, not the damaged one.
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 20);
    let mut spooled = store.query().limit(1).run().unwrap().events.remove(0);
    drop(store);
    spooled.message = "spooled before the damage".into();
    let spool = db.with_file_name("events.db.spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(
        spool.join("1-0.jsonl"),
        format!("{}\n", serde_json::to_string(&spooled).unwrap()),
    )
    .unwrap();

    let data = db.join("db");
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![0xAB; len]).unwrap();
    // With its snapshot, sled refuses the data file; that is named too.
    let refused = Store::open(&db).unwrap_err();
    assert!(
        matches!(&refused, StoreError::Corrupt { path, .. } if path == &db),
        "{refused:?}"
    );
    // Without one, sled reads the data file as an empty database: the silent case.
    for e in std::fs::read_dir(&db).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("snap.") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let err = Store::open(&db).unwrap_err();
    match &err {
        StoreError::Corrupt { path, expected, .. } => {
            assert_eq!(path, &db);
            assert!(expected.contains("20 events"), "{err}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains(&*db.to_string_lossy()), "{err}");

    // The tool says it in one line naming the path, and leaves the database where it is.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktrace-cli"));
    cmd.arg("--db")
        .arg(&db)
        .arg("list")
        .env_remove("STACKTRACE_DB");
    let listed = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_ne!(listed.code, Some(0), "{listed:?}");
    let said: Vec<&str> = listed.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(said.len(), 1, "{listed:?}");
    assert!(said[0].contains(&*db.to_string_lossy()) && said[0].contains("damaged"));
    assert!(moved_aside(&db).is_empty());

    // A program installing on it moves it aside, says so once, and stores again.
    let run = scenario("keep-running", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("storing: true"), "{run:?}");
    assert_eq!(run.stderr.matches("is damaged").count(), 1, "{run:?}");
    assert_eq!(run.stdout.matches("install error").count(), 1, "{run:?}");
    let aside = moved_aside(&db);
    assert_eq!(aside.len(), 1, "{aside:?}");
    let notice = run
        .stdout
        .lines()
        .find(|l| l.contains("install error"))
        .unwrap();
    assert!(notice.contains(&*db.to_string_lossy()), "{notice}");
    assert!(notice.contains(&*aside[0].to_string_lossy()), "{notice}");
    assert!(notice.contains("held 20 events"), "{notice}");

    // The fresh database holds the spooled events and the new ones; the next start is quiet.
    let store = Store::open(&db).unwrap();
    let mut messages: Vec<String> = store
        .query()
        .run()
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.message)
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            "failure at site b",
            "spooled before the damage",
            "while locked"
        ]
    );
    drop(store);
    let run = scenario("keep-running", &db, "");
    assert!(!run.stderr.contains("damaged"), "{run:?}");
    assert!(run.stdout.contains("storing: true"), "{run:?}");
    assert_eq!(moved_aside(&db).len(), 1);
}

// Pins: a data file damaged in its middle made sled panic while opening; the tool printed
// sled's panic instead of one line naming the database.
#[test]
fn a_data_file_that_makes_sled_panic_is_named_in_one_line_and_moved_aside_at_install() {
    let (dir, db) = db_dir();
    let (pristine, data, len) = filled_with_a_copy(dir.path(), &db);
    assert!(len > 2 << 20, "{len} bytes: too small to damage its middle");
    // Where sled keeps its live pages varies from run to run (a damaged region may hold
    // only stale ones): the first region of 1 MiB whose damage makes sled panic.
    let stats = (1..len >> 20)
        .find_map(|mib| {
            std::fs::remove_dir_all(&db).unwrap();
            copy_dir(&pristine, &db);
            let mut bytes = std::fs::read(&data).unwrap();
            bytes[mib << 20..(mib + 1) << 20].fill(0xAB);
            std::fs::write(&data, bytes).unwrap();
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktrace-cli"));
            cmd.arg("--db")
                .arg(&db)
                .arg("stats")
                .env_remove("STACKTRACE_DB");
            let stats = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
            stats.stderr.contains("made sled panic").then_some(stats)
        })
        .expect("damaging some region of the data file makes sled panic");
    assert_ne!(stats.code, Some(0), "{stats:?}");
    let said: Vec<&str> = stats.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(said.len(), 1, "{stats:?}");
    assert!(said[0].contains(&*db.to_string_lossy()) && said[0].contains("damaged"));

    // Pins: at install, sled's panic reached the program's previous hook (here the default
    // one), which printed it above the tracker's own line: the damage was not said once.
    let run = scenario("keep-running", &db, "");
    assert!(run.stdout.contains("storing: true"), "{run:?}");
    let panics: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("panicked at"))
        .collect();
    // The scenario's own panic, chained to the default hook, is still printed.
    assert_eq!(panics.len(), 1, "{run:?}");
    assert!(panics[0].contains("scenario"), "{run:?}");
    let damaged: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("is damaged"))
        .collect();
    assert_eq!(damaged.len(), 1, "{run:?}");
    assert!(damaged[0].contains(&*db.to_string_lossy()), "{run:?}");
    assert_eq!(moved_aside(&db).len(), 1);
    assert_eq!(Store::open(&db).unwrap().query().count().unwrap(), 2);
}

// Pins: a damaged database that could not be moved aside was reported as a failed spool
// file named after the database ("spool file <db> failed: ..."), naming the wrong step.
#[test]
fn a_damaged_database_that_cannot_be_moved_aside_says_the_move_failed() {
    let (dir, _) = db_dir();
    // A name the database fits under but its aside name (`.corrupt-<seconds>` added) does
    // not: file names are limited to 255 bytes, so the move fails.
    let db = dir.path().join(format!("{}.db", "e".repeat(243)));
    let run = scenario("fill", &db, "5");
    assert_eq!(run.code, Some(0), "{run:?}");
    let data = db.join("db");
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![0xAB; len]).unwrap();
    assert!(
        matches!(Store::open(&db), Err(StoreError::Corrupt { .. })),
        "the database must read as damaged for the move to be tried"
    );

    let run = scenario("keep-running", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("storing: false"), "{run:?}");
    let notice = run
        .stdout
        .lines()
        .find(|l| l.contains("install error") && l.contains("is damaged"))
        .unwrap_or_else(|| panic!("no notice of the damage: {run:?}"));
    assert!(notice.contains(&*db.to_string_lossy()), "{notice}");
    let moving = format!("moving {} to {}.corrupt-", db.display(), db.display());
    assert!(notice.contains(&moving), "{notice}");
    assert!(!notice.contains("spool"), "{notice}");
    assert!(db.join("db").exists(), "the database stays where it was");
}

// Pins: only sled's Corruption error and its panics counted as damage; a damaged
// configuration file failed as a plain open error, so install moved nothing aside and the
// program stayed without storage at every start.
#[test]
fn a_damaged_configuration_file_is_moved_aside_at_install() {
    for (what, conf) in [
        ("cut short", None),
        (
            "garbage",
            Some(b"\xff\xfe garbage that is not a sled conf".to_vec()),
        ),
    ] {
        let (_dir, db) = db_dir();
        let run = scenario("fill", &db, "3");
        assert_eq!(run.code, Some(0), "{what}: {run:?}");
        let path = db.join("conf");
        let bytes = std::fs::read(&path).unwrap();
        let damaged = conf.unwrap_or_else(|| bytes[..bytes.len() / 2].to_vec());
        std::fs::write(&path, damaged).unwrap();
        let err = Store::open(&db).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { path, .. } if path == &db),
            "{what}: {err:?}"
        );

        let run = scenario("keep-running", &db, "");
        assert!(run.stdout.contains("storing: true"), "{what}: {run:?}");
        assert_eq!(moved_aside(&db).len(), 1, "{what}: {run:?}");
    }
}

// Pins: garbage over pages of sled's data file that opening does not read made `stacktrace
// list` print sled's own "database I/O failed: Read corrupted data at file offset
// Some(Inline(...)) backtrace ()", naming no database and saying nothing of what to do.
#[test]
fn damaged_pages_past_the_open_are_said_in_one_line_naming_the_database() {
    let (dir, db) = db_dir();
    let (pristine, data, len) = filled_with_a_copy(dir.path(), &db);
    // Where sled keeps its live pages varies from run to run: the first 4 KiB, every
    // 256 KiB, whose damage opening lets pass and listing meets.
    let listed = (1..len >> 18)
        .find_map(|at| {
            std::fs::remove_dir_all(&db).unwrap();
            copy_dir(&pristine, &db);
            let mut bytes = std::fs::read(&data).unwrap();
            bytes[at << 18..(at << 18) + 4096].fill(0xAB);
            std::fs::write(&data, bytes).unwrap();
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stacktrace-cli"));
            cmd.arg("--db")
                .arg(&db)
                .args(["list", "--limit", "0"])
                .env_remove("STACKTRACE_DB");
            let listed = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
            // The control: opening passed, reading met the damage.
            (listed.code == Some(1) && !listed.stderr.contains("sled can read,")).then_some(listed)
        })
        .expect("damaging some page makes listing fail past the open");
    let said: Vec<&str> = listed.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(said.len(), 1, "{listed:?}");
    assert!(said[0].contains(&*db.to_string_lossy()), "{listed:?}");
    assert!(said[0].contains("is damaged"), "{listed:?}");
    assert!(said[0].contains("moves it aside"), "{listed:?}");
    assert!(!said[0].contains("backtrace"), "{listed:?}");

    // `serve` comes up on it and answers with the same words on an error page.
    let server = support::cli::Server::start(&db, &[]);
    let (status, page) = get(&server.url, "/events");
    assert_eq!(status, 500, "{page}");
    assert!(page.contains("is damaged"), "{page}");
    assert!(page.contains(&*db.to_string_lossy()), "{page}");
    // The control: a page that reads no damaged page is still served.
    assert_ne!(get(&server.url, "/nowhere").0, 0);
}

/// A database of 2,000 events at `db`, and a copy of it in `dir` to damage it again from:
/// the copy's path, the data file's path and its length.
fn filled_with_a_copy(dir: &Path, db: &Path) -> (PathBuf, PathBuf, usize) {
    let run = scenario("fill", db, "2000");
    assert_eq!(run.code, Some(0), "{run:?}");
    let pristine = dir.join("pristine.db");
    copy_dir(db, &pristine);
    let data = db.join("db");
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    (pristine, data, len)
}

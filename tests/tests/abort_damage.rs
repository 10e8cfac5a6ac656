//! Damaged files met at install in a `panic = "abort"` build, where no panic can be caught:
//! the program starts and stores as the unwinding build does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stacktrace::Store;
use support::abort::abort_build;
use support::scenario::{copy_dir, db_dir, moved_aside, run_with_limit, scenario, Run};

/// The scenario program of each build: the one built with `panic = "abort"`, and the
/// ordinary (unwinding) one.
fn builds() -> [(&'static str, PathBuf); 2] {
    [
        ("abort", abort_build()),
        ("unwind", PathBuf::from(env!("CARGO_BIN_EXE_scenario"))),
    ]
}

/// Runs `exe`'s `trial-opens` scenario on `db`: install, one event stored, the child
/// processes that ended meanwhile counted.
fn trial_opens(exe: &Path, db: &Path) -> Run {
    let mut cmd = Command::new(exe);
    cmd.arg("trial-opens").arg(db).env_remove("STACKTRACE_DB");
    run_with_limit(cmd, Duration::from_secs(120))
}

/// The child processes the scenario saw end.
fn children(run: &Run) -> usize {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("children: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of children: {run:?}"))
}

fn messages_in(db: &Path) -> Vec<String> {
    let store = Store::open(db).expect("open");
    let events = store.query().run().expect("query").events;
    events.into_iter().map(|e| e.message).collect()
}

/// A database whose data file makes sled panic while opening, at `db`: a filled one with
/// the first region of 1 MiB whose damage does (where sled keeps its live pages varies
/// from run to run), as the tool finds it.
fn a_database_that_makes_sled_panic(db: &Path) {
    let run = scenario("fill", db, "2000");
    assert_eq!(run.code, Some(0), "{run:?}");
    let pristine = db.with_file_name("pristine.db");
    copy_dir(db, &pristine);
    let data = db.join("db");
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    assert!(len > 2 << 20, "{len} bytes: too small to damage its middle");
    (1..len >> 20)
        .find(|mib| {
            std::fs::remove_dir_all(db).unwrap();
            copy_dir(&pristine, db);
            let mut bytes = std::fs::read(&data).unwrap();
            bytes[mib << 20..(mib + 1) << 20].fill(0xAB);
            std::fs::write(&data, bytes).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_stacktrace-cli"));
            cmd.arg("--db")
                .arg(db)
                .arg("stats")
                .env_remove("STACKTRACE_DB");
            run_with_limit(cmd, Duration::from_secs(60))
                .stderr
                .contains("made sled panic")
        })
        .expect("damaging some region of the data file makes sled panic");
    std::fs::remove_dir_all(&pristine).unwrap();
}

// Pins: in a `panic = "abort"` build, sled's panic on a damaged database was not caught (no
// `catch_unwind` holds there), so install() aborted the program at every start until
// someone removed the database. It is now moved aside and a fresh one stores, as in the
// unwinding build, which is the control.
#[test]
fn a_database_that_makes_sled_panic_is_moved_aside_in_an_abort_build_as_in_an_unwinding_one() {
    let (dir, fixture) = db_dir();
    a_database_that_makes_sled_panic(&fixture);
    for (build, exe) in builds() {
        let db = dir.path().join(build).join("events.db");
        copy_dir(&fixture, &db);
        let run = trial_opens(&exe, &db);
        assert_eq!(run.code, Some(0), "{build}: {run:?}");
        assert!(run.stdout.contains("storing: true"), "{build}: {run:?}");
        assert!(run.stdout.contains("still running"), "{build}: {run:?}");
        let damaged: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("is damaged"))
            .collect();
        assert_eq!(damaged.len(), 1, "{build}: {run:?}");
        assert!(damaged[0].contains("made sled panic"), "{build}: {run:?}");
        assert!(!run.stderr.contains("panicked at"), "{build}: {run:?}");
        assert_eq!(moved_aside(&db).len(), 1, "{build}: {run:?}");
        assert_eq!(messages_in(&db), ["stored after the start"], "{build}");
        // Two trials of the damaged database (module files read, then not), one of the
        // fresh one; none where a panic unwinds.
        let expected = if build == "abort" { 3 } else { 0 };
        assert_eq!(children(&run), expected, "{build}: {run:?}");
    }
}

// A healthy database stays where it is in both builds; the abort build tries its open once
// in a child, the unwinding build never forks.
#[test]
fn a_healthy_database_is_not_moved_aside_and_only_the_abort_build_tries_its_open() {
    let (dir, _) = db_dir();
    for (build, exe) in builds() {
        let db = dir.path().join(build).join("events.db");
        let run = scenario("fill", &db, "3");
        assert_eq!(run.code, Some(0), "{build}: {run:?}");
        let run = trial_opens(&exe, &db);
        assert_eq!(run.code, Some(0), "{build}: {run:?}");
        assert!(run.stdout.contains("storing: true"), "{build}: {run:?}");
        assert!(!run.stdout.contains("install error"), "{build}: {run:?}");
        assert!(moved_aside(&db).is_empty(), "{build}: {run:?}");
        assert_eq!(messages_in(&db).len(), 4, "{build}");
        let expected = if build == "abort" { 1 } else { 0 };
        assert_eq!(children(&run), expected, "{build}: {run:?}");
    }
}

// A journal naming a module whose file is garbage: the symbol readers (object, gimli,
// addr2line) return errors on garbage rather than panic, so this holds on the code before
// the trial opens too; it pins that the abort build, trials and all, stores the journaled
// event with its addresses and why, and keeps the database, as the unwinding build does.
#[test]
fn a_garbage_module_file_named_by_a_journal_leaves_the_event_unresolved_in_both_builds() {
    let (dir, _) = db_dir();
    for (build, exe) in builds() {
        let db = dir.path().join(build).join("events.db");
        let run = scenario("fill", &db, "1");
        assert_eq!(run.code, Some(0), "{build}: {run:?}");
        let store = Store::open(&db).unwrap();
        let mut event = serde_json::to_value(&store.query().run().unwrap().events[0]).unwrap();
        drop(store);
        let module = dir.path().join(build).join("module.so");
        let mut garbage = b"\x7fELF\x02\x01\x01".to_vec();
        garbage.extend(std::iter::repeat_n(0xAB, 64 << 10));
        std::fs::write(&module, garbage).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let id = format!("{:032x}", (now << 64) | 0x5eed);
        event["id"] = id.into();
        event["fingerprint"] = format!("{:064x}", 0x5eed).into();
        event["message"] = "a panic journaled as addresses".into();
        event["frames"] = serde_json::json!([]);
        event["unresolved"] = serde_json::json!({
            "modules": [{"path": module.to_str().unwrap(), "build_id": "00ff00ff"}],
            "addresses": [[0, 4096]],
        });
        let spool = db.with_file_name("events.db.spool");
        std::fs::create_dir_all(&spool).unwrap();
        std::fs::write(spool.join("1-00000000000000ab.jsonl"), format!("{event}\n")).unwrap();

        let run = trial_opens(&exe, &db);
        assert_eq!(run.code, Some(0), "{build}: {run:?}");
        assert!(run.stdout.contains("storing: true"), "{build}: {run:?}");
        assert!(moved_aside(&db).is_empty(), "{build}: {run:?}");
        let store = Store::open(&db).unwrap();
        let events = store.query().run().unwrap().events;
        let journaled = events
            .iter()
            .find(|e| e.message == "a panic journaled as addresses")
            .unwrap_or_else(|| panic!("{build}: the journaled event is stored"));
        let unresolved = journaled.unresolved.as_ref().expect("addresses kept");
        assert_eq!(unresolved.addresses, [(0, 4096)], "{build}");
        let reason = unresolved.reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("not a readable module"),
            "{build}: {reason}"
        );
        assert!(
            events.iter().any(|e| e.message == "stored after the start"),
            "{build}"
        );
    }
}

//! Panic scenarios, each in a process of its own: the event is stored durably by the hook,
//! the previous hook still prints, the exit code is unchanged.

mod common;

use common::{db_dir, scenario};
use stacktrace::{GroupOrder, GroupStatus, Level, Store};

fn only_event(db: &std::path::Path) -> stacktrace::CrashEvent {
    let store = Store::open(db).expect("open after the program ended");
    let mut events = store.query().run().expect("query").events;
    assert_eq!(events.len(), 1, "{events:#?}");
    events.remove(0)
}

#[test]
fn panic_in_main_is_stored_and_the_process_ends_as_usual() {
    let (_dir, db) = db_dir();
    let run = scenario("panic-main", &db, "");
    assert_eq!(run.code, Some(101), "{run:?}");
    // The previous (default) hook still prints its message.
    assert!(run.stderr.contains("panicked at"), "{}", run.stderr);
    assert!(run.stderr.contains("failure at site a"), "{}", run.stderr);

    let e = only_event(&db);
    assert_eq!(e.level, Level::Fatal);
    assert_eq!(e.logger, "panic");
    assert_eq!(e.error_type, "panic");
    assert_eq!(e.message, "failure at site a");
    let loc = e.location.expect("location");
    assert!(loc.file.ends_with("scenario.rs"), "{loc:?}");
    assert!(loc.line > 0 && loc.column > 0);
    assert_eq!(e.context.thread_name.as_deref(), Some("main"));
    assert!(e.context.thread_id.starts_with("ThreadId("));
    // Machinery trimmed: the first frame is the function that panicked, demangled, no hash.
    let first = e.frames.first().expect("frames");
    assert_eq!(first.function, "scenario::site_a", "{:#?}", e.frames);
    assert!(first.in_app);
    assert!(e.frames.iter().any(|f| f.function == "scenario::main"));
    assert!(e
        .frames
        .iter()
        .all(|f| !f.function.starts_with("std::panicking")));
    assert_eq!(e.fingerprint.len(), 64);
}

#[test]
fn panic_in_a_thread_is_stored_and_main_goes_on() {
    let (_dir, db) = db_dir();
    let run = scenario("panic-thread", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("main goes on"));
    assert!(run.stderr.contains("failure at site b"));
    let e = only_event(&db);
    assert_eq!(e.message, "failure at site b");
    assert_eq!(e.context.thread_name.as_deref(), Some("worker-1"));
    assert_eq!(e.frames[0].function, "scenario::site_b");
}

#[test]
fn same_site_groups_other_site_splits_and_resolved_group_regresses() {
    let (_dir, db) = db_dir();
    for _ in 0..2 {
        assert_eq!(scenario("site", &db, "a").code, Some(0));
    }
    assert_eq!(scenario("site", &db, "b").code, Some(0));
    let fp_a = {
        let store = Store::open(&db).unwrap();
        let groups = store.groups(GroupOrder::Count).unwrap();
        assert_eq!(groups.len(), 2, "{groups:#?}");
        assert_eq!(groups[0].count, 2);
        assert!(groups[0].title.contains("site a"));
        assert_eq!(groups[1].count, 1);
        assert!(groups[1].title.contains("site b"));
        assert!(groups[0].first_seen_us < groups[0].last_seen_us);
        let resolved = store.resolve(&groups[0].fingerprint).unwrap().unwrap();
        assert_eq!(resolved.status, GroupStatus::Resolved);
        groups[0].fingerprint.clone()
    };
    assert_eq!(scenario("site", &db, "a").code, Some(0));
    let store = Store::open(&db).unwrap();
    let g = store.group(&fp_a).unwrap().unwrap();
    assert_eq!(g.count, 3);
    assert_eq!(g.status, GroupStatus::Unresolved);
    assert!(g.regressed);
    let by_fp = store.query().fingerprint(&fp_a).run().unwrap().events;
    assert_eq!(by_fp.len(), 3);
    assert_eq!(by_fp[0].id, g.last_event);
}

#[test]
fn sixteen_threads_panicking_at_once_are_each_stored_once() {
    let (_dir, db) = db_dir();
    let run = scenario("storm", &db, "16");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("16 threads panicked"));
    let store = Store::open(&db).unwrap();
    let events = store.query().limit(100).run().unwrap().events;
    assert_eq!(events.len(), 16);
    let mut messages: Vec<_> = events.iter().map(|e| e.message.clone()).collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 16, "each panic once: {messages:?}");
    // One call site: one group of 16.
    let groups = store.groups(GroupOrder::Count).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].count, 16);
}

#[test]
fn a_panic_survives_kill_9_right_after_the_hook() {
    use std::io::BufRead;
    let (_dir, db) = db_dir();
    let mut child = common::scenario_command("panic-then-hang", &db, "")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    child.kill().unwrap(); // SIGKILL: no flush, no exit handlers
    child.wait().unwrap();
    let e = only_event(&db);
    assert_eq!(e.message, "failure at site b");
    assert_eq!(e.frames[0].function, "scenario::site_b");
}

#[test]
fn a_clean_exit_leaves_no_panic_journal_behind() {
    let (_dir, db) = db_dir();
    assert_eq!(scenario("panic-thread", &db, "").code, Some(0));
    let journal_dir = db.with_file_name("events.db.spool");
    // The guard's flush emptied the journal; opening removes what is left of it.
    let sizes: Vec<u64> = std::fs::read_dir(&journal_dir)
        .map(|d| d.flatten().map(|e| e.metadata().unwrap().len()).collect())
        .unwrap_or_default();
    assert!(sizes.iter().all(|n| *n == 0), "{sizes:?}");
    only_event(&db);
    assert!(!journal_dir.exists());
}

#[test]
fn a_panic_with_the_writer_queue_full_is_stored_by_the_hook_once() {
    let (_dir, db) = db_dir();
    let run = scenario("writer-held", &db, "full");
    assert_eq!(run.code, Some(0), "{run:?}");
    // The writer could take nothing: the hook stored the panic itself, at once.
    assert!(
        run.stdout
            .contains("panics stored while the writer is held: 1"),
        "{run:?}"
    );
    assert!(run.stdout.contains("flushed"), "{run:?}");
    let store = Store::open(&db).unwrap();
    let panics = store.query().error_type("panic").run().unwrap().events;
    assert_eq!(panics.len(), 1, "{panics:#?}");
    assert_eq!(panics[0].message, "failure at site b");
    assert_eq!(panics[0].frames[0].function, "scenario::site_b");
    // Both messages were stored too, and nothing was dropped.
    assert_eq!(store.query().count().unwrap(), 3);
    assert!(store.dropped().unwrap().values().all(|n| *n == 0));
    let groups = store.groups(GroupOrder::Count).unwrap();
    let g = groups.iter().find(|g| g.title.contains("site b")).unwrap();
    assert_eq!(g.count, 1);
}

#[test]
fn a_flush_before_the_writer_stored_a_panic_keeps_it_in_the_journal() {
    let (_dir, db) = db_dir();
    let run = scenario("writer-held", &db, "journal");
    assert_eq!(run.code, Some(0), "{run:?}");
    // Queued behind the held writer, so not in the database yet...
    assert!(
        run.stdout
            .contains("panics stored while the writer is held: 0"),
        "{run:?}"
    );
    assert!(run.stdout.contains("ending before"), "{run:?}");
    // ...and the flush left it in the journal, which the next open merges.
    let store = Store::open(&db).unwrap();
    let panics = store.query().error_type("panic").run().unwrap().events;
    assert_eq!(panics.len(), 1, "{panics:#?}");
    assert_eq!(panics[0].message, "failure at site b");
    assert_eq!(panics[0].frames[0].function, "scenario::site_b");
}

// Pins: an error captured just before `std::process::exit` was lost, since `exit` runs no
// destructor and the guard never flushed the writer's queue.
#[test]
fn an_error_captured_right_before_process_exit_is_stored() {
    let (_dir, db) = db_dir();
    let run = scenario("error-then-exit", &db, "");
    assert_eq!(run.code, Some(3), "{run:?}");
    let e = only_event(&db);
    assert_eq!(e.level, Level::Error);
    assert!(e.message.contains("cannot load config"), "{e:#?}");
}

/// The lines of `stderr` saying that panics are no longer captured.
fn replaced_hook_warnings(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.contains("panics are no longer captured"))
        .count()
}

// Pins: a panic hook set after `install()` that replaced the tracker's stopped panic
// capture without a word.
#[test]
fn a_hook_that_replaces_ours_after_install_is_said_once() {
    let (_dir, db) = db_dir();
    let run = scenario("hook-after-install", &db, "replaced");
    assert_eq!(run.code, Some(0), "{run:?}");
    // The program's own hook ran: its stderr is what was read.
    assert!(run.stderr.contains("own hook ran"), "{run:?}");
    assert_eq!(replaced_hook_warnings(&run.stderr), 1, "{}", run.stderr);
    assert!(run.stderr.contains("take_hook"), "{}", run.stderr);
    assert!(run.stdout.contains("capturing panics: false"), "{run:?}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 0);
}

// The control: a hook that chains to ours keeps panics captured, and nothing is said.
#[test]
fn a_hook_that_chains_to_ours_after_install_keeps_capturing_silently() {
    let (_dir, db) = db_dir();
    let run = scenario("hook-after-install", &db, "chained");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("own hook ran"), "{run:?}");
    assert!(run.stderr.contains("failure at site b"), "{run:?}");
    assert_eq!(replaced_hook_warnings(&run.stderr), 0, "{}", run.stderr);
    assert!(run.stdout.contains("capturing panics: true"), "{run:?}");
    let e = only_event(&db);
    assert_eq!(e.message, "failure at site b");
}

//! The crash record and the fatal-signal handler beside what else a program does with
//! processes and signals: a child forked without `exec`, a SIGSEGV handler of its own that
//! recovers from faults, a process that is not dumpable, threads std did not make. Each
//! runs as the crash scenario program; the next open reports what it left. Linux only.
#![cfg(target_os = "linux")]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use stacktrace::{CrashEvent, Level, Store};
use support::crash::{run, run_and_kill, run_both};

fn events_of(db: &Path) -> Vec<CrashEvent> {
    let store = Store::open(db).expect("open the database");
    store.query().run().expect("query").events
}

fn crash_events(events: &[CrashEvent]) -> Vec<&CrashEvent> {
    events.iter().filter(|e| e.logger == "crash").collect()
}

fn messages(events: &[CrashEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

fn breadcrumb_messages(e: &CrashEvent) -> Vec<&str> {
    e.breadcrumbs.iter().map(|b| b.message.as_str()).collect()
}

/// The sessions of the scenario's release: (clean, errored, crashed).
fn sessions(db: &Path) -> (u64, u64, u64) {
    let store = Store::open(db).expect("open the database");
    let r = store
        .release("crash-test 1.0")
        .expect("read the release")
        .expect("the release is known");
    (r.clean, r.errored, r.crashed)
}

// Regression: a child forked after install() (no exec) shared the crash record, and its
// exit marked it closed and ended the parent's session, so a later SIGKILL of the parent
// read as a clean end and was never reported; its events and breadcrumbs went into the
// parent's files.
#[test]
fn a_forked_child_that_exits_leaves_its_parents_kill_reported() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_and_kill("fork-then-wait-for-kill", &db);
    assert!(
        ended.stderr.contains("forked from") && ended.stderr.contains("not stored"),
        "{}",
        ended.stderr
    );
    let events = events_of(&db);
    let crashes = crash_events(&events);
    assert_eq!(crashes.len(), 1, "{events:#?}");
    let e = crashes[0];
    assert_eq!(
        (e.level, e.error_type.as_str()),
        (Level::Warning, "unclean shutdown")
    );
    // The parent's breadcrumbs, the one after the child ended among them; none of the
    // child's.
    assert_eq!(
        breadcrumb_messages(e),
        [
            "scenario started",
            "running fork-then-wait-for-kill",
            "the child is gone"
        ]
    );
    // The parent's capture is stored (control); the child's are not.
    let all = messages(&events);
    assert!(all.contains(&"captured in the parent"), "{all:?}");
    assert!(
        !all.iter()
            .any(|m| m.contains("forked child") || m.contains("child")),
        "{all:?}"
    );
    assert_eq!(sessions(&db), (0, 0, 1));

    // Control: the same kill without a fork is reported the same way.
    let (_dir, db) = support::scenario::db_dir();
    run_and_kill("wait-for-kill", &db);
    let events = events_of(&db);
    let crashes = crash_events(&events);
    assert_eq!(crashes.len(), 1, "{events:#?}");
    assert_eq!(
        (crashes[0].level, crashes[0].error_type.as_str()),
        (Level::Warning, "unclean shutdown")
    );
}

#[test]
fn a_parent_that_exits_cleanly_after_its_forked_child_is_a_clean_end() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run("fork-then-exit", &db, false);
    assert_eq!(ended.status.code(), Some(0), "{}", ended.stderr);
    let events = events_of(&db);
    assert!(crash_events(&events).is_empty(), "{events:#?}");
    let all = messages(&events);
    assert_eq!(all, ["captured in the parent"]);
    assert_eq!(sessions(&db), (1, 0, 0));
}

// Regression: with a SIGSEGV handler installed before ours that recovers from its own
// faults (as a JIT's or WebAssembly runtime's does), its first fault was written down as a
// crash, the record stayed crashing through the clean exit, the next start reported a crash
// that never happened, and our handler was gone for the rest of the process.
#[test]
fn a_fault_the_previous_handler_recovers_from_is_no_crash() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("recover-then-exit", &db);
    assert_eq!(ended.status.code(), Some(0), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("recovered a fault on the page")
            && ended.stderr.contains("the program went on after the fault"),
        "{}",
        ended.stderr
    );
    let events = events_of(&db);
    assert!(crash_events(&events).is_empty(), "{events:#?}");
    assert_eq!(sessions(&db), (1, 0, 0));

    // Control, and the handler still armed: a real fault after the recovered one is
    // caught and reported, at its own address.
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("recover-then-null-write", &db);
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    assert!(
        ended.stderr.contains("the program went on after the fault"),
        "{}",
        ended.stderr
    );
    let events = events_of(&db);
    let crashes = crash_events(&events);
    assert_eq!(crashes.len(), 1, "{events:#?}");
    assert_eq!(
        crashes[0].message,
        "SIGSEGV (invalid memory reference) at 0x0 in thread 'main'"
    );
    assert!(
        crashes[0]
            .frames
            .iter()
            .any(|f| f.function.ends_with("write_through_null")),
        "{:#?}",
        crashes[0].frames
    );
}

// Regression: while it ran, the handler made the process dumpable again
// (`PR_SET_DUMPABLE`) and let any process trace it (`PR_SET_PTRACER_ANY`), though the
// program had turned dumping off to protect its secrets. The scenario turns dumping off,
// then has a seccomp filter kill the process (SIGSYS) on either call; its own SIGSEGV
// handler, called from inside ours, says what it sees.
#[test]
fn the_handler_leaves_an_undumpable_process_undumpable() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("undumpable-null-write", &db);
    assert_eq!(
        ended.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        ended.stderr
    );
    assert!(
        ended.stderr.contains("dumpable in the handler: 0"),
        "{}",
        ended.stderr
    );
    let events = events_of(&db);
    let crashes = crash_events(&events);
    assert_eq!(crashes.len(), 1, "{events:#?}");
    assert!(
        crashes[0].message.starts_with("SIGSEGV"),
        "{}",
        crashes[0].message
    );

    // Control: the filter kills a process that makes either call.
    let (_dir, db) = support::scenario::db_dir();
    let ended = run("forbidden-prctl", &db, false);
    assert_eq!(
        ended.status.signal(),
        Some(libc::SIGSYS),
        "{}",
        ended.stderr
    );
}

// A thread made with pthread_create has no alternate signal stack from std, and its stack
// overflow ends the process before any handler can run. Once it has met the tracker (a
// breadcrumb here) it has one, and its overflow is reported as such.
#[test]
fn a_stack_overflow_in_a_thread_std_did_not_make_is_named_once_it_met_the_tracker() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("overflow-foreign-thread", &db);
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    let events = events_of(&db);
    let crashes = crash_events(&events);
    assert_eq!(crashes.len(), 1, "{events:#?}");
    let e = crashes[0];
    assert_eq!(e.error_type, "stack overflow", "{}", e.message);
    assert!(
        breadcrumb_messages(e).contains(&"in a thread std did not make"),
        "{:?}",
        breadcrumb_messages(e)
    );

    // Control: the same thread, which never met the tracker, has no stack to handle the
    // signal on: the end reads as a kill.
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("overflow-quiet-foreign-thread", &db);
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    let events = events_of(&db);
    let crashes = crash_events(&events);
    assert_eq!(crashes.len(), 1, "{events:#?}");
    assert_eq!(crashes[0].error_type, "unclean shutdown");
}

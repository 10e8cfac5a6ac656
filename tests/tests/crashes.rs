//! Crashes past the panic hook (fatal signals, aborts, stack overflows, kills), each run
//! as a scenario program that dies, then reported by the next process that opens the
//! database. Linux only: elsewhere nothing is recorded.
#![cfg(target_os = "linux")]

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use stacktrace::{CrashEvent, Level, Store};
use support::crash::{command, run, run_both, wait_with_limit};

fn events_of(db: &Path) -> Vec<CrashEvent> {
    let store = Store::open(db).expect("open the database");
    store.query().run().expect("query").events
}

fn crash_events(db: &Path) -> Vec<CrashEvent> {
    events_of(db)
        .into_iter()
        .filter(|e| e.logger == "crash")
        .collect()
}

fn records_dir(db: &Path) -> PathBuf {
    db.with_file_name("events.db.crash")
}

fn the_one_crash(db: &Path) -> CrashEvent {
    let mut crashes = crash_events(db);
    assert_eq!(crashes.len(), 1, "{crashes:#?}");
    crashes.remove(0)
}

fn function_names(e: &CrashEvent) -> Vec<&str> {
    e.frames.iter().map(|f| f.function.as_str()).collect()
}

fn breadcrumb_messages(e: &CrashEvent) -> Vec<&str> {
    e.breadcrumbs.iter().map(|b| b.message.as_str()).collect()
}

#[test]
fn a_null_pointer_write_is_reported_at_the_next_open_with_its_frames() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("null-write", &db);
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    let e = the_one_crash(&db);
    assert_eq!(
        e.message,
        "SIGSEGV (invalid memory reference) at 0x0 in thread 'main'"
    );
    assert_eq!((e.level, e.error_type.as_str()), (Level::Fatal, "SIGSEGV"));
    assert_eq!(e.context.program_version, "crash-test 1.0");
    assert!(e.unresolved.is_none(), "{:?}", e.unresolved);
    assert!(
        function_names(&e)
            .iter()
            .any(|f| f.ends_with("write_through_null")),
        "{:#?}",
        e.frames
    );
    assert_eq!(
        breadcrumb_messages(&e),
        ["scenario started", "running null-write"]
    );
    // Consumed: the next open reports nothing more, and no record is left.
    assert!(crash_events(&db).len() == 1);
    assert!(!records_dir(&db).exists());
}

#[test]
fn a_fault_in_a_named_thread_names_the_thread() {
    let (_dir, db) = support::scenario::db_dir();
    run_both("null-write-in-thread", &db);
    let e = the_one_crash(&db);
    assert_eq!(
        e.message,
        "SIGSEGV (invalid memory reference) at 0x0 in thread 'worker'"
    );
    assert_eq!(e.context.thread_name.as_deref(), Some("worker"));
}

#[test]
fn a_raised_sigsegv_is_reported_and_ends_the_process_alike() {
    let (_dir, db) = support::scenario::db_dir();
    // std's own handler, chained to, ignores a SIGSEGV that was raised rather than caused
    // by a fault: the program goes on, with the tracker as without.
    run_both("raise-segv", &db);
    let e = the_one_crash(&db);
    assert!(
        e.message.starts_with("SIGSEGV (invalid memory reference)"),
        "{}",
        e.message
    );
}

#[test]
fn a_stack_overflow_in_main_is_named_and_std_still_says_so() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("overflow-main", &db);
    assert!(
        ended.stderr.contains("has overflowed its stack"),
        "{}",
        ended.stderr
    );
    let e = the_one_crash(&db);
    assert_eq!(e.error_type, "stack overflow", "{}", e.message);
    assert!(
        e.message.starts_with("stack overflow in thread 'main'"),
        "{}",
        e.message
    );
    assert!(
        function_names(&e).iter().any(|f| f.ends_with("recurse")),
        "{:#?}",
        e.frames
    );
}

#[test]
fn a_stack_overflow_in_a_thread_is_named_with_the_thread() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("overflow-thread", &db);
    assert!(
        ended.stderr.contains("thread 'worker'")
            && ended.stderr.contains("has overflowed its stack"),
        "{}",
        ended.stderr
    );
    let e = the_one_crash(&db);
    assert!(
        e.message.starts_with("stack overflow in thread 'worker'"),
        "{}",
        e.message
    );
}

#[test]
fn an_abort_is_reported_as_sigabrt() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("abort", &db);
    assert_eq!(ended.status.signal(), Some(libc::SIGABRT));
    let e = the_one_crash(&db);
    assert_eq!(e.message, "SIGABRT (aborted) in thread 'main'");
}

#[test]
fn a_double_panic_is_reported_as_an_abort_beside_the_first_panic() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("double-panic", &db);
    assert_eq!(ended.status.signal(), Some(libc::SIGABRT));
    let e = the_one_crash(&db);
    assert_eq!(
        e.message,
        "SIGABRT (aborted) in thread 'main' while panicking"
    );
    // Control: the first panic went through the panic hook as usual.
    assert!(
        events_of(&db).iter().any(|e| e.message == "first panic"),
        "{:#?}",
        events_of(&db)
    );
}

#[test]
fn an_allocation_failure_is_named_out_of_memory() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run_both("alloc-failure", &db);
    assert!(
        ended
            .stderr
            .contains("memory allocation of 4096 bytes failed"),
        "{}",
        ended.stderr
    );
    let e = the_one_crash(&db);
    assert_eq!(e.error_type, "out of memory", "{}", e.message);
    assert_eq!(
        e.message,
        "out of memory: an allocation failed and the program aborted in thread 'main'"
    );
}

#[test]
fn a_sigkill_is_reported_as_an_unclean_end_with_its_breadcrumbs() {
    let (_dir, db) = support::scenario::db_dir();
    let mut cmd = command("wait-for-kill", &db, false);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start the scenario");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read ready");
    assert_eq!(line.trim(), "ready");
    child.kill().expect("SIGKILL the scenario");
    let ended = wait_with_limit(child);
    assert_eq!(ended.status.signal(), Some(libc::SIGKILL));

    let events = crash_events(&db);
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        (e.level, e.error_type.as_str()),
        (Level::Warning, "unclean shutdown")
    );
    assert!(e.message.contains("cannot be told apart"), "{}", e.message);
    assert_eq!(
        breadcrumb_messages(e),
        ["scenario started", "running wait-for-kill"]
    );
}

#[test]
fn a_clean_exit_and_process_exit_report_nothing() {
    for name in ["clean", "exit-3"] {
        let (_dir, db) = support::scenario::db_dir();
        let ended = run_both(name, &db);
        assert!(ended.status.signal().is_none(), "{name}");
        // The record was there while it ran, and was left closed.
        assert!(records_dir(&db).exists(), "{name}");
        assert!(
            crash_events(&db).is_empty(),
            "{name}: {:#?}",
            crash_events(&db)
        );
        assert!(!records_dir(&db).exists(), "{name}");
    }
    // Control: the same reader reports a crash.
    let (_dir, db) = support::scenario::db_dir();
    run("abort", &db, false);
    assert_eq!(crash_events(&db).len(), 1);
}

#[test]
fn the_second_run_of_the_program_reports_the_first_runs_crash() {
    let (_dir, db) = support::scenario::db_dir();
    run("null-write", &db, false);
    let second = run("clean", &db, false);
    assert_eq!(second.status.code(), Some(0), "{}", second.stderr);
    let e = the_one_crash(&db);
    assert!(e.message.starts_with("SIGSEGV"), "{}", e.message);
}

#[test]
fn the_handler_is_off_when_the_setting_says_so() {
    let (_dir, db) = support::scenario::db_dir();
    let mut cmd = command("null-write", &db, false);
    cmd.env("STACKTRACE_CRASH_HANDLER", "false");
    let ended = wait_with_limit(cmd.spawn().expect("start"));
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    // Without the handler the record is left open: an unclean end, not a crash.
    let events = crash_events(&db);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].error_type, "unclean shutdown");
}

#[test]
fn a_crash_while_another_process_holds_the_database_is_reported_by_the_next_opener() {
    let (_dir, db) = support::scenario::db_dir();
    let mut holder = command("hold-until-eof", &db, false);
    holder.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut holder = holder.spawn().expect("start the holder");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout piped"))
        .read_line(&mut line)
        .expect("read ready");
    assert_eq!(line.trim(), "ready");
    let ended = run("null-write", &db, false);
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    drop(holder.stdin.take());
    let held = wait_with_limit(holder);
    assert_eq!(held.status.code(), Some(0), "{}", held.stderr);
    let e = the_one_crash(&db);
    assert!(e.message.starts_with("SIGSEGV"), "{}", e.message);
}

/// The one record file beside `db`.
fn the_record(db: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(records_dir(db))
        .expect("records dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_torn_crash_record_is_reported_as_incomplete() {
    let (_dir, db) = support::scenario::db_dir();
    run("null-write", &db, false);
    let record = the_record(&db);
    // Cut in the middle of the return addresses: the completion marker is gone.
    let bytes = std::fs::read(&record).unwrap();
    std::fs::write(&record, &bytes[..4096 + 200]).unwrap();
    let e = the_one_crash(&db);
    assert!(
        e.message
            .starts_with("SIGSEGV (invalid memory reference) at 0x0 in thread 'main'"),
        "{}",
        e.message
    );
    assert!(e.message.contains("incomplete"), "{}", e.message);
}

#[test]
fn a_record_from_another_build_keeps_its_addresses() {
    let (_dir, db) = support::scenario::db_dir();
    run("null-write", &db, false);
    let record = the_record(&db);
    // The executable's build id, rewritten in place to another of the same length: the
    // file on disk is now "another build" of the one that crashed.
    let mut bytes = std::fs::read(&record).unwrap();
    let text = String::from_utf8_lossy(&bytes[..4096]).into_owned();
    let at = text
        .find("\"build_id\":\"")
        .expect("a build id in the record")
        + 12;
    assert_ne!(bytes[at], b'"', "the executable has a build id");
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&record, &bytes).unwrap();
    let e = the_one_crash(&db);
    let unresolved = e.unresolved.as_ref().expect("addresses kept");
    assert!(!unresolved.addresses.is_empty());
    assert!(
        unresolved
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("another build")),
        "{unresolved:?}"
    );
    assert!(e.frames.is_empty(), "{:#?}", e.frames);
}

/// Every file under `dir`, at any depth, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("read a directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Checks that no file under `dir` holds a canary and that some file holds `control`.
fn no_canary_on_disk(dir: &Path, canaries: &[&str], control: &str, when: &str) {
    let files = files_under(dir);
    for (path, bytes) in &files {
        for canary in canaries {
            assert!(
                !holds(bytes, canary),
                "{when}: {} holds {canary:?}",
                path.display()
            );
        }
    }
    assert!(
        files.iter().any(|(_, bytes)| holds(bytes, control)),
        "{when}: no file holds the control {control:?}: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
}

// Regression: the flight recorder copied each breadcrumb's texts into the crash record
// unredacted, so a URL's password, a bearer token or the SMTP password of the settings in
// a breadcrumb reached the disk while the process ran, and stayed there after a kill; and
// later a value the breadcrumb's data hid by its name, where its message quoted it.
#[test]
fn secrets_in_breadcrumbs_never_reach_the_crash_record() {
    let (dir, db) = support::scenario::db_dir();
    let smtp = "sv-ring-smtp-3";
    let mut cmd = command("secrets-then-wait-for-kill", &db, false);
    cmd.arg("tracked")
        .arg(smtp)
        .env("STACKTRACE_ADMINS", "ops@example.com")
        .env(
            "STACKTRACE_SMTP_URL",
            format!("smtp://mailer:{smtp}@127.0.0.1:9"),
        )
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start the scenario");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout piped");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read ready");
    assert_eq!(line.trim(), "ready");
    let canaries = ["sv-ring-pw-1", "sv-ring-tok-2", smtp, "sv-ring-data-4"];
    let control = "ring-control-text";
    // While the process runs, and once it is killed, before the next open reads the record.
    no_canary_on_disk(dir.path(), &canaries, control, "while running");
    child.kill().expect("SIGKILL the scenario");
    let ended = wait_with_limit(child);
    assert_eq!(ended.status.signal(), Some(libc::SIGKILL));
    no_canary_on_disk(dir.path(), &canaries, control, "after the kill");
    let record = std::fs::read(the_record(&db)).expect("read the record");
    assert!(holds(&record, control), "the record lacks the control");
    // The breadcrumb whose data hid the value is in the record, without it.
    assert!(
        holds(&record, "ring-data-control"),
        "the record lacks the data control"
    );

    let e = the_one_crash(&db);
    assert!(
        breadcrumb_messages(&e)
            .iter()
            .any(|m| m.contains(control) && m.contains("postgres://u:")),
        "{:?}",
        breadcrumb_messages(&e)
    );
    for c in &e.breadcrumbs {
        for canary in canaries {
            assert!(
                !c.message.contains(canary) && !c.category.contains(canary),
                "{c:?}"
            );
        }
    }
    no_canary_on_disk(dir.path(), &canaries, control, "after the next open");
}

/// Runs the forwarding scenario program on `db` with mail to `smtp` and forwarding to
/// `sink`: it installs, sends what waits, and exits.
fn notify_with(db: &Path, sink: &support::sink::Sink, smtp: &support::mail::smtp::SmtpServer) {
    notify_through(db, Some(sink), Some(smtp));
}

/// [`notify_with`], with mail or forwarding left out when not given.
fn notify_through(
    db: &Path,
    sink: Option<&support::sink::Sink>,
    smtp: Option<&support::mail::smtp::SmtpServer>,
) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forward_scenario"));
    cmd.arg("none")
        .env("STACKTRACE_DB", db)
        .env("STACKTRACE_FORWARD_DRAIN_TIMEOUT", "20")
        .env_remove("STACKTRACE_DSN")
        .env_remove("SENTRY_DSN")
        .env_remove("STACKTRACE_ADMINS")
        .env_remove("STACKTRACE_SMTP_URL")
        .env_remove("STACKTRACE_CRASH_HANDLER");
    if let Some(sink) = sink {
        cmd.env("STACKTRACE_DSN", sink.dsn());
    }
    if let Some(smtp) = smtp {
        cmd.env("STACKTRACE_ADMINS", "ops@example.com")
            .env("STACKTRACE_SMTP_URL", smtp.url());
    }
    let run = support::scenario::run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("exited") && !run.stdout.contains("install error"),
        "{run:?}"
    );
}

// Regression: the first program with mail *or* forwarding took the waiting crashes for
// both, so a program with mail only left them never forwarded. Each is taken once by
// mail and once by forwarding, by whichever programs have them.
#[test]
fn a_crash_mailed_by_a_program_without_forwarding_is_forwarded_by_the_next_one() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run("abort", &db, false);
    assert_eq!(ended.status.signal(), Some(libc::SIGABRT));

    let smtp = support::mail::smtp::SmtpServer::start();
    notify_through(&db, None, Some(&smtp));
    let mails = smtp.wait_for(Duration::from_secs(30), |m| !m.is_empty());
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].subject().contains("SIGABRT"), "{mails:?}");

    let sink = support::sink::Sink::start();
    notify_through(&db, Some(&sink), None);
    let envelopes = sink.wait_for(1);
    assert_eq!(envelopes.len(), 1);
    assert!(envelopes[0].event().to_string().contains("SIGABRT"));

    // Each part once: a program with both finds nothing left.
    notify_through(&db, Some(&sink), Some(&smtp));
    assert_eq!(sink.envelopes().len(), 1);
    assert_eq!(smtp.mails().len(), 1);
}

// Regression: a crash stored by the next open was neither mailed nor forwarded, since the
// open stores it past the writer; and when the tool opened the database first, nothing
// would ever send it. Both crashes here are mailed and forwarded by the next program with
// mail and forwarding, once each: one stored by a reader's open, one by its own.
#[test]
fn crashes_are_mailed_and_forwarded_once_by_the_next_program() {
    let (_dir, db) = support::scenario::db_dir();
    let ended = run("null-write", &db, false);
    assert_eq!(ended.status.signal(), Some(libc::SIGSEGV));
    // A reader (as the tool) stores it, with neither mail nor forwarding.
    let segv = the_one_crash(&db);
    assert_eq!(segv.error_type, "SIGSEGV");
    let ended = run("abort", &db, false);
    assert_eq!(ended.status.signal(), Some(libc::SIGABRT));

    let sink = support::sink::Sink::start();
    let smtp = support::mail::smtp::SmtpServer::start();
    notify_with(&db, &sink, &smtp);
    let stored = crash_events(&db);
    assert_eq!(stored.len(), 2, "{stored:?}");
    let abort = stored
        .iter()
        .find(|e| e.error_type == "SIGABRT")
        .expect("the abort is stored");

    let envelopes = sink.wait_for(2);
    let sent: Vec<String> = envelopes
        .iter()
        .map(|e| {
            e.event()["event_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for (e, kind) in [(&segv, "SIGSEGV"), (abort, "SIGABRT")] {
        let id = e.id.to_string().replace('-', "");
        assert_eq!(
            sent.iter().filter(|s| s.replace('-', "") == id).count(),
            1,
            "{kind} {id} not forwarded once: {sent:?}"
        );
        let event = envelopes
            .iter()
            .map(|e| e.event())
            .find(|v| v["event_id"].as_str().unwrap_or_default().replace('-', "") == id)
            .expect("its envelope");
        assert_eq!(event["level"], "fatal", "{event}");
        assert!(event.to_string().contains(kind), "{event}");
    }
    let mails = smtp.wait_for(Duration::from_secs(30), |m| m.len() >= 2);
    for kind in ["SIGSEGV", "SIGABRT"] {
        assert_eq!(
            mails.iter().filter(|m| m.subject().contains(kind)).count(),
            1,
            "{kind}: {:?}",
            mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
        );
    }

    // Once: a further program finds nothing left to send or mail (it exits only after
    // draining both).
    notify_with(&db, &sink, &smtp);
    assert_eq!(sink.envelopes().len(), envelopes.len());
    assert_eq!(smtp.mails().len(), mails.len());
}

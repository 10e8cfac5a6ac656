//! Hooks the program plugs in that panic never take the program down nor cost it its
//! events: `before_store` in the panic hook and on the writer, a mail `Reporter`. Each
//! scenario runs in a process of its own (`hooks_scenario`).

mod support;

use std::process::Command;
use std::time::Duration;

use stacktrace::{CrashEvent, Store};
use support::mail::smtp::SmtpServer;
use support::scenario::{db_dir, run_with_limit, Run};

fn hooks_scenario(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hooks_scenario"));
    cmd.args(args).env_remove("STACKTRACE_DB");
    run_with_limit(cmd, Duration::from_secs(60))
}

/// The lines of `stderr` saying that the hook `name` panicked.
fn hook_lines(stderr: &str, name: &str) -> usize {
    let said = format!("stacktrace: the `{name}` hook panicked");
    stderr.lines().filter(|l| l.starts_with(&said)).count()
}

fn all_events(store: &Store) -> Vec<CrashEvent> {
    store.query().limit(10_000).all().unwrap()
}

// Pins: a `before_store` that panicked on a panic's event was called inside the panic hook,
// where a second panic aborts the process ("panicked while processing panic"): a thread's
// panic the program catches and lives on from ended the whole program.
#[test]
fn a_before_store_that_panics_on_a_panic_leaves_the_program_running() {
    let (_dir, db) = db_dir();
    let run = hooks_scenario(&["thread-panic", db.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("the program goes on"), "{run:?}");
    assert!(run.stdout.contains("flushed"), "{run:?}");
    // One line names the hook, for two panics of it (the panic hook's, the writer's).
    assert_eq!(hook_lines(&run.stderr, "before_store"), 1, "{run:?}");
    assert!(
        run.stderr.contains("the event is kept as it was"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains("panicked while processing panic"),
        "{run:?}"
    );

    let store = Store::open(&db).unwrap();
    let events = all_events(&store);
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e.message == message)
            .unwrap_or_else(|| panic!("{message:?} is stored: {events:#?}"))
    };
    // Kept as it was before the hook ran: without the tag it set before it panicked...
    let panic = find("boom in a thread");
    assert_eq!(panic.error_type, "panic");
    assert!(!panic.tags.contains_key("seen"), "{panic:#?}");
    assert!(!find("boom by message").tags.contains_key("seen"));
    // ...where the event it returned from has it.
    assert_eq!(find("a message before").tags["seen"], "yes");
    // The hook's own panics are not the program's.
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(store.dropped().unwrap().values().all(|n| *n == 0));
}

// Pins: a `before_store` that panicked on one event of a writer's batch lost the whole batch
// (up to 512 events), counted as one drop.
#[test]
fn a_before_store_that_panics_on_one_event_costs_no_other_event_of_its_batch() {
    let (_dir, db) = db_dir();
    let run = hooks_scenario(&["batch", db.to_str().unwrap(), "50"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("flushed"), "{run:?}");
    assert_eq!(hook_lines(&run.stderr, "before_store"), 1, "{run:?}");

    let store = Store::open(&db).unwrap();
    let events = all_events(&store);
    // The 50 and the one that held the writer, each once.
    assert_eq!(events.len(), 51, "{events:#?}");
    let panicked: Vec<_> = events
        .iter()
        .filter(|e| e.message.contains("boom"))
        .collect();
    assert_eq!(panicked.len(), 5, "{events:#?}");
    assert!(panicked.iter().all(|e| !e.tags.contains_key("seen")));
    let tagged = events
        .iter()
        .filter(|e| e.tags.get("seen").is_some_and(|v| v == "yes"));
    assert_eq!(tagged.count(), 46);
    assert!(store.dropped().unwrap().values().all(|n| *n == 0));
}

// Pins: a mail `Reporter` that panicked was caught, but its panic went through the panic
// hook as the program's: stored as an event of its own (mailed in turn) and printed on
// stderr at every mail.
#[test]
fn a_reporter_that_panics_sends_the_standard_report_and_is_said_once() {
    let server = SmtpServer::start();
    let (_dir, db) = db_dir();
    let port = server.port().to_string();
    let run = hooks_scenario(&["reporter", &port, db.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("exited"), "{run:?}");
    assert_eq!(hook_lines(&run.stderr, "Reporter"), 1, "{run:?}");
    assert!(!run.stderr.contains("the reporter broke"), "{run:?}");

    let mails = server.mails();
    assert_eq!(mails.len(), 2, "{run:?}");
    for mail in &mails {
        let text = mail.text();
        assert!(
            text.contains("The configured reporter panicked; this is the standard report."),
            "{text}"
        );
    }
    assert!(mails
        .iter()
        .any(|m| m.text().contains("first failure to mail")));
    // The two errors are stored, and the reporter's panics are not.
    let store = Store::open(&db).unwrap();
    let events = all_events(&store);
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(
        events.iter().all(|e| e.error_type != "panic"),
        "{events:#?}"
    );
}

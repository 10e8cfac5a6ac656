//! A `panic = "abort"` build: the process ends as soon as the hook returns, so the event
//! must already be durable.

mod support;

use std::process::Command;
use std::time::Duration;

use stacktrace::Store;
use support::abort::abort_build;
use support::scenario::{db_dir, run_with_limit};

#[test]
fn panic_in_an_abort_build_is_stored_before_the_process_aborts() {
    let exe = abort_build();
    let (_dir, db) = db_dir();
    let mut cmd = Command::new(exe);
    cmd.arg("panic-main").arg(&db);
    let run = run_with_limit(cmd, Duration::from_secs(60));
    // Aborted: no exit code on Unix (killed by SIGABRT), 101 never.
    assert_ne!(run.code, Some(0), "{run:?}");
    assert_ne!(run.code, Some(101), "{run:?}");
    assert!(run.stderr.contains("failure at site a"), "{}", run.stderr);

    let store = Store::open(&db).unwrap();
    let (events, crashes): (Vec<_>, Vec<_>) = store
        .query()
        .run()
        .unwrap()
        .events
        .into_iter()
        .partition(|e| e.logger == "panic");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].message, "failure at site a");
    // The abort that ended it is reported too (Linux), by the fatal-signal handler.
    if cfg!(target_os = "linux") {
        assert_eq!(crashes.len(), 1, "{crashes:#?}");
        assert!(
            crashes[0].message.starts_with("SIGABRT"),
            "{}",
            crashes[0].message
        );
    } else {
        assert!(crashes.is_empty(), "{crashes:#?}");
    }
    // The capture machinery is trimmed even where its frames carry bare names (`trace`,
    // `on_panic`); the panicking function's own name may be bare too.
    let first = &events[0].frames[0];
    assert!(
        ["scenario::site_a", "site_a"].contains(&first.function.as_str()),
        "{:#?}",
        events[0].frames
    );
    assert!(
        first
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("scenario.rs")),
        "{first:?}"
    );
    assert!(first.in_app, "{first:?}");
}

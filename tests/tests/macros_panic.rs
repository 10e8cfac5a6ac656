//! Panics inside `#[capture]` functions: the panic event carries the chain of captured calls
//! of the thread, or of the task, that panicked. Each scenario runs in a process of its own
//! (`src/bin/macro_scenario.rs`).

mod support;

use std::process::Command;
use std::time::Duration;

use stacktrace::{CrashEvent, Level, Store, PLACEHOLDER};
use stacktrace_tests::raw_bytes;
use support::scenario::{db_dir, run_with_limit, Run};

fn run(name: &str, arg: &str) -> (tempfile::TempDir, Run, Vec<CrashEvent>) {
    let (dir, db) = db_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_macro_scenario"));
    cmd.arg(name).arg(&db).arg(arg);
    cmd.env_remove("STACKTRACE_DB");
    let run = run_with_limit(cmd, Duration::from_secs(60));
    let events = Store::open(&db)
        .expect("open the scenario's database")
        .query()
        .all()
        .expect("query");
    (dir, run, events)
}

fn calls_of(e: &CrashEvent) -> Vec<(String, Vec<(String, String)>)> {
    e.calls
        .iter()
        .map(|c| {
            let args = c
                .args
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect();
            (c.function.clone(), args)
        })
        .collect()
}

fn call(function: &str, args: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    (
        function.to_owned(),
        args.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect(),
    )
}

#[test]
fn a_panic_three_captured_calls_deep_lists_them_outermost_first() {
    let (_dir, run, events) = run("deep", "");
    assert_eq!(run.code, Some(101), "{run:?}");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.level, Level::Fatal);
    assert_eq!(e.message, "no rate for express at 20");
    assert_eq!(
        calls_of(e),
        [
            call(
                "macro_scenario::level_one",
                &[
                    ("user", "\"ann\""),
                    ("basket", "Basket { items: [\"tea\", \"cups\"] }")
                ]
            ),
            call(
                "macro_scenario::level_two",
                &[("count", "2"), ("shipping", "\"express\"")]
            ),
            call(
                "macro_scenario::level_three",
                &[("cents", "20"), ("carrier", "\"express\"")]
            ),
        ]
    );
    assert!(e
        .calls
        .iter()
        .all(|c| c.file.ends_with("macro_scenario.rs")));
}

#[test]
fn a_sensitive_argument_in_a_panic_message_never_reaches_the_disk() {
    let canary = "canary-5d1f0e-Pa55";
    let (dir, run, events) = run("secret", canary);
    assert_eq!(run.code, Some(101), "{run:?}");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.message, format!("wrong password {PLACEHOLDER} for ann"));
    assert_eq!(
        calls_of(e),
        [call(
            "macro_scenario::authenticate",
            &[("user", "\"ann\""), ("password", PLACEHOLDER)]
        )]
    );
    let bytes = raw_bytes(dir.path());
    assert!(!bytes.windows(canary.len()).any(|w| w == canary.as_bytes()));
    // The check above is meaningful: the event's other texts are in the files.
    let visible = b"wrong password";
    assert!(bytes.windows(visible.len()).any(|w| w == visible));
}

// Pins that a sensitive argument held by reference, whose text the panic hook gets from
// the thread that formats such arguments during a panic, is still scrubbed from the panic.
#[test]
fn a_sensitive_argument_held_by_reference_never_reaches_the_disk() {
    let canary = "canary-77e0c2-Ke7";
    let (dir, run, events) = run("secret-by-reference", canary);
    assert_eq!(run.code, Some(101), "{run:?}");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        e.message,
        format!("api call to /v1/orders refused key {PLACEHOLDER}")
    );
    assert_eq!(
        calls_of(e),
        [call(
            "macro_scenario::call_api",
            &[("key", PLACEHOLDER), ("path", "\"/v1/orders\"")]
        )]
    );
    let bytes = raw_bytes(dir.path());
    assert!(!bytes.windows(canary.len()).any(|w| w == canary.as_bytes()));
    let visible = b"api call to /v1/orders";
    assert!(bytes.windows(visible.len()).any(|w| w == visible));
}

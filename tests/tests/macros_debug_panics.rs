//! Regression: with `#[capture]`, an argument whose `Debug` panicked turned a call that
//! returned `Ok` into a panic (arguments formatted at entry), and a returned `Err` into a
//! panic with nothing stored (arguments formatted for the event). Formatting a value for an
//! event must never change what the function does: the panic is caught, the value is
//! stored as a placeholder naming the problem, and no panic event is stored for it.

mod support;

use std::cell::Cell;
use std::fmt;

use stacktrace::{capture, Config, CrashEvent};
use support::install::{install_once, Installed};

/// One runtime for this test binary (the install is process-global).
fn installed() -> &'static Installed {
    install_once(|| Config::default().capture_env(false))
}

fn all_events() -> Vec<CrashEvent> {
    let i = installed();
    assert!(i.guard.flush());
    stacktrace::store()
        .expect("installed with a store")
        .query()
        .limit(100_000)
        .all()
        .expect("query")
}

/// The events whose message contains `token`, and that no panic was stored at all.
fn events_with(token: &str) -> Vec<CrashEvent> {
    let all = all_events();
    let panics: Vec<_> = all.iter().filter(|e| e.logger == "panic").collect();
    assert!(panics.is_empty(), "panic events stored: {panics:#?}");
    all.into_iter()
        .filter(|e| e.message.contains(token))
        .collect()
}

fn arg<'e>(e: &'e CrashEvent, name: &str) -> &'e str {
    let call = e.calls.last().expect("the failing call");
    let a = call.args.iter().find(|a| a.name == name);
    &a.unwrap_or_else(|| panic!("no argument {name} in {call:#?}"))
        .value
}

/// A value whose `Debug` panics. `Sync`: kept by reference, formatted for the event only.
struct Bomb;

impl fmt::Debug for Bomb {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("bomb-debug-exploded")
    }
}

/// A value whose `Debug` panics and that is not `Sync`: formatted at entry.
struct LocalBomb(Cell<u8>);

impl fmt::Debug for LocalBomb {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("local-bomb-exploded {}", self.0.get())
    }
}

#[capture]
fn by_value(b: Bomb, code: &str) -> Result<u32, String> {
    let _ = b;
    if code.is_empty() {
        return Ok(1);
    }
    Err(format!("by-value failed {code}"))
}

#[capture]
fn by_ref(b: &Bomb, local: &LocalBomb, code: &str) -> Result<u32, String> {
    let _ = (b, local);
    if code.is_empty() {
        return Ok(2);
    }
    Err(format!("by-ref failed {code}"))
}

/// An error whose `Display` and `Debug` panic.
struct BadError;

impl fmt::Display for BadError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("bad-error-display")
    }
}

impl fmt::Debug for BadError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("bad-error-debug")
    }
}

impl std::error::Error for BadError {}

#[capture]
fn bad_error(marker: &str) -> Result<(), BadError> {
    let _ = marker;
    Err(BadError)
}

#[test]
fn an_argument_formatted_at_entry_whose_debug_panics_changes_nothing() {
    installed();
    assert_eq!(by_value(Bomb, ""), Ok(1));
    assert!(events_with("by-value failed").is_empty());

    assert_eq!(by_value(Bomb, "v1"), Err("by-value failed v1".to_owned()));
    let events = events_with("by-value failed v1");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        arg(&events[0], "b"),
        "<Debug of argument panicked: bomb-debug-exploded>"
    );
    // The other argument is formatted as usual.
    assert_eq!(arg(&events[0], "code"), "\"v1\"");
}

#[test]
fn an_argument_kept_by_reference_whose_debug_panics_changes_nothing() {
    installed();
    let local = LocalBomb(Cell::new(7));
    assert_eq!(by_ref(&Bomb, &local, ""), Ok(2));

    assert_eq!(
        by_ref(&Bomb, &local, "r1"),
        Err("by-ref failed r1".to_owned())
    );
    let events = events_with("by-ref failed r1");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        arg(&events[0], "b"),
        "<Debug of argument panicked: bomb-debug-exploded>"
    );
    assert_eq!(
        arg(&events[0], "local"),
        "<Debug of argument panicked: local-bomb-exploded 7>"
    );
    assert_eq!(arg(&events[0], "code"), "\"r1\"");
}

#[test]
fn an_error_whose_display_panics_is_stored_with_a_placeholder_message() {
    installed();
    assert!(bad_error("bad-error-marker").is_err());
    let events = events_with("<Display of error panicked: bad-error-display>");
    let ours: Vec<_> = events
        .iter()
        .filter(|e| arg(e, "marker") == "\"bad-error-marker\"")
        .collect();
    assert_eq!(ours.len(), 1, "{events:#?}");
}

// Pins: an argument held by reference was formatted by its `Debug` inside the panic hook,
// where a second panic aborts the process: a captured function whose body panicked while
// an argument's `Debug` panicked too ended the program instead of its thread, and stored
// nothing.
#[test]
fn a_panicking_debug_inside_a_panicking_call_neither_aborts_nor_loses_the_panic() {
    let (dir, db) = support::scenario::db_dir();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_macro_scenario"));
    cmd.arg("debug-panics-in-panic").arg(&db);
    cmd.env_remove("STACKTRACE_DB");
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("thread ended: panicked=true"),
        "{run:?}"
    );
    let events = stacktrace::Store::open(&db)
        .expect("open the scenario's database")
        .query()
        .all()
        .expect("query");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.error_type, "panic");
    assert_eq!(e.message, "no carrier post");
    assert!(arg(e, "order").contains("debug-of-order-failed"), "{e:#?}");
    assert!(arg(e, "order").starts_with('<'), "{e:#?}");
    // The other argument of the same call is formatted as usual.
    assert_eq!(arg(e, "carrier"), "\"post\"");
    drop(dir);
}

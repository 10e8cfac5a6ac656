//! Values of `#[sensitive_variables]` arguments never reach the database: the argument is
//! stored as the placeholder, and its value is scrubbed from every other text of the event.

mod support;

use std::sync::{Mutex, MutexGuard};

use proptest::prelude::*;
use stacktrace::{capture, sensitive_variables, Config, CrashEvent, PLACEHOLDER};
use stacktrace_tests::raw_bytes;
use support::install::{install_once, Installed};

/// One runtime for this test binary (the install is process-global).
fn installed() -> &'static Installed {
    install_once(|| Config::default().capture_env(false))
}

/// The tests read "the newest event", so they take turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn newest_event() -> CrashEvent {
    assert!(installed().guard.flush());
    let store = stacktrace::store().expect("a store");
    let mut events = store.query().limit(1).run().expect("query").events;
    events.pop().expect("an event")
}

#[derive(Debug)]
struct Card {
    holder: String,
}

#[capture]
#[sensitive_variables("number", "cvv")]
fn charge(card: &Card, number: &str, cvv: String, amount: u64) -> Result<(), String> {
    Err(format!(
        "card {number} (cvv {cvv}) of {} declined for {amount}; debug {number:?}",
        card.holder
    ))
}

/// The texts an event holds of the user's data.
fn texts(e: &CrashEvent) -> Vec<String> {
    let mut out = vec![e.message.clone()];
    out.extend(e.sources.iter().cloned());
    for c in &e.calls {
        out.extend(c.args.iter().map(|a| a.value.clone()));
    }
    out
}

#[test]
fn a_canary_secret_is_shown_as_the_placeholder_and_is_not_in_the_database_files() {
    let _turn = serial();
    installed();
    let canary = "4111-canary-7c2e9b";
    let cvv = "cvv-canary-31f0";
    let card = Card {
        holder: "ann".into(),
    };
    assert!(charge(&card, canary, cvv.into(), 1250).is_err());
    let e = newest_event();
    let call = e.calls.last().expect("the call");
    let args: Vec<(&str, &str)> = call
        .args
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        args,
        [
            ("card", "Card { holder: \"ann\" }"),
            ("number", PLACEHOLDER),
            ("cvv", PLACEHOLDER),
            ("amount", "1250"),
        ]
    );
    assert_eq!(
        e.message,
        format!(
            "card {PLACEHOLDER} (cvv {PLACEHOLDER}) of ann declined for 1250; debug \"{PLACEHOLDER}\""
        )
    );

    let store = stacktrace::store().expect("a store");
    store.flush().expect("flush to disk");
    let bytes = raw_bytes(&installed().dir);
    let contains = |needle: &[u8]| stacktrace_tests::contains(&bytes, needle);
    assert!(!contains(canary.as_bytes()));
    assert!(!contains(cvv.as_bytes()));
    // Meaningful only if the event is in the files at all.
    assert!(contains(b"declined for 1250"));
}

fn secrets() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        any::<String>(),
        "[a-z\"'\\\\]{1,8}",
        ("\\PC{0,6}", "\\PC{0,6}").prop_map(|(a, b)| format!("{a}{PLACEHOLDER}{b}")),
        "\\PC{1,3}".prop_map(|s| s.repeat(700)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_generated_secret_leaks_into_the_event(secret in secrets(), other in "[0-9]{1,4}") {
        let _turn = serial();
        installed();
        let card = Card { holder: format!("holder {secret}") };
        prop_assert!(charge(&card, &secret, secret.clone(), 7).is_err());
        let e = newest_event();
        let call = e.calls.last().expect("the call");
        prop_assert_eq!(&call.args[1].value, PLACEHOLDER);
        prop_assert_eq!(&call.args[2].value, PLACEHOLDER);
        let _ = other;
        // A secret inside the placeholder is "found" in any redacted text.
        if !secret.is_empty() && !PLACEHOLDER.contains(secret.as_str()) {
            let debug = format!("{secret:?}");
            let escaped = &debug[1..debug.len() - 1];
            for t in texts(&e) {
                prop_assert!(!t.contains(secret.as_str()), "{:?} in {:?}", secret, t);
                prop_assert!(!t.contains(escaped), "{:?} in {:?}", escaped, t);
            }
        }
    }
}

//! One list of secret names in every place a name appears, and values hidden once hidden
//! everywhere in the process: what reaches the database files, read back as raw bytes.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use stacktrace::{Store, PLACEHOLDER};
use stacktrace_tests::{contains, raw_bytes};
use support::scenario::{db_dir, run_with_limit, Run};

fn names_scenario(mode: &str, db: &Path, canary: &str) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_names_scenario"));
    cmd.arg(mode).arg(db).arg(canary);
    for (k, _) in std::env::vars() {
        if k.starts_with("STACKTRACE_") {
            cmd.env_remove(k);
        }
    }
    run_with_limit(cmd, Duration::from_secs(60))
}

// Regression: query strings, bodies, extra data, tags, `#[capture]` arguments, breadcrumb
// data and `tracing` fields hid only `password` and `token`: `apiKey`, `client_secret`,
// `api_key` and `session_id` were stored in clear.
#[test]
fn secret_names_in_every_spelling_are_hidden_in_every_place() {
    let (dir, db) = db_dir();
    let canary = "cnry-names-61d0";
    let run = names_scenario("names", &db, canary);
    assert_eq!(run.code, Some(0), "{run:?}");
    {
        let store = Store::open(&db).unwrap();
        let events = store.query().run().unwrap().events;
        let report = events
            .iter()
            .find(|e| e.message == "names-scenario: report")
            .expect("the report");
        assert_eq!(report.extra["apiKey"], PLACEHOLDER);
        assert_eq!(report.tags["client_secret"], PLACEHOLDER);
        let charge = events
            .iter()
            .find(|e| e.calls.iter().any(|c| c.function.ends_with("charge")))
            .expect("the failed charge");
        let arg = &charge.calls[0].args[0];
        assert_eq!(
            (arg.name.as_str(), arg.value.as_str()),
            ("api_key", PLACEHOLDER)
        );
    }
    let bytes = raw_bytes(dir.path());
    // Controls: the ordinary field beside each secret is stored...
    for n in 1..=5 {
        let visible = format!("visible-{n}");
        assert!(contains(&bytes, visible.as_bytes()), "{visible} missing");
    }
    // ...and no secret is.
    for n in 1..=5 {
        let secret = format!("{canary}-{n}");
        assert!(!contains(&bytes, secret.as_bytes()), "{secret} on disk");
    }
    assert!(!run.stderr.contains(canary) && !run.stdout.contains(canary));
}

// Regression: a value hidden by `#[sensitive_variables]` was scrubbed from its own event
// only: a later event quoting the literal (in its message, and in the source lines of the
// frame next to the call that passed it) stored it in clear.
#[test]
fn a_value_hidden_once_is_scrubbed_from_later_events() {
    let (dir, db) = db_dir();
    let run = names_scenario("remembered", &db, "unused");
    assert_eq!(run.code, Some(0), "{run:?}");
    {
        let store = Store::open(&db).unwrap();
        let events = store.query().run().unwrap().events;
        assert_eq!(events.len(), 4, "{events:#?}");
        // Control: a word hidden after `auth:` in one event is not hidden in later ones.
        assert!(
            events
                .iter()
                .any(|e| e.message == "names-scenario: still misconfigured later"),
            "{events:#?}"
        );
        let later = events
            .iter()
            .find(|e| e.message.contains("retried with"))
            .expect("the later event");
        assert!(later.message.contains(PLACEHOLDER), "{}", later.message);
        // The later event's frame in main shows its source lines, the call included.
        assert!(
            later
                .frames
                .iter()
                .any(|f| f.source.as_ref().is_some_and(|s| s
                    .pre
                    .iter()
                    .chain(&s.post)
                    .any(|l| l.contains("unlock(")))),
            "{later:#?}"
        );
    }
    let bytes = raw_bytes(dir.path());
    assert!(contains(&bytes, b"visible-r"), "control missing");
    assert!(
        !contains(&bytes, b"remembered-literal-9f1c"),
        "the sensitive literal is on disk"
    );
}

// Regression: breadcrumbs copied into the crash record were scrubbed of the settings'
// secrets only: one quoting a `#[sensitive_variables]` argument of the active call, or a
// value an earlier event hid by its name, reached the record and the crash event.
#[cfg(target_os = "linux")]
#[test]
fn crash_record_breadcrumbs_are_scrubbed_as_events_are() {
    let (dir, db) = db_dir();
    let canary = "cnry-crumb-77ab";
    let run = names_scenario("crash-crumb", &db, canary);
    assert_ne!(run.code, Some(0), "the scenario aborts: {run:?}");
    // The record, before any open turns it into an event.
    let before = raw_bytes(dir.path());
    assert!(
        contains(&before, b"visible-crumb-marker"),
        "control missing"
    );
    for secret in [format!("{canary}-live"), format!("{canary}-old")] {
        assert!(
            !contains(&before, secret.as_bytes()),
            "{secret} in the record"
        );
    }
    let store = Store::open(&db).unwrap();
    let crash = store
        .query()
        .run()
        .unwrap()
        .events
        .into_iter()
        .find(|e| e.logger == "crash")
        .expect("the crash event");
    let texts: Vec<&str> = crash
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_str())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("visible-crumb-marker")),
        "{texts:?}"
    );
    assert!(
        texts.iter().filter(|t| t.contains(PLACEHOLDER)).count() >= 2,
        "{texts:?}"
    );
    assert!(texts.iter().all(|t| !t.contains(canary)), "{texts:?}");
}

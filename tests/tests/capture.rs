//! Manual capture, volume control, install behaviour and configuration from the
//! environment, each in a process of its own.

mod support;

use stacktrace::{DropReason, Level, Store};
use support::scenario::{db_dir, scenario, scenario_command};

#[test]
fn capture_error_stores_type_message_chain_location_and_frames() {
    let (_dir, db) = db_dir();
    let run = scenario("error", &db, "");
    assert_eq!(run.code, Some(0), "{run:?}");
    let id: stacktrace::EventId = run.stdout.trim().parse().expect("the id is printed");
    let store = Store::open(&db).unwrap();
    let e = store
        .get(id)
        .unwrap()
        .expect("stored under the returned id");
    assert_eq!(e.level, Level::Error);
    assert_eq!(e.logger, "error");
    assert_eq!(e.error_type, "scenario::ConfigFileError");
    assert_eq!(e.message, "cannot load config /nonexistent/app.toml");
    assert_eq!(e.sources.len(), 1);
    assert!(e.sources[0].contains("No such file"), "{:?}", e.sources);
    assert!(e.location.unwrap().file.ends_with("scenario.rs"));
    assert_eq!(e.frames[0].function, "scenario::main", "{:#?}", e.frames);
    assert!(!e.context.hostname.is_empty() || cfg!(not(target_os = "linux")));
    assert_eq!(e.context.program, "scenario");
}

#[test]
fn rate_limit_keeps_five_of_twenty_and_counts_the_rest() {
    let (_dir, db) = db_dir();
    let run = scenario("rate", &db, "5");
    assert!(run.stdout.contains("kept 5"), "{run:?}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 5);
    assert_eq!(store.dropped().unwrap()[&DropReason::RateLimited], 15);
}

#[test]
fn sample_rate_zero_stores_nothing_and_counts_the_drops() {
    let (_dir, db) = db_dir();
    let run = scenario("sample-zero", &db, "");
    assert!(run.stdout.contains("kept 0"), "{run:?}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 0);
    // 20 messages and one panic.
    assert_eq!(store.dropped().unwrap()[&DropReason::Sampled], 21);
    assert_eq!(store.stats().unwrap().dropped["sampled"], 21);
}

#[test]
fn disabled_stores_nothing() {
    let (_dir, db) = db_dir();
    let run = scenario("disabled", &db, "");
    assert!(run.stdout.contains("kept 0"), "{run:?}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.query().count().unwrap(), 0);
    assert_eq!(store.dropped().unwrap()[&DropReason::Disabled], 21);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let (_dir, db) = db_dir();
    let run = scenario("queue", &db, "");
    let kept: u64 = run
        .stdout
        .trim()
        .strip_prefix("kept ")
        .and_then(|n| n.parse().ok())
        .expect("kept count");
    let store = Store::open(&db).unwrap();
    let stored = store.query().count().unwrap();
    let full = store.dropped().unwrap()[&DropReason::QueueFull];
    assert_eq!(stored, kept);
    assert_eq!(stored + full, 500, "every capture is stored or counted");
}

#[test]
fn second_install_says_so_and_changes_nothing() {
    let (_dir, db) = db_dir();
    let run = scenario("twice", &db, "");
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("first errors: 0"), "{run:?}");
    assert!(
        run.stdout
            .contains("second: stacktrace is already installed"),
        "{run:?}"
    );
    assert!(run.stderr.contains("already installed"));
}

#[test]
fn environment_configures_and_bad_values_are_reported_with_defaults_kept() {
    let (_dir, db) = db_dir();
    let mut cmd = scenario_command("env", &db, "");
    cmd.env("STACKTRACE_DB", &db)
        .env("STACKTRACE_SAMPLE_RATE", "1.5");
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    let expected = r#"invalid STACKTRACE_SAMPLE_RATE="1.5": expected a number from 0.0 to 1.0"#;
    assert!(run.stdout.contains(expected), "{run:?}");
    assert!(run.stderr.contains(expected), "said on stderr: {run:?}");
    // The default sample rate (1.0) was kept: all ten stored, in STACKTRACE_DB.
    assert_eq!(Store::open(&db).unwrap().query().count().unwrap(), 10);
}

#[test]
fn environment_rate_limit_applies() {
    let (_dir, db) = db_dir();
    let mut cmd = scenario_command("env", &db, "");
    cmd.env("STACKTRACE_DB", &db)
        .env("STACKTRACE_RATE_LIMIT", "3");
    let run = support::scenario::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(Store::open(&db).unwrap().query().count().unwrap(), 3);
}

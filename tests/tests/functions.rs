//! Calls and failures per `#[capture]` function: counted on every thread, summed durably by
//! release when the guard is dropped, read with `stacktrace functions`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::cli::cli_json;
use support::scenario::{db_dir, run_with_limit};

fn run_counts(db: &std::path::Path, release: &str) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_functions_scenario"));
    cmd.arg("counts").arg(db).arg(release);
    cmd.env_remove("STACKTRACE_DB")
        .env_remove("STACKTRACE_RELEASE");
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
}

fn row<'a>(rows: &'a [Value], function: &str, release: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["function"] == function && r["release"] == release)
}

fn counts(rows: &[Value], function: &str, release: &str) -> (u64, u64) {
    let r = row(rows, function, release)
        .unwrap_or_else(|| panic!("no row for {function} in {release}: {rows:#?}"));
    (
        r["calls"].as_u64().expect("calls"),
        r["failures"].as_u64().expect("failures"),
    )
}

#[test]
fn calls_and_failures_are_exact_per_function_and_release() {
    let (_dir, db) = db_dir();
    run_counts(&db, "1.0.0");
    run_counts(&db, "1.0.0");
    run_counts(&db, "2.0.0");
    let all = cli_json(&db, &["functions"]);
    let rows = all.as_array().expect("an array").clone();

    // Main thread 20/5, an ended thread 3/1, a running thread 7/1; twice in 1.0.0.
    let checkout = "functions_scenario::checkout";
    assert_eq!(counts(&rows, checkout, "1.0.0"), (60, 14));
    assert_eq!(counts(&rows, checkout, "2.0.0"), (30, 7));
    // A panic is a failure; the name given in the attribute is the function's name.
    assert_eq!(counts(&rows, "parse.digit", "1.0.0"), (6, 2));
    assert_eq!(counts(&rows, "parse.digit", "2.0.0"), (3, 1));
    // `uncounted` leaves a function out, while the others are listed.
    assert!(
        rows.iter()
            .all(|r| r["function"] != "functions_scenario::hot"),
        "{rows:#?}"
    );

    let r = row(&rows, checkout, "2.0.0").unwrap();
    let rate = r["failure_rate"].as_f64().expect("rate");
    assert!((rate - 7.0 / 30.0).abs() < 1e-9, "{rate}");
    // The last failure is a stored event of this function, in its group.
    let last = r["last_event"].as_str().expect("a last failure");
    let event = cli_json(&db, &["show", last]);
    assert_eq!(
        event["calls"].as_array().unwrap().last().unwrap()["function"],
        checkout
    );
    let groups: Vec<&str> = r["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        groups.contains(&event["fingerprint"].as_str().unwrap()),
        "{groups:?}"
    );

    // Filtered by release.
    let only = cli_json(&db, &["functions", "--release", "2.0.0"]);
    let only = only.as_array().unwrap();
    assert_eq!(only.len(), 2, "{only:#?}");
    assert!(only.iter().all(|r| r["release"] == "2.0.0"));
}

#[test]
fn a_database_without_counts_lists_none() {
    let (_dir, db) = support::cli::empty_db();
    let all = cli_json(&db, &["functions"]);
    assert_eq!(all, serde_json::json!([]));
    // Control: the same command lists a counted function once there is one.
    run_counts(&db, "3.0");
    let all = cli_json(&db, &["functions"]);
    assert!(!all.as_array().unwrap().is_empty());
}

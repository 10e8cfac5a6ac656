//! `stacktrace requests` run as a program against a database of requests tracked through
//! the HTTP layer: the newest or slowest first, each filter (`--slower-than`, `--between`,
//! `--since`, `--path`, `--status`), summaries by path and status, tables and `--json`, and
//! its exit codes on bad values, a missing and a held database.

mod support;

use serde_json::Value;
use support::cli::tracked::{tracked_db, FAILED, FAST_BEFORE, MISSING, SLOW, TOTAL};
use support::cli::{cli, cli_json, empty_db, Holder};

const USAGE: i32 = 2;
const LOCKED: i32 = 4;
const NO_DATABASE: i32 = 5;

#[test]
#[ignore = "run as a child by the tests that need tracked requests"]
fn tracked_requests_writer() {
    support::cli::tracked::write_if_asked();
}

fn rows(v: &Value) -> &Vec<Value> {
    v["requests"].as_array().expect("a requests array")
}

fn paths(v: &Value) -> Vec<&str> {
    rows(v)
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect()
}

#[test]
fn requests_are_listed_newest_first_as_a_table_and_as_json() {
    let (_dir, db) = tracked_db();
    let all = cli_json(&db, &["requests"]);
    assert_eq!(rows(&all).len(), TOTAL);
    let p = paths(&all);
    assert_eq!(p[0], "/login");
    assert_eq!(p[TOTAL - 1], "/fast");
    let times: Vec<u64> = rows(&all)
        .iter()
        .map(|r| r["timestamp_us"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let login = &rows(&all)[0];
    assert_eq!(login["method"], "POST");
    assert_eq!(login["user"], "carol");

    let table = cli(&db, &["requests"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), TOTAL + 1, "{}", table.stdout);
    for column in ["TIME (UTC)", "METHOD", "STATUS", "DURATION", "USER", "PATH"] {
        assert!(lines[0].contains(column), "{}", lines[0]);
    }
    assert!(lines[1].contains("POST") && lines[1].contains("carol"));
    assert!(table.stdout.contains("/fast?page=0"), "{}", table.stdout);
    // Aligned: the status column ends at the same place on every row.
    let ends: Vec<usize> = lines[1..]
        .iter()
        .map(|l| {
            l.find(" 200")
                .or_else(|| l.find(" 404"))
                .or_else(|| l.find(" 500"))
        })
        .map(|i| i.expect("a status") + 4)
        .collect();
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{}", table.stdout);
    assert!(!table.stdout.contains('\u{1b}'), "no colour off a terminal");

    let two = cli_json(&db, &["requests", "--limit", "2"]);
    assert_eq!(paths(&two), ["/login", "/fail"]);
}

#[test]
fn slower_than_keeps_only_the_slow_request() {
    let (_dir, db) = tracked_db();
    for limit in ["1s", "500ms", "0.9s"] {
        let slow = cli_json(&db, &["requests", "--slower-than", limit]);
        assert_eq!(paths(&slow), ["/slow"], "--slower-than {limit}");
        let took = rows(&slow)[0]["duration_us"].as_u64().unwrap();
        assert!(took >= SLOW.as_micros() as u64, "{took}");
    }
    let none = cli(&db, &["requests", "--slower-than", "1m"]);
    assert_eq!(none.code, Some(0));
    assert_eq!(none.stdout, "");
    assert!(none.stderr.contains("no requests match"), "{none:?}");

    let table = cli(&db, &["requests", "--slower-than", "1s"]);
    assert!(table.stdout.contains("/slow"), "{table:?}");
    assert!(
        table.stdout.contains(" s "),
        "duration in seconds: {table:?}"
    );

    let slowest = cli_json(&db, &["requests", "--slowest", "--limit", "3"]);
    assert_eq!(rows(&slowest).len(), 3);
    assert_eq!(paths(&slowest)[0], "/slow");
    let d: Vec<u64> = rows(&slowest)
        .iter()
        .map(|r| r["duration_us"].as_u64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "{d:?}");
}

#[test]
fn path_and_status_filters() {
    let (_dir, db) = tracked_db();
    let fast = cli_json(&db, &["requests", "--path", "/fast"]);
    assert_eq!(rows(&fast).len(), FAST_BEFORE);
    assert!(rows(&fast).iter().all(|r| r["status"] == 200));
    assert_eq!(rows(&fast)[0]["query"], format!("page={}", FAST_BEFORE - 1));

    let missing = cli_json(&db, &["requests", "--status", "404"]);
    assert_eq!(paths(&missing), vec!["/missing"; MISSING]);
    let errors = cli_json(&db, &["requests", "--status", "5xx"]);
    assert_eq!(paths(&errors), vec!["/fail"; FAILED]);
    let client = cli_json(&db, &["requests", "--status", "4xx", "--limit", "1"]);
    assert_eq!(paths(&client), ["/missing"]);
    let both = cli_json(&db, &["requests", "--path", "/fail", "--status", "200"]);
    assert!(rows(&both).is_empty());
}

#[test]
fn between_splits_at_the_slow_request() {
    let (_dir, db) = tracked_db();
    let slow = cli_json(&db, &["requests", "--path", "/slow"]);
    let started = rows(&slow)[0]["timestamp_us"].as_u64().unwrap();
    // The first whole second after the slow request started: later than it and the fast
    // ones, earlier than everything sent after it finished.
    let split = format!("@{}", started / 1_000_000 + 1);
    let after = cli_json(&db, &["requests", "--between", &split, "now"]);
    assert_eq!(rows(&after).len(), MISSING + FAILED + 1, "{after}");
    assert!(!paths(&after).contains(&"/slow") && !paths(&after).contains(&"/fast"));
    let before = cli_json(&db, &["requests", "--between", "1d", &split]);
    assert_eq!(rows(&before).len(), FAST_BEFORE + 1);
    assert_eq!(paths(&before)[0], "/slow");
    let since = cli_json(&db, &["requests", "--since", &split]);
    assert_eq!(rows(&since).len(), rows(&after).len());
    let old = cli_json(&db, &["requests", "--between", "2001-01-01", "2001-01-02"]);
    assert!(rows(&old).is_empty());
}

#[test]
fn summaries_by_path_and_by_status() {
    let (_dir, db) = tracked_db();
    let by_path = cli_json(&db, &["requests", "--by", "path"]);
    let by_path = by_path.as_array().expect("an array of summaries");
    assert_eq!(by_path[0]["key"], "/fast");
    assert_eq!(by_path[0]["requests"], FAST_BEFORE);
    let fail = by_path.iter().find(|s| s["key"] == "/fail").expect("/fail");
    assert_eq!(fail["requests"], FAILED);
    assert_eq!(fail["server_errors"], FAILED);
    let slow = by_path.iter().find(|s| s["key"] == "/slow").expect("/slow");
    assert!(slow["max_us"].as_u64().unwrap() >= SLOW.as_micros() as u64);
    assert_eq!(slow["p95_us"], slow["max_us"]);
    let total: u64 = by_path
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, TOTAL as u64);

    let by_status = cli_json(&db, &["requests", "--by", "status"]);
    let counts: Vec<(String, u64)> = by_status
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("200".to_owned(), (FAST_BEFORE + 2) as u64),
            ("500".to_owned(), FAILED as u64),
            ("404".to_owned(), MISSING as u64),
        ]
    );

    let table = cli(&db, &["requests", "--by", "path"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in [
        "PATH",
        "REQUESTS",
        "5XX",
        "MEAN",
        "P95",
        "MAX",
        "LAST (UTC)",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert_eq!(table.stdout.lines().count(), 1 + 5, "{}", table.stdout);
    assert!(
        table.stderr.contains(&format!("{TOTAL} requests")),
        "{table:?}"
    );

    let filtered = cli_json(&db, &["requests", "--by", "status", "--status", "5xx"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1);
}

#[test]
fn an_empty_log_is_an_empty_success() {
    let (_dir, db) = empty_db();
    let run = cli(&db, &["requests"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("no requests match"), "{run:?}");
    assert!(
        run.stderr.contains("tracking"),
        "says how to turn it on: {run:?}"
    );
    assert_eq!(
        cli_json(&db, &["requests"])["requests"],
        Value::Array(vec![])
    );
    assert_eq!(
        cli_json(&db, &["requests", "--by", "path"]),
        Value::Array(vec![])
    );
}

#[test]
fn bad_values_missing_and_held_databases_have_their_exit_codes() {
    let (_dir, db) = empty_db();
    for args in [
        &["requests", "--slower-than", "fast"][..],
        &["requests", "--slower-than", "10"],
        &["requests", "--status", "6xx"],
        &["requests", "--status", "ok"],
        &["requests", "--between", "now"],
        &["requests", "--between", "now", "2h"],
        &["requests", "--between", "2h", "now", "--since", "1h"],
        &["requests", "--by", "user"],
        &["requests", "--slowest", "--by", "path"],
    ] {
        let run = cli(&db, args);
        assert_eq!(run.code, Some(USAGE), "{args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    let missing = tempfile::tempdir().unwrap();
    let run = cli(&missing.path().join("typo.db"), &["requests"]);
    assert_eq!(run.code, Some(NO_DATABASE), "{run:?}");

    let _holder = Holder::start(&db);
    let run = cli(&db, &["requests", "--slower-than", "1s"]);
    assert_eq!(run.code, Some(LOCKED), "{run:?}");
    assert!(run.stderr.contains("held by a running program"), "{run:?}");
}

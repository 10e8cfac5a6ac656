//! The `stacktrace` command-line tool run as a program against databases made here: empty,
//! 10,000 events, a rich one, a missing one and one held by a running program. Each command
//! is checked for its output (tables for people, JSON for scripts) and its exit code.

mod support;

use std::collections::HashSet;

use serde_json::Value;
use support::cli::{cli, cli_json, empty_db, large_db, showcase_db, Holder, LARGE};

/// Exit codes the tool documents.
const USAGE: i32 = 2;
const NOT_FOUND: i32 = 3;
const LOCKED: i32 = 4;
const NO_DATABASE: i32 = 5;

fn no_stack_trace(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
}

#[test]
fn an_empty_database_gives_empty_results_and_success() {
    let (_dir, db) = empty_db();
    let run = cli(&db, &["list"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("no events match"), "{run:?}");
    let list = cli_json(&db, &["list"]);
    assert_eq!(list["events"], Value::Array(vec![]));
    assert_eq!(list["next"], Value::Null);
    assert_eq!(cli_json(&db, &["groups"]), Value::Array(vec![]));
    assert_eq!(cli_json(&db, &["stats"])["events"], 0);
    assert_eq!(cli_json(&db, &["trends"])["total"], 0);
    assert_eq!(cli_json(&db, &["purge", "--keep", "0"])["removed"], 0);
    let export = cli(&db, &["export"]);
    assert_eq!(export.code, Some(0));
    assert_eq!(export.stdout.lines().count(), 1, "header only");
    let show = cli(&db, &["show", &"0".repeat(32)]);
    assert_eq!(show.code, Some(NOT_FOUND), "{show:?}");
    assert_eq!(cli(&db, &["resolve", "abcdef"]).code, Some(NOT_FOUND));
}

#[test]
fn a_missing_database_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    let run = cli(&db, &["stats"]);
    assert_eq!(run.code, Some(NO_DATABASE), "{run:?}");
    assert!(run.stderr.contains("no database at"), "{run:?}");
    assert!(!db.exists());
}

#[test]
fn a_database_held_by_a_running_program_is_explained_not_hung() {
    let (_dir, db) = empty_db();
    let _holder = Holder::start(&db);
    for args in [&["list"][..], &["stats"], &["resolve", "abcd"], &["serve"]] {
        let run = cli(&db, args);
        assert_eq!(run.code, Some(LOCKED), "{args:?}: {run:?}");
        assert!(run.stderr.contains("held by a running program"), "{run:?}");
        assert!(run.stderr.contains("dashboard"), "{run:?}");
        no_stack_trace(&run.stderr);
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    let (_dir, db) = empty_db();
    for args in [
        &["list", "--level", "loud"][..],
        &["list", "--since", "yesterday"],
        &["list", "--after", "nonsense"],
        &["show", "xyz"],
        &["frobnicate"],
        &["purge"],
        &["trends", "--interval", "week"],
        &["groups", "--status", "sleeping"],
    ] {
        let run = cli(&db, args);
        assert_eq!(run.code, Some(USAGE), "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty());
        no_stack_trace(&run.stderr);
    }
    let help = cli(&db, &["--help"]);
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("Exit codes:"), "{help:?}");
}

#[test]
fn serving_beyond_loopback_without_a_token_is_refused() {
    let (_dir, db) = empty_db();
    let run = cli(&db, &["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(run.code, Some(USAGE), "{run:?}");
    assert!(run.stderr.contains("without a token"), "{run:?}");
}

#[test]
fn list_pages_filters_and_searches_ten_thousand_events() {
    let (_dir, db) = large_db();
    let run = cli(&db, &["list"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 51, "header and 50 events");
    assert!(lines[0].starts_with("ID") && lines[0].contains("LEVEL"));
    // Aligned: the level column starts at the same place on every line.
    let col = lines[0].find("LEVEL").unwrap();
    assert!(lines[1..]
        .iter()
        .all(|l| l.len() > col && l.as_bytes()[col - 2..col] == *b"  "));
    assert!(run.stderr.contains("--after "), "{run:?}");

    let first = cli_json(&db, &["list", "--limit", "100"]);
    let cursor = first["next"].as_str().unwrap().to_owned();
    let second = cli_json(&db, &["list", "--limit", "100", "--after", &cursor]);
    let ids = |v: &Value| -> HashSet<String> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&first).len(), 100);
    assert!(ids(&first).is_disjoint(&ids(&second)));

    let fatal = cli_json(&db, &["list", "--level", "fatal", "--limit", "20000"]);
    let fatal = fatal["events"].as_array().unwrap();
    assert_eq!(fatal.len(), LARGE / 4);
    assert!(fatal
        .iter()
        .all(|e| e["level"] == "fatal" && e["user"] == "cy"));
    let cart = cli_json(
        &db,
        &[
            "list", "--path", "/cart", "--user", "bob", "--limit", "20000",
        ],
    );
    assert_eq!(cart["events"].as_array().unwrap().len(), LARGE / 4);
    let recent = cli_json(&db, &["list", "--since", "1h", "--limit", "1"]);
    assert_eq!(recent["events"].as_array().unwrap().len(), 1);
    let none = cli_json(&db, &["list", "--until", "2000-01-01"]);
    assert_eq!(none["events"].as_array().unwrap().len(), 0);

    let search = cli(&db, &["search", "EVENT 4321 OF"]);
    assert_eq!(search.code, Some(0), "{search:?}");
    assert_eq!(search.stdout.lines().count(), 2, "{search:?}");
    assert!(search.stdout.contains("event 4321 of fill"));
}

#[test]
fn show_prints_the_full_report_and_its_json() {
    let (_dir, db) = showcase_db();
    let errors = cli_json(&db, &["list", "--type", "scenario::ConfigFileError"]);
    let id = errors["events"][0]["id"].as_str().unwrap().to_owned();
    let run = cli(&db, &["show", &id]);
    assert_eq!(run.code, Some(0), "{run:?}");
    for part in [
        "scenario::ConfigFileError: cannot load config /nonexistent/app.toml",
        "Caused by",
        "No such file or directory",
        "Frames (innermost first",
        "> scenario::",
        "Environment",
        "program      scenario",
    ] {
        assert!(
            run.stdout.contains(part),
            "{part:?} missing:\n{}",
            run.stdout
        );
    }
    let json = cli_json(&db, &["show", &id]);
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["sources"][0], "No such file or directory (os error 2)");

    let tagged = cli_json(&db, &["list", "--user", "ann", "--limit", "1"]);
    let id = tagged["events"][0]["id"].as_str().unwrap().to_owned();
    let run = cli(&db, &["show", &id]);
    for part in [
        "Tags",
        "provider = acme-pay",
        "Extra",
        "user         ann",
        "/checkout",
    ] {
        assert!(
            run.stdout.contains(part),
            "{part:?} missing:\n{}",
            run.stdout
        );
    }
}

#[test]
fn groups_are_listed_resolved_ignored_and_reopened() {
    let (_dir, db) = showcase_db();
    let groups = cli_json(&db, &["groups", "--order", "count"]);
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 5, "{groups:?}");
    assert_eq!(groups[0]["count"], 5, "most events first");
    let counts: Vec<u64> = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");

    let table = cli(&db, &["groups"]);
    assert_eq!(table.code, Some(0));
    assert!(table.stdout.starts_with("GROUP"));
    assert_eq!(table.stdout.lines().count(), 6);
    assert!(table.stdout.contains("checkout declined by the provider"));

    let fp = groups[0]["fingerprint"].as_str().unwrap();
    let resolved = cli_json(&db, &["resolve", &fp[..8]]);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["fingerprint"], fp);
    let only = cli_json(&db, &["groups", "--status", "resolved"]);
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(cli_json(&db, &["ignore", fp])["status"], "ignored");
    let reopened = cli(&db, &["reopen", fp]);
    assert_eq!(reopened.code, Some(0));
    assert!(reopened.stdout.starts_with("unresolved"), "{reopened:?}");
    // Too short a prefix names no group.
    assert_eq!(cli(&db, &["resolve", &fp[..2]]).code, Some(NOT_FOUND));
}

#[test]
fn trends_are_drawn_and_counted() {
    let (_dir, db) = large_db();
    let run = cli(&db, &["trends"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains('█'), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{LARGE} events in 24 hours")));
    assert_eq!(run.stdout.lines().count(), 25);
    let json = cli_json(&db, &["trends", "--interval", "day", "--buckets", "3"]);
    assert_eq!(json["total"], LARGE as u64);
    assert_eq!(json["buckets"].as_array().unwrap().len(), 3);
    let fatal = cli_json(&db, &["trends", "--level", "fatal"]);
    assert_eq!(fatal["total"], (LARGE / 4) as u64);
}

#[test]
fn export_writes_csv_and_json_lines() {
    let (dir, db) = large_db();
    let csv = dir.path().join("events.csv");
    let run = cli(&db, &["export", "--output", csv.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains(&format!("exported {LARGE} events")));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), LARGE + 1);
    assert!(text.starts_with("id,time,level"));

    let run = cli(&db, &["export", "--format", "jsonl", "--level", "error"]);
    assert_eq!(run.code, Some(0));
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), LARGE / 4);
    assert!(lines.iter().all(|e| e["level"] == "error"));

    let jsonl = dir.path().join("few.jsonl");
    let summary = cli_json(
        &db,
        &[
            "export",
            "--limit",
            "7",
            "--output",
            jsonl.to_str().unwrap(),
        ],
    );
    assert_eq!(summary["exported"], 7);
    assert_eq!(summary["format"], "jsonl");
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 7);
}

#[test]
fn purge_by_count_and_age_and_stats_follow() {
    let (_dir, db) = large_db();
    let stats = cli_json(&db, &["stats"]);
    assert_eq!(stats["events"], LARGE as u64);
    assert_eq!(stats["groups"], LARGE as u64);
    assert!(stats["size_on_disk"].as_u64().unwrap() > 0);
    assert!(stats["dropped"].get("sampled").is_some(), "{stats}");
    let table = cli(&db, &["stats"]);
    assert!(table.stdout.contains("events") && table.stdout.contains("size on disk"));

    let dry = cli_json(&db, &["purge", "--keep", "100", "--dry-run"]);
    assert_eq!(dry["removed"], (LARGE - 100) as u64);
    assert_eq!(cli_json(&db, &["stats"])["events"], LARGE as u64);

    let done = cli_json(&db, &["purge", "--keep", "100"]);
    assert_eq!(done["removed"], (LARGE - 100) as u64);
    assert_eq!(done["remaining"], 100);
    let after = cli_json(&db, &["stats"]);
    assert_eq!(after["events"], 100);
    assert_eq!(after["groups"], LARGE as u64, "groups keep their counts");

    assert_eq!(
        cli_json(&db, &["purge", "--before", "2000-01-01"])["removed"],
        0
    );
    let run = cli(&db, &["purge", "--before", "now"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("removed 100 events, 0 left"), "{run:?}");
}

// Regression: `list --limit 0` listed one event (and `search` and `export` likewise) while
// `groups --limit 0` listed all; a negative limit was refused as an unknown argument
// without saying what a limit may be.
#[test]
fn a_limit_of_zero_means_all_and_a_negative_limit_is_explained() {
    let (_dir, db) = showcase_db();
    let events = cli_json(&db, &["stats"])["events"].as_u64().unwrap() as usize;
    assert!(events > 2, "the showcase has several events: {events}");
    let listed = cli_json(&db, &["list", "--limit", "0"]);
    assert_eq!(listed["events"].as_array().unwrap().len(), events);
    assert_eq!(listed["next"], Value::Null);
    let found = cli_json(&db, &["search", "checkout", "--limit", "0"]);
    assert_eq!(found["events"].as_array().unwrap().len(), 5);
    let exported = cli(&db, &["export", "--format", "jsonl", "--limit", "0"]);
    assert_eq!(exported.code, Some(0), "{exported:?}");
    assert_eq!(exported.stdout.lines().count(), events);
    let groups = cli_json(&db, &["groups", "--limit", "0"]);
    assert_eq!(groups.as_array().unwrap().len(), 5);
    // A limit above zero still limits.
    let two = cli_json(&db, &["list", "--limit", "2"]);
    assert_eq!(two["events"].as_array().unwrap().len(), 2);

    for args in [
        &["list", "--limit", "-1"][..],
        &["search", "x", "--limit", "-1"],
        &["groups", "--limit", "-1"],
        &["export", "--limit", "-1"],
        &["requests", "--limit", "-1"],
    ] {
        let run = cli(&db, args);
        assert_eq!(run.code, Some(USAGE), "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("the limit must be 0 or more"),
            "{args:?}: {}",
            run.stderr
        );
        no_stack_trace(&run.stderr);
    }
    let run = cli(&db, &["list", "--limit", "many"]);
    assert_eq!(run.code, Some(USAGE), "{run:?}");
    assert!(run.stderr.contains("\"many\""), "{}", run.stderr);
}

// Regression: a 50 KB message made a 25,000-character row in `groups` and `list` (and the
// heading of `show`) when the output is not a terminal.
#[test]
fn a_long_title_is_shortened_in_tables_and_headings_and_shown_whole_as_the_message() {
    let (_dir, db) = support::cli::long_message_db();
    for args in [&["groups"][..], &["list"]] {
        let run = cli(&db, args);
        assert_eq!(run.code, Some(0), "{run:?}");
        let row = run.stdout.lines().nth(1).expect("a row");
        let start: String = row.chars().take(300).collect();
        assert!(row.contains("huge-title-start é"), "{args:?}: {start}");
        assert!(row.ends_with('…'), "{args:?}: {start}");
        assert!(!row.contains("huge-title-end"), "{args:?}");
        assert!(
            row.chars().count() < 400,
            "{args:?}: {}",
            row.chars().count()
        );
    }
    let id = cli_json(&db, &["list"])["events"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let show = cli(&db, &["show", &id]);
    assert_eq!(show.code, Some(0), "{show:?}");
    let heading = show.stdout.lines().next().unwrap();
    let start: String = heading.chars().take(300).collect();
    assert!(
        heading.contains("huge-title-start é") && heading.ends_with('…'),
        "{start}"
    );
    assert!(heading.chars().count() < 400, "{}", heading.chars().count());
    // The message block has all of it.
    let whole = format!("huge-title-start {} huge-title-end", "é".repeat(25_000));
    assert!(
        show.stdout.contains(&format!("  {whole}\n")),
        "the whole message"
    );
    // And the JSON is the data, not a view of it.
    assert_eq!(cli_json(&db, &["groups"])[0]["title"], whole);
}

// Regression: counts of one were printed with a plural noun ("1 events").
#[test]
fn counts_of_one_take_the_singular() {
    let (dir, db) = showcase_db();
    let one = cli_json(&db, &["list", "--user", "mallory"]);
    let id = one["events"][0]["id"].as_str().unwrap().to_owned();
    let show = cli(&db, &["show", &id]);
    assert!(show.stdout.contains(", 1 event)"), "{}", show.stdout);
    let trends = cli(&db, &["trends", "--user", "mallory"]);
    assert!(
        trends.stdout.contains("1 event in 24 hours"),
        "{}",
        trends.stdout
    );
    let file = dir.path().join("one.csv");
    let export = cli(
        &db,
        &[
            "export",
            "--user",
            "mallory",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(export.stderr.contains("exported 1 event to"), "{export:?}");
    let events = cli_json(&db, &["stats"])["events"].as_u64().unwrap();
    let keep = (events - 1).to_string();
    let purge = cli(&db, &["purge", "--keep", &keep]);
    assert!(
        purge
            .stdout
            .contains(&format!("removed 1 event, {keep} left")),
        "{purge:?}"
    );
    // And several take the plural.
    let trends = cli(&db, &["trends"]);
    assert!(
        trends
            .stdout
            .contains(&format!("{keep} events in 24 hours")),
        "{}",
        trends.stdout
    );
}

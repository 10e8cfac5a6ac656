//! The disk budget end to end: a program with a 2 MiB budget captures 8,000 events in
//! three groups; its background worker holds the database to the budget, every group
//! keeps its count, its first and its latest event, and `stacktrace stats` shows the
//! budget, the estimated size and what was removed.

mod support;

use std::process::Command;

use support::cli::{cli, cli_json};

const BUDGET: u64 = 2 << 20;

// Pins: the store had no bound: a program's database grew with every event it kept, and
// nothing removed events while keeping each group's count, first and latest event.
#[test]
fn a_program_with_a_budget_keeps_its_database_under_it_and_every_group_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let out = Command::new(env!("CARGO_BIN_EXE_budget_scenario"))
        .arg(&db)
        .arg("8000")
        .env_remove("STACKTRACE_DB")
        .env_remove("STACKTRACE_DISK_BUDGET_BYTES")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let captured: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let stats = cli_json(&db, &["stats"]);
    assert_eq!(stats["disk_budget"], BUDGET, "{stats}");
    let estimated = stats["estimated_size"].as_u64().unwrap();
    assert!(estimated <= BUDGET, "{stats}");
    let removed = stats["budget_removed"].as_u64().unwrap();
    assert!(removed > 0, "{stats}");
    assert_eq!(
        stats["events"].as_u64().unwrap() + removed,
        8_002,
        "{stats}"
    );
    let table = cli(&db, &["stats"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("removed for the budget"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(line.contains(&removed.to_string()), "{line}");
    assert!(table.stdout.contains("disk budget") && table.stdout.contains("2.0 MiB"));

    let store = stacktrace::Store::open(&db).unwrap();
    let page = store
        .groups_page(stacktrace::GroupOrder::Count, None, 10, |_| true)
        .unwrap();
    assert_eq!(page.groups.len(), 3);
    for g in &page.groups {
        // The count is every occurrence, removed ones included.
        assert_eq!(g.count, captured[&g.title], "{}", g.title);
        let events = store.query().fingerprint(&g.fingerprint).all().unwrap();
        let (latest, first) = (events.first().unwrap(), events.last().unwrap());
        assert_eq!(latest.id, g.last_event, "{} lost its latest event", g.title);
        assert_eq!(
            first.timestamp_us, g.first_seen_us,
            "{} lost its first event",
            g.title
        );
        if g.count == 2 {
            // Control: a group of two keeps both.
            assert_eq!(events.len(), 2);
        } else {
            assert!(
                (events.len() as u64) < g.count,
                "{}: nothing removed",
                g.title
            );
        }
    }
}

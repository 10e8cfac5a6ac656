//! Opt-in: the resident memory a program spends on its database while it stores many events.
//!
//! `STACKTRACE_STRESS=1 cargo test -p stacktrace-tests --test memory -- --nocapture`
//! (`STACKTRACE_MEMORY_EVENTS` events, default 50,000).
//!
//! Pins: resident memory grew by about 9 KB per stored event (470 MB after 51,200 panics),
//! sled's page cache being left at its default of 1 GiB.

mod support;

use std::time::Duration;

use support::scenario::{db_dir, env_u64, run_with_limit, stress_enabled};

/// The figures a `memory` run printed: events stored, resident bytes before and after.
fn figures(stdout: &str) -> (u64, u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("stored "))
        .unwrap_or_else(|| panic!("no figures in {stdout}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn storing_fifty_thousand_events_grows_resident_memory_by_less_than_64_mib() {
    if !stress_enabled("store 50,000 events and measure") {
        return;
    }
    let events = env_u64("STACKTRACE_MEMORY_EVENTS", 50_000);
    let (_dir, db) = db_dir();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_store_scenario"));
    cmd.arg("memory").arg(&db).arg(events.to_string());
    cmd.env_remove("STACKTRACE_DB")
        .env_remove("STACKTRACE_CACHE_BYTES");
    let run = run_with_limit(cmd, Duration::from_secs(1200));
    assert_eq!(run.code, Some(0), "{run:?}");
    let (stored, before, after) = figures(&run.stdout);
    let growth = after.saturating_sub(before);
    println!(
        "{stored} events stored; resident {} MiB before, {} MiB after: {} MiB more, {} bytes an event",
        before >> 20,
        after >> 20,
        growth >> 20,
        growth / stored.max(1)
    );
    // Control: the events were stored, or the figure says nothing.
    assert!(stored >= events, "{stored} stored of {events}");
    assert!(growth < 64 << 20, "resident memory grew by {growth} bytes");
}

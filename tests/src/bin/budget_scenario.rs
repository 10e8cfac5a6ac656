//! A program with a small disk budget that captures many events in few groups, for the
//! disk budget's tests: `budget_scenario DB N` captures N events (three in four of group
//! `checkout`, the rest of group `cart`, and two of group `pair`, the first and the last),
//! waits until the background worker has held the database to its budget, and prints
//! the number of events captured per group as JSON.

use stacktrace::{Config, Level, Report};

/// The budget: 2 MiB.
const BUDGET: u64 = 2 << 20;

fn capture(message: &str, i: usize) {
    let padding = "x".repeat(400);
    let report = || {
        Report::message(message, Level::Error)
            .with_backtrace(false)
            .extra("n", i)
            .extra("padding", &padding)
    };
    if report().capture().is_none() {
        // The queue was full: wait for the writer and retry once.
        if let Some(store) = stacktrace::store() {
            let _ = store.flush();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        report().capture().expect("kept after a pause");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8_000);
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(&db)
            .disk_budget_bytes(BUDGET)
            .crash_handler(false),
    );
    let (mut checkout, mut cart) = (0, 0);
    capture("pair failed", 0);
    for i in 0..n {
        if i % 4 == 3 {
            cart += 1;
            capture("cart failed", i);
        } else {
            checkout += 1;
            capture("checkout failed", i);
        }
        if i % 512 == 0 {
            guard.flush();
        }
    }
    capture("pair failed", n);
    guard.flush();
    let store = stacktrace::store().expect("the database is open");
    let start = std::time::Instant::now();
    while store.estimated_size() > BUDGET && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    guard.flush();
    println!(
        "{}",
        serde_json::json!({"checkout failed": checkout, "cart failed": cart, "pair failed": 2})
    );
}

//! The main job on the embedded default: install, fail in a few ways, read it all back.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Events go to `stacktrace.db` in the working directory (or `STACKTRACE_DB`); run it twice
//! and the counts of the groups grow.

use std::fmt;

#[derive(Debug)]
struct ChargeError {
    order: u32,
    source: std::num::ParseIntError,
}

impl fmt::Display for ChargeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot charge order {}", self.order)
    }
}

impl std::error::Error for ChargeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn charge(order: u32, amount: &str) -> Result<u64, ChargeError> {
    amount
        .parse::<u64>()
        .map_err(|source| ChargeError { order, source })
}

fn main() {
    // The macro form knows this crate as the application's: its frames are the in-app ones.
    let guard = stacktrace::install!();
    for problem in guard.errors() {
        eprintln!("note: {problem}");
    }

    // A panic in a worker thread: stored by the hook before the thread unwinds.
    let worker = std::thread::Builder::new()
        .name("billing-worker".into())
        .spawn(|| {
            let rates: Vec<u32> = Vec::new();
            rates[3]
        })
        .expect("spawn a thread");
    let _ = worker.join();

    // An error you handle, with its source chain.
    if let Err(e) = charge(1042, "12,50") {
        stacktrace::capture_error(&e);
    }

    // A message, with extra data; `password` is redacted before storage.
    stacktrace::Report::message("payment provider slow", stacktrace::Level::Warning)
        .extra("provider", "acme-pay")
        .extra("password", "hunter2")
        .capture();

    // Wait for the background writer, then read back through the running program's store.
    guard.flush();
    let Some(store) = stacktrace::store() else {
        eprintln!("no database is open; see the notes above");
        return;
    };

    println!("Latest events:");
    let page = store.query().limit(10).run().expect("query events");
    for event in &page.events {
        let at = event
            .location
            .as_ref()
            .map(|l| l.to_string())
            .unwrap_or_default();
        println!(
            "  {} {:<7} {}  ({at})",
            event.id,
            event.level,
            event.title()
        );
        for source in &event.sources {
            println!("      caused by: {source}");
        }
        if let Some(frame) = event.culprit() {
            println!("      in {}", frame.function);
        }
        for (key, value) in &event.extra {
            println!("      {key} = {value}");
        }
    }

    println!("\nGroups, most frequent first:");
    for group in store
        .groups(stacktrace::GroupOrder::Count)
        .expect("read groups")
    {
        println!(
            "  {:>4}x {:<10} {}  [{}]",
            group.count,
            group.status,
            group.title,
            &group.fingerprint[..12]
        );
    }

    let stats = store.stats().expect("read stats");
    println!(
        "\n{} events in {} groups, {} bytes on disk ({})",
        stats.events,
        stats.groups,
        stats.size_on_disk,
        store.path().display()
    );
}

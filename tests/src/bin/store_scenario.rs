//! Programs for the storage tests that must run in a process of their own: one that panics
//! in threads until it is killed, and one that stores many events and reports its resident
//! memory.
//!
//! Usage: `store_scenario <name> <db-path> [arg]`.

use std::time::Duration;

use stacktrace::{Config, Level};

/// Resident memory of this process in bytes, from `/proc/self/statm`; 0 where unreadable.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let arg = args.next().unwrap_or_default();
    let base = Config::default().db_path(&db).rate_limit(0);

    match name.as_str() {
        // Panics in several threads, and captures errors, until the process is killed.
        "panic-until-killed" => {
            let guard = stacktrace::install_with(base);
            for e in guard.errors() {
                println!("install error: {e}");
            }
            // Two threads panic over and over, two capture errors: the database is written
            // to all the time, whatever moment the kill comes.
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    std::thread::spawn(move || {
                        for i in 0u64.. {
                            if t % 2 == 0 {
                                let _ = std::thread::spawn(move || {
                                    panic!("worker {t} panic {i}");
                                })
                                .join();
                            } else {
                                stacktrace::capture_message(
                                    &format!("worker {t} message {i}"),
                                    Level::Error,
                                );
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                let _ = t.join();
            }
        }
        // Stores `arg` events ("N" or "N:CACHE_BYTES", default 50,000 with the default
        // cache), then prints how many are stored and the resident memory before and after,
        // in bytes: `stored <n> resident before <n> after <n>`.
        "memory" => {
            let (n, cache) = arg.split_once(':').unwrap_or((&arg, ""));
            let n: u64 = n.parse().unwrap_or(50_000);
            let mut config = base.queue_capacity(1 << 16);
            if let Ok(bytes) = cache.parse() {
                config = config.cache_bytes(bytes);
            }
            let guard = stacktrace::install_with(config);
            for e in guard.errors() {
                println!("install error: {e}");
            }
            // A first event and flush, so that what every event shares is in `before`.
            stacktrace::capture_message("warm-up", Level::Error);
            guard.flush();
            let before = resident_bytes();
            for i in 0..n {
                stacktrace::capture_message(
                    &format!("stored event number {i} with a message of ordinary length"),
                    Level::Error,
                );
                if i % 1024 == 1023 {
                    guard.flush();
                }
            }
            guard.flush();
            let after = resident_bytes();
            let stored = stacktrace::store()
                .and_then(|s| s.stats().ok())
                .map_or(0, |s| s.events);
            println!("stored {stored} resident before {before} after {after}");
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}

//! Programs for the tests of a database held by another process at install: one that holds
//! it for a while, one that spools and then takes the database over, and one that floods
//! its spool past its cap.
//!
//! Usage: `takeover_scenario <name> <db-path> [arg]`.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use stacktrace::{Config, DropReason, Level, Store};

/// Waits for `stacktrace::store()` at most `limit`; how long it took.
fn wait_for_store(limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if stacktrace::store().is_some() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The messages of the events in `store`, sorted.
fn messages(store: &Store) -> Vec<String> {
    let mut m: Vec<String> = store
        .query()
        .limit(1_000_000)
        .run()
        .expect("query")
        .events
        .into_iter()
        .map(|e| e.message)
        .collect();
    m.sort();
    m
}

fn spool_holds(path: Option<&Path>, text: &str) -> bool {
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|s| s.contains(text))
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// Waits until standard input is closed.
fn wait_for_stdin() {
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let arg = args.next().unwrap_or_default();
    let base = Config::default()
        .db_path(&db)
        .rate_limit(0)
        .capture_env(false);

    match name.as_str() {
        // Opens the database as another program would, and holds it `arg` milliseconds.
        "hold-for" => {
            let store = Store::open(&db).expect("open the database");
            say("holding");
            std::thread::sleep(Duration::from_millis(arg.parse().unwrap_or(1500)));
            drop(store);
            say("released");
        }
        // Installs while another process holds the database, captures, and waits for the
        // database to become its own; with `wait`, stays until its input is closed.
        "spool-then-store" => {
            let guard = stacktrace::install_with(base);
            let spool = guard.spool_path();
            say(&format!("spooling: {}", spool.is_some()));
            for i in 0..3 {
                stacktrace::capture_message(&format!("spooled {i}"), Level::Error);
            }
            let _ = std::thread::spawn(|| panic!("spooled panic")).join();
            guard.flush();
            say(&format!(
                "spool holds the spooled events: {}",
                spool_holds(spool, "spooled 1")
            ));
            say(&format!("store before: {}", stacktrace::store().is_some()));
            let Some(took) = wait_for_store(Duration::from_secs(30)) else {
                say("store: never");
                return;
            };
            say(&format!("store after {} ms", took.as_millis()));
            stacktrace::capture_message("after the takeover", Level::Error);
            guard.flush();
            let store = stacktrace::store().expect("checked above");
            say(&format!("in store: {}", messages(store).join("|")));
            say(&format!("spool path now: {:?}", guard.spool_path()));
            say(&format!(
                "spool holds the new event: {}",
                spool_holds(spool, "after the takeover")
            ));
            if arg == "wait" {
                say("done");
                wait_for_stdin();
            }
        }
        // Floods the spool of a held database past a cap of `bytes` with `count` events,
        // arg `bytes,count`; once the database is free, says what the store holds and what
        // was dropped.
        "flood" => {
            let (cap, count) = arg.split_once(',').expect("bytes,count");
            let (cap, count): (u64, usize) = (cap.parse().unwrap(), count.parse().unwrap());
            let guard = stacktrace::install_with(base.spool_max_bytes(cap).queue_capacity(1 << 16));
            let spool = guard.spool_path().expect("the database is held").to_owned();
            let size = || std::fs::metadata(&spool).map_or(0, |m| m.len());
            let start = Instant::now();
            let (mut largest, mut first_cut) = (0, None);
            for i in 0..count {
                stacktrace::capture_message(&format!("flood {i:06}"), Level::Error);
                if i % 100 == 99 {
                    guard.flush();
                    let now = size();
                    if now < largest && first_cut.is_none() {
                        first_cut = Some((start.elapsed(), i + 1));
                    }
                    largest = largest.max(now);
                }
            }
            guard.flush();
            let took = start.elapsed();
            largest = largest.max(size());
            say(&format!(
                "flooded {count} events in {} ms; spool at most {largest} bytes",
                took.as_millis()
            ));
            match first_cut {
                Some((at, events)) => say(&format!(
                    "first cut after {} ms, {events} events",
                    at.as_millis()
                )),
                None => say("first cut: never"),
            }
            let Some(_) = wait_for_store(Duration::from_secs(60)) else {
                say("store: never");
                return;
            };
            let store = stacktrace::store().expect("checked above");
            let kept: Vec<String> = messages(store)
                .into_iter()
                .filter(|m| m.starts_with("flood "))
                .collect();
            let dropped = store.dropped().expect("drops");
            let of = |r| dropped.get(&r).copied().unwrap_or(0);
            say(&format!("stored {}", kept.len()));
            say(&format!("spool_full {}", of(DropReason::SpoolFull)));
            say(&format!(
                "other drops {}",
                of(DropReason::QueueFull) + of(DropReason::StorageError)
            ));
            say(&format!(
                "oldest kept {}",
                kept.first().map_or("none", String::as_str)
            ));
            say(&format!(
                "newest kept {}",
                kept.last().map_or("none", String::as_str)
            ));
        }
        other => panic!("unknown scenario {other:?}"),
    }
}

//! Heavy runs, opt-in: `cargo test -p stacktrace-tests --test stress -- --ignored`
//! (`STACKTRACE_STRESS=THREADS:ROUNDS`, default 64:50).

mod support;

use std::time::Duration;

use stacktrace::Store;
use support::scenario::{db_dir, run_with_limit, scenario_command};

#[test]
#[ignore = "heavy: run with --ignored"]
fn panic_and_error_storm_from_many_threads_stores_everything_once() {
    let spec = std::env::var("STACKTRACE_STRESS").unwrap_or_else(|_| "64:50".into());
    let (threads, rounds): (u64, u64) = spec
        .split_once(':')
        .map(|(t, r)| (t.parse().unwrap(), r.parse().unwrap()))
        .expect("THREADS:ROUNDS");
    let (_dir, db) = db_dir();
    let run = run_with_limit(
        scenario_command("stress", &db, &spec),
        Duration::from_secs(600),
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    println!("{}", run.stdout);
    assert!(run
        .stdout
        .contains(&format!("panicked {}", threads * rounds)));
    let store = Store::open(&db).unwrap();
    let stats = store.stats().unwrap();
    let dropped: u64 = stats.dropped.values().sum();
    println!("stored {} events, dropped {dropped}", stats.events);
    assert_eq!(stats.events + dropped, 2 * threads * rounds, "{stats:?}");
    assert_eq!(dropped, 0, "{stats:?}");
    assert_eq!(
        store.query().error_type("panic").count().unwrap(),
        threads * rounds
    );
}

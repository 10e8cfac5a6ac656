//! Two tokio tasks interleaving on one thread, one of them panicking inside captured
//! `async fn`s: its panic event lists only its own calls.
//!
//! The panic hook is process-wide, so the scenario runs in a child process: this test binary
//! started again with `MACRO_TASKS_DB` set, running only `child_scenario`.

mod support;

use std::process::Command;
use std::time::Duration;

use stacktrace::{capture, Store};
use support::scenario::{db_dir, run_with_limit};

#[capture]
async fn quiet_task(name: &str, rounds: u32) -> u32 {
    let mut n = 0;
    for _ in 0..rounds {
        tokio::task::yield_now().await;
        n = quiet_step(n).await;
    }
    let _ = name;
    n
}

#[capture]
async fn quiet_step(i: u32) -> u32 {
    tokio::task::yield_now().await;
    i + 1
}

#[capture]
async fn failing_task(order: u64) {
    tokio::task::yield_now().await;
    failing_step(order, "late").await;
}

#[capture]
async fn failing_step(order: u64, reason: &str) {
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    panic!("order {order} failed: {reason}");
}

/// The child's side; does nothing in a normal test run.
#[test]
fn child_scenario() {
    let Ok(db) = std::env::var("MACRO_TASKS_DB") else {
        return;
    };
    let guard =
        stacktrace::install_with(stacktrace::Config::default().db_path(db).capture_env(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let quiet = tokio::spawn(quiet_task("quiet", 6));
        let failing = tokio::spawn(failing_task(77));
        assert!(failing.await.is_err());
        assert_eq!(quiet.await.expect("quiet task"), 6);
    });
    assert!(guard.flush_timeout(Duration::from_secs(30)));
}

#[test]
fn a_task_panicking_on_a_shared_thread_carries_only_its_own_calls() {
    let (_dir, db) = db_dir();
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_scenario",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("MACRO_TASKS_DB", &db)
    .env_remove("STACKTRACE_DB");
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");

    let events = Store::open(&db)
        .expect("open")
        .query()
        .all()
        .expect("query");
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.message, "order 77 failed: late");
    let calls: Vec<(&str, Vec<(&str, &str)>)> = e
        .calls
        .iter()
        .map(|c| {
            let args = c
                .args
                .iter()
                .map(|a| (a.name.as_str(), a.value.as_str()))
                .collect();
            (c.function.as_str(), args)
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("macros_tasks::failing_task", vec![("order", "77")]),
            (
                "macros_tasks::failing_step",
                vec![("order", "77"), ("reason", "\"late\"")]
            ),
        ]
    );
}

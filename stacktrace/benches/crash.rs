//! The costs of the crash record, each against a baseline in the same run, measured in
//! fresh processes (this program run again), since `install()` happens once a process:
//!
//! - `install()` with the fatal-signal handler against without (`crash_handler(false)`),
//!   in CPU time of the calling thread;
//! - a breadcrumb copied into the flight recorder against the in-memory trail alone (a
//!   process whose database cannot be opened keeps its breadcrumbs but no record), in CPU
//!   time of the recording thread.
//!
//! `cargo bench -p stacktrace --bench crash` (`STACKTRACE_BENCH_RUNS` processes of each
//! kind, default 15). Linux: elsewhere there is no record, and the two sides are the same.

use std::hint::black_box;
use std::time::Duration;

use stacktrace::{add_breadcrumb, Breadcrumb, Config, Level};

// Only its CPU clock is used here.
#[allow(dead_code)]
#[path = "support/clocks.rs"]
mod clocks;

use clocks::thread_cpu_now;

const CHILD: &str = "STACKTRACE_BENCH_CRASH_CHILD";
const RUNS: &str = "STACKTRACE_BENCH_RUNS";
const CRUMBS: u32 = 1_000_000;

/// In a child: does one kind of measurement and prints nanoseconds.
fn child(kind: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = match kind {
        // A path under a file: the database cannot be opened, so no record is kept.
        "crumb-trail" => {
            let file = dir.path().join("a-file");
            std::fs::write(&file, b"").expect("write a file");
            file.join("bench.db")
        }
        _ => dir.path().join("bench.db"),
    };
    let config = Config::default().db_path(&db).capture_env(false);
    match kind {
        "install-handler" | "install-no-handler" => {
            let config = config.crash_handler(kind == "install-handler");
            // The calling thread's CPU time: install's work is done on it, and unlike the
            // wall time it holds still on a machine busy with other work.
            let start = thread_cpu_now();
            let guard = stacktrace::install_with(config);
            let took = thread_cpu_now().saturating_sub(start);
            black_box(&guard);
            println!("{}", took.as_nanos());
        }
        _ => {
            let _guard = stacktrace::install_with(config);
            let crumb = || Breadcrumb::new(Level::Info, "bench", "a breadcrumb of a usual length");
            for _ in 0..10_000 {
                add_breadcrumb(crumb());
            }
            // CPU time of this thread, as for install: the other side's process keeps no
            // database, so no threads of its own to share the machine's cores with, and on
            // a busy machine the wall time would count the time this thread waits for one.
            let start = thread_cpu_now();
            for _ in 0..CRUMBS {
                add_breadcrumb(black_box(crumb()));
            }
            let took = thread_cpu_now().saturating_sub(start);
            println!("{}", took.as_nanos() / u128::from(CRUMBS));
        }
    }
}

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn main() {
    if let Ok(kind) = std::env::var(CHILD) {
        child(&kind);
        return;
    }
    // `cargo bench` passes `--bench`; a filter naming neither part skips it.
    let runs: usize = std::env::var(RUNS)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let exe = std::env::current_exe().expect("the bench's own path");
    let kinds = [
        "install-no-handler",
        "install-handler",
        "crumb-trail",
        "crumb-recorder",
    ];
    let mut results: Vec<Vec<u128>> = vec![Vec::new(); kinds.len()];
    // Interleaved, so that a busy moment of the machine falls on both sides alike.
    for round in 0..runs {
        // Each side first in every other round: the first child of a round runs on a
        // machine just busy with the last one's exit.
        let mut order: Vec<usize> = (0..kinds.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let kind = kinds[i];
            let out = std::process::Command::new(&exe)
                .env(CHILD, kind)
                .stderr(std::process::Stdio::null())
                .output()
                .expect("run a child");
            let text = String::from_utf8_lossy(&out.stdout);
            if let Ok(n) = text.trim().parse() {
                results[i].push(n);
            }
        }
    }
    let m: Vec<u128> = results.into_iter().map(median).collect();
    let d = |n: u128| Duration::from_nanos(n as u64);
    println!("median of {runs} fresh processes each:");
    println!(
        "  install(), CPU time: without the crash handler {:>12?}  with {:>12?}  difference {:>10?}",
        d(m[0]),
        d(m[1]),
        d(m[1].saturating_sub(m[0]))
    );
    println!(
        "  breadcrumb, CPU time: trail alone {:>6} ns  with the flight recorder {:>6} ns  difference {:>4} ns",
        m[2],
        m[3],
        m[3] as i128 - m[2] as i128
    );
}

//! The calling thread's cost of capture, against baselines measured in the same run:
//! a panic through an empty hook, and a bare unresolved backtrace. Each is measured twice:
//! in wall time, and in the calling thread's own CPU time, which leaves out what the
//! writer, the database and other programs on the machine take from it.
//!
//! The hook is process-wide, so the baselines run first and the tracker is installed after.
//!
//! The first panic of a process is measured apart, in fresh processes (this program run
//! again as a child): its hook time, with the tracker and with an empty hook (the baseline:
//! the unwinder's own first-use cost), and a warm panic of the same process for the ratio.
//! `cargo bench -p stacktrace --bench capture -- first` measures the bench profile (release
//! with line tables); `cargo bench -p stacktrace --bench capture --profile dev -- first` the
//! dev profile.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

#[path = "support/clocks.rs"]
mod clocks;

use clocks::{batched, Clock, ThreadCpu};

#[derive(Debug)]
struct BenchError(std::num::ParseIntError);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bench failure")
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[inline(never)]
fn fail() {
    panic!("bench panic");
}

fn baselines<C: Clock>(c: &mut Criterion<C>) {
    let mut group = c.benchmark_group(format!("panic, {}", C::NAME));
    group.bench_function("empty hook (baseline)", |b| {
        b.iter(|| std::panic::catch_unwind(fail).is_err())
    });
    group.bench_function("Backtrace::new_unresolved (baseline)", |b| {
        b.iter(|| black_box(backtrace::Backtrace::new_unresolved()))
    });
    // A panic after a pause finds cold caches: the floor of the "one at a time" figure.
    group.bench_function("empty hook, one at a time (baseline)", |b| {
        b.iter_custom(panics_one_at_a_time::<C>)
    });
    group.finish();
}

/// `iters` panics, each timed alone after an untimed 2 ms pause.
fn panics_one_at_a_time<C: Clock>(iters: u64) -> Duration {
    batched::<C>(
        iters,
        1,
        || {
            black_box(std::panic::catch_unwind(fail).is_err());
        },
        || std::thread::sleep(Duration::from_millis(2)),
    )
}

fn stored<C: Clock>(c: &mut Criterion<C>, guard: &stacktrace::Guard) {
    let mut group = c.benchmark_group(format!("panic, {}", C::NAME));
    // The hook makes the event durable (journaled) and queues it; the writer stores it.
    // Each batch is flushed untimed, so the writer's queue never grows without bound.
    group.bench_function("captured and made durable, back to back", |b| {
        b.iter_custom(|iters| {
            batched::<C>(
                iters,
                200,
                || {
                    black_box(std::panic::catch_unwind(fail).is_err());
                },
                || {
                    guard.flush();
                },
            )
        })
    });
    // Panics one at a time, as they come in a program: the writer stores the previous
    // panic and flushes the database in an untimed pause before the next.
    group.bench_function("captured and made durable, one at a time", |b| {
        b.iter_custom(panics_one_at_a_time::<C>)
    });
    group.finish();

    let error = BenchError("x".parse::<u32>().unwrap_err());
    let mut group = c.benchmark_group(format!("capture_error, {}", C::NAME));
    group.bench_function("Backtrace::new_unresolved (baseline)", |b| {
        b.iter(|| black_box(backtrace::Backtrace::new_unresolved()))
    });
    // The writer's work is left out of the timing: each batch is flushed untimed, so the
    // queue never fills and every capture is a real enqueue.
    group.bench_function("calling thread", |b| {
        b.iter_custom(|iters| {
            batched::<C>(
                iters,
                2_000,
                || {
                    black_box(stacktrace::capture_error(&error));
                },
                || {
                    guard.flush();
                },
            )
        })
    });
    group.finish();
}

/// Set in a child run of this program: which first panic to measure.
const FIRST_PANIC_CHILD: &str = "STACKTRACE_BENCH_FIRST_PANIC";
/// Fresh processes per kind (default 15).
const FIRST_PANIC_RUNS: &str = "STACKTRACE_BENCH_FIRST_PANIC_RUNS";
/// Warm panics timed in each child, the median kept.
const WARM_PANICS: usize = 31;

/// In a child: installs the tracker (`tracker`) or not (`baseline`, an empty hook), then
/// prints the wall time of its first panic and the median of the warm ones, in nanoseconds.
fn first_panic_child(kind: &str) {
    std::panic::set_hook(Box::new(|_| {}));
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = (kind == "tracker").then(|| {
        stacktrace::install_with(
            stacktrace::Config::default()
                .db_path(dir.path().join("first.db"))
                .capture_env(false),
        )
    });
    let time_one = || {
        let start = std::time::Instant::now();
        black_box(std::panic::catch_unwind(fail).is_err());
        start.elapsed()
    };
    let first = time_one();
    let mut warm: Vec<Duration> = (0..WARM_PANICS)
        .map(|_| {
            if let Some(g) = &guard {
                g.flush();
            }
            std::thread::sleep(Duration::from_millis(2));
            time_one()
        })
        .collect();
    warm.sort();
    println!("{} {}", first.as_nanos(), warm[WARM_PANICS / 2].as_nanos());
}

/// Runs fresh processes of each kind; prints the medians of their first and warm panics.
fn first_panic_in_fresh_processes() {
    let runs: usize = std::env::var(FIRST_PANIC_RUNS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let exe = std::env::current_exe().expect("the bench's own path");
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release (bench)"
    };
    let median = |mut v: Vec<u128>| {
        v.sort();
        Duration::from_nanos(v[v.len() / 2] as u64)
    };
    let mut medians = Vec::new();
    for kind in ["baseline", "tracker"] {
        let (mut firsts, mut warms) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let out = std::process::Command::new(&exe)
                .env(FIRST_PANIC_CHILD, kind)
                .output()
                .expect("run a child");
            let text = String::from_utf8_lossy(&out.stdout);
            let mut parts = text.split_whitespace().map(|n| n.parse::<u128>());
            match (parts.next(), parts.next()) {
                (Some(Ok(first)), Some(Ok(warm))) => {
                    firsts.push(first);
                    warms.push(warm);
                }
                _ => panic!(
                    "child said {text:?}, {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        let (first, warm) = (median(firsts), median(warms));
        medians.push((kind, first, warm));
    }
    println!("first panic of a fresh process, {profile} profile, median of {runs} processes:");
    for (kind, first, warm) in &medians {
        let hook = if *kind == "tracker" {
            "tracker"
        } else {
            "empty hook (baseline)"
        };
        println!(
            "  {hook:<22} first {first:>12?}  warm {warm:>10?}  first/warm {:>7.1}",
            first.as_secs_f64() / warm.as_secs_f64().max(1e-9)
        );
    }
    if let [(_, b_first, b_warm), (_, t_first, t_warm)] = medians[..] {
        println!(
            "  tracker's own cost:    first {:>12?}  warm {:>10?}",
            t_first.saturating_sub(b_first),
            t_warm.saturating_sub(b_warm)
        );
    }
}

fn main() {
    if let Ok(kind) = std::env::var(FIRST_PANIC_CHILD) {
        first_panic_child(&kind);
        return;
    }
    // `-- first` (or a filter naming it) runs the fresh-process case; no filter runs all.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref().is_none_or(|f| "first panic".contains(f)) {
        first_panic_in_fresh_processes();
    }
    if filter.as_deref() == Some("first") {
        return;
    }
    let wall = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut cpu = Criterion::default()
        .with_measurement(ThreadCpu)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut wall = wall;
    let dir = tempfile::tempdir().expect("temp dir");
    std::panic::set_hook(Box::new(|_| {}));

    baselines(&mut wall);
    baselines(&mut cpu);

    let guard = stacktrace::install_with(
        stacktrace::Config::default()
            .db_path(dir.path().join("bench.db"))
            .queue_capacity(1 << 20)
            .capture_env(false),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    stored(&mut wall, &guard);
    stored(&mut cpu, &guard);

    wall.final_summary();
    cpu.final_summary();
}

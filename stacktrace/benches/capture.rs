//! The calling thread's cost of capture, against baselines measured in the same run:
//! a panic through an empty hook, and a bare unresolved backtrace. Each is measured twice:
//! in wall time, and in the calling thread's own CPU time, which leaves out what the
//! writer, the database and other programs on the machine take from it.
//!
//! The hook is process-wide, so the baselines run first and the tracker is installed after.

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

fn main() {
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

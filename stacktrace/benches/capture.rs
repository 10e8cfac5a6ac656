//! The calling thread's cost of capture, against baselines measured in the same run:
//! a panic through an empty hook, and a bare unresolved backtrace.
//!
//! The hook is process-wide, so the baselines run first and the tracker is installed after.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

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

fn capture(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::panic::set_hook(Box::new(|_| {}));

    let mut panic_group = c.benchmark_group("panic");
    panic_group.bench_function("empty hook (baseline)", |b| {
        b.iter(|| std::panic::catch_unwind(fail).is_err())
    });
    panic_group.bench_function("Backtrace::new_unresolved (baseline)", |b| {
        b.iter(|| black_box(backtrace::Backtrace::new_unresolved()))
    });

    let guard = stacktrace::install_with(
        stacktrace::Config::default()
            .db_path(dir.path().join("bench.db"))
            .queue_capacity(1 << 20)
            .capture_env(false),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    panic_group.bench_function("stored and made durable, back to back", |b| {
        b.iter(|| std::panic::catch_unwind(fail).is_err())
    });
    // Panics one at a time, as they come in a program: the database's background writes of
    // the previous panic finish in an untimed pause before the next.
    panic_group.bench_function("stored and made durable, one at a time", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_millis(2));
                let start = Instant::now();
                black_box(std::panic::catch_unwind(fail).is_err());
                total += start.elapsed();
            }
            total
        })
    });
    panic_group.finish();

    let error = BenchError("x".parse::<u32>().unwrap_err());
    let mut error_group = c.benchmark_group("capture_error");
    error_group.bench_function("Backtrace::new_unresolved (baseline)", |b| {
        b.iter(|| black_box(backtrace::Backtrace::new_unresolved()))
    });
    // The writer's work is left out of the timing: each batch is flushed untimed, so the
    // queue never fills and every capture is a real enqueue.
    error_group.bench_function("calling thread", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(2_000);
                let start = Instant::now();
                for _ in 0..batch {
                    black_box(stacktrace::capture_error(&error));
                }
                total += start.elapsed();
                guard.flush();
                left -= batch;
            }
            total
        })
    });
    error_group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = capture
}
criterion_main!(benches);

//! The cost of keeping breadcrumbs: a `tracing::info!` event through a subscriber with the
//! stacktrace layer against the same subscriber without it, and a `log::info!` record
//! through the wrapping logger against the wrapped logger alone, in one run.

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tracing_subscriber::layer::SubscriberExt;

/// A logger that formats each record, as a real one does, into nowhere.
struct FormattingLogger;

impl log::Log for FormattingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let mut line = Vec::with_capacity(64);
        let _ = writeln!(
            line,
            "{} {} {}",
            record.level(),
            record.target(),
            record.args()
        );
        black_box(line);
    }
    fn flush(&self) {}
}

fn breadcrumbs(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let _guard = stacktrace::install_with(
        stacktrace::Config::default()
            .db_path(dir.path().join("bench.db"))
            .capture_env(false),
    );

    let mut g = c.benchmark_group("tracing::info!");
    let fmt = || tracing_subscriber::fmt::layer().with_writer(std::io::sink);
    let without = tracing_subscriber::registry().with(fmt());
    tracing::subscriber::with_default(without, || {
        g.bench_function("fmt subscriber (baseline)", |b| {
            b.iter(|| tracing::info!(step = black_box(1), "charging order"))
        });
    });
    let with = tracing_subscriber::registry()
        .with(fmt())
        .with(stacktrace::tracing::layer());
    tracing::subscriber::with_default(with, || {
        g.bench_function("fmt subscriber + stacktrace layer", |b| {
            b.iter(|| tracing::info!(step = black_box(1), "charging order"))
        });
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        g.bench_function("bare registry (baseline)", |b| {
            b.iter(|| tracing::info!(step = black_box(1), "charging order"))
        });
    });
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(stacktrace::tracing::layer()),
        || {
            g.bench_function("bare registry + stacktrace layer", |b| {
                b.iter(|| tracing::info!(step = black_box(1), "charging order"))
            });
        },
    );
    g.finish();

    let mut g = c.benchmark_group("log::info!");
    let plain = FormattingLogger;
    let wrapped = stacktrace::log::Logger::new(FormattingLogger);
    let args = format_args!("charging order {}", 7);
    let record = log::Record::builder()
        .level(log::Level::Info)
        .target("shop")
        .args(args)
        .module_path_static(Some("shop"))
        .build();
    g.bench_function("formatting logger (baseline)", |b| {
        b.iter(|| log::Log::log(&plain, black_box(&record)))
    });
    g.bench_function("wrapped by stacktrace::log::Logger", |b| {
        b.iter(|| log::Log::log(&wrapped, black_box(&record)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = breadcrumbs
}
criterion_main!(benches);

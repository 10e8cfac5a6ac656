//! Sustained storage through the background writer against raw sled inserts of the same
//! bytes, in one run; and bytes on disk per event against the event's JSON size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const BATCH: u64 = 1_000;
/// Rounds of the alternating measurement.
const ROUNDS: u64 = 200;

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                stack.push(e.path());
            }
        } else if let Ok(m) = std::fs::metadata(&p) {
            total += m.len();
        }
    }
    total
}

fn storage(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = stacktrace::install_with(
        stacktrace::Config::default()
            .db_path(dir.path().join("bench.db"))
            .queue_capacity(1 << 20)
            .capture_env(false)
            // As `install!()` sets one: each batch is counted in its release too.
            .release("bench@1.0.0"),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    let store = stacktrace::store().expect("store");

    // One representative event, to give raw sled the same bytes.
    let report = || {
        stacktrace::Report::message(
            "order 1042 could not be charged: card declined",
            stacktrace::Level::Error,
        )
        .tag("provider", "acme-pay")
        .extra("order", 1042)
        .user("ann")
        .request_path("/checkout")
        .capture()
    };
    report();
    guard.flush();
    let sample = store.query().limit(1).run().unwrap().events.remove(0);
    let json = serde_json::to_vec(&sample).unwrap();

    let raw = sled::open(dir.path().join("raw.db")).unwrap();
    let mut group = c.benchmark_group("sustained writes");
    group.throughput(Throughput::Elements(BATCH));
    let mut key: u128 = 0;
    group.bench_function("raw sled insert, same bytes (baseline)", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..BATCH {
                    key += 1;
                    raw.insert(key.to_be_bytes(), json.as_slice()).unwrap();
                }
                raw.flush().unwrap();
            }
            start.elapsed()
        })
    });
    group.bench_function("through the writer", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..BATCH {
                    black_box(report());
                }
                assert!(guard.flush());
            }
            start.elapsed()
        })
    });
    group.finish();

    // The same two, alternating in rounds: the disk's speed drifts over seconds (a flush
    // can take twice as long a minute later), and alternating exposes both to the same
    // drift, so their ratio is steadier than that of the two runs above.
    let mut raw_time = Duration::ZERO;
    let mut writer_time = Duration::ZERO;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..BATCH {
            key += 1;
            raw.insert(key.to_be_bytes(), json.as_slice()).unwrap();
        }
        raw.flush().unwrap();
        raw_time += start.elapsed();
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(report());
        }
        assert!(guard.flush());
        writer_time += start.elapsed();
    }
    let per_s = |t: Duration| (ROUNDS * BATCH) as f64 / t.as_secs_f64();
    eprintln!(
        "\nalternating, {ROUNDS} rounds of {BATCH} events: raw sled {:.0}/s, writer {:.0}/s, \
         writer at {:.1}% of raw sled",
        per_s(raw_time),
        per_s(writer_time),
        100.0 * per_s(writer_time) / per_s(raw_time),
    );

    let stats = store.stats().unwrap();
    let dropped: u64 = stats.dropped.values().sum();
    raw.flush().unwrap();
    let raw_events = raw.len() as u64;
    eprintln!(
        "\nevent JSON: {} bytes; stored {} events, {} dropped\n\
         stacktrace on disk: {:.0} bytes/event ({:.2}x JSON)\n\
         raw sled on disk:   {:.0} bytes/event ({:.2}x JSON)",
        json.len(),
        stats.events,
        dropped,
        dir_size(store.path()) as f64 / stats.events as f64,
        dir_size(store.path()) as f64 / stats.events as f64 / json.len() as f64,
        dir_size(&dir.path().join("raw.db")) as f64 / raw_events as f64,
        dir_size(&dir.path().join("raw.db")) as f64 / raw_events as f64 / json.len() as f64,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = storage
}
criterion_main!(benches);

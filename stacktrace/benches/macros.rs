//! The cost of `#[capture]` on the calling thread, against baselines in the same run: the
//! same function (same body, same `black_box`ed inputs, never inlined) without
//! instrumentation, with `#[capture(uncounted)]` (the attribute without its call and
//! failure counters), under `#[tracing::instrument]` with a subscriber that records the
//! fields, and formatting the arguments eagerly by hand; and the cost of a panic in a
//! captured call whose argument is held by reference, against one whose arguments are
//! copied.
//!
//! ```text
//! cargo bench -p stacktrace --bench macros -- --warm-up-time 1 --measurement-time 2
//! ```

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug)]
struct Small {
    id: u32,
    tag: &'static str,
}

fn work(n: u64, s: &str, small: &Small) -> u64 {
    n.wrapping_mul(31) ^ s.len() as u64 ^ u64::from(small.id)
}

#[inline(never)]
fn plain(n: u64, s: &str, small: &Small) -> Result<u64, String> {
    Ok(work(n, s, small))
}

#[inline(never)]
#[stacktrace::capture]
fn captured(n: u64, s: &str, small: &Small) -> Result<u64, String> {
    Ok(work(n, s, small))
}

#[inline(never)]
#[stacktrace::capture(uncounted)]
fn captured_uncounted(n: u64, s: &str, small: &Small) -> Result<u64, String> {
    Ok(work(n, s, small))
}

#[inline(never)]
fn plain_copy(n: u64, id: u32) -> Result<u64, String> {
    Ok(n.wrapping_mul(31) ^ u64::from(id))
}

#[inline(never)]
#[stacktrace::capture(uncounted)]
fn captured_copy_uncounted(n: u64, id: u32) -> Result<u64, String> {
    Ok(n.wrapping_mul(31) ^ u64::from(id))
}

#[inline(never)]
#[stacktrace::capture]
fn captured_copy(n: u64, id: u32) -> Result<u64, String> {
    Ok(n.wrapping_mul(31) ^ u64::from(id))
}

#[inline(never)]
#[tracing::instrument]
fn instrumented(n: u64, s: &str, small: &Small) -> Result<u64, String> {
    Ok(work(n, s, small))
}

#[inline(never)]
fn plain_owned(n: u64, s: String, small: &Small) -> Result<u64, String> {
    Ok(work(n, &s, small))
}

#[inline(never)]
#[stacktrace::capture]
fn captured_owned(n: u64, s: String, small: &Small) -> Result<u64, String> {
    Ok(work(n, &s, small))
}

#[inline(never)]
#[tracing::instrument]
fn instrumented_owned(n: u64, s: String, small: &Small) -> Result<u64, String> {
    Ok(work(n, &s, small))
}

/// Panics inside a captured call holding `small` by reference: the panic hook formats it on
/// a thread of its own.
#[inline(never)]
#[stacktrace::capture]
fn captured_panicking_borrowed(n: u64, small: &Small) -> u64 {
    panic!("failed {}", n ^ u64::from(small.id))
}

/// The same panic with no argument held by reference (baseline).
#[inline(never)]
#[stacktrace::capture]
fn captured_panicking_copied(n: u64, id: u32) -> u64 {
    panic!("failed {}", n ^ u64::from(id))
}

#[inline(never)]
#[stacktrace::capture]
fn captured_failing(n: u64, s: &str, small: &Small) -> Result<u64, String> {
    Err(format!("failed {}", work(n, s, small)))
}

/// Formats every field of every new span into a string kept with the span, as a subscriber
/// that stores or prints fields does.
struct RecordFields;

struct Recorded(String);

impl tracing::field::Visit for Recorded {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl<S> Layer<S> for RecordFields
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Recorded(String::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
}

fn macros(c: &mut Criterion) {
    let subscriber = tracing_subscriber::registry().with(RecordFields);
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    let small = Small { id: 7, tag: "gold" };
    let text = "customer-42";

    let mut g = c.benchmark_group("success path, borrowed args (u64, &str, &Small)");
    g.bench_function("plain call (baseline)", |b| {
        b.iter(|| plain(black_box(5), black_box(text), black_box(&small)))
    });
    g.bench_function("#[capture(uncounted)] (without counting)", |b| {
        b.iter(|| captured_uncounted(black_box(5), black_box(text), black_box(&small)))
    });
    g.bench_function("#[capture]", |b| {
        b.iter(|| captured(black_box(5), black_box(text), black_box(&small)))
    });
    g.bench_function("#[tracing::instrument], recording subscriber", |b| {
        b.iter(|| instrumented(black_box(5), black_box(text), black_box(&small)))
    });
    g.bench_function("eager Debug formatting of the 3 args (baseline)", |b| {
        b.iter(|| {
            let n = black_box(5u64);
            let s = black_box(text);
            let sm = black_box(&small);
            black_box([format!("{n:?}"), format!("{s:?}"), format!("{sm:?}")])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("success path, Copy args (u64, u32)");
    g.bench_function("plain call (baseline)", |b| {
        b.iter(|| plain_copy(black_box(5), black_box(7)))
    });
    g.bench_function("#[capture(uncounted)] (without counting)", |b| {
        b.iter(|| captured_copy_uncounted(black_box(5), black_box(7)))
    });
    g.bench_function("#[capture]", |b| {
        b.iter(|| captured_copy(black_box(5), black_box(7)))
    });
    g.finish();

    let mut g = c.benchmark_group("success path, owned String arg");
    g.bench_function("plain call (baseline)", |b| {
        b.iter_batched(
            || text.to_owned(),
            |s| plain_owned(black_box(5), s, black_box(&small)),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("#[capture]", |b| {
        b.iter_batched(
            || text.to_owned(),
            |s| captured_owned(black_box(5), s, black_box(&small)),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("#[tracing::instrument], recording subscriber", |b| {
        b.iter_batched(
            || text.to_owned(),
            |s| instrumented_owned(black_box(5), s, black_box(&small)),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();

    // The error path on the calling thread: describe the call and the error, take the
    // unresolved backtrace, queue the event (storage happens on the writer thread).
    let dir = tempfile::tempdir().expect("temp dir");
    // The panics below print nothing: the tracker's hook chains to this one.
    std::panic::set_hook(Box::new(|_| {}));
    let guard = stacktrace::install_with(
        stacktrace::Config::default()
            .db_path(dir.path().join("bench.db"))
            .queue_capacity(1 << 20)
            .capture_env(false),
    );
    let mut g = c.benchmark_group("error path");
    g.bench_function("#[capture] returning Err, event queued", |b| {
        b.iter(|| captured_failing(black_box(5), black_box(text), black_box(&small)))
    });
    g.bench_function("Backtrace::new_unresolved (baseline)", |b| {
        b.iter(|| black_box(backtrace::Backtrace::new_unresolved()))
    });
    g.finish();

    // A panic in a captured call: made durable by the hook. An argument held by reference
    // is formatted on a thread the hook starts, where its `Debug` may panic safely.
    let mut g = c.benchmark_group("panic path");
    g.bench_function("#[capture] with u64 arguments (baseline)", |b| {
        b.iter(|| {
            std::panic::catch_unwind(|| captured_panicking_copied(black_box(5), black_box(7)))
        })
    });
    g.bench_function("#[capture] with a &Small argument", |b| {
        b.iter(|| std::panic::catch_unwind(|| captured_panicking_borrowed(black_box(5), &small)))
    });
    g.finish();
    let _ = small.tag;
    guard.flush();
}

criterion_group!(benches, macros);
criterion_main!(benches);

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
//!
//! A sustained burst is measured in fresh processes too (`-- sustained`): 50 warm-up panics,
//! then 2,000 back to back with nothing flushed, timed in wall time and in the panicking
//! thread's CPU time, through an empty hook (the baseline), the tracker, and `sentry`'s panic
//! path (what its panic integration does: a resolved backtrace and `capture_event` through a
//! bound client, whose transport discards the envelope). The first burst of a process pays
//! whatever the tracker loads on first use, and a burst beyond the writer's pace shows
//! whether the panicking thread waits on it.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;

#[path = "support/burst.rs"]
mod burst;
#[path = "support/clocks.rs"]
mod clocks;

use clocks::{batched, thread_cpu_now, Clock, ThreadCpu};

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

/// Set in a child run of this program: which hook a sustained burst goes through.
const SUSTAINED_CHILD: &str = "STACKTRACE_BENCH_SUSTAINED";
/// Fresh processes per hook for the sustained burst (default 7).
const SUSTAINED_RUNS: &str = "STACKTRACE_BENCH_SUSTAINED_RUNS";
const SUSTAINED_WARM_UP: usize = 50;
const SUSTAINED_PANICS: usize = 2_000;

/// Discards what `sentry` would send: the baseline measures its panic path, not a network.
struct Discard;

impl sentry_core::Transport for Discard {
    fn send_envelope(&self, _: sentry_core::Envelope) {}
}

/// What `sentry`'s panic integration does in the hook: the message and a resolved
/// backtrace as an event, captured through the bound client.
fn sentry_hook(info: &std::panic::PanicHookInfo<'_>) {
    use sentry::protocol::{Event, Exception, Frame, Level, Stacktrace};
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .unwrap_or_default();
    let mut frames = Vec::new();
    for frame in backtrace::Backtrace::new().frames() {
        for symbol in frame.symbols() {
            frames.push(Frame {
                function: symbol.name().map(|n| n.to_string()),
                filename: symbol.filename().map(|f| f.display().to_string()),
                lineno: symbol.lineno().map(u64::from),
                instruction_addr: Some(sentry::protocol::Addr(frame.ip() as u64)),
                ..Default::default()
            });
        }
    }
    frames.reverse();
    let event = Event {
        level: Level::Fatal,
        exception: vec![Exception {
            ty: "panic".into(),
            value: Some(message),
            stacktrace: Some(Stacktrace {
                frames,
                ..Default::default()
            }),
            ..Default::default()
        }]
        .into(),
        ..Default::default()
    };
    sentry_core::capture_event(event);
}

/// In a child: sets up `kind`'s hook, panics `SUSTAINED_WARM_UP` times, then times
/// `SUSTAINED_PANICS` back to back; prints the first panic's wall time, then the burst's
/// wall and thread CPU time per panic, in nanoseconds.
fn sustained_child(kind: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::panic::set_hook(Box::new(|_| {}));
    let _guard = match kind {
        "tracker" => Some(stacktrace::install_with(
            stacktrace::Config::default()
                .db_path(dir.path().join("sustained.db"))
                .capture_env(false),
        )),
        "sentry" => {
            let client = sentry_core::Client::from(sentry_core::ClientOptions {
                dsn: Some("https://key@127.0.0.1/1".parse().expect("dsn")),
                transport: Some(std::sync::Arc::new(std::sync::Arc::new(Discard))),
                ..Default::default()
            });
            sentry_core::Hub::main().bind_client(Some(std::sync::Arc::new(client)));
            std::panic::set_hook(Box::new(sentry_hook));
            None
        }
        _ => None,
    };
    let start = std::time::Instant::now();
    black_box(std::panic::catch_unwind(fail).is_err());
    let first = start.elapsed();
    for _ in 1..SUSTAINED_WARM_UP {
        black_box(std::panic::catch_unwind(fail).is_err());
    }
    let (wall, cpu) = (std::time::Instant::now(), thread_cpu_now());
    for _ in 0..SUSTAINED_PANICS {
        black_box(std::panic::catch_unwind(fail).is_err());
    }
    let (wall, cpu) = (wall.elapsed(), thread_cpu_now() - cpu);
    let n = SUSTAINED_PANICS as u128;
    println!(
        "{} {} {}",
        first.as_nanos(),
        wall.as_nanos() / n,
        cpu.as_nanos() / n
    );
}

/// Runs a sustained burst in fresh processes of each hook; prints each hook's median and
/// slowest round, and their ratios to the empty hook's median.
fn sustained_in_fresh_processes() {
    let runs: usize = std::env::var(SUSTAINED_RUNS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let exe = std::env::current_exe().expect("the bench's own path");
    println!(
        "sustained burst, {SUSTAINED_PANICS} panics after {SUSTAINED_WARM_UP} in a fresh \
         process, {runs} processes each; per panic:"
    );
    let mut base: Option<(f64, f64, f64)> = None;
    for kind in ["baseline", "tracker", "sentry"] {
        let mut rounds: Vec<[u128; 3]> = (0..runs)
            .map(
                |_| match burst::numbers_of_child(&exe, SUSTAINED_CHILD, kind)[..] {
                    [first, wall, cpu] => [first, wall, cpu],
                    ref n => panic!("child said {n:?}"),
                },
            )
            .collect();
        let us = |ns: u128| ns as f64 / 1e3;
        let median = |i: usize, rounds: &mut Vec<[u128; 3]>| {
            rounds.sort_by_key(|r| r[i]);
            us(rounds[rounds.len() / 2][i])
        };
        let (first, wall, cpu) = (
            median(0, &mut rounds),
            median(1, &mut rounds),
            median(2, &mut rounds),
        );
        let slowest = us(rounds.iter().map(|r| r[1]).max().unwrap_or(0));
        let name = match kind {
            "baseline" => "empty hook (baseline)",
            "tracker" => "tracker",
            _ => "sentry panic path",
        };
        let (b_first, b_wall, b_cpu) = *base.get_or_insert((first, wall, cpu));
        println!(
            "  {name:<22} wall {wall:>8.2} µs ({:>5.1}x)  slowest round {slowest:>8.2} µs \
             ({:>5.1}x)  thread CPU {cpu:>8.2} µs ({:>5.1}x)  first panic {first:>9.1} µs \
             ({:>5.1}x the empty hook's, {:>5.1}x a warm one)",
            wall / b_wall,
            slowest / b_wall,
            cpu / b_cpu,
            first / b_first,
            first / wall,
        );
    }
}

fn main() {
    if let Ok(kind) = std::env::var(FIRST_PANIC_CHILD) {
        first_panic_child(&kind);
        return;
    }
    if let Ok(kind) = std::env::var(SUSTAINED_CHILD) {
        sustained_child(&kind);
        return;
    }
    if let Ok(kind) = std::env::var(burst::CHILD) {
        burst::child(&kind);
        return;
    }
    // `-- first` (or a filter naming it) runs the fresh-process case; no filter runs all.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref().is_none_or(|f| "first panic".contains(f)) {
        first_panic_in_fresh_processes();
    }
    if filter
        .as_deref()
        .is_none_or(|f| "sustained burst".contains(f))
    {
        sustained_in_fresh_processes();
    }
    // A burst of errors past the writer's pace: see `support/burst.rs`.
    if filter.as_deref().is_none_or(|f| "errors burst".contains(f)) {
        burst::in_fresh_processes();
    }
    if matches!(filter.as_deref(), Some("first" | "sustained" | "errors")) {
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

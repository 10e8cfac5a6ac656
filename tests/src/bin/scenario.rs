//! A program that installs the tracker and fails in a chosen way, for the integration tests
//! (the panic hook is process-wide and a panic may end the process, so each scenario runs in
//! a process of its own).
//!
//! Usage: `scenario <name> <db-path> [arg]`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use stacktrace::{Config, Level, Report};

#[derive(Debug)]
struct ConfigFileError {
    path: String,
    source: std::io::Error,
}

impl std::fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot load config {}", self.path)
    }
}

impl std::error::Error for ConfigFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[inline(never)]
fn site_a() {
    panic!("failure at site a");
}

#[inline(never)]
fn site_b() {
    panic!("failure at site b");
}

/// A lookup that indexes past the end of its slice.
mod ledger {
    #[inline(never)]
    pub fn rate_at(rates: Vec<u32>, i: usize) -> u32 {
        rates[i]
    }
}

/// A logger that fails on every record, called by the `log` crate's own code.
/// One of ten distinct failures: its own error type, captured at its own site.
#[derive(Debug)]
struct BurstFailure<const N: usize>;

impl<const N: usize> std::fmt::Display for BurstFailure<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failure {N} of the burst")
    }
}

impl<const N: usize> std::error::Error for BurstFailure<N> {}

#[inline(never)]
fn capture_burst_failure<const N: usize>() -> Option<stacktrace::EventId> {
    stacktrace::capture_error(&BurstFailure::<N>)
}

fn burst_failure(which: usize) -> Option<stacktrace::EventId> {
    match which {
        0 => capture_burst_failure::<0>(),
        1 => capture_burst_failure::<1>(),
        2 => capture_burst_failure::<2>(),
        3 => capture_burst_failure::<3>(),
        4 => capture_burst_failure::<4>(),
        5 => capture_burst_failure::<5>(),
        6 => capture_burst_failure::<6>(),
        7 => capture_burst_failure::<7>(),
        8 => capture_burst_failure::<8>(),
        _ => capture_burst_failure::<9>(),
    }
}

struct FailingLogger;

impl log::Log for FailingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        panic!("cannot log {}", record.args());
    }
    fn flush(&self) {}
}

#[inline(never)]
fn load_config() -> Result<String, ConfigFileError> {
    let path = "/nonexistent/app.toml".to_owned();
    std::fs::read_to_string(&path).map_err(|source| ConfigFileError { path, source })
}

/// Child processes that ended, as `SIGCHLD` told (see [`count_children_ended`]).
static CHILDREN_ENDED: AtomicUsize = AtomicUsize::new(0);

#[cfg(unix)]
extern "C" fn on_child_ended(_: libc::c_int) {
    CHILDREN_ENDED.fetch_add(1, Ordering::SeqCst);
}

/// Counts the child processes that end from now on, in [`CHILDREN_ENDED`]; the waits of
/// whoever started them still reap them.
fn count_children_ended() {
    #[cfg(unix)]
    // SAFETY: the handler only adds to an atomic, which is async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(
            libc::SIGCHLD,
            on_child_ended as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let arg = args.next().unwrap_or_default();
    let base = Config::default().db_path(&db);

    match name.as_str() {
        // A process of release `RELEASE` that ends as `HOW`, for the release tests:
        // `arg` is `RELEASE/HOW`, HOW one of clean, error, panic (in main), abort, hang.
        "release" => {
            let (release, how) = arg.rsplit_once('/').unwrap_or((arg.as_str(), "clean"));
            let guard = stacktrace::install_with(base.release(release));
            for e in guard.errors() {
                println!("install error: {e}");
            }
            match how {
                "error" => {
                    if let Err(e) = load_config() {
                        stacktrace::capture_error(&e);
                    }
                    guard.flush();
                }
                "panic" => site_a(),
                "abort" => std::process::abort(),
                // Waits to be killed: an end without a clean shutdown.
                "hang" => {
                    println!("ready");
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                }
                _ => {}
            }
        }
        // Installed by the macro form, with the configuration of the environment, and one
        // error: the release is the crate's unless STACKTRACE_RELEASE sets one.
        "release-app" => {
            let guard = stacktrace::install!();
            for e in guard.errors() {
                println!("install error: {e}");
            }
            if let Err(e) = load_config() {
                stacktrace::capture_error(&e);
            }
            stacktrace::capture_message("a message", Level::Info);
            let _ = std::thread::spawn(site_b).join();
            guard.flush();
        }
        // Configuration from the environment (STACKTRACE_DB and friends).
        "env" => {
            let guard = stacktrace::install();
            for e in guard.errors() {
                println!("install error: {e}");
            }
            for i in 0..10 {
                stacktrace::capture_message(&format!("message {i}"), Level::Info);
            }
            guard.flush();
        }
        "panic-main" => {
            let _guard = stacktrace::install_with(base);
            site_a();
        }
        "panic-thread" => {
            let _guard = stacktrace::install_with(base);
            let h = std::thread::Builder::new()
                .name("worker-1".into())
                .spawn(site_b)
                .unwrap();
            assert!(h.join().is_err());
            println!("main goes on");
        }
        "panic-then-hang" => {
            let _guard = stacktrace::install_with(base);
            let _ = std::thread::spawn(site_b).join();
            println!("ready");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        // An index out of bounds in the program's own function.
        "index" => {
            let _guard = stacktrace::install_with(base);
            let rates: Vec<u32> = std::hint::black_box(Vec::new());
            let _ = std::thread::spawn(move || ledger::rate_at(rates, 3)).join();
        }
        // The same, installed by the macro form, with the configuration of the environment.
        "index-app" => {
            let _guard = stacktrace::install!();
            let rates: Vec<u32> = std::hint::black_box(Vec::new());
            let _ = std::thread::spawn(move || ledger::rate_at(rates, 3)).join();
        }
        // The same, then the process aborts at once: the next open resolves the panic.
        "index-app-then-abort" => {
            let _guard = stacktrace::install!();
            let rates: Vec<u32> = std::hint::black_box(Vec::new());
            let _ = std::thread::spawn(move || ledger::rate_at(rates, 3)).join();
            std::process::abort();
        }
        // A panic in the program's logger, called by the `log` crate: `arg` is `app` for the
        // macro form, anything else for `install_with`.
        "logger" => {
            let _guard = if arg == "app" {
                stacktrace::install_with!(base)
            } else {
                stacktrace::install_with(base)
            };
            log::set_logger(&FailingLogger).expect("no logger yet");
            log::set_max_level(log::LevelFilter::Info);
            let _ = std::thread::spawn(|| log::info!("order {}", 1042)).join();
        }
        "site" => {
            let _guard = stacktrace::install_with(base);
            let site = if arg == "b" { site_b } else { site_a };
            let _ = std::thread::spawn(site).join();
        }
        "storm" => {
            let _guard = stacktrace::install_with(base);
            let n: usize = arg.parse().unwrap_or(16);
            let barrier = Arc::new(Barrier::new(n));
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let b = barrier.clone();
                    std::thread::spawn(move || {
                        b.wait();
                        panic!("storm {i}");
                    })
                })
                .collect();
            let failed = handles
                .into_iter()
                .map(|h| h.join())
                .filter(Result::is_err)
                .count();
            println!("{failed} threads panicked");
        }
        "stress" => {
            // `arg` is "THREADS:ROUNDS": every thread panics ROUNDS times and captures as
            // many errors, all at once.
            let (threads, rounds) = arg
                .split_once(':')
                .and_then(|(t, r)| Some((t.parse().ok()?, r.parse().ok()?)))
                .unwrap_or((64usize, 50usize));
            let guard = stacktrace::install_with(base.queue_capacity(1 << 20));
            let barrier = Arc::new(Barrier::new(threads));
            let start = std::time::Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let b = barrier.clone();
                    std::thread::spawn(move || {
                        b.wait();
                        let mut panicked = 0;
                        for r in 0..rounds {
                            if std::panic::catch_unwind(|| panic!("stress {t}/{r}")).is_err() {
                                panicked += 1;
                            }
                            let e = load_config().unwrap_err();
                            stacktrace::capture_error(&e);
                        }
                        panicked
                    })
                })
                .collect();
            let panicked: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
            let captured = start.elapsed();
            guard.flush();
            println!("panicked {panicked}");
            println!("capture {:?}; stored after {:?}", captured, start.elapsed());
        }
        "storm-memory" => {
            // `arg` is "THREADS:ROUNDS:IDLE_MS": two storms of THREADS threads panicking
            // ROUNDS times each, with the tracker's `symbols_idle` set to IDLE_MS and an idle
            // pause of a little more after each; prints the resident bytes before, after each
            // storm and after each pause: `resident <before> <burst> <idle> <burst> <idle>`.
            let mut parts = arg.split(':').map(|n| n.parse::<u64>().ok());
            let mut next = |default| parts.next().flatten().unwrap_or(default);
            let (threads, rounds, idle_ms) = (next(64), next(50), next(2_000));
            let idle = std::time::Duration::from_millis(idle_ms);
            // The default hook would print each panic and, with `RUST_BACKTRACE`, load the
            // standard library's own copy of the debug info, which is not the tracker's.
            std::panic::set_hook(Box::new(|_| {}));
            let guard = stacktrace::install_with(base.queue_capacity(1 << 20).symbols_idle(idle));
            let storm = || {
                let barrier = Arc::new(Barrier::new(threads as usize));
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let b = barrier.clone();
                        std::thread::spawn(move || {
                            b.wait();
                            for r in 0..rounds {
                                let _ = std::panic::catch_unwind(|| panic!("storm {t}/{r}"));
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    let _ = h.join();
                }
                guard.flush();
            };
            let pause = || std::thread::sleep(idle + std::time::Duration::from_millis(1_500));
            let mut figures = vec![resident_bytes()];
            for _ in 0..2 {
                storm();
                figures.push(resident_bytes());
                pause();
                figures.push(resident_bytes());
            }
            let figures: Vec<String> = figures.iter().map(u64::to_string).collect();
            println!("resident {}", figures.join(" "));
        }
        "error" => {
            let guard = stacktrace::install_with(base);
            let e = load_config().unwrap_err();
            let id = stacktrace::capture_error(&e).expect("kept");
            guard.flush();
            println!("{id}");
        }
        "rate" => {
            let guard = stacktrace::install_with(base.rate_limit(arg.parse().unwrap_or(5)));
            let kept = (0..20)
                .filter(|i| {
                    stacktrace::capture_message(&format!("rate {i}"), Level::Error).is_some()
                })
                .count();
            guard.flush();
            println!("kept {kept}");
        }
        "sample-zero" => {
            let guard = stacktrace::install_with(base.sample_rate(0.0));
            let kept = (0..20)
                .filter(|_| stacktrace::capture_message("sampled", Level::Error).is_some())
                .count();
            let _ = std::thread::spawn(site_a).join();
            guard.flush();
            println!("kept {kept}");
        }
        "disabled" => {
            let guard = stacktrace::install_with(base.enabled(false));
            let kept = (0..20)
                .filter(|_| stacktrace::capture_message("off", Level::Error).is_some())
                .count();
            let _ = std::thread::spawn(site_a).join();
            guard.flush();
            println!("kept {kept}");
        }
        // A burst of errors (with stacks) from ten distinct failures, in a tight loop.
        "burst" => {
            let guard = stacktrace::install_with(base);
            // `N` captures, or `N/T`: N on each of T threads.
            let (n, threads) = arg.split_once('/').unwrap_or((arg.as_str(), "0"));
            let n: usize = n.parse().unwrap_or(10_000);
            let burst = move || (0..n).filter(|i| burst_failure(i % 10).is_some()).count();
            let kept: usize = match threads.parse::<usize>().unwrap_or(0) {
                0 => burst(),
                t => std::thread::scope(|s| {
                    let all: Vec<_> = (0..t).map(|_| s.spawn(burst)).collect();
                    all.into_iter().map(|h| h.join().unwrap()).sum()
                }),
            };
            guard.flush();
            println!("kept {kept}");
        }
        "queue" => {
            let guard = stacktrace::install_with(base.queue_capacity(2));
            let kept = (0..500)
                .filter(|i| stacktrace::capture_message(&format!("q{i}"), Level::Info).is_some())
                .count();
            guard.flush();
            println!("kept {kept}");
        }
        // The writer held inside a `before_store` hook, to look at a panic it cannot store:
        // "full": the queue is full, so the hook stores the panic itself;
        // "journal": the panic waits in the queue, the database is flushed, and the program
        // ends before the writer stores it.
        "writer-held" => {
            let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            let entered = std::sync::Mutex::new(entered_tx);
            let release = std::sync::Mutex::new(release_rx);
            let capacity = if arg == "full" { 1 } else { 1_000 };
            let guard =
                stacktrace::install_with(base.queue_capacity(capacity).before_store(move |e| {
                    if e.message == "hold the writer" {
                        let _ = entered.lock().unwrap().send(());
                        let _ = release.lock().unwrap().recv();
                    }
                    true
                }));
            stacktrace::capture_message("hold the writer", Level::Info).expect("queued");
            entered_rx.recv().unwrap();
            if arg == "full" {
                stacktrace::capture_message("fills the queue", Level::Info).expect("queued");
            }
            let _ = std::thread::spawn(site_b).join();
            let store = stacktrace::store().expect("the database is open");
            let panics = store.query().error_type("panic").count().unwrap();
            println!("panics stored while the writer is held: {panics}");
            if arg == "full" {
                release_tx.send(()).unwrap();
                assert!(guard.flush());
                println!("flushed");
            } else {
                store.flush().unwrap();
                println!("ending before the writer stored the panic");
                std::process::exit(0);
            }
        }
        "secrets" => {
            let guard = stacktrace::install_with(base);
            // `arg` is the canary; `MY_API_KEY` in the environment holds another.
            Report::message("checkout failed", Level::Error)
                .extra("password", &arg)
                .extra(
                    "form",
                    serde_json::json!({"card": {"Token": arg.clone()}, "note": "visible-marker"}),
                )
                .tag("access_token", &arg)
                .capture()
                .expect("kept");
            guard.flush();
        }
        "twice" => {
            let first = stacktrace::install_with(base.clone());
            let second = stacktrace::install_with(base);
            println!("first errors: {}", first.errors().len());
            for e in second.errors() {
                println!("second: {e}");
            }
        }
        "keep-running" => {
            let guard = stacktrace::install_with(base);
            for e in guard.errors() {
                println!("install error: {e}");
            }
            println!("storing: {}", guard.is_storing());
            stacktrace::capture_message("while locked", Level::Error);
            let _ = std::thread::spawn(site_b).join();
            guard.flush();
            println!("still running");
        }
        // Installs, stores one event, and says how many child processes ended meanwhile: a
        // build where a panic aborts tries the database's open in a child first.
        "trial-opens" => {
            count_children_ended();
            let guard = stacktrace::install_with(base);
            for e in guard.errors() {
                println!("install error: {e}");
            }
            println!("storing: {}", guard.is_storing());
            stacktrace::capture_message("stored after the start", Level::Error);
            guard.flush();
            println!("children: {}", CHILDREN_ENDED.load(Ordering::SeqCst));
            println!("still running");
        }
        "fill" => {
            let guard = stacktrace::install_with(base);
            let n: usize = arg.parse().unwrap_or(100);
            for i in 0..n {
                let (level, user, path) = match i % 4 {
                    0 => (Level::Error, "ann", "/checkout"),
                    1 => (Level::Warning, "bob", "/cart"),
                    2 => (Level::Info, "ann", "/cart"),
                    _ => (Level::Fatal, "cy", "/pay"),
                };
                let kept = Report::message(format!("event {i} of fill"), level)
                    .user(user)
                    .request_path(path)
                    .capture();
                if kept.is_none() {
                    // The queue was full: wait for the writer and retry once.
                    guard.flush();
                    Report::message(format!("event {i} of fill"), level)
                        .user(user)
                        .request_path(path)
                        .capture()
                        .expect("kept after flush");
                }
            }
            guard.flush();
        }
        // Holds the database open until standard input closes (a running program).
        "hold" => {
            let guard = stacktrace::install_with(base);
            stacktrace::capture_message("held", Level::Info);
            guard.flush();
            println!("holding");
            let mut sink = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
        }
        // A few groups with everything the viewers show: an error with its source chain and
        // frames, panics in two places, tagged messages with a user and a path, and a
        // message holding markup that must show as text.
        "showcase" => {
            let guard = stacktrace::install_with(base.capture_env(false));
            let e = load_config().unwrap_err();
            for _ in 0..3 {
                stacktrace::capture_error(&e).expect("kept");
            }
            let _ = std::thread::Builder::new()
                .name("worker-1".into())
                .spawn(site_a)
                .unwrap()
                .join();
            let _ = std::thread::spawn(site_b).join();
            let _ = std::thread::spawn(site_b).join();
            Report::message(
                "<script>document.title='pwned';window.__pwned=1</script><b>bold?</b>",
                Level::Error,
            )
            .user("mallory")
            .request_path("/comments")
            .tag("source", "form")
            .capture()
            .expect("kept");
            for i in 0..5 {
                Report::message("checkout declined by the provider", Level::Warning)
                    .user(if i % 2 == 0 { "ann" } else { "bob" })
                    .request_path("/checkout")
                    .tag("provider", "acme-pay")
                    .extra("attempt", i)
                    .capture()
                    .expect("kept");
            }
            guard.flush();
        }
        // One event whose message is a single line of `arg` `é` characters (25,000, 50 KB, unless
        // given), not ASCII, so that a cut off its character boundaries would show.
        "long-message" => {
            let guard = stacktrace::install_with(base.capture_env(false));
            let n: usize = arg.parse().unwrap_or(25_000);
            let message = format!("huge-title-start {} huge-title-end", "é".repeat(n));
            stacktrace::capture_message(&message, Level::Error).expect("kept");
            guard.flush();
        }
        // A panic in a thread, then the process aborts at once: the writer, which resolves
        // the first panic's frames in a fraction of a second at best, has not stored it.
        "panic-then-abort" => {
            let _guard = stacktrace::install_with(base);
            let _ = std::thread::spawn(site_b).join();
            std::process::abort();
        }
        // An error captured right before `process::exit`, which runs no destructor: the
        // guard never flushes.
        "error-then-exit" => {
            let _guard = stacktrace::install_with(base);
            let e = load_config().unwrap_err();
            stacktrace::capture_error(&e).expect("kept");
            std::process::exit(3);
        }
        // A hook set after install: "replaced" drops ours, "chained" calls it.
        "hook-after-install" => {
            let guard = stacktrace::install_with(base);
            if arg == "chained" {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    eprintln!("own hook ran");
                    previous(info);
                }));
            } else {
                std::panic::set_hook(Box::new(|_| eprintln!("own hook ran")));
            }
            let _ = std::thread::spawn(site_b).join();
            println!("capturing panics: {}", guard.is_capturing_panics());
            guard.flush();
            println!("errors: {}", guard.errors().len());
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}

/// Resident memory of this process in bytes, from `/proc/self/statm`; 0 where unreadable.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

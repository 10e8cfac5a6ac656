//! The HTTP layer's cost on a hello-world axum app over loopback, five ways in one run: no
//! layer (the baseline), the capture layer, capture with request tracking, Sentry's tower
//! layers (`sentry-tower`, with a client bound whose transport drops what it is given), and
//! a log line per request ([`LogLine`]), the price a request log is measured against.
//!
//! Criterion measures one request at a time over a kept-alive connection, and one request
//! through the layer called in this process with no network (`http_layer_call`, against
//! the plain call of the same handler, with the caches warm and emptied); then a load phase
//! drives the apps in alternating rounds on a runtime of two workers, with 16 kept-alive
//! connections (see [`load_phase`] for the settings), and prints for each app the medians over
//! the rounds of requests per second, p50, p99 and p99.9, each as a ratio to the bare app's
//! round of the same cycle with the lowest and highest ratio of the rounds, and the CPU time
//! per request of the process and of stacktrace's background thread. The load generator runs
//! in this process, on the same workers as the servers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use criterion::{criterion_group, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use stacktrace::http::{StacktraceLayer, Tracking};

// Only its CPU clock is used here; its criterion measurements serve the capture benches.
#[allow(dead_code)]
#[path = "support/clocks.rs"]
mod clocks;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A Sentry transport that drops what it is given.
struct Discard;

impl sentry_core::Transport for Discard {
    fn send_envelope(&self, _: sentry_core::Envelope) {}
}

struct Apps {
    /// The temporary folder of the database and the log line's file.
    dir: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
    variants: Vec<(&'static str, SocketAddr)>,
    client: HttpClient,
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "Hello, World!" }))
}

/// What a log line per request costs: a tower layer that writes one `tracing` event per
/// response (method, path, status, microseconds taken), formatted by `tracing-subscriber`'s
/// `fmt` (its default format) into a buffered file: a usual request line, written to disk
/// without a write call per line.
#[derive(Clone, Copy)]
struct LogLine;

impl<S> tower::Layer<S> for LogLine {
    type Service = LogLineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LogLineService(inner)
    }
}

#[derive(Clone)]
struct LogLineService<S>(S);

impl<S, B, R> tower::Service<http::Request<B>> for LogLineService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = LogLineFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        LogLineFuture {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            start: Instant::now(),
            inner: self.0.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    struct LogLineFuture<F> {
        method: http::Method,
        path: String,
        start: Instant,
        #[pin]
        inner: F,
    }
}

impl<F, R, E> std::future::Future for LogLineFuture<F>
where
    F: std::future::Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Ok(res) = &out {
            tracing::info!(
                method = %this.method,
                path = %this.path,
                status = res.status().as_u16(),
                micros = this.start.elapsed().as_micros() as u64,
                "request"
            );
        }
        std::task::Poll::Ready(out)
    }
}

/// Sends the `info` events of this process to a buffered file in `dir`, as a server's log.
fn log_to_file(dir: &std::path::Path) {
    let file = std::fs::File::create(dir.join("requests.log")).expect("log file");
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(std::io::BufWriter::new(file)))
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
}

static APPS: once_cell::sync::OnceCell<Apps> = once_cell::sync::OnceCell::new();

fn apps() -> &'static Apps {
    APPS.get_or_init(|| {
        // Kept to the end of `main`, which removes it: statics are never dropped.
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let db = dir.join("bench.db");
        log_to_file(&dir);
        let guard =
            stacktrace::install_with(stacktrace::Config::default().db_path(db).capture_env(false));
        std::mem::forget(guard);
        // Sentry's layers do their work only with a client bound; this one's transport drops
        // every envelope, so that nothing leaves the machine.
        let client = sentry_core::Client::from(sentry_core::ClientOptions {
            dsn: Some("https://key@127.0.0.1/1".parse().expect("dsn")),
            transport: Some(std::sync::Arc::new(std::sync::Arc::new(Discard))),
            ..Default::default()
        });
        sentry_core::Hub::main().bind_client(Some(std::sync::Arc::new(client)));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let variants = rt.block_on(async {
            let mut out = Vec::new();
            for (name, app) in [
                ("bare", hello()),
                (
                    "sentry-tower",
                    hello()
                        .layer(sentry_tower::SentryHttpLayer::new())
                        .layer(sentry_tower::NewSentryLayer::new_from_top()),
                ),
                ("log line", hello().layer(LogLine)),
                ("capture", hello().layer(StacktraceLayer::new())),
                (
                    "capture+tracking",
                    hello().layer(StacktraceLayer::new().tracking(Tracking::new())),
                ),
            ] {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                out.push((name, listener.local_addr().expect("addr")));
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
            }
            out
        });
        let client = {
            let _enter = rt.enter();
            Client::builder(TokioExecutor::new()).build_http()
        };
        Apps {
            dir,
            rt,
            variants,
            client,
        }
    })
}

async fn one(client: &HttpClient, uri: &hyper::Uri) -> Duration {
    let start = Instant::now();
    let res = client.get(uri.clone()).await.expect("response");
    let body = res.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"Hello, World!");
    start.elapsed()
}

fn sequential(c: &mut Criterion) {
    let apps = apps();
    let mut group = c.benchmark_group("http_hello_request");
    for (name, addr) in &apps.variants {
        let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                apps.rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        one(&apps.client, &uri).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

/// The handler of [`in_process`]: what axum's hello world answers, without axum.
async fn hello_service<B>(
    _req: http::Request<B>,
) -> Result<http::Response<http_body_util::Full<Bytes>>, std::convert::Infallible> {
    Ok(http::Response::new(http_body_util::Full::new(
        Bytes::from_static(b"Hello, World!"),
    )))
}

/// Calls `service` (a clone of it, as axum's router does) with a GET of `/` as the
/// benches' client sends it, polls the response and its body to their end, on this thread.
fn call_once<S, B>(service: &S, cx: &mut std::task::Context<'_>)
where
    S: tower::Service<http::Request<Empty<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
{
    use std::future::Future;
    use std::task::Poll;
    let req = http::Request::get("/")
        .header(http::header::HOST, "127.0.0.1:3000")
        .body(Empty::new())
        .expect("request");
    let mut service = service.clone();
    let mut future = std::pin::pin!(service.call(req));
    let Poll::Ready(Ok(res)) = future.as_mut().poll(cx) else {
        panic!("the hello service answers at once");
    };
    let mut body = std::pin::pin!(res.into_body());
    while let Poll::Ready(Some(frame)) = body.as_mut().poll_frame(cx) {
        criterion::black_box(frame.is_ok());
    }
}

/// One request through the layer with no network and no scheduler, against the plain call
/// of the same handler: what the layer costs the thread that serves a request. The tracking
/// worker stores these requests on the other core meanwhile; its own cost per request is
/// in the load phase's figures.
fn in_process(c: &mut Criterion) {
    let _ = apps();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let plain = tower::service_fn(hello_service::<Empty<Bytes>>);
    let capture = tower::Layer::layer(
        &StacktraceLayer::new(),
        tower::service_fn(hello_service::<stacktrace::http::RequestBody<Empty<Bytes>>>),
    );
    let tracked = tower::Layer::layer(
        &StacktraceLayer::new().tracking(Tracking::new()),
        tower::service_fn(hello_service::<stacktrace::http::RequestBody<Empty<Bytes>>>),
    );
    let mut group = c.benchmark_group("http_layer_call");
    group.bench_function("plain", |b| b.iter(|| call_once(&plain, &mut cx)));
    group.bench_function("capture", |b| b.iter(|| call_once(&capture, &mut cx)));
    group.bench_function("capture+tracking", |b| {
        b.iter(|| call_once(&tracked, &mut cx))
    });
    // The same with the caches emptied before each call: a busy server's cores run much
    // else between two requests, so what a request touches is rarely still there.
    let other = vec![1u64; COLD_BYTES / 8];
    let evict = || {
        let mut sum = 0u64;
        for line in other.chunks(8) {
            sum = sum.wrapping_add(line[0]);
        }
        criterion::black_box(sum);
    };
    for (name, service) in [
        ("plain", None),
        ("capture", Some(&capture)),
        ("capture+tracking", Some(&tracked)),
    ] {
        group.bench_function(format!("cold/{name}"), |b| {
            b.iter_batched(
                evict,
                |()| match service {
                    None => call_once(&plain, &mut cx),
                    Some(s) => call_once(s, &mut cx),
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    stacktrace::http::flush_tracking(Duration::from_secs(30));
}

/// Bytes read between two calls of the cold runs: twice a core's second-level cache.
const COLD_BYTES: usize = 4 << 20;

criterion_group!(benches, sequential, in_process);

/// Connections kept busy at once in the load phase.
const CONNECTIONS: usize = 16;
/// How long each app is driven in each round, unless `STACKTRACE_BENCH_ROUND_MS` says.
const ROUND: Duration = Duration::from_millis(500);
/// Rounds per app unless `STACKTRACE_BENCH_ROUNDS` says: rounds of the same app spread
/// about ±20 % on a machine of two cores, however long, so many short ones give a steadier
/// median than a few long ones.
const ROUNDS: usize = 20;

/// When each request of a round ended (since the round's start) and how long it took.
type Timeline = Vec<(Duration, Duration)>;

/// Drives one app for `round`.
fn load(apps: &Apps, addr: SocketAddr, round: Duration) -> Timeline {
    let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
    apps.rt.block_on(async {
        let start = Instant::now();
        let deadline = start + round;
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let client = apps.client.clone();
            let uri = uri.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(50_000);
                while Instant::now() < deadline {
                    let took = one(&client, &uri).await;
                    lat.push((start.elapsed(), took));
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("load task"));
        }
        all
    })
}

/// The CPU time the whole process (server, client and background threads) has used so far.
fn process_cpu_now() -> Duration {
    clocks::cpu_now(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The CPU time used so far by the threads stacktrace started (named `stacktrace-...`), and
/// by those of its database (sled's `sled-io-...` and `log flusher`), read from the
/// scheduler's own count of each thread's time on a core.
fn background_cpu_now() -> (Duration, Duration) {
    let (mut ours, mut database) = (Duration::ZERO, Duration::ZERO);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (ours, database);
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let total = if comm.starts_with("stacktrace") {
            &mut ours
        } else if comm.starts_with("sled") || comm.starts_with("log flusher") {
            &mut database
        } else {
            continue;
        };
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        if let Some(ns) = stat.split(' ').next().and_then(|n| n.parse().ok()) {
            *total += Duration::from_nanos(ns);
        }
    }
    (ours, database)
}

/// The machine's CPU time so far in clock ticks, all of it and the part the hypervisor gave
/// to other machines (steal), from `/proc/stat`; `None` where it cannot be read.
fn steal_now() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    Some((ticks.iter().sum(), *ticks.get(7)?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// What one round of one app measured.
#[derive(Clone, Copy, Default)]
struct Round {
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    requests: u64,
    process_cpu: Duration,
    background_cpu: Duration,
    database_cpu: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `STACKTRACE_BENCH_ROUNDS` rounds (20 unless set) of `STACKTRACE_BENCH_ROUND_MS` (500)
/// per app; `STACKTRACE_BENCH_APPS=bare,capture+tracking` drives only the apps named, to
/// profile one of them (a name that is no app's ends the run); `STACKTRACE_BENCH_TIMELINE=FILE` writes every request as `app round
/// end_us latency_us`, for a latency histogram over time; `STACKTRACE_BENCH_ROUNDS_FILE=FILE`
/// writes each round as `app start_ns end_ns requests` on the monotonic clock, which
/// `scripts/profile-http.sh` matches with `perf`'s samples.
fn load_phase() {
    let apps = apps();
    let rounds = env_or("STACKTRACE_BENCH_ROUNDS", ROUNDS);
    let round = Duration::from_millis(env_or(
        "STACKTRACE_BENCH_ROUND_MS",
        ROUND.as_millis() as u64,
    ));
    let only = std::env::var("STACKTRACE_BENCH_APPS").ok();
    // A name that is no app's would drive nothing for it, and say nothing.
    for name in only.iter().flat_map(|o| o.split(',')) {
        if !apps.variants.iter().any(|(n, _)| *n == name) {
            let known: Vec<&str> = apps.variants.iter().map(|(n, _)| *n).collect();
            eprintln!(
                "STACKTRACE_BENCH_APPS: no app {name:?}; the apps are {}",
                known.join(",")
            );
            std::process::exit(2);
        }
    }
    let chosen: Vec<bool> = apps
        .variants
        .iter()
        .map(|(name, _)| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == *name))
        })
        .collect();
    let mut timeline = std::env::var_os("STACKTRACE_BENCH_TIMELINE")
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("timeline file")));
    let mut rounds_file = std::env::var_os("STACKTRACE_BENCH_ROUNDS_FILE")
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("rounds file")));
    let mut results: Vec<Vec<Round>> = vec![Vec::new(); apps.variants.len()];
    // Rounds alternate between the apps, each cycle starting one app later than the last,
    // so that drift of the machine and the place in the cycle hit all of them alike. An
    // app's round includes storing what it queued for tracking, so that none of its work
    // spills into the next app's round.
    let n = apps.variants.len();
    let steal_before = steal_now();
    for r in 0..rounds {
        for k in 0..n {
            let i = (r + k) % n;
            if !chosen[i] {
                continue;
            }
            let (name, addr) = apps.variants[i];
            // The clock `perf record -k CLOCK_MONOTONIC` stamps its samples with.
            let mono_start = clocks::cpu_now(libc::CLOCK_MONOTONIC);
            let start = Instant::now();
            let (cpu, bg) = (process_cpu_now(), background_cpu_now());
            let timed = load(apps, addr, round);
            stacktrace::http::flush_tracking(Duration::from_secs(30));
            let elapsed = start.elapsed();
            if let Some(out) = &mut timeline {
                use std::io::Write;
                for (end, took) in &timed {
                    let _ = writeln!(out, "{name} {r} {} {}", end.as_micros(), took.as_micros());
                }
            }
            if let Some(out) = &mut rounds_file {
                use std::io::Write;
                let _ = writeln!(
                    out,
                    "{name}\t{}\t{}\t{}",
                    mono_start.as_nanos(),
                    (mono_start + elapsed).as_nanos(),
                    timed.len()
                );
            }
            let bg_after = background_cpu_now();
            let mut lat: Vec<Duration> = timed.into_iter().map(|(_, took)| took).collect();
            lat.sort_unstable();
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            results[i].push(Round {
                rps: lat.len() as f64 / elapsed.as_secs_f64(),
                p50: us(percentile(&lat, 0.50)),
                p99: us(percentile(&lat, 0.99)),
                p999: us(percentile(&lat, 0.999)),
                requests: lat.len() as u64,
                process_cpu: process_cpu_now() - cpu,
                background_cpu: bg_after.0 - bg.0,
                database_cpu: bg_after.1 - bg.1,
            });
        }
    }
    report(apps, &results, rounds, round);
    // A virtual machine whose host is busy loses time to it, unevenly: runs taken then
    // spread wider and favour the app that does least.
    if let (Some((all0, steal0)), Some((all1, steal1))) = (steal_before, steal_now()) {
        let share = (steal1 - steal0) as f64 / (all1 - all0).max(1) as f64;
        println!("host steal during the load phase: {:.1}%", share * 100.0);
    }
}

fn report(apps: &Apps, results: &[Vec<Round>], rounds: usize, round: Duration) {
    println!(
        "\nload: {CONNECTIONS} connections, 2 workers, {rounds} alternating rounds of {round:?} per app; \
         medians over the rounds, ratio to bare in the same cycle [lowest-highest]"
    );
    println!(
        "{:16} {:>22} {:>22} {:>22} {:>22} {:>31}",
        "app", "req/s", "p50 µs", "p99 µs", "p99.9 µs", "CPU/req µs: all, bg, db"
    );
    let bare = &results[0];
    for ((name, _), rs) in apps.variants.iter().zip(results) {
        if rs.is_empty() {
            continue;
        }
        let col = |f: fn(&Round) -> f64| -> String {
            let value = median(rs.iter().map(f).collect());
            if bare.len() != rs.len() || std::ptr::eq(rs, bare) {
                return format!("{value:>10.0}");
            }
            let ratios: Vec<f64> = rs.iter().zip(bare).map(|(r, b)| f(r) / f(b)).collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            format!("{value:>8.0} {:.2}x [{lo:.2}-{hi:.2}]", median(ratios))
        };
        let requests: u64 = rs.iter().map(|r| r.requests).sum::<u64>().max(1);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / requests as f64;
        let all: Duration = rs.iter().map(|r| r.process_cpu).sum();
        let bg: Duration = rs.iter().map(|r| r.background_cpu).sum();
        let db: Duration = rs.iter().map(|r| r.database_cpu).sum();
        println!(
            "{name:16} {:>22} {:>22} {:>22} {:>22} {:>14.2} {:>8.3} {:>6.3}",
            col(|r| r.rps),
            col(|r| r.p50),
            col(|r| r.p99),
            col(|r| r.p999),
            per(all),
            per(bg),
            per(db),
        );
    }
    let tracked = stacktrace::store()
        .and_then(|s| s.tracked().limit(usize::MAX).run().ok())
        .map_or(0, |r| r.len());
    println!(
        "tracking: {tracked} entries stored (capped), {} dropped",
        stacktrace::http::tracking_dropped()
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        load_phase();
    }
    if let Some(apps) = APPS.get() {
        let _ = std::fs::remove_dir_all(&apps.dir);
    }
}

//! The HTTP layer's cost on a hello-world axum app over loopback, three ways in one run: no
//! layer (the baseline), the capture layer, and capture with request tracking.
//!
//! Criterion measures one request at a time over a kept-alive connection; then a load phase
//! drives the apps in turn with concurrent connections, 30 rounds of one second each (set
//! `STACKTRACE_BENCH_ROUNDS` for more or fewer), and prints each app's requests per second,
//! the ratio to the bare app, latency at p50 and p99, and process CPU time per request. The
//! load generator runs in this process, on the same cores as the server.

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

struct Apps {
    rt: tokio::runtime::Runtime,
    variants: Vec<(&'static str, SocketAddr)>,
    client: HttpClient,
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "Hello, World!" }))
}

fn apps() -> &'static Apps {
    static APPS: once_cell::sync::OnceCell<Apps> = once_cell::sync::OnceCell::new();
    APPS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("bench.db");
        std::mem::forget(dir);
        let guard =
            stacktrace::install_with(stacktrace::Config::default().db_path(db).capture_env(false));
        std::mem::forget(guard);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let variants = rt.block_on(async {
            let mut out = Vec::new();
            for (name, app) in [
                ("bare", hello()),
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

criterion_group!(benches, sequential);

/// Connections kept busy at once in the load phase.
const CONNECTIONS: usize = 32;
/// How long each app is driven in each round.
const ROUND: Duration = Duration::from_secs(1);
/// Rounds per app unless `STACKTRACE_BENCH_ROUNDS` says: many short ones, so that the
/// machine's swings (a round of the same app can differ from the next by 10%) average out.
const ROUNDS: usize = 30;

/// Drives one app for `ROUND`; the latencies of every request.
fn load(apps: &Apps, addr: SocketAddr) -> Vec<Duration> {
    let uri: hyper::Uri = format!("http://{addr}/").parse().expect("uri");
    apps.rt.block_on(async {
        let deadline = Instant::now() + ROUND;
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let client = apps.client.clone();
            let uri = uri.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(50_000);
                while Instant::now() < deadline {
                    lat.push(one(&client, &uri).await);
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

/// The CPU time the whole process (server, client and tracker threads) has used so far.
fn process_cpu_now() -> Duration {
    clocks::cpu_now(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn load_phase() {
    let apps = apps();
    let mut results: Vec<(&str, Vec<Duration>, Duration, Duration)> = apps
        .variants
        .iter()
        .map(|(n, _)| (*n, Vec::new(), Duration::ZERO, Duration::ZERO))
        .collect();
    // Requests per second of each app in each round.
    let mut per_round: Vec<Vec<f64>> = vec![Vec::new(); apps.variants.len()];
    // Rounds alternate between the apps, so drift of the machine hits all three alike. An
    // app's time includes storing what it queued for tracking, so that none of its work
    // spills into the next app's round. The process's CPU time per request is counted too:
    // on a shared machine it swings less than requests per second.
    // `STACKTRACE_BENCH_APPS=capture+tracking` drives only the apps named (comma-separated),
    // to profile one of them.
    let only = std::env::var("STACKTRACE_BENCH_APPS").ok();
    let chosen = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|n| n == name))
    };
    let rounds = std::env::var("STACKTRACE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for _ in 0..rounds {
        for (i, (name, addr)) in apps.variants.iter().enumerate() {
            if !chosen(name) {
                continue;
            }
            let start = Instant::now();
            let cpu = process_cpu_now();
            let lat = load(apps, *addr);
            stacktrace::http::flush_tracking(Duration::from_secs(30));
            per_round[i].push(lat.len() as f64 / start.elapsed().as_secs_f64());
            results[i].2 += start.elapsed();
            results[i].3 += process_cpu_now() - cpu;
            results[i].1.extend(lat);
        }
    }
    let tracking_dropped = stacktrace::http::tracking_dropped();
    let tracked = stacktrace::store()
        .and_then(|s| s.tracked().limit(usize::MAX).run().ok())
        .map_or(0, |r| r.len());
    println!(
        "\nload: {CONNECTIONS} connections, {rounds} rounds of {ROUND:?} per app, client in-process"
    );
    println!(
        "{:18} {:>10} {:>8} {:>10} {:>10} {:>14}",
        "app", "req/s", "ratio", "p50", "p99", "CPU/request"
    );
    let mut base: Option<(f64, Duration, Duration, f64)> = None;
    for (name, mut lat, elapsed, cpu) in results {
        if lat.is_empty() {
            continue;
        }
        lat.sort_unstable();
        let rps = lat.len() as f64 / elapsed.as_secs_f64();
        let cpu_us = cpu.as_secs_f64() * 1e6 / lat.len().max(1) as f64;
        let (p50, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.99));
        let (b_rps, b50, b99, b_cpu) = *base.get_or_insert((rps, p50, p99, cpu_us));
        println!(
            "{name:18} {rps:>10.0} {:>7.1}% {:>10.1?} {:>10.1?} {cpu_us:>8.2}µs {:>+5.1}%   \
             added p50 {:>+8.1}µs p99 {:>+8.1}µs",
            100.0 * rps / b_rps,
            p50,
            p99,
            100.0 * (cpu_us / b_cpu - 1.0),
            p50.as_secs_f64() * 1e6 - b50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6 - b99.as_secs_f64() * 1e6,
        );
    }
    // Each round's ratio to the bare app's round just before it.
    if let Some(bare) = per_round.first().filter(|b| !b.is_empty()) {
        for ((name, _), rounds) in apps.variants.iter().zip(&per_round).skip(1) {
            let mut ratios: Vec<f64> = rounds
                .iter()
                .zip(bare)
                .map(|(r, b)| 100.0 * r / b)
                .collect();
            if ratios.is_empty() {
                continue;
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "{name:18} round by round: median {:.1}%, lowest {:.1}%, highest {:.1}%",
                ratios[ratios.len() / 2],
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    }
    println!("tracking: {tracked} entries stored (capped), {tracking_dropped} turned away by the full buffer");
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        load_phase();
    }
}

//! Scenarios of the integrations and volume control, each run in a process of its own by
//! `tests/integrations.rs`: `integrations_scenario <name> <db-path>`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use stacktrace::{Breadcrumb, Config, Level, Report};

/// A logger that counts what it receives, standing in for the program's own logger.
struct Counting(Arc<AtomicUsize>);

impl log::Log for Counting {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        // Dependencies log too (the database engine); count this program's records.
        if record
            .module_path()
            .is_some_and(|m| m.starts_with("integrations_scenario"))
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn flush(&self) {}
}

#[stacktrace::capture]
fn handle_order(order: u32, runtime: &tokio::runtime::Handle) -> tokio::task::JoinHandle<()> {
    let _enter = runtime.enter();
    stacktrace::tokio::spawn(async move {
        stacktrace::add_breadcrumb(Breadcrumb::new(
            Level::Info,
            "task",
            format!("crumb of order {order}"),
        ));
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        if order == 1 {
            panic!("task of order {order} failed");
        }
    })
}

#[stacktrace::capture]
fn handle_plain(order: u32, runtime: &tokio::runtime::Handle) -> tokio::task::JoinHandle<()> {
    let _enter = runtime.enter();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        panic!("plain task of order {order} failed");
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let db = args.next().unwrap_or_else(|| "stacktrace.db".into());
    let base = Config::default().db_path(&db).capture_env(false);

    match name.as_str() {
        "log" => {
            let guard = stacktrace::install_with(base);
            let received = Arc::new(AtomicUsize::new(0));
            stacktrace::log::Logger::new(Counting(received.clone()))
                .install(log::LevelFilter::Trace)
                .unwrap();
            log::debug!(target: "shop", "looking up order 7");
            log::info!(target: "shop", "charging order 7");
            log::warn!("retrying the provider");
            let line = line!() + 1;
            log::error!(target: "billing", "card declined for order {}", 7);
            guard.flush();
            println!("line {line}");
            println!("received {}", received.load(Ordering::SeqCst));
        }
        "tracing" => {
            use tracing_subscriber::layer::SubscriberExt;
            let guard = stacktrace::install_with(base);
            let subscriber = tracing_subscriber::registry().with(stacktrace::tracing::layer());
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("checkout", order = 7, customer = "ann");
                let _entered = span.enter();
                let inner = tracing::info_span!("charge", attempt = 2);
                let _inner = inner.enter();
                tracing::info!(step = 1, "charging");
                let err = "12,50".parse::<u32>().unwrap_err();
                let line = line!() + 1;
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    amount = "12,50",
                    "card declined"
                );
                println!("line {line}");
                tracing::error!(code = 5, "plain failure");
            });
            guard.flush();
        }
        "breadcrumbs" => {
            let guard = stacktrace::install_with(base);
            for i in 0..1000 {
                stacktrace::add_breadcrumb(Breadcrumb::new(
                    Level::Info,
                    "loop",
                    format!("step {i}"),
                ));
            }
            stacktrace::capture_message("after the loop", Level::Error);
            stacktrace::capture_message("second event", Level::Error);
            guard.flush();
        }
        "tasks" => {
            let guard = stacktrace::install_with(base);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let handle = rt.handle().clone();
            let a = handle_order(1, &handle);
            let b = handle_order(2, &handle);
            let c = handle_plain(3, &handle);
            rt.block_on(async {
                println!("a failed: {}", a.await.is_err());
                println!("b failed: {}", b.await.is_err());
                println!("c failed: {}", c.await.is_err());
            });
            let blocking = {
                let _e = handle.enter();
                rt.block_on(async {
                    stacktrace::tokio::spawn_blocking(|| panic!("blocking work failed")).await
                })
            };
            println!("blocking failed: {}", blocking.is_err());
            guard.flush();
        }
        "filters" => {
            // Without source lines: they would quote this file, whose code holds the values
            // the test looks for as literals; what is checked here is what the filters and
            // before_store do to the event's own data.
            let guard = stacktrace::install_with(
                base.source_context(false)
                    .ignore_error_type("ParseIntError")
                    .ignore_message("^health check")
                    .ignore_path("^/internal/")
                    .before_store(|e| {
                        if let Some(v) = e.extra.get_mut("session") {
                            *v = serde_json::json!("[removed by before_store]");
                        }
                        e.tags.insert("seen_by".into(), "before_store".into());
                        !e.message.contains("drop me")
                    }),
            );
            let err = "x".parse::<u32>().unwrap_err();
            println!("type kept: {}", stacktrace::capture_error(&err).is_some());
            println!(
                "message kept: {}",
                stacktrace::capture_message("health check failed", Level::Error).is_some()
            );
            println!(
                "path kept: {}",
                Report::message("internal failure", Level::Error)
                    .request_path("/internal/jobs")
                    .capture()
                    .is_some()
            );
            Report::message("drop me please", Level::Error).capture();
            Report::message("keep me", Level::Error)
                .extra("session", "session-value-abc123")
                .request_path("/public/page")
                .capture();
            let _ = std::thread::spawn(|| panic!("a kept panic")).join();
            guard.flush();
        }
        "bad-filter" => {
            let guard = stacktrace::install_with(base.ignore_message("(unclosed"));
            for e in guard.errors() {
                println!("install error: {e}");
            }
            println!(
                "kept: {}",
                stacktrace::capture_message("still captured", Level::Error).is_some()
            );
            guard.flush();
        }
        "per-user" => {
            let guard = stacktrace::install_with(base.rate_limit_per_user(5).rate_limit(100));
            let noisy = (0..1000)
                .filter(|i| {
                    Report::message(format!("noisy {i}"), Level::Error)
                        .user("noisy")
                        .capture()
                        .is_some()
                })
                .count();
            let quiet = Report::message("quiet's first error", Level::Error)
                .user("quiet")
                .capture()
                .is_some();
            guard.flush();
            println!("noisy kept {noisy}");
            println!("quiet kept {quiet}");
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}

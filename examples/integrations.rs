//! log, tracing, tokio tasks, filters and per-user limits.
//!
//! ```text
//! cargo run --example integrations
//! ```
//!
//! Writes to `integrations.db` in the working directory (or `STACKTRACE_DB`) and prints
//! what was stored.

use stacktrace::{Config, Level, Report};
use tracing_subscriber::layer::SubscriberExt;

/// The program's own logger, here one that prints to stderr.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

#[stacktrace::capture]
fn start_import(batch: u32) -> tokio::task::JoinHandle<()> {
    // The task inherits this call (`start_import(batch)`) as its context.
    stacktrace::tokio::spawn(async move {
        log::info!(target: "import", "reading batch {batch}");
        tokio::task::yield_now().await;
        panic!("batch {batch} has a malformed row");
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let db = std::env::var("STACKTRACE_DB").unwrap_or_else(|_| "integrations.db".into());
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(&db)
            .capture_env(false)
            // Volume control: one user cannot use up the budget of the others.
            .rate_limit_per_user(3)
            .rate_limit(100)
            // Filters: ignored errors and a last look at every event.
            .ignore_error_type("ParseFloatError")
            .ignore_message("^health check")
            .before_store(|event| {
                event.extra.remove("internal_note");
                true
            }),
    );

    // log: error records become events; the others are breadcrumbs of the next event.
    stacktrace::log::Logger::new(Stderr)
        .install(log::LevelFilter::Debug)
        .expect("no other logger is set");
    log::debug!(target: "billing", "loading price list");
    log::error!(target: "billing", "price list is empty");

    // tracing: error events with their fields and span fields.
    let subscriber = tracing_subscriber::registry().with(stacktrace::tracing::layer());
    tracing::subscriber::with_default(subscriber, || {
        let _span = tracing::info_span!("checkout", order = 1042).entered();
        tracing::info!("charging");
        let err = "12,50".parse::<u32>().unwrap_err();
        tracing::error!(error = &err as &dyn std::error::Error, "card declined");
    });

    // tokio: a task's panic carries the captured call that spawned it.
    let _ = start_import(7).await;

    // Filters and limits.
    let _ = stacktrace::capture_error(&"x".parse::<f64>().unwrap_err()); // ignored type
    stacktrace::capture_message("health check failed", Level::Error); // ignored message
    for i in 0..10 {
        Report::message(format!("retry {i} failed"), Level::Error)
            .user("noisy-bot")
            .extra("internal_note", "removed by before_store")
            .capture();
    }
    Report::message("first error of ann", Level::Error)
        .user("ann")
        .capture();

    guard.flush();
    let store = stacktrace::store().expect("database open");
    for e in store
        .query()
        .limit(20)
        .run()
        .expect("query")
        .events
        .iter()
        .rev()
    {
        println!("{:<8} {:<22} {}", e.level, e.logger, e.title());
        for call in &e.calls {
            let args: Vec<_> = call
                .args
                .iter()
                .map(|a| format!("{}={}", a.name, a.value))
                .collect();
            println!("         in {}({})", call.function, args.join(", "));
        }
        for b in &e.breadcrumbs {
            println!("         after [{}] {}: {}", b.level, b.category, b.message);
        }
    }
    let dropped = store.dropped().expect("counters");
    println!("\ndropped: {dropped:?}");
}

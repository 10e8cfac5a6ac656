//! Hooks the program plugs in that panic, each scenario in a process of its own:
//!
//! - `hooks_scenario thread-panic <database path>`: a `before_store` that panics on the
//!   events whose message holds `boom`, after tagging them; a thread panics (`boom in a
//!   thread`) and the program joins it and goes on; then a message with `boom` goes
//!   through the writer;
//! - `hooks_scenario batch <database path> <n>`: the writer held while `n` messages
//!   queue into one batch; `before_store` panics on every tenth of them;
//! - `hooks_scenario reporter <smtp port> <database path>`: a mail `Reporter` that panics,
//!   and two errors to mail.

use std::sync::Mutex;
use std::time::Duration;

use stacktrace::mail::{MailConfig, Notice, Reporter};
use stacktrace::{Config, CrashEvent, Level};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(1).as_str() {
        "thread-panic" => thread_panic(&arg(2)),
        "batch" => batch(&arg(2), arg(3).parse().expect("a count")),
        "reporter" => reporter(arg(2).parse().expect("a port"), &arg(3)),
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
}

/// Tags the event as seen; then panics when its message holds `boom`.
fn tag_then_panic_on_boom(e: &mut CrashEvent) -> bool {
    e.tags.insert("seen".into(), "yes".into());
    if e.message.contains("boom") {
        panic!("before_store broke on {}", e.id);
    }
    true
}

fn thread_panic(db: &str) {
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(db)
            .capture_env(false)
            .before_store(tag_then_panic_on_boom),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    stacktrace::capture_message("a message before", Level::Error);
    let joined = std::thread::spawn(|| panic!("boom in a thread")).join();
    assert!(joined.is_err());
    println!("the program goes on");
    stacktrace::capture_message("boom by message", Level::Error);
    assert!(guard.flush());
    println!("flushed");
}

fn batch(db: &str, n: usize) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let entered = Mutex::new(entered_tx);
    let release = Mutex::new(release_rx);
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(db)
            .capture_env(false)
            .before_store(move |e| {
                if e.message == "hold the writer" {
                    let _ = entered.lock().unwrap().send(());
                    let _ = release.lock().unwrap().recv();
                }
                tag_then_panic_on_boom(e)
            }),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    stacktrace::capture_message("hold the writer", Level::Info).expect("queued");
    entered_rx.recv().unwrap();
    // Queued behind the held writer: the next turn takes them all as one batch.
    for i in 0..n {
        let message = if i % 10 == 3 {
            format!("event {i} boom")
        } else {
            format!("event {i}")
        };
        stacktrace::capture_message(&message, Level::Info).expect("queued");
    }
    release_tx.send(()).unwrap();
    assert!(guard.flush());
    println!("flushed");
}

/// A reporter that panics on every report.
struct Broken;

impl Reporter for Broken {
    fn text(&self, notice: &Notice<'_>) -> String {
        panic!("the reporter broke on {}", notice.event.id)
    }
}

fn reporter(port: u16, db: &str) {
    let guard = stacktrace::install_with(
        Config::default().db_path(db).capture_env(false).mail(
            MailConfig::default()
                .admin("ops@example.com")
                .smtp_host("127.0.0.1")
                .smtp_port(port)
                .drain_timeout(Duration::from_secs(10))
                .reporter(Broken),
        ),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    first_failure();
    second_failure();
    drop(guard);
    println!("exited");
}

// Two functions, so that the two errors start two groups and both are mailed.
#[inline(never)]
fn first_failure() {
    stacktrace::capture_error(&std::io::Error::other("first failure to mail"));
}

#[inline(never)]
fn second_failure() {
    stacktrace::capture_error(&std::fmt::Error);
}

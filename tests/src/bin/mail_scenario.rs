//! A program that mails one report and exits, for the guard's drain tests:
//! `mail_scenario <smtp port> <drain timeout ms> <database path>`, or `mail_scenario env`
//! configured by `STACKTRACE_*` variables; or `mail_scenario panics <smtp port> <database
//! path>`: one panic stored by the hook (the writer's queue full) and one by the writer;
//! or `mail_scenario tls-panic <database path>`: one panic, mail settings from `STACKTRACE_*`
//! variables, and the sender's counts once it is done.

use std::time::Duration;

use stacktrace::mail::MailConfig;
use stacktrace::{Config, Level};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("env") {
        // Everything from `STACKTRACE_*` variables, as `install()` reads them.
        let guard = stacktrace::install();
        println!("errors: {}", guard.errors().len());
        stacktrace::capture_message("env-scenario: configured by variables", Level::Error);
        drop(guard);
        println!("exited");
        return;
    }
    if args.get(1).map(String::as_str) == Some("tls-panic") {
        let Some(db) = args.get(2) else {
            eprintln!("usage: mail_scenario tls-panic <database path>");
            std::process::exit(2);
        };
        tls_panic(db);
        return;
    }
    if args.get(1).map(String::as_str) == Some("panics") {
        let (Some(port), Some(db)) = (args.get(2), args.get(3)) else {
            eprintln!("usage: mail_scenario panics <smtp port> <database path>");
            std::process::exit(2);
        };
        panics(port.parse().expect("a port"), db);
        return;
    }
    let (Some(port), Some(drain), Some(db)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: mail_scenario <smtp port> <drain timeout ms> <database path>");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("a port");
    let drain: u64 = drain.parse().expect("milliseconds");
    let guard = stacktrace::install_with(
        Config::default().db_path(db).mail(
            MailConfig::default()
                .admin("ops@example.com")
                .smtp_host("127.0.0.1")
                .smtp_port(port)
                .drain_timeout(Duration::from_millis(drain))
                .retry_backoff(Duration::from_millis(20), Duration::from_millis(50)),
        ),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    stacktrace::capture_message("drain-scenario: shutting down with a report", Level::Error);
    drop(guard);
    println!("exited");
}

// Two functions, so that the two panics start two groups (closures of one function share
// its name, and groups do not look at line numbers).
#[inline(never)]
fn stored_by_the_hook() {
    panic!("mail-panics: stored by the hook");
}

#[inline(never)]
fn stored_by_the_writer() {
    panic!("mail-panics: stored by the writer");
}

/// Holds the writer inside a `before_store` hook with its queue full, so that the hook
/// stores a panic itself; then lets it go and panics again, for the writer to store.
fn panics(port: u16, db: &str) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let entered = std::sync::Mutex::new(entered_tx);
    let release = std::sync::Mutex::new(release_rx);
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(db)
            .queue_capacity(1)
            .before_store(move |e| {
                if e.message == "mail-panics: hold the writer" {
                    let _ = entered.lock().unwrap().send(());
                    let _ = release.lock().unwrap().recv();
                }
                true
            })
            .mail(
                MailConfig::default()
                    .admin("ops@example.com")
                    .smtp_host("127.0.0.1")
                    .smtp_port(port)
                    .drain_timeout(Duration::from_secs(10)),
            ),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    stacktrace::capture_message("mail-panics: hold the writer", Level::Info).expect("queued");
    entered_rx.recv().unwrap();
    stacktrace::capture_message("mail-panics: fills the queue", Level::Info).expect("queued");
    let _ = std::thread::spawn(stored_by_the_hook).join();
    release_tx.send(()).unwrap();
    assert!(guard.flush());
    let _ = std::thread::spawn(stored_by_the_writer).join();
    assert!(guard.flush());
    drop(guard);
    println!("exited");
}

#[inline(never)]
fn worker_over_tls() {
    panic!("mail-tls: worker died");
}

/// One panic mailed to the admins with the mail settings of the environment (SMTP URL, TLS
/// mode, root certificate); prints the install errors and the sender's counts once the
/// mail is sent or given up.
fn tls_panic(db: &str) {
    let mail = match MailConfig::from_env() {
        Ok(mail) => mail,
        Err(e) => {
            println!("bad variable: {e}");
            return;
        }
    };
    let guard = stacktrace::install_with(
        Config::default().db_path(db).mail(
            mail.smtp_timeout(Duration::from_secs(5))
                .max_attempts(2)
                .retry_backoff(Duration::from_millis(20), Duration::from_millis(50)),
        ),
    );
    for e in guard.errors() {
        println!("error: {e}");
    }
    let _ = std::thread::spawn(worker_over_tls).join();
    assert!(guard.flush());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let Some(stats) = stacktrace::mail::stats() else {
            println!("mail off");
            return;
        };
        if (stats.queued == 0 && stats.sent + stats.failed > 0)
            || std::time::Instant::now() >= deadline
        {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "sent {} failed {} queued {}",
        stats.sent, stats.failed, stats.queued
    );
    drop(guard);
}

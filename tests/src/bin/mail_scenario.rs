//! A program that mails one report and exits, for the guard's drain tests:
//! `mail_scenario <smtp port> <drain timeout ms> <database path>`, or `mail_scenario env`
//! configured by `STACKTRACE_*` variables.

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

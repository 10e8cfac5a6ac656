//! A program that forwards to the server of `STACKTRACE_DSN`, configured by `STACKTRACE_*`
//! variables: `forward_scenario all` captures an error with a source chain, a message and
//! a panic (with secret canaries and a control value); `forward_scenario many <n> <label>`
//! captures `n` messages; `forward_scenario hold <n>` captures `n` messages, prints
//! `stored` once they are stored, and waits to be killed; `forward_scenario none` only sends
//! what earlier runs left.

use std::fmt;

use stacktrace::{Level, Report};

#[derive(Debug)]
struct Inner;

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection refused by db.internal:5432")
    }
}

impl std::error::Error for Inner {}

#[derive(Debug)]
struct Outer(Inner);

impl fmt::Display for Outer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("checkout failed for order ControlValue-4455 via postgres://app:CanaryPw-7788@db.internal/shop")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let guard = stacktrace::install();
    for e in guard.errors() {
        println!("install error: {e}");
    }
    match args.get(1).map(String::as_str) {
        Some("all") => {
            Report::error(&Outer(Inner))
                .tag("shop", "eu-1")
                .user("user-42")
                .extra("password", "CanaryField-1234")
                .extra("order", "ControlValue-4455")
                .capture();
            stacktrace::capture_message("forward-scenario: a message", Level::Warning);
            assert!(guard.flush());
            let key = std::env::var("STACKTRACE_DSN").unwrap_or_default();
            let key = key
                .split("//")
                .nth(1)
                .and_then(|r| r.split('@').next())
                .unwrap_or("");
            panic!("forward-scenario panic with key {key} and ControlValue-4455");
        }
        Some("many") => {
            let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
            let label = args.get(3).cloned().unwrap_or_default();
            for i in 0..n {
                stacktrace::capture_message(&format!("forward-scenario {label} {i}"), Level::Error);
            }
        }
        Some("hold") => {
            // Captures, waits until they are stored, says so, and waits to be killed.
            let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
            for i in 0..n {
                stacktrace::capture_message(&format!("forward-scenario killed {i}"), Level::Error);
            }
            assert!(guard.flush());
            println!("stored");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        _ => {}
    }
    drop(guard);
    println!("exited");
}

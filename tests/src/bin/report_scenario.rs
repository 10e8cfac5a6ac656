//! A program that mails one report and exits, for the tests of a report's length:
//! `report_scenario panic <smtp url> <database path>`, a panic three of the program's own
//! functions deep, or `report_scenario long <smtp url> <database path>`, an error whose
//! message alone is longer than a mail's part. The environment is the caller's.

use stacktrace::mail::MailConfig;
use stacktrace::{Config, Level};

#[inline(never)]
fn checkout(total: u32) {
    charge(total + 1);
}

#[inline(never)]
fn charge(amount: u32) {
    if amount > 2 {
        panic!("report-scenario: card service gone for {amount}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(what), Some(url), Some(db)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: report_scenario <panic|long> <smtp url> <database path>");
        std::process::exit(2);
    };
    let guard = stacktrace::install_with(
        Config::default()
            .db_path(db)
            .mail(MailConfig::default().admin("ops@example.com").smtp_url(url)),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());
    match what.as_str() {
        "panic" => {
            let _ = std::thread::Builder::new()
                .name("checkout".into())
                .spawn(|| checkout(2))
                .expect("spawn")
                .join();
        }
        _ => {
            let mut message = String::from("report-scenario: a long error");
            for i in 0..400 {
                message.push_str(&format!("\n  step {i:03}: the order was checked again"));
            }
            stacktrace::capture_message(&message, Level::Error);
        }
    }
    drop(guard);
    println!("exited");
}

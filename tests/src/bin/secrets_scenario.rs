//! A program configured from `STACKTRACE_*` variables as the README shows (mail through an
//! SMTP URL with a password), which reports secrets in every kind of text an event holds:
//! `secrets_scenario <smtp password> <tag password> <query token> <bearer token>
//! <error password> <pair password> <breadcrumb password> <argument password>
//! <basic credentials>`. Each is reported in a form only its value gives away.

use std::io;

use stacktrace::{capture, Breadcrumb, Level, Report};

#[capture]
fn connect(dsn: &str, attempt: u32) -> Result<(), io::Error> {
    let _ = dsn;
    Err(io::Error::other(format!(
        "by-value-scenario: attempt {attempt} refused"
    )))
}

#[inline(never)]
fn panics_with(credentials: &str) {
    panic!("by-value-scenario: upstream said Authorization: Basic {credentials} was refused");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [smtp, tag, query, bearer, error, pair, crumb, arg, basic] = args.as_slice() else {
        eprintln!("usage: secrets_scenario <nine secrets>");
        std::process::exit(2);
    };
    let guard = stacktrace::install();
    println!("errors: {}", guard.errors().len());
    for e in guard.errors() {
        println!("error: {e}");
    }
    // The SMTP password as it is, in no form a pattern could catch.
    let _ = stacktrace::capture_message(
        &format!("by-value-scenario: the relay refused {smtp} as the login"),
        Level::Error,
    );
    let _ = Report::message("by-value-scenario: a report with tags", Level::Error)
        .tag(
            "upstream",
            format!("https://deploy:{tag}@git.example.com/app"),
        )
        .extra(
            "callback",
            format!("http://hooks.example.com/cb?token={query}&q=ctl-query-kept"),
        )
        .extra("upstream_auth", format!("Bearer {bearer}"))
        .capture();
    let _ = stacktrace::capture_error(&io::Error::other(format!(
        "by-value-scenario: amqp://guest:{error}@mq.internal:5672 is down; retried with password={pair}"
    )));
    stacktrace::add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "db",
        format!("connected to postgres://app:{crumb}@db.internal/app"),
    ));
    let _ = connect(&format!("mysql://root:{arg}@mysql.internal/shop"), 3);
    let basic = basic.clone();
    let _ = std::thread::spawn(move || panics_with(&basic)).join();
    if !guard.flush() {
        println!("not flushed");
    }
    drop(guard);
    println!("exited");
}

//! Secrets named like secrets in every place a name appears, and values hidden once that
//! later texts of the process quote: `names_scenario <mode> <db> <canary>`.
//!
//! - `names`: extra data, tags, a `#[capture]` argument, breadcrumb data and a `tracing`
//!   field, each named like a secret in a spelling other than `password`/`token`, and each
//!   holding `<canary>-<n>`; an ordinary field beside each holds `visible-<n>`.
//! - `remembered`: a literal passed to a `#[sensitive_variables]` argument, then a later
//!   event whose message and source lines quote it.
//! - `crash-crumb`: a breadcrumb quoting a sensitive argument and a breadcrumb quoting a
//!   value hidden by an earlier event, recorded inside the call, then `abort()`: the crash
//!   record keeps the breadcrumbs.

use std::io;

use stacktrace::{capture, sensitive_variables, Breadcrumb, Config, Level, Report};

#[capture]
fn charge(api_key: &str, note: &str) -> Result<(), io::Error> {
    let _ = (api_key, note);
    Err(io::Error::other("names-scenario: the card was declined"))
}

#[sensitive_variables(pin)]
#[capture]
fn unlock(pin: &str, door: u32) -> Result<(), io::Error> {
    let _ = (pin, door);
    Err(io::Error::other("names-scenario: wrong pin"))
}

#[sensitive_variables(token)]
#[capture]
fn sync_with(token: &str, remembered: &str) {
    stacktrace::add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "sync",
        format!("names-scenario: syncing with {token} then"),
    ));
    stacktrace::add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "sync",
        format!("names-scenario: an old key {remembered} seen"),
    ));
    stacktrace::add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "sync",
        "names-scenario: visible-crumb-marker",
    ));
    std::process::abort();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, db, canary] = args.as_slice() else {
        eprintln!("usage: names_scenario <mode> <db> <canary>");
        std::process::exit(2);
    };
    let guard = stacktrace::install_with!(Config::default().db_path(db));
    for e in guard.errors() {
        println!("error: {e}");
    }
    match mode.as_str() {
        "names" => {
            let _ = Report::message("names-scenario: report", Level::Error)
                .extra("apiKey", format!("{canary}-1"))
                .extra("note", "visible-1")
                .tag("client_secret", format!("{canary}-2"))
                .tag("plan", "visible-2")
                .capture();
            let _ = charge(&format!("{canary}-3"), "visible-3");
            let mut crumb = Breadcrumb::new(Level::Info, "auth", "names-scenario: crumb");
            crumb
                .data
                .insert("session_id".into(), format!("{canary}-4").into());
            crumb.data.insert("step".into(), "visible-4".into());
            stacktrace::add_breadcrumb(crumb);
            let _ = stacktrace::capture_message("names-scenario: with breadcrumb", Level::Error);
            {
                use tracing_subscriber::layer::SubscriberExt;
                let subscriber = tracing_subscriber::registry().with(stacktrace::tracing::layer());
                tracing::subscriber::with_default(subscriber, || {
                    let secret = format!("{canary}-5");
                    tracing::error!(client_secret = %secret, region = "visible-5", "names-scenario: tracing");
                });
            }
        }
        "remembered" => {
            // A word a pattern hides in its own event is not remembered as a secret.
            let _ =
                stacktrace::capture_message("names-scenario: auth: misconfigured", Level::Error);
            guard.flush();
            let _ = unlock("remembered-literal-9f1c", 3);
            // A later event quoting the literal, captured next to the call that passed it.
            let _ = stacktrace::capture_error(&io::Error::other(format!(
                "names-scenario: retried with {} and visible-r",
                "remembered-literal-9f1c"
            )));
            guard.flush();
            let _ = stacktrace::capture_message(
                "names-scenario: still misconfigured later",
                Level::Error,
            );
            let _ = canary;
        }
        "crash-crumb" => {
            // An earlier event hides a value by its name; the process remembers it.
            let _ = Report::message("names-scenario: first", Level::Error)
                .extra("api_key", format!("{canary}-old"))
                .capture();
            guard.flush();
            sync_with(&format!("{canary}-live"), &format!("{canary}-old"));
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
    guard.flush();
}

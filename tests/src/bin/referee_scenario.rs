//! A program that reports secrets in every common form and every place an event holds
//! (messages, errors, `#[capture]` arguments, a panic, tags, extra data, breadcrumbs, a
//! `tracing` event, the environment it was started with), beside control values that must
//! stay as they are: `ann-control` (the user) and texts starting `ctl-`. Configured by `STACKTRACE_*` variables: with `STACKTRACE_DSN`
//! set it forwards what it stores. `tests/relay_referee.rs` holds the result to Sentry's
//! own scrubber. Prints `stored <n>` once every event is stored.
//!
//! Each event's message ends `[referee <label>]`, so a finding names its cause; at the end,
//! so that no label reads as the name of the value after it (`ssn: applicant`).

use std::fmt;
use std::io;

use stacktrace::{capture, Breadcrumb, Level, Report};

/// A login form as a program derives its `Debug`.
#[derive(Debug)]
#[allow(dead_code)] // read only through `Debug`
struct LoginForm {
    user: &'static str,
    password: &'static str,
}

const FORM: LoginForm = LoginForm {
    user: "ann",
    password: "hunter2-secret",
};

/// The texts of messages, one event each: a secret in a form programs print them in.
const MESSAGES: &[(&str, &str)] = &[
    (
        "pair",
        "login retried with password=sec-pair-pass for ctl-pair-user",
    ),
    (
        "colon",
        "config line password: sec-colon-pass near ctl-colon-line",
    ),
    (
        "json-text",
        r#"body was {"user": "ctl-json-user", "password": "sec-json-text-pass"}"#,
    ),
    (
        "api-key-pair",
        "upstream call with api_key=sec-api-key-pair failed for ctl-api-user",
    ),
    (
        "url-credentials",
        "fetch https://deploy:sec-url-pass@git.example.com/ctl-repo failed",
    ),
    (
        "url-token-user",
        "clone https://ghp_sec0url0token0user0abcdefghijklmnop@github.com/ctl-org/app failed",
    ),
    (
        "bearer",
        "upstream refused Authorization: Bearer sec-bearer-token-0a1b2c for ctl-bearer-call",
    ),
    (
        "token-scheme",
        "upstream refused Authorization: Token sec-token-scheme-3d4e for ctl-token-call",
    ),
    (
        "card-spaced",
        "charge of card 4111 1111 1111 1111 declined for ctl-order-1",
    ),
    (
        "card-plain",
        "charge of card 4111111111111111 declined for ctl-order-2",
    ),
    (
        "iban",
        "transfer to DE89370400440532013000 refused for ctl-order-3",
    ),
    ("ssn", "applicant 078-05-1120 rejected by ctl-check"),
    (
        "pem",
        "key file ctl-key.pem holds -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDsecpemkey\n-----END PRIVATE KEY-----",
    ),
];

/// An error whose text is given.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

#[capture]
fn call_provider(api_key: &str, client_secret: &str, region: &str) -> Result<(), io::Error> {
    let _ = (api_key, client_secret);
    Err(io::Error::other(format!(
        "provider in {region} refused the call [referee capture-args]"
    )))
}

#[capture]
fn log_in(user: &str, password: &str) -> Result<(), io::Error> {
    let _ = password;
    Err(io::Error::other(format!(
        "{user} was refused [referee capture-password]"
    )))
}

#[capture]
fn submit(form: &LoginForm, attempt: u32) -> Result<(), io::Error> {
    let _ = form;
    Err(io::Error::other(format!(
        "attempt {attempt} for ctl-submit refused [referee capture-struct]"
    )))
}

#[inline(never)]
fn panics() {
    panic!(
        "token exchange failed with client_secret=sec-panic-secret for ctl-panic [referee panic]"
    );
}

fn main() {
    let guard = stacktrace::install();
    for e in guard.errors() {
        println!("install error: {e}");
    }

    for (label, text) in MESSAGES {
        Report::message(format!("{text} [referee {label}]"), Level::Error)
            .user("ann-control")
            .capture();
    }
    Report::message(
        format!("form {FORM:?} refused for ctl-form [referee debug-struct]"),
        Level::Error,
    )
    .capture();

    // The same forms as errors: Sentry keeps an error's text in `exception.values`.
    stacktrace::capture_error(&Failure(
        "password=sec-error-pair-pass refused for ctl-error [referee error-pair]".into(),
    ));
    stacktrace::capture_error(&Failure(format!(
        "postgres://app:sec-error-url-pass@db.internal/ctl-db down; form {FORM:?} [referee error-url]"
    )));
    stacktrace::capture_error(&Failure(
        "card 4111 1111 1111 1111 declined, api_key=sec-error-api-key [referee error-card]".into(),
    ));

    let _ = call_provider("sec-arg-api-key", "sec-arg-client-secret", "ctl-region");
    let _ = log_in("ann-control", "sec-arg-password");
    let _ = submit(&FORM, 2);

    let _ = std::thread::Builder::new()
        .name("referee-panic".into())
        .spawn(panics)
        .map(|h| h.join());

    Report::message("a report with secret keys [referee fields]", Level::Error)
        .user("ann-control")
        .tag("apiKey", "sec-tag-api-key")
        .tag("client_secret", "sec-tag-client-secret")
        .tag("access_token", "sec-tag-access-token")
        .tag("auth", "sec-tag-auth")
        .tag("session_id", "sec-tag-session-id")
        .tag("csrf_token", "sec-tag-csrf-token")
        .tag("shop", "ctl-tag-shop")
        .extra("apiKey", "sec-extra-api-key")
        .extra("client_secret", "sec-extra-client-secret")
        .extra("access_token", "sec-extra-access-token")
        .extra("auth", "sec-extra-auth")
        .extra("session_id", "sec-extra-session-id")
        .extra("csrf_token", "sec-extra-csrf-token")
        .extra(
            "upstream",
            serde_json::json!({ "url": "https://ctl-upstream.example.com", "credentials": { "user": "ctl-upstream-user", "pass": "sec-extra-nested-pass" } }),
        )
        .extra("order", "ctl-extra-order")
        .capture();

    stacktrace::add_breadcrumb(
        Breadcrumb::new(Level::Info, "http", "called the provider [referee crumb]")
            .with_data("apiKey", "sec-crumb-api-key")
            .with_data("client_secret", "sec-crumb-client-secret")
            .with_data("access_token", "sec-crumb-access-token")
            .with_data("auth", "sec-crumb-auth")
            .with_data("session_id", "sec-crumb-session-id")
            .with_data("csrf_token", "sec-crumb-csrf-token")
            .with_data("url", "https://ctl-crumb.example.com/orders"),
    );
    stacktrace::add_breadcrumb(Breadcrumb::new(
        Level::Info,
        "log",
        "retried with password=sec-crumb-pass [referee crumb]",
    ));
    Report::message("after the crumbs [referee breadcrumbs]", Level::Error)
        .user("ann-control")
        .capture();

    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(stacktrace::tracing::layer());
        tracing::subscriber::with_default(subscriber, || {
            let secret = "sec-tracing-client-secret";
            let span = tracing::info_span!("exchange", client = "ctl-tracing-client");
            let _entered = span.enter();
            tracing::error!(client_secret = %secret, access_token = "sec-tracing-access-token", "token exchange failed [referee tracing]");
        });
    }

    stacktrace::capture_message("the environment as started [referee env]", Level::Error);

    if !guard.flush() {
        println!("not flushed");
    }
    let stored = stacktrace::store()
        .and_then(|s| s.query().limit(10_000).all().ok())
        .map_or(0, |events| events.len());
    println!("stored {stored}");
    drop(guard);
    println!("exited");
}

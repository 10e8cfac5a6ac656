//! Mail reports against a real SMTP server on 127.0.0.1: a panic, a report in parts, the
//! throttle and regressions, broken links, header injection, and secrets.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use stacktrace::mail::{MailConfig, MailReason, Notice, Reporter, StandardReporter};
use stacktrace::{Config, Level};

use support::http::{client, empty, send, serve};
use support::mail::smtp::{Received, SmtpServer};

const ADMINS: [&str; 2] = ["ops@example.com", "dev@example.com"];
const MANAGER: &str = "web@example.com";
// Long enough for 50 requests on a loaded machine, short enough for a quick test.
const THROTTLE: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(20);

fn server() -> &'static SmtpServer {
    static SERVER: OnceLock<SmtpServer> = OnceLock::new();
    let server = SERVER.get_or_init(SmtpServer::start);
    let url = server.url();
    support::http::install(move || {
        Config::default()
            // Reports leave out the test runner's environment, whose size would decide
            // how many parts a report goes in (a part holds 5,000 characters).
            .capture_env(false)
            .max_payload_bytes(1 << 20)
            .capture_body(true)
            .mail(
                MailConfig::default()
                    .admins(ADMINS)
                    .manager(MANAGER)
                    .server_email("errors@example.com")
                    .smtp_url(url)
                    .mail_throttle(THROTTLE)
                    .retry_backoff(Duration::from_millis(20), Duration::from_millis(100)),
            )
    });
    server
}

fn about<'a>(mails: &'a [Received], marker: &str) -> Vec<&'a Received> {
    mails
        .iter()
        .filter(|m| m.subject().contains(marker))
        .collect()
}

/// The first mail of each report about `marker`: a report in parts is one report.
fn reports_about<'a>(mails: &'a [Received], marker: &str) -> Vec<&'a Received> {
    about(mails, marker)
        .into_iter()
        .filter(|m| {
            m.header("Message-ID")
                .is_some_and(|id| id.split('.').nth(1) == Some("1"))
        })
        .collect()
}

/// Waits for `n` reports about `marker`, then a little longer to see that no more come;
/// the first mail of each.
fn mails_about(marker: &str, n: usize) -> Vec<Received> {
    let s = server();
    support::http::flush();
    s.wait_for(WAIT, |m| reports_about(m, marker).len() >= n);
    std::thread::sleep(Duration::from_millis(300));
    reports_about(&s.mails(), marker)
        .into_iter()
        .cloned()
        .collect()
}

#[test]
fn a_panic_mails_the_admins_one_report() {
    server();
    let marker = "checkout-failed-5e1";
    let _ = std::thread::Builder::new()
        .name("checkout".into())
        .spawn(move || panic!("{marker}: card service gone"))
        .unwrap()
        .join();
    let mails = mails_about(marker, 1);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert!(!m.subject().contains("(part"), "one mail: {}", m.subject());
    assert_eq!(m.rcpt, ADMINS);
    assert_eq!(m.from, "errors@example.com");
    assert_eq!(
        m.subject(),
        format!("[stacktrace] New error: panic: {marker}: card service gone")
    );
    let text = m.text();
    for needle in [
        "panic: checkout-failed-5e1: card service gone\n",
        "New error.",
        "Error type: panic",
        "Location: tests/tests/mail_reports.rs:",
        "Level: fatal",
        "Frames (innermost first, * = application code):",
        "Occurrences: 1",
        "First seen: ",
        "Last seen: ",
        "Thread: checkout",
        "Environment:",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("  * ")),
        "in-app frames are marked:\n{text}"
    );
    let html = m.html().expect("an HTML part");
    assert!(html.contains("<h1>panic: checkout-failed-5e1: card service gone</h1>"));
}

// Regression: the parts of a long report, joined as a real server stores them, gained two
// line breaks each (one the mail writer adds after a body, one before the final dot), and
// a cut inside a line split a word with them.
#[test]
fn a_long_report_is_sent_in_ordered_parts_that_join_to_it() {
    server();
    let marker = "deep-recursion-77a";
    let mut message = format!("{marker}: stack exhausted");
    for i in 0..7000 {
        message.push_str(&format!(
            "\n  at app::walk::step_{i:04} (src/walk.rs:{})",
            i + 10
        ));
    }
    // Lines longer than a part (5,000 characters), with and without spaces: cut inside.
    message.push_str("\n  long-words:");
    for i in 0..1500 {
        message.push_str(&format!(" word{i:04}"));
    }
    message.push_str("\n  ");
    message.push_str(&"unbroken".repeat(1600));
    message.push_str("\n  at app::main (src/main.rs:3)");
    stacktrace::capture_message(&message, Level::Error).expect("kept");
    let s = server();
    let mails = s.wait_for(WAIT, |m| {
        about(m, marker)
            .first()
            .and_then(|first| {
                let subject = first.subject();
                let total = subject
                    .rsplit('/')
                    .next()?
                    .trim_end_matches(')')
                    .parse()
                    .ok()?;
                Some(about(m, marker).len() >= total)
            })
            .unwrap_or(false)
    });
    let parts = about(&mails, marker);
    let n = parts.len();
    assert!(
        n > 40,
        "7,000 lines of 40 characters are over 40 parts: {n}"
    );
    let mut joined = String::new();
    for (i, m) in parts.iter().enumerate() {
        assert!(
            m.subject().ends_with(&format!("(part {}/{n})", i + 1)),
            "{}",
            m.subject()
        );
        let text = m.text();
        assert!(
            text.chars().count() <= 5000,
            "part {} is {}: {:?}",
            i + 1,
            text.len(),
            &m.data[m.data.len() - 200..]
        );
        assert!(m.html().is_none(), "parts are text only");
        // A part ends at a line end, unless it is all inside a line longer than a part;
        // such a line is cut after a space when it has one past the part's middle.
        if i + 1 < n && !text.ends_with('\n') {
            assert!(
                !text.contains('\n') && text.chars().count() > 2500,
                "part {} is cut inside a line that fits a part",
                i + 1
            );
            let second_half: String = text.chars().skip(2500).collect();
            assert!(
                text.ends_with(' ') || !second_half.contains(' '),
                "part {} splits a word: {:?}",
                i + 1,
                &text[text.len() - 20..]
            );
        }
        joined.push_str(&text);
    }
    stacktrace::store().unwrap().flush().unwrap();
    let store = stacktrace::store().unwrap();
    let event = store
        .query()
        .text(marker)
        .all()
        .unwrap()
        .pop()
        .expect("stored");
    let group = store.group(&event.fingerprint).unwrap().expect("group");
    let whole = StandardReporter.text(&Notice::new(&event, Some(&group), MailReason::NewGroup, 0));
    assert!(
        whole.contains(" word1499\n"),
        "the long line is in the report"
    );
    assert_eq!(joined.len(), whole.len());
    assert!(joined == whole, "the parts join to the report");
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "home" }))
        .route(
            "/flaky-3c9",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        )
        // Above the 50 requests of one group: the throttle, not the layer's cap, is tested.
        .layer(stacktrace::http::StacktraceLayer::new().event_limits(100, 1000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_server_errors_give_one_mail_and_the_next_counts_the_rest() {
    let s = server();
    let addr = serve(app()).await;
    let c = client();
    let marker = "/flaky-3c9";
    let get = |path: &str| {
        Request::get(format!("http://{addr}{path}"))
            .body(empty())
            .unwrap()
    };
    for _ in 0..50 {
        let (status, _, _) = send(&c, get(marker)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let first = tokio::task::spawn_blocking(move || mails_about(marker, 1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1, "one mail for 50 occurrences");
    assert!(first[0]
        .subject()
        .starts_with("[stacktrace] New error: HTTP 500"));
    let text = first[0].text();
    assert!(text.contains(&format!("GET {marker}")), "{text}");

    // After the throttle window, the next occurrence mails and counts the rest.
    tokio::time::sleep(THROTTLE + Duration::from_millis(200)).await;
    send(&c, get(marker)).await;
    let two = tokio::task::spawn_blocking(move || mails_about(marker, 2))
        .await
        .unwrap();
    assert_eq!(two.len(), 2);
    assert!(two[1]
        .subject()
        .starts_with("[stacktrace] Server error: HTTP 500"));
    assert!(
        two[1]
            .text()
            .contains("49 more occurrences of this group since the last mail were not mailed."),
        "{}",
        two[1].text()
    );

    // Resolved, it comes back: a regression mails at once, inside the window.
    let store = stacktrace::store().unwrap();
    let event = store.query().request_path(marker).limit(1).all().unwrap();
    store.resolve(&event[0].fingerprint).unwrap();
    send(&c, get(marker)).await;
    let three = tokio::task::spawn_blocking(move || mails_about(marker, 3))
        .await
        .unwrap();
    assert_eq!(three.len(), 3);
    assert!(three[2]
        .subject()
        .starts_with("[stacktrace] Regression: HTTP 500"));
    assert!(three[2].text().contains("Status: unresolved (regressed)"));
    assert_eq!(s.refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_link_mails_the_managers_and_an_ignorable_one_does_not() {
    let s = server();
    let addr = serve(app()).await;
    let c = client();
    let referer = format!("http://{addr}/");
    for path in ["/favicon.ico", "/gone-8b2"] {
        let req = Request::get(format!("http://{addr}{path}"))
            .header("referer", &referer)
            .body(empty())
            .unwrap();
        assert_eq!(send(&c, req).await.0, StatusCode::NOT_FOUND);
    }
    let mails = tokio::task::spawn_blocking(|| mails_about("/gone-8b2", 1))
        .await
        .unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt, [MANAGER]);
    // This server by the machine's host name (no `server_name` is set), not the `Host`
    // the request sent.
    let event = support::http::events_at("/gone-8b2").pop().expect("stored");
    assert_eq!(event.extra["host"], addr.to_string());
    assert!(!event.context.hostname.is_empty());
    assert_eq!(
        mails[0].subject(),
        format!(
            "[stacktrace] Broken INTERNAL link on {}: /gone-8b2",
            event.context.hostname
        )
    );
    assert!(mails[0].text().contains(&format!("referer = {referer}")));
    // The sender keeps order: a mail for the ignorable request would have come first.
    assert!(s.mails().iter().all(|m| !m.data.contains("favicon")));
}

#[test]
fn control_characters_in_a_message_add_no_header() {
    let s = server();
    let a = "injected-4f0";
    let b = "lone-cr-4f0";
    stacktrace::capture_message(&format!("{a}\r\nBcc: someone@example.com"), Level::Error).unwrap();
    stacktrace::capture_message(&format!("{b}\rBcc: someone@example.com"), Level::Error).unwrap();
    s.wait_for(WAIT, |m| !about(m, a).is_empty() && !about(m, b).is_empty());
    let mails = s.mails();
    for m in about(&mails, a).into_iter().chain(about(&mails, b)) {
        assert_eq!(m.rcpt, ADMINS);
        let headers = m.headers();
        assert!(
            headers.iter().all(|(k, _)| !k.eq_ignore_ascii_case("bcc")),
            "{headers:?}"
        );
        let subjects = headers.iter().filter(|(k, _)| k == "Subject").count();
        assert_eq!(subjects, 1);
    }
    assert_eq!(
        about(&mails, b)[0].subject(),
        format!("[stacktrace] New error: {b}\\rBcc: someone@example.com")
    );
}

#[stacktrace::capture]
#[stacktrace::sensitive_variables(card_number)]
fn pay(card_number: &str, amount: u32) -> Result<(), String> {
    Err(format!(
        "payment-declined-2d6: card {card_number} refused for {amount}"
    ))
}

#[test]
fn a_secret_reaches_no_mail() {
    let s = server();
    let canary = "4111-CANARY-9999";
    let _ = pay(canary, 12);
    stacktrace::Report::message("login-failed-2d6", Level::Error)
        .extra("password", canary)
        .extra("attempt", 3)
        .capture()
        .unwrap();
    let mails = s.wait_for(WAIT, |m| about(m, "2d6").len() >= 2);
    let mine = about(&mails, "2d6");
    assert_eq!(mine.len(), 2);
    let paid = mine
        .iter()
        .find(|m| m.subject().contains("payment"))
        .unwrap();
    assert!(
        paid.text().contains("card_number = **********"),
        "{}",
        paid.text()
    );
    assert!(paid.text().contains("amount = 12"));
    // No mail at all holds the canary, raw or decoded.
    for m in s.mails() {
        let html = m.html().unwrap_or_default();
        for text in [&m.data, &m.text(), &html] {
            assert!(!text.contains(canary), "{}", m.subject());
        }
    }
}

/// A plugged reporter is used in place of the standard one.
#[test]
fn the_reporter_trait_renders_text_and_html() {
    struct Short;
    impl Reporter for Short {
        fn text(&self, n: &Notice<'_>) -> String {
            format!("{} | {}\n", n.reason.label(), n.event.title())
        }
    }
    let event: stacktrace::CrashEvent = serde_json::from_value(serde_json::json!({
        "id": "0000000000000000000000000000000a", "timestamp_us": 1, "level": "error",
        "logger": "error", "error_type": "E", "message": "<b>m</b>", "fingerprint": "f",
        "context": {"os": "", "arch": "", "hostname": "", "program": "",
                    "program_version": "", "thread_id": "", "pid": 1},
    }))
    .unwrap();
    let n = Notice::new(&event, None, MailReason::Regression, 3);
    assert_eq!(Short.text(&n), "Regression | E: <b>m</b>\n");
    assert!(Short.html(&n).is_none());
    let html = StandardReporter.html(&n).unwrap();
    assert!(html.contains("E: &lt;b&gt;m&lt;/b&gt;") && !html.contains("<b>m</b>"));
    assert!(StandardReporter
        .text(&n)
        .contains("3 more occurrences of this group since the last mail were not mailed."));
}

/// The headers every report mail has, and no other.
const HEADERS: [&str; 8] = [
    "From",
    "To",
    "Subject",
    "Message-ID",
    "Date",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]

    /// Whatever a message holds, its mail has the same headers and recipients.
    #[test]
    fn generated_messages_add_no_header(tail in "[\\x00-\\x1f\\x7f\\u{85}\\u{2028}a-zA-Z :@.<>\r\n]{0,60}") {
        static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let s = server();
        let marker = format!(
            "generated-{:02}-a91",
            CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        stacktrace::capture_message(&format!("{marker}{tail}"), Level::Error).unwrap();
        let mails = s.wait_for(WAIT, |m| !about(m, &marker).is_empty());
        let mine = about(&mails, &marker);
        proptest::prop_assert_eq!(mine.len(), 1);
        let m = mine[0];
        proptest::prop_assert_eq!(&m.rcpt, &ADMINS);
        for (name, _) in m.headers() {
            proptest::prop_assert!(
                HEADERS.iter().any(|h| h.eq_ignore_ascii_case(&name)),
                "unexpected header {:?} for {:?}", name, tail
            );
        }
        proptest::prop_assert!(!m.subject().chars().any(char::is_control));
    }
}

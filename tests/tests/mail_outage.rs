//! The SMTP server down, busy, failing and back: captures return at once, the mail queue
//! stays bounded, and what was queued arrives once the server is back, each mail once.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use stacktrace::mail::MailConfig;
use stacktrace::{Config, Level};

use support::mail::smtp::{Mode, SmtpServer};
use support::scenario::db_dir;

const CAPACITY: usize = 5;

#[test]
fn queued_mails_arrive_once_after_the_server_is_back() {
    let (_dir, db) = db_dir();
    // A port with nobody listening: the server is down.
    let port = SmtpServer::start().port();
    std::thread::sleep(Duration::from_millis(50));
    let guard = stacktrace::install_with(
        // Reports leave out the test runner's environment, whose size would decide how
        // many parts (each a mail) a report goes in.
        Config::default().db_path(db).capture_env(false).mail(
            MailConfig::default()
                .admin("ops@example.com")
                .smtp_host("127.0.0.1")
                .smtp_port(port)
                .queue_capacity(CAPACITY)
                .max_attempts(10_000)
                .smtp_timeout(Duration::from_secs(2))
                .retry_backoff(Duration::from_millis(20), Duration::from_millis(100)),
        ),
    );
    assert!(guard.errors().is_empty(), "{:?}", guard.errors());

    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let start = Instant::now();
        stacktrace::capture_message(&format!("outage-{i:02}: upstream gone"), Level::Error);
        slowest = slowest.max(start.elapsed());
    }
    // A panic is stored in the hook, which also decides its mail: still no wait on SMTP.
    let start = Instant::now();
    let _ = std::thread::spawn(|| panic!("outage-panic: worker died")).join();
    let panic_took = start.elapsed();
    assert!(guard.flush());
    assert!(
        slowest < Duration::from_millis(100),
        "a capture took {slowest:?}"
    );
    assert!(
        panic_took < Duration::from_secs(2),
        "the panic took {panic_took:?}"
    );

    // Every event is a new group, so 21 reports wanted to go out: the queue kept at most
    // its capacity plus the one being tried, and counted the rest as dropped.
    std::thread::sleep(Duration::from_millis(300));
    let stats = stacktrace::mail::stats().expect("mail is on");
    assert!(stats.queued <= CAPACITY + 1, "{stats:?}");
    assert_eq!(stats.queued as u64 + stats.dropped, 21, "{stats:?}");
    assert_eq!(stats.sent, 0);
    assert!(stats.retries > 0, "{stats:?}");
    let queued = stats.queued;

    // Back, but busy (421), then failing for now (451): still nothing delivered.
    let server = SmtpServer::start_on(port).expect("the port again");
    server.set_mode(Mode::Busy);
    server.wait_for(Duration::from_secs(5), |_| server.refused() >= 2);
    server.set_mode(Mode::TempFail);
    let refused = server.refused();
    server.wait_for(Duration::from_secs(5), |_| server.refused() >= refused + 2);
    assert!(server.mails().is_empty());

    // Up: the queued mails arrive, each once.
    server.set_mode(Mode::Accept);
    server.wait_for(Duration::from_secs(20), |m| m.len() >= queued);
    std::thread::sleep(Duration::from_millis(500));
    let mails = server.mails();
    assert_eq!(mails.len(), queued, "each queued mail once");
    let ids: HashSet<String> = mails
        .iter()
        .map(|m| m.header("Message-ID").expect("a Message-ID"))
        .collect();
    assert_eq!(ids.len(), queued);
    let subjects: HashSet<String> = mails.iter().map(|m| m.subject()).collect();
    assert_eq!(subjects.len(), queued);
    let stats = stacktrace::mail::stats().unwrap();
    assert_eq!((stats.sent, stats.queued), (queued as u64, 0), "{stats:?}");

    // A permanent refusal (554) is not retried; the next mail goes through.
    server.set_mode(Mode::PermFail);
    let retries = stats.retries;
    stacktrace::capture_message("refused-for-good: x", Level::Error);
    assert!(guard.flush());
    let deadline = Instant::now() + Duration::from_secs(10);
    while stacktrace::mail::stats().unwrap().failed == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = stacktrace::mail::stats().unwrap();
    assert_eq!((stats.failed, stats.retries), (1, retries), "{stats:?}");
    server.set_mode(Mode::Accept);
    stacktrace::capture_message("accepted-again: y", Level::Error);
    let mails = server.wait_for(Duration::from_secs(10), |m| m.len() > queued);
    assert_eq!(mails.len(), queued + 1);
    assert!(mails[queued].subject().contains("accepted-again"));
}

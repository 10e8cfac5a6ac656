//! Dropping the guard sends what the mail queue holds, within the drain timeout, and says
//! what was left.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::mail::smtp::SmtpServer;
use support::scenario::db_dir;

fn scenario(port: u16, drain_ms: u64) -> (std::process::Output, Duration) {
    let (_dir, db) = db_dir();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mail_scenario"))
        // A report lists the environment: without the test runner's, its size (and so
        // the number of parts it is sent in) does not depend on where the tests run.
        .env_clear()
        .args([
            port.to_string(),
            drain_ms.to_string(),
            db.display().to_string(),
        ])
        .output()
        .expect("run mail_scenario");
    (out, start.elapsed())
}

#[test]
fn the_guard_sends_queued_mail_before_exit() {
    let server = SmtpServer::start();
    let (out, _) = scenario(server.port(), 10_000);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exited\n");
    // Sent before the program ended: no waiting here.
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{stderr}");
    assert!(mails[0].subject().contains("drain-scenario"));
    assert!(!stderr.contains("not sent"), "{stderr}");
}

#[test]
fn the_guard_says_what_was_left_when_the_server_is_down() {
    let port = SmtpServer::start().port();
    std::thread::sleep(Duration::from_millis(50));
    let (out, took) = scenario(port, 300);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("stacktrace: 1 report mail was not sent before exit"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("not sent before exit").count(),
        1,
        "{stderr}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn install_reads_mail_settings_from_the_environment() {
    let server = SmtpServer::start();
    let (_dir, db) = db_dir();
    let run = |admins: &str| {
        Command::new(env!("CARGO_BIN_EXE_mail_scenario"))
            // A report lists the environment: without the test runner's, its size (and so
            // the number of parts it is sent in) does not depend on where the tests run.
            .env_clear()
            .arg("env")
            .env("STACKTRACE_DB", &db)
            .env("STACKTRACE_ADMINS", admins)
            .env("STACKTRACE_SMTP_URL", server.url())
            .env("STACKTRACE_MAIL_DRAIN_TIMEOUT", "10")
            .output()
            .expect("run mail_scenario")
    };
    let out = run("ops@example.com, dev@example.com");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "errors: 0\nexited\n",
        "{stderr}"
    );
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{stderr}");
    assert_eq!(mails[0].rcpt, ["ops@example.com", "dev@example.com"]);

    // A bad address: said once on stderr, naming the variable; the program runs on.
    let out = run("ops at example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "errors: 1\nexited\n");
    assert_eq!(stderr.matches("STACKTRACE_ADMINS").count(), 1, "{stderr}");
    assert!(stderr.contains("ops at example"), "{stderr}");
}

#[test]
fn a_panic_is_mailed_once_whether_the_hook_or_the_writer_stores_it() {
    let server = SmtpServer::start();
    let (_dir, db) = db_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_mail_scenario"))
        // A report lists the environment: without the test runner's, its size (and so
        // the number of parts it is sent in) does not depend on where the tests run.
        .env_clear()
        .args([
            "panics".to_owned(),
            server.port().to_string(),
            db.display().to_string(),
        ])
        .output()
        .expect("run mail_scenario");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exited\n");
    let mails = server.mails();
    let about = |what: &str| mails.iter().filter(|m| m.subject().contains(what)).count();
    // Four new groups, one mail each: the two messages and the two panics.
    assert_eq!(about("stored by the hook"), 1, "{stderr}");
    assert_eq!(about("stored by the writer"), 1, "{stderr}");
    assert_eq!(about("hold the writer"), 1, "{stderr}");
    assert_eq!(about("fills the queue"), 1, "{stderr}");
    assert_eq!(mails.len(), 4, "{stderr}");
}

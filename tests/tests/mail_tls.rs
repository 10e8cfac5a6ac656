//! Report mails over TLS to a real TLS SMTP server on 127.0.0.1: SMTPS and STARTTLS with
//! the test CA trusted through `STACKTRACE_SMTP_ROOT_CERT`; never in the clear when TLS is
//! required, and nothing delivered to a server whose certificate is not trusted.

mod support;

use std::process::{Command, Output};

use support::mail::smtp::{test_ca, Security, SmtpServer};
use support::scenario::db_dir;

/// Runs `mail_scenario tls-panic`: one panic, mailed with these settings.
fn panic_mailed(url: &str, root_certificate: Option<&std::path::Path>) -> (String, String) {
    let (_dir, db) = db_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mail_scenario"));
    // A report lists the environment: without the test runner's, its size (and so the
    // number of parts it is sent in) does not depend on where the tests run.
    cmd.env_clear()
        .arg("tls-panic")
        .arg(&db)
        .env("STACKTRACE_ADMINS", "ops@example.com")
        .env("STACKTRACE_SMTP_URL", url);
    if let Some(path) = root_certificate {
        cmd.env("STACKTRACE_SMTP_ROOT_CERT", path);
    }
    let out: Output = cmd.output().expect("run mail_scenario");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn a_panic_is_mailed_over_smtps() {
    let server = SmtpServer::start_secured(Security::Implicit);
    let url = format!("smtps://127.0.0.1:{}", server.port());
    let (stdout, stderr) = panic_mailed(&url, Some(&test_ca()));
    assert_eq!(stdout, "sent 1 failed 0 queued 0\n", "{stderr}");
    // Sent before the program ended: no waiting here.
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{stderr}");
    assert!(mails[0].tls, "the mail came over TLS");
    assert_eq!(mails[0].rcpt, ["ops@example.com"]);
    assert!(
        mails[0].subject().contains("mail-tls: worker died"),
        "{mails:?}"
    );
    assert!(
        mails[0].text().contains("worker_over_tls"),
        "{}",
        mails[0].text()
    );
    assert_eq!(server.handshake_failures(), 0);
}

#[test]
fn a_panic_is_mailed_over_starttls() {
    // `required` insists on STARTTLS; `opportunistic` takes it since the server offers it.
    for mode in ["required", "opportunistic"] {
        let server = SmtpServer::start_secured(Security::StartTls);
        let url = format!("smtp://127.0.0.1:{}?tls={mode}", server.port());
        let (stdout, stderr) = panic_mailed(&url, Some(&test_ca()));
        assert_eq!(stdout, "sent 1 failed 0 queued 0\n", "{mode}: {stderr}");
        let mails = server.mails();
        assert_eq!(mails.len(), 1, "{mode}: {stderr}");
        assert!(mails[0].tls, "{mode}: the mail came after STARTTLS");
        assert!(
            mails[0].subject().contains("mail-tls: worker died"),
            "{mails:?}"
        );
    }
}

#[test]
fn required_tls_sends_nothing_in_the_clear_to_a_server_without_starttls() {
    let server = SmtpServer::start_secured(Security::Plain);
    let url = format!("smtp://127.0.0.1:{}?tls=required", server.port());
    let (stdout, stderr) = panic_mailed(&url, Some(&test_ca()));
    // Given up at once (the server cannot do what is required), and said once.
    assert_eq!(stdout, "sent 0 failed 1 queued 0\n", "{stderr}");
    assert!(server.connections() >= 1, "the client did connect");
    assert!(server.mails().is_empty());
    assert_eq!(
        stderr.matches("a report mail was given up").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn nothing_is_delivered_to_a_server_whose_certificate_is_not_trusted() {
    for (security, url) in [
        (Security::Implicit, "smtps://127.0.0.1:{port}"),
        (Security::StartTls, "smtp://127.0.0.1:{port}?tls=required"),
    ] {
        let server = SmtpServer::start_secured(security);
        let url = url.replace("{port}", &server.port().to_string());
        // Only the webpki roots: the test CA is unknown.
        let (stdout, stderr) = panic_mailed(&url, None);
        assert_eq!(
            stdout, "sent 0 failed 1 queued 0\n",
            "{security:?}: {stderr}"
        );
        assert!(server.mails().is_empty(), "{security:?}");
        assert!(server.handshake_failures() >= 1, "{security:?}: {stderr}");
        assert!(stderr.contains("a report mail was given up"), "{stderr}");
        assert!(stderr.contains("certificate"), "{stderr}");
    }
}

#[test]
fn a_bad_root_certificate_is_an_install_error_and_mail_is_off() {
    let server = SmtpServer::start_secured(Security::Implicit);
    let url = format!("smtps://127.0.0.1:{}", server.port());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-ca.pem");
    let (stdout, stderr) = panic_mailed(&url, Some(&missing));
    let mut lines = stdout.lines();
    let error = lines.next().unwrap_or_default();
    assert!(error.starts_with("error: "), "{stdout}{stderr}");
    assert!(error.contains("smtp_root_certificate"), "{error}");
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert_eq!(lines.collect::<Vec<_>>(), ["mail off"], "{stdout}");
    assert_eq!(server.connections(), 0);
}

//! How many mails a report takes, against a real SMTP server on 127.0.0.1: an ordinary
//! panic in an ordinary service's environment is one mail; only a really long report is
//! sent in parts.

mod support;

use std::process::Command;
use std::time::Duration;

use support::mail::smtp::{Received, SmtpServer};
use support::scenario::{db_dir, run_with_limit};

/// About a hundred variables, as a CI job or a service manager sets them.
fn ordinary_environment() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/app/bin",
        ),
        ("HOME", "/home/runner"),
        ("USER", "runner"),
        ("LANG", "C.UTF-8"),
        ("SHELL", "/bin/bash"),
        ("HOSTNAME", "build-7"),
        ("RUST_BACKTRACE", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for i in 0..93 {
        vars.push((
            format!("CI_JOB_SETTING_{i:02}"),
            format!("value of setting {i:02} for the nightly build pipeline"),
        ));
    }
    vars
}

/// Runs the report scenario in `env` alone and returns the mails it sent.
fn mails_of(what: &str, env: &[(String, String)]) -> Vec<Received> {
    let server = SmtpServer::start();
    let (_dir, db) = db_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_report_scenario"));
    cmd.env_clear().envs(env.iter().cloned()).args([
        what,
        &server.url(),
        &db.display().to_string(),
    ]);
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("exited"), "{run:?}");
    server.mails()
}

/// The reports among mails: the parts of one report share its event id.
fn reports(mails: &[Received]) -> usize {
    let mut ids: Vec<String> = mails
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .filter_map(|id| {
            id.trim_start_matches('<')
                .split('.')
                .next()
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

// Regression: a plain panic's report listed the source lines of every frame of the app's
// and the whole environment, past one 5,000-character part: an ordinary CI or service
// environment made every panic two mails, "part 1/2" and "part 2/2".
#[test]
fn a_panic_in_an_ordinary_environment_is_one_mail() {
    let env = ordinary_environment();
    assert_eq!(env.len(), 100);
    let mails = mails_of("panic", &env);
    assert_eq!(reports(&mails), 1);
    assert_eq!(
        mails.len(),
        1,
        "{:?}",
        mails.iter().map(Received::subject).collect::<Vec<_>>()
    );
    let m = &mails[0];
    assert!(m.subject().contains("card service gone"), "{}", m.subject());
    assert!(!m.subject().contains("(part"), "{}", m.subject());
    let text = m.text();
    // Everything a reader needs, and the environment last.
    for needle in [
        "report-scenario: card service gone for 3",
        "Error type: panic",
        "Frames (innermost first, * = application code):",
        "report_scenario::charge",
        "Occurrences: 1",
        "Environment:",
        "CI_JOB_SETTING_00 = value of setting 00",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    assert!(text.find("Group:") < text.find("Environment:"), "{text}");
    assert!(text.contains("more variables"), "{text}");
}

// Control: a report that is long by its own message still goes in parts, the first one
// with the summary.
#[test]
fn a_really_long_report_is_still_several_mails() {
    let mails = mails_of("long", &ordinary_environment());
    assert_eq!(reports(&mails), 1);
    assert!(mails.len() >= 3, "{} mails", mails.len());
    let n = mails.len();
    for (i, m) in mails.iter().enumerate() {
        assert!(
            m.subject().ends_with(&format!("(part {}/{n})", i + 1)),
            "{}",
            m.subject()
        );
    }
    assert!(mails[0].text().contains("Summary:"));
}

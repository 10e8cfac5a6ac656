//! SMTP credentials never cross the network unencrypted: for a server on another machine
//! they need `required` or `wrapper` TLS, or install reports the variable to fix and mail
//! is off; a server on this machine takes them with a note on stderr.

mod support;

use std::process::Command;
use std::time::Duration;

use support::scenario::{db_dir, run_with_limit, Run};

/// Runs `mail_scenario env` with these variables and nobody to mail, so that nothing is
/// sent and only the install's checks speak.
fn installed_with(vars: &[(&str, &str)]) -> Run {
    let (_dir, db) = db_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mail_scenario"));
    cmd.env_clear().arg("env").env("STACKTRACE_DB", &db);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{vars:?}: {}", run.stderr);
    run
}

fn url(u: &str) -> Run {
    installed_with(&[("STACKTRACE_SMTP_URL", u)])
}

// Regression: with credentials in `STACKTRACE_SMTP_URL` and no `?tls=`, `AUTH PLAIN` went to
// the server in the clear; with `tls=opportunistic`, so it did once STARTTLS was stripped.
#[test]
fn credentials_to_another_machine_without_sure_tls_are_an_install_error() {
    for (u, why) in [
        (
            "smtp://errors:app-pw-1@mail.example.com:587",
            "in the clear",
        ),
        (
            "smtp://errors:app-pw-1@mail.example.com:587?tls=opportunistic",
            "strip",
        ),
        ("smtp://errors:app-pw-1@192.0.2.25?tls=none", "in the clear"),
    ] {
        let run = url(u);
        assert_eq!(run.stdout, "errors: 1\nexited\n", "{u}: {}", run.stderr);
        let said = run
            .stderr
            .lines()
            .find(|l| l.contains("SMTP credentials"))
            .unwrap_or_else(|| panic!("{u}: {}", run.stderr));
        assert!(said.contains("STACKTRACE_SMTP_URL"), "{said}");
        assert!(
            said.contains("?tls=required") && said.contains("smtps://"),
            "{said}"
        );
        assert!(said.contains(why), "{said}");
        assert!(said.ends_with("mail is off"), "{said}");
        assert!(!run.stderr.contains("app-pw-1"), "{}", run.stderr);
    }
    // Control: the same credentials over sure TLS are taken.
    for u in [
        "smtp://errors:app-pw-1@mail.example.com:587?tls=required",
        "smtp://errors:app-pw-1@mail.example.com?tls=wrapper",
        "smtps://errors:app-pw-1@mail.example.com",
    ] {
        let run = url(u);
        assert_eq!(run.stdout, "errors: 0\nexited\n", "{u}: {}", run.stderr);
        assert!(!run.stderr.contains("SMTP credentials"), "{}", run.stderr);
    }
}

#[test]
fn credentials_to_this_machine_are_taken_with_a_note() {
    for u in [
        "smtp://errors:app-pw-2@127.0.0.1:2525",
        "smtp://errors:app-pw-2@localhost:25",
        "smtp://errors:app-pw-2@[::1]:25",
    ] {
        let run = url(u);
        assert_eq!(run.stdout, "errors: 0\nexited\n", "{u}: {}", run.stderr);
        let notes: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.contains("SMTP credentials"))
            .collect();
        assert_eq!(notes.len(), 1, "{u}: {}", run.stderr);
        assert!(notes[0].contains("this machine"), "{}", notes[0]);
    }
}

#[test]
fn no_credentials_need_no_tls() {
    let run = url("smtp://mail.example.com:25");
    assert_eq!(run.stdout, "errors: 0\nexited\n", "{}", run.stderr);
    assert!(!run.stderr.contains("SMTP credentials"), "{}", run.stderr);
}

// The same check when the server comes in parts: the fix names `STACKTRACE_SMTP_TLS`.
#[test]
fn credentials_from_the_user_and_password_variables_are_checked_too() {
    let parts = [
        ("STACKTRACE_SMTP_HOST", "mail.example.com"),
        ("STACKTRACE_SMTP_USER", "errors"),
        ("STACKTRACE_SMTP_PASSWORD", "app-pw-3"),
    ];
    let run = installed_with(&parts);
    assert_eq!(run.stdout, "errors: 1\nexited\n", "{}", run.stderr);
    assert!(
        run.stderr.contains("STACKTRACE_SMTP_TLS=required"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("app-pw-3"), "{}", run.stderr);
    // Control: with TLS required, taken.
    let mut with_tls = parts.to_vec();
    with_tls.push(("STACKTRACE_SMTP_TLS", "required"));
    let run = installed_with(&with_tls);
    assert_eq!(run.stdout, "errors: 0\nexited\n", "{}", run.stderr);
}

//! Bad mail settings are reported at install, naming the setting, and never panic.

mod support;

use stacktrace::mail::MailConfig;
use stacktrace::{Config, InstallError};
use support::scenario::db_dir;

#[test]
fn bad_addresses_and_urls_are_install_errors_naming_the_setting() {
    let (_dir, db) = db_dir();
    let guard = stacktrace::install_with(
        Config::default().db_path(db).mail(
            MailConfig::default()
                .admin("ops@example.com")
                .admin("ops at example dot com")
                .manager("<>")
                .smtp_url("smtp://ann:hunter2@mail.test:99999"),
        ),
    );
    let texts: Vec<String> = guard
        .errors()
        .iter()
        .map(|e| {
            assert!(matches!(e, InstallError::Config(_)), "{e:?}");
            e.to_string()
        })
        .collect();
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts[0].contains("admins") && texts[0].contains("ops at example dot com"));
    assert!(texts[1].contains("managers"));
    assert!(texts[2].contains("smtp_url") && texts[2].contains("ann:**********@mail.test"));
    assert!(texts.iter().all(|t| !t.contains("hunter2")));
    // The SMTP server is unusable: mail is off, the tracker runs on.
    assert!(stacktrace::mail::stats().is_none());
    assert!(guard.is_storing());
    assert!(stacktrace::capture_message("still running", stacktrace::Level::Error).is_some());
}

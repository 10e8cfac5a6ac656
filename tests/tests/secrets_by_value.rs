//! Secrets found by their value, not only by the name that holds them: the password of a
//! URL in an environment variable, a message, an error, a tag, extra data, an argument, a
//! breadcrumb or a panic; `Bearer` and `Basic` credentials; `password=` pairs in free text;
//! and the crate's own SMTP password wherever it shows. None reaches the database files, the
//! JSON-lines export or a mail; the text around each is kept.

mod support;

use std::process::Command;
use std::time::Duration;

use stacktrace::{GroupOrder, Store};
use stacktrace_tests::{contains, raw_bytes};

use support::mail::smtp::SmtpServer;

/// `user:password` in base64, as a `Basic` credential carries it.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// Regression: environment variables were hidden by name only, so `STACKTRACE_SMTP_URL` and
// `DATABASE_URL` were stored and mailed with their passwords; free texts kept URL
// passwords, `Bearer`/`Basic` credentials and `password=` pairs; and the SMTP password
// itself, quoted in a message, was stored as it was.
#[test]
fn secrets_by_value_reach_neither_the_files_nor_the_export_nor_a_mail() {
    let server = SmtpServer::start();
    let (dir, db) = support::scenario::db_dir();
    let smtp = "sv-smtp-pass-4c1d";
    let database = "sv-database-pw-77e2";
    let redis = "sv-redis-pw-0b9a";
    let amqp = "sv-amqp-env-pw-5d31";
    // Passed to the scenario, which reports each in one kind of text.
    let reported = [
        smtp,
        "sv-tag-pw-19af",
        "sv-query-token-3e70",
        "sv-bearer-token-a8c2",
        "sv-error-pw-6f04",
        "sv-pair-pw-d215",
        "sv-crumb-pw-90bb",
        "sv-arg-pw-2a7e",
    ];
    let basic = base64("deploy:sv-basic-pw-e3f8");
    let run = support::scenario::run_with_limit(
        {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets_scenario"));
            // Only the variables below: a mail holds the environment up to a cap, and the
            // URLs must be among what it holds for the check of the mails to mean anything.
            cmd.env_clear();
            cmd.args(reported)
                .arg(&basic)
                .env("STACKTRACE_DB", &db)
                .env("STACKTRACE_ADMINS", "ops@example.com")
                .env(
                    "STACKTRACE_SMTP_URL",
                    format!("smtp://mailer:{smtp}@127.0.0.1:{}", server.port()),
                )
                .env("STACKTRACE_MAIL_DRAIN_TIMEOUT", "20")
                .env(
                    "DATABASE_URL",
                    format!("postgres://ctlapp:{database}@db.internal/app"),
                )
                .env(
                    "REDIS_URL",
                    format!("redis://:{redis}@cache.internal:6379/0"),
                )
                .env("AMQP_URL", format!("amqp://guest:{amqp}@mq.internal:5672"));
            cmd
        },
        Duration::from_secs(60),
    );
    assert_eq!(run.stdout, "errors: 0\nexited\n", "stderr: {}", run.stderr);

    let mut secrets: Vec<String> = reported.iter().map(|s| (*s).to_owned()).collect();
    secrets.extend([database, redis, amqp, "sv-basic-pw-e3f8"].map(String::from));
    secrets.push(basic.clone());

    // Every byte of the database directory: events, indexes, the panic journal.
    let files = raw_bytes(dir.path());
    // The JSON-lines export.
    let store = Store::open(&db).expect("open the database");
    let mut export = Vec::new();
    let exported = store
        .query()
        .export_jsonl(&mut export)
        .expect("export the events");
    assert_eq!(exported, 5, "{}", String::from_utf8_lossy(&export));
    // At least one mail for each new group (a long report is sent in parts), sent before
    // the program ended.
    let groups = store.groups(GroupOrder::Count).expect("groups").len();
    drop(store);
    let mails = server.mails();
    assert!(mails.len() >= groups, "{groups} groups: {mails:#?}");
    let mut mailed = Vec::new();
    for m in &mails {
        mailed.extend_from_slice(m.data.as_bytes());
        mailed.extend_from_slice(m.text().as_bytes());
        mailed.extend_from_slice(m.html().unwrap_or_default().as_bytes());
    }

    for (what, bytes) in [
        ("the database files", &files),
        ("the export", &export),
        ("the mails", &mailed),
    ] {
        for secret in &secrets {
            assert!(!contains(bytes, secret.as_bytes()), "{secret} is in {what}");
        }
        // The texts around each secret are kept. (The scenario's label names no secret: a
        // label such as `secrets-scenario: the` reads as a secret-named pair.)
        for control in [
            "by-value-scenario: the relay refused",
            "postgres://ctlapp:**********@db.internal/app",
            "redis://:**********@cache.internal:6379/0",
            "amqp://guest:**********@mq.internal:5672",
            "https://deploy:**********@git.example.com/app",
            "token=**********&q=ctl-query-kept",
            "Bearer **********",
            "amqp://guest:**********@mq.internal:5672 is down; retried with password=**********",
            "postgres://app:**********@db.internal/app",
            "mysql://root:**********@mysql.internal/shop",
            "Authorization: Basic ********** was refused",
        ] {
            assert!(
                contains(bytes, control.as_bytes()),
                "{control:?} is not in {what}"
            );
        }
    }
    // The SMTP URL, in the environment, keeps its user and host.
    let smtp_url = format!("smtp://mailer:**********@127.0.0.1:{}", server.port());
    assert!(contains(&files, smtp_url.as_bytes()));
    assert!(contains(&export, smtp_url.as_bytes()));
}

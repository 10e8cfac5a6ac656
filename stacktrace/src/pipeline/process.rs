//! The runtime context of an event: program, machine and thread.

use std::collections::BTreeMap;

use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::credentials::redact_credentials_in;
use crate::pipeline::redact::fields::{is_secret_name, FieldRedactor, Secrets};

/// What does not change while the process runs, read once at install.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProcessInfo {
    pub(crate) os: String,
    pub(crate) arch: String,
    pub(crate) hostname: String,
    pub(crate) program: String,
    pub(crate) program_version: String,
    pub(crate) pid: u32,
    pub(crate) environment: BTreeMap<String, String>,
}

impl ProcessInfo {
    /// Reads what the process is; the environment's values are redacted by name with
    /// `fields`' help, by value, and without the `secrets` of the settings.
    pub(crate) fn read(
        release: &str,
        capture_env: bool,
        fields: &FieldRedactor,
        secrets: &Secrets,
    ) -> Self {
        let program = std::env::args_os()
            .next()
            .map(std::path::PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let environment = if capture_env {
            environment_from(
                std::env::vars_os().map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                }),
                fields,
                secrets,
            )
        } else {
            BTreeMap::new()
        };
        ProcessInfo {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            hostname: hostname(),
            program,
            program_version: release.to_owned(),
            pid: std::process::id(),
            environment,
        }
    }
}

/// Environment variables as stored: those with secret-looking names (or named in
/// `redact_fields`) as the placeholder; in the others, credentials found by value
/// (`postgres://app:**********@db/app`) and the secrets of the settings (the SMTP URL is
/// itself a variable) hidden.
pub(crate) fn environment_from<I: IntoIterator<Item = (String, String)>>(
    vars: I,
    fields: &FieldRedactor,
    secrets: &Secrets,
) -> BTreeMap<String, String> {
    vars.into_iter()
        .map(|(k, mut v)| {
            if is_secret_variable(&k, fields) {
                v = PLACEHOLDER.to_owned();
            } else if let Some(json) = json_with_secrets(&v, fields) {
                v = json;
            } else {
                // Values found here are hidden here only: a password such as `postgres`
                // in a development URL would hide every mention of the database.
                redact_credentials_in(&mut v, fields, &mut Vec::new());
                secrets.scrub(&mut v);
            }
            (k, v)
        })
        .collect()
}

/// Whether an environment variable's name says its value is secret: named like a setting
/// that holds one (`API`, `TOKEN`, `KEY`, `SECRET`, `PASS`, `SIGNATURE`), like a secret
/// field (`*_PWD`, `*_CREDENTIALS`, `*_AUTH`, ...), or a DSN (`SENTRY_DSN`), which holds
/// its key. The shell's working directories (`PWD`, `OLDPWD`) are paths, not passwords.
fn is_secret_variable(name: &str, fields: &FieldRedactor) -> bool {
    if name == "PWD" || name == "OLDPWD" {
        return false;
    }
    let upper = name.to_ascii_uppercase();
    is_secret_name(name) || fields.matches(name) || upper.ends_with("DSN")
}

/// A value that is a JSON object or array with fields named like secrets, with their
/// values hidden (and credentials found by their form in the rest); `None` for any other
/// value, redacted as text.
fn json_with_secrets(value: &str, fields: &FieldRedactor) -> Option<String> {
    let trimmed = value.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    let mut json: serde_json::Value = serde_json::from_str(value).ok()?;
    let mut hidden = Vec::new();
    fields.redact_json_keeping(&mut json, &mut hidden);
    crate::pipeline::redact::credentials::redact_credentials_json(&mut json, fields, &mut hidden);
    if hidden.is_empty() {
        return None;
    }
    Some(serde_json::to_string(&json).unwrap_or_else(|_| PLACEHOLDER.to_owned()))
}

fn hostname() -> String {
    for var in ["HOSTNAME", "COMPUTERNAME"] {
        if let Ok(h) = std::env::var(var) {
            if !h.trim().is_empty() {
                return h.trim().to_owned();
            }
        }
    }
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(h) = std::fs::read_to_string(file) {
            if !h.trim().is_empty() {
                return h.trim().to_owned();
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_variables_are_hidden() {
        let env = environment_from(
            [
                ("AWS_SECRET_ACCESS_KEY".to_owned(), "s3cr3t".to_owned()),
                ("DATABASE_PASSWORD".to_owned(), "pw".to_owned()),
                ("HOME".to_owned(), "/home/app".to_owned()),
            ],
            &FieldRedactor::default(),
            &Secrets::default(),
        );
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], PLACEHOLDER);
        assert_eq!(env["DATABASE_PASSWORD"], PLACEHOLDER);
        assert_eq!(env["HOME"], "/home/app");
    }

    // Regression: `*_PWD`, `*_CREDENTIALS` and `*_DSN` variables and JSON values holding
    // secret-named keys were stored in clear.
    #[test]
    fn variables_named_like_secrets_and_json_values_with_secrets_are_hidden() {
        let env = environment_from(
            [
                ("MY_SERVICE_PWD", "env-pwd-value-1"),
                ("APP_CREDENTIALS", "env-cred-value-2"),
                ("SENTRY_DSN", "https://k3y@o1.ingest.example/1"),
                (
                    "CONFIG_JSON",
                    r#"{"db":{"password":"env-json-pw-3"},"mode":"fast"}"#,
                ),
                ("PWD", "/srv/app"),
                ("LIST_JSON", r#"[1, "plain"]"#),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
            &FieldRedactor::default(),
            &Secrets::default(),
        );
        assert_eq!(env["MY_SERVICE_PWD"], PLACEHOLDER);
        assert_eq!(env["APP_CREDENTIALS"], PLACEHOLDER);
        assert_eq!(env["SENTRY_DSN"], PLACEHOLDER);
        assert!(!env["CONFIG_JSON"].contains("env-json-pw-3"), "{env:?}");
        // Controls: the rest of the JSON, the working directory, a JSON value with no secret.
        assert!(env["CONFIG_JSON"].contains("fast"), "{env:?}");
        assert_eq!(env["PWD"], "/srv/app");
        assert_eq!(env["LIST_JSON"], r#"[1, "plain"]"#);
    }

    // Regression: variables were hidden by name only, so `DATABASE_URL`, `REDIS_URL` and the
    // SMTP URL were stored with their passwords, and a setting's secret in another variable
    // was stored as it was.
    #[test]
    fn credentials_in_values_and_the_settings_secrets_are_hidden() {
        let fields = FieldRedactor::new(&["password".into(), "token".into()]);
        let secrets = Secrets::new(vec!["sm7p-relay-pw".into()]);
        let env = environment_from(
            [
                ("DATABASE_URL", "postgres://app:db-pw-9@db.internal/app"),
                ("REDIS_URL", "redis://:r3d1s@cache:6379/0"),
                (
                    "STACKTRACE_SMTP_URL",
                    "smtp://mailer:sm7p-relay-pw@relay:587",
                ),
                ("RELAY_LOGIN", "mailer sm7p-relay-pw"),
                ("UPSTREAM", "http://u.example/cb?token=t0k3n-1&q=kept"),
                ("UPSTREAM_HEADER", "Bearer abc.def.ghi"),
                ("HOME", "/home/app"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
            &fields,
            &secrets,
        );
        assert_eq!(
            env["DATABASE_URL"],
            format!("postgres://app:{PLACEHOLDER}@db.internal/app")
        );
        assert_eq!(
            env["REDIS_URL"],
            format!("redis://:{PLACEHOLDER}@cache:6379/0")
        );
        assert_eq!(
            env["STACKTRACE_SMTP_URL"],
            format!("smtp://mailer:{PLACEHOLDER}@relay:587")
        );
        assert_eq!(env["RELAY_LOGIN"], format!("mailer {PLACEHOLDER}"));
        assert_eq!(
            env["UPSTREAM"],
            format!("http://u.example/cb?token={PLACEHOLDER}&q=kept")
        );
        assert_eq!(env["UPSTREAM_HEADER"], format!("Bearer {PLACEHOLDER}"));
        assert_eq!(env["HOME"], "/home/app");
    }

    #[test]
    fn process_info_reads_release_and_skips_env_when_asked() {
        let info = ProcessInfo::read(
            "1.2.3",
            false,
            &FieldRedactor::default(),
            &Secrets::default(),
        );
        assert_eq!(info.program_version, "1.2.3");
        assert_eq!(info.pid, std::process::id());
        assert!(info.environment.is_empty());
        assert!(!info.os.is_empty() && !info.arch.is_empty());
    }
}

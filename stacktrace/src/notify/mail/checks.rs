//! Mail settings checked at install: addresses parsed, the SMTP server resolved from the
//! URL or its parts, each bad setting reported by name.

use std::time::Duration;

use lettre::message::Mailbox;

use super::config::{MailConfig, ReporterHandle, TlsMode, ADDRESS};
use super::url::{smtp_url_parts, SmtpUrl};
use crate::error::ConfigError;
use crate::error::POSITIVE;

/// Settings checked at install, ready for the sender.
#[derive(Clone, Debug)]
pub(crate) struct MailSettings {
    pub(crate) admins: Vec<Mailbox>,
    pub(crate) managers: Vec<Mailbox>,
    pub(crate) from: Mailbox,
    pub(crate) subject_prefix: String,
    /// The server named in subjects (`server_name`); `None`: this machine's host name.
    pub(crate) server_name: Option<String>,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<(String, String)>,
    #[cfg_attr(not(feature = "mail-tls"), allow(dead_code))]
    pub(crate) tls: TlsMode,
    /// CA certificates trusted besides the webpki roots (`smtp_root_certificate`).
    #[cfg(feature = "mail-tls")]
    pub(crate) root_certificate: Option<lettre::transport::smtp::client::Certificate>,
    pub(crate) throttle: Duration,
    pub(crate) http_mail_limit: u32,
    pub(crate) chunk_size: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) drain_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) smtp_timeout: Duration,
    pub(crate) reporter: Option<ReporterHandle>,
}

fn mailboxes(
    setting: &'static str,
    list: &[String],
    errors: &mut Vec<ConfigError>,
) -> Vec<Mailbox> {
    list.iter()
        .filter_map(|a| match a.trim().parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.push(ConfigError::InvalidSetting {
                    setting,
                    value: format!("{a:?}"),
                    expected: ADDRESS,
                });
                None
            }
        })
        .collect()
}

/// The error of SMTP credentials sent to `host` over a connection that is not surely
/// encrypted; a server on this machine is let through with a note on stderr, since nothing
/// crosses the network. `from_url`: the TLS mode came from the SMTP URL.
fn cleartext_credentials(host: &str, tls: TlsMode, from_url: bool) -> Option<ConfigError> {
    if matches!(tls, TlsMode::Required | TlsMode::Wrapper) {
        return None;
    }
    if is_this_machine(host) {
        crate::diag::say(&format!(
            "stacktrace: SMTP credentials go to {host} with TLS {}: allowed, the server is on this machine",
            tls.as_str()
        ));
        return None;
    }
    let (setting, var) = if from_url {
        ("smtp_url", "STACKTRACE_SMTP_URL")
    } else {
        ("smtp_tls", "STACKTRACE_SMTP_TLS")
    };
    Some(ConfigError::CleartextCredentials {
        setting,
        var,
        host: host.to_owned(),
        tls: tls.as_str(),
    })
}

/// `localhost`, 127.0.0.0/8 and `::1` (an IPv4-mapped one too).
fn is_this_machine(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

impl MailConfig {
    /// Checks the settings; each bad one is reported. Mail is off (`None`) when nobody is
    /// left to mail.
    pub(crate) fn settings(&self) -> (Option<MailSettings>, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let admins = mailboxes("admins", &self.admins, &mut errors);
        let managers = mailboxes("managers", &self.managers, &mut errors);
        let from = match self.server_email.trim().parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.push(ConfigError::InvalidSetting {
                    setting: "server_email",
                    value: format!("{:?}", self.server_email),
                    expected: "an email address such as errors@example.com",
                });
                None
            }
        };
        let mut tls_from_url = false;
        let (mut host, mut port, mut credentials, mut tls) = (
            self.host.trim().to_owned(),
            self.port,
            self.user
                .clone()
                .map(|u| (u, self.password.clone().unwrap_or_default())),
            self.tls,
        );
        if let Some(url) = &self.smtp_url {
            match smtp_url_parts(url) {
                Ok(SmtpUrl {
                    host: h,
                    port: p,
                    credentials: c,
                    tls: t,
                }) => {
                    host = h;
                    port = p.or(port);
                    credentials = c.or(credentials);
                    tls = t;
                    tls_from_url = true;
                }
                Err(why) => errors.push(ConfigError::InvalidSetting {
                    setting: "smtp_url",
                    value: super::url::hide_password(url),
                    expected: why,
                }),
            }
        }
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            errors.push(ConfigError::InvalidSetting {
                setting: "smtp_host",
                value: format!("{host:?}"),
                expected: "a host name or address",
            });
        }
        if port == Some(0) {
            errors.push(ConfigError::InvalidSetting {
                setting: "smtp_port",
                value: "0".into(),
                expected: "a port from 1 to 65535",
            });
        }
        #[cfg(feature = "mail-tls")]
        let root_certificate = self.root_certificate.as_ref().and_then(|path| {
            super::sender::root_certificate_of(path)
                .map_err(|why| {
                    errors.push(ConfigError::InvalidSetting {
                        setting: "smtp_root_certificate",
                        value: format!("{} ({why})", path.display()),
                        expected: "a readable PEM file of CA certificates",
                    });
                })
                .ok()
        });
        #[cfg(not(feature = "mail-tls"))]
        if let Some(path) = &self.root_certificate {
            errors.push(ConfigError::InvalidSetting {
                setting: "smtp_root_certificate",
                value: path.display().to_string(),
                expected: "none: this build has no TLS; enable the `mail-tls` feature",
            });
        }
        #[cfg(feature = "mail-tls")]
        if let Err(e) = super::sender::tls_of(&host, tls, root_certificate.as_ref()) {
            errors.push(ConfigError::InvalidSetting {
                setting: "smtp_tls",
                value: format!("{} for {host:?} ({e})", tls.as_str()),
                expected: "a TLS mode the host name allows",
            });
        }
        if tls != TlsMode::None && !super::sender::TLS_AVAILABLE {
            errors.push(ConfigError::InvalidSetting {
                setting: "smtp_tls",
                value: tls.as_str().into(),
                expected: "none: this build has no TLS; enable the `mail-tls` feature",
            });
        }
        if credentials.is_some() {
            errors.extend(cleartext_credentials(&host, tls, tls_from_url));
        }
        for (setting, n) in [
            ("chunk_size", self.chunk_size),
            ("mail_queue_capacity", self.queue_capacity),
        ] {
            if n == 0 {
                errors.push(ConfigError::InvalidSetting {
                    setting,
                    value: "0".into(),
                    expected: POSITIVE,
                });
            }
        }
        let usable = errors.iter().all(|e| {
            !matches!(e, ConfigError::CleartextCredentials { .. })
                && !matches!(e, ConfigError::InvalidSetting { setting, .. }
                if matches!(
                    *setting,
                    "server_email"
                        | "smtp_url"
                        | "smtp_host"
                        | "smtp_port"
                        | "smtp_tls"
                        | "smtp_root_certificate"
                ))
        });
        let d = MailConfig::default();
        let settings = match from {
            Some(from) if usable && !(admins.is_empty() && managers.is_empty()) => {
                Some(MailSettings {
                    admins,
                    managers,
                    from,
                    subject_prefix: self.subject_prefix.clone(),
                    server_name: self.server_name.clone(),
                    port: port.unwrap_or(tls.default_port()),
                    host,
                    credentials,
                    tls,
                    #[cfg(feature = "mail-tls")]
                    root_certificate,
                    throttle: self.throttle,
                    http_mail_limit: self.http_mail_limit,
                    chunk_size: if self.chunk_size == 0 {
                        d.chunk_size
                    } else {
                        self.chunk_size
                    },
                    queue_capacity: if self.queue_capacity == 0 {
                        d.queue_capacity
                    } else {
                        self.queue_capacity
                    },
                    drain_timeout: self.drain_timeout,
                    backoff_initial: self.backoff_initial,
                    backoff_max: self.backoff_max,
                    max_attempts: self.max_attempts,
                    smtp_timeout: self.smtp_timeout,
                    reporter: self.reporter.clone(),
                })
            }
            _ => None,
        };
        (settings, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_apply() {
        let (c, errors) = MailConfig::from_vars_lenient([
            ("STACKTRACE_ADMINS", "a@example.com, Bob <b@example.com>"),
            ("STACKTRACE_MANAGERS", "m@example.com"),
            ("STACKTRACE_SMTP_URL", "smtp://u:p%40ss@127.0.0.1:2525"),
            ("STACKTRACE_MAIL_THROTTLE", "60"),
            ("STACKTRACE_MAIL_CHUNK_SIZE", "100"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.admins, ["a@example.com", "Bob <b@example.com>"]);
        assert_eq!(c.throttle, Duration::from_secs(60));
        let (s, errors) = c.settings();
        assert!(errors.is_empty(), "{errors:?}");
        let s = s.unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 2525));
        assert_eq!(s.credentials, Some(("u".into(), "p@ss".into())));
        assert_eq!(s.chunk_size, 100);
    }

    #[test]
    fn bad_values_name_the_setting_and_hide_passwords() {
        let (_, errors) = MailConfig::from_vars_lenient([
            ("STACKTRACE_ADMINS", "not an address"),
            ("STACKTRACE_SMTP_URL", "http://u:hunter2@host"),
            ("STACKTRACE_SMTP_PORT", "99999"),
        ]);
        assert_eq!(errors.len(), 3);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text[0].contains("STACKTRACE_ADMINS") && text[0].contains("not an address"));
        assert!(text[1].contains("STACKTRACE_SMTP_URL") && !text[1].contains("hunter2"));
        assert!(text[2].contains("STACKTRACE_SMTP_PORT"));

        let (s, errors) = MailConfig::default()
            .admin("ops@example.com")
            .admin("nobody")
            .settings();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("admins"));
        assert_eq!(s.unwrap().admins.len(), 1);
    }

    #[test]
    fn tls_modes_need_a_tls_build() {
        let (s, errors) = MailConfig::default()
            .admin("ops@example.com")
            .smtp_url("smtps://mail.example.com")
            .settings();
        if super::super::sender::TLS_AVAILABLE {
            assert!(errors.is_empty(), "{errors:?}");
            let s = s.unwrap();
            assert_eq!((s.tls, s.port), (TlsMode::Wrapper, 465));
        } else {
            assert!(s.is_none());
            assert!(errors[0].to_string().contains("smtp_tls"));
        }
    }

    /// The test CA of the integration tests' TLS SMTP server.
    const TEST_CA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/tests/support/mail/tls/ca.pem"
    );

    #[cfg(feature = "mail-tls")]
    fn with_root(path: &std::path::Path) -> (Option<MailSettings>, Vec<ConfigError>) {
        MailConfig::default()
            .admin("ops@example.com")
            .smtp_tls(TlsMode::Required)
            .smtp_root_certificate(path)
            .settings()
    }

    #[test]
    fn the_root_certificate_comes_from_the_environment() {
        let (c, errors) = MailConfig::from_vars_lenient([
            ("STACKTRACE_SMTP_ROOT_CERT", " /etc/relay/ca.pem "),
            ("STACKTRACE_ADMINS", "ops@example.com"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            c.root_certificate.as_deref(),
            Some(std::path::Path::new("/etc/relay/ca.pem"))
        );
        let (_, errors) = MailConfig::from_vars_lenient([("STACKTRACE_SMTP_ROOT_CERT", " ")]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("STACKTRACE_SMTP_ROOT_CERT"));
    }

    #[test]
    #[cfg(feature = "mail-tls")]
    fn a_root_certificate_is_read_at_install() {
        let (s, errors) = with_root(std::path::Path::new(TEST_CA));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(s.unwrap().root_certificate.is_some());
        // None without the setting.
        let (s, _) = MailConfig::default().admin("ops@example.com").settings();
        assert!(s.unwrap().root_certificate.is_none());
    }

    #[test]
    #[cfg(feature = "mail-tls")]
    fn a_bad_root_certificate_names_the_setting_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let not_pem = dir.path().join("not-pem.pem");
        std::fs::write(&not_pem, "just some text\n").unwrap();
        let bad_base64 = dir.path().join("bad-base64.pem");
        std::fs::write(
            &bad_base64,
            "-----BEGIN CERTIFICATE-----\n%%%% not base64 %%%%\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let not_a_certificate = dir.path().join("not-a-certificate.pem");
        std::fs::write(
            &not_a_certificate,
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for (path, why) in [
            (&missing, "cannot be read"),
            (&not_pem, "no PEM certificate"),
            (&bad_base64, "bad PEM"),
            (&not_a_certificate, "not a usable CA certificate"),
        ] {
            let (s, errors) = with_root(path);
            // No mail rather than mail to a server that cannot be checked as asked.
            assert!(s.is_none(), "{path:?}");
            assert_eq!(errors.len(), 1, "{errors:?}");
            let text = errors[0].to_string();
            assert!(text.contains("smtp_root_certificate"), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(why), "{text}");
        }
    }

    #[test]
    #[cfg(not(feature = "mail-tls"))]
    fn a_root_certificate_needs_a_tls_build() {
        let (s, errors) = MailConfig::default()
            .admin("ops@example.com")
            .smtp_root_certificate(TEST_CA)
            .settings();
        assert!(s.is_none());
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(
            text.contains("smtp_root_certificate") && text.contains("mail-tls"),
            "{text}"
        );
    }

    // Regression: credentials in `STACKTRACE_SMTP_URL` without `?tls=`, or with
    // `tls=opportunistic`, went to a server on another machine readable by anyone on the path.
    #[test]
    fn credentials_to_another_machine_need_tls() {
        let check = |url: &str| {
            let (s, errors) = MailConfig::default()
                .admin("ops@example.com")
                .smtp_url(url)
                .settings();
            (s.is_some(), errors)
        };
        for url in [
            "smtp://ann:pw@mail.example.com:587",
            "smtp://ann:pw@mail.example.com:587?tls=opportunistic",
            "smtp://ann:pw@10.0.0.5",
        ] {
            let (on, errors) = check(url);
            assert!(!on, "{url}: mail stays off");
            assert_eq!(errors.len(), 1, "{url}: {errors:?}");
            let text = errors[0].to_string();
            assert!(
                text.contains("STACKTRACE_SMTP_URL") && text.contains("tls=required"),
                "{text}"
            );
            assert!(!text.contains("pw@"), "{text}");
        }
        for url in [
            "smtp://mail.example.com:587",
            "smtp://ann:pw@127.0.0.1:25",
            "smtp://ann:pw@127.8.9.10:25",
            "smtp://ann:pw@[::1]:25",
            "smtp://ann:pw@LocalHost:25",
        ] {
            let (on, errors) = check(url);
            assert!(on && errors.is_empty(), "{url}: {errors:?}");
        }
        // From the builder's parts: the fix names the TLS variable.
        let (s, errors) = MailConfig::default()
            .admin("ops@example.com")
            .smtp_host("mail.example.com")
            .smtp_credentials("ann", "pw")
            .settings();
        assert!(s.is_none());
        assert!(
            matches!(
                &errors[..],
                [ConfigError::CleartextCredentials {
                    var: "STACKTRACE_SMTP_TLS",
                    ..
                }]
            ),
            "{errors:?}"
        );
        assert!(errors[0]
            .to_string()
            .contains("STACKTRACE_SMTP_TLS=required"));
    }

    #[test]
    fn this_machine_is_loopback_names_and_addresses() {
        for host in [
            "localhost",
            "localhost.",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_this_machine(host), "{host}");
        }
        for host in [
            "mail.example.com",
            "10.0.0.1",
            "::2",
            "localhost.example.com",
            "128.0.0.1",
        ] {
            assert!(!is_this_machine(host), "{host}");
        }
    }

    #[test]
    fn nobody_to_mail_means_no_mail() {
        assert!(MailConfig::default().settings().0.is_none());
    }
}

//! Mail settings from `STACKTRACE_*` environment variables.

use lettre::message::Mailbox;

use super::vars::{parse_list, parse_non_empty, parse_positive, parse_seconds};
use super::{stacktrace_vars, strict};
use crate::error::{ConfigError, POSITIVE};
use crate::notify::mail::config::{MailConfig, TlsMode, ADDRESS, SECONDS};
use crate::notify::mail::url::smtp_url_parts;

/// For [`install`](crate::install()): turns mail on from the `STACKTRACE_*` variables when
/// any of who to mail or where to send is set.
pub(crate) fn mail_from_vars(
    config: &mut crate::Config,
    errors: &mut Vec<ConfigError>,
    vars: &[(String, String)],
) {
    let wanted = vars.iter().any(|(k, _)| {
        matches!(
            k.as_str(),
            "STACKTRACE_ADMINS"
                | "STACKTRACE_MANAGERS"
                | "STACKTRACE_SMTP_URL"
                | "STACKTRACE_SMTP_HOST"
        )
    });
    if wanted {
        let (mail, bad) = MailConfig::from_vars_lenient(vars.iter().cloned());
        config.mail = Some(mail);
        errors.extend(bad);
    }
}

impl MailConfig {
    /// Reads the `STACKTRACE_*` mail variables (see the table above). The first bad value is
    /// the error, naming the variable and the value (a password is never shown).
    ///
    /// ```
    /// std::env::set_var("STACKTRACE_ADMINS", "ops@example.com, dev@example.com");
    /// let mail = stacktrace::mail::MailConfig::from_env().unwrap();
    /// assert_eq!(mail.get_admins(), ["ops@example.com", "dev@example.com"]);
    /// ```
    pub fn from_env() -> Result<MailConfig, ConfigError> {
        strict(Self::from_vars_lenient(stacktrace_vars()))
    }

    /// Every variable that parses is applied; each bad one is reported and its default kept.
    pub(crate) fn from_vars_lenient<I, K, V>(vars: I) -> (MailConfig, Vec<ConfigError>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = MailConfig::default();
        let mut errors = Vec::new();
        for (k, v) in vars {
            let (var, value) = (k.as_ref(), v.as_ref());
            let bad = |expected: &'static str| ConfigError::InvalidVar {
                var: var.to_owned(),
                value: value.to_owned(),
                expected,
            };
            let result = match var {
                "STACKTRACE_ADMINS" | "STACKTRACE_MANAGERS" => {
                    let list = parse_list(value);
                    if list.iter().any(|a| a.parse::<Mailbox>().is_err()) {
                        Err(bad(ADDRESS))
                    } else {
                        if var == "STACKTRACE_ADMINS" {
                            c.admins = list;
                        } else {
                            c.managers = list;
                        }
                        Ok(())
                    }
                }
                "STACKTRACE_SERVER_EMAIL" => match value.trim().parse::<Mailbox>() {
                    Ok(_) => {
                        c.server_email = value.trim().to_owned();
                        Ok(())
                    }
                    Err(_) => Err(bad("an email address such as errors@example.com")),
                },
                "STACKTRACE_SERVER_NAME" => parse_non_empty(value)
                    .map(|n| c.server_name = Some(n.to_owned()))
                    .ok_or(bad("a host name")),
                "STACKTRACE_HTTP_MAIL_LIMIT" => value
                    .trim()
                    .parse::<u32>()
                    .map(|n| c.http_mail_limit = n)
                    .map_err(|_| bad("a whole number of mails a minute (0: no limit)")),
                "STACKTRACE_EMAIL_SUBJECT_PREFIX" => {
                    c.subject_prefix = value.to_owned();
                    Ok(())
                }
                "STACKTRACE_SMTP_URL" => match smtp_url_parts(value) {
                    Ok(_) => {
                        c.smtp_url = Some(value.trim().to_owned());
                        Ok(())
                    }
                    Err(why) => Err(ConfigError::InvalidVar {
                        var: var.to_owned(),
                        value: crate::notify::mail::url::hide_password(value),
                        expected: why,
                    }),
                },
                "STACKTRACE_SMTP_HOST" => parse_non_empty(value)
                    .map(|h| c.host = h.to_owned())
                    .ok_or(bad("a host name or address")),
                "STACKTRACE_SMTP_PORT" => parse_positive::<u16>(value)
                    .map(|p| c.port = Some(p))
                    .ok_or(bad("a port from 1 to 65535")),
                "STACKTRACE_SMTP_USER" => {
                    c.user = Some(value.to_owned());
                    Ok(())
                }
                "STACKTRACE_SMTP_PASSWORD" => {
                    c.password = Some(value.to_owned());
                    Ok(())
                }
                "STACKTRACE_SMTP_TLS" => TlsMode::parse(value)
                    .map(|m| c.tls = m)
                    .ok_or(bad("none, opportunistic, required or wrapper")),
                "STACKTRACE_SMTP_ROOT_CERT" => parse_non_empty(value)
                    .map(|p| c.root_certificate = Some(p.into()))
                    .ok_or(bad("the path of a PEM file")),
                "STACKTRACE_MAIL_THROTTLE" => parse_seconds(value)
                    .map(|d| c.throttle = d)
                    .ok_or(bad(SECONDS)),
                "STACKTRACE_MAIL_DRAIN_TIMEOUT" => parse_seconds(value)
                    .map(|d| c.drain_timeout = d)
                    .ok_or(bad(SECONDS)),
                "STACKTRACE_MAIL_CHUNK_SIZE" => parse_positive(value)
                    .map(|n| c.chunk_size = n)
                    .ok_or(bad(POSITIVE)),
                "STACKTRACE_MAIL_QUEUE_CAPACITY" => parse_positive(value)
                    .map(|n| c.queue_capacity = n)
                    .ok_or(bad(POSITIVE)),
                _ => Ok(()),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        (c, errors)
    }
}

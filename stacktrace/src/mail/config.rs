//! Mail settings: who is mailed, from which address, through which SMTP server, how often.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;

use super::report::Reporter;
use super::url::{smtp_url_parts, SmtpUrl};
use crate::config::ConfigError;

/// How the connection to the SMTP server is secured.
///
/// Modes other than [`TlsMode::None`] need a TLS implementation in the mail crate; without
/// one they are reported at install as a bad `smtp_tls` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain SMTP (a relay on the same machine or network).
    #[default]
    None,
    /// `STARTTLS` when the server offers it, plain otherwise.
    Opportunistic,
    /// `STARTTLS`, and fail when the server does not offer it.
    Required,
    /// TLS from the first byte (SMTPS, usually port 465).
    Wrapper,
}

impl TlsMode {
    /// The name used in `STACKTRACE_SMTP_TLS`: `none`, `opportunistic`, `required`, `wrapper`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Opportunistic => "opportunistic",
            TlsMode::Required => "required",
            TlsMode::Wrapper => "wrapper",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<TlsMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "plain" | "" => Some(TlsMode::None),
            "opportunistic" | "starttls" => Some(TlsMode::Opportunistic),
            "required" | "starttls-required" => Some(TlsMode::Required),
            "wrapper" | "tls" | "smtps" => Some(TlsMode::Wrapper),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            TlsMode::Wrapper => 465,
            TlsMode::Required => 587,
            _ => 25,
        }
    }
}

/// A user's [`Reporter`], compared by identity so that [`crate::Config`] stays comparable.
#[derive(Clone)]
pub(crate) struct ReporterHandle(pub(crate) Arc<dyn Reporter>);

impl fmt::Debug for ReporterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reporter(..)")
    }
}

impl PartialEq for ReporterHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Mail settings (feature `mail`), given to [`crate::Config::mail`].
///
/// Admins are mailed the first event of a new group, a regression, and server errors (`5xx`)
/// of the HTTP layer; managers are mailed broken links. At most one mail goes out per group
/// every `mail_throttle`; the next one says how many occurrences were not mailed.
///
/// ```
/// use std::time::Duration;
/// use stacktrace::mail::{MailConfig, TlsMode};
///
/// let mail = MailConfig::default()
///     .admin("ops@example.com")
///     .manager("Web Team <web@example.com>")
///     .server_email("errors@example.com")
///     .smtp_host("smtp.example.com")
///     .smtp_port(587)
///     .smtp_credentials("errors", "app-password")
///     .smtp_tls(TlsMode::Required)
///     .mail_throttle(Duration::from_secs(300));
/// let config = stacktrace::Config::default().mail(mail);
/// # let _ = config;
/// ```
///
/// | setting | default | environment variable |
/// |---|---|---|
/// | `admins` | none | `STACKTRACE_ADMINS` (comma-separated) |
/// | `managers` | none | `STACKTRACE_MANAGERS` (comma-separated) |
/// | `server_email` | `stacktrace@localhost` | `STACKTRACE_SERVER_EMAIL` |
/// | `email_subject_prefix` | `[stacktrace] ` | `STACKTRACE_EMAIL_SUBJECT_PREFIX` |
/// | SMTP server, all at once | | `STACKTRACE_SMTP_URL` (`smtp://user:pass@host:port?tls=required`, `smtps://...`) |
/// | `smtp_host` | `localhost` | `STACKTRACE_SMTP_HOST` |
/// | `smtp_port` | 25 (587 `required`, 465 `wrapper`) | `STACKTRACE_SMTP_PORT` |
/// | `smtp_credentials` | none | `STACKTRACE_SMTP_USER`, `STACKTRACE_SMTP_PASSWORD` |
/// | `smtp_tls` | `none` | `STACKTRACE_SMTP_TLS` (`none`, `opportunistic`, `required`, `wrapper`) |
/// | `mail_throttle` | 10 minutes | `STACKTRACE_MAIL_THROTTLE` (seconds) |
/// | `chunk_size` (characters) | 5000 | `STACKTRACE_MAIL_CHUNK_SIZE` |
/// | `queue_capacity` (reports) | 100 | `STACKTRACE_MAIL_QUEUE_CAPACITY` |
/// | `drain_timeout` | 5 seconds | `STACKTRACE_MAIL_DRAIN_TIMEOUT` (seconds) |
/// | `retry_backoff` | 1 s doubling to 5 min | (code only) |
/// | `max_attempts` | 12 | (code only) |
/// | `reporter` | [`StandardReporter`](super::StandardReporter) | (code only) |
#[derive(Clone, PartialEq)]
pub struct MailConfig {
    pub(crate) admins: Vec<String>,
    pub(crate) managers: Vec<String>,
    pub(crate) server_email: String,
    pub(crate) subject_prefix: String,
    pub(crate) smtp_url: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    #[cfg_attr(not(feature = "mail-tls"), allow(dead_code))]
    pub(crate) tls: TlsMode,
    pub(crate) throttle: Duration,
    pub(crate) chunk_size: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) drain_timeout: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) smtp_timeout: Duration,
    pub(crate) reporter: Option<ReporterHandle>,
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("admins", &self.admins)
            .field("managers", &self.managers)
            .field("server_email", &self.server_email)
            .field("subject_prefix", &self.subject_prefix)
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(super::url::hide_password),
            )
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field(
                "password",
                &self.password.as_ref().map(|_| crate::PLACEHOLDER),
            )
            .field("tls", &self.tls)
            .field("throttle", &self.throttle)
            .field("chunk_size", &self.chunk_size)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            admins: Vec::new(),
            managers: Vec::new(),
            server_email: "stacktrace@localhost".into(),
            subject_prefix: "[stacktrace] ".into(),
            smtp_url: None,
            host: "localhost".into(),
            port: None,
            user: None,
            password: None,
            tls: TlsMode::None,
            throttle: Duration::from_secs(600),
            chunk_size: 5000,
            queue_capacity: 100,
            drain_timeout: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_attempts: 12,
            smtp_timeout: Duration::from_secs(10),
            reporter: None,
        }
    }
}

const ADDRESS: &str = "email addresses such as ops@example.com or \"Ops <ops@example.com>\"";
const SECONDS: &str = "a whole number of seconds";
const POSITIVE: &str = "a whole number above 0";

/// Settings checked at install, ready for the sender.
#[derive(Clone, Debug)]
pub(crate) struct MailSettings {
    pub(crate) admins: Vec<Mailbox>,
    pub(crate) managers: Vec<Mailbox>,
    pub(crate) from: Mailbox,
    pub(crate) subject_prefix: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) credentials: Option<(String, String)>,
    #[cfg_attr(not(feature = "mail-tls"), allow(dead_code))]
    pub(crate) tls: TlsMode,
    pub(crate) throttle: Duration,
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

/// For [`install`](crate::install): turns mail on from the `STACKTRACE_*` variables when
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

fn list_of(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

impl MailConfig {
    /// Adds an admin: mailed on new groups, regressions and server errors.
    pub fn admin(mut self, address: impl Into<String>) -> Self {
        self.admins.push(address.into());
        self
    }
    /// Replaces the admins.
    pub fn admins<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addresses: I) -> Self {
        self.admins = addresses.into_iter().map(Into::into).collect();
        self
    }
    /// Adds a manager: mailed on broken links.
    pub fn manager(mut self, address: impl Into<String>) -> Self {
        self.managers.push(address.into());
        self
    }
    /// Replaces the managers.
    pub fn managers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, addresses: I) -> Self {
        self.managers = addresses.into_iter().map(Into::into).collect();
        self
    }
    /// The sender address of every mail.
    pub fn server_email(mut self, address: impl Into<String>) -> Self {
        self.server_email = address.into();
        self
    }
    /// Put in front of every subject (default `[stacktrace] `).
    pub fn email_subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }
    /// The SMTP server as one URL: `smtp://[user[:password]@]host[:port][?tls=MODE]`, or
    /// `smtps://...` for TLS from the first byte. Overrides host, port, credentials and TLS.
    pub fn smtp_url(mut self, url: impl Into<String>) -> Self {
        self.smtp_url = Some(url.into());
        self
    }
    /// The SMTP server's host name or address.
    pub fn smtp_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }
    /// The SMTP server's port (default by TLS mode: 25, 587 `required`, 465 `wrapper`).
    pub fn smtp_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
    /// The SMTP login.
    pub fn smtp_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }
    /// How the connection is secured.
    pub fn smtp_tls(mut self, mode: TlsMode) -> Self {
        self.tls = mode;
        self
    }
    /// How long the SMTP client waits on the server before giving up a try (default 10 s).
    pub fn smtp_timeout(mut self, timeout: Duration) -> Self {
        self.smtp_timeout = timeout;
        self
    }
    /// At most one mail per group in this time (default 10 minutes); a regression mails at
    /// once.
    pub fn mail_throttle(mut self, every: Duration) -> Self {
        self.throttle = every;
        self
    }
    /// Reports longer than this many characters are sent in parts (default 5000).
    pub fn chunk_size(mut self, chars: usize) -> Self {
        self.chunk_size = chars;
        self
    }
    /// How many reports may wait for the sender; beyond, new ones are dropped and counted
    /// (default 100).
    pub fn queue_capacity(mut self, reports: usize) -> Self {
        self.queue_capacity = reports;
        self
    }
    /// How long dropping the [`Guard`](crate::Guard) waits for queued mails (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
    /// Wait before retrying a failed send: `initial`, doubling up to `max`.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }
    /// Tries per mail before a temporary failure counts as final (default 12); a permanent
    /// (`5xx`) reply is final at once.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
    /// Renders reports with your own [`Reporter`] instead of the
    /// [`StandardReporter`](super::StandardReporter).
    pub fn reporter<R: Reporter>(mut self, reporter: R) -> Self {
        self.reporter = Some(ReporterHandle(Arc::new(reporter)));
        self
    }

    /// The admins, as given.
    pub fn get_admins(&self) -> &[String] {
        &self.admins
    }
    /// The managers, as given.
    pub fn get_managers(&self) -> &[String] {
        &self.managers
    }
    /// The throttle.
    pub fn get_mail_throttle(&self) -> Duration {
        self.throttle
    }
    /// The chunk size, in characters.
    pub fn get_chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Reads the `STACKTRACE_*` mail variables (see the table above). The first bad value is
    /// the error, naming the variable and the value (a password is never shown).
    ///
    /// ```
    /// std::env::set_var("STACKTRACE_ADMINS", "ops@example.com, dev@example.com");
    /// let mail = stacktrace::mail::MailConfig::from_env().unwrap();
    /// assert_eq!(mail.get_admins(), ["ops@example.com", "dev@example.com"]);
    /// ```
    pub fn from_env() -> Result<MailConfig, ConfigError> {
        let (c, mut errors) = Self::from_vars_lenient(std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("STACKTRACE_")
                .then(|| (k, v.to_string_lossy().into_owned()))
        }));
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors.swap_remove(0))
        }
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
            let secs = |v: &str| v.trim().parse::<u64>().ok().map(Duration::from_secs);
            let result = match var {
                "STACKTRACE_ADMINS" | "STACKTRACE_MANAGERS" => {
                    let list = list_of(value);
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
                        value: super::url::hide_password(value),
                        expected: why,
                    }),
                },
                "STACKTRACE_SMTP_HOST" if !value.trim().is_empty() => {
                    c.host = value.trim().to_owned();
                    Ok(())
                }
                "STACKTRACE_SMTP_HOST" => Err(bad("a host name or address")),
                "STACKTRACE_SMTP_PORT" => match value.trim().parse::<u16>() {
                    Ok(p) if p > 0 => {
                        c.port = Some(p);
                        Ok(())
                    }
                    _ => Err(bad("a port from 1 to 65535")),
                },
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
                "STACKTRACE_MAIL_THROTTLE" => {
                    secs(value).map(|d| c.throttle = d).ok_or(bad(SECONDS))
                }
                "STACKTRACE_MAIL_DRAIN_TIMEOUT" => {
                    secs(value).map(|d| c.drain_timeout = d).ok_or(bad(SECONDS))
                }
                "STACKTRACE_MAIL_CHUNK_SIZE" => value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| c.chunk_size = n)
                    .ok_or(bad(POSITIVE)),
                "STACKTRACE_MAIL_QUEUE_CAPACITY" => value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
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
        if let Err(e) = super::sender::tls_of(&host, tls) {
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
            !matches!(e, ConfigError::InvalidSetting { setting, .. }
                if matches!(*setting, "server_email" | "smtp_url" | "smtp_host" | "smtp_port" | "smtp_tls"))
        });
        let d = MailConfig::default();
        let settings = match from {
            Some(from) if usable && !(admins.is_empty() && managers.is_empty()) => {
                Some(MailSettings {
                    admins,
                    managers,
                    from,
                    subject_prefix: self.subject_prefix.clone(),
                    port: port.unwrap_or(tls.default_port()),
                    host,
                    credentials,
                    tls,
                    throttle: self.throttle,
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

    #[test]
    fn nobody_to_mail_means_no_mail() {
        assert!(MailConfig::default().settings().0.is_none());
    }
}

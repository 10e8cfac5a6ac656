//! Mail settings: who is mailed, from which address, through which SMTP server, how often.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::reporter::Reporter;

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

    pub(super) fn default_port(self) -> u16 {
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
/// | `server_name` (in broken links' subjects) | this machine's host name | `STACKTRACE_SERVER_NAME` |
/// | SMTP server, all at once | | `STACKTRACE_SMTP_URL` (`smtp://user:pass@host:port?tls=required`, `smtps://...`) |
/// | `smtp_host` | `localhost` | `STACKTRACE_SMTP_HOST` |
/// | `smtp_port` | 25 (587 `required`, 465 `wrapper`) | `STACKTRACE_SMTP_PORT` |
/// | `smtp_credentials` | none | `STACKTRACE_SMTP_USER`, `STACKTRACE_SMTP_PASSWORD` |
/// | `smtp_tls` | `none` | `STACKTRACE_SMTP_TLS` (`none`, `opportunistic`, `required`, `wrapper`) |
/// | `smtp_root_certificate` | none (the webpki roots only) | `STACKTRACE_SMTP_ROOT_CERT` (a PEM file) |
/// | `mail_throttle` | 10 minutes | `STACKTRACE_MAIL_THROTTLE` (seconds) |
/// | `http_mail_limit` (a minute, 0 = off) | 10 | `STACKTRACE_HTTP_MAIL_LIMIT` |
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
    pub(crate) server_name: Option<String>,
    pub(crate) smtp_url: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    #[cfg_attr(not(feature = "mail-tls"), allow(dead_code))]
    pub(crate) tls: TlsMode,
    pub(crate) root_certificate: Option<PathBuf>,
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

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("admins", &self.admins)
            .field("managers", &self.managers)
            .field("server_email", &self.server_email)
            .field("subject_prefix", &self.subject_prefix)
            .field("server_name", &self.server_name)
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
            .field("root_certificate", &self.root_certificate)
            .field("throttle", &self.throttle)
            .field("http_mail_limit", &self.http_mail_limit)
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
            server_name: None,
            smtp_url: None,
            host: "localhost".into(),
            port: None,
            user: None,
            password: None,
            tls: TlsMode::None,
            root_certificate: None,
            throttle: Duration::from_secs(600),
            http_mail_limit: 10,
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

pub(crate) const ADDRESS: &str =
    "email addresses such as ops@example.com or \"Ops <ops@example.com>\"";
pub(crate) const SECONDS: &str = "a whole number of seconds";

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
    /// The name of this server in the subjects of broken links' mails, `Broken link on
    /// NAME: /path` (default: this machine's host name). The `Host` a request sent is the
    /// client's to choose and never appears in a subject.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
    /// The SMTP server as one URL: `smtp://[user[:password]@]host[:port][?tls=MODE]`, or
    /// `smtps://...` for TLS from the first byte. Overrides host, port, credentials and TLS.
    /// A URL with credentials for another machine needs `?tls=required` or `smtps://` (see
    /// [`smtp_credentials`](MailConfig::smtp_credentials)).
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
    /// The SMTP login. It goes only over TLS ([`TlsMode::Required`] or
    /// [`TlsMode::Wrapper`]) unless the server is on this machine (`localhost`, 127.0.0.0/8,
    /// `::1`): credentials for another machine with no TLS or [`TlsMode::Opportunistic`]
    /// (whose `STARTTLS` anyone on the path can strip) are reported at install as
    /// [`ConfigError::CleartextCredentials`](crate::ConfigError::CleartextCredentials), and
    /// mail is off.
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
    /// Also trusts the CA certificates of this PEM file for the SMTP server's certificate,
    /// besides the webpki roots: for a relay with a certificate of a private CA. The file is
    /// read at install; an unreadable file, or one without a usable certificate, is reported
    /// as a bad `smtp_root_certificate` and mail is off. Needs the `mail-tls` feature.
    pub fn smtp_root_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificate = Some(path.into());
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
    /// At most this many mails a minute about the HTTP layer's own events (broken links,
    /// its `5xx` events), across groups (default 10; 0: no limit): clients decide how many
    /// requests fail. A report held back is counted in the group's next mail and in
    /// [`MailStats::limited`](super::MailStats::limited).
    pub fn http_mail_limit(mut self, per_minute: u32) -> Self {
        self.http_mail_limit = per_minute;
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

    /// The values of these settings that are secrets, registered at install so that they
    /// are scrubbed from every event: the SMTP password, and the password of the SMTP URL
    /// with the whole URL when it holds one.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.password.iter().cloned());
        if let Some(url) = &self.smtp_url {
            if let Ok(super::url::SmtpUrl {
                credentials: Some((_, password)),
                ..
            }) = super::url::smtp_url_parts(url)
            {
                if !password.is_empty() {
                    out.push(password);
                    out.push(url.trim().to_owned());
                }
            }
        }
        out
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
}

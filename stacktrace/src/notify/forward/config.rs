//! The forwarding settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::dsn::Dsn;
use crate::model::event::Level;

/// Forwarding stored events to a Sentry-compatible server (feature `forward`): Sentry,
/// GlitchTip, Bugsink. The database is the outbox: an event is marked unsent when it is
/// stored, and a background thread sends the unsent ones, oldest first, until the server
/// took them.
///
/// | Setting | Default | Variable |
/// |---|---|---|
/// | `dsn` | none (forwarding off) | `STACKTRACE_DSN` (`SENTRY_DSN` is not read) |
/// | `environment` | none | `STACKTRACE_ENVIRONMENT` |
/// | `min_level` | `error` | `STACKTRACE_FORWARD_LEVEL` |
/// | `connect_timeout` | 5 seconds | `STACKTRACE_FORWARD_CONNECT_TIMEOUT` (seconds) |
/// | `timeout` (one try, all of it) | 30 seconds | `STACKTRACE_FORWARD_TIMEOUT` (seconds) |
/// | `give_up_after` | 7 days | `STACKTRACE_FORWARD_GIVE_UP_AFTER` (seconds) |
/// | `drain_timeout` (at the guard's drop) | 2 seconds | `STACKTRACE_FORWARD_DRAIN_TIMEOUT` (seconds) |
/// | `root_certificate` | none (the webpki roots only) | `STACKTRACE_FORWARD_ROOT_CERT` (a PEM file) |
/// | `retry_backoff` | 1 s doubling to 5 min, with jitter | (code only) |
/// | `refusal_backoff` (401, 403, 404, 407) | 30 s doubling to 30 min, with jitter | (code only) |
///
/// ```
/// let config = stacktrace::Config::default().forward(
///     stacktrace::forward::ForwardConfig::new("https://0123abcd@errors.example.com/3")
///         .unwrap()
///         .environment("production"),
/// );
/// # let _ = config;
/// ```
#[derive(Clone, PartialEq)]
pub struct ForwardConfig {
    pub(crate) dsn: Dsn,
    pub(crate) environment: Option<String>,
    pub(crate) min_level: Level,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) give_up_after: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) root_certificate: Option<PathBuf>,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) refusal_initial: Duration,
    pub(crate) refusal_max: Duration,
}

impl fmt::Debug for ForwardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardConfig")
            .field("dsn", &self.dsn)
            .field("environment", &self.environment)
            .field("min_level", &self.min_level)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("give_up_after", &self.give_up_after)
            .field("drain_timeout", &self.drain_timeout)
            .field("root_certificate", &self.root_certificate)
            .finish_non_exhaustive()
    }
}

impl ForwardConfig {
    /// Forwarding to the server of `dsn`, every other setting at its default. The error
    /// says what is wrong with the DSN, without quoting its key.
    pub fn new(dsn: &str) -> Result<ForwardConfig, &'static str> {
        Ok(ForwardConfig::with_dsn(Dsn::parse(dsn)?))
    }

    pub(crate) fn with_dsn(dsn: Dsn) -> ForwardConfig {
        ForwardConfig {
            dsn,
            environment: None,
            min_level: Level::Error,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            give_up_after: Duration::from_secs(7 * 24 * 3600),
            drain_timeout: Duration::from_secs(2),
            root_certificate: None,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            refusal_initial: Duration::from_secs(30),
            refusal_max: Duration::from_secs(30 * 60),
        }
    }

    /// The server's DSN, its key hidden.
    pub fn dsn(&self) -> String {
        self.dsn.without_key()
    }

    /// The environment events are sent with (`production`, `staging`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The lowest level forwarded (default `error`); lower ones stay local.
    pub fn min_level(mut self, level: Level) -> Self {
        self.min_level = level;
        self
    }

    /// How long connecting may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one try may take, answer included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long an event whose tries fail (network, 5xx, the server refusing us with a
    /// 401, 403, 404 or 407) is retried before it is given up and counted as failed
    /// (default 7 days). A rate limit is waited out, never given up.
    pub fn give_up_after(mut self, age: Duration) -> Self {
        self.give_up_after = age;
        self
    }

    /// How long dropping the [`Guard`](crate::Guard) sends what is left in the outbox, on
    /// the dropping thread (default 2 s); what is left after goes at the next start.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// A PEM file of CA certificates trusted besides the webpki roots, for a server
    /// behind a private CA.
    pub fn root_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificate = Some(path.into());
        self
    }

    /// The wait after the first failed try, doubled after each one up to `max`; each wait
    /// is drawn between half of it and all of it.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// The wait after the server first refuses us as a whole (401, 403, 404 or 407: a
    /// rotated key, a load balancer in maintenance), doubled after each refusal up to `max`,
    /// each drawn between half of it and all of it. The events are kept meanwhile, until
    /// `give_up_after`.
    pub fn refusal_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.refusal_initial = initial;
        self.refusal_max = max.max(initial);
        self
    }

    /// The values of these settings that are secrets: the DSN's key.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        vec![self.dsn.public_key().to_owned()]
    }
}

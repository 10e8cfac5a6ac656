//! The settings, their defaults, and the builder.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The spool file's size at most when none is set: 64 MiB.
const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// The disk budget when none is set: 512 MiB.
const DEFAULT_DISK_BUDGET_BYTES: u64 = 512 << 20;

/// Settings of the tracker. Start from [`Config::default()`] or [`Config::from_env()`] and
/// change what you need:
///
/// ```
/// let config = stacktrace::Config::default()
///     .db_path("var/errors.db")
///     .sample_rate(0.5)
///     .rate_limit(120)
///     .redact_field("ssn");
/// assert_eq!(config.get_rate_limit(), 120);
/// ```
///
/// | setting | default | environment variable |
/// |---|---|---|
/// | `enabled` | `true` | `STACKTRACE_ENABLED` |
/// | `sample_rate` | `1.0` | `STACKTRACE_SAMPLE_RATE` |
/// | `rate_limit` (events a minute, 0 = off) | `0` | `STACKTRACE_RATE_LIMIT` |
/// | `capture_headers` | `true` | `STACKTRACE_CAPTURE_HEADERS` |
/// | `capture_body` | `false` | `STACKTRACE_CAPTURE_BODY` |
/// | `max_payload_bytes` | `65536` | `STACKTRACE_MAX_PAYLOAD_BYTES` |
/// | `redact_fields` (added to the built-in names) | none | `STACKTRACE_REDACT_FIELDS` (comma-separated) |
/// | `redact_headers` (added to the built-in names) | none | `STACKTRACE_REDACT_HEADERS` (comma-separated) |
/// | `allow_field` (built-in names taken out) | none | (code only) |
/// | `user_field` | `username` | `STACKTRACE_USER_FIELD` |
/// | `db_path` | `stacktrace.db` | `STACKTRACE_DB` |
/// | `queue_capacity` | `1024` | `STACKTRACE_QUEUE_CAPACITY` |
/// | `exit_flush_timeout` (0 = off) | 2 s | `STACKTRACE_EXIT_FLUSH_MS` (milliseconds) |
/// | `symbols_idle` (debug info kept loaded after the last resolution) | 60 s | `STACKTRACE_SYMBOLS_IDLE_MS` (milliseconds) |
/// | `cache_bytes` (sled's page cache) | `16777216` (16 MiB) | `STACKTRACE_CACHE_BYTES` |
/// | `spool_max_bytes` (the spool file, oldest events dropped beyond) | `67108864` (64 MiB) | `STACKTRACE_SPOOL_MAX_BYTES` |
/// | `disk_budget_bytes` (the database's estimated size; the oldest events of the largest groups removed beyond, 0 = none) | `536870912` (512 MiB) | `STACKTRACE_DISK_BUDGET_BYTES` |
/// | `release` | empty; `install!()`: the crate's `name@version` | `STACKTRACE_RELEASE` |
/// | `capture_env` | `true` | `STACKTRACE_CAPTURE_ENV` |
/// | `source_context` (lines around the app's frames) | `true` | `STACKTRACE_SOURCE_CONTEXT` |
/// | `max_breadcrumbs` (per thread or task) | `100` | `STACKTRACE_MAX_BREADCRUMBS` |
/// | `rate_limit_per_user` (a minute, 0 = off) | `0` | `STACKTRACE_RATE_LIMIT_PER_USER` |
/// | `rate_limit_per_client` (a minute, 0 = off) | `0` | `STACKTRACE_RATE_LIMIT_PER_CLIENT` |
/// | `ignore_error_types` | none | `STACKTRACE_IGNORE_ERROR_TYPES` (comma-separated) |
/// | `ignore_paths` (regexes) | none | `STACKTRACE_IGNORE_PATHS` (one a line) |
/// | `ignore_messages` (regexes) | none | `STACKTRACE_IGNORE_MESSAGES` (one a line) |
/// | `in_app_include` (crate or module paths) | none | `STACKTRACE_IN_APP_INCLUDE` (comma-separated) |
/// | `in_app_exclude` (crate or module paths) | none | `STACKTRACE_IN_APP_EXCLUDE` (comma-separated) |
/// | `crash_handler` (Linux) | `true` | `STACKTRACE_CRASH_HANDLER` |
/// | `unclean_exit_level` (Linux; `None` = no event) | `Some(Warning)` | `STACKTRACE_UNCLEAN_EXIT_LEVEL` (a level or `off`) |
/// | `before_store` | none | (code only) |
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub(crate) enabled: bool,
    pub(crate) sample_rate: f64,
    pub(crate) rate_limit: u32,
    pub(crate) capture_headers: bool,
    pub(crate) capture_body: bool,
    pub(crate) max_payload_bytes: usize,
    pub(crate) redact_fields: Vec<String>,
    pub(crate) redact_headers: Vec<String>,
    pub(crate) allowed_fields: Vec<String>,
    pub(crate) user_field: String,
    pub(crate) db_path: PathBuf,
    pub(crate) queue_capacity: usize,
    pub(crate) exit_flush_timeout: Duration,
    pub(crate) symbols_idle: Duration,
    pub(crate) cache_bytes: u64,
    pub(crate) spool_max_bytes: u64,
    pub(crate) disk_budget_bytes: u64,
    pub(crate) release: String,
    pub(crate) capture_env: bool,
    pub(crate) source_context: bool,
    pub(crate) crash_handler: bool,
    pub(crate) unclean_exit_level: Option<crate::model::event::Level>,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) rate_limit_per_user: u32,
    pub(crate) rate_limit_per_client: u32,
    pub(crate) ignore_error_types: Vec<String>,
    pub(crate) ignore_paths: Vec<String>,
    pub(crate) ignore_messages: Vec<String>,
    pub(crate) before_store: Option<crate::pipeline::filter::BeforeStore>,
    pub(crate) in_app_include: Vec<String>,
    pub(crate) in_app_exclude: Vec<String>,
    /// The program that installed the tracker, when the `install!` macros named it.
    pub(crate) app: Option<crate::__private::AppInfo>,
    #[cfg(feature = "mail")]
    pub(crate) mail: Option<crate::notify::mail::MailConfig>,
    #[cfg(feature = "forward")]
    pub(crate) forward: Option<crate::notify::forward::ForwardConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            sample_rate: 1.0,
            rate_limit: 0,
            capture_headers: true,
            capture_body: false,
            max_payload_bytes: 65536,
            redact_fields: Vec::new(),
            redact_headers: Vec::new(),
            allowed_fields: Vec::new(),
            user_field: "username".into(),
            db_path: PathBuf::from("stacktrace.db"),
            queue_capacity: 1024,
            exit_flush_timeout: Duration::from_secs(2),
            symbols_idle: Duration::from_secs(60),
            cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            disk_budget_bytes: DEFAULT_DISK_BUDGET_BYTES,
            release: String::new(),
            capture_env: true,
            source_context: true,
            crash_handler: true,
            unclean_exit_level: Some(crate::model::event::Level::Warning),
            max_breadcrumbs: 100,
            rate_limit_per_user: 0,
            rate_limit_per_client: 0,
            ignore_error_types: Vec::new(),
            ignore_paths: Vec::new(),
            ignore_messages: Vec::new(),
            before_store: None,
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            app: None,
            #[cfg(feature = "mail")]
            mail: None,
            #[cfg(feature = "forward")]
            forward: None,
        }
    }
}

impl Config {
    /// Turns capture on or off.
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }
    /// Keeps this fraction of events, from 0.0 (none) to 1.0 (all).
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate;
        self
    }
    /// Keeps at most this many events a minute; 0 turns the limit off.
    pub fn rate_limit(mut self, per_minute: u32) -> Self {
        self.rate_limit = per_minute;
        self
    }
    /// Whether request headers are stored (HTTP integration).
    pub fn capture_headers(mut self, on: bool) -> Self {
        self.capture_headers = on;
        self
    }
    /// Whether request bodies are stored (HTTP integration).
    pub fn capture_body(mut self, on: bool) -> Self {
        self.capture_body = on;
        self
    }
    /// The most bytes of a body or payload kept.
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }
    /// Adds names of fields stored as `**********`, to the built-in ones (`password`,
    /// `secret`, `api_key`, `token`, `auth`, `session`, ...: see the README's "What is
    /// redacted"), which stay on. A name is found anywhere in a field's name, in any case
    /// and across `_`, `-` and camelCase (`ssn` also hides `user_SSN` and `userSsn`). An
    /// empty name is an error at install.
    pub fn redact_fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.redact_fields.extend(names.into_iter().map(Into::into));
        self
    }
    /// Adds one field name to those stored as `**********` (see
    /// [`redact_fields`](Config::redact_fields)).
    pub fn redact_field(mut self, name: impl Into<String>) -> Self {
        self.redact_fields.push(name.into());
        self
    }
    /// Adds names of headers stored whole as `**********` (found anywhere in a header's
    /// name), to the built-in ones: every header named like a secret field
    /// (`Authorization`, `Cookie`, `X-Api-Key`, ...) stays hidden. An empty name is an error
    /// at install.
    pub fn redact_headers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.redact_headers
            .extend(names.into_iter().map(Into::into));
        self
    }
    /// **Shows values the built-in list would hide.** A built-in name (`session`, `auth`)
    /// is taken out of the list; any other name is never hidden as a whole name, although a
    /// listed name is part of it (`author`, which holds `auth`). Values named so are then
    /// stored, mailed and forwarded in clear: allow only names whose values you know hold no
    /// secret. Values found by their form (`Bearer ...`, a URL's password, a card number)
    /// stay hidden.
    ///
    /// ```
    /// let config = stacktrace::Config::default().allow_field("author");
    /// assert_eq!(config.get_allowed_fields(), ["author"]);
    /// ```
    pub fn allow_field(mut self, name: impl Into<String>) -> Self {
        self.allowed_fields.push(name.into());
        self
    }
    /// Which attribute of the user is shown and indexed.
    pub fn user_field(mut self, name: impl Into<String>) -> Self {
        self.user_field = name.into();
        self
    }
    /// Where the database lives.
    pub fn db_path(mut self, path: impl AsRef<Path>) -> Self {
        self.db_path = path.as_ref().to_path_buf();
        self
    }
    /// How many events may wait for the background writer; beyond, new ones are dropped and
    /// counted.
    pub fn queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events;
        self
    }
    /// How long `std::process::exit` waits for queued events to be stored: `exit` runs no
    /// destructor, so the guard cannot flush them. Zero stores nothing at exit that is not
    /// stored already. Panics are kept whatever this says (they are journaled at once).
    pub fn exit_flush_timeout(mut self, timeout: Duration) -> Self {
        self.exit_flush_timeout = timeout;
        self
    }
    /// How long the writer keeps the debug info it loaded to resolve panics' frames after it
    /// last resolved one: tens of megabytes, loaded again (a hundred milliseconds or more)
    /// by the next panic after it was dropped.
    pub fn symbols_idle(mut self, idle: Duration) -> Self {
        self.symbols_idle = idle;
        self
    }
    /// How much memory sled's page cache may hold, about: what the database costs its host
    /// program beyond the events being written. Smaller is slower to read old events.
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }
    /// How large the spool file may grow while another process holds the database (see
    /// [`Guard::spool_path`](crate::Guard::spool_path)); beyond, the oldest spooled events
    /// are dropped and counted (`spool_full`), so that a program kept from its database for
    /// long keeps the newest events in bounded space.
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool_max_bytes = bytes;
        self
    }
    /// How large the database may grow, as [`Store::estimated_size`](crate::Store::estimated_size)
    /// counts it; 0 is no bound. Beyond, the background worker removes the oldest events of
    /// the groups with the most stored events until the estimate is at 90% of the budget,
    /// keeping each group's first and latest event; groups keep their counts and first and
    /// last seen. What was removed is counted in the database (`stacktrace stats`).
    pub fn disk_budget_bytes(mut self, bytes: u64) -> Self {
        self.disk_budget_bytes = bytes;
        self
    }
    /// The program's version, stored in every event's context and naming its sessions (see
    /// [`Store::releases`](crate::Store::releases)). Unset, `install!()` takes the calling
    /// crate's `name@version` from cargo. At most 200 bytes, no control characters: another
    /// is refused as a configuration error and no release is set.
    pub fn release(mut self, version: impl Into<String>) -> Self {
        self.release = version.into();
        self
    }
    /// Whether environment variables are stored (secret-looking ones as `**********`).
    pub fn capture_env(mut self, on: bool) -> Self {
        self.capture_env = on;
        self
    }

    /// Whether the app's frames keep five source lines before and after their line, read
    /// from the source file when it is where the program runs (redacted like every text).
    pub fn source_context(mut self, on: bool) -> Self {
        self.source_context = on;
        self
    }

    /// Whether fatal signals (a segfault, an abort, a stack overflow) are written down by a
    /// signal handler and reported at the next start (Linux; see the README's "Crashes").
    /// On other platforms there is no handler, and this does nothing.
    pub fn crash_handler(mut self, on: bool) -> Self {
        self.crash_handler = on;
        self
    }

    /// The level of the event for a process that ended without a clean shutdown and
    /// without a crash record (killed by SIGKILL or the OOM killer), reported at the next
    /// start; `None`: no event (Linux; on other platforms no record is kept, and this does
    /// nothing).
    pub fn unclean_exit_level(mut self, level: Option<crate::model::event::Level>) -> Self {
        self.unclean_exit_level = level;
        self
    }

    /// How many breadcrumbs each thread or task keeps for its next event (0 = none).
    pub fn max_breadcrumbs(mut self, n: usize) -> Self {
        self.max_breadcrumbs = n;
        self
    }
    /// Keeps at most this many events a minute of one user (0 = no limit), so that one
    /// noisy user cannot use up the budget of the others. Checked before the global limit.
    pub fn rate_limit_per_user(mut self, per_minute: u32) -> Self {
        self.rate_limit_per_user = per_minute;
        self
    }
    /// Keeps at most this many events a minute of one client address (0 = no limit).
    pub fn rate_limit_per_client(mut self, per_minute: u32) -> Self {
        self.rate_limit_per_client = per_minute;
        self
    }
    /// Drops errors of this type, named by full path or by its last segments
    /// (`ParseIntError`, `num::ParseIntError`).
    pub fn ignore_error_type(mut self, name: impl Into<String>) -> Self {
        self.ignore_error_types.push(name.into());
        self
    }
    /// Drops events of requests whose path matches this regular expression.
    pub fn ignore_path(mut self, pattern: impl Into<String>) -> Self {
        self.ignore_paths.push(pattern.into());
        self
    }
    /// Drops events whose message matches this regular expression.
    pub fn ignore_message(mut self, pattern: impl Into<String>) -> Self {
        self.ignore_messages.push(pattern.into());
        self
    }
    /// Counts the frames of this crate or module path as the application's (`billing`,
    /// `billing::core`; whole segments: `billing` is not `billing_core`), as the crate that
    /// calls [`install!`](crate::install!) is. For the app's other crates without debug
    /// info, and its code in a registry or a vendored directory.
    ///
    /// A function is judged by the crates it names: `<billing::Cart as core::fmt::Display>::fmt`
    /// by `billing` and `core`, in-app if either is.
    pub fn in_app_include(mut self, path: impl Into<String>) -> Self {
        self.in_app_include.push(path.into());
        self
    }
    /// Never counts the frames of this crate or module path as the application's, even in
    /// the app's own crates (generated code, a vendored library). Wins over
    /// [`Config::in_app_include`].
    pub fn in_app_exclude(mut self, path: impl Into<String>) -> Self {
        self.in_app_exclude.push(path.into());
        self
    }
    /// A hook that sees every event, already redacted, just before it is stored: it may
    /// change it and returns `false` to drop it (counted as `filtered`).
    ///
    /// It runs on the background writer, and for a panic on a thread of the crate's while
    /// the panic hook waits for it (a panic on the panicking thread itself would abort the
    /// process), so it should be quick and cannot rely on the panicking thread's
    /// thread-locals. When it panics, the event is kept as it was before the call and
    /// stderr gets one line naming `before_store` (once per process): a broken filter
    /// never costs the program its events, nor its life.
    /// Since it sees panics with their frames, setting one makes the panic hook resolve
    /// symbols itself, which the first time in a process means reading debug info.
    ///
    /// ```
    /// let config = stacktrace::Config::default().before_store(|event| {
    ///     event.extra.remove("session");
    ///     !event.message.contains("health check")
    /// });
    /// # let _ = config;
    /// ```
    pub fn before_store<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut crate::CrashEvent) -> bool + Send + Sync + 'static,
    {
        self.before_store = Some(crate::pipeline::filter::BeforeStore(std::sync::Arc::new(
            hook,
        )));
        self
    }

    /// Whether capture is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }
    /// The fraction of events kept.
    pub fn get_sample_rate(&self) -> f64 {
        self.sample_rate
    }
    /// Events kept a minute (0 = no limit).
    pub fn get_rate_limit(&self) -> u32 {
        self.rate_limit
    }
    /// Whether request headers are stored.
    pub fn get_capture_headers(&self) -> bool {
        self.capture_headers
    }
    /// Whether request bodies are stored.
    pub fn get_capture_body(&self) -> bool {
        self.capture_body
    }
    /// The most bytes of a body or payload kept.
    pub fn get_max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }
    /// Field names stored as `**********` beyond the built-in ones.
    pub fn get_redact_fields(&self) -> &[String] {
        &self.redact_fields
    }
    /// Header names stored as `**********` beyond the built-in ones.
    pub fn get_redact_headers(&self) -> &[String] {
        &self.redact_headers
    }
    /// Names taken out of the built-in list of secret names ([`allow_field`](Config::allow_field)).
    pub fn get_allowed_fields(&self) -> &[String] {
        &self.allowed_fields
    }
    /// The user attribute shown and indexed.
    pub fn get_user_field(&self) -> &str {
        &self.user_field
    }
    /// How long `std::process::exit` waits for queued events.
    pub fn get_exit_flush_timeout(&self) -> Duration {
        self.exit_flush_timeout
    }
    /// How long loaded debug info is kept after its last use.
    pub fn get_symbols_idle(&self) -> Duration {
        self.symbols_idle
    }
    /// Whether the fatal-signal handler is installed.
    pub fn get_crash_handler(&self) -> bool {
        self.crash_handler
    }
    /// The level of an unclean end's event, `None` when none is made.
    pub fn get_unclean_exit_level(&self) -> Option<crate::model::event::Level> {
        self.unclean_exit_level
    }
    /// The database path.
    pub fn get_db_path(&self) -> &Path {
        &self.db_path
    }
    /// Paths whose frames count as the application's.
    pub fn get_in_app_include(&self) -> &[String] {
        &self.in_app_include
    }
    /// Paths whose frames never count as the application's.
    pub fn get_in_app_exclude(&self) -> &[String] {
        &self.in_app_exclude
    }
    /// The most memory sled's page cache may hold, about.
    pub fn get_cache_bytes(&self) -> u64 {
        self.cache_bytes
    }
    /// The size the spool file may reach before its oldest events are dropped.
    pub fn get_spool_max_bytes(&self) -> u64 {
        self.spool_max_bytes
    }
    /// The database's disk budget in bytes; 0 when there is none.
    pub fn get_disk_budget_bytes(&self) -> u64 {
        self.disk_budget_bytes
    }
}

/// Mail (feature `mail`).
#[cfg(feature = "mail")]
impl Config {
    /// Mails admins and managers through SMTP; see [`MailConfig`](crate::mail::MailConfig).
    /// Bad addresses or a bad SMTP URL are reported by [`Guard::errors`](crate::Guard::errors)
    /// at install.
    ///
    /// ```
    /// let config = stacktrace::Config::default().mail(
    ///     stacktrace::mail::MailConfig::default()
    ///         .admin("ops@example.com")
    ///         .smtp_url("smtp://127.0.0.1:2525"),
    /// );
    /// # let _ = config;
    /// ```
    pub fn mail(mut self, mail: crate::notify::mail::MailConfig) -> Self {
        self.mail = Some(mail);
        self
    }
}

/// Forwarding (feature `forward`).
#[cfg(feature = "forward")]
impl Config {
    /// Forwards stored events to a Sentry-compatible server; see
    /// [`ForwardConfig`](crate::forward::ForwardConfig).
    pub fn forward(mut self, forward: crate::notify::forward::ForwardConfig) -> Self {
        self.forward = Some(forward);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_django_stacktrace_defaults() {
        let c = Config::default();
        assert!(c.enabled);
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.rate_limit, 0);
        assert!(c.capture_headers && !c.capture_body);
        assert_eq!(c.max_payload_bytes, 65536);
        assert!(c.redact_fields.is_empty() && c.redact_headers.is_empty());
        assert!(c.allowed_fields.is_empty());
        assert_eq!(c.user_field, "username");
        assert_eq!(c.db_path, PathBuf::from("stacktrace.db"));
    }
}

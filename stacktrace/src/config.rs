//! Settings, with django-stacktrace's keys and defaults, from code or from the environment.

use std::fmt;
use std::path::{Path, PathBuf};

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
/// | `redact_fields` | `password`, `token` | `STACKTRACE_REDACT_FIELDS` (comma-separated) |
/// | `redact_headers` | `authorization`, `cookie` | `STACKTRACE_REDACT_HEADERS` |
/// | `user_field` | `username` | `STACKTRACE_USER_FIELD` |
/// | `db_path` | `stacktrace.db` | `STACKTRACE_DB` |
/// | `queue_capacity` | `1024` | `STACKTRACE_QUEUE_CAPACITY` |
/// | `release` | empty | `STACKTRACE_RELEASE` |
/// | `capture_env` | `true` | `STACKTRACE_CAPTURE_ENV` |
/// | `max_breadcrumbs` (per thread or task) | `100` | `STACKTRACE_MAX_BREADCRUMBS` |
/// | `rate_limit_per_user` (a minute, 0 = off) | `0` | `STACKTRACE_RATE_LIMIT_PER_USER` |
/// | `rate_limit_per_client` (a minute, 0 = off) | `0` | `STACKTRACE_RATE_LIMIT_PER_CLIENT` |
/// | `ignore_error_types` | none | `STACKTRACE_IGNORE_ERROR_TYPES` (comma-separated) |
/// | `ignore_paths` (regexes) | none | `STACKTRACE_IGNORE_PATHS` (one a line) |
/// | `ignore_messages` (regexes) | none | `STACKTRACE_IGNORE_MESSAGES` (one a line) |
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
    pub(crate) user_field: String,
    pub(crate) db_path: PathBuf,
    pub(crate) queue_capacity: usize,
    pub(crate) release: String,
    pub(crate) capture_env: bool,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) rate_limit_per_user: u32,
    pub(crate) rate_limit_per_client: u32,
    pub(crate) ignore_error_types: Vec<String>,
    pub(crate) ignore_paths: Vec<String>,
    pub(crate) ignore_messages: Vec<String>,
    pub(crate) before_store: Option<crate::filter::BeforeStore>,
    #[cfg(feature = "mail")]
    pub(crate) mail: Option<crate::mail::MailConfig>,
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
            redact_fields: vec!["password".into(), "token".into()],
            redact_headers: vec!["authorization".into(), "cookie".into()],
            user_field: "username".into(),
            db_path: PathBuf::from("stacktrace.db"),
            queue_capacity: 1024,
            release: String::new(),
            capture_env: true,
            max_breadcrumbs: 100,
            rate_limit_per_user: 0,
            rate_limit_per_client: 0,
            ignore_error_types: Vec::new(),
            ignore_paths: Vec::new(),
            ignore_messages: Vec::new(),
            before_store: None,
            #[cfg(feature = "mail")]
            mail: None,
        }
    }
}

/// A setting has a value it cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value of the wrong kind or out of range.
    InvalidVar {
        /// The variable (`STACKTRACE_SAMPLE_RATE`).
        var: String,
        /// Its value, as found.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A setting given in code is out of range.
    InvalidSetting {
        /// The setting (`sample_rate`).
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidVar {
                var,
                value,
                expected,
            } => write!(f, "invalid {var}={value:?}: expected {expected}"),
            ConfigError::InvalidSetting {
                setting,
                value,
                expected,
            } => write!(
                f,
                "invalid setting {setting} = {value}: expected {expected}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

const BOOL: &str = "true or false (also 1/0, yes/no, on/off)";
const RATE: &str = "a number from 0.0 to 1.0";
const COUNT: &str = "a whole number from 0";
const POSITIVE: &str = "a whole number from 1";

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_rate(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
}

fn parse_lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

impl Config {
    /// The defaults, overridden by the `STACKTRACE_*` environment variables that are set.
    ///
    /// The first bad value is an error naming the variable and the value:
    ///
    /// ```
    /// let err = stacktrace::Config::from_vars([("STACKTRACE_SAMPLE_RATE", "1.5")]).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"invalid STACKTRACE_SAMPLE_RATE="1.5": expected a number from 0.0 to 1.0"#
    /// );
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("STACKTRACE_")
                .then(|| (k, v.to_string_lossy().into_owned()))
        }))
    }

    /// Like [`Config::from_env`], over the given variables instead of the process
    /// environment.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (config, mut errors) = Self::from_vars_lenient(vars);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Every variable that parses is applied; each bad one is reported and its default kept.
    pub(crate) fn from_vars_lenient<I, K, V>(vars: I) -> (Config, Vec<ConfigError>)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = Config::default();
        let mut errors = Vec::new();
        for (k, v) in vars {
            let (var, value) = (k.as_ref(), v.as_ref());
            let bad = |expected| ConfigError::InvalidVar {
                var: var.to_owned(),
                value: value.to_owned(),
                expected,
            };
            let result = match var {
                "STACKTRACE_ENABLED" => parse_bool(value).map(|b| c.enabled = b).ok_or(bad(BOOL)),
                "STACKTRACE_SAMPLE_RATE" => parse_rate(value)
                    .map(|r| c.sample_rate = r)
                    .ok_or(bad(RATE)),
                "STACKTRACE_RATE_LIMIT" => value
                    .trim()
                    .parse()
                    .map(|n| c.rate_limit = n)
                    .map_err(|_| bad(COUNT)),
                "STACKTRACE_CAPTURE_HEADERS" => parse_bool(value)
                    .map(|b| c.capture_headers = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_CAPTURE_BODY" => parse_bool(value)
                    .map(|b| c.capture_body = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_CAPTURE_ENV" => parse_bool(value)
                    .map(|b| c.capture_env = b)
                    .ok_or(bad(BOOL)),
                "STACKTRACE_MAX_PAYLOAD_BYTES" => value
                    .trim()
                    .parse()
                    .map(|n| c.max_payload_bytes = n)
                    .map_err(|_| bad(COUNT)),
                "STACKTRACE_QUEUE_CAPACITY" => value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| c.queue_capacity = n)
                    .ok_or(bad(POSITIVE)),
                "STACKTRACE_REDACT_FIELDS" => {
                    c.redact_fields = parse_list(value);
                    Ok(())
                }
                "STACKTRACE_REDACT_HEADERS" => {
                    c.redact_headers = parse_list(value);
                    Ok(())
                }
                "STACKTRACE_USER_FIELD" => {
                    c.user_field = value.trim().to_owned();
                    Ok(())
                }
                "STACKTRACE_DB" if !value.trim().is_empty() => {
                    c.db_path = PathBuf::from(value);
                    Ok(())
                }
                "STACKTRACE_DB" => Err(bad("a path")),
                "STACKTRACE_MAX_BREADCRUMBS" => value
                    .trim()
                    .parse()
                    .map(|n| c.max_breadcrumbs = n)
                    .map_err(|_| bad(COUNT)),
                "STACKTRACE_RATE_LIMIT_PER_USER" => value
                    .trim()
                    .parse()
                    .map(|n| c.rate_limit_per_user = n)
                    .map_err(|_| bad(COUNT)),
                "STACKTRACE_RATE_LIMIT_PER_CLIENT" => value
                    .trim()
                    .parse()
                    .map(|n| c.rate_limit_per_client = n)
                    .map_err(|_| bad(COUNT)),
                "STACKTRACE_IGNORE_ERROR_TYPES" => {
                    c.ignore_error_types = parse_list(value);
                    Ok(())
                }
                "STACKTRACE_IGNORE_PATHS" | "STACKTRACE_IGNORE_MESSAGES" => {
                    let patterns = parse_lines(value);
                    match patterns.iter().find(|p| regex::Regex::new(p).is_err()) {
                        Some(_) => Err(bad("regular expressions, one a line")),
                        None => {
                            if var == "STACKTRACE_IGNORE_PATHS" {
                                c.ignore_paths = patterns;
                            } else {
                                c.ignore_messages = patterns;
                            }
                            Ok(())
                        }
                    }
                }
                "STACKTRACE_RELEASE" => {
                    c.release = value.to_owned();
                    Ok(())
                }
                // Variables of integrations are read by them.
                _ => Ok(()),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        (c, errors)
    }

    /// Checks settings given in code. Each bad one is reported and reset to its default.
    pub(crate) fn validated(mut self) -> (Config, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let d = Config::default();
        if !(0.0..=1.0).contains(&self.sample_rate) {
            errors.push(ConfigError::InvalidSetting {
                setting: "sample_rate",
                value: self.sample_rate.to_string(),
                expected: RATE,
            });
            self.sample_rate = d.sample_rate;
        }
        if self.queue_capacity == 0 {
            errors.push(ConfigError::InvalidSetting {
                setting: "queue_capacity",
                value: "0".into(),
                expected: POSITIVE,
            });
            self.queue_capacity = d.queue_capacity;
        }
        if self.db_path.as_os_str().is_empty() {
            errors.push(ConfigError::InvalidSetting {
                setting: "db_path",
                value: "\"\"".into(),
                expected: "a path",
            });
            self.db_path = d.db_path;
        }
        (self, errors)
    }

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
    /// Replaces the names of fields stored as `**********` (matched case-insensitively).
    pub fn redact_fields<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.redact_fields = names.into_iter().map(Into::into).collect();
        self
    }
    /// Adds one field name to those stored as `**********`.
    pub fn redact_field(mut self, name: impl Into<String>) -> Self {
        self.redact_fields.push(name.into());
        self
    }
    /// Replaces the names of headers stored as `**********`.
    pub fn redact_headers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.redact_headers = names.into_iter().map(Into::into).collect();
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
    /// The program's version, stored in every event's context.
    pub fn release(mut self, version: impl Into<String>) -> Self {
        self.release = version.into();
        self
    }
    /// Whether environment variables are stored (secret-looking ones as `**********`).
    pub fn capture_env(mut self, on: bool) -> Self {
        self.capture_env = on;
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
    /// A hook that sees every event, already redacted, just before it is stored: it may
    /// change it and returns `false` to drop it (counted as `filtered`).
    ///
    /// It runs on the background writer, and in the panic hook for panics: it must not
    /// panic there (a panic inside a panic hook aborts the process) and should be quick.
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
        self.before_store = Some(crate::filter::BeforeStore(std::sync::Arc::new(hook)));
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
    /// Field names stored as `**********`.
    pub fn get_redact_fields(&self) -> &[String] {
        &self.redact_fields
    }
    /// Header names stored as `**********`.
    pub fn get_redact_headers(&self) -> &[String] {
        &self.redact_headers
    }
    /// The user attribute shown and indexed.
    pub fn get_user_field(&self) -> &str {
        &self.user_field
    }
    /// The database path.
    pub fn get_db_path(&self) -> &Path {
        &self.db_path
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
    pub fn mail(mut self, mail: crate::mail::MailConfig) -> Self {
        self.mail = Some(mail);
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
        assert_eq!(c.redact_fields, ["password", "token"]);
        assert_eq!(c.redact_headers, ["authorization", "cookie"]);
        assert_eq!(c.user_field, "username");
        assert_eq!(c.db_path, PathBuf::from("stacktrace.db"));
    }

    #[test]
    fn env_values_apply() {
        let c = Config::from_vars([
            ("STACKTRACE_ENABLED", "off"),
            ("STACKTRACE_SAMPLE_RATE", "0.25"),
            ("STACKTRACE_RATE_LIMIT", "5"),
            ("STACKTRACE_DB", "x/y.db"),
            ("STACKTRACE_REDACT_FIELDS", "pin, ssn,,"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert!(!c.enabled);
        assert_eq!(c.sample_rate, 0.25);
        assert_eq!(c.rate_limit, 5);
        assert_eq!(c.db_path, PathBuf::from("x/y.db"));
        assert_eq!(c.redact_fields, ["pin", "ssn"]);
    }

    #[test]
    fn bad_env_values_name_variable_and_value_and_keep_defaults() {
        for (var, value) in [
            ("STACKTRACE_SAMPLE_RATE", "1.5"),
            ("STACKTRACE_SAMPLE_RATE", "abc"),
            ("STACKTRACE_SAMPLE_RATE", "NaN"),
            ("STACKTRACE_RATE_LIMIT", "-1"),
            ("STACKTRACE_ENABLED", "maybe"),
            ("STACKTRACE_QUEUE_CAPACITY", "0"),
            ("STACKTRACE_DB", " "),
        ] {
            let (c, errors) = Config::from_vars_lenient([(var, value)]);
            assert_eq!(c, Config::default(), "{var}={value}");
            assert_eq!(errors.len(), 1);
            let text = errors[0].to_string();
            assert!(text.contains(var) && text.contains(value), "{text}");
        }
    }

    #[test]
    fn bad_code_settings_are_reset_and_reported() {
        let (c, errors) = Config::default()
            .sample_rate(2.0)
            .queue_capacity(0)
            .validated();
        assert_eq!(c.sample_rate, 1.0);
        assert_eq!(c.queue_capacity, 1024);
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().contains("sample_rate = 2"));
    }
}

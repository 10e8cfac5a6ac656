//! Which requests are tracked, and what their entries keep.

use regex::Regex;

use crate::error::ConfigError;

/// Settings of request tracking, given to
/// [`StacktraceLayer::tracking`](crate::http::StacktraceLayer::tracking).
///
/// ```
/// use stacktrace::http::Tracking;
///
/// let tracking = Tracking::new()
///     .exclude(r"^/health$")?
///     .exclude_body(r"^/upload")?
///     .max_body_length(2048)
///     .max_entries(50_000)
///     .max_bytes(32 << 20);
/// # Ok::<(), stacktrace::ConfigError>(())
/// ```
///
/// | setting | default |
/// |---|---|
/// | `exclude` (path regexes: not tracked) | none |
/// | `exclude_body` (path regexes: bodies not kept) | none |
/// | `max_body_length` (bytes of each body kept) | `4096` |
/// | `max_entries` (oldest trimmed beyond it) | `100000` |
/// | `max_bytes` (of keys and values; oldest trimmed beyond it) | 64 MiB |
#[derive(Clone, Debug)]
pub struct Tracking {
    exclude: Vec<Regex>,
    exclude_body: Vec<Regex>,
    max_body_length: usize,
    max_entries: u64,
    max_bytes: u64,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            exclude: Vec::new(),
            exclude_body: Vec::new(),
            max_body_length: 4096,
            max_entries: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

pub(crate) fn regex_setting(setting: &'static str, pattern: &str) -> Result<Regex, ConfigError> {
    Regex::new(pattern).map_err(|_| ConfigError::InvalidSetting {
        setting,
        value: format!("{pattern:?}"),
        expected: "a regular expression",
    })
}

impl Tracking {
    /// The defaults.
    pub fn new() -> Self {
        Tracking::default()
    }
    /// Requests whose path matches `pattern` are not tracked.
    pub fn exclude(mut self, pattern: &str) -> Result<Self, ConfigError> {
        self.exclude
            .push(regex_setting("tracking_exclude", pattern)?);
        Ok(self)
    }
    /// Requests whose path matches `pattern` are tracked without their bodies.
    pub fn exclude_body(mut self, pattern: &str) -> Result<Self, ConfigError> {
        self.exclude_body
            .push(regex_setting("tracking_exclude_body", pattern)?);
        Ok(self)
    }
    /// The most bytes of each request and response body kept; 0 keeps none.
    pub fn max_body_length(mut self, bytes: usize) -> Self {
        self.max_body_length = bytes;
        self
    }
    /// The most entries kept; the oldest go first.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries.max(1);
        self
    }
    /// The most bytes of keys and values kept; the oldest go first.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// What the entry of a request to `path` needs of these settings; `None` when the path
    /// is not tracked. Taken when the request comes, so that the request holds no share of
    /// the settings.
    pub(crate) fn plan(&self, path: &str) -> Option<Plan> {
        (!self.excludes(path)).then(|| Plan {
            caps: (self.max_entries, self.max_bytes),
            body_limit: self.body_limit(path),
        })
    }

    pub(crate) fn excludes(&self, path: &str) -> bool {
        self.exclude.iter().any(|r| r.is_match(path))
    }

    /// The body bytes kept for a request to `path`.
    pub(crate) fn body_limit(&self, path: &str) -> usize {
        if self.exclude_body.iter().any(|r| r.is_match(path)) {
            0
        } else {
            self.max_body_length
        }
    }
}

/// What a tracked request's entry needs of the tracking settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// `max_entries` and `max_bytes`.
    pub(super) caps: (u64, u64),
    /// The body bytes kept, in each direction.
    pub(super) body_limit: usize,
}

impl Plan {
    pub(crate) fn body_limit(&self) -> usize {
        self.body_limit
    }
}

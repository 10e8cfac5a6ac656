//! A builder for manual events with tags, extra data and a user.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use serde::Serialize;
use serde_json::Value;

use crate::api::capture::{error_type_name, sources_of};
use crate::capture::pending::PendingEvent;
use crate::model::event::{EventId, Level, Location};
use crate::runtime::admission::{admitted, location_of, submit};

/// A manual event with more than [`capture_error`](crate::capture_error) or
/// [`capture_message`](crate::capture_message) take: tags, extra data, a user, a request
/// path. Fields of the extra data named in `redact_fields` are stored as `**********`.
///
/// ```no_run
/// # let _guard = stacktrace::install();
/// let err = "x".parse::<u32>().unwrap_err();
/// stacktrace::Report::error(&err)
///     .tag("tenant", "acme")
///     .extra("input", "x")
///     .extra("password", "hunter2") // stored as **********
///     .user("ann")
///     .capture();
/// ```
#[derive(Debug)]
#[must_use = "a report is stored by `capture`"]
pub struct Report {
    level: Level,
    logger: String,
    error_type: String,
    message: String,
    sources: Vec<String>,
    location: Location,
    backtrace: bool,
    tags: BTreeMap<String, String>,
    extra: BTreeMap<String, Value>,
    user: String,
    request_path: String,
}

impl Report {
    /// A report of an error: type, message and `source()` chain, with a backtrace.
    #[track_caller]
    pub fn error<E: StdError + ?Sized>(error: &E) -> Report {
        let mut r = Report::new(Level::Error, location_of(std::panic::Location::caller()));
        r.logger = "error".into();
        r.error_type = error_type_name(error);
        r.message = error.to_string();
        r.sources = sources_of(error);
        r.backtrace = true;
        r
    }

    /// A report of a message at a level, without a backtrace.
    #[track_caller]
    pub fn message(message: impl Into<String>, level: Level) -> Report {
        let mut r = Report::new(level, location_of(std::panic::Location::caller()));
        r.message = message.into();
        r
    }

    fn new(level: Level, location: Location) -> Report {
        Report {
            level,
            logger: "message".into(),
            error_type: String::new(),
            message: String::new(),
            sources: Vec::new(),
            location,
            backtrace: false,
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            user: String::new(),
            request_path: String::new(),
        }
    }

    /// Sets the level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Names the source of the event (`error`, `message`, or your own: `billing`, ...).
    pub fn logger(mut self, logger: impl Into<String>) -> Self {
        self.logger = logger.into();
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Adds extra data; a value that cannot be serialised is stored as its error message.
    pub fn extra(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value)
            .unwrap_or_else(|e| Value::String(format!("[not serialisable: {e}]")));
        self.extra.insert(key.into(), value);
        self
    }

    /// Sets the user (indexed).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the request path (indexed).
    pub fn request_path(mut self, path: impl Into<String>) -> Self {
        self.request_path = path.into();
        self
    }

    /// Sets where the event happened (by default, where the report was made).
    pub fn at(mut self, location: Location) -> Self {
        self.location = location;
        self
    }

    /// Sets the error type and source chain, for integrations that see an error by parts.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn error_parts(mut self, error_type: String, sources: Vec<String>) -> Self {
        self.error_type = error_type;
        self.sources = sources;
        self
    }

    /// Whether to take a backtrace (on for errors, off for messages).
    pub fn with_backtrace(mut self, on: bool) -> Self {
        self.backtrace = on;
        self
    }

    /// Stores the report: the event's id, or `None` when it was not kept.
    pub fn capture(self) -> Option<EventId> {
        let (rt, now) = admitted()?;
        let mut p = PendingEvent::new(now, self.level, self.logger).with_active_calls();
        p.error_type = self.error_type;
        p.message = self.message;
        p.sources = self.sources;
        p.location = Some(self.location);
        p.tags = self.tags;
        p.extra = self.extra;
        // The request being handled (HTTP layer) already set them; an explicit value wins.
        if !self.user.is_empty() {
            p.user = self.user;
        }
        if !self.request_path.is_empty() {
            p.request_path = self.request_path;
        }
        submit(rt, p, self.backtrace)
    }
}

//! Filters: ignore rules for error types, request paths and messages, checked on the
//! calling thread; and the `before_store` hook, run on the finished (redacted) event.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::capture::pending::PendingEvent;
use crate::error::ConfigError;
use crate::model::event::CrashEvent;

/// A hook that sees every event before it is stored: it may change it (redact a field, add
/// a tag) and returns `false` to drop it. See [`Config::before_store`](crate::Config::before_store).
#[derive(Clone)]
pub struct BeforeStore(pub(crate) Arc<dyn Fn(&mut CrashEvent) -> bool + Send + Sync>);

impl fmt::Debug for BeforeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BeforeStore(..)")
    }
}

impl PartialEq for BeforeStore {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Compiled ignore rules.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    types: Vec<String>,
    paths: Vec<Regex>,
    messages: Vec<Regex>,
    pub(crate) before_store: Option<BeforeStore>,
}

/// Compiles patterns, reporting each bad one by the setting it came from.
pub(crate) fn compile(
    setting: &'static str,
    patterns: &[String],
    errors: &mut Vec<ConfigError>,
) -> Vec<Regex> {
    patterns
        .iter()
        .filter_map(|p| match Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(ConfigError::InvalidSetting {
                    setting,
                    // The regex crate's message spans lines; its last line says what is wrong.
                    value: format!(
                        "{p:?} ({})",
                        e.to_string().lines().last().unwrap_or("invalid").trim()
                    ),
                    expected: "a regular expression",
                });
                None
            }
        })
        .collect()
}

impl Filters {
    pub(crate) fn new(
        types: Vec<String>,
        paths: Vec<Regex>,
        messages: Vec<Regex>,
        before_store: Option<BeforeStore>,
    ) -> Self {
        Filters {
            types,
            paths,
            messages,
            before_store,
        }
    }

    /// Whether an ignore rule matches: the error type by full path or by its last segments
    /// (`ParseIntError` matches `core::num::error::ParseIntError`), the request path or the
    /// message by regular expression.
    pub(crate) fn ignores(&self, p: &PendingEvent) -> bool {
        let type_matches = |t: &String| {
            p.error_type == *t
                || p.error_type
                    .strip_suffix(t.as_str())
                    .is_some_and(|head| head.ends_with("::"))
        };
        (!p.error_type.is_empty() && self.types.iter().any(type_matches))
            || (!p.request_path.is_empty()
                && self.paths.iter().any(|r| r.is_match(&p.request_path)))
            || self.messages.iter().any(|r| r.is_match(&p.message))
    }

    /// Runs the `before_store` hook; `false` drops the event.
    pub(crate) fn keep(&self, event: &mut CrashEvent) -> bool {
        match &self.before_store {
            Some(hook) => (hook.0)(event),
            None => true,
        }
    }
}

//! Filters: ignore rules for error types, request paths and messages, checked on the
//! calling thread; and the `before_store` hook, run on the finished (redacted) event.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::capture::guarded::on_another_thread;
use crate::capture::pending::PendingEvent;
use crate::capture::user_hook::UserHook;
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

    /// Runs the `before_store` hook; `false` drops the event. When the hook panics, the
    /// event is kept as it was before the call: an error tracker that loses the event
    /// because its filter broke would hide the failure it is there to show.
    pub(crate) fn keep(&self, event: &mut CrashEvent) -> bool {
        let Some(hook) = &self.before_store else {
            return true;
        };
        // The hook may have changed the event part-way when it panicked.
        let before = event.clone();
        match BEFORE_STORE.call(|| (hook.0)(event)) {
            Some(keep) => keep,
            None => {
                *event = before;
                true
            }
        }
    }

    /// [`keep`](Self::keep) from the panic hook: there a panic of the hook would abort the
    /// process before anything could catch it, so the hook runs on the thread kept for
    /// such calls while this one waits. When that thread cannot take it, the event is kept
    /// without the hook having seen it, as when the hook panics.
    pub(crate) fn keep_from_panic_hook(&self, event: &mut CrashEvent) -> bool {
        if self.before_store.is_none() {
            return true;
        }
        on_another_thread(|| self.keep(event)).unwrap_or(true)
    }
}

/// The `before_store` hook, as its panics are said.
static BEFORE_STORE: UserHook = UserHook::new("before_store", "the event is kept as it was");

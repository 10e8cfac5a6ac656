//! Reading events back: a query builder answered from the indexes, newest first, in pages.

use std::time::SystemTime;

use super::db::Store;
use super::keys::{self, Field};
use crate::error::QueryError;
use crate::event::{to_us, CrashEvent, EventId, Level};

/// A query over stored events, newest first. Build it with [`Store::query`]:
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = stacktrace::Store::open(dir.path().join("db")).unwrap();
/// let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
/// let page = store
///     .query()
///     .level(stacktrace::Level::Fatal)
///     .since(hour_ago)
///     .text("timeout")
///     .limit(50)
///     .run()?;
/// if let Some(cursor) = page.next {
///     let older = store.query().level(stacktrace::Level::Fatal).after(&cursor).run()?;
/// #   let _ = older;
/// }
/// # Ok::<(), stacktrace::QueryError>(())
/// ```
///
/// One of the indexed fields (fingerprint, user, request path, error type, level) narrows
/// the scan to that field's index; the time range narrows it further. The text filter is
/// checked on the events the rest selects.
#[derive(Clone, Debug)]
#[must_use = "a query does nothing until `run`"]
pub struct Query<'s> {
    store: &'s Store,
    level: Option<Level>,
    error_type: Option<String>,
    request_path: Option<String>,
    user: Option<String>,
    fingerprint: Option<String>,
    since_us: Option<u64>,
    until_us: Option<u64>,
    text: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page of a query's results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// The events, newest first.
    pub events: Vec<CrashEvent>,
    /// Pass to [`Query::after`] for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Events per page when no limit is set.
pub(crate) const DEFAULT_LIMIT: usize = 50;

impl Store {
    /// A query over this store's events.
    pub fn query(&self) -> Query<'_> {
        Query {
            store: self,
            level: None,
            error_type: None,
            request_path: None,
            user: None,
            fingerprint: None,
            since_us: None,
            until_us: None,
            text: None,
            limit: None,
            cursor: None,
        }
    }
}

impl<'s> Query<'s> {
    /// Only events of this level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }
    /// Only events of this error type (`std::io::error::Error`, `panic`).
    pub fn error_type(mut self, t: impl Into<String>) -> Self {
        self.error_type = Some(t.into());
        self
    }
    /// Only events of requests to this path.
    pub fn request_path(mut self, path: impl Into<String>) -> Self {
        self.request_path = Some(path.into());
        self
    }
    /// Only events of this user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    /// Only events of this group.
    pub fn fingerprint(mut self, fp: impl Into<String>) -> Self {
        self.fingerprint = Some(fp.into());
        self
    }
    /// Only events at or after this time.
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since_us = Some(to_us(t));
        self
    }
    /// Only events at or before this time.
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until_us = Some(to_us(t));
        self
    }
    /// Only events at or after this many microseconds since the epoch.
    pub fn since_us(mut self, us: u64) -> Self {
        self.since_us = Some(us);
        self
    }
    /// Only events at or before this many microseconds since the epoch.
    pub fn until_us(mut self, us: u64) -> Self {
        self.until_us = Some(us);
        self
    }
    /// Only events whose message or error type contains this text, in any case.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into().to_lowercase());
        self
    }
    /// At most this many events a page (default 50; at least 1).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n.max(1));
        self
    }
    /// Continues after a previous page: pass its [`Page::next`].
    pub fn after(mut self, cursor: &str) -> Self {
        self.cursor = Some(cursor.to_owned());
        self
    }

    pub(crate) fn limit_or(&self, default: usize) -> usize {
        self.limit.unwrap_or(default)
    }

    fn matches(&self, e: &CrashEvent) -> bool {
        self.level.is_none_or(|l| e.level == l)
            && self.error_type.as_ref().is_none_or(|t| &e.error_type == t)
            && self
                .request_path
                .as_ref()
                .is_none_or(|p| &e.request_path == p)
            && self.user.as_ref().is_none_or(|u| &e.user == u)
            && self
                .fingerprint
                .as_ref()
                .is_none_or(|f| &e.fingerprint == f)
            && self.since_us.is_none_or(|s| e.timestamp_us >= s)
            && self.until_us.is_none_or(|u| e.timestamp_us <= u)
            && self.text.as_ref().is_none_or(|t| {
                e.message.to_lowercase().contains(t.as_str())
                    || e.error_type.to_lowercase().contains(t.as_str())
            })
    }

    /// The narrowest index to scan, if any field of one is set.
    fn index(&self) -> Option<(Field, Vec<u8>)> {
        if let Some(f) = &self.fingerprint {
            return Some((Field::Fingerprint, f.as_bytes().to_vec()));
        }
        if let Some(u) = &self.user {
            return Some((Field::User, u.as_bytes().to_vec()));
        }
        if let Some(p) = &self.request_path {
            return Some((Field::RequestPath, p.as_bytes().to_vec()));
        }
        if let Some(t) = &self.error_type {
            return Some((Field::ErrorType, t.as_bytes().to_vec()));
        }
        self.level.map(|l| (Field::Level, vec![l.as_byte()]))
    }

    /// Calls `visit` with each matching event, newest first, until it returns `false`.
    pub(crate) fn for_each(
        &self,
        mut visit: impl FnMut(CrashEvent) -> bool,
    ) -> Result<(), QueryError> {
        let lower = EventId::floor(self.since_us.unwrap_or(0));
        let mut upper = match self.until_us {
            Some(u) => EventId::floor(u.saturating_add(1)),
            None => EventId(u128::MAX),
        };
        if let (Some(s), Some(u)) = (self.since_us, self.until_us) {
            if s > u {
                return Err(QueryError::BadRange {
                    since_us: s,
                    until_us: u,
                });
            }
        }
        if let Some(c) = &self.cursor {
            let id: EventId = c.parse().map_err(|_| QueryError::BadCursor(c.clone()))?;
            upper = upper.min(id);
        }
        let mut visit_matching = |e: CrashEvent| !self.matches(&e) || visit(e);
        match self.index() {
            Some((field, value)) => {
                let prefix = keys::index_prefix(field, &value);
                let start = keys::index_key(field, &value, lower);
                let end = keys::index_key(field, &value, upper);
                for item in self.store.index.range(start..end).rev() {
                    let (k, _) = item?;
                    let Some(id) = keys::id_of_index_key(&prefix, &k) else {
                        continue;
                    };
                    // An index entry whose event was purged concurrently is skipped.
                    if let Some(e) = self.store.get(id)? {
                        if !visit_matching(e) {
                            break;
                        }
                    }
                }
            }
            None => {
                let range = lower.to_bytes()..upper.to_bytes();
                for item in self.store.events.range(range).rev() {
                    let (k, v) = item?;
                    let e: CrashEvent = keys::decode(&v, || {
                        format!(
                            "events/{}",
                            keys::id_of_event_key(&k)
                                .map(|i| i.to_string())
                                .unwrap_or_default()
                        )
                    })?;
                    if !visit_matching(e) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// One page of matching events, newest first.
    pub fn run(&self) -> Result<Page, QueryError> {
        let limit = self.limit_or(DEFAULT_LIMIT);
        let mut events = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        self.for_each(|e| {
            if events.len() == limit {
                more = true;
                return false;
            }
            events.push(e);
            true
        })?;
        let next = if more {
            events.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { events, next })
    }

    /// Every matching event (up to the limit, when one is set), newest first.
    pub fn all(&self) -> Result<Vec<CrashEvent>, QueryError> {
        let limit = self.limit_or(usize::MAX);
        let mut events = Vec::new();
        self.for_each(|e| {
            events.push(e);
            events.len() < limit
        })?;
        Ok(events)
    }

    /// How many events match (the limit is ignored).
    pub fn count(&self) -> Result<u64, QueryError> {
        let mut n = 0;
        self.for_each(|_| {
            n += 1;
            true
        })?;
        Ok(n)
    }
}

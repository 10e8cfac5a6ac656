//! Reading events back: a query builder answered from the indexes, newest first, in pages.

use std::time::SystemTime;

use crate::error::QueryError;
use crate::model::event::{CrashEvent, EventId, Level};
use crate::model::time::to_us;
use crate::store::db::Store;
use crate::store::events::blocks::EventReader;
use crate::store::index::postings::{self, MAX_WORD, OVERFLOW};
use crate::store::keys::Field;

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
/// One of the indexed fields (fingerprint, user, request path, error type, level) or the
/// text narrows the scan to that field's index; the time range narrows it further. Every
/// filter is then checked on the events the index selects.
///
/// The text is found anywhere in the message or error type, in any case: `"declin"`
/// finds "Card declined". Its longest word is looked up in the index of words.
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

/// Index values whose events a query reads, merged.
type IndexValues = Vec<(Field, Vec<u8>)>;

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
    /// Only events at or before this time (both ends of the range are inclusive, as in
    /// [`TrackingQuery::until`](crate::TrackingQuery::until)).
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

    /// The index values to read (their events merged), narrowest first: a fingerprint, a
    /// user, the text's words, a request path, an error type, a level; `None` to scan.
    fn index(&self) -> Result<Option<IndexValues>, QueryError> {
        if let Some(f) = &self.fingerprint {
            return Ok(Some(vec![(Field::Fingerprint, f.as_bytes().to_vec())]));
        }
        if let Some(u) = &self.user {
            return Ok(Some(vec![(Field::User, u.as_bytes().to_vec())]));
        }
        if let Some(words) = self.text_index()? {
            return Ok(Some(words));
        }
        if let Some(p) = &self.request_path {
            return Ok(Some(vec![(Field::RequestPath, p.as_bytes().to_vec())]));
        }
        if let Some(t) = &self.error_type {
            return Ok(Some(vec![(Field::ErrorType, t.as_bytes().to_vec())]));
        }
        Ok(self.level.map(|l| vec![(Field::Level, vec![l.as_byte()])]))
    }

    /// The indexed words holding the text's longest word, and the events whose words are
    /// not all indexed; `None` when the text has no word the index can answer for.
    fn text_index(&self) -> Result<Option<IndexValues>, QueryError> {
        /// More matching words than this read faster as a scan.
        const MAX_MATCHING_WORDS: usize = 256;
        let Some(text) = &self.text else {
            return Ok(None);
        };
        let Some(needle) = postings::words_of(text).max_by_key(|w| w.chars().count()) else {
            return Ok(None);
        };
        if needle.chars().count() > MAX_WORD {
            return Ok(None);
        }
        let words = self.store.postings.words_containing(&needle)?;
        if words.len() > MAX_MATCHING_WORDS {
            return Ok(None);
        }
        Ok(Some(
            words
                .into_iter()
                .chain([OVERFLOW.to_owned()])
                .map(|w| (Field::Word, w.into_bytes()))
                .collect(),
        ))
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
        match self.index()? {
            Some(values) => {
                let ids = self.store.postings.descending_any(&values, lower, upper);
                let mut reader = EventReader::new(self.store);
                for id in ids {
                    // An index entry whose event was removed is skipped.
                    if let Some(e) = reader.get(id?)? {
                        if !visit_matching(e) {
                            break;
                        }
                    }
                }
            }
            None => {
                let mut go_on = true;
                self.store.visit_events(lower..upper, true, |block, i| {
                    go_on = visit_matching(block.event(i)?);
                    Ok(go_on)
                })?;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::store::{Interval, Window};

    fn event(t: u64, level: Level, user: &str, message: &str, error_type: &str) -> CrashEvent {
        let mut e: CrashEvent = serde_json::from_value(serde_json::json!({
            "id": "00000000000000000000000000000000",
            "timestamp_us": t,
            "level": level,
            "logger": "test",
            "error_type": error_type,
            "message": message,
            "fingerprint": format!("fp-{}", t % 3),
            "user": user,
            "context": {"os": "", "arch": "", "hostname": "", "program": "",
                        "program_version": "", "thread_id": "", "pid": 1},
        }))
        .unwrap();
        e.id = EventId::new(t);
        e
    }

    fn ids(events: &[CrashEvent]) -> Vec<EventId> {
        events.iter().map(|e| e.id).collect()
    }

    /// What a query should return: every stored event it matches, newest first.
    fn model(stored: &[CrashEvent], q: &Query<'_>) -> Vec<EventId> {
        let mut want: Vec<EventId> = stored
            .iter()
            .filter(|e| q.matches(e))
            .map(|e| e.id)
            .collect();
        want.sort_by_key(|id| std::cmp::Reverse(*id));
        want
    }

    /// Words of messages; the last two are not in the index of words (too long, an id).
    const WORDS: [&str; 10] = [
        "Card",
        "declined",
        "ÄRGER",
        "timeout",
        "order-1042",
        "x",
        "séance",
        "a::b",
        "Supercalifragilisticexpialidociousandthensomemoreletters",
        "3f2b9c1e8d7a6b5c",
    ];

    const NEEDLES: [&str; 14] = [
        "card",
        "DECLIN",
        "ärger",
        "order-10",
        "1042",
        "x",
        "ance",
        "a::b",
        ":",
        "zzz",
        "d d",
        "docious",
        "thensomemore",
        "e8d7a6",
    ];

    fn message() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                0..WORDS.len(),
                prop::sample::select(vec![" ", ", ", "", "_"]),
            ),
            0..6,
        )
        .prop_map(|parts| {
            parts
                .into_iter()
                .map(|(w, sep)| format!("{}{sep}", WORDS[w]))
                .collect()
        })
    }

    fn queries<'s>(s: &'s Store, needle: &str) -> Vec<Query<'s>> {
        vec![
            s.query(),
            s.query().level(Level::Warning),
            s.query().user("ann"),
            s.query().user("bob").level(Level::Fatal),
            s.query().text(needle),
            s.query().text(needle).level(Level::Error),
            s.query().text(needle).since_us(100).until_us(300),
            s.query().fingerprint("fp-1").since_us(50),
        ]
    }

    fn all_pages(q: &Query<'_>) -> Vec<EventId> {
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page_q = q.clone().limit(7);
            if let Some(c) = &cursor {
                page_q = page_q.after(c);
            }
            let page = page_q.run().unwrap();
            paged.extend(ids(&page.events));
            match page.next {
                Some(n) => cursor = Some(n),
                None => return paged,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Queries answered from the indexes (fields, words, time bounds, in batches of any
        /// size, stored out of order, after retention) return exactly what a scan filtered
        /// by the same rules returns.
        #[test]
        fn indexed_queries_agree_with_a_scan(
            specs in prop::collection::vec(
                (1u64..400, 0usize..3, 0usize..3, message(), any::<bool>()),
                1..120,
            ),
            batch in 1usize..40,
            purge_at in 0u64..400,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path().join("db")).unwrap();
            let levels = [Level::Error, Level::Warning, Level::Fatal];
            let users = ["ann", "bob", ""];
            let mut stored: Vec<CrashEvent> = specs
                .iter()
                .map(|(t, l, u, m, typed)| {
                    event(*t, levels[*l], users[*u], m, if *typed { "app::PayError" } else { "" })
                })
                .collect();
            for chunk in stored.chunks(batch) {
                store.insert_batch(chunk).unwrap();
            }
            for needle in NEEDLES {
                for q in queries(&store, needle) {
                    let got = ids(&q.all().unwrap());
                    prop_assert_eq!(&got, &model(&stored, &q), "{:?}", q);
                    prop_assert_eq!(all_pages(&q), got);
                }
            }
            store.purge_before(crate::model::time::from_us(purge_at)).unwrap();
            stored.retain(|e| e.timestamp_us >= purge_at);
            for needle in NEEDLES {
                for q in queries(&store, needle) {
                    prop_assert_eq!(ids(&q.all().unwrap()), model(&stored, &q), "{:?}", q);
                }
            }
            // The group's trend counts its events left, none of the removed ones.
            let trend = store
                .group_trend("fp-1", Window::ending_at_us(Interval::Hour, 1, 0))
                .unwrap();
            let left = stored.iter().filter(|e| e.fingerprint == "fp-1").count() as u64;
            prop_assert_eq!(trend.counts.iter().sum::<u64>(), left);
        }
    }

    #[test]
    fn a_word_too_long_to_index_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let long = format!("token{}", "7".repeat(MAX_WORD));
        store
            .insert_batch(&[
                event(1, Level::Error, "", &format!("bad {long}"), ""),
                event(2, Level::Error, "", "bad input", ""),
            ])
            .unwrap();
        assert_eq!(store.query().text("n777").count().unwrap(), 1);
        assert_eq!(store.query().text(&long).count().unwrap(), 1);
        assert_eq!(store.query().text("bad").count().unwrap(), 2);
    }

    /// Neighbours in a batch that share some values and not others are each indexed under
    /// their own: a repeated message with another error type, one text as two fields.
    #[test]
    fn neighbours_sharing_some_values_are_indexed_under_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let mut events = vec![
            event(1, Level::Error, "ann", "card declined", ""),
            event(2, Level::Error, "ann", "card declined", "app::PayError"),
            event(3, Level::Warning, "bob", "card declined", "app::PayError"),
            event(4, Level::Warning, "ann", "card declined", "app::PayError"),
        ];
        events[3].request_path = "ann".into();
        store.insert_batch(&events).unwrap();
        let count = |q: Query<'_>| q.all().unwrap().len();
        assert_eq!(count(store.query().text("payerror")), 3);
        assert_eq!(count(store.query().text("declined")), 4);
        assert_eq!(count(store.query().error_type("app::PayError")), 3);
        assert_eq!(count(store.query().user("ann")), 3);
        assert_eq!(count(store.query().request_path("ann")), 1);
        assert_eq!(count(store.query().user("bob")), 1);
        assert_eq!(count(store.query().level(Level::Warning)), 2);
        assert_eq!(count(store.query().level(Level::Warning).user("ann")), 1);
    }

    #[test]
    fn a_database_with_the_earlier_index_layout_is_reindexed_on_open() {
        use crate::store::keys;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let e = event(5, Level::Warning, "ann", "card declined", "app::PayError");
        {
            let db = sled::open(&path).unwrap();
            let events = db.open_tree(keys::EVENTS).unwrap();
            events.insert(e.id.to_bytes(), keys::encode(&e)).unwrap();
            events.insert([9u8; 16], &b"\x01{not json"[..]).unwrap();
            let old = db.open_tree(keys::OLD_INDEX).unwrap();
            old.insert(b"u-ann-something", &[] as &[u8]).unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(ids(&store.query().user("ann").all().unwrap()), [e.id]);
        assert_eq!(ids(&store.query().text("DECLINED").all().unwrap()), [e.id]);
        assert_eq!(store.query().level(Level::Warning).count().unwrap(), 1);
        assert!(!store
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == keys::OLD_INDEX.as_bytes()));
    }
}

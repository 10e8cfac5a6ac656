//! Request tracking, as flask-tracking does it: every request with its status and execution
//! time, built and written by threads of their own behind a bounded queue, so the request
//! never waits on the database and a burst that outruns them drops entries (counted) rather
//! than memory. Entries are stored many to a block (see the store's tracking tree).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use once_cell::sync::OnceCell;
use regex::Regex;
use serde_json::Value;

use super::body::CapturedFrames;
use super::context::{lock, redact_headers, stored_body, user_index, HeaderParts, RequestState};
use super::cut::{capped_header, cut_body};
use super::redact::{Redaction, SensitiveBody};
use crate::config::ConfigError;
use crate::credentials::redact_credentials;
use crate::event::EventId;
use crate::install::{runtime, store};
use crate::redact::Secrets;
use crate::store::{EntryParts, Fnv, TrackingLog};

/// Settings of request tracking, given to
/// [`StacktraceLayer::tracking`](super::StacktraceLayer::tracking).
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
/// | setting | default | flask-tracking |
/// |---|---|---|
/// | `exclude` (path regexes: not tracked) | none | `EXCLUDE` |
/// | `exclude_body` (path regexes: bodies not kept) | none | `EXCLUDE_BODY` |
/// | `max_body_length` (bytes of each body kept) | `4096` | `MAX_BODY_LENGTH` |
/// | `max_entries` | `100000` | capped collection |
/// | `max_bytes` (of keys and values) | 64 MiB | capped collection |
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
    caps: (u64, u64),
    /// The body bytes kept, in each direction.
    body_limit: usize,
}

impl Plan {
    pub(crate) fn body_limit(&self) -> usize {
        self.body_limit
    }
}

/// A response being sent: what its tracking entry needs once the body ends.
#[derive(Debug)]
struct Following {
    state: Arc<RequestState>,
    /// `max_entries` and `max_bytes` of the settings.
    caps: (u64, u64),
    status: u16,
    duration_us: u64,
    body_limit: usize,
    response: CapturedFrames,
    response_type: Option<http::HeaderValue>,
}

/// Follows a response body and queues the tracking entry when the body ends or is dropped.
#[derive(Debug)]
pub(crate) struct Tracker(Option<Following>);

impl Tracker {
    pub(crate) fn new(
        plan: Plan,
        state: Arc<RequestState>,
        status: u16,
        response_type: Option<http::HeaderValue>,
    ) -> Tracker {
        Tracker(Some(Following {
            duration_us: u64::try_from(state.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            state,
            caps: plan.caps,
            status,
            body_limit: plan.body_limit,
            response: CapturedFrames::new(plan.body_limit),
            response_type,
        }))
    }

    pub(crate) fn data(&mut self, data: &Bytes) {
        if let Some(f) = &mut self.0 {
            f.response.push(data);
        }
    }

    pub(crate) fn finish(mut self) {
        self.send();
    }

    fn send(&mut self) {
        if let Some(f) = self.0.take() {
            match queue() {
                Some(q) => q.push(&f),
                None => {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.send();
    }
}

/// Bytes of finished requests waiting for the tracking thread at most, in the inbox of one
/// thread; beyond, new ones are dropped and counted.
const INBOX_BYTES: usize = 8 << 20;
/// How long the tracking thread lets requests gather between two looks at the inboxes.
const GATHER: Duration = Duration::from_millis(10);
/// Empty looks before the tracking thread sleeps until a request wakes it.
const IDLE_LOOKS: u32 = 10;
/// How long an idle tracking thread sleeps unless woken.
const LONG_SLEEP: Duration = Duration::from_millis(250);
/// The capacity an inbox keeps between looks; a larger one (after a burst) is given back.
const INBOX_KEPT: usize = 1 << 20;

/// Finished requests, each copied as one record of bytes into its thread's inbox: queueing
/// a request allocates nothing and keeps nothing of it alive (its headers share the
/// connection's read buffer, which would otherwise be held until the entry is built). Each
/// thread that serves requests has an inbox of its own, so that threads queueing at once
/// do not pass one lock and one buffer between their cores; the tracking thread takes
/// everything queued in one swap per inbox.
#[derive(Debug)]
struct Queue {
    /// Every inbox, registered by its thread when it first queues.
    inboxes: Mutex<Vec<Arc<Mutex<Inbox>>>>,
    /// Set while the tracking thread sleeps until woken.
    sleeping: AtomicBool,
    thread: OnceCell<std::thread::Thread>,
    /// Flushes asked for since the start.
    flushes_asked: AtomicU64,
    /// Flushes done: every request queued before the one asked last was stored first.
    flushes_done: Mutex<u64>,
    flushed_cv: Condvar,
}

#[derive(Debug, Default)]
struct Inbox {
    bytes: Vec<u8>,
}

static QUEUE: OnceCell<Queue> = OnceCell::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// A thread's inbox with the queue it is registered in.
type MyInbox = (*const Queue, Arc<Mutex<Inbox>>);

thread_local! {
    /// This thread's inbox, once it has queued a request.
    static INBOX: std::cell::RefCell<Option<MyInbox>> = const { std::cell::RefCell::new(None) };
}

impl Queue {
    fn new() -> Queue {
        Queue {
            inboxes: Mutex::new(Vec::new()),
            sleeping: AtomicBool::new(false),
            thread: OnceCell::new(),
            flushes_asked: AtomicU64::new(0),
            flushes_done: Mutex::new(0),
            flushed_cv: Condvar::new(),
        }
    }
}

/// The tracking thread's queue, started with the first entry once the database is open.
fn queue() -> Option<&'static Queue> {
    if let Some(q) = QUEUE.get() {
        return Some(q);
    }
    store()?;
    let q = QUEUE.get_or_init(Queue::new);
    q.thread
        .get_or_try_init(|| {
            std::thread::Builder::new()
                .name("stacktrace-tracking".into())
                .spawn(move || run(q))
                .map(|h| h.thread().clone())
        })
        .ok()?;
    Some(q)
}

/// Calls `use_it` with the record of a finished request; what the body and the handler
/// added stays locked meanwhile, so that the record can borrow it.
fn with_record<R>(f: &Following, use_it: impl FnOnce(&Record<'_>) -> R) -> R {
    let state = &f.state;
    let shared = lock(&state.shared);
    // Values set by the handler, as JSON (rare).
    let user = shared
        .user
        .as_ref()
        .map(|u| serde_json::to_vec(u).unwrap_or_default())
        .unwrap_or_default();
    let data = if shared.data.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&shared.data).unwrap_or_default()
    };
    let sensitive = shared.sensitive.clone();
    let body = (f.body_limit > 0).then_some(&shared.body);
    let record = Record {
        started_us: state.started_us,
        duration_us: f.duration_us,
        status: f.status,
        caps: f.caps,
        body_limit: f.body_limit,
        method: state.method.as_str(),
        path: state.path(),
        query: state.head.query(),
        client_addr: state.client_addr.as_deref(),
        headers: Headers {
            count: state.head.header_count(),
            bytes: state.head.header_bytes(),
        },
        request_body: body.as_ref().map(|b| (&b.bytes[..], b.seen)),
        response_body: (f.response.bytes(), f.response.seen()),
        response_type: f.response_type.as_ref().map(|v| v.as_bytes()),
        user: &user,
        sensitive,
        data: &data,
    };
    use_it(&record)
}

impl Queue {
    /// Queues a finished request in this thread's inbox, or counts it dropped when the
    /// inbox is full.
    fn push(&self, f: &Following) {
        let queued = INBOX.try_with(|mine| {
            let mut mine = mine.borrow_mut();
            match &*mine {
                Some((queue, inbox)) if std::ptr::eq(*queue, self) => self.push_to(inbox, f),
                // The first request of this thread (or one for another queue, in tests).
                _ => {
                    let inbox = self.new_inbox();
                    self.push_to(&inbox, f);
                    *mine = Some((self as *const Queue, inbox));
                }
            }
        });
        // A thread being torn down queues through an inbox of its own for this once.
        if queued.is_err() {
            self.push_to(&self.new_inbox(), f);
        }
    }

    /// A new inbox, registered for the tracking thread to take from.
    fn new_inbox(&self) -> Arc<Mutex<Inbox>> {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        lock(&self.inboxes).push(inbox.clone());
        inbox
    }

    fn push_to(&self, inbox: &Mutex<Inbox>, f: &Following) {
        with_record(f, |record| {
            let len = record.len();
            {
                let mut inbox = lock(inbox);
                if inbox.bytes.len() + len > INBOX_BYTES {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                inbox.bytes.reserve(len);
                record.write(&mut inbox.bytes);
            }
            self.wake_if_sleeping();
        });
    }

    fn wake_if_sleeping(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// Whether every inbox is empty.
    fn all_empty(&self) -> bool {
        lock(&self.inboxes)
            .iter()
            .all(|inbox| lock(inbox).bytes.is_empty())
    }

    /// Swaps every inbox that holds something for a spare buffer, into `taken`; forgets
    /// the empty inboxes of threads that have ended.
    fn take_all(&self, taken: &mut Vec<Vec<u8>>, spares: &mut Vec<Vec<u8>>) {
        let mut inboxes = lock(&self.inboxes);
        inboxes.retain(|inbox| Arc::strong_count(inbox) > 1 || !lock(inbox).bytes.is_empty());
        for inbox in inboxes.iter() {
            let mut inbox = lock(inbox);
            if !inbox.bytes.is_empty() {
                let spare = spares.pop().unwrap_or_default();
                taken.push(std::mem::replace(&mut inbox.bytes, spare));
            }
        }
    }
}

/// Tracking entries dropped since the program started: the queue was full, or no database
/// was open.
pub fn tracking_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits until every tracking entry queued before the call is stored and the database
/// flushed (at most `timeout`); says whether it finished. Entries are queued when a
/// response body ends.
///
/// ```no_run
/// stacktrace::http::flush_tracking(std::time::Duration::from_secs(5));
/// ```
pub fn flush_tracking(timeout: Duration) -> bool {
    let Some(q) = QUEUE.get() else {
        return true;
    };
    let deadline = std::time::Instant::now() + timeout;
    // Asked after everything this caller saw queued: the tracking thread reads the count
    // before it takes the inboxes, so the take that answers it holds all of that.
    let target = q.flushes_asked.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(t) = q.thread.get() {
        t.unpark();
    }
    let mut done = lock(&q.flushes_done);
    while *done < target {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        done = q
            .flushed_cv
            .wait_timeout(done, left)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    true
}

/// The tracking thread: takes everything queued at once, builds the entries (redacted,
/// encoded) and stores them. It looks at its inbox every `GATHER` while requests come and
/// only sleeps until woken once they have stopped for a while, so under load no request
/// pays for waking it; requests that come while it writes wait in the inbox.
fn run(q: &'static Queue) {
    let Some(store) = store() else { return };
    let mut log = match TrackingLog::open(store) {
        Ok(log) => Some(log),
        Err(e) => {
            crate::hook::say(&format!("stacktrace: request tracking is off: {e}"));
            None
        }
    };
    let mut reported = false;
    let mut spares: Vec<Vec<u8>> = Vec::new();
    let mut taken: Vec<Vec<u8>> = Vec::new();
    // The records of a take in id order: the id, the buffer, where the record starts.
    let mut order: Vec<(u128, usize, usize)> = Vec::new();
    let mut idle = 0;
    let mut flushes_done = 0;
    loop {
        let asked = q.flushes_asked.load(Ordering::SeqCst);
        let flush = asked > flushes_done;
        q.take_all(&mut taken, &mut spares);
        if taken.is_empty() && !flush {
            idle += 1;
            if idle < IDLE_LOOKS {
                std::thread::park_timeout(GATHER);
            } else {
                q.sleeping.store(true, Ordering::SeqCst);
                // A request queued or a flush asked before the flag was set is seen here.
                let empty = q.all_empty() && q.flushes_asked.load(Ordering::SeqCst) == flushes_done;
                if empty {
                    std::thread::park_timeout(LONG_SLEEP);
                }
                q.sleeping.store(false, Ordering::SeqCst);
            }
            continue;
        }
        idle = 0;
        // Each record gets its id (its start, then random bits) first, so that the entries
        // are built in the order they are stored and packed as they are built.
        order.clear();
        for (i, bytes) in taken.iter().enumerate() {
            let mut at = 0;
            while at < bytes.len() {
                match Record::peek(bytes, at) {
                    Some((started_us, next)) => {
                        order.push((EventId::new(started_us).0, i, at));
                        at = next;
                    }
                    // A record whose length cannot be read: the rest of the buffer cannot
                    // be either.
                    None => {
                        DROPPED.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        order.sort_unstable_by_key(|&(id, ..)| id);
        match &mut log {
            Some(log) => {
                let mut caps = (u64::MAX, u64::MAX);
                let mut cache = TakeCache::default();
                let mut writer = log.writer();
                for &(id, i, at) in &order {
                    let mark = writer.mark();
                    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let (record, _) = Record::read(&taken[i], at)?;
                        caps = record.caps;
                        entry_of(&record, EventId(id), &mut cache, |parts| writer.push(parts))
                    }));
                    if !matches!(built, Ok(Some(()))) {
                        writer.rewind(mark);
                        DROPPED.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(cache);
                if let Err((lost, e)) = writer.finish(caps.0, caps.1) {
                    DROPPED.fetch_add(lost, Ordering::Relaxed);
                    if !reported {
                        reported = true;
                        crate::hook::say(&format!(
                            "stacktrace: could not store tracked requests: {e}"
                        ));
                    }
                }
            }
            None => {
                DROPPED.fetch_add(order.len() as u64, Ordering::Relaxed);
            }
        }
        for mut spare in taken.drain(..) {
            spare.clear();
            if spare.capacity() <= INBOX_KEPT {
                spares.push(spare);
            }
        }
        if flush {
            let _ = store.flush();
            flushes_done = asked;
            *lock(&q.flushes_done) = asked;
            q.flushed_cv.notify_all();
        } else {
            std::thread::park_timeout(GATHER);
        }
    }
}

/// One finished request as queued: fixed fields, then lengths and bytes.
struct Record<'a> {
    started_us: u64,
    duration_us: u64,
    status: u16,
    caps: (u64, u64),
    body_limit: usize,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    client_addr: Option<&'a str>,
    headers: Headers<'a>,
    request_body: Option<(&'a [u8], u64)>,
    response_body: (&'a [u8], u64),
    response_type: Option<&'a [u8]>,
    /// The user as JSON; empty when none was set.
    user: &'a [u8],
    sensitive: SensitiveBody,
    /// The attached data as a JSON object; empty for none.
    data: &'a [u8],
}

/// A record's headers: each value as its own name and value, the values of one header one
/// after another (see [`RequestHead`](super::context::RequestHead)).
struct Headers<'a> {
    count: usize,
    bytes: &'a [u8],
}

const NONE: u32 = u32::MAX;

fn put(out: &mut Vec<u8>, part: Option<&[u8]>) {
    match part {
        Some(p) => {
            out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(p);
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Reads a record's parts back; `None` past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn part(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u32()? {
            NONE => Some(None),
            n => self.take(n as usize).map(Some),
        }
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        self.part()?
    }
    fn text(&mut self) -> Option<Option<&'a str>> {
        match self.part()? {
            Some(b) => std::str::from_utf8(b).ok().map(Some),
            None => Some(None),
        }
    }
}

impl<'a> Record<'a> {
    fn len(&self) -> usize {
        let headers = self.headers.bytes.len();
        let sensitive = match &self.sensitive {
            SensitiveBody::Names(names) => names.iter().map(|n| 4 + n.len()).sum(),
            _ => 0,
        };
        8 + 8
            + 8
            + 2
            + 16
            + 8
            + 4 * 12
            + 8
            + 8
            + 1
            + self.method.len()
            + self.path.len()
            + self.query.map_or(0, str::len)
            + self.client_addr.map_or(0, str::len)
            + headers
            + self.request_body.map_or(0, |(b, _)| b.len())
            + self.response_body.0.len()
            + self.response_type.map_or(0, <[u8]>::len)
            + self.user.len()
            + sensitive
            + self.data.len()
    }

    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // The fixed fields, in one copy: the length (set at the end), the start, the
        // duration, the status, the caps and the body limit.
        let mut head = [0u8; 50];
        head[8..16].copy_from_slice(&self.started_us.to_le_bytes());
        head[16..24].copy_from_slice(&self.duration_us.to_le_bytes());
        head[24..26].copy_from_slice(&self.status.to_le_bytes());
        head[26..34].copy_from_slice(&self.caps.0.to_le_bytes());
        head[34..42].copy_from_slice(&self.caps.1.to_le_bytes());
        head[42..50].copy_from_slice(&(self.body_limit as u64).to_le_bytes());
        out.extend_from_slice(&head);
        put(out, Some(self.method.as_bytes()));
        put(out, Some(self.path.as_bytes()));
        put(out, self.query.map(str::as_bytes));
        put(out, self.client_addr.map(str::as_bytes));
        out.extend_from_slice(&(self.headers.count as u32).to_le_bytes());
        put(out, Some(self.headers.bytes));
        put(out, self.request_body.map(|(b, _)| b));
        out.extend_from_slice(&self.request_body.map_or(0, |(_, seen)| seen).to_le_bytes());
        put(out, Some(self.response_body.0));
        out.extend_from_slice(&self.response_body.1.to_le_bytes());
        put(out, self.response_type);
        put(out, Some(self.user));
        match &self.sensitive {
            SensitiveBody::Nothing => out.push(0),
            SensitiveBody::All => out.push(1),
            SensitiveBody::Names(names) => {
                out.push(2);
                out.extend_from_slice(&(names.len() as u32).to_le_bytes());
                for n in names {
                    put(out, Some(n.as_bytes()));
                }
            }
        }
        put(out, Some(self.data));
        let len = (out.len() - start - 8) as u64;
        out[start..start + 8].copy_from_slice(&len.to_le_bytes());
    }

    /// The start of the record at `at`, and where the next one starts.
    fn peek(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
        let mut c = Cursor { bytes, at };
        let len = usize::try_from(c.u64()?).ok()?;
        let end = c.at.checked_add(len).filter(|&end| end <= bytes.len())?;
        Some((c.u64()?, end))
    }

    /// The record at `at`, and where the next one starts.
    fn read(bytes: &'a [u8], at: usize) -> Option<(Record<'a>, usize)> {
        let mut c = Cursor { bytes, at };
        let len = usize::try_from(c.u64()?).ok()?;
        let end = c.at.checked_add(len)?;
        let mut c = Cursor {
            bytes: bytes.get(..end)?,
            at: c.at,
        };
        let started_us = c.u64()?;
        let duration_us = c.u64()?;
        let status = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
        let caps = (c.u64()?, c.u64()?);
        let body_limit = usize::try_from(c.u64()?).ok()?;
        let method = c.text()??;
        let path = c.text()??;
        let query = c.text()?;
        let client_addr = c.text()?;
        let count = c.u32()? as usize;
        let headers = Headers {
            count,
            bytes: c.bytes()?,
        };
        let request_body = c.part()?;
        let request_seen = c.u64()?;
        let response_body = (c.bytes()?, c.u64()?);
        let response_type = c.part()?;
        let user = c.bytes()?;
        let sensitive = match c.take(1)?[0] {
            0 => SensitiveBody::Nothing,
            1 => SensitiveBody::All,
            2 => {
                let n = c.u32()? as usize;
                let mut names = Vec::new();
                for _ in 0..n {
                    names.push(c.text()??.to_owned());
                }
                SensitiveBody::Names(names)
            }
            _ => return None,
        };
        let data = c.bytes()?;
        if c.at != end {
            return None;
        }
        Some((
            Record {
                started_us,
                duration_us,
                status,
                caps,
                body_limit,
                method,
                path,
                query,
                client_addr,
                headers,
                request_body: request_body.map(|b| (b, request_seen)),
                response_body,
                response_type,
                user,
                sensitive,
                data,
            },
            end,
        ))
    }
}

impl<'a> Headers<'a> {
    /// Each value with its header's name, the values of one header one after another.
    fn pairs(&self) -> HeaderParts<'a> {
        HeaderParts::new(self.bytes, self.count)
    }
}

/// A header value as text; empty when there is none.
fn lossy(v: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    v.map(String::from_utf8_lossy).unwrap_or_default()
}

/// Header values as stored, with the secrets their redaction found, for the requests of
/// one take from the inbox: most values repeat from request to request (host, user agent,
/// accept). Only for requests without sensitive body parameters, which a cookie's
/// redaction reads.
#[derive(Default)]
struct HeaderCache<'b> {
    /// The place in `stored` of each name and value as received.
    places: HashMap<(&'b str, &'b [u8]), usize, BuildHasherDefault<Fnv>>,
    stored: Vec<(String, Vec<String>)>,
    /// The previous request's headers as received, with their places: looked at first.
    previous: Vec<(&'b str, &'b [u8], usize)>,
    /// The buffer the next request's headers go into.
    spare: Vec<(&'b str, &'b [u8], usize)>,
}

/// What the entries of one take from the inbox share: an endpoint under load mostly
/// answers alike, and its clients send alike.
#[derive(Default)]
struct TakeCache<'b> {
    headers: HeaderCache<'b>,
    /// The last request body without sensitive parameters, as received and as stored.
    request: Option<(BodyKey<'b>, Stored)>,
    /// The last response body, as received and as stored.
    response: Option<(BodyKey<'b>, Stored)>,
}

/// A body as received: content type, bytes, bytes seen, bytes kept.
type BodyKey<'b> = (Option<&'b [u8]>, &'b [u8], u64, usize);

/// A body as stored, with the secrets its redaction found.
struct Stored {
    text: String,
    truncated: bool,
    secrets: Vec<String>,
}

/// The body of `key` as stored, redacted as a body of its own (no sensitive parameters)
/// unless `slot` holds it already.
fn cached_body<'c, 'b>(
    slot: &'c mut Option<(BodyKey<'b>, Stored)>,
    key: BodyKey<'b>,
    fresh: impl FnOnce() -> Redaction<'c>,
) -> &'c Stored {
    if slot.as_ref().is_some_and(|(last, _)| *last != key) {
        *slot = None;
    }
    &slot
        .get_or_insert_with(|| {
            let mut r = fresh();
            let (ct, bytes, seen, _) = key;
            // All that was captured: cut at the limit once scrubbed (see `entry_of`).
            let b = stored_body(&mut r, bytes, seen, &lossy(ct), bytes.len());
            let stored = Stored {
                text: b.text,
                truncated: b.truncated,
                secrets: r.secrets,
            };
            (key, stored)
        })
        .1
}

/// Each header once, in the order first seen, its values redacted and joined by `, `, as
/// `redact_headers` gives them; values already in `cache` are not redacted again. The
/// secrets found in them are added to `secrets`.
fn cached_headers<'b: 'c, 'c>(
    r: &Redaction<'_>,
    headers: &Headers<'b>,
    cache: &'c mut HeaderCache<'b>,
    secrets: &mut Vec<String>,
) -> Vec<(&'b str, Cow<'c, str>)> {
    // This request's headers go into the buffer of the one before last, so that no
    // request allocates one.
    let mut current = std::mem::take(&mut cache.spare);
    current.clear();
    for (i, (name, value)) in headers.pairs().enumerate() {
        let place = match cache.previous.get(i) {
            Some(&(n, v, place)) if n == name && v == value => place,
            _ => {
                let stored = &mut cache.stored;
                *cache.places.entry((name, value)).or_insert_with(|| {
                    let mut fresh = r.fresh();
                    let text = fresh.header(name, value);
                    stored.push((text, fresh.secrets));
                    stored.len() - 1
                })
            }
        };
        current.push((name, value, place));
    }
    cache.spare = std::mem::replace(&mut cache.previous, current);
    let cache: &'c HeaderCache<'b> = cache;
    let mut out: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(cache.previous.len());
    for &(name, _, place) in &cache.previous {
        let (value, found) = &cache.stored[place];
        secrets.extend_from_slice(found);
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                let joined = joined.to_mut();
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => out.push((name, Cow::Borrowed(value.as_str()))),
        }
    }
    out
}

/// `text` without `secrets`, copied only when it held one.
fn scrubbed<'t>(secrets: &Secrets, text: Cow<'t, str>) -> Cow<'t, str> {
    if !secrets.found_in(&text) {
        return text;
    }
    let mut owned = text.to_string();
    secrets.scrub(&mut owned);
    if owned == text {
        text
    } else {
        Cow::Owned(owned)
    }
}

/// Builds the stored entry of a finished request, redacted, and gives its parts to `store`;
/// `None` (and nothing given) when it cannot be built.
///
/// What the redaction finds in the request (a password in the form, a bearer token, a
/// value attached under a sensitive name) is then hidden in every part, as in a crash
/// event: a handler may echo it in its response or attach it under a name that is not
/// sensitive. What it finds in the response is hidden in the response only: a guess made
/// in free text (`Basic plan`) must not rewrite the request's path.
fn entry_of<'b>(
    record: &Record<'b>,
    id: EventId,
    cache: &mut TakeCache<'b>,
    store: impl FnOnce(&EntryParts<'_>),
) -> Option<()> {
    let rt = runtime()?;
    let c = &rt.config;
    let nothing = SensitiveBody::Nothing;
    let mut r = Redaction::new(&rt.redactor, &c.redact_headers, &record.sensitive);
    let mut found = Vec::new();
    let query = record.query.map(|q| r.pairs(q)).unwrap_or_default();
    let plain = record.sensitive == SensitiveBody::Nothing;
    let mut headers: Vec<(&str, Cow<'_, str>)> = if plain {
        cached_headers(&r, &record.headers, &mut cache.headers, &mut found)
    } else {
        redact_headers(&mut r, record.headers.pairs())
            .into_iter()
            .map(|(n, v)| (n, Cow::Owned(v)))
            .collect()
    };
    let limit = record.body_limit;
    let mut request_body: Option<(Cow<'_, str>, bool)> =
        record.request_body.map(|(bytes, seen)| {
            let ct = record
                .headers
                .pairs()
                .find(|(n, _)| *n == http::header::CONTENT_TYPE.as_str())
                .map(|(_, v)| v);
            if plain {
                let fresh = || Redaction::new(&rt.redactor, &c.redact_headers, &nothing);
                let b = cached_body(&mut cache.request, (ct, bytes, seen, limit), fresh);
                found.extend_from_slice(&b.secrets);
                (Cow::Borrowed(b.text.as_str()), b.truncated)
            } else {
                let b = stored_body(&mut r, bytes, seen, &lossy(ct), bytes.len());
                (Cow::Owned(b.text), b.truncated)
            }
        });
    // The response body is redacted as its own: the request's sensitive parameters do not
    // name its fields.
    let mut response_body: Option<(Cow<'_, str>, bool)> = (limit > 0).then(|| {
        let (bytes, seen) = record.response_body;
        let fresh = || Redaction::new(&rt.redactor, &c.redact_headers, &nothing);
        let b = cached_body(
            &mut cache.response,
            (record.response_type, bytes, seen, limit),
            fresh,
        );
        (Cow::Borrowed(b.text.as_str()), b.truncated)
    });
    let user = if record.user.is_empty() {
        String::new()
    } else {
        let u: Value = serde_json::from_slice(record.user).ok()?;
        user_index(&u, &c.user_field)
    };
    let mut data = if record.data.is_empty() {
        None
    } else {
        let mut data: Value = serde_json::from_slice(record.data).ok()?;
        r.json_value(&mut data);
        Some(data)
    };
    // The path and the user, by value as every text is.
    let mut path = redact_credentials(record.path, &rt.redactor, &mut found);
    let user = match redact_credentials(&user, &rt.redactor, &mut found) {
        Cow::Owned(redacted) => redacted,
        Cow::Borrowed(_) => user,
    };
    found.append(&mut r.secrets);
    // Also as a JSON text, a URL or HTML would quote them: a body echoing `pa"ss` holds
    // `pa\"ss` (see `Secrets::new`). With the secrets of the settings (the SMTP password).
    let secrets = rt.secrets.extended(found);
    if let Some(data) = &mut data {
        secrets.scrub_json(data);
    }
    let data = data
        .map(|d| serde_json::to_string(&d).unwrap_or_default())
        .unwrap_or_default();
    let (mut query, mut user) = (Cow::Owned(query), Cow::Owned(user));
    if !secrets.is_empty() {
        for (_, v) in &mut headers {
            *v = scrubbed(&secrets, std::mem::take(v));
        }
        for (t, _) in request_body.iter_mut().chain(response_body.iter_mut()) {
            *t = scrubbed(&secrets, std::mem::take(t));
        }
        for t in [&mut path, &mut query, &mut user] {
            *t = scrubbed(&secrets, std::mem::take(t));
        }
    }
    // Cut only once scrubbed: a secret cut in two could no longer be found.
    for (_, v) in &mut headers {
        *v = capped_header(std::mem::take(v));
    }
    for (t, cut) in request_body.iter_mut().chain(response_body.iter_mut()) {
        let (text, truncated) = cut_body(std::mem::take(t), *cut, limit, &secrets);
        (*t, *cut) = (text, truncated);
    }
    store(&EntryParts {
        id,
        timestamp_us: record.started_us,
        duration_us: record.duration_us,
        status: record.status,
        method: record.method,
        path: &path,
        query: &query,
        user: &user,
        client_addr: record.client_addr.unwrap_or_default(),
        request_body: request_body.as_ref().map(|(t, cut)| (&**t, *cut)),
        response_body: response_body.as_ref().map(|(t, cut)| (&**t, *cut)),
        headers: &headers,
        data: &data,
    });
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::context::RequestHead;

    fn record_bytes(f: &Following) -> Vec<u8> {
        with_record(f, |record| {
            let mut out = Vec::new();
            record.write(&mut out);
            assert!(
                record.len() >= out.len() - 8,
                "the estimate covers the record"
            );
            out
        })
    }

    #[test]
    fn headers_redacted_once_a_take_are_those_redacted_each_time() {
        let fields = crate::redact::FieldRedactor::new(&["session".into(), "card".into()]);
        let redact = ["authorization".to_owned(), "x-internal".to_owned()];
        let third = vec![
            ("referer", "https://u:sec-3@b.test/"),
            ("host", "a.test"),
            ("cookie", "a=1; session=sec-2"),
            ("accept", "x"),
            ("accept", "y"),
        ];
        let maps: Vec<http::HeaderMap> = [
            vec![("host", "a.test"), ("authorization", "Bearer sec-1")],
            vec![
                ("host", "a.test"),
                ("cookie", "a=1; session=sec-2"),
                ("cookie", "b=2"),
                ("x-internal-id", "7"),
            ],
            third.clone(),
            // The same again, then one that differs part way: found by position first.
            third,
            vec![
                ("referer", "https://u:sec-3@b.test/"),
                ("host", "b.test"),
                ("cookie", "a=1; session=sec-2"),
                ("accept", "y"),
            ],
        ]
        .into_iter()
        .map(|pairs| {
            let mut m = http::HeaderMap::new();
            for (n, v) in pairs {
                m.append(
                    http::HeaderName::from_static(n),
                    http::HeaderValue::from_static(v),
                );
            }
            m
        })
        .collect();
        let heads: Vec<RequestHead> = maps
            .iter()
            .map(|m| {
                let mut req = http::Request::get("/").body(()).unwrap();
                *req.headers_mut() = m.clone();
                RequestHead::new(&req.into_parts().0)
            })
            .collect();
        let mut cache = HeaderCache::default();
        for (m, head) in maps.iter().zip(&heads) {
            let nothing = SensitiveBody::Nothing;
            let mut r = Redaction::new(&fields, &redact, &nothing);
            let each_time =
                redact_headers(&mut r, m.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
            let r_cached = Redaction::new(&fields, &redact, &nothing);
            let mut found = Vec::new();
            let cached: Vec<(&str, String)> = cached_headers(
                &r_cached,
                &Headers {
                    count: head.header_count(),
                    bytes: head.header_bytes(),
                },
                &mut cache,
                &mut found,
            )
            .into_iter()
            .map(|(n, v)| (n, v.into_owned()))
            .collect();
            assert_eq!(cached, each_time);
            // The secrets found are those found each time, from the cache as well.
            found.sort();
            found.dedup();
            let mut expected = r.secrets.clone();
            expected.sort();
            assert_eq!(found, expected);
            assert!(
                cached.iter().all(|(_, v)| !v.contains("sec-")),
                "{cached:?}"
            );
        }
        assert!(cache.stored.len() < maps.iter().map(http::HeaderMap::len).sum::<usize>());
    }

    #[test]
    fn a_queued_record_reads_back_whole() {
        let req = http::Request::post("/login?next=%2Fhome&token=t")
            .header("accept", "text/html")
            .header("cookie", "a=1")
            .header("cookie", "session=s")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(())
            .unwrap();
        let parts = req.into_parts().0;
        let state = Arc::new(RequestState::new(
            &parts,
            Some("10.0.0.7".into()),
            Some(serde_json::json!({"username": "ann"})),
            64,
        ));
        {
            let mut shared = lock(&state.shared);
            shared.body.push(b"user=ann&card=4111", 18);
            shared.sensitive.add(&["card", "pin"]);
            shared.data.insert("cart".into(), Value::from(3));
        }
        let mut response = CapturedFrames::new(64);
        response.push(&Bytes::from_static(b"welcome"));
        let f = Following {
            state: state.clone(),
            caps: (10, 20),
            status: 201,
            duration_us: 1234,
            body_limit: 64,
            response,
            response_type: Some(http::HeaderValue::from_static("text/plain")),
        };
        let mut bytes = record_bytes(&f);
        let first_len = bytes.len();
        bytes.extend(record_bytes(&f));

        let (r, next) = Record::read(&bytes, 0).unwrap();
        assert_eq!(next, first_len);
        assert_eq!(
            (r.started_us, r.duration_us, r.status),
            (state.started_us, 1234, 201)
        );
        assert_eq!((r.caps, r.body_limit), ((10, 20), 64));
        assert_eq!((r.method, r.path), ("POST", "/login"));
        assert_eq!(r.query, Some("next=%2Fhome&token=t"));
        assert_eq!(r.client_addr, Some("10.0.0.7"));
        let pairs: Vec<(&str, &[u8])> = r.headers.pairs().collect();
        let expected: Vec<(&str, &[u8])> = parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        assert_eq!(pairs, expected);
        assert_eq!(r.request_body, Some((&b"user=ann&card=4111"[..], 18)));
        assert_eq!(r.response_body, (&b"welcome"[..], 7));
        assert_eq!(r.response_type, Some(&b"text/plain"[..]));
        let user: Value = serde_json::from_slice(r.user).unwrap();
        assert_eq!(user["username"], "ann");
        assert_eq!(
            r.sensitive,
            SensitiveBody::Names(vec!["card".into(), "pin".into()])
        );
        let data: Value = serde_json::from_slice(r.data).unwrap();
        assert_eq!(data["cart"], 3);
        let (_, end) = Record::read(&bytes, next).unwrap();
        assert_eq!(end, bytes.len());

        // Each thread queues into an inbox of its own; a take empties them all, and
        // forgets those of threads that have ended.
        let q = Queue::new();
        q.push(&f);
        let (mut taken, mut spares) = (Vec::new(), Vec::new());
        q.take_all(&mut taken, &mut spares);
        assert_eq!(taken, [bytes[..first_len].to_vec()]);
        taken.clear();
        q.push(&f);
        q.push(&f);
        std::thread::scope(|s| {
            s.spawn(|| q.push(&f));
        });
        assert_eq!(lock(&q.inboxes).len(), 2);
        q.take_all(&mut taken, &mut spares);
        let mut sizes: Vec<usize> = taken.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [first_len, 2 * first_len]);
        taken.clear();
        // A scope ends before its threads' locals are dropped: give that a moment.
        for _ in 0..200 {
            q.take_all(&mut taken, &mut spares);
            if lock(&q.inboxes).len() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(taken.is_empty());
        assert_eq!(
            lock(&q.inboxes).len(),
            1,
            "the ended thread's inbox is gone"
        );
        assert!(q.all_empty());
        // A thread's inbox belongs to one queue: another queue gets one of its own.
        let other = Queue::new();
        other.push(&f);
        assert!(q.all_empty());
        assert_eq!(lock(&other.inboxes).len(), 1);
        assert!(!other.all_empty());

        // A full inbox takes nothing more, and counts what it turns away.
        let full = Mutex::new(Inbox {
            bytes: vec![0; INBOX_BYTES - 8],
        });
        let dropped = tracking_dropped();
        q.push_to(&full, &f);
        assert_eq!(tracking_dropped(), dropped + 1);
        assert_eq!(lock(&full).bytes.len(), INBOX_BYTES - 8);

        // A cut record is refused, never read past its end.
        for cut in 0..first_len {
            assert!(Record::read(&bytes[..cut], 0).is_none());
        }
    }
}

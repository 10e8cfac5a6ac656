//! Request tracking, as flask-tracking does it: every request with its status and execution
//! time, built and written by threads of their own behind a bounded queue, so the request
//! never waits on the database and a burst that outruns them drops entries (counted) rather
//! than memory. Entries are stored many to a block (see the store's tracking tree).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use once_cell::sync::OnceCell;
use regex::Regex;
use serde_json::Value;

use super::body::Captured;
use super::context::{lock, stored_body, user_index, RequestState};
use super::redact::{Redaction, SensitiveBody};
use crate::config::ConfigError;
use crate::event::EventId;
use crate::install::{runtime, store};
use crate::store::{encode_entry, EntryParts, TrackingLog};

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

/// One finished request, on its way to the tracking thread.
#[derive(Debug)]
pub(crate) struct TrackJob {
    settings: Arc<Tracking>,
    state: Arc<RequestState>,
    status: u16,
    duration_us: u64,
    body_limit: usize,
    response: Captured,
    response_type: String,
}

/// Follows a response body and queues the tracking entry when the body ends or is dropped.
#[derive(Debug)]
pub(crate) struct Tracker(Option<Box<TrackJob>>);

impl Tracker {
    pub(crate) fn new(
        settings: Arc<Tracking>,
        state: Arc<RequestState>,
        status: u16,
        response_type: String,
    ) -> Tracker {
        let body_limit = settings.body_limit(state.path());
        Tracker(Some(Box::new(TrackJob {
            duration_us: u64::try_from(state.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            settings,
            state,
            status,
            body_limit,
            response: Captured::new(body_limit),
            response_type,
        })))
    }

    pub(crate) fn data(&mut self, data: &Bytes) {
        if let Some(job) = &mut self.0 {
            job.response.push(data, data.len());
        }
    }

    pub(crate) fn finish(mut self) {
        self.send();
    }

    fn send(&mut self) {
        if let Some(job) = self.0.take() {
            match queue() {
                Some(tx) => {
                    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                        tx.try_send(Msg::Record(job))
                    {
                        DROPPED.fetch_add(1, Ordering::Relaxed);
                    }
                }
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

enum Msg {
    Record(Box<TrackJob>),
    Flush(SyncSender<()>),
}

/// Finished requests waiting for the tracking thread; beyond, new ones are dropped and
/// counted.
const QUEUE_CAPACITY: usize = 4096;
/// How long the tracking thread lets entries gather between two looks at its queue.
const GATHER: Duration = Duration::from_millis(2);
/// Empty looks before the tracking thread sleeps until a request wakes it.
const IDLE_LOOKS: u32 = 50;
/// Bytes of built entries waiting for the database at most; beyond, new ones are dropped
/// and counted.
const PENDING_BYTES: usize = 16 << 20;

static QUEUE: OnceCell<SyncSender<Msg>> = OnceCell::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The tracking thread's queue, started with the first entry once the database is open.
fn queue() -> Option<&'static SyncSender<Msg>> {
    if let Some(q) = QUEUE.get() {
        return Some(q);
    }
    store()?;
    QUEUE
        .get_or_try_init(|| {
            let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
            std::thread::Builder::new()
                .name("stacktrace-tracking".into())
                .spawn(move || run(rx))
                .map(|_| tx)
        })
        .ok()
}

/// Tracking entries dropped since the program started: the queue was full, or no database
/// was open.
pub fn tracking_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits until every tracking entry queued before the call is stored (at most `timeout`);
/// says whether it finished. Entries are queued when a response body ends.
///
/// ```no_run
/// stacktrace::http::flush_tracking(std::time::Duration::from_secs(5));
/// ```
pub fn flush_tracking(timeout: Duration) -> bool {
    let Some(tx) = QUEUE.get() else {
        return true;
    };
    let (ack_tx, ack_rx) = mpsc::sync_channel(1);
    let deadline = std::time::Instant::now() + timeout;
    let mut msg = Msg::Flush(ack_tx);
    loop {
        match tx.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(m)) => {
                if std::time::Instant::now() >= deadline {
                    return false;
                }
                msg = m;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    ack_rx
        .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        .is_ok()
}

/// Built entries on their way from the tracking thread to the one that stores them.
#[derive(Default)]
struct Pending {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    /// The caps of the latest entry's settings.
    caps: (u64, u64),
    /// Flush requests answered once everything before them is stored.
    acks: Vec<SyncSender<()>>,
}

struct Handoff {
    pending: Mutex<Pending>,
    ready: Condvar,
}

/// The tracking thread: builds the entries of finished requests (redacted, encoded) and
/// hands them to the storing thread, so that a slow database write never stops the queue
/// of finished requests from draining. It looks at its queue every `GATHER` while requests
/// come, and only sleeps until woken once they have stopped for a while: under load no
/// request pays for waking it.
fn run(rx: Receiver<Msg>) {
    let Some(store) = store() else { return };
    let handoff = Arc::new(Handoff {
        pending: Mutex::new(Pending::default()),
        ready: Condvar::new(),
    });
    let started = TrackingLog::open(store)
        .map_err(|e| e.to_string())
        .and_then(|log| {
            let handoff = handoff.clone();
            std::thread::Builder::new()
                .name("stacktrace-tracking-store".into())
                .spawn(move || store_entries(log, &handoff))
                .map_err(|e| e.to_string())
        });
    if let Err(e) = started {
        crate::hook::say(&format!("stacktrace: request tracking is off: {e}"));
        for msg in rx {
            if let Msg::Flush(ack) = msg {
                let _ = ack.try_send(());
            } else {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        return;
    }
    let mut idle = 0;
    let mut built = Vec::new();
    let mut acks = Vec::new();
    let mut caps = (u64::MAX, u64::MAX);
    loop {
        let first = if idle < IDLE_LOOKS {
            match rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(msg) => Some(msg),
                Err(_) => return,
            }
        };
        let Some(first) = first else {
            idle += 1;
            std::thread::sleep(GATHER);
            continue;
        };
        idle = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(job) => {
                    caps = (job.settings.max_entries, job.settings.max_bytes);
                    let entry =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| record_of(&job)));
                    match entry {
                        Ok(Some(e)) => built.push(e),
                        _ => {
                            DROPPED.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            if built.len() < QUEUE_CAPACITY {
                next = rx.try_recv().ok();
            }
        }
        {
            let mut p = lock(&handoff.pending);
            for e in built.drain(..) {
                if p.bytes + e.len() > PENDING_BYTES {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                } else {
                    p.bytes += e.len();
                    p.entries.push(e);
                }
            }
            p.caps = caps;
            p.acks.append(&mut acks);
        }
        handoff.ready.notify_one();
        std::thread::sleep(GATHER);
    }
}

/// The storing thread: writes what the tracking thread built, all that waits at once.
fn store_entries(mut log: TrackingLog, handoff: &Handoff) {
    let mut reported = false;
    loop {
        let Pending {
            entries,
            caps,
            acks,
            ..
        } = {
            let mut p = lock(&handoff.pending);
            while p.entries.is_empty() && p.acks.is_empty() {
                p = handoff.ready.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            std::mem::take(&mut *p)
        };
        if !entries.is_empty() {
            let n = entries.len() as u64;
            if let Err(e) = log.append_encoded(entries, caps.0, caps.1) {
                DROPPED.fetch_add(n, Ordering::Relaxed);
                if !reported {
                    reported = true;
                    crate::hook::say(&format!(
                        "stacktrace: could not store tracked requests: {e}"
                    ));
                }
            }
        }
        if !acks.is_empty() {
            if let Some(store) = store() {
                let _ = store.flush();
            }
            for ack in acks {
                let _ = ack.try_send(());
            }
        }
    }
}

/// The stored entry of a finished request, redacted, encoded for its block.
fn record_of(job: &TrackJob) -> Option<Vec<u8>> {
    let rt = runtime()?;
    let c = &rt.config;
    let state = &job.state;
    let sensitive = lock(&state.sensitive).clone();
    let mut r = Redaction::new(&rt.redactor, &c.redact_headers, &sensitive);
    let query = state.uri.query().map(|q| r.pairs(q)).unwrap_or_default();
    let headers = state.redacted_headers(&mut r);
    let body = |r: &mut Redaction<'_>, bytes: &[u8], seen: u64, ct: &str| {
        let b = stored_body(r, bytes, seen, ct, job.body_limit);
        (b.text, b.truncated)
    };
    let (request_body, response_body) = if job.body_limit > 0 {
        let (bytes, seen) = {
            let b = lock(&state.body);
            (b.bytes.clone(), b.seen)
        };
        let request = body(&mut r, &bytes, seen, &state.content_type());
        // The response body is redacted as its own: the request's sensitive parameters do
        // not name its fields.
        let nothing = SensitiveBody::Nothing;
        let mut rr = Redaction::new(&rt.redactor, &c.redact_headers, &nothing);
        let response = body(
            &mut rr,
            &job.response.bytes,
            job.response.seen,
            &job.response_type,
        );
        (Some(request), Some(response))
    } else {
        (None, None)
    };
    let user = lock(&state.user)
        .as_ref()
        .map(|u| user_index(u, &c.user_field))
        .unwrap_or_default();
    let data = {
        let data = lock(&state.data);
        if data.is_empty() {
            String::new()
        } else {
            let mut data = Value::Object(data.clone());
            rt.redactor.redact_json(&mut data);
            serde_json::to_string(&data).unwrap_or_default()
        }
    };
    Some(encode_entry(&EntryParts {
        id: EventId::new(state.started_us),
        timestamp_us: state.started_us,
        duration_us: job.duration_us,
        status: job.status,
        method: state.method.as_str(),
        path: state.path(),
        query: &query,
        user: &user,
        client_addr: state.client_addr.as_deref().unwrap_or_default(),
        request_body: request_body.as_ref().map(|(t, cut)| (t.as_str(), *cut)),
        response_body: response_body.as_ref().map(|(t, cut)| (t.as_str(), *cut)),
        headers: &headers,
        data: &data,
    }))
}

//! Request tracking, as flask-tracking does it: every request with its status and execution
//! time, written by a thread of its own through a bounded queue, so the request never waits
//! on the database and a burst that outruns it drops entries (counted) rather than memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use once_cell::sync::OnceCell;
use regex::Regex;
use serde_json::Value;

use super::body::Captured;
use super::context::{lock, RequestState, ViewOptions};
use super::redact::{Redaction, SensitiveBody};
use crate::config::ConfigError;
use crate::event::EventId;
use crate::install::{runtime, store};
use crate::store::{TrackedRequest, TrackingLog};

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

/// Entries waiting for the tracking thread; beyond, new ones are dropped and counted.
const QUEUE_CAPACITY: usize = 4096;
/// Entries written in one batch.
const BATCH: usize = 512;
/// How long the tracking thread lets entries gather after the first of a batch.
const GATHER: Duration = Duration::from_millis(2);

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

fn run(rx: Receiver<Msg>) {
    let Some(store) = store() else { return };
    let mut log = match TrackingLog::open(store) {
        Ok(log) => log,
        Err(e) => {
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
    };
    let mut reported = false;
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        if matches!(first, Msg::Record(_)) {
            // Let a batch gather: one wake-up and one write for many requests rather than
            // one each, which under load costs the server's threads more than the writes.
            std::thread::sleep(GATHER);
        }
        let mut caps = (u64::MAX, u64::MAX);
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Record(job) => {
                    caps = (job.settings.max_entries, job.settings.max_bytes);
                    let built =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| record_of(&job)));
                    match built {
                        Ok(Some(r)) => batch.push(r),
                        _ => {
                            DROPPED.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH && acks.is_empty() {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(e) = log.append(&batch, caps.0, caps.1) {
                DROPPED.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if !reported {
                    reported = true;
                    crate::hook::say(&format!(
                        "stacktrace: could not store tracked requests: {e}"
                    ));
                }
            }
            batch.clear();
        }
        if !acks.is_empty() {
            let _ = store.flush();
            for ack in acks.drain(..) {
                let _ = ack.try_send(());
            }
        }
    }
}

/// The stored entry of a finished request, redacted.
fn record_of(job: &TrackJob) -> Option<TrackedRequest> {
    let rt = runtime()?;
    let c = &rt.config;
    let state = &job.state;
    let options = ViewOptions {
        fields: &rt.redactor,
        redact_headers: &c.redact_headers,
        user_field: &c.user_field,
        headers: true,
        body: (job.body_limit > 0).then_some(job.body_limit),
        in_hook: false,
    };
    let view = state.view(&options);
    let text = |k: &str| view.json.get(k).and_then(Value::as_str).map(str::to_owned);
    let flag = |k: &str| view.json.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (response_body, response_body_truncated) = if job.body_limit > 0 {
        let sensitive = SensitiveBody::Nothing;
        let mut r = Redaction::new(&rt.redactor, &c.redact_headers, &sensitive);
        let mut out = serde_json::Map::new();
        state.body_into(
            &mut out,
            &mut r,
            &job.response.bytes,
            job.response.seen,
            &job.response_type,
            job.body_limit,
            "body",
        );
        (
            out.get("body").and_then(Value::as_str).map(str::to_owned),
            out.get("body_truncated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )
    } else {
        (None, false)
    };
    let mut data = Value::Object(lock(&state.data).clone());
    rt.redactor.redact_json(&mut data);
    let data = match data {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Some(TrackedRequest {
        id: EventId::new(state.started_us),
        timestamp_us: state.started_us,
        method: state.method.to_string(),
        path: state.path().to_owned(),
        query: view.query,
        status: job.status,
        duration_us: job.duration_us,
        user: view.user,
        client_addr: state.client_addr.clone().unwrap_or_default(),
        headers: view
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        request_body: text("body"),
        request_body_truncated: flag("body_truncated"),
        response_body,
        response_body_truncated,
        data,
    })
}

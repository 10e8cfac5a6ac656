//! The tracking thread and its queue: finished requests copied into per-thread inboxes,
//! taken in one swap per inbox, built into entries and written many to a block.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use once_cell::sync::OnceCell;

use super::super::body::CapturedFrames;
use super::super::request::RequestState;
use super::entry::{entry_of, Headers, Record, TakeCache};
use super::settings::Plan;
use crate::model::event::EventId;
use crate::runtime::install::store;
use crate::store::TrackingLog;
use crate::sync::lock;

/// A response being sent: what its tracking entry needs once the body ends.
#[derive(Debug)]
pub(super) struct Following {
    pub(super) state: Arc<RequestState>,
    /// `max_entries` and `max_bytes` of the settings.
    pub(super) caps: (u64, u64),
    pub(super) status: u16,
    pub(super) duration_us: u64,
    pub(super) body_limit: usize,
    pub(super) response: CapturedFrames,
    pub(super) response_type: Option<http::HeaderValue>,
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
pub(super) const INBOX_BYTES: usize = 8 << 20;
/// How long the tracking thread lets requests gather between two looks at the inboxes.
pub(super) const GATHER: Duration = Duration::from_millis(10);
/// Empty looks before the tracking thread sleeps until a request wakes it.
pub(super) const IDLE_LOOKS: u32 = 10;
/// How long an idle tracking thread sleeps unless woken.
pub(super) const LONG_SLEEP: Duration = Duration::from_millis(250);
/// The capacity an inbox keeps between looks; a larger one (after a burst) is given back.
pub(super) const INBOX_KEPT: usize = 1 << 20;

/// Finished requests, each copied as one record of bytes into its thread's inbox: queueing
/// a request allocates nothing and keeps nothing of it alive (its headers share the
/// connection's read buffer, which would otherwise be held until the entry is built). Each
/// thread that serves requests has an inbox of its own, so that threads queueing at once
/// do not pass one lock and one buffer between their cores; the tracking thread takes
/// everything queued in one swap per inbox.
#[derive(Debug)]
pub(super) struct Queue {
    /// Every inbox, registered by its thread when it first queues.
    pub(super) inboxes: Mutex<Vec<Arc<Mutex<Inbox>>>>,
    /// Set while the tracking thread sleeps until woken.
    pub(super) sleeping: AtomicBool,
    pub(super) thread: OnceCell<std::thread::Thread>,
    /// Flushes asked for since the start.
    pub(super) flushes_asked: AtomicU64,
    /// Flushes done: every request queued before the one asked last was stored first.
    pub(super) flushes_done: Mutex<u64>,
    pub(super) flushed_cv: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct Inbox {
    pub(super) bytes: Vec<u8>,
}

pub(super) static QUEUE: OnceCell<Queue> = OnceCell::new();
pub(super) static DROPPED: AtomicU64 = AtomicU64::new(0);

/// A thread's inbox with the queue it is registered in.
pub(super) type MyInbox = (*const Queue, Arc<Mutex<Inbox>>);

thread_local! {
    /// This thread's inbox, once it has queued a request.
    static INBOX: std::cell::RefCell<Option<MyInbox>> = const { std::cell::RefCell::new(None) };
}

impl Queue {
    pub(super) fn new() -> Queue {
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
pub(super) fn queue() -> Option<&'static Queue> {
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
pub(super) fn with_record<R>(f: &Following, use_it: impl FnOnce(&Record<'_>) -> R) -> R {
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
    pub(super) fn push(&self, f: &Following) {
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

    pub(super) fn push_to(&self, inbox: &Mutex<Inbox>, f: &Following) {
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
    pub(super) fn all_empty(&self) -> bool {
        lock(&self.inboxes)
            .iter()
            .all(|inbox| lock(inbox).bytes.is_empty())
    }

    /// Swaps every inbox that holds something for a spare buffer, into `taken`; forgets
    /// the empty inboxes of threads that have ended.
    pub(super) fn take_all(&self, taken: &mut Vec<Vec<u8>>, spares: &mut Vec<Vec<u8>>) {
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
pub(super) fn run(q: &'static Queue) {
    let Some(store) = store() else { return };
    let mut log = match TrackingLog::open(store) {
        Ok(log) => Some(log),
        Err(e) => {
            crate::diag::say(&format!("stacktrace: request tracking is off: {e}"));
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
                        crate::diag::say(&format!(
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

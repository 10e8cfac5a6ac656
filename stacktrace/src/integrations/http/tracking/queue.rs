//! Request tracking's queue and its duty on the background worker: finished requests
//! copied into per-thread inboxes, taken in one swap per inbox, built into entries and
//! written many to a block, a bounded slice of them a turn.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use once_cell::sync::OnceCell;

use super::super::body::CapturedFrames;
use super::super::request::{RequestState, Shared};
use super::entry::{entry_of, Headers, Record, TakeCache, HEAD};
use super::settings::Plan;
use crate::model::event::EventId;
use crate::runtime::guard::store;
use crate::runtime::install::runtime;
use crate::runtime::worker::{Duty, Turn, Waker};
use crate::store::{OpenBlock, Own, TrackingLog};
use crate::sync::lock;

/// A response being sent: what its tracking entry needs once the body ends.
#[derive(Debug)]
#[cfg_attr(test, derive(Clone))]
pub(super) struct Following {
    pub(super) state: Arc<RequestState>,
    /// When the request came in; on the wall clock, see `crate::model::time::wall_us_of`.
    pub(super) started: Instant,
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
        started: Instant,
        state: Arc<RequestState>,
        status: u16,
        response_type: Option<http::HeaderValue>,
    ) -> Tracker {
        Tracker(Some(Following {
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            started,
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
                // Counted in the thread's inbox, which no other thread writes.
                Some(q) => q.push(f),
                None => {
                    COUNTS.queued.fetch_add(1, Ordering::Relaxed);
                    COUNTS.no_database.fetch_add(1, Ordering::Relaxed);
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

/// Bytes of finished requests waiting for the worker at most, in the inbox of one thread;
/// beyond, new ones are dropped and counted.
pub(super) const INBOX_BYTES: usize = 8 << 20;
/// How long requests gather in the inboxes between two takes (unless a flush is asked):
/// the entries of a take share their redacted headers and bodies and their blocks, so that
/// a take of ten milliseconds of requests costs a third of what ten takes of one do.
pub(super) const GATHER: Duration = Duration::from_millis(10);
/// Requests built and stored in one turn of the worker at most: a turn holds a core for
/// a few hundred microseconds at most, so that a request served meanwhile on that core
/// waits no longer (the worker yields the core before the next slice).
pub(super) const SLICE: usize = 128;
/// The capacity an inbox keeps between looks; a larger one (after a burst) is given back.
pub(super) const INBOX_KEPT: usize = 1 << 20;
/// The capacity kept for the next request's bytes (see [`Inbox::next`]); a larger one,
/// after a large request, is given back.
pub(super) const REST_KEPT: usize = 64 << 10;

/// Finished requests, each copied as one record of bytes into its thread's inbox: queueing
/// a request allocates nothing and keeps nothing of it alive (its headers share the
/// connection's read buffer, which would otherwise be held until the entry is built). A
/// request that repeats the one its thread queued before in all but its start, duration
/// and status is queued as those three alone: fewer bytes to hand from one core to the
/// other and for the worker to read, and no entry to build again. Each
/// thread that serves requests has an inbox of its own, so that threads queueing at once
/// do not pass one lock and one buffer between their cores; the worker takes everything
/// queued in one swap per inbox.
#[derive(Debug)]
pub(super) struct Queue {
    /// Every inbox, registered by its thread when it first queues.
    pub(super) inboxes: Mutex<Vec<Arc<Mutex<Inbox>>>>,
    /// Wakes the background worker, while it sleeps until woken.
    pub(super) waker: Option<Arc<Waker>>,
    /// Flushes asked for since the start.
    pub(super) flushes_asked: AtomicU64,
    /// Flushes done: every request queued before the one asked last was stored first.
    pub(super) flushes_done: Mutex<u64>,
    pub(super) flushed_cv: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct Inbox {
    pub(super) bytes: Vec<u8>,
    /// What followed the start, duration and status in the last whole record queued into
    /// `bytes` (see `Record::write_rest`): a request whose rest is the same is queued as a
    /// repeat of it, its start, duration and status alone. Only this inbox's thread reads
    /// it, so that it stays in that core's cache, where `bytes` is taken by the worker.
    pub(super) last: Vec<u8>,
    /// Where the next request's rest is written, to be compared with `last`.
    pub(super) next: Vec<u8>,
    /// Requests this inbox's thread handed to tracking, queued or turned away: counted
    /// here rather than in a counter all threads share, whose cache line would pass
    /// between their cores with every request.
    pub(super) queued: u64,
}

pub(super) static QUEUE: OnceCell<Queue> = OnceCell::new();

/// What became of every request handed to tracking, by counter (see [`TrackingCounts`]).
#[derive(Debug)]
pub(super) struct Counts {
    /// Requests handed to tracking with no queue, and those of the inboxes forgotten.
    pub(super) queued: AtomicU64,
    pub(super) stored: AtomicU64,
    pub(super) trimmed: AtomicU64,
    pub(super) full: AtomicU64,
    pub(super) no_database: AtomicU64,
    pub(super) unbuilt: AtomicU64,
    pub(super) unstored: AtomicU64,
}

pub(super) static COUNTS: Counts = Counts {
    queued: AtomicU64::new(0),
    stored: AtomicU64::new(0),
    trimmed: AtomicU64::new(0),
    full: AtomicU64::new(0),
    no_database: AtomicU64::new(0),
    unbuilt: AtomicU64::new(0),
    unstored: AtomicU64::new(0),
};

/// What became of the requests handed to request tracking since the program started. Once
/// [`flush_tracking`] has returned `true`, every request queued before it is counted in
/// exactly one of `stored`, `dropped_full`, `dropped_no_database`, `dropped_unbuilt` and
/// `dropped_unstored`; `trimmed` counts the stored entries that the caps removed since.
///
/// ```no_run
/// let c = stacktrace::http::tracking_counts();
/// println!("{} stored, {} trimmed, {} dropped", c.stored, c.trimmed, c.dropped());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackingCounts {
    /// Requests whose response ended with tracking on.
    pub queued: u64,
    /// Entries written to the database.
    pub stored: u64,
    /// Stored entries removed, the oldest first, to hold the tree to its caps.
    pub trimmed: u64,
    /// Dropped because the thread's inbox held `8 MiB` of requests waiting.
    pub dropped_full: u64,
    /// Dropped because no database was open, or its tracking tree could not be opened.
    pub dropped_no_database: u64,
    /// Dropped because its entry could not be built (a queued record unreadable, a user
    /// value that is not JSON, a panic while building it).
    pub dropped_unbuilt: u64,
    /// Dropped because the database refused its block.
    pub dropped_unstored: u64,
}

impl TrackingCounts {
    /// Every request dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_no_database + self.dropped_unbuilt + self.dropped_unstored
    }
}

/// What became of the requests handed to request tracking (see [`TrackingCounts`]).
pub fn tracking_counts() -> TrackingCounts {
    let c = &COUNTS;
    let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
    // Read under the lock that forgetting an inbox takes, so that its count is seen once.
    let queued = match QUEUE.get() {
        Some(q) => {
            let inboxes = lock(&q.inboxes);
            get(&c.queued) + inboxes.iter().map(|i| lock(i).queued).sum::<u64>()
        }
        None => get(&c.queued),
    };
    TrackingCounts {
        queued,
        stored: get(&c.stored),
        trimmed: get(&c.trimmed),
        dropped_full: get(&c.full),
        dropped_no_database: get(&c.no_database),
        dropped_unbuilt: get(&c.unbuilt),
        dropped_unstored: get(&c.unstored),
    }
}

/// A thread's inbox with the queue it is registered in.
pub(super) type MyInbox = (*const Queue, Arc<Mutex<Inbox>>);

thread_local! {
    /// This thread's inbox, once it has queued a request.
    static INBOX: std::cell::RefCell<Option<MyInbox>> = const { std::cell::RefCell::new(None) };
}

impl Queue {
    /// A queue whose pushes wake `waker`'s worker (none in tests).
    pub(super) fn new(waker: Option<Arc<Waker>>) -> Queue {
        Queue {
            inboxes: Mutex::new(Vec::new()),
            waker,
            flushes_asked: AtomicU64::new(0),
            flushes_done: Mutex::new(0),
            flushed_cv: Condvar::new(),
        }
    }
}

/// Request tracking's queue, given to the background worker as a duty with the first
/// entry, once the database is open and the worker runs.
pub(super) fn queue() -> Option<&'static Queue> {
    if let Some(q) = QUEUE.get() {
        return Some(q);
    }
    let rt = runtime()?;
    store()?;
    if !rt.worker.waker().is_running() {
        return None;
    }
    let mut created = false;
    let q = QUEUE.get_or_init(|| {
        created = true;
        Queue::new(Some(rt.worker.waker().clone()))
    });
    if created {
        rt.worker.add(Box::new(TrackingDuty::new(q)));
        crate::runtime::guard::flush_at_exit("tracked requests", flush_tracking);
    }
    Some(q)
}

/// Calls `use_it` with the record of a finished request. A request whose body and handler
/// are done is the tracker's alone: its state is taken whole, and what the body and the
/// handler added is read without the lock (whose two updates, with the two of the shared
/// count, cost more on a busy core than the rest of the record). Otherwise what they added
/// stays locked meanwhile, so that the record can borrow it.
pub(super) fn with_record<R>(f: Following, use_it: impl FnOnce(&Record<'_>) -> R) -> R {
    let Following {
        state,
        started,
        caps,
        status,
        duration_us,
        body_limit,
        response,
        response_type,
    } = f;
    // Declared so that the lock is given back before its state is dropped.
    let (owned, taken, kept, guard);
    let (state, shared): (&RequestState, &Shared) = match Arc::try_unwrap(state) {
        Ok(mut state) => {
            taken = std::mem::take(
                state
                    .shared
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            owned = state;
            (&owned, &taken)
        }
        Err(state) => {
            kept = state;
            guard = lock(&kept.shared);
            (&kept, &guard)
        }
    };
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
    let body = (body_limit > 0).then_some(&shared.body);
    let record = Record {
        started_us: crate::model::time::wall_us_of(started),
        duration_us,
        status,
        caps,
        body_limit,
        method: state.method.as_str(),
        path: state.path(),
        query: state.head.query(),
        client_addr: state.client_addr.as_deref(),
        headers: Headers {
            count: state.head.header_count(),
            bytes: state.head.header_bytes(),
        },
        request_body: body.as_ref().map(|b| (&b.bytes[..], b.seen)),
        response_body: (response.bytes(), response.seen()),
        response_type: response_type.as_ref().map(|v| v.as_bytes()),
        user: &user,
        sensitive,
        data: &data,
    };
    use_it(&record)
}

impl Queue {
    /// Queues a finished request in this thread's inbox, or counts it dropped when the
    /// inbox is full.
    pub(super) fn push(&self, f: Following) {
        let mut f = Some(f);
        let _ = INBOX.try_with(|mine| {
            let mut mine = mine.borrow_mut();
            let Some(f) = f.take() else { return };
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
        if let Some(f) = f {
            self.push_to(&self.new_inbox(), f);
        }
    }

    /// A new inbox, registered for the tracking thread to take from.
    fn new_inbox(&self) -> Arc<Mutex<Inbox>> {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        lock(&self.inboxes).push(inbox.clone());
        inbox
    }

    pub(super) fn push_to(&self, inbox: &Mutex<Inbox>, f: Following) {
        with_record(f, |record| {
            {
                let mut inbox = lock(inbox);
                let Inbox {
                    bytes,
                    last,
                    next,
                    queued,
                } = &mut *inbox;
                *queued += 1;
                next.clear();
                record.write_rest(next);
                // A repeat needs the whole record it repeats in the same buffer: a buffer
                // the worker swapped in is empty.
                let repeat = !bytes.is_empty() && next == last;
                let len = if repeat { HEAD } else { HEAD + next.len() };
                if bytes.len() + len > INBOX_BYTES {
                    COUNTS.full.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if repeat {
                    Record::put_repeat(bytes, record.varying());
                } else {
                    Record::put_whole(bytes, record.varying(), next);
                    std::mem::swap(next, last);
                }
                // A large request once served leaves no large buffer behind.
                if next.capacity() > REST_KEPT {
                    *next = Vec::new();
                }
            }
            self.wake_if_idle();
        });
    }

    /// Wakes the worker from a long sleep: while it runs, it takes the inboxes when the
    /// next take is due (see `TrackingDuty::gathers`).
    fn wake_if_idle(&self) {
        if let Some(w) = &self.waker {
            w.wake_if_idle();
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
        inboxes.retain(|inbox| {
            let held = lock(inbox);
            let kept = Arc::strong_count(inbox) > 1 || !held.bytes.is_empty();
            if !kept {
                COUNTS.queued.fetch_add(held.queued, Ordering::SeqCst);
            }
            kept
        });
        for inbox in inboxes.iter() {
            let mut inbox = lock(inbox);
            if !inbox.bytes.is_empty() {
                let spare = spares.pop().unwrap_or_default();
                taken.push(std::mem::replace(&mut inbox.bytes, spare));
            }
        }
    }
}

/// Tracking entries dropped since the program started, whatever the reason (see
/// [`tracking_counts`] for each).
pub fn tracking_dropped() -> u64 {
    tracking_counts().dropped()
}

/// Waits until every tracking entry queued before the call is stored and the database
/// flushed (at most `timeout`); says whether it finished. Entries are queued when a
/// response body ends. Dropping the [`Guard`](crate::Guard) does this too.
///
/// ```no_run
/// stacktrace::http::flush_tracking(std::time::Duration::from_secs(5));
/// ```
pub fn flush_tracking(timeout: Duration) -> bool {
    let Some(q) = QUEUE.get() else {
        return true;
    };
    let deadline = std::time::Instant::now() + timeout;
    // Asked after everything this caller saw queued: the worker reads the count before it
    // takes the inboxes, so the take that answers it holds all of that.
    let target = q.flushes_asked.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(w) = &q.waker {
        // The worker cannot wait for itself.
        if w.is_current() {
            return false;
        }
        w.wake();
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

/// Request tracking's duty on the background worker: takes everything queued at once,
/// then builds the entries (redacted, encoded) and stores them a slice of at most `SLICE`
/// a turn, in the order of their ids.
pub(super) struct TrackingDuty {
    q: &'static Queue,
    /// The log, opened at the first turn; `None` within when it cannot be.
    log: Option<Option<TrackingLog>>,
    /// Whether a failure to store was told.
    reported: bool,
    spares: Vec<Vec<u8>>,
    /// The buffers of the take being stored.
    taken: Vec<Vec<u8>>,
    /// The records of that take in id order: the id, the buffer, where the record starts,
    /// and where the whole record it repeats starts (its own place unless it repeats one);
    /// and how many of them are stored. Places are `u32`: a buffer holds `INBOX_BYTES` at
    /// most.
    order: Vec<(u128, u32, u32, u32)>,
    done: usize,
    /// The block being packed: it fills across the slices of a take, and is stored when
    /// full or at the take's end.
    open: OpenBlock,
    /// The whole record whose entry was packed last, by buffer and place: a record that
    /// repeats it is stored by repeating that entry (see `store_slice`).
    previous: Option<(usize, usize)>,
    /// The caps of the take's entries (each request's, read with it; the last one read).
    caps: (u64, u64),
    /// The flush the take answers, if one was asked before it.
    answers: Option<u64>,
    flushes_done: u64,
    /// When the last take was made.
    last_take: Instant,
}

impl TrackingDuty {
    pub(super) fn new(q: &'static Queue) -> TrackingDuty {
        TrackingDuty {
            q,
            log: None,
            reported: false,
            spares: Vec::new(),
            taken: Vec::new(),
            order: Vec::new(),
            done: 0,
            open: OpenBlock::default(),
            previous: None,
            caps: (u64::MAX, u64::MAX),
            answers: None,
            flushes_done: 0,
            last_take: Instant::now(),
        }
    }

    /// Takes what the inboxes hold and puts its records in id order; says whether there
    /// is anything to do.
    fn take(&mut self) -> bool {
        let asked = self.q.flushes_asked.load(Ordering::SeqCst);
        self.answers = (asked > self.flushes_done).then_some(asked);
        if self.answers.is_none() && self.last_take.elapsed() < GATHER {
            return false;
        }
        self.last_take = Instant::now();
        // The requests queued from now on are placed on the wall clock as it reads now.
        crate::model::time::read_wall_clock();
        self.q.take_all(&mut self.taken, &mut self.spares);
        // Each record gets its id (its start, then the take's count) first, so that the entries
        // are built in the order they are stored and packed as they are built.
        self.order.clear();
        self.done = 0;
        self.previous = None;
        self.caps = (u64::MAX, u64::MAX);
        // The random halves of the take's ids count up from one random number, drawn once
        // a take: two ids meet only if two takes' runs overlap and two of their requests
        // start in the same microsecond. In a block, each id is stored as a small step from
        // the one before.
        let mut low = crate::model::random::random_u64();
        for (i, bytes) in self.taken.iter().enumerate() {
            let mut at = 0;
            // The whole record that a repeating one repeats: the last one before it.
            let mut whole = None;
            while at < bytes.len() {
                match Record::own(bytes, at) {
                    Some((repeat, (started_us, ..), next)) => {
                        if !repeat {
                            whole = Some(at);
                        }
                        match whole {
                            Some(whole) => {
                                low = low.wrapping_add(1);
                                self.order.push((
                                    EventId::with_low(started_us, low).0,
                                    i as u32,
                                    at as u32,
                                    whole as u32,
                                ));
                            }
                            // A repeat with nothing before it to repeat.
                            None => {
                                COUNTS.unbuilt.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        at = next;
                    }
                    // A record whose length cannot be read: the rest of the buffer cannot
                    // be either.
                    None => {
                        COUNTS.unbuilt.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        self.order.sort_unstable_by_key(|&(id, ..)| id);
        !self.taken.is_empty() || self.answers.is_some()
    }

    /// Builds and stores the next slice of the take.
    fn store_slice(&mut self) {
        let store = match &self.log {
            Some(_) => None,
            None => store(),
        };
        let log = self.log.get_or_insert_with(|| {
            let store = store?;
            TrackingLog::open(store)
                .map_err(|e| {
                    crate::diag::say(&format!("stacktrace: request tracking is off: {e}"));
                })
                .ok()
        });
        let end = (self.done + SLICE).min(self.order.len());
        let slice = &self.order[self.done..end];
        self.done = end;
        let Some(log) = log else {
            COUNTS
                .no_database
                .fetch_add(slice.len() as u64, Ordering::Relaxed);
            return;
        };
        let taken = &self.taken;
        let caps = &mut self.caps;
        let mut cache = TakeCache::default();
        let mut writer = log.writer(&mut self.open);
        // The whole record packed last, by place, with what it holds past its start,
        // duration and status: a record that holds the same makes the same entry but for
        // those (see `entry_of`), and is stored by repeating that entry's texts.
        let mut previous: Option<((usize, usize), &[u8])> = self
            .previous
            .and_then(|(i, at)| Record::split(&taken[i], at).map(|(_, rest)| ((i, at), rest)));
        for &(id, i, at, whole) in slice {
            let (i, at, whole) = (i as usize, at as usize, whole as usize);
            let bytes = &taken[i];
            let own = Record::own(bytes, at).map(|(_, own, _)| own);
            let split = Record::split(bytes, whole);
            if let (
                Some((place, before)),
                Some((timestamp_us, duration_us, status)),
                Some((_, rest)),
            ) = (previous, own, split)
            {
                let own = Own {
                    id: EventId(id),
                    timestamp_us,
                    duration_us,
                    status,
                };
                if (place == (i, whole) || rest == before) && writer.push_repeat(own) {
                    continue;
                }
            }
            previous = None;
            let mark = writer.mark();
            let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let (mut record, _) = Record::read(bytes, whole)?;
                (record.started_us, record.duration_us, record.status) = own?;
                *caps = record.caps;
                entry_of(&record, EventId(id), &mut cache, |parts| writer.push(parts))
            }));
            if matches!(built, Ok(Some(()))) {
                previous = split.map(|(_, rest)| ((i, whole), rest));
            } else {
                writer.rewind(mark);
                COUNTS.unbuilt.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(cache);
        let take_done = self.done == self.order.len();
        self.previous = previous.filter(|_| !take_done).map(|(place, _)| place);
        let outcome = if take_done {
            writer.finish(caps.0, caps.1)
        } else {
            writer.pause()
        };
        COUNTS.stored.fetch_add(outcome.stored, Ordering::Relaxed);
        COUNTS.trimmed.fetch_add(outcome.trimmed, Ordering::Relaxed);
        COUNTS.unstored.fetch_add(outcome.lost, Ordering::Relaxed);
        if let Some(e) = outcome.error {
            if !self.reported {
                self.reported = true;
                crate::diag::say(&format!(
                    "stacktrace: could not store tracked requests: {e}"
                ));
            }
        }
    }

    /// Gives the take's buffers back as spares, and answers the flush it holds.
    fn finish_take(&mut self) {
        for mut spare in self.taken.drain(..) {
            spare.clear();
            if spare.capacity() <= INBOX_KEPT {
                self.spares.push(spare);
            }
        }
        self.order.clear();
        self.done = 0;
        if let Some(asked) = self.answers.take() {
            if let Some(store) = store() {
                let _ = store.flush();
            }
            self.flushes_done = asked;
            *lock(&self.q.flushes_done) = asked;
            self.q.flushed_cv.notify_all();
        }
    }
}

impl Duty for TrackingDuty {
    fn turn(&mut self) -> Turn {
        if self.done == self.order.len() && !self.take() {
            return Turn::Idle;
        }
        if self.done < self.order.len() {
            self.store_slice();
        }
        if self.done < self.order.len() {
            return Turn::More;
        }
        self.finish_take();
        Turn::Done
    }

    /// Requests gather in the inboxes between takes: the next is due `GATHER` after the
    /// last.
    fn gathers(&self) -> Option<Duration> {
        Some(GATHER.saturating_sub(self.last_take.elapsed()))
    }

    fn is_empty(&self) -> bool {
        self.done == self.order.len()
            && self.q.all_empty()
            && self.q.flushes_asked.load(Ordering::SeqCst) == self.flushes_done
    }
}

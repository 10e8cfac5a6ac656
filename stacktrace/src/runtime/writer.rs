//! The background writer: resolves, redacts and stores queued events off the calling
//! thread, through a bounded queue that never blocks a capture. Panics come finished and
//! already journaled by the hook (see the spool module); the writer stores them and tells
//! the database they are in. It is a duty of the background worker (see [`super::worker`]),
//! which polls while work is recent, so that a capture seldom pays for a wake-up.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capture::pending::PendingEvent;
use crate::capture::trace::RawTrace;
use crate::model::drop::DropReason;
use crate::model::event::CrashEvent;
use crate::pipeline::build::event_from_pending;
use crate::runtime::install::{runtime, Runtime, Sink};
use crate::runtime::repeats::{key_of, Overflow, Repeats, FIRST_ROOM};
use crate::runtime::worker::{Duty, Turn, Waker, Worker};

thread_local! {
    /// Set on the writer thread: its panics must not be stored through the database it may
    /// have been using when it panicked.
    pub(crate) static IS_WRITER: Cell<bool> = const { Cell::new(false) };
}

/// How often the exit handler looks whether its flush is done. (Only Unix has the exit
/// handler, and what serves it.)
#[cfg_attr(not(unix), allow(dead_code))]
const EXIT_POLL: Duration = Duration::from_millis(1);
/// Events stored in one batch at most.
const BATCH: usize = 512;

/// A panic the hook journaled, redacted and filtered, with its stack as taken when its
/// frames are still to be resolved (see [`crate::pipeline::resolve::modules`]).
#[derive(Debug)]
pub(crate) struct Journaled {
    pub(crate) event: CrashEvent,
    pub(crate) trace: Option<RawTrace>,
    /// The secrets of the event's calls, to redact the source lines of its frames once
    /// they are resolved. Never written.
    pub(crate) secrets: Vec<String>,
}

pub(crate) enum Job {
    /// An event, with its failure's key when it is the first copy of repeats counted while
    /// the queue was full.
    Event(Box<PendingEvent>, Option<u64>),
    /// A panic already in the journal.
    Journaled(Box<Journaled>),
    Flush(SyncSender<()>),
    /// A flush that says it is done by setting [`Writer`]'s `flushed_mark` to its mark:
    /// the exit handler waits for it without channels, which may need the thread-locals
    /// that `exit` has already destroyed.
    #[cfg_attr(not(unix), allow(dead_code))]
    FlushMark(u64),
}

impl Job {
    fn is_event(&self) -> bool {
        matches!(self, Job::Event(..) | Job::Journaled(_))
    }
}

/// How many times the panic hook tries the queue's lock before it stores the event itself.
const HOOK_TRIES: u32 = 100;
/// How many panics whose frames are still addresses may be queued past the queue's bound.
const PANIC_ROOM: usize = 256;

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    events: usize,
}

/// The sending side of the writer's queue.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Arc<Mutex<Queue>>,
    capacity: usize,
    waker: Arc<Waker>,
    /// Events queued so far.
    queued: AtomicU64,
    /// `queued` as it was when a flush that has finished was asked for: when the two are
    /// equal, nothing waits to be stored or flushed.
    flushed_through: AtomicU64,
    /// The last mark given to a [`Job::FlushMark`], and the last one done.
    #[cfg_attr(not(unix), allow(dead_code))]
    marks: AtomicU64,
    flushed_mark: Arc<AtomicU64>,
    /// The repeats counted while the queue was full.
    repeats: Arc<Repeats>,
}

/// What became of an event given to the writer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Queued, to be stored.
    Queued,
    /// The queue was full: counted in the group of an earlier copy of its failure.
    Counted,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Event(e, _) => write!(f, "Event({})", e.id),
            Job::Journaled(e) => write!(f, "Journaled({})", e.event.id),
            Job::Flush(_) => f.write_str("Flush"),
            Job::FlushMark(m) => write!(f, "FlushMark({m})"),
        }
    }
}

impl Writer {
    /// A writer whose work is done by `worker` once [`spawn`](Self::spawn) has given it.
    pub(crate) fn new(capacity: usize, worker: &Worker) -> Writer {
        Writer {
            queue: Arc::new(Mutex::new(Queue::default())),
            capacity,
            waker: worker.waker().clone(),
            queued: AtomicU64::new(0),
            flushed_through: AtomicU64::new(0),
            marks: AtomicU64::new(0),
            flushed_mark: Arc::new(AtomicU64::new(0)),
            repeats: Arc::default(),
        }
    }

    /// Queues `job`; an event within the queue's bound when `bounded`.
    fn push(&self, job: Job, bounded: bool) -> Result<(), DropReason> {
        self.push_within(job, bounded.then_some(self.capacity))
            .map_err(|(reason, _)| reason)
    }

    /// Queues `job`; an event only while fewer than `bound` are queued. Gives the job back
    /// with the reason when it could not be queued.
    fn push_within(&self, job: Job, bound: Option<usize>) -> Result<(), (DropReason, Job)> {
        if !self.waker.is_running() {
            return Err((DropReason::StorageError, job));
        }
        {
            // Nothing in the critical section can panic, so a poisoned lock is consistent.
            let mut q = crate::sync::lock(&self.queue);
            if job.is_event() {
                if bound.is_some_and(|b| q.events >= b) {
                    return Err((DropReason::QueueFull, job));
                }
                q.events += 1;
                self.queued.fetch_add(1, Ordering::SeqCst);
            }
            q.jobs.push_back(job);
        }
        self.waker.wake_if_sleeping();
        Ok(())
    }

    /// Queues an event. When the queue is full, counts it as a repeat of a failure whose
    /// copy is on its way to the store, or queues it past the bound as its failure's first
    /// copy (see [`crate::runtime::repeats`]); else says why it was dropped. Never waits
    /// for the writer.
    pub(crate) fn try_send(&self, p: PendingEvent) -> Result<Sent, DropReason> {
        let p = match self.push_within(Job::Event(Box::new(p), None), Some(self.capacity)) {
            Ok(()) => return Ok(Sent::Queued),
            Err((DropReason::QueueFull, Job::Event(p, _))) => p,
            Err((reason, _)) => return Err(reason),
        };
        let key = key_of(&p);
        let timestamp_us = p.timestamp_us;
        let room = self.capacity.saturating_add(FIRST_ROOM);
        let outcome = self.repeats.overflow(key, timestamp_us, || {
            self.push_within(Job::Event(p, Some(key)), Some(room))
                .is_ok()
        })?;
        if outcome == Overflow::Counted {
            // Counted after the writer's last look, it is taken at its next turn.
            self.waker.wake_if_sleeping();
            return Ok(Sent::Counted);
        }
        Ok(Sent::Queued)
    }

    /// From the panic hook: queues a journaled event for storing, or gives it back when the
    /// queue is full, the writer is not running, or the queue's lock stays taken (the hook
    /// waits for no lock); the hook then stores it itself.
    pub(crate) fn try_send_journaled(&self, event: Box<Journaled>) -> Result<(), Box<Journaled>> {
        if !self.waker.is_running() {
            return Err(event);
        }
        let mut tries = 0;
        let mut q = loop {
            match self.queue.try_lock() {
                Ok(q) => break q,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if tries < HOOK_TRIES => {
                    tries += 1;
                    std::thread::yield_now();
                }
                Err(std::sync::TryLockError::WouldBlock) => return Err(event),
            }
        };
        // A panic still to be resolved is queued past the bound, within `PANIC_ROOM`: the
        // hook must not resolve it, and only the writer can store it in this process.
        let room = match event.trace {
            Some(_) => self.capacity.saturating_add(PANIC_ROOM),
            None => self.capacity,
        };
        if q.events >= room {
            return Err(event);
        }
        q.events += 1;
        self.queued.fetch_add(1, Ordering::SeqCst);
        q.jobs.push_back(Job::Journaled(event));
        drop(q);
        self.waker.wake_if_sleeping();
        Ok(())
    }

    /// Waits until every event queued before the call is stored and flushed, or the
    /// timeout passes; says whether it finished.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let queued = self.queued.load(Ordering::SeqCst);
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if self.push(Job::Flush(ack_tx), false).is_err() {
            return false;
        }
        self.waker.wake();
        let done = ack_rx.recv_timeout(timeout).is_ok();
        if done {
            self.flushed_through.fetch_max(queued, Ordering::SeqCst);
        }
        done
    }

    /// From the exit handler: like [`Writer::flush`], and at once when nothing was queued
    /// since the last flush (the guard's, when `main` returned). Uses no thread-local: the
    /// exiting thread's are destroyed before exit handlers run. On the writer thread (an
    /// exit from a `before_store` hook) it cannot wait for itself and says it did not finish.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn flush_at_exit(&self, timeout: Duration) -> bool {
        let queued = self.queued.load(Ordering::SeqCst);
        if queued == self.flushed_through.load(Ordering::SeqCst) {
            return true;
        }
        if IS_WRITER.try_with(Cell::get).unwrap_or(false) || timeout.is_zero() {
            return false;
        }
        let mark = self.marks.fetch_add(1, Ordering::SeqCst) + 1;
        if self.push(Job::FlushMark(mark), false).is_err() {
            return false;
        }
        self.waker.wake();
        let start = Instant::now();
        while self.flushed_mark.load(Ordering::SeqCst) < mark {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(EXIT_POLL);
        }
        self.flushed_through.fetch_max(queued, Ordering::SeqCst);
        true
    }

    /// Events queued and not yet flushed, as far as finished flushes tell.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn unflushed(&self) -> u64 {
        self.queued
            .load(Ordering::SeqCst)
            .saturating_sub(self.flushed_through.load(Ordering::SeqCst))
    }

    /// Starts the background worker with the writer as its first duty. It runs for the
    /// life of the process.
    pub(crate) fn spawn(&self, worker: &Worker) -> std::io::Result<()> {
        let duty = WriterDuty {
            queue: self.queue.clone(),
            flushed_mark: self.flushed_mark.clone(),
            reported: false,
            buffers: Buffers::default(),
            acks: Vec::new(),
            calls: Default::default(),
            repeats: self.repeats.clone(),
        };
        worker.spawn(crate::error::WRITER_THREAD, Box::new(duty), || {
            IS_WRITER.with(|w| w.set(true));
        })
    }
}

/// Moves up to a batch of jobs from the queue into `jobs`.
fn take_jobs(queue: &Mutex<Queue>, jobs: &mut Vec<Job>) {
    let mut q = crate::sync::lock(queue);
    let n = q.jobs.len().min(BATCH);
    jobs.extend(q.jobs.drain(..n));
    q.events -= jobs.iter().filter(|j| j.is_event()).count();
}

/// What the writer reuses from batch to batch, so that a batch allocates no buffers.
#[derive(Default)]
struct Buffers {
    jobs: Vec<Job>,
    queued: Vec<Queued>,
    events: Vec<CrashEvent>,
}

/// The writer's side of the queue, as a duty of the background worker.
struct WriterDuty {
    queue: Arc<Mutex<Queue>>,
    flushed_mark: Arc<AtomicU64>,
    /// Whether a failure to store was told.
    reported: bool,
    buffers: Buffers,
    acks: Vec<SyncSender<()>>,
    /// The `#[capture]` call counts summed so far, added to the store now and then.
    calls: crate::runtime::functions::CallTotals,
    repeats: Arc<Repeats>,
}

impl Duty for WriterDuty {
    /// Stores a batch of at most `BATCH` events, and answers the flushes among them.
    fn turn(&mut self) -> Turn {
        let Some(rt) = runtime() else {
            return Turn::Idle;
        };
        let WriterDuty {
            queue,
            flushed_mark,
            reported,
            buffers,
            acks,
            calls,
            repeats,
        } = self;
        take_jobs(queue, &mut buffers.jobs);
        if buffers.jobs.is_empty() {
            add_repeats(rt, repeats);
            calls.now_and_then(rt);
            return Turn::Idle;
        }
        let mut mark = None;
        let mut jobs = std::mem::take(&mut buffers.jobs);
        for job in jobs.drain(..) {
            match job {
                Job::Event(p, key) => buffers.queued.push(Queued::Pending(p, key)),
                Job::Journaled(e) => buffers.queued.push(Queued::Journaled(e)),
                Job::Flush(ack) => {
                    // Everything queued before the flush request is in this batch or an
                    // earlier one: store the batch first.
                    store_batch(rt, buffers, repeats, reported);
                    acks.push(ack);
                }
                Job::FlushMark(m) => {
                    store_batch(rt, buffers, repeats, reported);
                    mark = Some(m);
                }
            }
        }
        buffers.jobs = jobs;
        store_batch(rt, buffers, repeats, reported);
        add_repeats(rt, repeats);
        if !acks.is_empty() || mark.is_some() {
            calls.persist(rt);
            rt.sink.persist_drops(&rt.drops);
            let _ = rt.sink.flush();
            for ack in acks.drain(..) {
                let _ = ack.try_send(());
            }
            if let Some(m) = mark {
                flushed_mark.fetch_max(m, Ordering::SeqCst);
            }
        } else if rt.drops.peek().iter().any(|n| *n > 0) {
            rt.sink.persist_drops(&rt.drops);
        }
        if self.is_empty() {
            Turn::Done
        } else {
            Turn::More
        }
    }

    fn is_empty(&self) -> bool {
        crate::sync::lock(&self.queue).jobs.is_empty() && !self.repeats.any_waiting()
    }

    fn settle(&mut self) {
        if let Some(rt) = runtime() {
            rt.sink.settle();
            // Cheap (an atomic load), and said once: a program that never flushes still
            // hears that its panics are no longer captured.
            crate::runtime::hook::is_capturing_panics();
        }
    }
}

/// An event taken from the queue.
enum Queued {
    /// Still to be built (resolved, redacted) and filtered; with its failure's key when
    /// it is the first copy of counted repeats.
    Pending(Box<PendingEvent>, Option<u64>),
    /// Filtered by the panic hook, and in the journal; its frames may be unresolved.
    Journaled(Box<Journaled>),
}

/// Stores the queued events of `buffers`, leaving its buffers empty. Each event is built
/// (or resolved) and filtered under its own guard: a panic there costs that event alone,
/// never the batch.
fn store_batch(
    rt: &'static Runtime,
    buffers: &mut Buffers,
    repeats: &Repeats,
    reported: &mut bool,
) {
    if buffers.queued.is_empty() {
        return;
    }
    let Buffers { queued, events, .. } = buffers;
    events.clear();
    let mut files = crate::pipeline::resolve::modules::ModuleFiles::default();
    // Journaled events in `events`, and pending events whose building panicked.
    let mut journaled = 0;
    let mut unbuilt = 0;
    // The first copies of counted repeats: their place in `events` and their key.
    let mut firsts: Vec<(usize, u64)> = Vec::new();
    for q in queued.drain(..) {
        match q {
            Queued::Journaled(j) => {
                if let Some(event) = finished(rt, *j, &mut files) {
                    journaled += 1;
                    events.push(event);
                }
                // Else it stays in the journal, counted as unstored: the next open
                // resolves and stores it.
            }
            Queued::Pending(p, key) => {
                let built = catch_unwind(AssertUnwindSafe(|| event_from_pending(*p, &rt.build)));
                match built {
                    Ok(mut event) => {
                        if rt.filters.keep(&mut event) {
                            if let Some(key) = key {
                                firsts.push((events.len(), key));
                            }
                            events.push(event);
                        } else {
                            let repeated = key.map_or(0, |k| repeats.lost(k));
                            for _ in 0..=repeated {
                                rt.drops.add(DropReason::Filtered);
                            }
                        }
                    }
                    Err(_) => unbuilt += 1 + key.map_or(0, |k| repeats.lost(k)) as usize,
                }
            }
        }
    }
    let mut failure = (unbuilt > 0).then(|| (unbuilt, "an event could not be built".to_owned()));
    if !events.is_empty() {
        let persisted = catch_unwind(AssertUnwindSafe(|| rt.sink.persist_batch(events)));
        match persisted {
            Ok(Ok(outcomes)) => {
                for (i, key) in firsts {
                    if let Some(e) = events.get(i) {
                        repeats.stored(key, &e.fingerprint);
                    }
                }
                after_stored(rt, events, &outcomes, journaled);
            }
            // Journaled events are not lost when storing fails: they stay counted as
            // unstored, so the journal keeps them until the next open merges them.
            Ok(Err((lost, e))) => {
                let repeated: u64 = firsts.iter().map(|(_, k)| repeats.lost(*k)).sum();
                let lost = unbuilt + lost.saturating_sub(journaled) + repeated as usize;
                failure = Some((lost, crate::diag::error_chain(&e)));
            }
            Err(_) => {
                let repeated: u64 = firsts.iter().map(|(_, k)| repeats.lost(*k)).sum();
                let lost = unbuilt + events.len().saturating_sub(journaled) + repeated as usize;
                failure = Some((lost, "storing a batch panicked".to_owned()));
            }
        }
    }
    events.clear();
    if let Some((lost, why)) = failure {
        for _ in 0..lost {
            rt.drops.add(DropReason::StorageError);
        }
        // One line for the first failure; the counter tells the rest.
        if !*reported {
            *reported = true;
            crate::diag::say(&format!("stacktrace: could not store an event: {why}"));
        }
    }
}

/// Adds the repeats counted while the queue was full to the groups of their stored copies.
/// Counts that cannot be added are drops: of storage when the store fails, of the queue
/// when events go to a spool, which has no groups.
fn add_repeats(rt: &Runtime, repeats: &Repeats) {
    let counted = repeats.take();
    if counted.is_empty() {
        return;
    }
    let added = match &*rt.sink {
        Sink::Store(s) => s
            .add_repeats(&counted)
            .map_err(|_| DropReason::StorageError),
        _ => Err(DropReason::QueueFull),
    };
    if let Err(reason) = added {
        for c in &counted {
            for _ in 0..c.repeats {
                rt.drops.add(reason);
            }
        }
    }
}

/// A journaled panic with its frames resolved and their source lines added; `None` when
/// that panicked, leaving the event to the journal.
fn finished(
    rt: &Runtime,
    journaled: Journaled,
    files: &mut crate::pipeline::resolve::modules::ModuleFiles,
) -> Option<CrashEvent> {
    let Journaled {
        mut event,
        trace,
        secrets,
    } = journaled;
    catch_unwind(AssertUnwindSafe(|| {
        crate::pipeline::resolve::modules::resolve_journaled(&mut event, trace.as_ref(), files);
        crate::pipeline::build::add_source_lines(&mut event.frames, &rt.build, secrets);
    }))
    .ok()?;
    Some(event)
}

/// What follows a stored batch: the journal told, the failures of `#[capture]` functions
/// noted, the mailer and the forwarder told. A panic here leaves the events stored.
fn after_stored(
    rt: &Runtime,
    events: &[CrashEvent],
    outcomes: &[crate::store::InsertOutcome],
    journaled: usize,
) {
    if let Sink::Store(s) = &*rt.sink {
        s.journaled_stored(journaled);
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Sink::Store(s) = &*rt.sink {
            // Counts are kept whether or not this bookkeeping succeeds.
            let _ = s.note_function_failures(events);
        }
        #[cfg(feature = "mail")]
        if let Some(mailer) = &rt.mail {
            mailer.notify(events, outcomes);
        }
        let _ = outcomes;
    }));
    crate::runtime::install::wake_forwarder();
}

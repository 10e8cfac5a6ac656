//! The background worker: the one thread that does, off the calling threads, what the
//! library queued to do later, in turns between its duties: the writer's events (see
//! [`super::writer`]) and, with the HTTP layer, the tracked requests.
//!
//! One thread rather than one each: on a machine of few cores every thread that wakes takes a
//! core from the program's own threads for as long as it runs, so two background threads
//! waking apart take it twice as often, each paying its own wake-up. One thread serves both
//! with one wake-up, and no duty holds the core for long: each turn does a bounded slice of
//! what waits, and the worker yields the core between slices while more waits.
//!
//! Waking a sleeping thread is a system call that costs more than queueing, so nothing
//! queued wakes the worker while it is polling: after work it looks again every
//! millisecond, and only once it has been idle for a while does it sleep long and ask to be
//! woken. A burst pays one wake-up; an idle program costs four wake-ups a second.
//!
//! A duty that lets its work gather (request tracking takes its inboxes every ten
//! milliseconds) needs no look in between: while it alone is busy, the worker waits until
//! its next turn is due instead of polling, and asks the other duties' work (events) to wake
//! it meanwhile. A server under steady load then costs a hundred wake-ups a second, not a
//! thousand, each taking a core from its threads.
//!
//! In a round with no work, the worker drops what it keeps only to go faster and has not used
//! for a while (the debug info loaded to resolve panics, see [`while_idle`]): a program that
//! panicked once does not carry tens of megabytes for the rest of its life.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crate::sync::lock;

/// Looks this often while work is recent.
const POLL: Duration = Duration::from_millis(1);
/// Empty looks before the worker counts as idle and sleeps long.
const IDLE_POLLS: u32 = 50;
/// How long an idle worker sleeps unless woken.
const LONG_SLEEP: Duration = Duration::from_millis(250);

/// The worker looks again within [`POLL`]: nothing queued needs to wake it.
const POLLING: u8 = 0;
/// The worker waits for a duty that lets its work gather: work to be done promptly (an
/// event) wakes it, work that gathers does not.
const WAITING: u8 = 1;
/// The worker sleeps long: any work wakes it.
const SLEEPING: u8 = 2;

/// How the worker rests after a round of turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rest {
    /// Looks again after [`POLL`], unwoken.
    Poll,
    /// Waits this long, woken by prompt work.
    Wait(Duration),
    /// Sleeps long, woken by any work.
    Sleep,
}

/// How to rest after `idle` rounds with no work done and `prompt_idle` rounds with no
/// work done by a duty that is looked at promptly; `gather` is the soonest turn due of the
/// duties that let work gather, if any.
fn rest(idle: u32, prompt_idle: u32, gather: Option<Duration>) -> Rest {
    if idle >= IDLE_POLLS {
        return Rest::Sleep;
    }
    match gather {
        Some(due) if prompt_idle >= IDLE_POLLS => Rest::Wait(due.clamp(POLL, LONG_SLEEP)),
        _ => Rest::Poll,
    }
}

/// What a duty's turn did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Nothing was waiting.
    Idle,
    /// Everything that was waiting is done.
    Done,
    /// A slice is done and more waits: the next turn comes as soon as the other duties
    /// have had theirs.
    More,
}

/// Work the background worker does in turns.
pub(crate) trait Duty: Send {
    /// Does a bounded slice of what waits.
    fn turn(&mut self) -> Turn;
    /// Whether nothing waits, looked at once the worker has said it sleeps: what is queued
    /// before that wakes it, and what was queued before is seen here.
    fn is_empty(&self) -> bool;
    /// Called once each time the worker becomes idle.
    fn settle(&mut self) {}
    /// For a duty that lets its work gather between turns, how soon its next turn is due:
    /// the worker need not look before, and the duty's queue wakes it only from a long
    /// sleep ([`Waker::wake_if_idle`]). `None` (the default): the duty's work is looked at
    /// every [`POLL`] while it is busy, and wakes a worker that waits.
    fn gathers(&self) -> Option<Duration> {
        None
    }
}

/// How a queue wakes the worker: only while it does not poll.
#[derive(Debug, Default)]
pub(crate) struct Waker {
    /// `POLLING`, `WAITING` or `SLEEPING`.
    state: AtomicU8,
    thread: OnceLock<Thread>,
}

impl Waker {
    /// Wakes the worker if it waits or sleeps until woken; after queueing work to be done
    /// promptly.
    pub(crate) fn wake_if_sleeping(&self) {
        if self.state.load(Ordering::SeqCst) != POLLING {
            self.wake();
        }
    }

    /// Wakes the worker if it sleeps long; after queueing work of a duty that lets it
    /// gather (see [`Duty::gathers`]).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn wake_if_idle(&self) {
        if self.state.load(Ordering::SeqCst) == SLEEPING {
            self.wake();
        }
    }

    /// Wakes the worker now: a flush waits for it.
    pub(crate) fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// Whether the worker thread was started.
    pub(crate) fn is_running(&self) -> bool {
        self.thread.get().is_some()
    }

    /// Whether the calling thread is the worker.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn is_current(&self) -> bool {
        self.thread
            .get()
            .is_some_and(|t| t.id() == std::thread::current().id())
    }
}

/// The worker thread's handle: its waker, and the duties given to it once it runs.
#[derive(Default)]
pub(crate) struct Worker {
    waker: Arc<Waker>,
    added: Arc<Mutex<Vec<Box<dyn Duty>>>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("waker", &self.waker)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub(crate) fn waker(&self) -> &Arc<Waker> {
        &self.waker
    }

    /// Gives the worker a duty, done from its next turn on.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn add(&self, duty: Box<dyn Duty>) {
        lock(&self.added).push(duty);
        self.waker.wake();
    }

    /// Starts the worker thread, named `name`, with its first duty; `on_start` runs on it
    /// first. It runs for the life of the process.
    pub(crate) fn spawn(
        &self,
        name: &str,
        first: Box<dyn Duty>,
        on_start: fn(),
    ) -> std::io::Result<()> {
        lock(&self.added).push(first);
        let (waker, added) = (self.waker.clone(), self.added.clone());
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                on_start();
                run(&waker, &added);
            })?;
        let _ = self.waker.thread.set(handle.thread().clone());
        Ok(())
    }
}

fn run(waker: &Waker, added: &Mutex<Vec<Box<dyn Duty>>>) {
    let mut duties: Vec<Box<dyn Duty>> = Vec::new();
    // Rounds since any duty did work, and since a duty looked at promptly did.
    let (mut idle, mut prompt_idle) = (0, IDLE_POLLS);
    loop {
        {
            let mut added = lock(added);
            duties.append(&mut added);
        }
        let (mut worked, mut prompt, mut more) = (false, false, false);
        for duty in &mut duties {
            let turn = duty.turn();
            if turn != Turn::Idle {
                worked = true;
                prompt |= duty.gathers().is_none();
                more |= turn == Turn::More;
            }
        }
        prompt_idle = if prompt {
            0
        } else {
            prompt_idle.saturating_add(1)
        };
        if more {
            // Let a thread of the program have the core before the next slice.
            std::thread::yield_now();
            idle = 0;
            continue;
        }
        if worked {
            idle = 0;
        } else {
            if idle == 0 {
                for duty in &mut duties {
                    duty.settle();
                }
            }
            idle += 1;
            while_idle();
        }
        let gather = duties.iter().filter_map(|d| d.gathers()).min();
        // The state the queues see while the worker rests, how long it rests, and which
        // duties' work wakes it then.
        let (state, rest_for, wakes): (u8, Duration, fn(&dyn Duty) -> bool) =
            match rest(idle, prompt_idle, gather) {
                Rest::Poll => {
                    std::thread::park_timeout(POLL);
                    continue;
                }
                Rest::Wait(due) => (WAITING, due, |d| d.gathers().is_none()),
                Rest::Sleep => (SLEEPING, LONG_SLEEP, |_| true),
            };
        waker.state.store(state, Ordering::SeqCst);
        // Work that wakes the worker, queued before the state was set, is seen here; after,
        // it wakes the worker. (While it sleeps long, a duty that lets work gather may leave
        // some waiting a little: it looks again soon.)
        let empty = lock(added).is_empty()
            && duties
                .iter()
                .filter(|d| wakes(d.as_ref()))
                .all(|d| d.is_empty());
        std::thread::park_timeout(if empty { rest_for } else { POLL });
        waker.state.store(POLLING, Ordering::SeqCst);
    }
}

/// What the worker does each round it did no work: drops the debug info loaded to resolve
/// panics once it went unused for the configured `symbols_idle`. A look costs an atomic
/// load and a clock read.
fn while_idle() {
    if let Some(rt) = crate::runtime::install::runtime() {
        crate::pipeline::resolve::frames::release_symbols_if_idle(rt.config.symbols_idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A duty with `slices` slices of work waiting, that records its turns in `log`.
    struct Sliced {
        name: char,
        slices: usize,
        log: Arc<Mutex<String>>,
        left: Arc<AtomicUsize>,
    }

    impl Duty for Sliced {
        fn turn(&mut self) -> Turn {
            if self.slices == 0 {
                return Turn::Idle;
            }
            self.slices -= 1;
            lock(&self.log).push(self.name);
            self.left.fetch_sub(1, Ordering::SeqCst);
            if self.slices == 0 {
                Turn::Done
            } else {
                Turn::More
            }
        }
        fn is_empty(&self) -> bool {
            self.slices == 0
        }
    }

    /// Duties take turns a slice at a time, so that a long one does not hold back another,
    /// and a duty added to a running worker gets its turns too.
    #[test]
    fn duties_take_turns_slice_by_slice() {
        let worker = Worker::default();
        let log = Arc::new(Mutex::new(String::new()));
        let left = Arc::new(AtomicUsize::new(3 + 2 + 1));
        let duty = |name, slices| {
            Box::new(Sliced {
                name,
                slices,
                log: log.clone(),
                left: left.clone(),
            })
        };
        worker.add(duty('a', 3));
        worker.add(duty('b', 2));
        worker
            .spawn("stacktrace-test-worker", duty('c', 1), || {})
            .unwrap();
        assert!(worker.waker().is_running());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while left.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*lock(&log), "abcaba");
        // Added later, to a worker that may sleep long: woken at once.
        left.store(1, Ordering::SeqCst);
        worker.add(duty('d', 1));
        while left.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*lock(&log), "abcabad");
    }

    /// How the worker rests: it polls while prompt work is recent, waits for the duty that
    /// lets work gather while that alone is busy, and sleeps long once idle.
    #[test]
    fn the_worker_polls_only_while_prompt_work_is_recent() {
        let ten = Some(Duration::from_millis(10));
        assert_eq!(rest(0, 0, None), Rest::Poll);
        assert_eq!(rest(0, 0, ten), Rest::Poll);
        assert_eq!(rest(3, IDLE_POLLS - 1, ten), Rest::Poll);
        assert_eq!(
            rest(0, IDLE_POLLS, ten),
            Rest::Wait(Duration::from_millis(10))
        );
        assert_eq!(rest(0, IDLE_POLLS, None), Rest::Poll);
        // A turn due now is looked for after a poll's time; one far off, after a long
        // sleep's at most.
        assert_eq!(rest(0, IDLE_POLLS, Some(Duration::ZERO)), Rest::Wait(POLL));
        assert_eq!(
            rest(0, IDLE_POLLS, Some(Duration::from_secs(60))),
            Rest::Wait(LONG_SLEEP)
        );
        assert_eq!(rest(IDLE_POLLS, IDLE_POLLS, ten), Rest::Sleep);
        assert_eq!(rest(IDLE_POLLS, 0, None), Rest::Sleep);
    }

    /// A duty that always has work gathered, due every `every`, counting its turns.
    struct Gathering {
        every: Duration,
        turns: Arc<AtomicUsize>,
    }

    impl Duty for Gathering {
        fn turn(&mut self) -> Turn {
            self.turns.fetch_add(1, Ordering::SeqCst);
            Turn::Done
        }
        fn is_empty(&self) -> bool {
            false
        }
        fn gathers(&self) -> Option<Duration> {
            Some(self.every)
        }
    }

    /// A duty looked at promptly, with `pending` pieces of work, done one a turn.
    struct Prompt {
        pending: Arc<AtomicUsize>,
    }

    impl Duty for Prompt {
        fn turn(&mut self) -> Turn {
            match self.pending.load(Ordering::SeqCst) {
                0 => Turn::Idle,
                n => {
                    self.pending.store(n - 1, Ordering::SeqCst);
                    Turn::Done
                }
            }
        }
        fn is_empty(&self) -> bool {
            self.pending.load(Ordering::SeqCst) == 0
        }
    }

    /// While only a duty that lets work gather is busy, the worker does not poll: it takes
    /// that duty's turns when due; prompt work queued meanwhile wakes it at once, work that
    /// gathers does not.
    #[test]
    fn a_gathering_duty_is_not_polled_and_prompt_work_wakes_the_worker() {
        let worker = Worker::default();
        let turns = Arc::new(AtomicUsize::new(0));
        let pending = Arc::new(AtomicUsize::new(0));
        worker.add(Box::new(Gathering {
            every: Duration::from_secs(2),
            turns: turns.clone(),
        }));
        worker
            .spawn(
                "stacktrace-test-gather",
                Box::new(Prompt {
                    pending: pending.clone(),
                }),
                || {},
            )
            .unwrap();
        // The first turns run at once; then the worker waits for the gathering duty.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while worker.waker().state.load(Ordering::SeqCst) != WAITING {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker never waits"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let before = turns.load(Ordering::SeqCst);
        // Work that gathers does not wake a waiting worker.
        for _ in 0..50 {
            worker.waker().wake_if_idle();
            std::thread::sleep(Duration::from_millis(2));
        }
        let during = turns.load(Ordering::SeqCst) - before;
        assert!(
            during <= 1,
            "{during} turns in 100 ms of a duty due every 2 s"
        );
        // Prompt work does, long before the gathering duty is due.
        pending.store(1, Ordering::SeqCst);
        let woken = std::time::Instant::now();
        worker.waker().wake_if_sleeping();
        while pending.load(Ordering::SeqCst) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "prompt work never done"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            woken.elapsed() < Duration::from_millis(1500),
            "prompt work waited {:?}",
            woken.elapsed()
        );
    }
}

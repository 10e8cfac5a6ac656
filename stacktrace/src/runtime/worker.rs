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

use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// How a queue wakes the worker: only while it sleeps long.
#[derive(Debug, Default)]
pub(crate) struct Waker {
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Waker {
    /// Wakes the worker if it sleeps until woken; after queueing work.
    pub(crate) fn wake_if_sleeping(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
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
    let mut idle = 0;
    loop {
        {
            let mut added = lock(added);
            duties.append(&mut added);
        }
        let (mut worked, mut more) = (false, false);
        for duty in &mut duties {
            match duty.turn() {
                Turn::Idle => {}
                Turn::Done => worked = true,
                Turn::More => (worked, more) = (true, true),
            }
        }
        if more {
            // Let a thread of the program have the core before the next slice.
            std::thread::yield_now();
            idle = 0;
            continue;
        }
        if worked {
            idle = 0;
            std::thread::park_timeout(POLL);
            continue;
        }
        if idle == 0 {
            for duty in &mut duties {
                duty.settle();
            }
        }
        idle += 1;
        if idle < IDLE_POLLS {
            std::thread::park_timeout(POLL);
        } else {
            waker.sleeping.store(true, Ordering::SeqCst);
            // Work queued before the flag was set is seen here; after, it wakes the worker.
            let empty = lock(added).is_empty() && duties.iter().all(|d| d.is_empty());
            // A duty that lets work gather may leave it waiting a little: look again soon.
            std::thread::park_timeout(if empty { LONG_SLEEP } else { POLL });
            waker.sleeping.store(false, Ordering::SeqCst);
        }
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
}

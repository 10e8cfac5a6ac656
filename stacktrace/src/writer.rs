//! The background writer: resolves, redacts and stores queued events off the calling
//! thread, through a bounded queue that never blocks a capture.

use std::cell::Cell;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use crate::gate::DropReason;
use crate::install::runtime;
use crate::pipeline::{event_from_pending, PendingEvent};

thread_local! {
    /// Set on the writer thread: its panics must not be stored through the database it may
    /// have been using when it panicked.
    pub(crate) static IS_WRITER: Cell<bool> = const { Cell::new(false) };
}

pub(crate) enum Job {
    Event(Box<PendingEvent>),
    Flush(SyncSender<()>),
}

/// The sending side of the writer's queue.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Event(e) => write!(f, "Event({})", e.id),
            Job::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Writer {
    pub(crate) fn channel(capacity: usize) -> (Writer, Receiver<Job>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        (Writer { tx }, rx)
    }

    /// Queues an event, or says why it could not be.
    pub(crate) fn try_send(&self, p: PendingEvent) -> Result<(), DropReason> {
        self.tx
            .try_send(Job::Event(Box::new(p)))
            .map_err(|e| match e {
                TrySendError::Full(_) => DropReason::QueueFull,
                TrySendError::Disconnected(_) => DropReason::StorageError,
            })
    }

    /// Waits until every event queued before the call is stored and flushed, or the
    /// timeout passes; says whether it finished.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let deadline = std::time::Instant::now() + timeout;
        let mut job = Job::Flush(ack_tx);
        // The queue may be full: retry until the deadline rather than block past it.
        loop {
            match self.tx.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(j)) => {
                    if std::time::Instant::now() >= deadline {
                        return false;
                    }
                    job = j;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        ack_rx.recv_timeout(left).is_ok()
    }
}

/// Starts the writer thread on the queue's receiving side. Runs for the life of the process.
pub(crate) fn spawn(rx: Receiver<Job>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("stacktrace-writer".into())
        .spawn(move || {
            IS_WRITER.with(|w| w.set(true));
            run(rx);
        })
        .map(|_| ())
}

fn run(rx: Receiver<Job>) {
    let Some(rt) = runtime() else { return };
    let mut reported = false;
    for job in rx {
        match job {
            Job::Event(p) => {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let event = event_from_pending(*p, rt);
                    rt.sink.persist(&event, false)
                }));
                let failure = match outcome {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("the event could not be built".to_owned()),
                };
                if let Some(why) = failure {
                    rt.drops.add(DropReason::StorageError);
                    // One line for the first failure; the counter tells the rest.
                    if !reported {
                        reported = true;
                        crate::hook::say(&format!("stacktrace: could not store an event: {why}"));
                    }
                }
            }
            Job::Flush(ack) => {
                rt.sink.persist_drops(&rt.drops);
                let _ = rt.sink.flush();
                let _ = ack.try_send(());
            }
        }
        if has_pending_drops(&rt.drops) {
            rt.sink.persist_drops(&rt.drops);
        }
    }
}

/// Persisting drop counts costs a write: only when some are pending.
fn has_pending_drops(drops: &crate::gate::DropCounters) -> bool {
    drops.peek().iter().any(|n| *n > 0)
}

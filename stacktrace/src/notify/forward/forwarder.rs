//! The forwarder: a thread that sends the outbox's events, oldest first, and records what
//! became of each. Nothing is sent from the capture path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::ForwardConfig;
use super::envelope::{envelope_of, rfc3339_now};
use super::event::{event_json, Additions};
use super::send::{Answer, Sender};
use crate::error::{InstallError, StoreError};
use crate::model::event::EventId;
use crate::model::time::to_us;
use crate::store::{Refusal, Store, Unsent};

/// The thread's name.
const FORWARD_THREAD: &str = "stacktrace-forward";

/// Events read from the outbox at a time.
const BATCH: usize = 32;
/// How often an idle forwarder looks at the outbox without being woken (events merged
/// by another process's spool, a retry asked for by hand).
const IDLE_LOOK: Duration = Duration::from_secs(5);

/// What to do after one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Go on with the next.
    Next,
    /// Wait this long, then start again from the oldest unsent event.
    Pause(Duration),
}

/// Exponential back-off with jitter: each wait drawn between half and all of the
/// doubled delay, capped.
#[derive(Debug)]
struct Ladder {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Ladder {
    fn next_wait(&mut self) -> Duration {
        let factor = 1u32 << self.failures.min(20);
        self.failures = self.failures.saturating_add(1);
        let full = self.initial.saturating_mul(factor).min(self.max);
        let fraction = (crate::model::random::random_u64() % 1001) as f64 / 1000.0;
        full.mul_f64(0.5 + fraction / 2.0)
    }
}

/// The waits after failed tries: one back-off for failures that pass (network, 5xx),
/// a longer one for the server refusing us as a whole (401, 403, 404, 407). Both start
/// again once the server takes an event.
#[derive(Debug)]
pub(crate) struct Backoff {
    retry: Ladder,
    refusal: Ladder,
}

impl Backoff {
    pub(crate) fn new(config: &ForwardConfig) -> Backoff {
        Backoff {
            retry: Ladder {
                initial: config.backoff_initial,
                max: config.backoff_max,
                failures: 0,
            },
            refusal: Ladder {
                initial: config.refusal_initial,
                max: config.refusal_max,
                failures: 0,
            },
        }
    }

    pub(crate) fn reset(&mut self) {
        self.retry.failures = 0;
        self.refusal.failures = 0;
    }

    /// The wait after a failure that passes (network, timeout, 5xx).
    pub(crate) fn next_wait(&mut self) -> Duration {
        self.retry.next_wait()
    }

    /// The wait after the server refused us as a whole.
    pub(crate) fn next_refusal_wait(&mut self) -> Duration {
        self.refusal.next_wait()
    }
}

/// Set once the server's refusal of us was said on stderr: once a process.
static REFUSAL_SAID: AtomicBool = AtomicBool::new(false);

/// One event, sent; what became of it recorded in the store.
pub(crate) struct Delivery<'a> {
    pub(crate) store: &'a Store,
    pub(crate) sender: &'a Sender,
    pub(crate) additions: &'a Additions,
    pub(crate) give_up_after: Duration,
}

impl Delivery<'_> {
    /// Sends the event `id` once, records the outcome, and says what to do next.
    #[cfg(test)]
    pub(crate) fn forward(&self, id: EventId, unsent: &Unsent, backoff: &mut Backoff) -> Step {
        let mut taken = Vec::new();
        let step = self.forward_keeping(id, unsent, backoff, &mut taken);
        let _ = self.store.mark_sent(&taken);
        step
    }

    /// Sends the event `id` once, records the outcome, and says what to do next; but an
    /// event the server took is only added to `taken`, for the caller to mark sent with
    /// others in one write. Until then a crash sends it again, which is harmless: servers
    /// drop a repeated `event_id`.
    pub(crate) fn forward_keeping(
        &self,
        id: EventId,
        unsent: &Unsent,
        backoff: &mut Backoff,
        taken: &mut Vec<EventId>,
    ) -> Step {
        let event = match self.store.get(id) {
            Ok(Some(e)) => e,
            Ok(None) => {
                // Removed by retention before it could be sent.
                let refusal = Refusal {
                    reason: "removed".into(),
                    answer: "the event was removed from the database before it was sent".into(),
                };
                let _ = self.store.mark_failed(id, &refusal);
                return Step::Next;
            }
            Err(e) => {
                let refusal = Refusal {
                    reason: "unreadable".into(),
                    answer: crate::diag::error_chain(&e),
                };
                let _ = self.store.mark_failed(id, &refusal);
                return Step::Next;
            }
        };
        let envelope = envelope_of(event_json(&event, self.additions), &rfc3339_now());
        let (answer, limit) = self.sender.send(&envelope);
        match answer {
            Answer::Taken => {
                taken.push(id);
                backoff.reset();
                limit.map_or(Step::Next, Step::Pause)
            }
            Answer::Wait(wait, _) => {
                let _ = self.store.count_rate_limited();
                Step::Pause(wait)
            }
            Answer::Refused { status, answer } => {
                let refusal = Refusal {
                    reason: format!("status_{status}"),
                    answer,
                };
                let _ = self.store.mark_failed(id, &refusal);
                Step::Next
            }
            Answer::Shut { status, answer } => {
                let Some(record) = self.kept_after_failure(id, unsent, answer) else {
                    return Step::Next;
                };
                // Its body is not said: the answer is kept in the outbox's record.
                if !REFUSAL_SAID.swap(true, Ordering::SeqCst) {
                    crate::diag::say(&format!(
                        "stacktrace: the forwarding server refuses our events (HTTP \
                         {status}): forwarding pauses with a growing back-off and keeps the \
                         events until give_up_after; check the DSN's key and project, or \
                         the proxy before the server"
                    ));
                }
                let _ = self.store.mark_refused(id, &record);
                Step::Pause(backoff.next_refusal_wait())
            }
            Answer::Retry(why) => {
                let Some(record) = self.kept_after_failure(id, unsent, why) else {
                    return Step::Next;
                };
                let _ = self.store.mark_retried(id, &record);
                Step::Pause(backoff.next_wait())
            }
        }
    }

    /// The event's record after a failed try that `why` tells of, or `None` when it failed
    /// for `give_up_after` already: then it is given up, marked failed.
    fn kept_after_failure(&self, id: EventId, unsent: &Unsent, why: String) -> Option<Unsent> {
        let now = to_us(std::time::SystemTime::now());
        let first = unsent.first_failure_us.unwrap_or(now);
        let age = Duration::from_micros(now.saturating_sub(first));
        if age >= self.give_up_after {
            let refusal = Refusal {
                reason: "gave_up".into(),
                answer: why,
            };
            let _ = self.store.mark_failed(id, &refusal);
            return None;
        }
        Some(Unsent {
            attempts: unsent.attempts.saturating_add(1),
            first_failure_us: Some(first),
            last_error: why,
        })
    }
}

#[derive(Debug, Default)]
struct Shared {
    woken: Mutex<bool>,
    wake: Condvar,
    /// Set while an event is on its way, so that a drain does not end between the
    /// outbox read and the mark, nor start sending beside the thread.
    busy: AtomicBool,
    /// Set while a drain sends the outbox on the thread that drops the guard: the
    /// forwarder's thread sends nothing meanwhile.
    handed_over: AtomicBool,
    /// Until when the server asked the forwarder to wait (a rate limit, a back-off), for
    /// a drain to honour too.
    paused_until: Mutex<Option<Instant>>,
}

impl Shared {
    /// Waits until woken, at most [`IDLE_LOOK`].
    fn wait_for_wake(&self) {
        let woken = crate::sync::lock(&self.woken);
        let (mut woken, _) = self
            .wake
            .wait_timeout_while(woken, IDLE_LOOK, |w| !*w)
            .unwrap_or_else(|p| p.into_inner());
        *woken = false;
    }
}

/// The running forwarder, held by the runtime.
#[derive(Debug)]
pub(crate) struct Forwarder {
    shared: Arc<Shared>,
    store: &'static Store,
    /// The settings, with each try's timeout no longer than the drain's.
    drain_config: ForwardConfig,
    additions: Additions,
}

impl Forwarder {
    /// Starts the thread over the running program's store. `None` when the client cannot
    /// be made (a bad root certificate) or the thread cannot start, the reason added to
    /// `errors`.
    pub(crate) fn start(
        config: &ForwardConfig,
        store: &'static Store,
        errors: &mut Vec<InstallError>,
    ) -> Option<Forwarder> {
        let sender = match Sender::new(config) {
            Ok(sender) => sender,
            Err(e) => {
                errors.push(InstallError::Config(e));
                return None;
            }
        };
        let shared = Arc::new(Shared::default());
        let additions = Additions {
            environment: config.environment.clone(),
        };
        let mut backoff = Backoff::new(config);
        let give_up_after = config.give_up_after;
        let thread_shared = shared.clone();
        let thread_additions = additions.clone();
        let spawned = std::thread::Builder::new()
            .name(FORWARD_THREAD.into())
            .spawn(move || {
                yield_to_the_program();
                let delivery = Delivery {
                    store,
                    sender: &sender,
                    additions: &thread_additions,
                    give_up_after,
                };
                run(&delivery, &thread_shared, &mut backoff);
            })
            .map_err(InstallError::ForwardThread);
        if let Err(e) = spawned {
            errors.push(e);
            return None;
        }
        let drain_config = config
            .clone()
            .timeout(config.timeout.min(config.drain_timeout));
        Some(Forwarder {
            shared,
            store,
            drain_config,
            additions,
        })
    }

    /// Tells the thread new events are in the outbox.
    pub(crate) fn wake(&self) {
        let mut woken = crate::sync::lock(&self.shared.woken);
        *woken = true;
        self.shared.wake.notify_one();
    }

    /// Sends what is left in the outbox, at most for the drain timeout; says whether the
    /// outbox is empty after. The forwarder's thread runs at the lowest priority, which
    /// on a busy machine could leave it without a core for the whole drain; so it is
    /// asked to stop after the event it is sending, and the thread that drops the guard
    /// sends the rest at its own priority, each try cut to the time left. The thread
    /// takes over again after, for a program that goes on.
    pub(crate) fn drain_on_exit(&self) -> bool {
        let end = Instant::now() + self.drain_config.drain_timeout;
        let before_end = |wait: Duration| Instant::now() + wait < end;
        self.shared.handed_over.store(true, Ordering::SeqCst);
        // The thread may be inside a send: it stops after it.
        while self.shared.busy.load(Ordering::SeqCst) && before_end(Duration::ZERO) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let free = !self.shared.busy.load(Ordering::SeqCst);
        // A wait the server asked for is waited out, or, past the drain's end, leaves the
        // rest to the next start.
        let paused = (*crate::sync::lock(&self.shared.paused_until))
            .map_or(Duration::ZERO, |until| {
                until.saturating_duration_since(Instant::now())
            });
        if free && before_end(paused) {
            std::thread::sleep(paused);
            if let Ok(sender) = Sender::new(&self.drain_config) {
                let delivery = Delivery {
                    store: self.store,
                    sender: &sender,
                    additions: &self.additions,
                    give_up_after: self.drain_config.give_up_after,
                };
                let mut backoff = Backoff::new(&self.drain_config);
                let _ = send_outbox(&delivery, &mut backoff, before_end, || {});
            }
        }
        let drained = !self.store.has_unsent();
        // The sent marks are made durable, or the next start sends those events again.
        let _ = self.store.flush();
        self.shared.handed_over.store(false, Ordering::SeqCst);
        self.wake();
        drained
    }
}

/// Sends the outbox on the calling thread, oldest first, until it is empty or `may_wait`
/// refuses a wait: it is asked with no wait before each event, and with the wait before
/// each pause the server or the back-off asks for. `sent` is called after each event that
/// is done with (sent, or failed for good).
pub(crate) fn send_outbox(
    delivery: &Delivery<'_>,
    backoff: &mut Backoff,
    mut may_wait: impl FnMut(Duration) -> bool,
    mut sent: impl FnMut(),
) -> Result<(), StoreError> {
    let mut taken = Vec::with_capacity(BATCH);
    loop {
        let batch = delivery.store.unsent(None, BATCH)?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut pause = None;
        let mut stop = false;
        for (id, unsent) in &batch {
            if !may_wait(Duration::ZERO) {
                stop = true;
                break;
            }
            match delivery.forward_keeping(*id, unsent, backoff, &mut taken) {
                Step::Next => sent(),
                Step::Pause(wait) if may_wait(wait) => {
                    pause = Some(wait);
                    break;
                }
                Step::Pause(_) => {
                    stop = true;
                    break;
                }
            }
        }
        // The batch's sent events are marked before the next read of the outbox.
        delivery.store.mark_sent(&taken)?;
        taken.clear();
        if stop {
            return Ok(());
        }
        if let Some(wait) = pause {
            std::thread::sleep(wait);
        }
    }
}

/// Lowers the calling thread's scheduling priority, so that while the program's threads
/// want the cores the forwarder waits: what it sends is in the outbox, and can wait. On
/// Linux the thread takes the `SCHED_IDLE` policy (it runs on what the program's threads
/// leave idle, and still gets a sliver of a busy core, so it never stops for good); where
/// that is refused, its nice value is raised by 10 (at most to 19). A policy and a nice
/// value belong to a thread: the program's threads keep theirs. Elsewhere it stays as it is.
fn yield_to_the_program() {
    #[cfg(target_os = "linux")]
    // SAFETY: `sched_setscheduler` reads a valid `sched_param` that lives through the
    // call; pid 0 names the calling thread. `gettid`, `getpriority` and `setpriority` take
    // and return plain integers. A failure leaves the thread as it was.
    #[allow(unsafe_code)]
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 {
            return;
        }
        let tid = libc::syscall(libc::SYS_gettid);
        if let Ok(tid) = libc::id_t::try_from(tid) {
            let now = libc::getpriority(libc::PRIO_PROCESS, tid);
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (now + 10).min(19));
        }
    }
}

fn run(delivery: &Delivery<'_>, shared: &Shared, backoff: &mut Backoff) {
    let mut marked = false;
    let mut taken = Vec::with_capacity(BATCH);
    loop {
        shared.busy.store(true, Ordering::SeqCst);
        let batch = delivery.store.unsent(None, BATCH).unwrap_or_default();
        if batch.is_empty() && marked {
            // Idle: the marks of what was sent are made durable.
            let _ = delivery.store.flush();
            marked = false;
        }
        marked |= !batch.is_empty();
        let mut pause = None;
        for (id, unsent) in &batch {
            // A drain sends from here on (see `Forwarder::drain_on_exit`).
            if shared.handed_over.load(Ordering::SeqCst) {
                break;
            }
            if let Step::Pause(d) = delivery.forward_keeping(*id, unsent, backoff, &mut taken) {
                pause = Some(d);
                break;
            }
        }
        // One write marks the batch's sent events, before a drain may read the outbox.
        let _ = delivery.store.mark_sent(&taken);
        taken.clear();
        shared.busy.store(false, Ordering::SeqCst);
        if shared.handed_over.load(Ordering::SeqCst) {
            // Until the drain gives the outbox back, or a program that goes on wakes it.
            shared.wait_for_wake();
            continue;
        }
        match pause {
            Some(d) => {
                *crate::sync::lock(&shared.paused_until) = Some(Instant::now() + d);
                std::thread::sleep(d);
                *crate::sync::lock(&shared.paused_until) = None;
            }
            None if batch.is_empty() => shared.wait_for_wake(),
            None => {}
        }
    }
}

#[cfg(test)]
#[path = "drain_tests.rs"]
mod drain_tests;

#[cfg(all(test, target_os = "linux"))]
mod priority_tests {
    use super::yield_to_the_program;

    /// The calling thread's scheduling policy and nice value.
    #[allow(unsafe_code)]
    fn own_priority() -> (i32, i32) {
        // SAFETY: pid 0 names the calling thread, `gettid` too; plain integers come back.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, tid),
            )
        }
    }

    // The forwarder's thread gives way to the program's: it runs under `SCHED_IDLE` (or,
    // where a sandbox refuses that, with its nice value raised by 10), its own thread only
    // (a thread started beside it keeps the program's priority).
    #[test]
    fn the_forwarder_thread_yields_to_the_program() {
        let before = std::thread::spawn(own_priority).join().unwrap();
        let lowered = std::thread::spawn(|| {
            yield_to_the_program();
            own_priority()
        })
        .join()
        .unwrap();
        let after = std::thread::spawn(own_priority).join().unwrap();
        assert_ne!(before.0, libc::SCHED_IDLE);
        assert!(
            lowered.0 == libc::SCHED_IDLE
                || (lowered.0 == before.0 && lowered.1 == (before.1 + 10).min(19)),
            "{before:?} -> {lowered:?}"
        );
        assert_eq!(after, before, "only the forwarder's thread is lowered");
    }
}

//! The guard [`install`](crate::install()) returns: what went wrong at install, flushing on
//! demand, and the orderly end (flush, the integrations' queues, mail and forward drains,
//! session end, crash record closed) when it is dropped.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::InstallError;
use crate::runtime::install::{runtime, Sink};
use crate::store::Store;
use crate::sync::lock;

/// The running program's database handle, when [`install`](crate::install()) opened one. Read
/// events through it while the program runs (sled lets only one process open a database). Events,
/// panics included, are in it once the background writer stored them: call [`Guard::flush`] first
/// to read what was just captured.
pub fn store() -> Option<&'static Store> {
    match &*runtime()?.sink {
        Sink::Store(s) => Some(s),
        _ => None,
    }
}

/// Returned by [`install`](crate::install()): reports what went wrong at install, and flushes
/// queued events (and tracked requests) when dropped. Keep it alive for the life of the
/// program (`let _guard = ...`).
#[derive(Debug)]
#[must_use = "dropping the guard at once flushes at once; bind it: `let _guard = stacktrace::install();`"]
pub struct Guard {
    pub(super) errors: Vec<InstallError>,
    /// The call that installed (not a repeated one): it flushes and closes at drop.
    pub(super) owner: bool,
}

/// How long dropping the guard waits for queued events.
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What else dropping the guard stores, after the queued events: the queues the
/// integrations keep (request tracking), each named and with its flush.
type ExitFlush = (&'static str, fn(Duration) -> bool);
static EXIT_FLUSHES: Mutex<Vec<ExitFlush>> = Mutex::new(Vec::new());

/// Has dropping the guard call `flush` (at most its timeout) after storing the queued events,
/// and say on stderr when some `what` were left; once per queue, when it is first used.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn flush_at_exit(what: &'static str, flush: fn(Duration) -> bool) {
    lock(&EXIT_FLUSHES).push((what, flush));
}

impl Guard {
    /// What went wrong at install; empty when all went well.
    ///
    /// Also looks whether the panic hook was replaced since (see
    /// [`Guard::is_capturing_panics`]), and says so once on stderr.
    pub fn errors(&self) -> &[InstallError] {
        crate::runtime::hook::is_capturing_panics();
        &self.errors
    }

    /// Whether panics are captured: the hook was installed and no hook set since replaced
    /// it. A hook set after [`install`](crate::install()) must chain to the one it takes, or panics
    /// stop reaching this crate; the first time that is found (here, when the guard flushes or
    /// drops, or when the writer goes idle) it is said once on stderr.
    ///
    /// ```no_run
    /// let guard = stacktrace::install();
    /// let previous = std::panic::take_hook();
    /// std::panic::set_hook(Box::new(move |info| {
    ///     eprintln!("the program's own hook");
    ///     previous(info); // chains: panics are still captured
    /// }));
    /// assert!(guard.is_capturing_panics());
    /// ```
    pub fn is_capturing_panics(&self) -> bool {
        crate::runtime::hook::is_capturing_panics()
    }

    /// Whether events are kept: in the database, or in a spool file beside a database held
    /// by another process.
    pub fn is_storing(&self) -> bool {
        runtime().is_some_and(|rt| !rt.sink.is_nowhere())
    }

    /// The spool file events go to while another process holds the database.
    pub fn spool_path(&self) -> Option<&'static Path> {
        match &*runtime()?.sink {
            Sink::Spool(s) => Some(s.path()),
            _ => None,
        }
    }

    /// Waits until every event captured before the call is stored and flushed to disk (at
    /// most 30 seconds); says whether it finished.
    pub fn flush(&self) -> bool {
        self.flush_timeout(Duration::from_secs(30))
    }

    /// Like [`Guard::flush`], waiting at most `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        crate::runtime::hook::is_capturing_panics();
        runtime().is_some_and(|rt| rt.writer.flush(timeout))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if crate::runtime::fork::in_forked_child() {
            // Its queues, threads, session and record are its parent's.
            return;
        }
        crate::runtime::hook::is_capturing_panics();
        if self.owner && !self.flush_timeout(DROP_FLUSH_TIMEOUT) {
            crate::diag::say("stacktrace: some queued events were not stored before exit");
        }
        if self.owner {
            let more = lock(&EXIT_FLUSHES).clone();
            for (what, flush) in more {
                if !flush(DROP_FLUSH_TIMEOUT) {
                    crate::diag::say(&format!(
                        "stacktrace: some {what} were not stored before exit"
                    ));
                }
            }
        }
        #[cfg(feature = "mail")]
        if let Some(mailer) = runtime()
            .and_then(|rt| rt.mail.as_ref())
            .filter(|_| self.owner)
        {
            mailer.drain_on_exit();
        }
        #[cfg(feature = "forward")]
        if let Some(forwarder) = crate::runtime::install::FORWARDER
            .get()
            .filter(|_| self.owner)
        {
            if !forwarder.drain_on_exit() {
                crate::diag::say(
                    "stacktrace: some events were not forwarded before exit; they go at the next start",
                );
            }
        }
        if self.owner {
            crate::runtime::session::end(true);
            crate::crash::close();
        }
    }
}

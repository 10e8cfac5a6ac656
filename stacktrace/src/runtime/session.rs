//! This process's session of its release: begun at install, ended clean, errored (an
//! error event happened) or crashed (a panic unwinding out of `main`) when the guard drops
//! or the program exits. The crash record is told how it ended too, so that the next open
//! knows it even when the database did not get the word; an abort, a fatal signal or an
//! end without a clean shutdown leaves the session open, and the next open settles it as
//! crashed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::model::event::Level;
use crate::runtime::install::{runtime, Sink};
use crate::store::{Outcome, SessionKey};

/// This process's session and its release, once begun.
static SESSION: OnceLock<(SessionKey, String)> = OnceLock::new();
/// An event of level error or fatal was captured.
static ERRORED: AtomicBool = AtomicBool::new(false);
/// The main thread panicked.
static MAIN_PANICKED: AtomicBool = AtomicBool::new(false);
/// The session was ended.
static ENDED: AtomicBool = AtomicBool::new(false);

/// Begins this process's session of `release` (none without a release) in the database
/// when the process holds it; the crash record, armed after, names it too. Returns when
/// it began, for the record.
pub(crate) fn begin(sink: &Sink, release: &str) -> Result<u64, crate::error::StoreError> {
    let key = SessionKey {
        started_us: crate::model::time::now_us(),
        pid: std::process::id(),
    };
    if release.is_empty() || SESSION.set((key, release.to_owned())).is_err() {
        return Ok(key.started_us);
    }
    crate::store::claim_own(key);
    if let Sink::Store(store) = sink {
        store.begin_session(key, release)?;
    }
    Ok(key.started_us)
}

/// Begins this process's session in `store`, opened after install: the database was held
/// by another process when [`begin`] ran.
pub(crate) fn begin_stored(store: &crate::store::Store) -> Result<(), crate::error::StoreError> {
    match SESSION.get() {
        Some((key, release)) => store.begin_session(*key, release),
        None => Ok(()),
    }
}

/// Notes an event captured by this process: one of level error or fatal makes the session
/// errored.
pub(crate) fn note_event(level: Level) {
    if level >= Level::Error {
        ERRORED.store(true, Ordering::Relaxed);
    }
}

/// Notes a panic on this thread: on the main thread, the session crashed if the panic ends
/// the program (told at its end).
pub(crate) fn note_panic() {
    if std::thread::current().name() == Some("main") {
        MAIN_PANICKED.store(true, Ordering::Relaxed);
    }
}

/// How the session ends now: `unwinding_main` when the guard drops while a panic unwinds
/// the main thread; at exit, when the main thread panicked before.
fn outcome(unwinding_main: Option<bool>) -> Outcome {
    let crashed = unwinding_main.unwrap_or_else(|| MAIN_PANICKED.load(Ordering::Relaxed));
    if crashed {
        Outcome::Crashed
    } else if ERRORED.load(Ordering::Relaxed) {
        Outcome::Errored
    } else {
        Outcome::Clean
    }
}

/// Ends the session, once: from the guard's drop (`from_guard`) or at exit. Tells the crash
/// record, then the database when the process holds it, flushed.
pub(crate) fn end(from_guard: bool) {
    // A forked child's exit ends nothing of its parent's.
    if crate::runtime::fork::in_forked_child() || ENDED.swap(true, Ordering::AcqRel) {
        return;
    }
    let unwinding_main = from_guard
        .then(|| std::thread::panicking() && std::thread::current().name() == Some("main"));
    let outcome = outcome(unwinding_main);
    crate::crash::set_outcome(match outcome {
        Outcome::Errored => crate::crash::layout::outcome::ERRORED,
        Outcome::Crashed => crate::crash::layout::outcome::CRASHED,
        Outcome::Clean | Outcome::Open => crate::crash::layout::outcome::UNSAID,
    });
    let (Some((key, release)), Some(rt)) = (SESSION.get(), runtime()) else {
        return;
    };
    if let Sink::Store(store) = &*rt.sink {
        let now = crate::model::time::now_us();
        let ended = store
            .end_session(*key, release, outcome, now)
            .and_then(|_| store.flush());
        if let Err(e) = ended {
            crate::diag::say(&format!(
                "stacktrace: the end of this session was not stored ({}); the next open \
                 reads it from the crash record",
                crate::diag::error_chain(&e)
            ));
        }
    }
}

//! A child forked after install without `exec`: it shares the parent's crash record, the
//! journal and the database handle, but none of its threads (the writer, the worker). It
//! records nothing into the parent's files: its session, its exit and its crash are the
//! parent's business, and events it captures are dropped, said once on stderr. A program
//! that wants its children's events has them `exec` a program that installs again.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// The process that installed (0: none yet).
static INSTALLER: AtomicU32 = AtomicU32::new(0);
/// The drop of a forked child's events was said.
static SAID: AtomicBool = AtomicBool::new(false);

/// Notes the calling process as the one that installed.
pub(crate) fn note_installer() {
    INSTALLER.store(std::process::id(), Ordering::Relaxed);
}

/// Whether this process is a child forked from the one that installed.
pub(crate) fn in_forked_child() -> bool {
    let installer = INSTALLER.load(Ordering::Relaxed);
    installer != 0 && installer != std::process::id()
}

/// In a forked child, says once that its events are dropped, and returns true.
pub(crate) fn drops_events() -> bool {
    if !in_forked_child() {
        return false;
    }
    if !SAID.swap(true, Ordering::Relaxed) {
        crate::diag::say(&format!(
            "stacktrace: this process was forked from {} after install() and did not exec; \
             its events are not stored (the database, the crash record and the session are \
             its parent's)",
            INSTALLER.load(Ordering::Relaxed)
        ));
    }
    true
}

//! Crashes the panic hook never sees: fatal signals (a segfault, an abort, a stack
//! overflow, a double panic) written down by a signal handler, and ends that run no code
//! at all (SIGKILL, the OOM killer) told by a record left open. Both are kept in a file per
//! process beside the database and reported by the next process that opens it. Linux
//! only; elsewhere nothing is recorded.

pub(crate) mod layout;
pub(crate) mod report;

#[cfg(target_os = "linux")]
pub(crate) mod altstack;
#[cfg(target_os = "linux")]
pub(crate) mod handler;
#[cfg(target_os = "linux")]
pub(crate) mod recorder;

pub(crate) use layout::Meta;
pub(crate) use report::{name_out_of_memory, take_records, Ended, EndedAs};

use crate::pipeline::redact::fields::Secrets;

/// Creates this process's record beside the database at `db` and, with `handler`,
/// installs the fatal-signal handler; breadcrumbs are copied into the record from now on,
/// redacted as an event's are (`meta.redact_fields`, and `secrets`, the values of the
/// settings that hold secrets). `Err` says what could not be done. Does nothing outside
/// Linux.
#[cfg(target_os = "linux")]
pub(crate) fn arm(
    db: &std::path::Path,
    meta: &Meta,
    secrets: Secrets,
    handler: bool,
) -> Result<(), String> {
    let dir = layout::records_dir(db);
    let redaction = recorder::Redaction {
        fields: crate::pipeline::redact::fields::FieldRedactor::new(&meta.redact_fields),
        secrets,
    };
    recorder::Recorder::arm(&dir, meta, redaction).map_err(|e| {
        format!(
            "the crash record in {} could not be made: {e}",
            dir.display()
        )
    })?;
    crate::capture::breadcrumbs::copy_to(copy_breadcrumb);
    if handler {
        handler::install()?;
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn arm(
    _db: &std::path::Path,
    _meta: &Meta,
    _secrets: Secrets,
    _handler: bool,
) -> Result<(), String> {
    Ok(())
}

#[cfg(target_os = "linux")]
fn copy_breadcrumb(crumb: &crate::model::breadcrumb::Breadcrumb) {
    if let Some(r) = recorder::recorder() {
        r.breadcrumb(crumb);
    }
    prepare_thread();
}

/// Readies the calling thread for the fatal-signal handler, when it is installed: a thread
/// std did not make gets an alternate signal stack, so that its stack overflow is caught.
/// Called where the tracker meets a thread: a breadcrumb, a capture.
pub(crate) fn prepare_thread() {
    #[cfg(target_os = "linux")]
    if handler::is_installed() {
        altstack::give_this_thread();
    }
}

/// Writes into this process's record that its session ended errored
/// (`layout::outcome::ERRORED`) or crashed (`layout::outcome::CRASHED`, a panic in `main`),
/// for a reader that finds the record closed.
pub(crate) fn set_outcome(outcome: u32) {
    #[cfg(target_os = "linux")]
    if let Some(r) = recorder::recorder() {
        r.set_outcome(outcome);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = outcome;
}

/// Marks this process as ended cleanly (the guard dropped, or the program exiting).
pub(crate) fn close() {
    #[cfg(target_os = "linux")]
    if let Some(r) = recorder::recorder() {
        r.close();
    }
}

//! Formatting a user's values for an event without letting them change what the program
//! does: a `Debug` or `Display` impl that panics is caught and stands as a placeholder
//! naming the panic, and the panic hook leaves such a panic alone. Inside a panic hook a
//! second panic aborts the process before anything can catch it: there, values are
//! formatted on a thread kept for it.

use std::cell::Cell;
use std::fmt::{Debug, Display};
use std::sync::{mpsc, OnceLock};

thread_local! {
    /// Set while this thread formats a value for an event: a panic there is caught by
    /// [`guarded`], and the panic hook leaves it alone (it is not the program's panic).
    static FORMATTING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is formatting a value for an event, in which case a panic
/// is caught and shown as a placeholder, not reported as the program's.
pub(crate) fn formatting_value() -> bool {
    FORMATTING.try_with(Cell::get).unwrap_or(false)
}

/// Runs `format`, a user's `Debug` or `Display` impl; when it panics, returns what
/// `fallback` makes of the panic's message instead, so formatting a value for an event never
/// changes what the program does. (Inside a panic hook a second panic aborts the process
/// before it can be caught: there, call this through [`on_another_thread`].)
pub(crate) fn guarded<T>(format: impl FnOnce() -> T, fallback: impl FnOnce(&str) -> T) -> T {
    let outer = FORMATTING.try_with(|f| f.replace(true)).unwrap_or(false);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(format));
    let _ = FORMATTING.try_with(|f| f.set(outer));
    match result {
        Ok(v) => v,
        Err(payload) => {
            let message = crate::diag::panic_message(&*payload);
            // A payload whose destructor panics is dropped under the same guard.
            let _ = FORMATTING.try_with(|f| f.set(true));
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
            let _ = FORMATTING.try_with(|f| f.set(outer));
            fallback(&message)
        }
    }
}

/// An argument's `Debug` text, or a placeholder naming the panic it raised.
pub(crate) fn debug_text(value: &(impl Debug + ?Sized)) -> String {
    guarded(
        || format!("{value:?}"),
        |why| format!("<Debug of argument panicked: {why}>"),
    )
}

/// An argument's `Display` text, or a placeholder naming the panic it raised.
pub(crate) fn display_text(value: &(impl Display + ?Sized)) -> String {
    guarded(
        || value.to_string(),
        |why| format!("<Display of argument panicked: {why}>"),
    )
}

/// A job for the formatting thread. It owns nothing borrowed once it has run: see
/// [`on_another_thread`].
type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    /// Set on the formatting thread, which must not wait for itself.
    static IS_FORMATTER: Cell<bool> = const { Cell::new(false) };
}

/// The formatting thread's queue, started the first time it is needed; `None` when it
/// could not be started.
fn formatter() -> Option<&'static mpsc::Sender<Job>> {
    static FORMATTER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    FORMATTER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("stacktrace-format".to_owned())
                .spawn(move || {
                    let _ = IS_FORMATTER.try_with(|f| f.set(true));
                    for job in rx {
                        job();
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Runs `f` on the formatting thread and waits for it: a panic there is an ordinary one,
/// which [`guarded`] catches, where on a thread already panicking (inside a panic hook) it
/// would abort the process. One thread, kept, serves every call: starting one per panic
/// would cost more than the rest of the panic. `None` when that thread could not be
/// started, when called on it, or when `f` panicked.
#[allow(unsafe_code)]
pub(crate) fn on_another_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send) -> Option<T> {
    if IS_FORMATTER.try_with(Cell::get).unwrap_or(true) {
        return None;
    }
    let queue = formatter()?;
    let (tx, rx) = mpsc::sync_channel::<Option<T>>(1);
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        // `f` is consumed (run, then dropped) before the answer is sent.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
        let _ = tx.send(result);
    });
    // SAFETY: the job borrows what `f` borrows, which outlives this call. It does not
    // outlive it: either it is handed back by a failed `send` and dropped here, or the
    // formatting thread takes it, and `recv` below returns only once the job sent its
    // answer (after `f` was run and dropped: what is left of it owns nothing borrowed) or
    // was dropped without running (its sender dropped with it).
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    if queue.send(job).is_err() {
        return None;
    }
    rx.recv().ok().flatten()
}

//! Formatting a user's values for an event without letting them change what the program
//! does: a `Debug` or `Display` impl that panics is caught and stands as a placeholder
//! naming the panic, and the panic hook leaves such a panic alone. Inside a panic hook a
//! second panic aborts the process before anything can catch it: there, values are
//! formatted on a thread of their own.

use std::cell::Cell;
use std::fmt::{Debug, Display};

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
            let message = crate::hook::panic_message(&*payload);
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

/// Runs `f` on a thread of its own and waits for it: a panic there is an ordinary one,
/// which [`guarded`] catches, where on a thread already panicking (inside a panic hook) it
/// would abort the process. `None` when no thread could be started, or `f` panicked.
pub(crate) fn on_another_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("stacktrace-format".to_owned())
            .spawn_scoped(scope, f)
            .ok()?
            .join()
            .ok()
    })
}

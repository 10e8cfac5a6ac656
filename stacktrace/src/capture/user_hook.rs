//! Calling code the program plugged in (`before_store`, the HTTP layer's `user` and
//! `client_addr`, a mail `Reporter`, the dashboard's `authorize`, the enrichers) so that
//! its panic never changes what the program does: the panic is caught, the caller goes on
//! with its documented fallback, and one stderr line per hook and process names the hook
//! and where it panicked. The panic hook leaves such a panic alone, and does not pass it to
//! the hook it replaced: a hook that panics on every event would otherwise fill stderr.
//!
//! Catching is no help on a thread that is running the panic hook: a second panic there
//! aborts the process before anything can catch it. Code called from the hook runs through
//! [`crate::capture::guarded::on_another_thread`] instead.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// Set while this thread runs a hook through [`UserHook::call`].
    static IN_USER_HOOK: Cell<bool> = const { Cell::new(false) };
    /// Where the last hook panic of this thread was raised, as the panic hook saw it.
    static PANICKED_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A hook the program plugged in, named as the program knows it, with what happens to the
/// work at hand when it panics; said once per process.
#[derive(Debug)]
pub(crate) struct UserHook {
    name: &'static str,
    fallback: &'static str,
    said: AtomicBool,
}

impl UserHook {
    /// `name` as the program set it (`before_store`); `fallback` ends the stderr line:
    /// what is done instead (`the event is kept as it was`).
    pub(crate) const fn new(name: &'static str, fallback: &'static str) -> UserHook {
        UserHook {
            name,
            fallback,
            said: AtomicBool::new(false),
        }
    }

    /// Runs `hook`; `None` when it panicked. Must not be called from the panic hook (see
    /// the module's notes).
    pub(crate) fn call<T>(&self, hook: impl FnOnce() -> T) -> Option<T> {
        let outer = IN_USER_HOOK.try_with(|f| f.replace(true)).unwrap_or(false);
        let result = catch_unwind(AssertUnwindSafe(hook));
        let payload = match result {
            Ok(value) => {
                let _ = IN_USER_HOOK.try_with(|f| f.set(outer));
                return Some(value);
            }
            Err(payload) => payload,
        };
        // A payload whose destructor panics is dropped under the same flag.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(payload)));
        let _ = IN_USER_HOOK.try_with(|f| f.set(outer));
        let at = PANICKED_AT
            .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take()))
            .ok()
            .flatten();
        if !self.said.swap(true, Ordering::SeqCst) {
            crate::diag::say(&self.line(at.as_deref()));
        }
        None
    }

    /// The stderr line. The panic's message is left out: it may hold the values the hook
    /// was given (a request's headers, an event's fields), which are not redacted there.
    fn line(&self, at: Option<&str>) -> String {
        let at = at.map(|a| format!(" at {a}")).unwrap_or_default();
        format!(
            "stacktrace: the `{}` hook panicked{at}; {}. Later panics of this hook are not said.",
            self.name, self.fallback
        )
    }
}

/// From the panic hook: whether this panic was raised by a hook run through
/// [`UserHook::call`] on this thread, which catches it; keeps where it was raised for the
/// line that names the hook.
pub(crate) fn caught_in_user_hook(location: impl FnOnce() -> Option<String>) -> bool {
    if !IN_USER_HOOK.try_with(Cell::get).unwrap_or(false) {
        return false;
    }
    let at = location();
    let _ = PANICKED_AT.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            *p = at;
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_that_returns_gives_its_value_and_one_that_panics_none() {
        static HOOK: UserHook = UserHook::new("test", "nothing is done");
        assert_eq!(HOOK.call(|| 7), Some(7));
        assert!(!HOOK.said.load(Ordering::SeqCst));
        assert_eq!(HOOK.call(|| -> u8 { panic!("boom") }), None);
        assert!(HOOK.said.load(Ordering::SeqCst));
        // The flag is down again once the call is over.
        assert!(!IN_USER_HOOK.with(Cell::get));
    }

    #[test]
    fn the_line_names_the_hook_and_where_it_panicked() {
        let hook = UserHook::new("before_store", "the event is kept as it was");
        assert_eq!(
            hook.line(Some("src/main.rs:3:9")),
            "stacktrace: the `before_store` hook panicked at src/main.rs:3:9; the event is \
             kept as it was. Later panics of this hook are not said."
        );
    }
}

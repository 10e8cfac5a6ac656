//! Manual capture of errors and messages, and the capture of `#[capture]` functions; each
//! gated, then queued to the background writer.

use std::error::Error as StdError;

use crate::model::event::{EventId, Level};

/// Stores an error: its type, message and whole `source()` chain, where it was captured,
/// the backtrace, and the chain of `#[capture]` functions active on this thread. Returns the
/// stored event's id, or `None` when the event was not kept (not installed, disabled,
/// sampled out, rate limited, filtered, or the writer's queue was full); drops are counted
/// by reason (see [`Store::dropped`](crate::Store::dropped)). With the queue full, a repeat
/// of a failure already on its way to the store is counted in that failure's group rather
/// than dropped (see [`Store::repeats_counted`](crate::Store::repeats_counted)).
///
/// The calling thread only takes the backtrace unresolved and queues the event; symbol
/// resolution and storage happen on the background writer. Call
/// [`Guard::flush`](crate::Guard::flush) to wait for them.
///
/// ```no_run
/// let _guard = stacktrace::install();
/// if let Err(e) = std::fs::read("missing.cfg") {
///     let id = stacktrace::capture_error(&e);
///     eprintln!("reported as {id:?}");
/// }
/// ```
///
/// The type name is exact for a concrete error type; for a `&dyn Error` it is read from the
/// start of the error's `Debug` text where that names a type.
#[track_caller]
pub fn capture_error<E: StdError + ?Sized>(error: &E) -> Option<EventId> {
    crate::Report::error(error).capture()
}

/// Stores a message at a level: django-stacktrace's `store_crash_event` for something that
/// is not an error value. Returns the stored event's id, or `None` when it was not kept.
/// Messages carry no backtrace; they are grouped by their text.
///
/// ```no_run
/// let _guard = stacktrace::install();
/// stacktrace::capture_message("payment provider slow", stacktrace::Level::Warning);
/// ```
#[track_caller]
pub fn capture_message(message: &str, level: Level) -> Option<EventId> {
    crate::Report::message(message, level).capture()
}

/// Messages of the `source()` chain, outermost first, bounded against cycles.
pub(crate) fn sources_of<E: StdError + ?Sized>(error: &E) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = error.source();
    while let Some(e) = next {
        if out.len() == 64 {
            out.push("[source chain cut at 64]".to_owned());
            break;
        }
        out.push(e.to_string());
        next = e.source();
    }
    out
}

/// The error's type name; for trait objects, the type named at the start of its `Debug`
/// text (`Custom { .. }` says little, but `ParseIntError { .. }` names the type).
pub(crate) fn error_type_name<E: StdError + ?Sized>(error: &E) -> String {
    let name = std::any::type_name::<E>();
    if !name.starts_with("dyn ") {
        return name.to_owned();
    }
    let debug = format!("{error:?}");
    let head: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    // `std::io::Error`'s Debug names its representation, not its type.
    if matches!(
        head.as_str(),
        "Custom" | "Os" | "Simple" | "SimpleMessage" | "Kind"
    ) {
        "std::io::error::Error".to_owned()
    } else if head.chars().next().is_some_and(char::is_uppercase) {
        head
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::num::ParseIntError);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("config is bad")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn type_names_and_sources() {
        let inner = "x".parse::<u8>().unwrap_err();
        let e = Outer(inner);
        assert!(error_type_name(&e).ends_with("Outer"));
        assert_eq!(sources_of(&e), ["invalid digit found in string"]);
        let dynamic: &dyn StdError = &e;
        assert_eq!(error_type_name(dynamic), "Outer");
        let io: Box<dyn StdError> = Box::new(std::io::Error::other("x"));
        assert_eq!(error_type_name(&*io), "std::io::error::Error");
    }
}

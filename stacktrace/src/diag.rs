//! What the crate says about itself on stderr, and how a panic's payload reads.

use std::any::Any;
use std::error::Error as StdError;
use std::io::Write;

/// Writes one line to stderr, ignoring a closed or broken stderr.
pub(crate) fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

/// The panic's message: the `&str` or `String` payload, or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_owned()
    }
}

/// An error and its causes on one line: its `Display`, then each `source()`'s, joined with
/// `": "`. An error's `Display` leaves out the cause that `source()` returns, so this is how
/// a message that names everything is written.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    // Bounded against a cycle of sources.
    for _ in 0..16 {
        let Some(cause) = next else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

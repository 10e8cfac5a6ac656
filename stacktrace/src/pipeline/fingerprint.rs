//! The grouping key of an event.

use std::cell::RefCell;

use sha2::{Digest, Sha256};

use crate::model::event::Frame;

/// How many recent fingerprints each thread remembers.
const RECENT: usize = 16;

/// Inputs of recent fingerprints with their hex digests, and the slot to replace next.
type Recent = (Vec<(Vec<u8>, String)>, usize);

thread_local! {
    /// This thread's recent fingerprints: the same failure tends to repeat, and SHA-256
    /// costs more than comparing its input.
    static RECENT_FINGERPRINTS: RefCell<Recent> = const { RefCell::new((Vec::new(), 0)) };
}

/// SHA-256 (hex) of the error type and the in-app frames' function paths. Line numbers and
/// addresses are left out so that a group survives edits elsewhere in the file; without
/// in-app frames the message stands in for them.
pub(crate) fn fingerprint_of(error_type: &str, frames: &[Frame], message: &str) -> String {
    let mut input = Vec::with_capacity(error_type.len() + message.len() + 2);
    input.extend_from_slice(error_type.as_bytes());
    input.push(0);
    let mut any = false;
    for f in frames.iter().filter(|f| f.in_app) {
        input.extend_from_slice(f.function.as_bytes());
        input.push(0);
        any = true;
    }
    if !any {
        input.push(1);
        input.extend_from_slice(message.as_bytes());
    }
    remembered_digest(input)
}

/// SHA-256 (hex) of the error type and a grouping key its source chose in place of frames
/// and message: the HTTP layer's events are grouped by route, whatever path, host or id
/// the client sent. Its input is marked apart from those of [`fingerprint_of`].
pub(crate) fn fingerprint_of_key(error_type: &str, key: &str) -> String {
    let mut input = Vec::with_capacity(error_type.len() + key.len() + 2);
    input.extend_from_slice(error_type.as_bytes());
    input.push(0);
    input.push(2);
    input.extend_from_slice(key.as_bytes());
    remembered_digest(input)
}

/// The digest of `input`, from this thread's memory when it was computed lately.
fn remembered_digest(input: Vec<u8>) -> String {
    // A thread whose locals are gone, or a nested use, computes without the memory.
    let remembered = RECENT_FINGERPRINTS
        .try_with(|r| {
            let r = r.try_borrow().ok()?;
            r.0.iter()
                .find(|(i, _)| *i == input)
                .map(|(_, fp)| fp.clone())
        })
        .ok()
        .flatten();
    if let Some(fp) = remembered {
        return fp;
    }
    let fp = hex_sha256(&input);
    let _ = RECENT_FINGERPRINTS.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            let (entries, next) = &mut *r;
            if entries.len() < RECENT {
                entries.push((input, fp.clone()));
            } else {
                entries[*next] = (input, fp.clone());
                *next = (*next + 1) % RECENT;
            }
        }
    });
    fp
}

fn hex_sha256(input: &[u8]) -> String {
    let digest = Sha256::digest(input);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32, in_app: bool) -> Frame {
        Frame {
            function: function.into(),
            file: Some("src/main.rs".into()),
            line: Some(line),
            in_app,
            source: None,
        }
    }

    #[test]
    fn ignores_lines_and_library_frames() {
        let a = [frame("app::f", 10, true), frame("std::x", 1, false)];
        let b = [frame("app::f", 99, true), frame("std::y", 7, false)];
        assert_eq!(fingerprint_of("E", &a, "m1"), fingerprint_of("E", &b, "m2"));
        assert_eq!(fingerprint_of("E", &a, "").len(), 64);
    }

    #[test]
    fn differs_by_type_function_or_message_without_app_frames() {
        let a = [frame("app::f", 1, true)];
        let b = [frame("app::g", 1, true)];
        assert_ne!(fingerprint_of("E", &a, ""), fingerprint_of("E", &b, ""));
        assert_ne!(fingerprint_of("E", &a, ""), fingerprint_of("F", &a, ""));
        assert_ne!(fingerprint_of("E", &[], "x"), fingerprint_of("E", &[], "y"));
    }

    #[test]
    fn a_grouping_key_stands_for_frames_and_message() {
        let a = [frame("app::f", 1, true)];
        assert_eq!(
            fingerprint_of_key("http.404", "GET /orders/{id}"),
            fingerprint_of_key("http.404", "GET /orders/{id}")
        );
        assert_ne!(
            fingerprint_of_key("http.404", "GET /orders/{id}"),
            fingerprint_of_key("http.404", "GET /users/{id}")
        );
        assert_ne!(fingerprint_of_key("E", "x"), fingerprint_of_key("F", "x"));
        // Never the fingerprint of an event whose message is the key.
        assert_ne!(fingerprint_of_key("E", "x"), fingerprint_of("E", &[], "x"));
        assert_ne!(fingerprint_of_key("E", "x"), fingerprint_of("E", &a, "x"));
    }

    /// The digest as it was always computed, field by field, with no memory.
    fn streamed(error_type: &str, frames: &[Frame], message: &str) -> String {
        let mut h = Sha256::new();
        h.update(error_type.as_bytes());
        h.update([0]);
        let app: Vec<_> = frames.iter().filter(|f| f.in_app).collect();
        for f in &app {
            h.update(f.function.as_bytes());
            h.update([0]);
        }
        if app.is_empty() {
            h.update([1]);
            h.update(message.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn remembered_fingerprints_are_the_computed_ones() {
        let frames: Vec<Vec<Frame>> = (0..3)
            .map(|i| {
                vec![
                    frame(&format!("app::f{i}"), 1, true),
                    frame("std::x", 2, false),
                ]
            })
            .collect();
        // More distinct inputs than are remembered, each seen several times in turn.
        for round in 0..4 {
            for i in 0..(RECENT + 5) {
                let message = format!("message {i}");
                let ty = if i % 2 == 0 { "E" } else { "F" };
                let f = if round % 2 == 0 {
                    &frames[i % 3][..]
                } else {
                    &[][..]
                };
                assert_eq!(fingerprint_of(ty, f, &message), streamed(ty, f, &message));
            }
        }
    }
}

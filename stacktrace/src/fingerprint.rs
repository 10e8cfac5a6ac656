//! The grouping key of an event.

use sha2::{Digest, Sha256};

use crate::event::Frame;

/// SHA-256 (hex) of the error type and the in-app frames' function paths. Line numbers and
/// addresses are left out so that a group survives edits elsewhere in the file; without
/// in-app frames the message stands in for them.
pub(crate) fn fingerprint_of(error_type: &str, frames: &[Frame], message: &str) -> String {
    let mut h = Sha256::new();
    h.update(error_type.as_bytes());
    h.update([0]);
    let mut any = false;
    for f in frames.iter().filter(|f| f.in_app) {
        h.update(f.function.as_bytes());
        h.update([0]);
        any = true;
    }
    if !any {
        h.update([1]);
        h.update(message.as_bytes());
    }
    let digest = h.finalize();
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
}

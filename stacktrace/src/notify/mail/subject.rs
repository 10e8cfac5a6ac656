//! Subjects that cannot carry a header: every control character is shown escaped, so a CR
//! or LF in an error message never ends the `Subject:` line.

/// The longest subject, in characters, before the part marker; longer ones end with `…`.
pub(crate) const MAX_SUBJECT_CHARS: usize = 180;

/// The text with CR, LF, tabs and every other control character (C0, DEL, C1, and the
/// Unicode line and paragraph separators) written as visible escapes, cut to `max` chars.
pub(crate) fn escaped_subject(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 8));
    let mut chars = 0;
    for c in text.chars() {
        let piece = match c {
            '\r' => "\\r".to_owned(),
            '\n' => "\\n".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                format!("\\u{{{:x}}}", u32::from(c))
            }
            c => c.to_string(),
        };
        let n = piece.chars().count();
        if chars + n > max {
            out.push('…');
            break;
        }
        chars += n;
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_breaks_are_escaped() {
        assert_eq!(
            escaped_subject("boom\r\nBcc: someone@example.com", 100),
            "boom\\r\\nBcc: someone@example.com"
        );
        assert_eq!(escaped_subject("a\u{0}b\u{85}c", 100), "a\\u{0}b\\u{85}c");
        assert_eq!(escaped_subject("abcdef", 3), "abc…");
    }

    proptest! {
        #[test]
        fn no_control_character_survives(s in "\\PC*|[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}a-z:]*") {
            let out = escaped_subject(&s, MAX_SUBJECT_CHARS);
            prop_assert!(!out.chars().any(|c| c.is_control()));
            prop_assert!(out.chars().count() <= MAX_SUBJECT_CHARS + 1);
        }
    }
}

//! Long reports in parts: each at most `chunk_size` characters, cut at a line break where
//! one is near, otherwise at a character boundary; joined, the parts are the report.

/// Splits `text` into parts of at most `max` characters (at least one part). A part ends
/// after the last line break of its window when there is one.
pub(crate) fn chunks_of(text: &str, max: usize) -> Vec<&str> {
    let max = max.max(1);
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        // Byte offset just past `max` characters, or the end.
        let window_end = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        if window_end == rest.len() {
            parts.push(rest);
            return parts;
        }
        let window = &rest[..window_end];
        let cut = match window.rfind('\n') {
            Some(i) => i + 1,
            None => window_end,
        };
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
}

/// `(part X/Y)`, appended to the subjects of a report sent in parts.
pub(crate) fn part_marker(index: usize, total: usize) -> String {
    format!("(part {}/{})", index + 1, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cuts_at_line_breaks() {
        assert_eq!(chunks_of("aaa\nbbb\ncc", 5), ["aaa\n", "bbb\n", "cc"]);
        assert_eq!(chunks_of("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(chunks_of("", 3), [""]);
        assert_eq!(chunks_of("ééé", 2), ["éé", "é"]);
        assert_eq!(part_marker(0, 3), "(part 1/3)");
    }

    proptest! {
        #[test]
        fn parts_join_to_the_text_and_fit(text in "(\\PC{0,30}\n?){0,60}", max in 1usize..50) {
            let parts = chunks_of(&text, max);
            prop_assert_eq!(parts.concat(), text.clone());
            for p in &parts {
                prop_assert!(p.chars().count() <= max);
            }
            if text.is_empty() {
                prop_assert_eq!(parts.len(), 1);
            } else {
                prop_assert!(parts.iter().all(|p| !p.is_empty()));
            }
        }
    }
}

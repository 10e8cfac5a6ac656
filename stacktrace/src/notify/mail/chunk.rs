//! Long reports in parts: each at most `chunk_size` characters, cut at a line end; joined,
//! the parts are the report.

/// Splits `text` into parts of at most `max` characters (at least one part). A part ends
/// after the last line break of its window; only a line longer than a part is cut inside,
/// after its last space or tab in the second half of the window when there is one, else at
/// a character boundary.
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
            // After the window's last space when that keeps at least half of it (not after
            // the indentation of a long word).
            None => match window.rfind([' ', '\t']) {
                Some(i) if window[..i].chars().count() >= max / 2 => i + 1,
                _ => window_end,
            },
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
    fn cuts_at_line_ends() {
        assert_eq!(chunks_of("aaa\nbbb\ncc", 5), ["aaa\n", "bbb\n", "cc"]);
        assert_eq!(chunks_of("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(chunks_of("", 3), [""]);
        assert_eq!(chunks_of("ééé", 2), ["éé", "é"]);
        assert_eq!(part_marker(0, 3), "(part 1/3)");
    }

    // Regression: a line longer than a part was cut inside a word.
    #[test]
    fn a_line_longer_than_a_part_is_cut_after_a_space() {
        assert_eq!(
            chunks_of("ab\none two three", 9),
            ["ab\n", "one two ", "three"]
        );
        assert_eq!(chunks_of("one\ttwo", 5), ["one\t", "two"]);
        // Not after indentation: that would leave a part of spaces only.
        assert_eq!(chunks_of("  abcdefgh", 6), ["  abcd", "efgh"]);
    }

    proptest! {
        #[test]
        fn parts_join_to_the_text_fit_and_end_at_line_ends(
            text in "([a-zé ]{0,30}\n?){0,60}",
            max in 1usize..50,
        ) {
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
            let mut offset = 0;
            for (i, p) in parts.iter().enumerate() {
                offset += p.len();
                if i + 1 == parts.len() || p.ends_with('\n') {
                    continue;
                }
                // Cut inside a line: the part holds no line end, and the line it is in
                // (from the part's start, with its line end) is longer than a part.
                prop_assert!(!p.contains('\n'), "{:?} cut inside a line", p);
                let line_rest = text[offset - p.len()..]
                    .split_inclusive('\n')
                    .next()
                    .unwrap_or("");
                prop_assert!(line_rest.chars().count() > max, "{:?} fits a part", line_rest);
                // After a space when the second half of the window has one; else exactly a
                // part long.
                let window: String = text[offset - p.len()..].chars().take(max).collect();
                let second_half: String = window.chars().skip(max / 2).collect();
                if second_half.contains(' ') {
                    prop_assert!(p.ends_with(' '), "{:?} splits a word", p);
                    prop_assert!(p.chars().count() > max / 2, "{:?} is short", p);
                } else {
                    prop_assert_eq!(p.chars().count(), max);
                }
            }
        }
    }
}

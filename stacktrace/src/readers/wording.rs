//! Words for people, shared by the command-line tool and the dashboard: a count with its
//! noun, and a title shortened for a table row or a heading.

/// The most characters of a title shown in a table row or a heading; the whole text stays
/// in the event's message.
pub(crate) const TITLE_CHARS: usize = 200;

/// `1 event`, `2 events`: `n` with the singular or the plural noun.
/// A rate as a percentage with one decimal (`97.5%`), or `-` when there is none.
pub(crate) fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

pub(crate) fn counted(n: u64, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// `12.3 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `text` cut to at most `max` characters, on a character boundary, ending with `…` when
/// cut.
pub(crate) fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            let mut out = String::with_capacity(end + '…'.len_utf8());
            out.push_str(&text[..end]);
            out.push('…');
            out
        }
    }
}

/// A title for a table row or a heading: at most [`TITLE_CHARS`] characters.
pub(crate) fn short_title(text: &str) -> String {
    shortened(text, TITLE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_take_the_noun_that_fits() {
        assert_eq!(counted(0, "event", "events"), "0 events");
        assert_eq!(counted(1, "event", "events"), "1 event");
        assert_eq!(counted(46, "request", "requests"), "46 requests");
    }

    #[test]
    fn titles_are_cut_on_character_boundaries_with_an_ellipsis() {
        assert_eq!(shortened("abcdef", 4), "abc…");
        assert_eq!(shortened("abcd", 4), "abcd");
        assert_eq!(shortened("ééééé", 3), "éé…");
        assert_eq!(shortened("", 3), "");
        assert_eq!(
            short_title(&"x".repeat(50_000)).chars().count(),
            TITLE_CHARS
        );
    }

    proptest! {
        #[test]
        fn a_shortened_text_fits_and_starts_the_text(text in "\\PC{0,40}", max in 1usize..30) {
            let s = shortened(&text, max);
            prop_assert!(s.chars().count() <= max);
            if text.chars().count() <= max {
                prop_assert_eq!(s, text);
            } else {
                let kept = s.strip_suffix('…').expect("ends with an ellipsis");
                prop_assert!(text.starts_with(kept));
            }
        }
    }
}

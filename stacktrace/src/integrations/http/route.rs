//! What the layer's own events are grouped by: the route that matched the request (axum's
//! `MatchedPath`, feature `axum-matched-path`), or else the path with its ids replaced, so
//! that a client walking through ids or host names makes one group, not one per request.

use http::request::Parts;

/// The template of the route that matched, when the router said it: `/orders/{id}`.
#[cfg(feature = "axum-matched-path")]
pub(crate) fn matched_route(parts: &Parts) -> Option<std::sync::Arc<str>> {
    parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| std::sync::Arc::from(m.as_str()))
}

/// Without a router that says its routes, none.
#[cfg(not(feature = "axum-matched-path"))]
pub(crate) fn matched_route(_parts: &Parts) -> Option<std::sync::Arc<str>> {
    None
}

/// Segments longer than this are cut in a pattern: a path of any length groups by its
/// beginning.
const MAX_PATTERN_SEGMENTS: usize = 16;

/// The path with what varies from request to request replaced: a segment that is a number,
/// a UUID, a hex string of 12 or more digits (a hash, an object id) or a long token of
/// letters and digits becomes `{id}`; runs of two or more digits inside another segment
/// become `{n}` (`page-{n}`); a single digit stays (`/v2/`). Empty segments are dropped
/// (`//a` is `/a`), and past 16 segments the rest is `/…`.
pub(crate) fn path_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(256));
    for (i, segment) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        out.push('/');
        if i == MAX_PATTERN_SEGMENTS {
            out.push('…');
            break;
        }
        if is_id(segment) {
            out.push_str("{id}");
        } else {
            push_with_numbers_replaced(&mut out, segment);
        }
    }
    if out.is_empty() || (path.ends_with('/') && !out.ends_with('…')) {
        out.push('/');
    }
    out
}

/// Whether a whole segment is an id: a number, a UUID, a long hex string or a long token
/// with digits in it.
fn is_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == b.len() {
        return true;
    }
    if is_uuid(b) {
        return true;
    }
    if b.len() >= 12 && digits > 0 && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    b.len() >= 20
        && digits > 0
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Pushes `segment` with each run of two or more ASCII digits as `{n}`.
fn push_with_numbers_replaced(out: &mut String, segment: &str) {
    let mut rest = segment;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let run = rest[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - start);
        out.push_str(&rest[..start]);
        if run >= 2 {
            out.push_str("{n}");
        } else {
            out.push_str(&rest[start..start + run]);
        }
        rest = &rest[start + run..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_and_numbers_are_replaced() {
        for (path, pattern) in [
            ("/", "/"),
            ("", "/"),
            ("/orders/17", "/orders/{id}"),
            ("/orders/17/", "/orders/{id}/"),
            ("/orders/17/items/3", "/orders/{id}/items/{id}"),
            (
                "/u/550e8400-e29b-41d4-a716-446655440000/avatar",
                "/u/{id}/avatar",
            ),
            (
                "/blob/3f786850e387550fdab836ed7e6dc881de23001b",
                "/blob/{id}",
            ),
            ("/reset/AbCdEfGhIjKlMnOpQrSt9u", "/reset/{id}"),
            ("/page-2024-archive", "/page-{n}-archive"),
            ("/v2/orders", "/v2/orders"),
            ("/static/app.css", "/static/app.css"),
            ("//a//b", "/a/b"),
            ("/deadbeef", "/deadbeef"),
        ] {
            assert_eq!(path_pattern(path), pattern, "{path}");
        }
        let deep = "/a".repeat(40);
        assert_eq!(path_pattern(&deep), format!("{}/…", "/a".repeat(16)));
    }

    proptest! {
        // Paths that differ only in their numbers have one pattern.
        #[test]
        fn numbers_never_split_a_pattern(
            words in proptest::collection::vec("[a-z]{1,8}", 1..5),
            a in proptest::collection::vec(0u64..u64::MAX, 5),
            b in proptest::collection::vec(0u64..u64::MAX, 5),
        ) {
            let path = |ids: &[u64]| {
                words
                    .iter()
                    .zip(ids)
                    .map(|(w, id)| format!("/{w}/{id}"))
                    .collect::<String>()
            };
            prop_assert_eq!(path_pattern(&path(&a)), path_pattern(&path(&b)));
        }
    }
}

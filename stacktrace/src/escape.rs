//! Escaping text for HTML (the mail reports) and for URLs (the dashboard's links), both
//! also used by redaction (a secret is also scrubbed as HTML or a URL would quote it), and
//! the one percent decoder. Percent-encoding and decoding are `percent-encoding`'s.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a URL component encodes: everything but the unreserved characters of RFC 3986.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Text made safe for element content and quoted attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than line breaks and tabs show as the replacement
            // character rather than reaching the page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A URL component: everything but unreserved characters percent-encoded (upper-case hex).
pub(crate) fn url_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A form or query value decoded: `+` is a space, `%XX` its byte, a `%` not followed by two
/// hex digits kept as it is; bytes that are not UTF-8 replaced.
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    let spaced: Cow<'_, str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_keep_only_unreserved_characters() {
        assert_eq!(url_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(url_component("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(percent_decode(&url_component("p@ss w+rd/€")), "p@ss w+rd/€");
    }

    #[test]
    fn decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert_eq!(percent_decode("%2B+"), "+ ");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }
}

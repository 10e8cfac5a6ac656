//! Secrets found by their form, whatever names them: the password of a URL
//! (`scheme://user:pass@host`), the credential of an HTTP authentication scheme
//! (`Bearer <token>`, `Basic <base64 of user:pass>`), and `name=value` pairs whose name is
//! one of `redact_fields` (`password=`, `token=`), in free text and query strings. Every
//! text an event or a tracked request stores goes through [`redact_credentials`]; the raw
//! values it hides are returned, so they are also scrubbed from the rest of the event.

use std::borrow::Cow;

use once_cell::sync::Lazy;
use regex::{Captures, Regex};
use serde_json::Value;

use crate::escape::percent_decode;
use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::fields::FieldRedactor;

/// Scheme, user, password and `@` of a URL with credentials. The password runs to the last
/// `@` before the host, as a URL parser reads it (`p@ss` unescaped is still the password).
static URL_CREDENTIALS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#\s:@]*):([^/?#\s]+)@").expect("valid regex")
});
/// A URL whose password a cut ended: scheme, user and `:`, then the start of a password
/// with no `@` yet, at the end of the text.
static URL_PASSWORD_AT_END: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s:@]*:([^/?#\s@]+)$").expect("valid regex")
});
/// Credentials of HTTP authentication schemes, wherever they appear.
static AUTH_VALUES: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(bearer|basic|digest)(\s+)([A-Za-z0-9\-._~+/=:%]+)").expect("valid regex")
});
/// `name=value` pairs, as a query string, a form or a log line writes them.
static PAIRS: Lazy<Regex> =
    Lazy::new(|| Regex::new(r#"([A-Za-z0-9_.\-\[\]%]+)=([^\s&;"'<>]+)"#).expect("valid regex"));

/// Secrets shorter than this are hidden where a pattern finds them but not scrubbed from
/// the rest of the event: replacing every `1` or `on` in a message would hide more than it
/// protects.
pub(crate) const MIN_SECRET_LEN: usize = 4;

/// Compiles the patterns, so that the first event (maybe inside the panic hook) does not.
pub(crate) fn prepare() {
    Lazy::force(&URL_CREDENTIALS);
    Lazy::force(&AUTH_VALUES);
    Lazy::force(&PAIRS);
    Lazy::force(&URL_PASSWORD_AT_END);
}

/// For a text cut where it was captured: the length in bytes of its end that may be the
/// start of a URL's password (`postgres://app:hun`), which the cut left without the `@`
/// that shows it is one; 0 when there is none. A port cut the same way (`http://host:80`)
/// is taken for one too: a cut text cannot tell them apart.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn url_password_start_at_end(text: &str) -> usize {
    if !text.contains("://") {
        return 0;
    }
    let tail_from = text.len().saturating_sub(2048);
    let from = (0..=tail_from)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    URL_PASSWORD_AT_END
        .captures(&text[from..])
        .and_then(|c| c.get(1))
        .map_or(0, |m| m.len())
}

/// Adds a raw value to the secrets to scrub elsewhere, as written and percent-decoded,
/// when it is long enough to be told apart from ordinary text.
pub(crate) fn add_secret(found: &mut Vec<String>, raw: &str) {
    for value in [Cow::Borrowed(raw), Cow::Owned(percent_decode(raw))] {
        let value = value.trim().trim_matches('"');
        if value.len() >= MIN_SECRET_LEN
            && value != PLACEHOLDER
            && !found.iter().any(|s| s == value)
        {
            found.push(value.to_owned());
        }
    }
}

/// A cheap test that lets most texts skip the patterns (every breadcrumb copied into the
/// crash record takes it): whether the text holds a `=`, a `://`, or one of the words
/// `beare`, `basic`, `diges` in any case. Blocks of bytes are first sieved for a `=`, a `:`
/// or a pair that starts one of the words (`be`, `ba`, `di`), without a branch, which the
/// compiler does for a whole block at once; only a block the sieve catches is looked at
/// byte by byte.
#[inline]
fn might_hold_credentials(text: &str) -> bool {
    const BLOCK: usize = 16;
    let b = text.as_bytes();
    if b.len() <= BLOCK {
        return holds_credential_start(b, 0, b.len());
    }
    let mut start = 0;
    loop {
        // The last block ends a byte before the text, over part of the one before it.
        let at = start.min(b.len() - BLOCK - 1);
        let Ok(block) = <&[u8; BLOCK + 1]>::try_from(&b[at..at + BLOCK + 1]) else {
            return holds_credential_start(b, 0, b.len());
        };
        if sieve_catches(block) && holds_credential_start(b, at, at + BLOCK) {
            return true;
        }
        if at + BLOCK + 1 >= b.len() {
            break;
        }
        start += BLOCK;
    }
    // The last byte: a `:` there ends the text, and no word fits after it.
    b[b.len() - 1] == b'='
}

/// Whether a position among the first `N - 1` of `block` holds a `=`, a `:` or starts
/// `be`, `ba` or `di` in any case: what every start [`holds_credential_start`] finds has.
/// (`| 0x20` lowers an ASCII capital and leaves a small letter; no other byte becomes a
/// small letter by it.)
#[inline(always)]
fn sieve_catches<const N: usize>(block: &[u8; N]) -> bool {
    let mut caught = 0u8;
    for j in 0..N - 1 {
        let (c, first, second) = (block[j], block[j] | 0x20, block[j + 1] | 0x20);
        let hit = (c == b'=')
            | (c == b':')
            | ((first == b'b') & ((second == b'e') | (second == b'a')))
            | ((first == b'd') & (second == b'i'));
        caught |= u8::from(hit);
    }
    caught != 0
}

/// Whether a position in `from..to` of `b` starts a `=`, a `://` or one of the words
/// (`beare`, `basic`, `diges`, any case), looking past `to` for the rest.
fn holds_credential_start(b: &[u8], from: usize, to: usize) -> bool {
    (from..to).any(|i| {
        let c = b[i];
        let lower = c | 0x20;
        // One test, without a branch, that most bytes fail.
        ((c == b'=') | (c == b':') | (lower == b'b') | (lower == b'd'))
            && (c == b'='
                || (c == b':' && b[i + 1..].starts_with(b"//"))
                || starts_a_scheme_word(&b[i..]))
    })
}

/// Whether `b` starts with `beare`, `basic` or `diges`, in any case: the first four bytes
/// compared as one word (`| 0x20` on each byte, as in [`sieve_catches`]), then the fifth.
fn starts_a_scheme_word(b: &[u8]) -> bool {
    const BEAR: u32 = u32::from_le_bytes(*b"bear");
    const BASI: u32 = u32::from_le_bytes(*b"basi");
    const DIGE: u32 = u32::from_le_bytes(*b"dige");
    let Some(&[b0, b1, b2, b3, b4]) = b.get(..5) else {
        return false;
    };
    let head = u32::from_le_bytes([b0, b1, b2, b3]) | 0x2020_2020;
    let fifth = b4 | 0x20;
    (head == BEAR && fifth == b'e')
        || (head == BASI && fifth == b'c')
        || (head == DIGE && fifth == b's')
}

/// `text` with the credentials it holds replaced by the placeholder: URL passwords
/// (`user:**********@`), authentication scheme values, and the values of `name=value` pairs
/// named by `fields`. The raw values replaced are added to `found`. Copies only a text that
/// changes.
#[inline]
pub(crate) fn redact_credentials<'t>(
    text: &'t str,
    fields: &FieldRedactor,
    found: &mut Vec<String>,
) -> Cow<'t, str> {
    // The test inlined where it is called; the patterns' work, seldom needed, apart.
    if !might_hold_credentials(text) {
        return Cow::Borrowed(text);
    }
    redact_candidate(text, fields, found)
}

/// [`redact_credentials`] of a text the cheap test let through.
#[inline(never)]
fn redact_candidate<'t>(
    text: &'t str,
    fields: &FieldRedactor,
    found: &mut Vec<String>,
) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    if out.contains("://") {
        if let Cow::Owned(s) = URL_CREDENTIALS.replace_all(&out, |c: &Captures<'_>| {
            if &c[3] == PLACEHOLDER {
                return c[0].to_owned();
            }
            add_secret(found, &c[3]);
            format!("{}{}:{PLACEHOLDER}@", &c[1], &c[2])
        }) {
            out = Cow::Owned(s);
        }
    }
    if let Cow::Owned(s) = AUTH_VALUES.replace_all(&out, |c: &Captures<'_>| {
        let value = &c[3];
        if value == PLACEHOLDER || (c[1].eq_ignore_ascii_case("basic") && !is_basic(value)) {
            return c[0].to_owned();
        }
        add_secret(found, value);
        format!("{}{}{PLACEHOLDER}", &c[1], &c[2])
    }) {
        out = Cow::Owned(s);
    }
    if out.contains('=') {
        if let Cow::Owned(s) = PAIRS.replace_all(&out, |c: &Captures<'_>| {
            let (name, value) = (&c[1], &c[2]);
            if value == PLACEHOLDER || !fields.matches(&percent_decode(name)) {
                return c[0].to_owned();
            }
            add_secret(found, value);
            format!("{name}={PLACEHOLDER}")
        }) {
            out = Cow::Owned(s);
        }
    }
    out
}

/// [`redact_credentials`] in every string and every key of a JSON value, at any depth.
pub(crate) fn redact_credentials_json(
    value: &mut Value,
    fields: &FieldRedactor,
    found: &mut Vec<String>,
) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(redacted) = redact_credentials(s, fields, found) {
                *s = redacted;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| redact_credentials_json(v, fields, found)),
        Value::Object(map) => {
            // Keys are texts too (a map keyed by a connection URL).
            let mut renamed = Vec::new();
            for (k, v) in map.iter_mut() {
                redact_credentials_json(v, fields, found);
                if let Cow::Owned(key) = redact_credentials(k, fields, found) {
                    renamed.push((k.clone(), key));
                }
            }
            for (old, new) in renamed {
                if let Some(v) = map.remove(&old) {
                    map.insert(new, v);
                }
            }
        }
        _ => {}
    }
}

/// [`redact_credentials`] in place.
pub(crate) fn redact_credentials_in(
    text: &mut String,
    fields: &FieldRedactor,
    found: &mut Vec<String>,
) {
    if let Cow::Owned(redacted) = redact_credentials(text, fields, found) {
        *text = redacted;
    }
}

/// Whether a `Basic` value is a credential: base64 of `user:password`. Free text says
/// `Basic plan` too.
fn is_basic(value: &str) -> bool {
    base64_decoded(value).is_some_and(|bytes| bytes.contains(&b':'))
}

/// Standard base64 (padding optional), or `None` when the text is not.
fn base64_decoded(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields() -> FieldRedactor {
        FieldRedactor::new(&["password".into(), "token".into()])
    }

    fn redacted(text: &str) -> (String, Vec<String>) {
        let mut found = Vec::new();
        let out = redact_credentials(text, &fields(), &mut found).into_owned();
        (out, found)
    }

    #[test]
    fn url_passwords_keep_the_user_and_host() {
        let (out, found) = redacted(
            "DATABASE_URL=postgres://app:hunter22@db:5432/x, redis://:r3d1s-pw@cache/0, \
             https://example.com/a@b, amqp://guest:p@ss@mq/vhost",
        );
        assert_eq!(
            out,
            format!(
                "DATABASE_URL=postgres://app:{PLACEHOLDER}@db:5432/x, redis://:{PLACEHOLDER}@cache/0, \
                 https://example.com/a@b, amqp://guest:{PLACEHOLDER}@mq/vhost"
            )
        );
        assert_eq!(found, ["hunter22", "r3d1s-pw", "p@ss"]);
    }

    #[test]
    fn auth_scheme_values_and_basic_only_as_a_credential() {
        let (out, found) = redacted("sent Bearer abc.def-123 and Basic dXNlcjpwdzEy; Basic plan");
        assert_eq!(
            out,
            format!("sent Bearer {PLACEHOLDER} and Basic {PLACEHOLDER}; Basic plan")
        );
        assert_eq!(found, ["abc.def-123", "dXNlcjpwdzEy"]);
    }

    #[test]
    fn pairs_named_by_fields_in_free_text_and_queries() {
        let (out, found) = redacted(
            "retry with password=hunter2, user=ann; GET /reset?token=t0k3n&q=shoes&pass%77ord=x%40yz",
        );
        assert_eq!(
            out,
            format!(
                "retry with password={PLACEHOLDER} user=ann; GET /reset?token={PLACEHOLDER}&q=shoes&pass%77ord={PLACEHOLDER}"
            )
        );
        assert_eq!(found, ["hunter2,", "t0k3n", "x%40yz", "x@yz"]);
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let text = "postgres://app:pw12@db Bearer tok3n password=abcd";
        let (once, _) = redacted(text);
        let (twice, found) = redacted(&once);
        assert_eq!(once, twice);
        assert!(found.is_empty(), "{found:?}");
        // Ordinary text is borrowed, not copied.
        let mut found = Vec::new();
        assert!(matches!(
            redact_credentials("a plain message = fine", &fields(), &mut found),
            Cow::Borrowed(_)
        ));
    }

    // Regression: a text cut inside a URL's password kept the password's start: without
    // its `@` the URL was not taken for one with credentials.
    #[test]
    fn a_cut_inside_a_url_password_is_found_at_the_end() {
        let text = "ctl postgres://app:hunt";
        assert_eq!(url_password_start_at_end(text), "hunt".len());
        assert_eq!(url_password_start_at_end("ctl redis://:pw"), 2);
        for whole in [
            "ctl postgres://app:pw@db/x",
            "ctl postgres://app",
            "ctl https://h/a:b",
            "no url: here",
        ] {
            assert_eq!(url_password_start_at_end(whole), 0, "{whole}");
        }
    }

    #[test]
    fn base64_decoding_is_total() {
        assert_eq!(base64_decoded("dXNlcjpwdw==").unwrap(), b"user:pw");
        assert_eq!(base64_decoded("dXNlcjpwdw").unwrap(), b"user:pw");
        assert!(base64_decoded("not base64!").is_none());
    }

    /// The test as first written, plainly: the one pass must agree with it.
    fn might_hold_credentials_plainly(text: &str) -> bool {
        text.contains("://")
            || text.contains('=')
            || text.as_bytes().windows(5).any(|w| {
                w.eq_ignore_ascii_case(b"beare")
                    || w.eq_ignore_ascii_case(b"basic")
                    || w.eq_ignore_ascii_case(b"diges")
            })
    }

    #[test]
    fn the_cheap_test_agrees_with_the_plain_one_on_edges() {
        for text in [
            "",
            ":",
            "://",
            "a:/",
            "x://y",
            "=",
            "a=b",
            "bearer",
            "BEARE",
            "Basi",
            "basic",
            "xdiges",
            "dige",
            "bb",
            "plain text",
            "héllo Bearer",
            "ends with :/",
            // Around the blocks of sixteen bytes the sieve takes, and the last byte.
            "0123456789abcdef=",
            "0123456789abcdefg=",
            "0123456789abcdefBearer",
            "0123456789abcdeBearer",
            "0123456789abcdeB",
            "0123456789abcdefghij:",
            "0123456789abcdefghi://",
            "0123456789abcde://",
            "0123456789abcdef0123456789abcdefghijklmnop digest",
            "0123456789abcdef0123456789abcdefghijklmnop dige",
            "0123456789abcdef0123456789abcdef=",
            "a breadcrumb of a usual length, and some more of it",
            "a breadcrumb of a usual length, and some more, basic",
        ] {
            assert_eq!(
                might_hold_credentials(text),
                might_hold_credentials_plainly(text),
                "{text:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_cheap_test_agrees_with_the_plain_one(
            text in "(BeaRer|basic|Diges|://|:/|=|[a-zA-Z:/é ]){0,40}"
        ) {
            prop_assert_eq!(
                might_hold_credentials(&text),
                might_hold_credentials_plainly(&text)
            );
        }

        #[test]
        fn a_credential_never_survives_in_any_text(
            // Starts with a digit: no other part of the text contains it.
            secret in "[0-9][A-Za-z0-9\\-._~!$*()+,:@]{3,24}",
            user in "[a-z]{1,8}",
            before in "[A-Za-z0-9 ,.!?()\\-]{0,30}",
            after in "[A-Za-z0-9 ,.!?()\\-]{0,30}",
            form in 0usize..4,
        ) {
            prop_assume!(!might_hold_credentials(&before) && !might_hold_credentials(&after));
            let text = match form {
                0 => format!("{before} postgres://{user}:{secret}@db.internal/app {after}"),
                1 => format!("{before} Bearer {secret} {after}"),
                2 => format!("{before} password={secret} {after}"),
                _ => format!("{before} /reset?a=1&{user}_token={secret}&b=2 {after}"),
            };
            // A bearer token ends at the first character a token cannot hold.
            let secret = if form == 1 {
                secret.split(['!', '$', '*', '(', ')', ',', '@']).next().unwrap_or("").to_owned()
            } else {
                secret
            };
            prop_assume!(secret.len() >= MIN_SECRET_LEN);
            let (out, found) = redacted(&text);
            prop_assert!(!out.contains(&secret), "{} -> {}", text, out);
            prop_assert!(found.iter().any(|f| f.contains(&secret)), "{:?}", found);
            // What is not a credential is kept.
            prop_assert!(out.starts_with(&before) && out.ends_with(&after), "{}", out);
            let kept = match form {
                0 => format!("postgres://{user}:{PLACEHOLDER}@db.internal/app"),
                1 => format!("Bearer {PLACEHOLDER}"),
                2 => format!("password={PLACEHOLDER}"),
                _ => format!("/reset?a=1&{user}_token={PLACEHOLDER}&b=2"),
            };
            prop_assert!(out.contains(&kept), "{}", out);
        }
    }
}

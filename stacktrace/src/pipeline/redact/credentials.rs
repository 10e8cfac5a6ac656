//! Secrets found by their form, whatever names them: the credentials of a URL
//! (`scheme://user:pass@host`, or a user alone that is a token, `https://ghp_x@github.com`),
//! of an HTTP authentication scheme (`Bearer <token>`, `Basic <base64 of user:pass>`,
//! `Token <key>`, whatever follows `Authorization:`), values named by a secret name in any
//! of the forms text writes pairs in (`password=x`, `password: "x"`, `"password":"x"`,
//! derived `Debug`), the same inside percent-encoded or JSON-escaped URLs, and values of a
//! secret's shape (`shapes`). Every text an event or a tracked request stores goes through
//! [`redact_credentials`]; the raw values it hides are returned, so they are also scrubbed
//! from the rest of the event.

use std::borrow::Cow;
use std::ops::Range;

use once_cell::sync::Lazy;
use regex::Regex;
use serde_json::Value;

use crate::escape::percent_decode;
use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::fields::FieldRedactor;
use crate::pipeline::redact::shapes::{self, shape_spans};

/// User and password of a URL with credentials, or its user alone. The password runs to
/// the last `@` before the host, as a URL parser reads it (`p@ss` unescaped is still the
/// password); neither holds a quote, which ends the text quoting the URL.
static URL_CREDENTIALS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#\s:@"'<>\\]*)(?::([^/?#\s"'<>\\]+))?@"#)
        .expect("valid regex")
});
/// A URL whose password a cut ended: scheme, user and `:`, then the start of a password
/// with no `@` yet, at the end of the text.
static URL_PASSWORD_AT_END: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s:@]*:([^/?#\s@]+)$").expect("valid regex")
});
/// HTTP authentication schemes, wherever they appear, up to their credential.
static AUTH_SCHEMES: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(bearer|basic|digest|token|api[-_]?key)\s+").expect("valid regex")
});
/// The start of a named value: a name (`X-Amz-Signature`, `user[password]`, `pass%77ord`),
/// the quote closing it, if any, `=`, `:` or `=>`, and the quote opening the value, if any
/// (either one `\"` inside a JSON-escaped text).
static PAIR_HEAD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"([A-Za-z0-9_.\-\[\]%]+)(?:\\?["'])?[ \t]*(=>|[:=])[ \t]*(\\?["'])?"#)
        .expect("valid regex")
});

/// Secrets shorter than this are hidden where a pattern finds them but not scrubbed from
/// the rest of the event: replacing every `1` or `on` in a message would hide more than it
/// protects.
pub(crate) const MIN_SECRET_LEN: usize = 4;

/// Compiles the patterns, so that the first event (maybe inside the panic hook) does not.
pub(crate) fn prepare() {
    for pattern in [
        &URL_CREDENTIALS,
        &URL_PASSWORD_AT_END,
        &AUTH_SCHEMES,
        &PAIR_HEAD,
    ] {
        Lazy::force(pattern);
    }
    shapes::prepare();
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

/// How many of the last values found a new one is compared with before it is added: a
/// value's forms are found one after another, and comparing with every value found would
/// cost the square of their number in a body with thousands (the scrubber keeps each
/// value once whatever repeats reach it).
const REPEATS_LOOKED_BACK: usize = 32;

/// Adds a raw value to the secrets to scrub elsewhere, as written and percent-decoded,
/// when it is long enough to be told apart from ordinary text.
pub(crate) fn add_secret(found: &mut Vec<String>, raw: &str) {
    for value in [Cow::Borrowed(raw), Cow::Owned(percent_decode(raw))] {
        let value = value.trim().trim_matches('"');
        if value.len() >= MIN_SECRET_LEN
            && value != PLACEHOLDER
            && !found
                .iter()
                .rev()
                .take(REPEATS_LOOKED_BACK)
                .any(|s| s == value)
        {
            found.push(value.to_owned());
        }
    }
}

/// A cheap test that lets most texts skip the patterns (every breadcrumb copied into the
/// crash record takes it): whether the text holds a `=`, a `:`, two digits in a row,
/// `-----BEGIN`, an escaped `:` or `=` (`%3A`, `%3D`, either case), an escaped slash (`\/`),
/// or one of the words `beare`, `basic`, `diges`, `token`, `apike`, `api-k`, `api_k` in any
/// case. Blocks of bytes are first sieved for a byte or a pair of bytes that starts one of
/// these, without a branch, which the compiler does for a whole block at once; only a block
/// the sieve catches is looked at byte by byte.
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
    // The last byte: only a `=` or a `:` fits there.
    matches!(b[b.len() - 1], b'=' | b':')
}

/// Whether a position among the first `N - 1` of `block` holds a `=`, a `:`, a `%` or a
/// `\`, or starts two digits, `--`, `be`, `ba`, `di`, `to` or `ap` in any case: what every
/// start [`holds_credential_start`] finds has. (`| 0x20` lowers an ASCII capital and leaves
/// a small letter; no other byte becomes a small letter by it.)
#[inline(always)]
fn sieve_catches<const N: usize>(block: &[u8; N]) -> bool {
    let mut caught = 0u8;
    for j in 0..N - 1 {
        let (c, next) = (block[j], block[j + 1]);
        let (first, second) = (c | 0x20, next | 0x20);
        let hit = (c == b'=')
            | (c == b':')
            | (c == b'%')
            | (c == b'\\')
            | ((c.wrapping_sub(b'0') < 10) & (next.wrapping_sub(b'0') < 10))
            | ((c == b'-') & (next == b'-'))
            | ((first == b'b') & ((second == b'e') | (second == b'a')))
            | ((first == b'd') & (second == b'i'))
            | ((first == b't') & (second == b'o'))
            | ((first == b'a') & (second == b'p'));
        caught |= u8::from(hit);
    }
    caught != 0
}

/// Whether a position in `from..to` of `b` starts what [`might_hold_credentials`] looks
/// for, looking past `to` for the rest.
fn holds_credential_start(b: &[u8], from: usize, to: usize) -> bool {
    (from..to).any(|i| {
        let rest = &b[i..];
        match b[i] {
            b'=' | b':' => true,
            b'%' => matches!(rest, [_, b'3', b'A' | b'a' | b'D' | b'd', ..]),
            b'\\' => rest.get(1) == Some(&b'/'),
            b'0'..=b'9' => rest.get(1).is_some_and(u8::is_ascii_digit),
            b'-' => rest.starts_with(b"-----BEGIN"),
            c => matches!(c | 0x20, b'b' | b'd' | b't' | b'a') && starts_a_scheme_word(rest),
        }
    })
}

/// Whether `b` starts with one of the words of [`might_hold_credentials`], in any case: the
/// first four bytes compared as one word (`| 0x20` on each byte, as in [`sieve_catches`];
/// `-` and `_` are told apart after it), then the fifth.
fn starts_a_scheme_word(b: &[u8]) -> bool {
    const fn word(w: &[u8; 4]) -> u32 {
        u32::from_le_bytes(*w)
    }
    let Some(&[b0, b1, b2, b3, b4]) = b.get(..5) else {
        return false;
    };
    let head = u32::from_le_bytes([b0, b1, b2, b3]) | 0x2020_2020;
    let fifth = b4 | 0x20;
    match head {
        h if h == word(b"bear") => fifth == b'e',
        h if h == word(b"basi") => fifth == b'c',
        h if h == word(b"dige") => fifth == b's',
        h if h == word(b"toke") => fifth == b'n',
        h if h == word(b"apik") => fifth == b'e',
        // `_ | 0x20` is 0x7f; `\r` too becomes `-`, hence the fourth byte looked at again.
        h if h == word(b"api-") || h == word(b"api\x7f") => {
            matches!(b3, b'-' | b'_') && fifth == b'k'
        }
        _ => false,
    }
}

/// `text` with the credentials it holds replaced by the placeholder (see the module's
/// documentation). The raw values replaced are added to `found`. Copies only a text that
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

/// [`redact_credentials`] of a text the cheap test let through: every pattern finds the
/// spans of the values to hide in one pass over the text (over its decoded copy too, when
/// it holds escaped URLs), then one more pass writes the text with those spans replaced.
#[inline(never)]
fn redact_candidate<'t>(
    text: &'t str,
    fields: &FieldRedactor,
    found: &mut Vec<String>,
) -> Cow<'t, str> {
    let mut spans = Vec::new();
    credential_spans(text, fields, &mut spans);
    if let Some(decoded) = Decoded::of(text) {
        let mut inner = Vec::new();
        credential_spans(&decoded.text, fields, &mut inner);
        spans.extend(inner.into_iter().map(|r| decoded.original(r)));
    }
    let mut also = Vec::new();
    shape_spans(text, &mut spans, &mut also);
    let out = hide_spans(text, spans, found);
    for value in also {
        add_secret(found, &value);
    }
    out
}

/// The spans of the values of URLs, authentication schemes and named pairs in `text`.
fn credential_spans(text: &str, fields: &FieldRedactor, spans: &mut Vec<Range<usize>>) {
    if text.contains("://") {
        for c in URL_CREDENTIALS.captures_iter(text) {
            // The password of `user:pass@`, or else a user alone.
            if let Some(secret) = c.get(2).or(c.get(1)).filter(|m| !m.is_empty()) {
                if secret.as_str() != PLACEHOLDER {
                    spans.push(secret.range());
                }
            }
        }
    }
    scheme_spans(text, spans);
    if text.contains([':', '=']) {
        pair_spans(text, fields, spans);
    }
}

/// The credentials after `Bearer` (the rest of the word), `Basic` (base64 of
/// `user:password`), `Digest`, and `Token` or `ApiKey` (a value that looks like a key).
fn scheme_spans(text: &str, spans: &mut Vec<Range<usize>>) {
    const DIGEST: &[u8] = b"-._~+/=:%";
    for c in AUTH_SCHEMES.captures_iter(text) {
        let (Some(head), Some(scheme)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let rest = &text[head.end()..];
        let word = &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())];
        let value = match scheme.as_str().as_bytes()[..2]
            .to_ascii_lowercase()
            .as_slice()
        {
            b"be" => trim_closers(word),
            b"ba" => Some(prefix_of(word, DIGEST)).filter(|v| is_basic(v)),
            b"di" => Some(prefix_of(word, DIGEST)),
            _ => Some(prefix_of(word, b"-._~+/=")).filter(|v| looks_like_a_key(v)),
        };
        if let Some(value) = value.filter(|v| !v.is_empty() && *v != PLACEHOLDER) {
            spans.push(head.end()..head.end() + value.len());
        }
    }
}

/// `word` without the quotes and brackets that close the text around it (`Bearer x"}`).
fn trim_closers(word: &str) -> Option<&str> {
    Some(word.trim_end_matches(['"', '\'', '`', '\\', ')', ']', '}', '>', ',', ';']))
}

/// The start of `word` made of ASCII letters, digits and `more`.
fn prefix_of<'w>(word: &'w str, more: &[u8]) -> &'w str {
    let end = word
        .bytes()
        .position(|b| !b.is_ascii_alphanumeric() && !more.contains(&b))
        .unwrap_or(word.len());
    &word[..end]
}

/// Whether a word after `Token` or `ApiKey` is a key rather than prose: twelve or more
/// characters of a token's, letters and digits among them.
fn looks_like_a_key(word: &str) -> bool {
    word.len() >= 12
        && word.bytes().any(|b| b.is_ascii_alphabetic())
        && word.bytes().any(|b| b.is_ascii_digit())
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

/// The values of pairs whose name is secret (or is `Authorization`), in every form a text
/// writes them: `name=value`, `name: value`, `name = "value"`, `"name": "value"` (also
/// JSON-escaped), `name => 'value'`, a derived `Debug`'s `name: "value"` and
/// `name: Some("value")`.
fn pair_spans(text: &str, fields: &FieldRedactor, spans: &mut Vec<Range<usize>>) {
    let mut at = 0;
    while let Some(c) = PAIR_HEAD.captures_at(text, at) {
        let (Some(head), Some(name)) = (c.get(0), c.get(1)) else {
            break;
        };
        at = head.end();
        let name = name.as_str();
        let authorization = ends_with_ignore_ascii_case(name, "authorization");
        let named = fields.matches(&percent_decode(name));
        if !authorization && !named {
            continue;
        }
        let value = match c.get(3) {
            Some(quote) => Ok((quoted_value(text, head.end(), quote.as_str()), true)),
            None => unquoted_value(text, head.end(), &c[2] == ":", name),
        };
        // What was read as a value is not read again, hidden or not: the text is read once.
        let (value, quoted) = match value {
            Ok(value) => value,
            Err(end) => {
                at = at.max(end);
                continue;
            }
        };
        at = at.max(value.end);
        let value = if authorization {
            match authorization_credential(text, value, quoted, named) {
                Some(credential) => credential,
                None => continue,
            }
        } else {
            value
        };
        if !value.is_empty() && &text[value.clone()] != PLACEHOLDER {
            at = at.max(value.end);
            spans.push(value);
        }
    }
}

fn ends_with_ignore_ascii_case(text: &str, end: &str) -> bool {
    text.len() >= end.len()
        && text.as_bytes()[text.len() - end.len()..].eq_ignore_ascii_case(end.as_bytes())
}

/// The span of a quoted string's content starting at `start`, opened by `quote` (`"`, `'`,
/// or either escaped, inside a JSON-escaped text): to its closing quote, backslash escapes
/// honoured, or to the end of the text when it has none (a text cut inside it).
fn quoted_value(text: &str, start: usize, quote: &str) -> Range<usize> {
    let b = text.as_bytes();
    let escaped = quote.len() == 2;
    let q = quote.as_bytes()[quote.len() - 1];
    let mut i = start;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            (c, _) if c == q => return start..i,
            // Inside a JSON-escaped text `\"` closes; `\\` escapes the next escape (`\\\"`
            // is a quote of the inner text).
            (b'\\', Some(next)) if escaped && next == q => return start..i,
            (b'\\', Some(b'\\')) if escaped && b.get(i + 3) == Some(&q) => i += 4,
            (b'\\', _) => i += 2,
            _ => i += 1,
        }
    }
    start..b.len()
}

/// Words that a value written without quotes is when it is no secret: what a derived
/// `Debug` writes for no value, and the types and keywords of a source line that declares
/// or assigns a secret.
const NOT_SECRETS: &[&str] = &[
    "None",
    "null",
    "nil",
    "undefined",
    "true",
    "false",
    "String",
    "str",
    "bool",
    "char",
    "u8",
    "u16",
    "u32",
    "u64",
    "usize",
    "i32",
    "i64",
    "isize",
    "f64",
    "Option",
    "Vec",
    "Self",
    "self",
    "match",
    "if",
    "mut",
    "ref",
];

/// The span of a value written without quotes after `name` and its separator, at `start`,
/// and whether it turned out to be quoted inside a wrapper (`Some("x")`); or, when what
/// follows is no value, where the word read ends: a path or a time after a `:` (`auth::login`, `https://`, `12:30`),
/// a comparison (`==`), a type or a keyword, a call, a variable of the same name.
fn unquoted_value(
    text: &str,
    start: usize,
    after_colon: bool,
    name: &str,
) -> Result<(Range<usize>, bool), usize> {
    let rest = &text[start..];
    // A string inside wrappers, as a derived `Debug` writes an `Option` or a newtype.
    let mut inner = start;
    while let Some(len) = wrapper_len(&text[inner..]) {
        inner += len;
    }
    let quote = ["\\\"", "\\'", "\"", "'"]
        .into_iter()
        .find(|q| inner > start && text[inner..].starts_with(q));
    if let Some(quote) = quote {
        return Ok((quoted_value(text, inner + quote.len(), quote), true));
    }
    let first = rest.chars().next().ok_or(start)?;
    if first == '=' || (after_colon && matches!(first, '/' | ':')) {
        return Err(start);
    }
    let mut end = text.len();
    for (i, c) in rest.char_indices() {
        let escaped_quote = c == '\\' && matches!(rest[i + 1..].chars().next(), Some('"' | '\''));
        if escaped_quote
            || c.is_whitespace()
            || matches!(
                c,
                '&' | ';' | ',' | '"' | '\'' | '<' | '>' | ')' | '}' | ']'
            )
        {
            end = start + i;
            break;
        }
    }
    let value = &text[start..end];
    let code = |v: &str| v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let not_a_value = NOT_SECRETS.contains(&value)
        || text[end..].starts_with('<')
        || (code(value) && (value.contains("::") || value.ends_with('(')))
        || last_segment(value).eq_ignore_ascii_case(last_segment(name));
    if value.is_empty() || not_a_value {
        return Err(end);
    }
    Ok((start..end, false))
}

/// What follows the last `.` of a name (`password` of `self.password`).
fn last_segment(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The length of `Name(` at the start of `text`, an identifier and its parenthesis.
fn wrapper_len(text: &str) -> Option<usize> {
    let ident = text
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(text.len());
    let starts_well = text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    (starts_well && text[ident..].starts_with('(')).then_some(ident + 1)
}

/// The credential of an `Authorization` header's value at `value`: what follows its
/// scheme (`Token`, `ApiKey`, `AWS4-HMAC-SHA256`, the rest of the line when it is a list of
/// parameters), or the value itself when it has no scheme and is a credential (`named`: the
/// header's name is a secret one).
fn authorization_credential(
    text: &str,
    value: Range<usize>,
    quoted: bool,
    named: bool,
) -> Option<Range<usize>> {
    if quoted {
        let content = &text[value.clone()];
        return Some(match content.split_once([' ', '\t']) {
            Some((scheme, _)) if is_scheme(scheme) => {
                let after = scheme.len() + 1;
                let skipped = content[after..].len() - content[after..].trim_start().len();
                value.start + after + skipped..value.end
            }
            _ => value,
        });
    }
    let after = &text[value.end..];
    let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
    let scheme = &text[value.clone()];
    let second = (gap > 0).then(|| {
        let start = value.end + gap;
        let word = &text[start..];
        (
            start,
            &word[..word.find(char::is_whitespace).unwrap_or(word.len())],
        )
    });
    let second = second.filter(|(_, word)| !word.is_empty());
    match second {
        // After a scheme, or after a word that is no key before one that is no prose.
        Some((start, word))
            if is_scheme(scheme) || (!looks_like_a_key(scheme) && !is_prose(word)) =>
        {
            // Parameters (`Credential=...,`, `username="..."`): the rest of the line.
            let params = word.trim_end_matches('=').contains('=');
            let end = if params {
                let line = &text[start..];
                start
                    + line[..line.find(['\n', '\r']).unwrap_or(line.len())]
                        .trim_end()
                        .len()
            } else {
                start + trim_closers(word).map_or(0, str::len)
            };
            Some(start..end)
        }
        // A word alone: a key, or any but a word of prose when the name is a secret one.
        _ => (looks_like_a_key(scheme) || (named && !is_prose(scheme))).then_some(value),
    }
}

/// Whether a word is one of prose (`denied`, `Access`) rather than a credential.
fn is_prose(word: &str) -> bool {
    word.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Whether a word is an authentication scheme: a registered or common one in any case, or
/// a word of capitals, digits and dashes (`AWS4-HMAC-SHA256`, `NTLM`).
fn is_scheme(word: &str) -> bool {
    const KNOWN: [&str; 16] = [
        "basic",
        "bearer",
        "digest",
        "token",
        "apikey",
        "api-key",
        "key",
        "negotiate",
        "ntlm",
        "oauth",
        "hoba",
        "mutual",
        "vapid",
        "dpop",
        "hawk",
        "ssws",
    ];
    KNOWN.iter().any(|k| k.eq_ignore_ascii_case(word))
        || (word.len() >= 2
            && word.len() <= 32
            && word.starts_with(|c: char| c.is_ascii_uppercase())
            && word
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'))
}

/// A text with the escapes that hide a URL's or a pair's separators decoded (every `%XX` of
/// an ASCII character, and `\/`, as JSON writes a slash), with where each of its bytes
/// came from in the text, so that a value found in it is hidden in the text itself.
struct Decoded {
    text: String,
    from: Vec<usize>,
}

impl Decoded {
    /// The decoded copy of a text that holds an escaped `:` or `=` (`%3A`, `%3d`) or `\/`.
    fn of(text: &str) -> Option<Decoded> {
        let b = text.as_bytes();
        let escaped = |i: usize| match b.get(i..i + 3) {
            Some(&[b'%', hi, lo]) => {
                let hex = |h: u8| (h as char).to_digit(16);
                Some(hex(hi)? * 16 + hex(lo)?)
                    .filter(|v| *v < 0x80)
                    .map(|v| v as u8)
            }
            _ => None,
        };
        let holds = b
            .windows(2)
            .enumerate()
            .any(|(i, w)| w == b"\\/" || (w[0] == b'%' && matches!(escaped(i), Some(b':' | b'='))));
        if !holds {
            return None;
        }
        let (mut out, mut from) = (Vec::with_capacity(b.len()), Vec::with_capacity(b.len() + 1));
        let mut i = 0;
        while i < b.len() {
            from.push(i);
            match (escaped(i), b[i], b.get(i + 1)) {
                (Some(byte), _, _) => (out.push(byte), i += 3),
                (None, b'\\', Some(b'/')) => (out.push(b'/'), i += 2),
                (None, byte, _) => (out.push(byte), i += 1),
            };
        }
        from.push(b.len());
        // ASCII bytes stand for ASCII escapes: the copy is UTF-8 as the text is.
        String::from_utf8(out)
            .ok()
            .map(|text| Decoded { text, from })
    }

    /// The span of the text that a span of the copy was decoded from.
    fn original(&self, span: Range<usize>) -> Range<usize> {
        self.from[span.start]..self.from[span.end]
    }
}

/// `text` with `spans` (overlapping ones joined) replaced by the placeholder, each value
/// replaced added to `found`, also JSON-unescaped when it holds a `\`.
fn hide_spans<'t>(
    text: &'t str,
    mut spans: Vec<Range<usize>>,
    found: &mut Vec<String>,
) -> Cow<'t, str> {
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    while i < spans.len() {
        let Range { start, mut end } = spans[i].clone();
        while i < spans.len() && spans[i].start <= end {
            end = end.max(spans[i].end);
            i += 1;
        }
        let start = start.max(copied);
        out.push_str(&text[copied..start]);
        out.push_str(PLACEHOLDER);
        let value = &text[start..end];
        add_secret(found, value);
        if value.contains('\\') {
            add_secret(found, &json_unescaped(value));
        }
        copied = end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A value as it reads once a JSON string's escapes (`\"`, `\\`, `\/`) are undone.
fn json_unescaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        out.extend(if c == '\\' { chars.next() } else { Some(c) });
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
pub(crate) fn base64_decoded(text: &str) -> Option<Vec<u8>> {
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
        FieldRedactor::new(
            &["password", "token", "secret", "signature", "credential"].map(String::from),
        )
    }

    fn redacted(text: &str) -> (String, Vec<String>) {
        let mut found = Vec::new();
        let out = redact_credentials(text, &fields(), &mut found).into_owned();
        (out, found)
    }

    /// Each text redacted is the expected one, `#` standing for the placeholder.
    fn assert_redacted(cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            let (out, _) = redacted(text);
            assert_eq!(out, expected.replace('#', PLACEHOLDER), "{text}");
        }
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

    // Regression: a URL whose user alone is the credential (a token, a DSN's public key)
    // was stored as it was.
    #[test]
    fn a_url_user_alone_is_hidden_whole() {
        assert_redacted(&[
            (
                "clone https://ghp_abc123@github.com/x",
                "clone https://#@github.com/x",
            ),
            (
                "dsn https://publickey@o1.ingest.sentry.io/1",
                "dsn https://#@o1.ingest.sentry.io/1",
            ),
            // No user, a path holding `@`, a quoted URL beside a mail address: kept.
            (
                "see https://example.com/path, https://h/a@b",
                "see https://example.com/path, https://h/a@b",
            ),
            (
                r##"["https://example.com","ann@example.com"]"##,
                r##"["https://example.com","ann@example.com"]"##,
            ),
        ]);
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

    // Regression: `Authorization: Token <key>` and other schemes, `ApiKey <key>` in free
    // text and a bearer token holding characters outside base64's were kept (whole or in
    // part).
    #[test]
    fn every_scheme_after_authorization_and_keys_after_token() {
        assert_redacted(&[
            (
                "Authorization: Token abc123def456",
                "Authorization: Token #",
            ),
            (
                "proxy-authorization: ApiKey k-77x",
                "proxy-authorization: ApiKey #",
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=fe5f\nnext",
                "Authorization: AWS4-HMAC-SHA256 #\nnext",
            ),
            (
                r##"{"authorization": "Custom s3cr3t-v4l"}"##,
                r##"{"authorization": "#"}"##,
            ),
            (
                "Authorization: Custom s3cr3t-v4l",
                "Authorization: Custom #",
            ),
            ("Authorization: ghp_abcdef123456", "Authorization: #"),
            (
                "sent ApiKey abcdef123456 then Token xyz789abc012",
                "sent ApiKey # then Token #",
            ),
            ("Bearer a!b$c(d)*e@f.", "Bearer #"),
            (r##"{"h":"Bearer tok3n-x"}"##, r##"{"h":"Bearer #"}"##),
            // Prose: not a key, not a scheme.
            (
                "Token expired at noon; apikey rotation due",
                "Token expired at noon; apikey rotation due",
            ),
            (
                "Authorization: denied for ann",
                "Authorization: denied for ann",
            ),
        ]);
    }

    #[test]
    fn pairs_named_by_fields_in_free_text_and_queries() {
        let (out, found) = redacted(
            "retry with password=hunter2, user=ann; GET /reset?token=t0k3n&q=shoes&pass%77ord=x%40yz",
        );
        assert_eq!(
            out,
            format!(
                "retry with password={PLACEHOLDER}, user=ann; GET /reset?token={PLACEHOLDER}&q=shoes&pass%77ord={PLACEHOLDER}"
            )
        );
        assert_eq!(found, ["hunter2", "t0k3n", "x%40yz", "x@yz"]);
    }

    // Regression: only `name=value` was taken for a pair; quoted values, `name: value`,
    // JSON in text and derived `Debug` kept their secrets.
    #[test]
    fn pairs_in_every_form_text_writes_them() {
        assert_redacted(&[
            (
                r##"password="p w" user="ann""##,
                r##"password="#" user="ann""##,
            ),
            ("password='p w' at 12:30", "password='#' at 12:30"),
            ("password: hunter2 user: ann", "password: # user: ann"),
            ("password = hunter2;", "password = #;"),
            (
                r##"{"password": "a\"b", "user":"ann"}"##,
                r##"{"password": "#", "user":"ann"}"##,
            ),
            (r##"{"password":"x1"}"##, r##"{"password":"#"}"##),
            (
                r##"LoginForm { user: "ann", password: "x" }"##,
                r##"LoginForm { user: "ann", password: "#" }"##,
            ),
            (
                "LoginForm {\n    user: \"ann\",\n    password: \"x\",\n}",
                "LoginForm {\n    user: \"ann\",\n    password: \"#\",\n}",
            ),
            (
                r##"{"password": "x", "n": 1}"##,
                r##"{"password": "#", "n": 1}"##,
            ),
            (
                r##"Form { secret: Some("x"), token: None }"##,
                r##"Form { secret: Some("#"), token: None }"##,
            ),
            // JSON inside a `Debug` string.
            (
                r##""{\"password\":\"p\\\"q\",\"user\":\"ann\"}""##,
                r##""{\"password\":\"#\",\"user\":\"ann\"}""##,
            ),
            (
                "X-Amz-Signature=abc123&X-Amz-Credential=AKIA%2F1&x=1",
                "X-Amz-Signature=#&X-Amz-Credential=#&x=1",
            ),
            (r##"secret => 'x'"##, r##"secret => '#'"##),
            // A quoted value the text cut off.
            (r##"{"password": "hunt"##, r##"{"password": "#"##),
        ]);
    }

    #[test]
    fn what_only_looks_like_a_pair_is_kept() {
        for text in [
            "call token::refresh at 12:30 on https://token.example.com/path",
            "secret://vault/path, password::check()",
            "if password == stored { self.password = password; }",
            "struct Login { password: String, token: Option<String> }",
            "let password = read_password(); let token = env::var(\"T\");",
            "password: &str, secret: bool",
            "password=\"\" token=''",
        ] {
            assert_eq!(redacted(text).0, text);
        }
    }

    // Regression: URLs with credentials percent-encoded (a redirect parameter) or written
    // with JSON's escaped slashes were not taken for URLs.
    #[test]
    fn escaped_urls_are_found_and_hidden_in_their_escaped_form() {
        let (out, found) = redacted(
            r"go redirect=https%3A%2F%2Fann%3As3cr3t%40db, https:\/\/bob:p%40ss@h\/x, https%3a%2f%2fghp_x1%40gh",
        );
        assert_eq!(
            out,
            format!(
                r"go redirect=https%3A%2F%2Fann%3A{PLACEHOLDER}%40db, https:\/\/bob:{PLACEHOLDER}@h\/x, https%3a%2f%2f{PLACEHOLDER}%40gh"
            )
        );
        assert_eq!(found, ["s3cr3t", "p%40ss", "p@ss", "ghp_x1"]);
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let text = "postgres://app:pw12@db Bearer tok3n password=abcd https://ghp_x@h \
                    Authorization: Token abcdef123456 Authorization: AWS4-HMAC-SHA256 a=b, c=d\n\
                    {\"password\": \"x\", \"pin\": Some(\"y\")} password: 'z' redirect=https%3A%2F%2Fa%3Ab%40h \
                    card 4111 1111 1111 1111 iban DE89370400440532013000 ssn 078-05-1120 \
                    -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- \
                    -----BEGIN PRIVATE KEY-----\ncut";
        let (once, _) = redacted(text);
        let (twice, found) = redacted(&once);
        assert_eq!(once, twice);
        assert!(found.is_empty(), "{found:?}");
        // Ordinary text is borrowed, not copied.
        let mut found = Vec::new();
        for plain in [
            "a plain message = fine",
            "at 12:30 order 12345, https://example.com/x",
        ] {
            assert!(matches!(
                redact_credentials(plain, &fields(), &mut found),
                Cow::Borrowed(_)
            ));
        }
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

    /// The test plainly: the one pass must agree with it.
    fn might_hold_credentials_plainly(text: &str) -> bool {
        let b = text.as_bytes();
        text.contains([':', '='])
            || ["%3A", "%3a", "%3D", "%3d", "\\/", "-----BEGIN"]
                .iter()
                .any(|s| text.contains(s))
            || b.windows(2)
                .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_digit())
            || b.windows(5).any(|w| {
                [
                    "beare", "basic", "diges", "token", "apike", "api-k", "api_k",
                ]
                .iter()
                .any(|word| w.eq_ignore_ascii_case(word.as_bytes()))
            })
    }

    #[test]
    fn the_cheap_test_agrees_with_the_plain_one_on_edges() {
        for text in [
            "",
            ":",
            "://",
            "a:/",
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
            "toke",
            "TOKEN",
            "ApiKey",
            "api_k",
            "api-k",
            "api\rk",
            "api\x7fk",
            "apik",
            "1",
            "1a2",
            "12",
            "%3",
            "%3a",
            "%3B",
            "%2F%3D",
            "\\",
            "\\/",
            "----BEGIN",
            "-----BEGIN",
            "-----BEGI",
            // Around the blocks of sixteen bytes the sieve takes, and the last byte.
            "0123456789abcdef=",
            "abcdefghijklmnopq=",
            "abcdefghijklmnop:",
            "abcdefghijklmnopBearer",
            "abcdefghijklmnoBearer",
            "abcdefghijklmnoB",
            "abcdefghijklmno1",
            "abcdefghijklmn12",
            "abcdefghijklmno12",
            "abcdefghijklmnop%3A",
            "abcdefghijklmnop-----BEGIN",
            "abcdefghijklmnopabcdefghijklmnopqrstuvwxyz token",
            "abcdefghijklmnopabcdefghijklmnopqrstuvwxyz toke",
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

    /// A name, a secret and the text around them in one of the forms a credential takes;
    /// the secret starts with a digit, so no other part of the text contains it.
    fn in_form(form: usize, user: &str, secret: &str) -> (String, String) {
        let text = match form {
            0 => format!("postgres://{user}:{secret}@db.internal/app"),
            1 => format!("Bearer {secret}"),
            2 => format!("password={secret}"),
            3 => format!("/reset?a=1&{user}_token={secret}&b=2"),
            4 => format!("password=\"{secret}\""),
            5 => format!("{{\"{user}_password\": \"{secret}\", \"n\": 1}}"),
            6 => format!("LoginForm {{ user: \"{user}\", password: \"{secret}\" }}"),
            7 => {
                format!("LoginForm {{\n    user: \"{user}\",\n    secret: Some(\"{secret}\"),\n}}")
            }
            8 => format!("https://{secret}@github.com/{user}"),
            9 => format!("Authorization: Token {secret}"),
            10 => format!("Proxy-Authorization: {secret}"),
            11 => format!("ApiKey {secret}"),
            12 => format!("X-Amz-Signature={secret}&X-Amz-Date=1"),
            13 => format!("redirect=https%3A%2F%2F{user}%3A{secret}%40db%2Fx"),
            14 => format!("https:\\/\\/{user}:{secret}@h\\/x"),
            15 => format!("{{\\\"password\\\":\\\"{secret}\\\"}}"),
            _ => format!("note: {{'password': '{secret}'}} token = {secret}"),
        };
        (text, secret.to_owned())
    }

    proptest! {
        #[test]
        fn the_cheap_test_agrees_with_the_plain_one(
            text in "(BeaRer|basic|Diges|ToKen|apiKey|api_k|api-k|://|:|=|%3a|%3D|%2|\\\\/|\\\\|-----BEGIN|--|[0-9]|[a-zA-Z/é \\-%\\\\]){0,40}"
        ) {
            prop_assert_eq!(
                might_hold_credentials(&text),
                might_hold_credentials_plainly(&text)
            );
        }

        #[test]
        fn a_credential_never_survives_in_any_text(
            secret in "[0-9][A-Za-z0-9\\-._~!$*()+,:@]{3,24}",
            user in "[a-z]{1,8}",
            before in "[A-Za-z ,.!?()\\-]{0,30}",
            after in "[A-Za-z ,.!?()\\-]{0,30}",
            form in 0usize..4,
        ) {
            prop_assume!(!might_hold_credentials(&before) && !might_hold_credentials(&after));
            let (credential, _) = in_form(form, &user, &secret);
            let text = format!("{before} {credential} {after}");
            // A bearer token ends where the text around it closes; an unquoted value at
            // the first character that ends one.
            let secret = match form {
                1 => trim_closers(&secret).unwrap_or_default().to_owned(),
                2 | 3 => secret.split([',', ')']).next().unwrap_or_default().to_owned(),
                _ => secret,
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
                _ => format!("/reset?a=1&{user}_token={PLACEHOLDER}"),
            };
            prop_assert!(out.contains(&kept), "{}", out);
        }

        #[test]
        fn a_key_never_survives_in_any_form(
            secret in "[0-9][a-z][A-Za-z0-9_\\-]{10,22}",
            user in "[a-z]{1,8}",
            before in "[A-Za-z ,.!?()\\-]{0,30}",
            after in "[A-Za-z ,.!?()\\-]{0,30}",
            form in 0usize..17,
        ) {
            prop_assume!(!might_hold_credentials(&before) && !might_hold_credentials(&after));
            let (credential, secret) = in_form(form, &user, &secret);
            let text = format!("{before} {credential} {after}");
            let (out, found) = redacted(&text);
            prop_assert!(!out.contains(&secret), "{} -> {}", text, out);
            prop_assert!(found.contains(&secret), "{:?}", found);
            prop_assert!(out.starts_with(&before) && out.ends_with(&after), "{}", out);
            // Only the secret is hidden: with the placeholder for it, the text is the same.
            prop_assert_eq!(out, text.replace(&secret, PLACEHOLDER));
        }
    }
}

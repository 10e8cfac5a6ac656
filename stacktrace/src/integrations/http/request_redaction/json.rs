//! JSON bodies: parsed and redacted at any depth, or scanned key by key when the text does
//! not parse (a body cut at the size limit); and texts inside a field (a JSON string, a
//! form value) that are JSON themselves, or a GraphQL document under `query`, redacted as
//! such and written back in the field's own encoding.

use std::borrow::Cow;

use serde_json::Value;

use super::graphql;
use super::Redaction;
use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::credentials::redact_credentials;

/// How many texts inside fields are read one inside another (JSON in a JSON string in a JSON
/// string...); deeper ones are plain text. Each level is parsed with the levels above it
/// still on the stack, so the stack a body takes stays bounded.
const MAX_NESTED: u8 = 4;

impl Redaction<'_> {
    /// A JSON text with the values of sensitive keys hidden at any depth. A text that does
    /// not parse (a body cut at the size limit) is scanned key by key instead.
    pub(crate) fn json(&mut self, text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) => {
                self.json_value(&mut v);
                serde_json::to_string(&v).unwrap_or_else(|_| PLACEHOLDER.to_owned())
            }
            Err(_) => self.json_cut(text),
        }
    }

    /// A JSON text that does not parse, scanned key by key, credentials in it found by value.
    fn json_cut(&mut self, text: &str) -> String {
        let scanned = self.json_lenient(text);
        self.inline(&scanned)
    }

    pub(crate) fn json_value(&mut self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                let mut renamed = Vec::new();
                for (k, v) in map.iter_mut() {
                    if self.is_sensitive_name(k) {
                        self.secrets_of(v);
                        *v = Value::String(PLACEHOLDER.to_owned());
                    } else if let Value::String(s) = v {
                        *s = self.field_text(Some(k), s);
                    } else {
                        self.json_value(v);
                    }
                    // Keys are texts too (data attached under a URL).
                    if let Cow::Owned(key) = redact_credentials(k, self.fields, &mut self.secrets) {
                        renamed.push((k.clone(), key));
                    }
                }
                for (old, new) in renamed {
                    if let Some(v) = map.remove(&old) {
                        map.insert(new, v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json_value(v)),
            Value::String(s) => *s = self.field_text(None, s),
            _ => {}
        }
    }

    /// The text of a field named `key` (none for an item of a list) as stored.
    fn field_text(&mut self, key: Option<&str>, text: &str) -> String {
        match self.nested(key, text) {
            Some(redacted) => redacted,
            None => self.inline(text),
        }
    }

    /// A field's text that is JSON itself (an object or a list), or a GraphQL document in
    /// a field named `query`, redacted as one; `None` when it is neither or nothing in it
    /// changed, so that the field keeps its text as it was written.
    pub(super) fn nested(&mut self, key: Option<&str>, text: &str) -> Option<String> {
        if self.nesting >= MAX_NESTED {
            return None;
        }
        self.nesting += 1;
        let redacted = self.nested_unbounded(key, text);
        self.nesting -= 1;
        redacted.filter(|r| r != text)
    }

    fn nested_unbounded(&mut self, key: Option<&str>, text: &str) -> Option<String> {
        let t = text.trim_start();
        let query = key.is_some_and(|k| k.trim().eq_ignore_ascii_case("query"));
        if t.starts_with(['{', '[']) {
            match serde_json::from_str::<Value>(text) {
                Ok(mut v) => {
                    let before = v.clone();
                    self.json_value(&mut v);
                    if v == before {
                        None
                    } else {
                        serde_json::to_string(&v).ok()
                    }
                }
                // `{ user { id } }`, GraphQL's shorthand for a query.
                Err(_) if query => Some(self.graphql(text)),
                Err(_) => Some(self.json_cut(text)),
            }
        } else if query && graphql::is_operation(t) {
            Some(self.graphql(text))
        } else {
            None
        }
    }

    fn secrets_of(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.secret(s),
            Value::Number(n) => self.secret(&n.to_string()),
            Value::Array(items) => items.iter().for_each(|v| self.secrets_of(v)),
            Value::Object(map) => map.values().for_each(|v| self.secrets_of(v)),
            _ => {}
        }
    }

    /// A JSON text scanned string by string: the value of a sensitive key hidden to its end
    /// (or the text's), a string holding JSON or a query redacted as a field's text is.
    fn json_lenient(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        // The last key that was not sensitive, and where its value starts.
        let mut key: Option<(String, usize)> = None;
        while i < b.len() {
            let Some(q) = s[i..].find('"') else {
                out.push_str(&s[i..]);
                break;
            };
            out.push_str(&s[i..i + q]);
            i += q;
            let (end, closed) = string_end_closed(b, i);
            let literal = &s[i..end];
            let colon = skip_space(b, end);
            if colon < b.len() && b[colon] == b':' {
                out.push_str(literal);
                i = end;
                let name = unescaped(string_inside(literal, closed));
                if self.is_sensitive_name(&name) {
                    let start = skip_space(b, colon + 1);
                    let stop = value_end(b, start);
                    out.push_str(&s[i..start]);
                    self.secret(&s[start..stop]);
                    out.push('"');
                    out.push_str(PLACEHOLDER);
                    out.push('"');
                    i = stop;
                } else {
                    key = Some((name, skip_space(b, colon + 1)));
                }
                continue;
            }
            let field = key
                .as_ref()
                .filter(|(_, at)| *at == i)
                .map(|(name, _)| name.as_str());
            let inner = unescaped(string_inside(literal, closed));
            match self.nested(field, &inner) {
                Some(redacted) => {
                    let mut quoted =
                        serde_json::to_string(&redacted).unwrap_or_else(|_| PLACEHOLDER.to_owned());
                    if !closed {
                        // Cut as it was.
                        quoted.pop();
                    }
                    out.push_str(&quoted);
                }
                None => out.push_str(literal),
            }
            i = end;
        }
        out
    }
}

/// What is between a string literal's quotes (all after the first when it is cut).
fn string_inside(literal: &str, closed: bool) -> &str {
    let inside = literal.get(1..).unwrap_or("");
    if closed {
        inside.strip_suffix('"').unwrap_or(inside)
    } else {
        inside
    }
}

/// The text a JSON string's inside stands for, its escapes read; an escape cut at the end
/// is left out, and one that stands for no character reads as U+FFFD.
pub(super) fn unescaped(inside: &str) -> String {
    if !inside.contains('\\') {
        return inside.to_owned();
    }
    let mut out = String::with_capacity(inside.len());
    let mut chars = inside.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let Some(unit) = hex4(&mut chars) else { break };
                let code = if (0xD800..0xDC00).contains(&unit) {
                    // A surrogate pair: `\uD83D\uDE00`.
                    let mut ahead = chars.clone();
                    match (ahead.next(), ahead.next(), hex4(&mut ahead)) {
                        (Some('\\'), Some('u'), Some(low)) if (0xDC00..0xE000).contains(&low) => {
                            chars = ahead;
                            0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        }
                        _ => unit,
                    }
                } else {
                    unit
                };
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some(other) => out.push(other),
            None => break,
        }
    }
    out
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut n = 0;
    for _ in 0..4 {
        n = n * 16 + chars.next()?.to_digit(16)?;
    }
    Some(n)
}

/// Index just past the JSON string starting at `i` (or the end of a cut text).
pub(super) fn string_end(b: &[u8], i: usize) -> usize {
    string_end_closed(b, i).0
}

/// [`string_end`], and whether the string's closing quote is there.
pub(super) fn string_end_closed(b: &[u8], i: usize) -> (usize, bool) {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return (j + 1, true),
            _ => j += 1,
        }
    }
    (b.len(), false)
}

pub(super) fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Index just past the JSON value starting at `i`: a string, a nested object or array, or
/// a scalar; the end of the text when it is cut inside the value.
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::with_fields;
    use super::*;

    const NAMES: [&str; 2] = ["password", "token"];

    fn json(text: &str) -> (String, Vec<String>) {
        with_fields(&NAMES, |r| r.json(text))
    }

    // Regression: JSON written inside a JSON string kept its secret-named fields in clear.
    #[test]
    fn json_inside_a_string_is_redacted_and_quoted_back() {
        let (out, secrets) = json(
            r#"{"list":["[{\"token\":\"pw-2\"}]"],"note":"{not json","payload":"{\"city\":\"ctl\",\"password\":\"pw-1\"}"}"#,
        );
        let p = PLACEHOLDER;
        assert_eq!(
            out,
            format!(
                r#"{{"list":["[{{\"token\":\"{p}\"}}]"],"note":"{{not json","payload":"{{\"city\":\"ctl\",\"password\":\"{p}\"}}"}}"#
            )
        );
        assert!(secrets.contains(&"pw-1".to_owned()) && secrets.contains(&"pw-2".to_owned()));
        // Nothing hidden: the string as it was written.
        let kept = r#"{"payload":"{ \"city\" : \"ctl\" }"}"#;
        assert_eq!(json(kept).0, kept);
    }

    #[test]
    fn graphql_under_query_and_variables_as_json() {
        let (out, secrets) = json(
            r#"{"operationName":"Login","query":"mutation Login($v: T) { login(password: \"pw-1\", city: \"ctl\", input: $v) { id } }","variables":{"v":{"token":"pw-2","city":"ctl"}}}"#,
        );
        assert!(
            !out.contains("pw-") && out.contains(r#"city: \"ctl\""#),
            "{out}"
        );
        assert!(out.contains(r#""operationName":"Login""#), "{out}");
        assert_eq!(secrets, ["pw-1", "pw-2"]);
    }

    // Regression: a body cut at the size limit inside a JSON string holding JSON left the
    // start of a secret in it in clear.
    #[test]
    fn cut_inside_a_nested_text() {
        let body = r#"{"a":"ctl","payload":"{\"city\":\"ctl\",\"password\":\"QZXJWV\"}","query":"query { a(token: \"QZXJWV\") }","z":1}"#;
        for cut in 0..=body.len() {
            let (out, _) = json(&body[..cut]);
            assert!(
                !out.contains(['Q', 'Z', 'X', 'J', 'W', 'V']),
                "{cut}: {out}"
            );
            if cut > 10 {
                assert!(out.contains("ctl"), "{cut}: {out}");
            }
        }
    }

    #[test]
    fn texts_nested_deeper_than_the_bound_are_text() {
        let mut text = serde_json::json!({"password": "pw-1"}).to_string();
        for _ in 0..12 {
            text = serde_json::json!({ "p": text }).to_string();
        }
        // No panic, and the levels within the bound are read.
        let (out, _) = json(&text);
        assert!(out.starts_with(r#"{"p":"#));
        let mut text = serde_json::json!({"password": "pw-2"}).to_string();
        for _ in 0..usize::from(MAX_NESTED) {
            text = serde_json::json!({ "p": text }).to_string();
        }
        let (out, _) = json(&text);
        assert!(!out.contains("pw-2"), "{out}");
    }

    #[test]
    fn escapes_are_read_as_json_reads_them() {
        for text in [
            r#"a\"b\\c\/d\n\t\r\b\f"#,
            r#"\u00e9\u20AC\ud83d\ude00"#,
            r#"\ud83d alone \ude00"#,
        ] {
            let json_read: String =
                serde_json::from_str(&format!("\"{text}\"")).unwrap_or_default();
            if !json_read.is_empty() {
                assert_eq!(unescaped(text), json_read);
            }
        }
        assert_eq!(unescaped(r#"ab\"#), "ab");
        assert_eq!(unescaped(r#"ab\u00"#), "ab");
        assert_eq!(unescaped(r#"\ud83d"#), "\u{fffd}");
    }

    proptest! {
        #[test]
        fn nested_secrets_never_survive_a_cut(
            // Starts with a digit: no key or other value of the input contains it.
            secret in "[0-9][A-Za-z0-9!#$%&'()*+,./:;<=>?@^_`{|}~\\[\\]\\\\\" -]{3,29}",
            cut in 0usize..200,
        ) {
            prop_assume!(!PLACEHOLDER.contains(secret.as_str()));
            let inner = serde_json::json!({"x": "ctl", "password": secret}).to_string();
            let body = serde_json::json!({"a": "ctl", "payload": inner}).to_string();
            let cut_at = (0..=cut.min(body.len())).rev().find(|i| body.is_char_boundary(*i)).unwrap_or(0);
            let (out, _) = json(&body[..cut_at]);
            let quoted = serde_json::to_string(&secret).unwrap_or_default();
            let twice = serde_json::to_string(&quoted).unwrap_or_default();
            let (quoted, twice) = (&quoted[1..quoted.len() - 1], &twice[1..twice.len() - 1]);
            prop_assert!(!out.contains(secret.as_str()) && !out.contains(quoted) && !out.contains(twice), "{}", out);
        }
    }
}

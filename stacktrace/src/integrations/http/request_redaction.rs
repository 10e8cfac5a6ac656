//! Redaction of what a request carries, before any of it is stored: fields of query
//! strings, form and JSON bodies (nested, case-insensitive, keys by value too),
//! credentials in URLs and `Bearer` values anywhere; headers and cookies are in
//! `headers.rs`. The raw values replaced are kept as secrets, so the pipeline also scrubs
//! them from the rest of the event (a panic message that quotes the token).

use std::borrow::Cow;

use serde_json::Value;

use crate::escape::percent_decode;
use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::credentials::{add_secret, redact_credentials};
use crate::pipeline::redact::fields::FieldRedactor;

/// What a route declared sensitive in its request body, as `@sensitive_post_parameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum SensitiveBody {
    /// Nothing beyond the configured `redact_fields`.
    #[default]
    Nothing,
    /// These parameter names (matched case-insensitively, whole names).
    Names(Vec<String>),
    /// The whole body.
    All,
}

impl SensitiveBody {
    pub(crate) fn add(&mut self, names: &[&str]) {
        if names.is_empty() {
            *self = SensitiveBody::All;
            return;
        }
        match self {
            SensitiveBody::All => {}
            SensitiveBody::Names(list) => list.extend(names.iter().map(|n| (*n).to_owned())),
            SensitiveBody::Nothing => {
                *self = SensitiveBody::Names(names.iter().map(|n| (*n).to_owned()).collect())
            }
        }
    }
}

/// One request's redaction, collecting the raw values it replaced.
#[derive(Debug)]
pub(crate) struct Redaction<'a> {
    pub(super) fields: &'a FieldRedactor,
    pub(super) headers: &'a [String],
    body: &'a SensitiveBody,
    pub(crate) secrets: Vec<String>,
}

impl<'a> Redaction<'a> {
    pub(crate) fn new(
        fields: &'a FieldRedactor,
        headers: &'a [String],
        body: &'a SensitiveBody,
    ) -> Self {
        Redaction {
            fields,
            headers,
            body,
            secrets: Vec::new(),
        }
    }

    /// A redaction with the same settings that has found nothing yet.
    pub(crate) fn fresh(&self) -> Redaction<'a> {
        Redaction::new(self.fields, self.headers, self.body)
    }

    /// A raw value hidden here, to scrub from the rest (as written and percent-decoded).
    pub(super) fn secret(&mut self, raw: &str) {
        add_secret(&mut self.secrets, raw);
    }

    /// A field, query or form parameter whose value is hidden.
    pub(crate) fn is_sensitive_name(&self, name: &str) -> bool {
        self.fields.matches(name)
            || matches!(self.body, SensitiveBody::Names(list)
                if list.iter().any(|n| n.eq_ignore_ascii_case(name.trim())))
    }

    /// Credentials found by value in free text (see [`redact_credentials`]).
    pub(crate) fn inline(&mut self, text: &str) -> String {
        redact_credentials(text, self.fields, &mut self.secrets).into_owned()
    }

    /// `a=1&password=x` (a query string or a form body) with sensitive values hidden.
    pub(crate) fn pairs(&mut self, text: &str) -> String {
        let mut out = Vec::new();
        for part in text.split('&') {
            match part.split_once('=') {
                Some((name, value)) if self.is_sensitive_name(&percent_decode(name)) => {
                    self.secret(value);
                    out.push(format!("{name}={PLACEHOLDER}"));
                }
                Some((name, value)) => {
                    let decoded = percent_decode(value);
                    let scrubbed = self.inline(&decoded);
                    if scrubbed == decoded {
                        out.push(format!("{name}={}", self.inline(value)));
                    } else {
                        out.push(format!("{name}={scrubbed}"));
                    }
                }
                None => out.push(self.inline(part)),
            }
        }
        out.join("&")
    }

    /// A JSON text with the values of sensitive keys hidden at any depth. A text that does
    /// not parse (a body cut at the size limit) is scanned key by key instead.
    pub(crate) fn json(&mut self, text: &str) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) => {
                self.json_value(&mut v);
                serde_json::to_string(&v).unwrap_or_else(|_| PLACEHOLDER.to_owned())
            }
            Err(_) => {
                let scanned = self.json_lenient(text);
                self.inline(&scanned)
            }
        }
    }

    pub(crate) fn json_value(&mut self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                let mut renamed = Vec::new();
                for (k, v) in map.iter_mut() {
                    if self.is_sensitive_name(k) {
                        self.secrets_of(v);
                        *v = Value::String(PLACEHOLDER.to_owned());
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
            Value::String(s) => *s = self.inline(s),
            _ => {}
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

    fn json_lenient(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            let Some(q) = s[i..].find('"') else {
                out.push_str(&s[i..]);
                break;
            };
            out.push_str(&s[i..i + q]);
            i += q;
            let end = string_end(b, i);
            let key = &s[i..end];
            out.push_str(key);
            i = end;
            let colon = skip_space(b, i);
            if colon < b.len() && b[colon] == b':' {
                let name = serde_json::from_str::<String>(key)
                    .unwrap_or_else(|_| key.trim_matches('"').to_owned());
                if self.is_sensitive_name(&name) {
                    let start = skip_space(b, colon + 1);
                    let stop = value_end(b, start);
                    out.push_str(&s[i..start]);
                    self.secret(&s[start..stop]);
                    out.push('"');
                    out.push_str(PLACEHOLDER);
                    out.push('"');
                    i = stop;
                }
            }
        }
        out
    }

    /// A body as stored, by its content type.
    pub(crate) fn body(&mut self, content_type: &str, text: &str) -> String {
        if *self.body == SensitiveBody::All {
            self.secret(text);
            return PLACEHOLDER.to_owned();
        }
        let kind = content_kind(content_type, text);
        match kind {
            ContentKind::Form => self.pairs(text),
            ContentKind::Json => self.json(text),
            ContentKind::Text => self.inline(text),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentKind {
    Form,
    Json,
    Text,
}

/// The media type of a content type, without parameters, in lower case (copied only when
/// it has upper-case letters).
fn media_type(content_type: &str) -> Cow<'_, str> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if ct.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(ct.to_ascii_lowercase())
    } else {
        Cow::Borrowed(ct)
    }
}

/// How a body is redacted: by its declared type, and otherwise by its text, so that JSON or
/// a form sent as `text/plain` (or with no type) is still redacted as one.
fn content_kind(content_type: &str, text: &str) -> ContentKind {
    let ct = media_type(content_type);
    if ct == "application/x-www-form-urlencoded" {
        return ContentKind::Form;
    }
    if ct.contains("json") {
        return ContentKind::Json;
    }
    let t = text.trim();
    if t.starts_with('{') || t.starts_with('[') {
        // Parsed as JSON, or scanned key by key when it does not parse (cut at the limit).
        ContentKind::Json
    } else if is_form(t) {
        ContentKind::Form
    } else {
        ContentKind::Text
    }
}

/// Whether a text reads as a urlencoded form: `name=value` pairs joined by `&`, names of
/// the characters a form's names are written with, no spaces.
fn is_form(text: &str) -> bool {
    text.contains('=')
        && !text.contains(char::is_whitespace)
        && text.split('&').all(|part| {
            let name = part.split_once('=').map_or(part, |(name, _)| name);
            !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'_' | b'-' | b'.' | b'%' | b'+' | b'[' | b']' | b'*')
                })
        })
}

/// Whether a body of this content type is kept as text; others are described by size.
pub(crate) fn is_textual(content_type: &str) -> bool {
    let ct = media_type(content_type);
    ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct == "application/x-www-form-urlencoded"
        || ct == "application/graphql"
}

/// Index just past the JSON string starting at `i` (or the end of a cut text).
fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
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
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn fields() -> FieldRedactor {
        FieldRedactor::new(&["password".into(), "token".into()])
    }
    const HEADERS: [&str; 2] = ["authorization", "cookie"];

    /// Runs `f` on a redaction of `password`/`token` fields and the `authorization` and
    /// `cookie` headers; gives its result and the secrets found.
    pub(crate) fn with<R>(
        body: SensitiveBody,
        f: impl FnOnce(&mut Redaction<'_>) -> R,
    ) -> (R, Vec<String>) {
        let fields = fields();
        let headers: Vec<String> = HEADERS.iter().map(|h| (*h).to_owned()).collect();
        let mut r = Redaction::new(&fields, &headers, &body);
        let out = f(&mut r);
        (out, r.secrets)
    }

    #[test]
    fn url_credentials() {
        let (out, secrets) = with(SensitiveBody::Nothing, |r| {
            r.inline("see postgres://app:hunter22@db:5432/x and https://example.com/a@b")
        });
        assert_eq!(
            out,
            format!("see postgres://app:{PLACEHOLDER}@db:5432/x and https://example.com/a@b")
        );
        assert_eq!(secrets, ["hunter22"]);
    }

    #[test]
    fn query_and_form_fields() {
        let (out, secrets) = with(SensitiveBody::Names(vec!["Card".into()]), |r| {
            r.pairs(
                "user=ann&new_PASSWORD=p%40ss+word&card=4111&flag&next=http%3A%2F%2Fu%3Apw12%40h",
            )
        });
        assert_eq!(
            out,
            format!(
                "user=ann&new_PASSWORD={PLACEHOLDER}&card={PLACEHOLDER}&flag&next=http://u:{PLACEHOLDER}@h"
            )
        );
        assert!(secrets.contains(&"p@ss word".to_owned()));
        assert!(secrets.contains(&"4111".to_owned()));
        assert!(secrets.contains(&"pw12".to_owned()));
    }

    #[test]
    fn json_nested_and_cut() {
        let (out, _) = with(SensitiveBody::Nothing, |r| {
            r.json(r#"{"a":{"Password":"x1x1","list":[{"api_token":{"v":1234}}]},"b":"ok"}"#)
        });
        assert!(!out.contains("x1x1") && !out.contains("1234"), "{out}");
        assert!(out.contains(r#""b":"ok""#));
        let (out, secrets) = with(SensitiveBody::Nothing, |r| {
            r.json(r#"{"user": "ann", "password" : "hunt\"er2", "token": {"a": [1, "zz"#)
        });
        assert_eq!(
            out,
            format!(r#"{{"user": "ann", "password" : "{PLACEHOLDER}", "token": "{PLACEHOLDER}""#)
        );
        assert!(secrets.iter().any(|s| s.contains("hunt")));
    }

    #[test]
    fn whole_body_when_all_sensitive() {
        let (out, _) = with(SensitiveBody::All, |r| r.body("text/plain", "anything"));
        assert_eq!(out, PLACEHOLDER);
    }

    #[test]
    fn bare_bodies_are_judged_by_their_text() {
        let (out, _) = with(SensitiveBody::Nothing, |r| r.body("", "password=abcd&x=1"));
        assert_eq!(out, format!("password={PLACEHOLDER}&x=1"));
        let (out, _) = with(SensitiveBody::Nothing, |r| {
            r.body("", r#"{"token":"abcd"}"#)
        });
        assert_eq!(out, format!(r#"{{"token":"{PLACEHOLDER}"}}"#));
    }

    // Regression: a JSON body or a form sent as `text/plain` kept its sensitive fields; the
    // declared type alone decided how a body was redacted.
    #[test]
    fn json_and_forms_are_redacted_as_such_whatever_their_declared_type() {
        let cases = [
            (
                "text/plain",
                r#"{"user":"ann","Password":"pw-json-1"}"#,
                "ann",
            ),
            (
                "text/plain; charset=utf-8",
                r#" [{"a":{"api_token":"pw-json-2"}}]"#,
                "\"a\"",
            ),
            ("text/html", "user=ann&new_pass%77ord=pw-form-3", "user=ann"),
            ("", r#"{"token":"pw-json-4","cut here"#, "cut here"),
            ("text/plain", "user=bob&card=pw-card-5", "user=bob"),
        ];
        for (ct, body, control) in cases {
            let (out, secrets) = with(SensitiveBody::Names(vec!["card".into()]), |r| {
                r.body(ct, body)
            });
            assert!(
                out.contains(PLACEHOLDER) && out.contains(control),
                "{ct}: {out}"
            );
            assert!(!out.contains("pw-"), "{ct}: {out}");
            assert!(
                secrets.iter().any(|s| s.starts_with("pw-")),
                "{ct}: {secrets:?}"
            );
        }
        // Text that is neither stays text (credentials in it are still found).
        for text in ["a=1 and b=2", "hello", "<p>x=1</p>", "=x"] {
            let (out, _) = with(SensitiveBody::Nothing, |r| r.body("text/plain", text));
            assert_eq!(out, text);
        }
    }

    proptest! {
        #[test]
        fn sensitive_values_never_survive(
            // Starts with a digit: no key or other value of the input contains it.
            secret in "[0-9][A-Za-z0-9!#$%&'()*+,./:;<=>?@^_`{|}~\\[\\]\\\\\" -]{3,29}",
            other in "[a-z]{1,10}",
            cut in 0usize..200,
        ) {
            prop_assume!(!PLACEHOLDER.contains(secret.as_str()));
            let json = serde_json::json!({"x": other, "nested": {"Password": secret}}).to_string();
            let cut_at = (0..=cut.min(json.len())).rev().find(|i| json.is_char_boundary(*i)).unwrap_or(0);
            let (out, _) = with(SensitiveBody::Nothing, |r| r.json(&json[..cut_at]));
            let input = &json[..cut_at];
            prop_assert!(!input.contains(secret.as_str()) || !out.contains(secret.as_str()), "{}", out);
            let escaped: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
            let (out, _) = with(SensitiveBody::Nothing, |r| r.pairs(&format!("a={other}&password={escaped}")));
            prop_assert!(!out.contains(&escaped));
        }
    }
}

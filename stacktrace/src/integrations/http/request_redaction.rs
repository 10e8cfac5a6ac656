//! Redaction of what a request carries, before any of it is stored: fields of query
//! strings and of bodies by their names (case-insensitive) — forms, JSON at any depth
//! (`json.rs`), XML and SOAP elements and attributes (`xml.rs`), GraphQL arguments
//! (`graphql.rs`), and JSON written inside a form field or a JSON string — credentials in
//! URLs and `Bearer` values anywhere; headers and cookies are in `headers.rs`. A body is
//! read as its declared type says unless its text is plainly another of these (JSON sent
//! as a form, a form sent as JSON or with no type). Each reader takes a body cut at the
//! size limit: a value cut short is hidden to the end. The raw values replaced are kept as
//! secrets, so the pipeline also scrubs them from the rest of the event (a panic message
//! that quotes the token).

mod graphql;
mod json;
mod xml;

use std::borrow::Cow;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
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
    /// How many texts inside fields (JSON in a JSON string) are being read, one in another.
    nesting: u8,
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
            nesting: 0,
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
                Some((name, value)) => {
                    let field = percent_decode(name);
                    if self.is_sensitive_name(&field) {
                        self.secret(value);
                        out.push(format!("{name}={PLACEHOLDER}"));
                        continue;
                    }
                    let decoded = percent_decode(value);
                    if let Some(inner) = self.nested(Some(&field), &decoded) {
                        // Written back as a form writes it.
                        out.push(format!("{name}={}", form_encoded(&inner)));
                        continue;
                    }
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

    /// A body as stored, by its content type.
    pub(crate) fn body(&mut self, content_type: &str, text: &str) -> String {
        if *self.body == SensitiveBody::All {
            self.secret(text);
            return PLACEHOLDER.to_owned();
        }
        match content_kind(content_type, text) {
            ContentKind::Form => self.pairs(text),
            ContentKind::Json => self.json(text),
            ContentKind::Xml => self.xml(text),
            ContentKind::Graphql => self.graphql(text),
            ContentKind::Text => self.inline(text),
        }
    }
}

/// What a form value is written with: every byte but letters, digits and `*-._`
/// percent-encoded (a space too, made `+` afterwards).
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// A value as a urlencoded form writes it.
fn form_encoded(text: &str) -> String {
    utf8_percent_encode(text, FORM_VALUE)
        .to_string()
        .replace("%20", "+")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentKind {
    Form,
    Json,
    Xml,
    Graphql,
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

/// How a body is redacted: by its declared type, unless its text is plainly of another
/// kind that type's reader would find nothing in (JSON or XML sent as a form, a form or
/// XML sent as JSON); with no type or another one (`text/plain`), by its text alone. A
/// body that starts as its declared type's do is taken as one without reading it further.
fn content_kind(content_type: &str, text: &str) -> ContentKind {
    let ct = media_type(content_type);
    let start = text.trim_start();
    if ct == "application/x-www-form-urlencoded" {
        if !start.starts_with(['{', '[', '<']) {
            return ContentKind::Form;
        }
        match kind_of_text(text) {
            sniffed @ (ContentKind::Json | ContentKind::Xml) => sniffed,
            _ => ContentKind::Form,
        }
    } else if ct == "application/graphql" {
        // A GraphQL document may start with `{` too: JSON only if it parses as JSON.
        if start.starts_with(['{', '[']) && serde_json::from_str::<Value>(text).is_ok() {
            ContentKind::Json
        } else {
            ContentKind::Graphql
        }
    } else if ct.contains("json") {
        if start.starts_with(['{', '[']) {
            return ContentKind::Json;
        }
        match kind_of_text(text) {
            sniffed @ (ContentKind::Form | ContentKind::Xml | ContentKind::Graphql) => sniffed,
            _ => ContentKind::Json,
        }
    } else if ct.ends_with("/xml") || ct.ends_with("+xml") {
        if start.starts_with('<') {
            return ContentKind::Xml;
        }
        match kind_of_text(text) {
            sniffed @ (ContentKind::Form | ContentKind::Json | ContentKind::Graphql) => sniffed,
            _ => ContentKind::Xml,
        }
    } else {
        kind_of_text(text)
    }
}

/// What a body's text reads as: a form (`name=value&...`), JSON (`{` or `[`; parsed, or
/// scanned key by key when it does not parse, cut at the limit), XML (`<`), a GraphQL
/// operation (`query ...`, `mutation ...`), or else plain text.
fn kind_of_text(text: &str) -> ContentKind {
    let t = text.trim();
    if is_form(t) {
        ContentKind::Form
    } else if t.starts_with(['{', '[']) {
        ContentKind::Json
    } else if t.starts_with('<') {
        ContentKind::Xml
    } else if graphql::is_operation(t) {
        ContentKind::Graphql
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

    /// Runs `f` on a redaction of fields named like one of `names`; gives its result and
    /// the secrets found.
    pub(crate) fn with_fields<R>(
        names: &[&str],
        f: impl FnOnce(&mut Redaction<'_>) -> R,
    ) -> (R, Vec<String>) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let fields = FieldRedactor::new(&names);
        let body = SensitiveBody::Nothing;
        let mut r = Redaction::new(&fields, &[], &body);
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

    // Regression: a JSON body declared as a form, a form declared as JSON, XML and SOAP
    // bodies and GraphQL documents kept their secret-named fields in clear.
    #[test]
    fn each_body_is_read_as_what_it_is() {
        let cases = [
            (
                "application/x-www-form-urlencoded",
                r#"{"password":"pw-1","city":"ctl"}"#,
            ),
            (
                "application/x-www-form-urlencoded",
                "<a><password>pw-2</password><city>ctl</city></a>",
            ),
            ("application/json", "password=pw-3&city=ctl"),
            (
                "application/json; charset=utf-8",
                "<a password='pw-4' city='ctl'/>",
            ),
            (
                "application/json",
                r#"mutation { login(password: "pw-5", city: "ctl") }"#,
            ),
            (
                "application/xml",
                "<a><password>pw-6</password><city>ctl</city></a>",
            ),
            (
                "text/xml",
                " <a:b><a:Password>pw-7</a:Password><city>ctl</city></a:b>",
            ),
            (
                "application/soap+xml",
                "<e><password>pw-8</password><city>ctl</city></e>",
            ),
            (
                "application/atom+xml",
                "<e><token>pw-9</token><city>ctl</city></e>",
            ),
            ("application/xml", r#"{"token":"pw-10","city":"ctl"}"#),
            (
                "application/graphql",
                r#"{ login(password: "pw-11", city: "ctl") { id } }"#,
            ),
            (
                "application/graphql",
                r#"{"query":"{ a(token: \"pw-12\") }","city":"ctl"}"#,
            ),
            ("", "<a><password>pw-13</password><city>ctl</city></a>"),
            (
                "text/plain",
                r#"query Q { login(token: "pw-14", city: "ctl") }"#,
            ),
            ("application/octet-stream", "password=pw-15&city=ctl"),
        ];
        for (ct, body) in cases {
            let (out, secrets) = with(SensitiveBody::Nothing, |r| r.body(ct, body));
            assert!(
                out.contains(PLACEHOLDER) && out.contains("ctl"),
                "{ct}: {out}"
            );
            assert!(!out.contains("pw-"), "{ct}: {out}");
            assert!(
                secrets.iter().any(|s| s.starts_with("pw-")),
                "{ct}: {secrets:?}"
            );
        }
    }

    #[test]
    fn kinds_of_text() {
        assert_eq!(kind_of_text("[a]=1&b=2"), ContentKind::Form);
        assert_eq!(kind_of_text(" [1, 2]"), ContentKind::Json);
        assert_eq!(kind_of_text("<x/>"), ContentKind::Xml);
        assert_eq!(kind_of_text("mutation{a}"), ContentKind::Graphql);
        assert_eq!(kind_of_text("queryable"), ContentKind::Text);
        assert_eq!(kind_of_text(""), ContentKind::Text);
        // A GraphQL shorthand query is one only where a GraphQL body is declared.
        assert_eq!(
            content_kind("application/graphql", "{ a }"),
            ContentKind::Graphql
        );
        assert_eq!(
            content_kind("application/graphql", "{\"a\":1}"),
            ContentKind::Json
        );
        assert_eq!(content_kind("text/plain", "{ a }"), ContentKind::Json);
    }

    // Regression: JSON written inside a form field kept its secret-named fields in clear.
    #[test]
    fn json_inside_a_form_field_is_redacted_and_encoded_back() {
        let (out, secrets) = with(SensitiveBody::Nothing, |r| {
            r.pairs("payload=%7B%22city%22%3A%22ctl+x%22%2C%22password%22%3A%22pw-1%22%7D&a=1")
        });
        assert_eq!(
            out,
            format!(
                "payload=%7B%22city%22%3A%22ctl+x%22%2C%22password%22%3A%22{PLACEHOLDER}%22%7D&a=1"
            )
        );
        assert_eq!(secrets, ["pw-1"]);
        // Cut inside the secret: hidden to the end.
        let (out, _) = with(SensitiveBody::Nothing, |r| {
            r.pairs("a=ctl&payload=%7B%22city%22%3A1%2C%22password%22%3A%22pw-")
        });
        assert!(
            out.starts_with("a=ctl&payload=") && !out.contains("pw-"),
            "{out}"
        );
        // Nothing hidden: the field as it was written.
        let kept = "payload=%7B+%22city%22%3A+%22ctl%22+%7D";
        let (out, _) = with(SensitiveBody::Nothing, |r| r.pairs(kept));
        assert_eq!(out, kept);
        // A GraphQL query in a query string.
        let (out, _) = with(SensitiveBody::Nothing, |r| {
            r.pairs("query=query+%7B+a%28token%3A+%22pw-2%22%2C+b%3A+%22ctl%22%29+%7D")
        });
        assert!(!out.contains("pw-") && out.contains("ctl"), "{out}");
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

//! The request being handled: its head, what the handler and the body add to it, and its
//! redacted view as events and tracked requests store it.
//!
//! Everything here may run inside the panic hook: thread-locals are read with `try_with`
//! and `try_borrow`, locks taken with `try_lock`, and nothing panics or blocks.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::body::Captured;
use super::request_redaction::{is_textual, Redaction, SensitiveBody};
use crate::config::Config;
use crate::pipeline::redact::fields::FieldRedactor;
use crate::sync::{lock, try_lock};

/// What is known of one request while it is handled.
#[derive(Debug)]
pub(crate) struct RequestState {
    pub(crate) method: http::Method,
    pub(crate) head: RequestHead,
    pub(crate) client_addr: Option<String>,
    /// What the body and the handler add while the request is handled.
    pub(crate) shared: Mutex<Shared>,
    /// Events captured while the request was current.
    pub(crate) events: AtomicU32,
    /// The credentials its head holds (hidden headers, their cookies and `Basic`
    /// passwords, sensitive query fields): found at the first breadcrumb recorded while it
    /// is current, and kept, as the head does not change.
    pub(crate) credentials: std::sync::OnceLock<Vec<String>>,
}

/// What is added to a request while it is handled, behind one lock: the body as it streams
/// to the handler, and what the handler says of the request.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The first bytes of the request body, as the handler reads it.
    pub(crate) body: Captured,
    pub(crate) user: Option<Value>,
    pub(crate) sensitive: SensitiveBody,
    /// Custom data for request tracking.
    pub(crate) data: Map<String, Value>,
}

impl RequestState {
    pub(crate) fn new(
        parts: &http::request::Parts,
        client_addr: Option<String>,
        user: Option<Value>,
        body_limit: usize,
    ) -> Self {
        RequestState {
            method: parts.method.clone(),
            head: RequestHead::new(parts),
            client_addr: client_addr.or_else(|| {
                parts
                    .extensions
                    .get::<SocketAddr>()
                    .map(|a| a.ip().to_string())
            }),
            shared: Mutex::new(Shared {
                body: Captured::new(body_limit),
                user,
                sensitive: SensitiveBody::Nothing,
                data: Map::new(),
            }),
            events: AtomicU32::new(0),
            credentials: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn path(&self) -> &str {
        self.head.path()
    }

    pub(crate) fn content_type(&self) -> String {
        self.head.header_text(http::header::CONTENT_TYPE)
    }
}

/// The parts of a request line and its headers that are kept, copied into one buffer: a
/// request keeps neither the connection's read buffer (which its headers share) nor a
/// header map of its own alive, and its tracking record takes the headers as they are.
///
/// The buffer holds the authority, the path, the query, then each header value as its
/// name and its value, each a length (`u32`, little-endian) and its bytes, the values of
/// one header one after another, as a `HeaderMap` yields them.
#[derive(Debug)]
pub(crate) struct RequestHead {
    bytes: Vec<u8>,
    /// Where the authority ends and the path begins; `None` for no authority.
    authority: Option<usize>,
    path_end: usize,
    /// Where the query ends and the headers begin; `None` for no query.
    query_end: Option<usize>,
    header_count: usize,
}

impl RequestHead {
    pub(crate) fn new(parts: &http::request::Parts) -> Self {
        let uri = &parts.uri;
        let authority = uri.authority().map(http::uri::Authority::as_str);
        let path = uri.path();
        let query = uri.query();
        let headers = &parts.headers;
        let header_bytes: usize = headers
            .iter()
            .map(|(n, v)| 8 + n.as_str().len() + v.len())
            .sum();
        let mut bytes = Vec::with_capacity(
            authority.map_or(0, str::len) + path.len() + query.map_or(0, str::len) + header_bytes,
        );
        bytes.extend_from_slice(authority.unwrap_or_default().as_bytes());
        let authority = authority.map(|_| bytes.len());
        bytes.extend_from_slice(path.as_bytes());
        let path_end = bytes.len();
        bytes.extend_from_slice(query.unwrap_or_default().as_bytes());
        let query_end = query.map(|_| bytes.len());
        for (name, value) in headers {
            put_part(&mut bytes, name.as_str().as_bytes());
            put_part(&mut bytes, value.as_bytes());
        }
        RequestHead {
            bytes,
            authority,
            path_end,
            query_end,
            header_count: headers.len(),
        }
    }

    fn text(&self, from: usize, to: usize) -> &str {
        std::str::from_utf8(&self.bytes[from..to]).unwrap_or_default()
    }

    fn path_start(&self) -> usize {
        self.authority.unwrap_or(0)
    }

    fn headers_start(&self) -> usize {
        self.query_end.unwrap_or(self.path_end)
    }

    /// The authority of the request target, when it had one.
    pub(crate) fn authority(&self) -> Option<&str> {
        self.authority.map(|end| self.text(0, end))
    }

    pub(crate) fn path(&self) -> &str {
        self.text(self.path_start(), self.path_end)
    }

    pub(crate) fn query(&self) -> Option<&str> {
        self.query_end.map(|end| self.text(self.path_end, end))
    }

    /// The path, and the query after a `?` when there is one.
    pub(crate) fn path_and_query(&self) -> String {
        match self.query() {
            Some(q) => format!("{}?{q}", self.path()),
            None => self.path().to_owned(),
        }
    }

    /// The number of header values.
    pub(crate) fn header_count(&self) -> usize {
        self.header_count
    }

    /// The headers as stored in the buffer: each value as its name and its value.
    pub(crate) fn header_bytes(&self) -> &[u8] {
        &self.bytes[self.headers_start()..]
    }

    /// Each header value with its name, the values of one header one after another.
    pub(crate) fn headers(&self) -> HeaderParts<'_> {
        HeaderParts {
            bytes: self.header_bytes(),
            left: self.header_count,
        }
    }

    /// The first value of a header, as text (lossy); empty when there is none.
    pub(crate) fn header_text(&self, name: http::header::HeaderName) -> String {
        self.headers()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// Appends a part: its length (`u32`, little-endian), then its bytes.
pub(crate) fn put_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(part);
}

/// Header names and values read back from their parts (see [`RequestHead`]).
#[derive(Clone, Debug)]
pub(crate) struct HeaderParts<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl<'a> HeaderParts<'a> {
    pub(crate) fn new(bytes: &'a [u8], count: usize) -> Self {
        HeaderParts { bytes, left: count }
    }

    fn part(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.bytes.get(..4)?.try_into().ok()?) as usize;
        let part = self.bytes.get(4..4usize.checked_add(len)?)?;
        self.bytes = &self.bytes[4 + len..];
        Some(part)
    }
}

impl<'a> Iterator for HeaderParts<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let name = std::str::from_utf8(self.part()?).ok()?;
        let value = self.part()?;
        Some((name, value))
    }
}

/// The user as shown and indexed: the `user_field` attribute of an object (else its `id`),
/// a string as itself, a number as its digits.
pub(crate) fn user_index(user: &Value, field: &str) -> String {
    match user {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(map) => match map.get(field).or_else(|| map.get("id")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// A captured body as stored: text cut to `max` bytes on a character boundary, whether it
/// was cut, and whether bytes that are not UTF-8 were replaced.
pub(crate) struct BodyText {
    pub(crate) text: String,
    pub(crate) truncated: bool,
    pub(crate) lossy: bool,
}

pub(crate) fn body_text(bytes: &[u8], seen: u64, max: usize) -> BodyText {
    let mut kept = &bytes[..bytes.len().min(max)];
    let mut truncated = seen > kept.len() as u64;
    let mut lossy = false;
    let text = match std::str::from_utf8(kept) {
        Ok(t) => t.to_owned(),
        // A character cut at the limit: keep what is before it.
        Err(e) if e.error_len().is_none() && truncated => {
            kept = &kept[..e.valid_up_to()];
            truncated = true;
            String::from_utf8_lossy(kept).into_owned()
        }
        Err(_) => {
            lossy = true;
            String::from_utf8_lossy(kept).into_owned()
        }
    };
    BodyText {
        text,
        truncated,
        lossy,
    }
}

/// The request as stored with an event, redacted.
pub(crate) struct RequestView {
    pub(crate) json: Value,
    pub(crate) user: String,
    pub(crate) secrets: Vec<String>,
}

pub(crate) struct ViewOptions<'a> {
    pub(crate) fields: &'a FieldRedactor,
    pub(crate) redact_headers: &'a [String],
    pub(crate) user_field: &'a str,
    pub(crate) headers: bool,
    /// Whether the body is shown: all of it that was captured, which the pipeline cuts at
    /// `max_payload_bytes` once scrubbed (see `cut_request`).
    pub(crate) body: bool,
    /// Inside the panic hook: take no lock that could wait.
    pub(crate) in_hook: bool,
}

impl<'a> ViewOptions<'a> {
    pub(crate) fn of_config(c: &'a Config, fields: &'a FieldRedactor) -> Self {
        ViewOptions {
            fields,
            redact_headers: &c.redact_headers,
            user_field: &c.user_field,
            headers: c.capture_headers,
            body: c.capture_body,
            in_hook: true,
        }
    }
}

/// What a view of a request copies from its [`Shared`] part.
#[derive(Default)]
struct SharedCopy {
    sensitive: SensitiveBody,
    body: Option<(Vec<u8>, u64)>,
    user: Option<Value>,
}

impl RequestState {
    /// Copies what a view needs of the shared part, without waiting in the panic hook
    /// (nothing is copied when the lock is held).
    fn copy_shared(&self, with_body: bool, in_hook: bool) -> SharedCopy {
        let shared = if in_hook {
            try_lock(&self.shared)
        } else {
            Some(lock(&self.shared))
        };
        shared.map_or_else(SharedCopy::default, |s| SharedCopy {
            sensitive: s.sensitive.clone(),
            body: with_body.then(|| (s.body.bytes.clone(), s.body.seen)),
            user: s.user.clone(),
        })
    }

    /// The request, redacted, as a JSON object.
    pub(crate) fn view(&self, o: &ViewOptions<'_>) -> RequestView {
        let copy = self.copy_shared(o.body, o.in_hook);
        let sensitive = copy.sensitive;
        let mut r = Redaction::new(o.fields, o.redact_headers, &sensitive);
        let query = self.head.query().map(|q| r.pairs(q)).unwrap_or_default();
        let mut headers = Map::new();
        if o.headers {
            // Whole: the pipeline cuts long values once it has scrubbed every secret it
            // knows, so that none is cut in two (see `cut_request`).
            for (name, value) in self.redacted_headers(&mut r) {
                headers.insert(name.to_owned(), Value::String(value));
            }
        } else {
            // Redacted values are still scrubbed from the rest of the event.
            for (name, v) in self.head.headers() {
                r.header(name, v);
            }
        }
        let mut json = Map::new();
        json.insert("method".into(), Value::String(self.method.to_string()));
        json.insert("path".into(), Value::String(self.path().to_owned()));
        json.insert("query".into(), Value::String(query));
        if o.headers {
            json.insert("headers".into(), Value::Object(headers));
        }
        if let Some((bytes, seen)) = copy.body {
            let ct = self.content_type();
            let captured = bytes.len();
            self.body_into(&mut json, &mut r, &bytes, seen, &ct, captured, "body");
        }
        if let Some(addr) = &self.client_addr {
            json.insert("client_addr".into(), Value::String(addr.clone()));
        }
        let mut user = String::new();
        if let Some(mut u) = copy.user {
            user = user_index(&u, o.user_field);
            o.fields.redact_json_keeping(&mut u, &mut Vec::new());
            json.insert("user".into(), u);
        }
        RequestView {
            json: Value::Object(json),
            user,
            secrets: r.secrets,
        }
    }

    /// Each header once, in the order first seen, its values redacted and joined by `, `.
    pub(crate) fn redacted_headers(&self, r: &mut Redaction<'_>) -> Vec<(&str, String)> {
        redact_headers(r, self.head.headers())
    }

    /// Adds `<key>` (the redacted text, or a description of a binary body) and its marks.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn body_into(
        &self,
        json: &mut Map<String, Value>,
        r: &mut Redaction<'_>,
        bytes: &[u8],
        seen: u64,
        ct: &str,
        max: usize,
        key: &str,
    ) {
        json.insert(format!("{key}_size"), Value::from(seen));
        let b = stored_body(r, bytes, seen, ct, max);
        json.insert(key.to_owned(), Value::String(b.text));
        if b.truncated {
            json.insert(format!("{key}_truncated"), Value::Bool(true));
        }
        if b.lossy {
            json.insert(format!("{key}_lossy"), Value::Bool(true));
        }
    }
}

/// Each header once, in the order first seen, its values redacted and joined by `, `: from
/// names and values in which the values of one header follow one another, as a `HeaderMap`
/// yields them.
pub(crate) fn redact_headers<'h>(
    r: &mut Redaction<'_>,
    pairs: impl Iterator<Item = (&'h str, &'h [u8])>,
) -> Vec<(&'h str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for (name, value) in pairs {
        let value = r.header(name, value);
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => out.push((name, value)),
        }
    }
    out
}

/// A body as stored: its redacted text, or a description of a binary body.
pub(crate) fn stored_body(
    r: &mut Redaction<'_>,
    bytes: &[u8],
    seen: u64,
    ct: &str,
    max: usize,
) -> BodyText {
    if !is_textual(ct) {
        return BodyText {
            text: format!("[{seen} bytes of {ct}]"),
            truncated: false,
            lossy: false,
        };
    }
    let b = body_text(bytes, seen, max);
    BodyText {
        text: r.body(ct, &b.text),
        ..b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_index_follows_user_field() {
        let u = json!({"id": 7, "username": "ann", "email": "a@x"});
        assert_eq!(user_index(&u, "username"), "ann");
        assert_eq!(user_index(&u, "email"), "a@x");
        assert_eq!(user_index(&u, "nickname"), "7");
        assert_eq!(user_index(&json!("bob"), "username"), "bob");
        assert_eq!(user_index(&json!(42), "username"), "42");
        assert_eq!(user_index(&Value::Null, "username"), "");
    }

    #[test]
    fn body_text_cuts_on_character_boundary_and_marks() {
        let b = body_text("aé".as_bytes(), 3, 2);
        assert_eq!((b.text.as_str(), b.truncated, b.lossy), ("a", true, false));
        let b = body_text(&[0xff, b'a'], 2, 10);
        assert_eq!(
            (b.text.as_str(), b.truncated, b.lossy),
            ("\u{fffd}a", false, true)
        );
        // Regression: a body ending in half a character was taken for a cut one.
        let b = body_text(b"caf\xe9", 4, 10);
        assert_eq!(
            (b.text.as_str(), b.truncated, b.lossy),
            ("caf\u{fffd}", false, true)
        );
        let b = body_text(b"", 0, 10);
        assert_eq!((b.text.as_str(), b.truncated), ("", false));
    }
}

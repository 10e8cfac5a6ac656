//! Header values and URLs as stored: a header hidden whole by its name, cookies by theirs,
//! and a header holding a URL or a path redacted as the request's own URL is, in events
//! and tracking alike.

use super::request_redaction::Redaction;
use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::fields::{contains_ignore_ascii_case, is_secret_name};

/// Cookie names that hold sessions whatever the configuration says.
const SESSION_COOKIES: [&str; 4] = ["session", "csrf", "auth", "sid"];

/// Headers whose value is a URL or a path, which may carry credentials and a query: stored
/// as the request's own URL is.
const URL_HEADERS: [&str; 7] = [
    "referer",
    "origin",
    "location",
    "content-location",
    "x-original-url",
    "x-forwarded-uri",
    "x-rewrite-url",
];

impl Redaction<'_> {
    /// A header hidden whole: named in `redact_headers` (as a part of its name, so
    /// `authorization` also hides `proxy-authorization`), in `redact_fields`, or named like
    /// a secret (`x-api-key`, `x-csrf-token`).
    pub(crate) fn is_sensitive_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .map(|h| h.trim())
            .any(|h| !h.is_empty() && contains_ignore_ascii_case(name, h))
            || self.fields.matches(name)
            || is_secret_name(name)
    }

    /// A header value as stored.
    pub(crate) fn header(&mut self, name: &str, raw: &[u8]) -> String {
        let value = String::from_utf8_lossy(raw);
        if self.is_sensitive_header(name) {
            self.secret(&value);
            if let Some((scheme, credential)) = value.split_once(char::is_whitespace) {
                let credential = credential.trim();
                self.secret(credential);
                // The password of a `Basic` credential, as a message would quote it.
                if scheme.eq_ignore_ascii_case("basic") {
                    self.basic_password(credential);
                }
            }
            // Each cookie's value, as a message or a breadcrumb quoting the session id
            // would hold it.
            if contains_ignore_ascii_case(name, "cookie") {
                for part in value.split(';') {
                    if let Some((_, v)) = part.split_once('=') {
                        // `Set-Cookie` attributes (`Path=/`) are too short to matter.
                        self.secret(v.trim().trim_matches('"'));
                    }
                }
            }
            return PLACEHOLDER.to_owned();
        }
        if name.eq_ignore_ascii_case("cookie") {
            return self.cookies(&value);
        }
        if holds_url(name, &value) {
            return self.url(&value);
        }
        self.inline(&value)
    }

    /// Registers the password of a `Basic` credential (base64 of `user:password`), and the
    /// pair, as secrets.
    fn basic_password(&mut self, credential: &str) {
        let Some(bytes) = crate::pipeline::redact::credentials::base64_decoded(credential) else {
            return;
        };
        let pair = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((_, password)) = pair.split_once(':') {
            self.secret(password);
            self.secret(&pair);
        }
    }

    /// A URL or a path as the request's own is stored: credentials hidden, and the values
    /// of sensitive fields of its query (names percent-decoded, as a server reads them).
    pub(crate) fn url(&mut self, text: &str) -> String {
        match text.split_once('?') {
            Some((base, query)) => format!("{}?{}", self.inline(base), self.pairs(query)),
            None => self.inline(text),
        }
    }

    /// `a=1; session=xyz` with the values of sensitive cookies hidden.
    fn cookies(&mut self, header: &str) -> String {
        let mut out = Vec::new();
        for part in header.split(';') {
            let part = part.trim();
            match part.split_once('=') {
                Some((name, value)) => {
                    let lower = name.to_ascii_lowercase();
                    if self.is_sensitive_name(name)
                        || is_secret_name(name)
                        || SESSION_COOKIES.iter().any(|s| lower.contains(s))
                    {
                        self.secret(value);
                        out.push(format!("{name}={PLACEHOLDER}"));
                    } else {
                        out.push(format!("{name}={}", self.inline(value)));
                    }
                }
                None => out.push(self.inline(part)),
            }
        }
        out.join("; ")
    }
}

/// Whether a header's value is a URL or a path: one of the headers that hold one, or a
/// value that reads as one (`/a?b`, `https://...`, no spaces).
fn holds_url(name: &str, value: &str) -> bool {
    URL_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h))
        || (!value.contains(char::is_whitespace)
            && (value.starts_with('/')
                || value.split_once("://").is_some_and(|(scheme, _)| {
                    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
                })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::http::request_redaction::tests::with;
    use crate::integrations::http::request_redaction::SensitiveBody;
    use crate::pipeline::redact::fields::FieldRedactor;

    #[test]
    fn headers_by_name_and_bearer_anywhere() {
        let ((auth, proxy, key, fwd, ok), secrets) = with(SensitiveBody::Nothing, |r| {
            (
                r.header("Authorization", b"Bearer abc.def"),
                r.header("Proxy-Authorization", b"Basic dXNlcjpwdw=="),
                r.header("X-Api-Key", b"k-123456"),
                r.header("X-Upstream", b"Bearer zzz-999 and more"),
                r.header("Accept", b"text/html"),
            )
        });
        assert_eq!(auth, PLACEHOLDER);
        assert_eq!(proxy, PLACEHOLDER);
        assert_eq!(key, PLACEHOLDER);
        assert_eq!(fwd, format!("Bearer {PLACEHOLDER} and more"));
        assert_eq!(ok, "text/html");
        for s in ["abc.def", "k-123456", "zzz-999"] {
            assert!(secrets.iter().any(|x| x == s), "{s} in {secrets:?}");
        }
    }

    // Regression: a `Cookie` header hidden whole kept its cookies' values unknown, so a
    // panic message quoting the session id was stored; a `Basic` credential's password was
    // known only in base64.
    #[test]
    fn a_hidden_cookie_header_and_basic_credential_register_their_values() {
        let ((cookie, basic, plain), secrets) = with(SensitiveBody::Nothing, |r| {
            (
                r.header("Cookie", b"theme=dark; sid=s3ss10n-v4lue; lang=en"),
                // base64 of `ann:b4sic-pw-1`
                r.header("Authorization", b"Basic YW5uOmI0c2ljLXB3LTE="),
                r.header("Accept", b"text/html"),
            )
        });
        assert_eq!(
            (cookie.as_str(), basic.as_str()),
            (PLACEHOLDER, PLACEHOLDER)
        );
        for s in ["s3ss10n-v4lue", "b4sic-pw-1", "ann:b4sic-pw-1"] {
            assert!(secrets.iter().any(|x| x == s), "{s} in {secrets:?}");
        }
        // Control: a header not hidden registers nothing of its own.
        assert_eq!(plain, "text/html");
        assert!(!secrets.iter().any(|x| x.contains("text/html")));
    }

    #[test]
    fn a_cookie_header_is_hidden_whole_unless_cookie_is_allowed() {
        let body = SensitiveBody::Nothing;
        let whole = FieldRedactor::default();
        let mut r = Redaction::new(&whole, &[], &body);
        assert_eq!(r.header("Cookie", b"theme=dark; sid=abc123"), PLACEHOLDER);
        // Allowed, each cookie is shown but for the session cookies.
        let fields = FieldRedactor::with_allowed(&[], &["cookie".into()]);
        let mut r = Redaction::new(&fields, &[], &body);
        let out = r.header(
            "Cookie",
            b"theme=dark; sessionid=s3cr3t-1; csrftoken=c5rf-2",
        );
        assert_eq!(
            out,
            format!("theme=dark; sessionid={PLACEHOLDER}; csrftoken={PLACEHOLDER}")
        );
    }

    // Regression: headers holding a URL or a path with a query (`Referer`, `X-Original-URL`,
    // ...) kept sensitive query fields whose names a server decodes (`to%6Ben`).
    #[test]
    fn headers_holding_urls_are_redacted_as_the_request_url() {
        let ((referer, original, location, custom, plain), secrets) =
            with(SensitiveBody::Nothing, |r| {
                (
                    r.header("Referer", b"http://h/reset?token=tk-1&q=kept"),
                    r.header("X-Original-URL", b"/reset?to%6Ben=tk-2&q=kept"),
                    r.header("Location", b"https://u:pw-3@h/next?x=1"),
                    r.header("X-Return-To", b"/back?pass%77ord=pw-4"),
                    r.header("X-Note", b"a b=kept-5 /c?d=e note"),
                )
            });
        assert_eq!(
            referer,
            format!("http://h/reset?token={PLACEHOLDER}&q=kept")
        );
        assert_eq!(original, format!("/reset?to%6Ben={PLACEHOLDER}&q=kept"));
        assert_eq!(location, format!("https://u:{PLACEHOLDER}@h/next?x=1"));
        assert_eq!(custom, format!("/back?pass%77ord={PLACEHOLDER}"));
        // Free text is not a URL, and holds no credential here.
        assert_eq!(plain, "a b=kept-5 /c?d=e note");
        for s in ["tk-1", "tk-2", "pw-3", "pw-4"] {
            assert!(secrets.iter().any(|x| x == s), "{s} in {secrets:?}");
        }
        assert!(holds_url("x-anything", "https://h/a?b=c"));
        assert!(!holds_url("accept", "*/*"));
        assert!(!holds_url("x-note", "see https://h/a?b=c"));
    }
}

//! Redaction: what must never reach the disk, stderr or a mail is replaced before an event
//! leaves the pipeline.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind};
use serde_json::Value;

use crate::model::event::PLACEHOLDER;

pub(crate) use super::secrets::Secrets;

/// Whether an environment variable (or setting) name looks secret: it contains `API`,
/// `TOKEN`, `KEY`, `SECRET`, `PASS` or `SIGNATURE`, in any case.
pub(crate) fn is_secret_name(name: &str) -> bool {
    ["API", "TOKEN", "KEY", "SECRET", "PASS", "SIGNATURE"]
        .iter()
        .any(|p| contains_ignore_ascii_case(name, p))
}

/// Whether `needle` is in `haystack`, ASCII letters in any case (as comparing the two
/// ASCII-lowercased, without making them).
pub(crate) fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// The names every redaction hides, whatever the settings add: Sentry's default list
/// (Relay's `@password` names) and the common spellings of sessions, cards and signatures,
/// each written as [`FieldRedactor`] compares names (lower case, without `_`, `-`, `.` or
/// spaces), and found anywhere in a name (`password` hides `new_password`, `apikey` hides
/// `X-Api-Key` and `apiKey`).
pub(crate) const BUILT_IN_NAMES: [&str; 22] = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "apikey",
    "auth",
    "credential",
    "privatekey",
    "token",
    "session",
    "sessid",
    "csrf",
    "xsrf",
    "cookie",
    "signature",
    "creditcard",
    "cardnumber",
    "ccnumber",
    "cvv",
    "cvc",
    "iban",
];

/// Names hidden only when they are the whole name: as a part they would hide ordinary
/// words (`pin` in `shipping`, `ssn` in `classname`, `otp` in `footprint`).
pub(crate) const BUILT_IN_WHOLE_NAMES: [&str; 8] =
    ["pass", "pw", "pin", "ssn", "otp", "twofactor", "2fa", "mfa"];

/// The one test of whether a name is secret, for every place a name appears: headers,
/// cookies, query strings, form, JSON and XML bodies, extra data, tags, `#[capture]`
/// arguments, breadcrumb and `tracing` fields, tracked data, the environment. Names are
/// compared in lower case without `_`, `-`, `.` and spaces, so `api_key`, `API-KEY`,
/// `apiKey` and `x.api.key` are one name. The built-in lists ([`BUILT_IN_NAMES`],
/// [`BUILT_IN_WHOLE_NAMES`]) are always on; the settings add names (found anywhere in a
/// name, as the built-in ones) and may allow some (a built-in name taken out, or one
/// whole name that is not secret although a listed name is part of it).
#[derive(Clone, Debug)]
pub(crate) struct FieldRedactor {
    /// Found anywhere in a compared name, all in one pass.
    needles: Option<AhoCorasick>,
    /// Matched only as the whole compared name.
    whole: Vec<String>,
    /// Whole compared names that are never secret.
    allowed: Vec<String>,
}

impl Default for FieldRedactor {
    /// The built-in names only.
    fn default() -> Self {
        FieldRedactor::with_allowed(&[], &[])
    }
}

/// A name as [`FieldRedactor`] compares it, appended to `out`: lower case, without `_`,
/// `-`, `.`, spaces and other ASCII punctuation.
fn push_compared(name: &str, out: &mut String) {
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !c.is_ascii() {
            out.extend(c.to_lowercase());
        }
    }
}

fn compared(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    push_compared(name, &mut out);
    out
}

impl FieldRedactor {
    /// The built-in names and `extra` (the settings' `redact_fields`).
    pub(crate) fn new(extra: &[String]) -> Self {
        FieldRedactor::with_allowed(extra, &[])
    }

    /// The built-in names and `extra`, less the names `allowed`: an allowed name that is
    /// one of the built-in ones (or of `extra`) is taken out of the list; any other allowed
    /// name is never secret as a whole name.
    pub(crate) fn with_allowed(extra: &[String], allowed: &[String]) -> Self {
        let allowed: Vec<String> = allowed
            .iter()
            .map(|a| compared(a))
            .filter(|a| !a.is_empty())
            .collect();
        let mut needles: Vec<String> = BUILT_IN_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .chain(extra.iter().map(|f| compared(f)))
            .filter(|n| !n.is_empty() && !allowed.contains(n))
            .collect();
        needles.sort();
        needles.dedup();
        let whole = BUILT_IN_WHOLE_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .filter(|n| !allowed.contains(n) && !needles.iter().any(|x| n.contains(x.as_str())))
            .collect();
        // Built once at install; names are short, so a DFA answers in a few steps.
        let needles = AhoCorasickBuilder::new()
            .kind(Some(AhoCorasickKind::DFA))
            .build(&needles)
            .ok();
        FieldRedactor {
            needles,
            whole,
            allowed,
        }
    }

    /// Whether a value named `name` is secret.
    pub(crate) fn matches(&self, name: &str) -> bool {
        // Most names are short and ASCII: compared on the stack.
        let mut buf = [0u8; 64];
        let mut len = 0;
        let mut spilled = None;
        if name.len() <= buf.len() && name.is_ascii() {
            for b in name.bytes() {
                if b.is_ascii_alphanumeric() {
                    buf[len] = b.to_ascii_lowercase();
                    len += 1;
                }
            }
        } else {
            spilled = Some(compared(name));
        }
        let name = match &spilled {
            Some(s) => s.as_bytes(),
            None => &buf[..len],
        };
        if name.is_empty() {
            return false;
        }
        let found = self.needles.as_ref().is_some_and(|a| a.is_match(name))
            || self.whole.iter().any(|n| n.as_bytes() == name);
        found && !self.allowed.iter().any(|a| a.as_bytes() == name)
    }

    /// Replaces the value of every matching key, at any depth, adding the texts it hid to
    /// `hidden`, so that they can be scrubbed wherever else the event quotes them.
    pub(crate) fn redact_json_keeping(&self, value: &mut Value, hidden: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if self.matches(k) {
                        hide(v, hidden);
                    } else {
                        self.redact_json_keeping(v, hidden);
                    }
                }
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|v| self.redact_json_keeping(v, hidden)),
            _ => {}
        }
    }
}

/// Replaces a value hidden by its name with the placeholder, adding the texts it held
/// (strings and numbers, long enough to be told from common words) to `hidden`.
pub(crate) fn hide(value: &mut Value, hidden: &mut Vec<String>) {
    texts_of(value, hidden);
    *value = Value::String(PLACEHOLDER.to_owned());
}

/// Adds a text hidden by its name to `hidden`, when it is long enough to be scrubbed
/// wherever else it is quoted without scrubbing common words.
pub(crate) fn keep_hidden(text: &str, hidden: &mut Vec<String>) {
    if text.len() >= crate::pipeline::redact::credentials::MIN_SECRET_LEN && text != PLACEHOLDER {
        hidden.push(text.to_owned());
    }
}

fn texts_of(value: &Value, hidden: &mut Vec<String>) {
    match value {
        Value::String(s) => keep_hidden(s, hidden),
        Value::Number(n) => keep_hidden(&n.to_string(), hidden),
        Value::Array(items) => items.iter().for_each(|v| texts_of(v, hidden)),
        Value::Object(map) => map.values().for_each(|v| texts_of(v, hidden)),
        Value::Bool(_) | Value::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::borrow::Cow;

    #[test]
    fn a_secret_is_scrubbed_as_json_a_url_a_form_and_html_quote_it() {
        let secrets = Secrets::new(vec!["p@ss w\"o&rd/é'".into()]);
        let quoted = [
            r#"{"password":"p@ss w\"o&rd/é'"}"#,
            "p%40ss%20w%22o%26rd%2F%C3%A9%27",
            "p%40ss%20w%22o%26rd%2f%c3%a9%27",
            "next=p%40ss+w%22o%26rd%2F%C3%A9%27",
            "<b>p@ss w&quot;o&amp;rd/é&#x27;</b>",
            "<b>p@ss w&quot;o&amp;rd/é&#39;</b>",
            r#"{"page":"<b>p@ss w&quot;o&amp;rd/é&#39;</b>"}"#,
        ];
        for q in quoted {
            let mut text = format!("before {q} after");
            secrets.scrub(&mut text);
            assert!(
                !text.contains("ss w") && !text.contains("ss%20w"),
                "{q} -> {text}"
            );
            assert!(
                text.starts_with("before ") && text.ends_with(" after"),
                "{text}"
            );
        }
        // A secret no quoting changes is kept once.
        assert_eq!(
            Secrets::new(vec!["hunter22".into()]).values(),
            vec!["hunter22".to_owned()]
        );
    }

    #[test]
    fn extended_secrets_scrub_both_sets_longest_first() {
        let settings = Secrets::new(vec!["relay-pw".into()]);
        assert!(matches!(settings.extended(Vec::new()), Cow::Borrowed(_)));
        let both = settings.extended(vec!["relay-pw-2".into(), "relay-pw".into()]);
        let mut t = "relay-pw-2 and relay-pw and relay%2Dpw".to_owned();
        both.scrub(&mut t);
        assert_eq!(t, format!("{PLACEHOLDER} and {PLACEHOLDER} and relay%2Dpw"));
        assert!(both.found_in("x relay-pw") && !both.found_in("relay"));
    }

    // Regression: a text cut where it was captured kept the first bytes of a secret that
    // went on past the cut; no scrub finds a secret's start alone.
    #[test]
    fn the_end_of_a_cut_text_that_begins_a_secret_is_hidden() {
        let secrets = Secrets::new(vec!["relay pw-é1".into()]);
        let scrub_cut_end = |secrets: &Secrets, text: &mut String| {
            let start = secrets.secret_start_at_end(text);
            if start > 0 {
                text.truncate(text.len() - start);
                text.push_str(PLACEHOLDER);
            }
        };
        for (cut, kept) in [
            ("ctl relay pw-", "ctl "),
            ("ctl relay pw-é", "ctl "),
            ("ctl r", "ctl "),
            // As a form writes it.
            ("ctl relay+p", "ctl "),
        ] {
            let mut text = cut.to_owned();
            scrub_cut_end(&secrets, &mut text);
            assert_eq!(text, format!("{kept}{PLACEHOLDER}"), "{cut}");
        }
        for whole in ["ctl relay pw-x", "ctl", ""] {
            let mut text = whole.to_owned();
            scrub_cut_end(&secrets, &mut text);
            assert_eq!(text, whole);
        }
        let stars = Secrets::new(vec!["**".into()]);
        let mut text = format!("ctl {PLACEHOLDER}");
        scrub_cut_end(&stars, &mut text);
        assert_eq!(text, format!("ctl {PLACEHOLDER}"));
    }

    #[test]
    fn secret_names_follow_django() {
        for n in [
            "API_URL",
            "aws_secret",
            "DB_PASSWORD",
            "github_token",
            "SIGNATURE",
            "ssh_key",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["PATH", "HOME", "LANG", "RUST_LOG"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn fields_are_redacted_at_any_depth_case_insensitively() {
        let r = FieldRedactor::new(&["password".into(), "Token".into()]);
        let mut v = json!({
            "user": "ann",
            "Password": "hunter2",
            "nested": {"list": [{"access_TOKEN": "abc", "ok": 1}]},
        });
        r.redact_json_keeping(&mut v, &mut Vec::new());
        assert_eq!(v["Password"], PLACEHOLDER);
        assert_eq!(v["nested"]["list"][0]["access_TOKEN"], PLACEHOLDER);
        assert_eq!(v["nested"]["list"][0]["ok"], 1);
        assert_eq!(v["user"], "ann");
    }

    #[test]
    fn an_empty_name_adds_nothing_and_takes_nothing_away() {
        let r = FieldRedactor::new(&["".into()]);
        assert!(r.matches("password") && !r.matches("username"));
        assert!(!r.matches("") && !r.matches("_-."));
    }

    // Regression: query strings, bodies, extra data, tags, arguments and breadcrumb data hid
    // only `password` and `token`, so `?api_key=`, `client_secret=` and `{"apiKey": ..}`
    // were stored while the same request's `X-Api-Key` header was hidden.
    #[test]
    fn one_list_of_secret_names_in_every_spelling() {
        let r = FieldRedactor::default();
        for name in [
            "password",
            "new_password",
            "PASSWD",
            "pwd",
            "mysql_pwd",
            "secret",
            "client_secret",
            "clientSecret",
            "aws_secret_access_key",
            "api_key",
            "apiKey",
            "API-KEY",
            "x-api-key",
            "x.api.key",
            "auth",
            "Authorization",
            "credentials",
            "private_key",
            "privateKey",
            "access_token",
            "refreshToken",
            "stripeToken",
            "session",
            "sessionid",
            "PHPSESSID",
            "csrf",
            "csrfmiddlewaretoken",
            "X-XSRF-TOKEN",
            "set-cookie",
            "X-Amz-Signature",
            "card_number",
            "creditCard",
            "cvv",
            "otp",
            "two_factor",
            "ssn",
            "pin",
            "passphrase",
        ] {
            assert!(r.matches(name), "{name}");
        }
        // Controls: ordinary names, and whole-name entries inside other words.
        for name in [
            "username",
            "email",
            "shipping",
            "classname",
            "footprint",
            "id",
            "path",
            "keyboard",
            "status",
            "",
        ] {
            assert!(!r.matches(name), "{name}");
        }
    }

    #[test]
    fn settings_add_names_and_allow_them_explicitly() {
        let r = FieldRedactor::with_allowed(&["pin_code".into(), "SSN".into()], &[]);
        assert!(r.matches("pinCode") && r.matches("user_ssn") && r.matches("password"));
        // Taking a built-in name out, and allowing one whole name a listed one is part of.
        let r = FieldRedactor::with_allowed(&[], &["session".into(), "author".into()]);
        assert!(!r.matches("session_id") && !r.matches("Author"));
        assert!(r.matches("auth") && r.matches("authorization") && r.matches("password"));
    }

    #[test]
    fn each_secret_is_kept_once_wherever_its_repeats_were() {
        let s = Secrets::new(
            ["abcd", "wxyz", "abcd", "", "longer-one", "wxyz", "abcd"]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(s.values(), ["longer-one", "abcd", "wxyz"]);
    }

    #[test]
    fn scrub_replaces_longest_secret_first() {
        let s = Secrets::new(vec!["abc".into(), "abcdef".into(), String::new()]);
        let mut t = "x abcdef y abc".to_owned();
        s.scrub(&mut t);
        assert_eq!(t, format!("x {PLACEHOLDER} y {PLACEHOLDER}"));
    }

    fn collect_texts(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| collect_texts(v, out)),
            Value::Object(m) => m.iter().for_each(|(k, v)| {
                out.push(k.clone());
                collect_texts(v, out);
            }),
            _ => {}
        }
    }

    /// A secret made of stars is part of the placeholder: placeholders already in a text
    /// (a redacted argument, a redacted field) stay as they are; the secret elsewhere goes.
    #[test]
    fn a_secret_of_stars_leaves_placeholders_alone() {
        for secret in ["*", "**", "**********"] {
            let s = Secrets::new(vec![secret.into()]);
            let mut t = PLACEHOLDER.to_owned();
            s.scrub(&mut t);
            assert_eq!(t, PLACEHOLDER, "{secret}");
            let mut t = format!("pin={PLACEHOLDER}&note=a{secret}b");
            s.scrub(&mut t);
            assert_eq!(
                t,
                format!("pin={PLACEHOLDER}&note=a{PLACEHOLDER}b"),
                "{secret}"
            );
        }
    }

    #[test]
    fn scrub_does_not_rebuild_the_secret_from_the_placeholder() {
        // Regression: a secret `*x` followed by `x` became `**********x`, which holds `*x`.
        let s = Secrets::new(vec!["*x".into()]);
        let mut t = "*xx".to_owned();
        s.scrub(&mut t);
        assert!(!t.contains("*x"), "{t}");
    }

    proptest! {
        #[test]
        fn matching_without_lowercasing_agrees_with_lowercasing(
            name in "[a-zA-Z_\\-éÉİK]{0,12}",
            needle in "[a-zA-Z_\\-éÉİK ]{0,4}",
        ) {
            let lowered = name.to_ascii_lowercase().contains(&needle.to_ascii_lowercase());
            prop_assert_eq!(contains_ignore_ascii_case(&name, &needle), lowered);
            let upper = name.to_ascii_uppercase();
            let secret = ["API", "TOKEN", "KEY", "SECRET", "PASS", "SIGNATURE"]
                .iter()
                .any(|p| upper.contains(p));
            prop_assert_eq!(is_secret_name(&name), secret);
            // An added name is found in any spelling of a name that holds it.
            let fields = FieldRedactor::new(std::slice::from_ref(&needle));
            let squeeze = |s: &str| -> String {
                s.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect()
            };
            let (n, k) = (squeeze(&name), squeeze(&needle));
            if !k.is_empty() && n.contains(&k) {
                prop_assert!(fields.matches(&name));
            }
            if !FieldRedactor::default().matches(&name) && (k.is_empty() || !n.contains(&k)) {
                prop_assert!(!fields.matches(&name));
            }
        }

        #[test]
        fn scrubbed_text_never_contains_the_secret(
            secret in "\\PC{1,40}",
            before in "\\PC{0,40}",
            after in "\\PC{0,40}",
        ) {
            // A secret that is part of the placeholder is found in any redacted text.
            prop_assume!(!PLACEHOLDER.contains(secret.as_str()));
            let secrets = Secrets::new(vec![secret.clone()]);
            let mut text = format!("{before}{secret}{after}{secret}");
            secrets.scrub(&mut text);
            prop_assert!(!text.contains(secret.as_str()));
            let mut v = json!({ secret.clone(): [secret.clone(), {"k": format!("{before}{secret}{after}")}] });
            secrets.scrub_json(&mut v);
            let mut texts = Vec::new();
            collect_texts(&v, &mut texts);
            prop_assert!(texts.iter().all(|t| !t.contains(secret.as_str())), "{texts:?}");
        }
    }
}

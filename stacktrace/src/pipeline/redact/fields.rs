//! Redaction: what must never reach the disk, stderr or a mail is replaced before an event
//! leaves the pipeline.

use std::borrow::Cow;

use serde_json::Value;

use crate::model::event::PLACEHOLDER;

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

/// Field names whose values are stored as [`PLACEHOLDER`], matched case-insensitively as
/// substrings (`password` also hides `new_password` and `PASSWORD_CONFIRM`).
#[derive(Clone, Debug, Default)]
pub(crate) struct FieldRedactor {
    needles: Vec<String>,
}

impl FieldRedactor {
    pub(crate) fn new(fields: &[String]) -> Self {
        FieldRedactor {
            needles: fields
                .iter()
                .map(|f| f.trim().to_lowercase())
                .filter(|f| !f.is_empty())
                .collect(),
        }
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        if self.needles.is_empty() {
            return false;
        }
        if name.is_ascii() {
            // Lowercasing ASCII text only lowers its ASCII letters.
            return self
                .needles
                .iter()
                .any(|n| contains_ignore_ascii_case(name, n));
        }
        let lower = name.to_lowercase();
        self.needles.iter().any(|n| lower.contains(n.as_str()))
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

/// Raw secret values to scrub from every text of an event, longest first so that a secret
/// containing another is replaced whole.
#[derive(Clone, Debug, Default)]
pub(crate) struct Secrets(Vec<String>);

/// A text as it appears inside a JSON string.
fn json_escaped(text: &str) -> String {
    match serde_json::to_string(text) {
        Ok(quoted) => quoted[1..quoted.len() - 1].to_owned(),
        Err(_) => text.to_owned(),
    }
}

/// The forms a secret takes when a text quotes it: percent-encoded (as a URL or a form
/// writes it, with either case of hex digits, a space as `%20` or `+`), HTML-escaped, and
/// each of these and the secret itself inside a JSON string (an HTML page or a link sent
/// as JSON); each only when it differs from the secret.
fn encoded_forms(secret: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let upper = crate::escape::url_component(secret);
    // The same escapes with lower-case hex digits: only the two characters after each `%`.
    let mut lower = String::with_capacity(upper.len());
    let mut hex_left = 0;
    for c in upper.chars() {
        if hex_left > 0 {
            lower.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            hex_left = if c == '%' { 2 } else { 0 };
            lower.push(c);
        }
    }
    forms.push(upper.replace("%20", "+"));
    forms.push(upper);
    forms.push(lower);
    // As the dashboard and mails write it, and with the other common escape of `'`.
    let html = crate::escape::escape_html(secret);
    forms.push(html.replace("&#39;", "&#x27;"));
    forms.push(html);
    forms.push(secret.to_owned());
    let quoted: Vec<String> = forms.iter().map(|f| json_escaped(f)).collect();
    forms.extend(quoted);
    forms.retain(|f| f != secret);
    forms
}

impl Secrets {
    /// The secrets to scrub: these values, and each in the forms a text quoting it would
    /// hold (see [`encoded_forms`]).
    pub(crate) fn new(mut values: Vec<String>) -> Self {
        values.retain(|s| !s.is_empty());
        for i in 0..values.len() {
            let forms = encoded_forms(&values[i]);
            values.extend(forms);
        }
        // Longest first; equal values side by side, so that each is kept once.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Secrets(values)
    }

    /// These secrets and more values (with their quoted forms); borrowed when there are no
    /// more.
    pub(crate) fn extended(&self, more: Vec<String>) -> Cow<'_, Secrets> {
        if more.iter().all(String::is_empty) {
            return Cow::Borrowed(self);
        }
        let Secrets(mut values) = Secrets::new(more);
        values.extend(self.0.iter().cloned());
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Cow::Owned(Secrets(values))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a text holds one of the secrets.
    pub(crate) fn found_in(&self, text: &str) -> bool {
        self.0.iter().any(|s| text.contains(s.as_str()))
    }

    pub(crate) fn scrub(&self, text: &mut String) {
        for s in &self.0 {
            if PLACEHOLDER.contains(s.as_str()) {
                // A secret made of stars: replaced once, between the placeholders already
                // in the text, which hold no secret and stay as they are.
                if text.contains(s.as_str()) {
                    let pieces: Vec<String> = text
                        .split(PLACEHOLDER)
                        .map(|piece| piece.replace(s.as_str(), PLACEHOLDER))
                        .collect();
                    *text = pieces.join(PLACEHOLDER);
                }
                continue;
            }
            // Replacing can join the placeholder with its neighbours into the secret again
            // (`*x` beside `x`), so repeat; each pass removes a character the placeholder
            // lacks, which ends the loop.
            while text.contains(s.as_str()) {
                *text = text.replace(s.as_str(), PLACEHOLDER);
            }
        }
    }

    /// The length in bytes of the longest end of `text` that is the start of a secret (but
    /// not a whole one); 0 when none is. For a text cut where it was taken, so that a
    /// secret may go on past its end: a scrub cannot find what is only a secret's start.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn secret_start_at_end(&self, text: &str) -> usize {
        let mut longest = 0;
        for s in &self.0 {
            if PLACEHOLDER.contains(s.as_str()) {
                // Made of stars: every placeholder ends with its start.
                continue;
            }
            for (i, _) in s.char_indices().skip(1) {
                if i > longest && text.ends_with(&s[..i]) {
                    longest = i;
                }
            }
        }
        longest
    }

    pub(crate) fn scrub_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => self.scrub(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            Value::Object(map) => {
                // Keys can hold secrets too (a map keyed by card number).
                let entries = std::mem::take(map);
                for (mut k, mut v) in entries {
                    self.scrub(&mut k);
                    self.scrub_json(&mut v);
                    map.insert(k, v);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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
            Secrets::new(vec!["hunter22".into()]).0,
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
    fn empty_redact_list_matches_nothing() {
        assert!(!FieldRedactor::new(&["".into()]).matches("password"));
    }

    #[test]
    fn each_secret_is_kept_once_wherever_its_repeats_were() {
        let s = Secrets::new(
            ["abcd", "wxyz", "abcd", "", "longer-one", "wxyz", "abcd"]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(s.0, ["longer-one", "abcd", "wxyz"]);
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
            let fields = FieldRedactor::new(std::slice::from_ref(&needle));
            let trimmed = needle.trim().to_lowercase();
            let by_lowercase = !trimmed.is_empty() && name.to_lowercase().contains(&trimmed);
            prop_assert_eq!(fields.matches(&name), by_lowercase);
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

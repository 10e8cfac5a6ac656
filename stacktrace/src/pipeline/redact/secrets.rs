//! Known secret values scrubbed from texts wherever they are quoted: the settings' secrets
//! and what an event's redaction hid, in one pass over each text whatever their number, and
//! the values hidden earlier in the process ([`super::remembered`]).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde_json::Value;

use crate::model::event::PLACEHOLDER;
use crate::pipeline::redact::remembered;

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
pub(crate) fn encoded_forms(secret: &str) -> Vec<String> {
    // Letters, digits and `-._~` are written the same by every encoding: most tokens and
    // passwords have no other form.
    if secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Vec::new();
    }
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
    // Some JSON writers escape `/` too.
    if secret.contains('/') {
        forms.push(json_escaped(secret).replace('/', "\\/"));
    }
    let quoted: Vec<String> = forms.iter().map(|f| json_escaped(f)).collect();
    forms.extend(quoted);
    forms.retain(|f| f != secret);
    forms
}

/// Values with the forms texts quote them in, empty ones left out.
fn with_forms(mut values: Vec<String>) -> Vec<String> {
    values.retain(|s| !s.is_empty());
    for i in 0..values.len() {
        let forms = encoded_forms(&values[i]);
        values.extend(forms);
    }
    values
}

/// Raw secret values to scrub from every text of an event, with the forms a text quoting
/// them would hold. All are found in one pass over a text (an Aho-Corasick automaton, the
/// longest of those starting at the same place first), so scrubbing costs the same with
/// one secret or thousands; the few made only of stars, which are part of the placeholder,
/// are replaced on their own between the placeholders already in a text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Secrets {
    /// Every value, longest first; equal values kept once.
    values: Vec<String>,
    /// The automaton of the values that are not part of the placeholder.
    automaton: Option<AhoCorasick>,
    /// The values that are part of the placeholder (`*`, `**`).
    stars: Vec<String>,
}

/// A pass can join the placeholder with a neighbour into a secret again (`*x` beside `x`);
/// each further pass removes a character the placeholder lacks. Past this many passes the
/// text is replaced whole.
const MAX_PASSES: usize = 16;

impl Secrets {
    /// The secrets to scrub: these values, and each in the forms a text quoting it would
    /// hold (see [`encoded_forms`]).
    pub(crate) fn new(values: Vec<String>) -> Self {
        Secrets::of_forms(with_forms(values))
    }

    /// The secrets from values that already hold every form to scrub.
    fn of_forms(mut values: Vec<String>) -> Self {
        // Longest first; equal values side by side, so that each is kept once.
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        let (stars, plain): (Vec<&String>, Vec<&String>) = values
            .iter()
            .partition(|s| PLACEHOLDER.contains(s.as_str()));
        let automaton = if plain.is_empty() {
            None
        } else {
            // Built for each event that hid something: a contiguous NFA builds in time
            // linear in the secrets' bytes, where a DFA costs far more to build than the
            // scans it would speed up.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(plain.iter().map(|s| s.as_bytes()))
                .ok()
        };
        let stars = stars.into_iter().cloned().collect();
        Secrets {
            values,
            automaton,
            stars,
        }
    }

    /// These secrets and more values (with their quoted forms); borrowed when there are no
    /// more.
    pub(crate) fn extended(&self, more: Vec<String>) -> Cow<'_, Secrets> {
        if more.iter().all(String::is_empty) {
            return Cow::Borrowed(self);
        }
        let mut values = with_forms(more);
        values.extend(self.values.iter().cloned());
        Cow::Owned(Secrets::of_forms(values))
    }

    /// Whether there is nothing to scrub: no secret here and none remembered in the
    /// process.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty() && remembered::is_empty()
    }

    /// Whether a text holds one of the secrets (or one remembered in the process).
    pub(crate) fn found_in(&self, text: &str) -> bool {
        self.automaton.as_ref().is_some_and(|a| a.is_match(text))
            || self.stars.iter().any(|s| text.contains(s.as_str()))
            || remembered::found_in(text)
    }

    /// Replaces every secret in `text`, and every value remembered in the process, with the
    /// placeholder.
    pub(crate) fn scrub(&self, text: &mut String) {
        self.scrub_own(text);
        remembered::scrub(text);
    }

    fn scrub_own(&self, text: &mut String) {
        if let Some(automaton) = &self.automaton {
            let mut passes = 0;
            while automaton.is_match(text.as_str()) {
                if passes == MAX_PASSES {
                    *text = PLACEHOLDER.to_owned();
                    break;
                }
                let mut out = String::with_capacity(text.len());
                let mut last = 0;
                for m in automaton.find_iter(text.as_str()) {
                    out.push_str(&text[last..m.start()]);
                    out.push_str(PLACEHOLDER);
                    last = m.end();
                }
                out.push_str(&text[last..]);
                *text = out;
                passes += 1;
            }
        }
        for s in &self.stars {
            // A secret made of stars: replaced once, between the placeholders already in
            // the text, which hold no secret and stay as they are.
            if text.contains(s.as_str()) {
                let pieces: Vec<String> = text
                    .split(PLACEHOLDER)
                    .map(|piece| piece.replace(s.as_str(), PLACEHOLDER))
                    .collect();
                *text = pieces.join(PLACEHOLDER);
            }
        }
    }

    /// The length in bytes of the longest end of `text` that is the start of a secret (but
    /// not a whole one); 0 when none is. For a text cut where it was taken, so that a
    /// secret may go on past its end: a scrub cannot find what is only a secret's start.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn secret_start_at_end(&self, text: &str) -> usize {
        let mut longest = 0;
        for s in &self.values {
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
                if !map.keys().any(|k| self.found_in(k)) {
                    map.values_mut().for_each(|v| self.scrub_json(v));
                    return;
                }
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

    #[cfg(test)]
    pub(crate) fn values(&self) -> &[String] {
        &self.values
    }
}

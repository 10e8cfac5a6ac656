//! GraphQL documents (an `application/graphql` body, the `query` of a JSON body or a query
//! string): the value of an argument or an input field named like a secret
//! (`login(password: "x", apiKey: "y")`, `input: {token: "z"}`) hidden, be it a string, a
//! number, a list or an object. A `$variable` is left as it is: its value is in
//! `variables`, which is JSON and redacted as such. A scanner over the text that reads each
//! byte once and takes a cut or malformed document, hiding to the end of the text a value
//! cut short.

use super::json::{skip_space, string_end_closed, unescaped};
use super::Redaction;
use crate::model::event::PLACEHOLDER;

/// Whether a text (its start trimmed) opens a GraphQL operation or fragment by its keyword.
/// The shorthand `{ ... }` reads as JSON as well, so it is a query only where one is
/// expected.
pub(super) fn is_operation(t: &str) -> bool {
    ["query", "mutation", "subscription", "fragment"]
        .iter()
        .any(|keyword| {
            t.strip_prefix(keyword).is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_whitespace() || c == '{' || c == '(')
            })
        })
}

impl Redaction<'_> {
    /// A GraphQL document with the values of arguments and input fields named like secrets
    /// hidden; credentials found by value in what remains.
    pub(crate) fn graphql(&mut self, text: &str) -> String {
        let scanned = self.graphql_scan(text);
        self.inline(&scanned)
    }

    fn graphql_scan(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'#' => i = s[i..].find('\n').map_or(b.len(), |p| i + p),
                b'"' => i = string_end(b, i).0,
                // A variable (`$password: String!`), whose type follows.
                b'$' => i = name_end(b, i + 1),
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = i;
                    i = name_end(b, i);
                    let colon = skip_space(b, i);
                    if b.get(colon) != Some(&b':') || !self.is_sensitive_name(&s[start..i]) {
                        continue;
                    }
                    let v = skip_space(b, colon + 1);
                    if let Some(stop) = self.graphql_value_hidden(s, v) {
                        out.push_str(&s[copied..v]);
                        out.push('"');
                        out.push_str(PLACEHOLDER);
                        out.push('"');
                        copied = stop;
                        i = stop;
                    }
                }
                _ => i += 1,
            }
        }
        out.push_str(&s[copied..]);
        out
    }

    /// Keeps as secrets the texts of the value at `v` of an argument named like a secret,
    /// and gives where it ends; `None` for a value that is not one (a `$variable`, an enum,
    /// the field an alias names) or a text that ends before it.
    fn graphql_value_hidden(&mut self, s: &str, v: usize) -> Option<usize> {
        let b = s.as_bytes();
        match *b.get(v)? {
            b'"' => Some(self.graphql_string_hidden(s, v)),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = v;
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = self.graphql_string_hidden(s, j);
                            continue;
                        }
                        b'#' => j = s[j..].find('\n').map_or(b.len(), |p| j + p),
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                Some(b.len())
            }
            b'-' | b'0'..=b'9' => {
                let mut e = v + 1;
                while e < b.len()
                    && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'.' | b'+' | b'-'))
                {
                    e += 1;
                }
                self.secret(&s[v..e]);
                Some(e)
            }
            _ => None,
        }
    }

    /// Keeps the text of the string at `i` as a secret; gives where it ends.
    fn graphql_string_hidden(&mut self, s: &str, i: usize) -> usize {
        let (stop, closed) = string_end(s.as_bytes(), i);
        let quotes = if s.as_bytes()[i..].starts_with(b"\"\"\"") {
            3
        } else {
            1
        };
        let inside_end = if closed { stop - quotes } else { stop };
        let inside = s
            .get((i + quotes).min(inside_end)..inside_end)
            .unwrap_or("");
        if quotes == 3 {
            self.secret(inside);
        } else {
            self.secret(&unescaped(inside));
        }
        stop
    }
}

/// Past the name starting at `i` (letters, digits, `_`).
fn name_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    i
}

/// Past the string (`"..."` or a block string `"""..."""`) starting at `i`, and whether it
/// is closed.
fn string_end(b: &[u8], i: usize) -> (usize, bool) {
    if !b[i..].starts_with(b"\"\"\"") {
        return string_end_closed(b, i);
    }
    let mut j = i + 3;
    while j < b.len() {
        if b[j..].starts_with(b"\\\"\"\"") {
            j += 4;
        } else if b[j..].starts_with(b"\"\"\"") {
            return (j + 3, true);
        } else {
            j += 1;
        }
    }
    (b.len(), false)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::tests::with_fields;
    use super::*;

    const NAMES: [&str; 3] = ["password", "apikey", "token"];

    fn graphql(text: &str) -> (String, Vec<String>) {
        with_fields(&NAMES, |r| r.graphql(text))
    }

    /// The scanner alone, without the patterns run over every text afterwards.
    fn scanned(text: &str) -> (String, Vec<String>) {
        with_fields(&NAMES, |r| r.graphql_scan(text))
    }

    // Regression: arguments named like secrets in a GraphQL document were stored in clear.
    #[test]
    fn secret_arguments_are_hidden() {
        let doc = concat!(
            "mutation Login($password: String!, $t: Int) {\n",
            "  # password: \"in a comment\"\n",
            r#"  login(password: "pw-1\"x", apiKey: "pw-2", user: "ann", note: "token: 1","#,
            r#" input: {token: 123456, city: "Paris"}, newPassword: {a: ["pw-3"]},"#,
            r#" apiToken: """pw-4 "x" y""", mode: FAST, again: $password, other: $t) {"#,
            "\n    password: resetPassword token\n  }\n}",
        );
        let (out, secrets) = scanned(doc);
        let p = PLACEHOLDER;
        let expected = concat!(
            "mutation Login($password: String!, $t: Int) {\n",
            "  # password: \"in a comment\"\n",
            r#"  login(password: "{p}", apiKey: "{p}", user: "ann", note: "token: 1","#,
            r#" input: {token: "{p}", city: "Paris"}, newPassword: "{p}","#,
            r#" apiToken: "{p}", mode: FAST, again: $password, other: $t) {"#,
            "\n    password: resetPassword token\n  }\n}",
        )
        .replace("{p}", p);
        assert_eq!(out, expected);
        for s in ["pw-1\"x", "pw-2", "123456", "pw-3", "pw-4 \"x\" y"] {
            assert!(secrets.iter().any(|found| found == s), "{s}: {secrets:?}");
        }
    }

    // Regression: a query cut at the size limit inside a secret argument must not leave its
    // start in clear.
    #[test]
    fn cut_anywhere_no_secret_remains() {
        let doc = r#"{ a(password: "QZXJWV", b: 1, token: ["QZ\"XJ", {c: "QZX"}], apiKey: """QZX""", d: 123) { e } }"#;
        for cut in 0..=doc.len() {
            let (out, _) = graphql(&doc[..cut]);
            assert!(
                !out.contains(['Q', 'Z', 'X', 'J', 'W', 'V']),
                "{cut}: {out}"
            );
        }
        assert!(graphql(doc).0.contains("b: 1"));
    }

    #[test]
    fn hostile_documents_are_read_in_linear_time() {
        let n = 100_000;
        let texts = [
            "password: {".repeat(n),
            "password: [\"".repeat(n),
            "\"".repeat(n),
            "\"\"\"".repeat(n) + "\\",
            "password:".repeat(n),
            "#".repeat(n),
            "$".repeat(n),
            "password: 1".repeat(n),
        ];
        let started = Instant::now();
        for text in &texts {
            graphql(text);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn operations_by_their_keyword() {
        assert!(is_operation("query { a }"));
        assert!(is_operation("mutation($a: Int) { a }"));
        assert!(is_operation("subscription{a}"));
        assert!(is_operation("fragment F on T { a }"));
        assert!(!is_operation("queryable"));
        assert!(!is_operation("{ a }"));
        assert!(!is_operation("query"));
    }
}

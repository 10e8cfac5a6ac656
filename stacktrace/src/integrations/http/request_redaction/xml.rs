//! XML bodies (SOAP, any `*+xml`, and markup sent as other text): the content of an
//! element named like a secret (`<password>`, `<ns:ApiKey>`, `<wsse:Password Type="...">`),
//! its CDATA and child elements included, and the value of an attribute named like one
//! (`password="x"`), hidden. A scanner rather than a parser: it takes malformed and cut
//! text, reads each byte once, keeps no stack, and hides to the end of the text an element
//! or attribute value the text ends inside.

use super::json::skip_space;
use super::Redaction;
use crate::model::event::PLACEHOLDER;

/// The element whose content is hidden: its name, and how many elements of that name are
/// open inside it and itself (its end is the end tag that closes the last of them).
struct Hiding<'t> {
    name: &'t str,
    open: usize,
}

/// Where a start tag ends, and what it is.
struct StartTag {
    /// Past its `>`, or the end of a text cut inside it.
    end: usize,
    /// Past its name.
    name_end: usize,
    /// Whether it ends in `>` (rather than `/>` or the end of the text).
    opens: bool,
}

impl Redaction<'_> {
    /// An XML text with the content of elements and the values of attributes named like
    /// secrets hidden; credentials found by value in what remains.
    pub(crate) fn xml(&mut self, text: &str) -> String {
        let scanned = self.xml_scan(text);
        self.inline(&scanned)
    }

    fn xml_scan(&mut self, s: &str) -> String {
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut hiding: Option<Hiding<'_>> = None;
        let mut i = 0;
        while i < b.len() {
            let Some(lt) = s[i..].find('<').map(|p| i + p) else {
                self.xml_text(&s[i..], hiding.is_some(), &mut out);
                break;
            };
            self.xml_text(&s[i..lt], hiding.is_some(), &mut out);
            i = lt;
            let rest = &b[i..];
            let end = if rest.starts_with(b"<!--") {
                until(s, i + 4, "-->").1
            } else if rest.starts_with(b"<![CDATA[") {
                let (inside, end) = until(s, i + 9, "]]>");
                if hiding.is_some() {
                    self.xml_secret(&s[i + 9..inside], false);
                    // Already written: the CDATA is part of the hidden content.
                    i = end;
                    continue;
                }
                end
            } else if rest.starts_with(b"<?") {
                until(s, i + 2, "?>").1
            } else if rest.starts_with(b"<!") {
                declaration_end(b, i + 2)
            } else if rest.starts_with(b"</") {
                let name_end = name_end(b, i + 2);
                let end = until(s, name_end, ">").1;
                if let Some(h) = &mut hiding {
                    if s[i + 2..name_end].eq_ignore_ascii_case(h.name) {
                        h.open -= 1;
                    }
                    if h.open > 0 {
                        i = end;
                        continue;
                    }
                    hiding = None;
                }
                end
            } else if rest.get(1).is_some_and(|&c| is_name_start(c)) {
                let emit = hiding.is_none();
                let tag = self.start_tag(s, i, emit, &mut out);
                let name = &s[i + 1..tag.name_end];
                match &mut hiding {
                    Some(h) if tag.opens && name.eq_ignore_ascii_case(h.name) => h.open += 1,
                    Some(_) => {}
                    None if tag.opens && self.is_secret_xml_name(name) => {
                        out.push_str(PLACEHOLDER);
                        hiding = Some(Hiding { name, open: 1 });
                    }
                    None => {}
                }
                i = tag.end;
                continue;
            } else {
                // A `<` that starts nothing (`a < b`): text.
                self.xml_text("<", hiding.is_some(), &mut out);
                i += 1;
                continue;
            };
            if hiding.is_none() {
                out.push_str(&s[i..end]);
            }
            i = end;
        }
        out
    }

    /// Text between tags: written, or kept as a secret inside a hidden element.
    fn xml_text(&mut self, text: &str, hidden: bool, out: &mut String) {
        if hidden {
            self.xml_secret(text, true);
        } else {
            out.push_str(text);
        }
    }

    /// A hidden text, as written and, when it holds references (`&amp;`), as it reads.
    fn xml_secret(&mut self, text: &str, references: bool) {
        if text.trim().is_empty() {
            return;
        }
        self.secret(text);
        if references && text.contains('&') {
            self.secret(&references_read(text));
        }
    }

    /// Whether an element or attribute is named like a secret, by its local name
    /// (`ApiKey` of `ns:ApiKey`) or its whole one.
    fn is_secret_xml_name(&self, name: &str) -> bool {
        let local = name.rsplit(':').next().unwrap_or(name);
        !name.is_empty()
            && (self.is_sensitive_name(local)
                || (local.len() < name.len() && self.is_sensitive_name(name)))
    }

    /// Reads the start tag at `i` (`<` and a name), writing it when `emit` with the values
    /// of secret-named attributes hidden (to the end of the text when it ends inside one).
    fn start_tag(&mut self, s: &str, i: usize, emit: bool, out: &mut String) -> StartTag {
        let b = s.as_bytes();
        let name_end = name_end(b, i + 1);
        let write = |out: &mut String, text: &str| {
            if emit {
                out.push_str(text);
            }
        };
        write(out, &s[i..name_end]);
        let cut = |end| StartTag {
            end,
            name_end,
            opens: false,
        };
        let mut j = name_end;
        loop {
            let k = skip_space(b, j);
            match b.get(k) {
                None => {
                    write(out, &s[j..]);
                    return cut(b.len());
                }
                Some(b'>') => {
                    write(out, &s[j..=k]);
                    return StartTag {
                        end: k + 1,
                        name_end,
                        opens: true,
                    };
                }
                Some(b'/') if b.get(k + 1) == Some(&b'>') => {
                    write(out, &s[j..k + 2]);
                    return cut(k + 2);
                }
                Some(b'/') => {
                    write(out, &s[j..=k]);
                    j = k + 1;
                    continue;
                }
                Some(_) => {}
            }
            // An attribute: `name`, `name=value`, `name="value"`.
            let mut an_end = k;
            while an_end < b.len()
                && !b[an_end].is_ascii_whitespace()
                && !matches!(b[an_end], b'=' | b'>' | b'/')
            {
                an_end += 1;
            }
            let eq = skip_space(b, an_end);
            if b.get(eq) != Some(&b'=') {
                write(out, &s[j..an_end]);
                j = an_end;
                continue;
            }
            let v = skip_space(b, eq + 1);
            let Some(&first) = b.get(v) else {
                write(out, &s[j..]);
                return cut(b.len());
            };
            // The value's text, where the attribute ends, and its quote (closed or cut).
            let (value, stop, quote) = if first == b'"' || first == b'\'' {
                match s[v + 1..].find(first as char) {
                    Some(p) => (&s[v + 1..v + 1 + p], v + 2 + p, Some((first, true))),
                    None => (&s[v + 1..], b.len(), Some((first, false))),
                }
            } else {
                let mut e = v;
                while e < b.len() && !b[e].is_ascii_whitespace() && b[e] != b'>' {
                    e += 1;
                }
                (&s[v..e], e, None)
            };
            if emit && self.is_secret_xml_name(&s[k..an_end]) {
                out.push_str(&s[j..v]);
                self.xml_secret(value, true);
                match quote {
                    Some((q, closed)) => {
                        out.push(char::from(q));
                        out.push_str(PLACEHOLDER);
                        if closed {
                            out.push(char::from(q));
                        }
                    }
                    None => out.push_str(PLACEHOLDER),
                }
            } else {
                write(out, &s[j..stop]);
            }
            j = stop;
        }
    }
}

/// Where `delim` starts at or after `from`, and where it ends; both the end of the text
/// when it is not there.
fn until(s: &str, from: usize, delim: &str) -> (usize, usize) {
    match s.get(from..).and_then(|rest| rest.find(delim)) {
        Some(p) => (from + p, from + p + delim.len()),
        None => (s.len(), s.len()),
    }
}

/// Past the `>` of a declaration (`<!DOCTYPE a [ <!ENTITY b "c"> ]>`), one of its own
/// `[...]` skipped.
fn declaration_end(b: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    for (j, &c) in b.iter().enumerate().skip(from) {
        match c {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'>' if depth == 0 => return j + 1,
            _ => {}
        }
    }
    b.len()
}

/// Whether a byte after `<` starts a tag's name (a letter, `_`, `:` or a non-ASCII
/// character), so that `a < b` stays text.
fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || !c.is_ascii()
}

/// Past a tag's name starting at `i`. It stops only at ASCII bytes, so always on a
/// character boundary.
fn name_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'>' | b'/' | b'<') {
        i += 1;
    }
    i
}

/// A text with its character and entity references read (`&amp;`, `&#38;`, `&#x26;`);
/// one it does not know is kept as written.
fn references_read(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let read = rest
            .get(1..rest.len().min(12))
            .and_then(|r| r.find(';'))
            .and_then(|semi| Some((reference(&rest[1..1 + semi])?, semi + 2)));
        match read {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => name.strip_prefix('#')?.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::super::tests::with_fields;
    use super::*;

    const NAMES: [&str; 3] = ["password", "apikey", "secret"];

    fn xml(text: &str) -> (String, Vec<String>) {
        with_fields(&NAMES, |r| r.xml(text))
    }

    /// The scanner alone, without the patterns run over every text afterwards.
    fn scanned(text: &str) -> (String, Vec<String>) {
        with_fields(&NAMES, |r| r.xml_scan(text))
    }

    // Regression: XML and SOAP bodies kept secret-named elements and attributes in clear.
    #[test]
    fn secret_elements_and_attributes_are_hidden() {
        let body = concat!(
            r#"<?xml version="1.0"?><!DOCTYPE e [ <!ENTITY x "y"> ]>"#,
            r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">"#,
            "<soap:Header><wsse:Login><wsse:Username>ann</wsse:Username>",
            r#"<wsse:Password Type="http://x/#PasswordText">pw-1</wsse:Password>"#,
            "</wsse:Login></soap:Header><soap:Body><ns:Call>",
            "<ns:ApiKey>pw-2</ns:ApiKey><!-- a note --><ns:City>Paris</ns:City>",
            "<ns:Secret><![CDATA[pw-3 <b>]]></ns:Secret>",
            r#"<user password="pw-4" name='bob' ns:apiKey='pw-5' hidden/>"#,
            "<secret><secret>pw-6</secret><b>pw-7</b></secret><c>a &lt; b</c>",
            "</ns:Call></soap:Body></soap:Envelope>",
        );
        let (out, secrets) = scanned(body);
        let p = PLACEHOLDER;
        let expected = concat!(
            r#"<?xml version="1.0"?><!DOCTYPE e [ <!ENTITY x "y"> ]>"#,
            r#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">"#,
            "<soap:Header><wsse:Login><wsse:Username>ann</wsse:Username>",
            r#"<wsse:Password Type="http://x/#PasswordText">{p}</wsse:Password>"#,
            "</wsse:Login></soap:Header><soap:Body><ns:Call>",
            "<ns:ApiKey>{p}</ns:ApiKey><!-- a note --><ns:City>Paris</ns:City>",
            "<ns:Secret>{p}</ns:Secret>",
            r#"<user password="{p}" name='bob' ns:apiKey='{p}' hidden/>"#,
            "<secret>{p}</secret><c>a &lt; b</c>",
            "</ns:Call></soap:Body></soap:Envelope>",
        )
        .replace("{p}", p);
        assert_eq!(out, expected);
        for s in ["pw-1", "pw-2", "pw-3 <b>", "pw-4", "pw-5", "pw-6", "pw-7"] {
            assert!(secrets.iter().any(|found| found == s), "{s}: {secrets:?}");
        }
    }

    #[test]
    fn references_in_secrets_are_read_too() {
        let (out, secrets) =
            xml("<a password='x&amp;y&#x21;z'><password>p&lt;&#51;&bad;q</password></a>");
        assert_eq!(
            out,
            format!("<a password='{PLACEHOLDER}'><password>{PLACEHOLDER}</password></a>")
        );
        for s in ["x&amp;y&#x21;z", "x&y!z", "p&lt;&#51;&bad;q", "p<3&bad;q"] {
            assert!(secrets.iter().any(|found| found == s), "{s}: {secrets:?}");
        }
    }

    #[test]
    fn text_that_is_not_markup_stays_as_it_is() {
        for text in [
            "a < b and c > d",
            "<p>x=1</p>",
            "<",
            "<>",
            "</>",
            "<!",
            "<?",
            "<!--",
            "<a",
        ] {
            assert_eq!(scanned(text).0, text);
        }
    }

    // Regression: a body cut at the size limit inside a secret element or attribute must not
    // leave the start of the secret in clear.
    #[test]
    fn cut_anywhere_no_secret_remains() {
        // The secret's letters are the only upper-case ones.
        let body = concat!(
            "<r><password>QZXJWV</password><c x='1' apikey = \"QZXJWV\" y=1/>",
            "<secret><![CDATA[QZXJWV]]><i>QZXJWV</i>QZXJWV</secret><o>ok</o>",
            "<p apikey=QZXJWV>ok</p></r>",
        );
        for cut in 0..=body.len() {
            let (out, _) = xml(&body[..cut]);
            assert!(
                !out.contains(['Q', 'Z', 'X', 'J', 'W', 'V']),
                "{cut}: {out}"
            );
        }
        assert!(xml(body).0.contains("<o>ok</o>"));
    }

    #[test]
    fn hostile_markup_is_read_in_linear_time() {
        let n = 100_000;
        let texts = [
            "<a".repeat(n),
            "<a>".repeat(n) + "<password>QZX",
            format!("<a{}password='QZX'>", " b=\"1\"".repeat(n)),
            "<password>".repeat(n) + "QZX",
            "<password><!--".repeat(n) + "QZX",
            "<![CDATA[".repeat(n),
            "<!DOCTYPE [".repeat(n),
            "&amp;".repeat(n),
            format!("<password>{}</password>", "&#x".repeat(n)),
        ];
        let started = Instant::now();
        for text in &texts {
            let (out, _) = xml(text);
            assert!(!out.contains("QZX"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panic(text in "[<>/=\"' !?\\[\\]a-z:&;#é-]{0,120}") {
            let (out, _) = with_fields(&["password", "a"], |r| r.xml(&text));
            prop_assert!(out.len() <= text.len() * (PLACEHOLDER.len() + 2) + PLACEHOLDER.len());
        }
    }
}

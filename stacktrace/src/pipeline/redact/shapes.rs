//! Secrets known by the shape of their value, whatever names them, as Sentry's default data
//! scrubber finds them: payment card numbers, IBANs, US social security numbers and the
//! bodies of PEM keys. [`shape_spans`] finds them; `redact_credentials` hides them.

use std::ops::Range;

use once_cell::sync::Lazy;
use regex::Regex;

use crate::model::event::PLACEHOLDER;

/// Card numbers with a vendor's prefix (American Express, Visa, Mastercard, Discover): 15
/// or 16 digits, a space or a dash allowed before each after the prefix. Relay's shape,
/// hidden whatever their check digit.
static VENDOR_CARDS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\b(?:3[47][0-9]|4[0-9]{3}|5[1-5][0-9]{2}|65[0-9]{2}|6011)(?:[-\s]?[0-9]){12}\b")
        .expect("valid regex")
});
/// Other card numbers: 13 to 19 digits in one run, or in groups of three to six a single
/// space or dash apart (`3782 822463 10005`); hidden when the Luhn check passes.
static DIGIT_GROUPS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\b(?:[0-9]{13,19}|[0-9]{3,6}(?:[ -][0-9]{3,6}){2,5})\b").expect("valid regex")
});
/// The countries of Relay's IBAN shape.
const IBAN_COUNTRIES: &str = "AT|AD|AE|AL|AZ|BA|BE|BG|BH|BR|BY|CH|CR|CY|CZ|DE|DK|DO|EE|EG|ES|FI|\
    FO|FR|GB|GE|GI|GL|GR|GT|HR|HU|IE|IL|IQ|IS|IT|JO|KW|KZ|LB|LC|LI|LT|LU|LV|LY|MC|MD|ME|MK|MR|\
    MT|MU|NL|NO|PK|PL|PS|PT|QA|RO|RU|RS|SA|SC|SE|SI|SK|SM|ST|SV|TL|TN|TR|UA|VA|VG|XK|DZ|AO|BJ|\
    BF|BI|CV|CM|CF|TD|KM|CG|CI|DJ|GQ|GA|GW|HN|IR|MG|ML|MA|MZ|NI|NE|SN|TG";
/// An IBAN written as one word: Relay's shape, hidden whatever its check digits.
static IBAN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"\b(?:{IBAN_COUNTRIES})[0-9]{{2}}[a-zA-Z0-9]{{11,29}}\b"
    ))
    .expect("valid regex")
});
/// An IBAN as it is printed, in groups of four (`DE89 3704 0044 0532 0130 00`): hidden when
/// its check digits are right.
static SPACED_IBAN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"\b(?:{IBAN_COUNTRIES})[0-9]{{2}}(?: [A-Za-z0-9]{{4}}){{2,7}}(?: [A-Za-z0-9]{{1,3}})?\b"
    ))
    .expect("valid regex")
});
/// A US social security number.
static US_SSN: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b").expect("valid regex"));
/// The first line of a PEM key, with the line break that ends it.
static PEM_BEGIN: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"-----BEGIN[A-Z ]+(PRIVATE|PUBLIC) KEY-----[\t ]*\r?\n?").expect("valid regex")
});
/// The last line of a PEM key, with the line break before it.
static PEM_END: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"\r?\n?-----END[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----").expect("valid regex")
});

/// Compiles the patterns.
pub(crate) fn prepare() {
    for pattern in [
        &VENDOR_CARDS,
        &DIGIT_GROUPS,
        &IBAN,
        &SPACED_IBAN,
        &US_SSN,
        &PEM_BEGIN,
        &PEM_END,
    ] {
        Lazy::force(pattern);
    }
}

/// Adds to `spans` where `text` holds a value of a secret's shape, and to `found` the forms
/// of those values that a text may hold besides the one written (a card's digits alone).
pub(crate) fn shape_spans(text: &str, spans: &mut Vec<Range<usize>>, found: &mut Vec<String>) {
    let b = text.as_bytes();
    if b.windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_digit())
    {
        let vendors = spans.len();
        for m in VENDOR_CARDS.find_iter(text) {
            card(m.range(), text, spans, found);
        }
        let vendors = vendors..spans.len();
        for m in DIGIT_GROUPS.find_iter(text) {
            // Both find in order: a number found by its prefix is looked up, not added twice.
            let known = spans[vendors.clone()]
                .binary_search_by_key(&(m.start(), m.end()), |r| (r.start, r.end));
            if known.is_err() && passes_luhn(m.as_str()) {
                card(m.range(), text, spans, found);
            }
        }
        spans.extend(IBAN.find_iter(text).map(|m| m.range()));
        for m in SPACED_IBAN.find_iter(text) {
            spans.extend(spaced_iban(m.as_str()).map(|len| m.start()..m.start() + len));
        }
        spans.extend(US_SSN.find_iter(text).map(|m| m.range()));
    }
    if text.contains("-----BEGIN") {
        pem_bodies(text, spans);
    }
}

/// A card number at `at`, and its digits alone.
fn card(at: Range<usize>, text: &str, spans: &mut Vec<Range<usize>>, found: &mut Vec<String>) {
    let digits: String = text[at.clone()]
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if digits.len() != at.len() && !found.contains(&digits) {
        found.push(digits);
    }
    spans.push(at);
}

/// Whether the digits of `text` (13 to 19 of them) pass the Luhn check of card numbers.
fn passes_luhn(text: &str) -> bool {
    let digits = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| u32::from(d - b'0'));
    let (mut sum, mut count) = (0, 0);
    for (i, d) in digits.rev().enumerate() {
        sum += match (i % 2 == 1, d * 2) {
            (true, twice) if twice > 9 => twice - 9,
            (true, twice) => twice,
            (false, _) => d,
        };
        count += 1;
    }
    (13..=19).contains(&count) && sum % 10 == 0
}

/// The length of the longest start of a spaced IBAN candidate, group by group, whose check
/// digits are right: a word of four after the IBAN is taken for one of its groups.
fn spaced_iban(candidate: &str) -> Option<usize> {
    let mut ends: Vec<usize> = candidate.match_indices(' ').map(|(i, _)| i).collect();
    ends.push(candidate.len());
    ends.into_iter()
        .rev()
        .take_while(|end| *end >= 15)
        .find(|end| iban_check_passes(&candidate[..*end]))
}

/// Whether an IBAN (spaces ignored) passes its mod-97 check.
fn iban_check_passes(iban: &str) -> bool {
    let compact: Vec<u8> = iban.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, rest) = compact.split_at(4);
    let mut remainder = 0u32;
    for b in rest.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            b'a'..=b'z' => u32::from(b - b'a') + 10,
            _ => return false,
        };
        let shift = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * shift + value) % 97;
    }
    remainder == 1
}

/// The bodies of PEM keys, their first and last lines kept. The body of a private key whose
/// last line is missing (a text cut inside it) runs to the end of the text.
fn pem_bodies(text: &str, spans: &mut Vec<Range<usize>>) {
    // Once no last line follows a first one, none follows a later one: not looked for again.
    let (mut at, mut ends_left) = (0, true);
    while let Some(begin) = PEM_BEGIN.captures_at(text, at) {
        let (Some(marker), Some(kind)) = (begin.get(0), begin.get(1)) else {
            break;
        };
        let found_end = ends_left
            .then(|| PEM_END.find_at(text, marker.end()))
            .flatten();
        ends_left = found_end.is_some();
        let end = match found_end {
            Some(end) => end.start(),
            None if kind.as_str() == "PRIVATE" => text.len(),
            None => {
                at = marker.end();
                continue;
            }
        };
        let body = marker.end()..end;
        if !body.is_empty() && &text[body.clone()] != PLACEHOLDER {
            spans.push(body);
        }
        at = end.max(marker.end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hidden(text: &str) -> Vec<&str> {
        let mut spans = Vec::new();
        shape_spans(text, &mut spans, &mut Vec::new());
        spans.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn cards_by_vendor_prefix_and_by_luhn_check() {
        assert_eq!(
            hidden("paid with 4111 1111 1111 1111, 5500-0000-0000-0004 and 378282246310005"),
            [
                "4111 1111 1111 1111",
                "5500-0000-0000-0004",
                "378282246310005"
            ]
        );
        // No vendor prefix, but the check passes: a card of another network.
        assert_eq!(hidden("card 3530111333300000 ok"), ["3530111333300000"]);
        // An order number, a number failing the check, a date and a phone number stay.
        for text in [
            "order 12345",
            "ref 1234567812345678",
            "on 2024-01-15",
            "call 555 123 4567",
        ] {
            assert!(hidden(text).is_empty(), "{text}");
        }
        let mut found = Vec::new();
        shape_spans("4111-1111-1111-1111", &mut Vec::new(), &mut found);
        assert_eq!(found, ["4111111111111111"]);
    }

    #[test]
    fn ibans_ssns_and_pem_bodies() {
        assert_eq!(
            hidden("to DE89370400440532013000 or GB82 WEST 1234 5698 7654 32 from ann"),
            ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32"]
        );
        // A word of four after a spaced IBAN is not part of it.
        assert_eq!(
            hidden("to BE68 5390 0754 7034 from ann"),
            ["BE68 5390 0754 7034"]
        );
        // Wrong check digits in the spaced form; a country that has no IBAN.
        assert!(hidden("to DE88 3704 0044 0532 0130 00").is_empty());
        assert!(hidden("to ZZ89370400440532013000").is_empty());
        assert_eq!(hidden("ssn 078-05-1120."), ["078-05-1120"]);
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----";
        assert_eq!(hidden(&format!("key: {key} done")), ["MIIEow\nIBAAK"]);
        let public = "-----BEGIN PUBLIC KEY-----\nMFkwEw\n-----END PUBLIC KEY-----";
        assert_eq!(hidden(public), ["MFkwEw"]);
        // A private key cut before its last line, after a public key cut the same way.
        assert_eq!(
            hidden("-----BEGIN PUBLIC KEY-----\nMFkw -----BEGIN PRIVATE KEY-----\nMIIEvQ"),
            ["MIIEvQ"]
        );
        assert_eq!(hidden("-----BEGIN PRIVATE KEY-----\nMIIEvQ"), ["MIIEvQ"]);
        let redacted =
            format!("-----BEGIN PRIVATE KEY-----\n{PLACEHOLDER}\n-----END PRIVATE KEY-----");
        assert!(hidden(&redacted).is_empty());
        assert!(hidden("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").is_empty());
    }

    proptest! {
        #[test]
        fn a_card_passing_the_check_is_hidden_however_grouped(
            digits in proptest::collection::vec(0u8..10, 12..18),
            group in 4usize..7,
            separator in "[ -]",
        ) {
            // The check digit that makes the number pass.
            let mut number: Vec<u8> = digits;
            let sum: u32 = number.iter().rev().enumerate().map(|(i, d)| {
                let d = u32::from(*d);
                if i % 2 == 0 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
            }).sum();
            number.push(((10 - sum % 10) % 10) as u8);
            let plain: String = number.iter().map(|d| char::from(b'0' + d)).collect();
            prop_assert!(passes_luhn(&plain));
            let grouped = plain
                .as_bytes()
                .chunks(group)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(&separator);
            // A last group shorter than three is not how cards are grouped.
            prop_assume!(plain.len().is_multiple_of(group) || plain.len() % group >= 3);
            let text = format!("order 12345 paid with {grouped}.");
            // Whole (a vendor's prefix may also find its start), and nothing else.
            let spans = hidden(&text);
            prop_assert!(spans.contains(&grouped.as_str()), "{:?}", spans);
            prop_assert!(spans.iter().all(|s| grouped.starts_with(s)), "{:?}", spans);
        }
    }
}

//! Where a request's stored texts are cut: a header value at [`MAX_HEADER_BYTES`], a body
//! at its limit. Each is cut only once every secret known is scrubbed from it (those the
//! redaction found anywhere in the event or request, and those of the settings), so that
//! a secret across the cut is hidden whole; a body already cut where it was captured loses
//! an end that could begin a secret or a URL's password, as no scrub can tell.

use std::borrow::Cow;

use serde_json::Value;

use crate::model::event::PLACEHOLDER;
use crate::pipeline::build::truncate_utf8;
use crate::pipeline::redact::credentials::url_password_start_at_end;
use crate::pipeline::redact::fields::Secrets;

/// The most bytes of one header value stored; a longer one is cut and marked.
pub(crate) const MAX_HEADER_BYTES: usize = 8 << 10;

/// A header value as stored: at most [`MAX_HEADER_BYTES`], cut on a character boundary and
/// marked `[truncated]` beyond, as a message is. Cut only once redacted and scrubbed: a cut
/// secret could no longer be found whole.
pub(crate) fn capped_header(value: Cow<'_, str>) -> Cow<'_, str> {
    if value.len() <= MAX_HEADER_BYTES {
        return value;
    }
    let mut cut = value.into_owned();
    truncate_utf8(&mut cut, MAX_HEADER_BYTES);
    cut.push_str(" [truncated]");
    Cow::Owned(cut)
}

/// A body's text as stored, once scrubbed: cut to `max` bytes on a character boundary, and
/// whether it is cut. `truncated` says whether the text was already cut where it was
/// captured; its end is then the start of what was not captured, and any end that begins
/// one of `secrets`, or a URL's password, is replaced by the placeholder.
pub(crate) fn cut_body<'t>(
    text: Cow<'t, str>,
    truncated: bool,
    max: usize,
    secrets: &Secrets,
) -> (Cow<'t, str>, bool) {
    if text.len() > max {
        let mut cut = text.into_owned();
        truncate_utf8(&mut cut, max);
        return (Cow::Owned(cut), true);
    }
    if truncated {
        let start = secrets
            .secret_start_at_end(&text)
            .max(url_password_start_at_end(&text));
        if start > 0 {
            let mut guarded = text.into_owned();
            guarded.truncate(guarded.len() - start);
            guarded.push_str(PLACEHOLDER);
            return (Cow::Owned(guarded), true);
        }
    }
    (text, truncated)
}

/// Cuts the request of an event's payload (`request.headers`, `request.body`), once
/// `secrets` are scrubbed from it: see [`capped_header`] and [`cut_body`].
pub(crate) fn cut_request(payload: &mut Value, max: usize, secrets: &Secrets) {
    let Some(request) = payload.get_mut("request").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(headers) = request.get_mut("headers").and_then(Value::as_object_mut) {
        for value in headers.values_mut() {
            if let Value::String(text) = value {
                if let Cow::Owned(cut) = capped_header(Cow::Borrowed(text.as_str())) {
                    *text = cut;
                }
            }
        }
    }
    let truncated = request.get("body_truncated") == Some(&Value::Bool(true));
    if let Some(Value::String(body)) = request.get_mut("body") {
        let (cut, truncated) = cut_body(Cow::Borrowed(body.as_str()), truncated, max, secrets);
        if let Cow::Owned(cut) = cut {
            *body = cut;
        }
        if truncated {
            request.insert("body_truncated".into(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: a 200 KB header value was stored whole.
    #[test]
    fn header_values_are_cut_at_the_limit_and_marked() {
        let short = "é".repeat(MAX_HEADER_BYTES / 2);
        assert_eq!(capped_header(Cow::Borrowed(&short)), short);
        let long = format!("a{}", "é".repeat(MAX_HEADER_BYTES));
        let cut = capped_header(Cow::Borrowed(&long));
        let kept = cut.strip_suffix(" [truncated]").expect("marked");
        assert!(kept.len() <= MAX_HEADER_BYTES && kept.len() > MAX_HEADER_BYTES - 4);
        assert!(long.starts_with(kept));
    }

    // Regression: a body was cut at its limit before the secrets were scrubbed, and a body
    // cut where it was captured kept the first bytes of a secret that went on past the cut.
    #[test]
    fn a_cut_body_keeps_no_start_of_a_secret() {
        let secrets = Secrets::new(vec!["relay-secret-9".into()]);
        // Cut where it was captured, inside the secret.
        let (text, cut) = cut_body(Cow::Borrowed("ctl body relay-sec"), true, 100, &secrets);
        assert_eq!((text.as_ref(), cut), ("ctl body **********", true));
        // A URL's password the capture cut, before its `@`.
        let (text, _) = cut_body(
            Cow::Borrowed("ctl db postgres://app:hun"),
            true,
            100,
            &secrets,
        );
        assert_eq!(text, "ctl db postgres://app:**********");
        // Whole, ending like a secret's start: nothing was cut, nothing is hidden.
        let (text, cut) = cut_body(Cow::Borrowed("ctl body relay-sec"), false, 100, &secrets);
        assert_eq!((text.as_ref(), cut), ("ctl body relay-sec", false));
        // Cut here, once scrubbed: the end is the text's own.
        let (text, cut) = cut_body(Cow::Borrowed("ctl body relay-sec"), false, 12, &secrets);
        assert_eq!((text.as_ref(), cut), ("ctl body rel", true));
        let mut payload = serde_json::json!({"request": {
            "headers": {"x-long": "h".repeat(MAX_HEADER_BYTES + 1), "x-short": "ctl"},
            "body": "ctl body relay-secret-",
            "body_truncated": true,
        }});
        cut_request(&mut payload, 100, &secrets);
        let request = &payload["request"];
        assert!(request["headers"]["x-long"]
            .as_str()
            .unwrap()
            .ends_with(" [truncated]"));
        assert_eq!(request["headers"]["x-short"], "ctl");
        assert_eq!(request["body"], "ctl body **********");
    }
}

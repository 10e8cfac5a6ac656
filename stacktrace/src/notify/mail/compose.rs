//! A queued notice turned into mails: the report rendered, split into parts, each part a
//! message with an escaped subject.

use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::checks::MailSettings;
use super::chunk::{chunks_of, part_marker};
use super::reporter::{MailReason, Notice, Reporter, StandardReporter};
use super::subject::{escaped_subject, MAX_SUBJECT_CHARS};
use super::throttle::Audience;
use crate::capture::user_hook::UserHook;
use crate::model::event::CrashEvent;
use crate::store::Group;

/// A report waiting for the sender.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) audience: Audience,
    pub(crate) reason: MailReason,
    pub(crate) event: CrashEvent,
    pub(crate) group: Option<Group>,
    pub(crate) unmailed: u64,
}

/// The subject without its part marker: prefix, reason and the event's title. A broken
/// link names this server as configured (`server_name`, else the machine's host name),
/// never the `Host` the request sent: a client could make it say anything, in a mail from
/// the company's own sender.
pub(crate) fn subject_of(
    prefix: &str,
    server_name: Option<&str>,
    reason: MailReason,
    event: &CrashEvent,
) -> String {
    let text = match reason {
        // The message says the kind and the path: `Broken link: /path`.
        MailReason::BrokenLink => {
            let server = server_name.unwrap_or(&event.context.hostname);
            match event.message.split_once(": ") {
                Some((kind, path)) if !server.is_empty() => format!("{kind} on {server}: {path}"),
                _ => event.message.clone(),
            }
        }
        other => format!("{}: {}", other.label(), event.title()),
    };
    escaped_subject(&format!("{prefix}{text}"), MAX_SUBJECT_CHARS)
}

/// The program's [`Reporter`], as its panics are said.
static REPORTER: UserHook = UserHook::new("Reporter", "the mail carries the standard report");

/// Renders with the user's reporter, falling back to the standard one if it panics.
fn rendered(reporter: &dyn Reporter, notice: &Notice<'_>) -> (String, Option<String>) {
    let user = REPORTER.call(|| (reporter.text(notice), reporter.html(notice)));
    user.unwrap_or_else(|| {
        let mut text = StandardReporter.text(notice);
        text.push_str("\n(The configured reporter panicked; this is the standard report.)\n");
        (text, StandardReporter.html(notice))
    })
}

/// The body of a mail that is one text part, quoted-printable, built so that the mail as a
/// server stores it decodes to exactly `part`: the client sends a line end before the final
/// dot, which ends the body's last line (RFC 5321, 4.1.1.4). So a part ending in a line
/// break is encoded without it (that line end stands for it), and any other part ends with
/// a soft line break (`=`), which that line end completes and decoding removes. Joined, the
/// parts are the report, with no line break gained and no word split.
fn single_part_body(part: &str) -> Body {
    let qp = ContentTransferEncoding::QuotedPrintable;
    // Quoted-printable takes any text; were it refused, lettre's own choice still sends it.
    let Ok(body) = Body::new_with_encoding(part.to_owned(), qp) else {
        return Body::new(part.to_owned());
    };
    let mut encoded = body.into_vec();
    if encoded.ends_with(b"\r\n") {
        encoded.truncate(encoded.len() - 2);
    } else {
        soft_break_at_end(&mut encoded);
    }
    Body::dangerous_pre_encoded(encoded, qp)
}

/// Ends quoted-printable text with a soft line break whose line end is still to come,
/// keeping the last line within 76 characters with the `=` (RFC 2045, 6.7).
fn soft_break_at_end(encoded: &mut Vec<u8>) {
    const MAX_LINE: usize = 76;
    let line_start = encoded
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .map_or(0, |i| i + 2);
    if encoded.len() - line_start >= MAX_LINE {
        // Break before the last encoded character: an `=XX` escape, or one octet.
        let len = encoded.len();
        let last = if len >= 3 && encoded[len - 3] == b'=' {
            len - 3
        } else {
            len - 1
        };
        encoded.splice(last..last, *b"=\r\n");
    }
    encoded.push(b'=');
}

fn text_part(text: String) -> SinglePart {
    SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .header(ContentTransferEncoding::QuotedPrintable)
        .body(text)
}

/// The mails of a job, in order, each with a unique `Message-ID`; a message that cannot be
/// built is skipped and said.
pub(crate) fn messages_of(s: &MailSettings, job: &Job) -> Vec<Message> {
    let to: &[Mailbox] = match job.audience {
        Audience::Admins => &s.admins,
        Audience::Managers => &s.managers,
    };
    if to.is_empty() {
        return Vec::new();
    }
    let notice = Notice::new(&job.event, job.group.as_ref(), job.reason, job.unmailed);
    let reporter: &dyn Reporter = match &s.reporter {
        Some(r) => &*r.0,
        None => &StandardReporter,
    };
    let (text, html) = rendered(reporter, &notice);
    let subject = subject_of(
        &s.subject_prefix,
        s.server_name.as_deref(),
        job.reason,
        &job.event,
    );
    let parts = chunks_of(&text, s.chunk_size);
    let total = parts.len();
    let audience = match job.audience {
        Audience::Admins => "admins",
        Audience::Managers => "managers",
    };
    let mut out = Vec::with_capacity(total);
    for (i, part) in parts.into_iter().enumerate() {
        let mut b = Message::builder()
            .from(s.from.clone())
            .subject(if total > 1 {
                format!("{subject} {}", part_marker(i, total))
            } else {
                subject.clone()
            })
            .message_id(Some(format!(
                "<{}.{}.{audience}@stacktrace>",
                job.event.id,
                i + 1
            )));
        for m in to {
            b = b.to(m.clone());
        }
        let built = match (&html, total) {
            (Some(h), 1) => b.multipart(
                MultiPart::alternative()
                    .singlepart(text_part(part.to_owned()))
                    .singlepart(
                        SinglePart::builder().header(ContentType::TEXT_HTML).body(
                            Body::new_with_encoding(
                                h.clone(),
                                ContentTransferEncoding::QuotedPrintable,
                            )
                            .unwrap_or_else(Body::new),
                        ),
                    ),
            ),
            _ => b
                .header(MIME_VERSION_1_0)
                .header(ContentType::TEXT_PLAIN)
                .body(single_part_body(part)),
        };
        match built {
            Ok(m) => out.push(m),
            Err(e) => crate::diag::say(&format!(
                "stacktrace: a report mail could not be built: {e}"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body as a server stores it: the line end the client sends before the final dot
    /// ends its last line.
    fn stored(part: &str) -> String {
        let mut bytes = single_part_body(part).into_vec();
        bytes.extend_from_slice(b"\r\n");
        String::from_utf8(bytes).expect("quoted-printable is ASCII")
    }

    #[test]
    fn a_part_ending_in_a_line_break_ends_with_that_one_line_end() {
        assert_eq!(stored("a\nb\n"), "a\r\nb\r\n");
        assert_eq!(stored("trailing space \n"), "trailing space=20\r\n");
    }

    #[test]
    fn a_part_cut_inside_a_line_ends_with_a_soft_line_break() {
        assert_eq!(stored("a\nwor"), "a\r\nwor=\r\n");
        assert_eq!(stored(""), "=\r\n");
        assert_eq!(stored("caf\u{e9}"), "caf=C3=A9=\r\n");
        // Lines stay within 76 characters, the `=` included, and no escape is split.
        for tail in ["", "\u{e9}", "\u{e9}\u{e9}"] {
            for n in 70..80 {
                let part = format!("{}{tail}", "x".repeat(n));
                let s = stored(&part);
                assert!(s.ends_with("=\r\n"), "{s:?}");
                for line in s.split("\r\n") {
                    assert!(line.len() <= 76, "{line:?} of {s:?}");
                }
                let unbroken = s.replace("=\r\n", "");
                assert_eq!(
                    unbroken,
                    format!("{}{}", "x".repeat(n), "=C3=A9".repeat(tail.chars().count()))
                );
            }
        }
    }
}

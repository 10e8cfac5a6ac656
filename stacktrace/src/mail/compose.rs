//! A queued notice turned into mails: the report rendered, split into parts, each part a
//! message with an escaped subject.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::checks::MailSettings;
use super::chunk::{chunks_of, part_marker};
use super::report::{MailReason, Notice, Reporter, StandardReporter};
use super::subject::{escaped_subject, MAX_SUBJECT_CHARS};
use super::throttle::Audience;
use crate::event::CrashEvent;
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

/// The subject without its part marker: prefix, reason and the event's title.
pub(crate) fn subject_of(prefix: &str, reason: MailReason, event: &CrashEvent) -> String {
    let text = match reason {
        // The message already says it: `Broken link on host: /path`.
        MailReason::BrokenLink => event.title().trim_start_matches("http.404: ").to_owned(),
        other => format!("{}: {}", other.label(), event.title()),
    };
    escaped_subject(&format!("{prefix}{text}"), MAX_SUBJECT_CHARS)
}

/// Renders with the user's reporter, falling back to the standard one if it panics.
fn rendered(reporter: &dyn Reporter, notice: &Notice<'_>) -> (String, Option<String>) {
    let user = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (reporter.text(notice), reporter.html(notice))
    }));
    user.unwrap_or_else(|_| {
        let mut text = StandardReporter.text(notice);
        text.push_str("\n(The configured reporter panicked; this is the standard report.)\n");
        (text, StandardReporter.html(notice))
    })
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
    let subject = subject_of(&s.subject_prefix, job.reason, &job.event);
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
            _ => b.singlepart(text_part(part.to_owned())),
        };
        match built {
            Ok(m) => out.push(m),
            Err(e) => crate::hook::say(&format!(
                "stacktrace: a report mail could not be built: {e}"
            )),
        }
    }
    out
}

//! The report a mail carries: the event's title, frames, request and context, in text and
//! HTML; and the [`Reporter`] trait to write your own.

use std::fmt::Write as _;

use serde_json::Value;

use crate::model::event::CrashEvent;
use crate::store::Group;

/// Why a mail goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MailReason {
    /// The first event of a new group (to admins).
    NewGroup,
    /// An event of a resolved group (to admins).
    Regression,
    /// A server error (`5xx`) of the HTTP layer (to admins).
    ServerError,
    /// A `404` reached through a link (to managers).
    BrokenLink,
}

impl MailReason {
    /// A short label: `New error`, `Regression`, `Server error`, `Broken link`.
    pub fn label(self) -> &'static str {
        match self {
            MailReason::NewGroup => "New error",
            MailReason::Regression => "Regression",
            MailReason::ServerError => "Server error",
            MailReason::BrokenLink => "Broken link",
        }
    }
}

/// What a report is about: the stored event (already redacted), its group, why it is
/// mailed, and how many occurrences of the group were held back since the last mail.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Notice<'a> {
    /// The event, as stored.
    pub event: &'a CrashEvent,
    /// Its group after the event, when the database told it.
    pub group: Option<&'a Group>,
    /// Why the mail goes out.
    pub reason: MailReason,
    /// Occurrences of the group not mailed since the last mail (the throttle).
    pub unmailed: u64,
}

impl<'a> Notice<'a> {
    /// A notice of `event`.
    pub fn new(
        event: &'a CrashEvent,
        group: Option<&'a Group>,
        reason: MailReason,
        unmailed: u64,
    ) -> Self {
        Notice {
            event,
            group,
            reason,
            unmailed,
        }
    }
}

/// Renders the body of a report mail. Reports longer than `chunk_size` are sent in parts as
/// text only; shorter ones carry the HTML rendering too, when there is one.
///
/// The event is already redacted: render what you like of it.
///
/// A reporter that panics costs no mail: that mail carries the [`StandardReporter`]'s
/// report, with a note saying so, and stderr gets one line naming `Reporter` (once per
/// process). Its panic is not stored as an event.
///
/// ```
/// use stacktrace::mail::{MailConfig, Notice, Reporter};
///
/// struct OneLine;
///
/// impl Reporter for OneLine {
///     fn text(&self, notice: &Notice<'_>) -> String {
///         format!("{}: {}\n", notice.reason.label(), notice.event.title())
///     }
/// }
///
/// let mail = MailConfig::default().admin("ops@example.com").reporter(OneLine);
/// # let _ = mail;
/// ```
pub trait Reporter: Send + Sync + 'static {
    /// The plain-text report.
    fn text(&self, notice: &Notice<'_>) -> String;

    /// The HTML report, if any (none by default).
    fn html(&self, notice: &Notice<'_>) -> Option<String> {
        let _ = notice;
        None
    }
}

/// A frame's source lines, numbered, its own line marked with `>`.
fn source_lines(f: &crate::model::event::Frame) -> Vec<String> {
    let (Some(source), Some(line)) = (&f.source, f.line) else {
        return Vec::new();
    };
    source
        .numbered(line)
        .map(|(n, text)| format!("    {} {n:>5} | {text}", if n == line { ">" } else { " " }))
        .collect()
}

/// The built-in report: error type and message, source chain, location, frames with the
/// application's own marked, arguments of captured calls, request, user, tags, extra data,
/// breadcrumbs, environment, and the group's count and first and last seen.
///
/// ```
/// use stacktrace::mail::{MailReason, Notice, Reporter, StandardReporter};
/// # fn report(event: &stacktrace::CrashEvent) {
/// let text = StandardReporter.text(&Notice::new(event, None, MailReason::NewGroup, 0));
/// assert!(text.starts_with(&event.title()));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StandardReporter;

/// `2026-03-01 12:00:00 UTC` of microseconds since the Unix epoch.
pub(crate) fn utc_text(us: u64) -> String {
    format!("{} UTC", crate::model::time::utc_text(us))
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The report's sections, as (heading, lines); shared by both renderings.
struct Section {
    heading: &'static str,
    lines: Vec<String>,
}

fn push(sections: &mut Vec<Section>, heading: &'static str, lines: Vec<String>) {
    if !lines.is_empty() {
        sections.push(Section { heading, lines });
    }
}

fn summary_lines(n: &Notice<'_>) -> Vec<String> {
    let e = n.event;
    let mut out = vec![format!("{}.", n.reason.label())];
    if n.unmailed > 0 {
        out.push(format!(
            "{} more occurrence{} of this group since the last mail were not mailed.",
            n.unmailed,
            if n.unmailed == 1 { "" } else { "s" }
        ));
    }
    if !e.error_type.is_empty() {
        out.push(format!("Error type: {}", e.error_type));
    }
    if let Some(l) = &e.location {
        out.push(format!("Location: {l}"));
    }
    out.push(format!("Level: {}", e.level));
    out.push(format!("Logger: {}", e.logger));
    out.push(format!("Event: {}", e.id));
    out.push(format!("Time: {}", utc_text(e.timestamp_us)));
    if !e.request_path.is_empty() {
        out.push(format!("Request path: {}", e.request_path));
    }
    if !e.user.is_empty() {
        out.push(format!("User: {}", e.user));
    }
    out
}

fn group_lines(n: &Notice<'_>) -> Vec<String> {
    match n.group {
        Some(g) => vec![
            format!("Fingerprint: {}", g.fingerprint),
            format!("Occurrences: {}", g.count),
            format!("First seen: {}", utc_text(g.first_seen_us)),
            format!("Last seen: {}", utc_text(g.last_seen_us)),
            format!(
                "Status: {}{}",
                g.status,
                if g.regressed { " (regressed)" } else { "" }
            ),
        ],
        None => vec![format!("Fingerprint: {}", n.event.fingerprint)],
    }
}

fn request_lines(payload: &Value) -> Vec<String> {
    let Some(r) = payload.get("request").and_then(Value::as_object) else {
        return Vec::new();
    };
    let field = |k: &str| r.get(k).map(json_text).unwrap_or_default();
    let mut url = field("path");
    let query = field("query");
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let mut out = vec![format!("{} {url}", field("method"))];
    let addr = field("client_addr");
    if !addr.is_empty() {
        out.push(format!("Client address: {addr}"));
    }
    if let Some(u) = r.get("user") {
        out.push(format!("User: {}", json_text(u)));
    }
    if let Some(h) = r.get("headers").and_then(Value::as_object) {
        out.push("Headers:".into());
        out.extend(h.iter().map(|(k, v)| format!("  {k}: {}", json_text(v))));
    }
    if let Some(b) = r.get("body") {
        out.push(format!("Body ({} bytes):", field("body_size")));
        out.extend(json_text(b).lines().map(|l| format!("  {l}")));
    }
    out
}

/// The environment's variables in a report, at most about this many characters; the rest
/// are counted, and shown in full with the event in the dashboard.
const MAX_ENVIRONMENT_CHARS: usize = 1500;
/// A variable's value in a report, at most this many characters.
const MAX_VARIABLE_CHARS: usize = 120;

/// The environment's lines, as many as fit `MAX_ENVIRONMENT_CHARS`: a CI runner's or a
/// service's environment alone would put a report in two mails.
fn environment_lines(env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = 0;
    for (i, (k, v)) in env.iter().enumerate() {
        let mut value: String = v.chars().take(MAX_VARIABLE_CHARS).collect();
        if value.len() < v.len() {
            value.push('…');
        }
        let line = format!("  {k} = {value}");
        chars += line.chars().count() + 3;
        if chars > MAX_ENVIRONMENT_CHARS {
            let left = env.len() - i;
            out.push(format!(
                "  ... {left} more variable{} (the event in full shows them)",
                if left == 1 { "" } else { "s" }
            ));
            break;
        }
        out.push(line);
    }
    out
}

fn sections_of(n: &Notice<'_>) -> Vec<Section> {
    let e = n.event;
    // Source lines for the frame where it failed: the first of the app's own.
    let culprit = e.frames.iter().position(|f| f.in_app);
    let mut s = Vec::new();
    push(&mut s, "Summary", summary_lines(n));
    push(
        &mut s,
        "Message",
        e.message.lines().map(str::to_owned).collect(),
    );
    push(
        &mut s,
        "Caused by",
        e.sources
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{}: {m}", i + 1))
            .collect(),
    );
    push(
        &mut s,
        "Frames (innermost first, * = application code)",
        e.frames
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                let at = match (&f.file, f.line) {
                    (Some(file), Some(line)) => format!(" at {file}:{line}"),
                    (Some(file), None) => format!(" at {file}"),
                    _ => String::new(),
                };
                let head = format!("{} {}{at}", if f.in_app { "*" } else { " " }, f.function);
                let source = if Some(i) == culprit {
                    source_lines(f)
                } else {
                    Vec::new()
                };
                std::iter::once(head).chain(source)
            })
            .collect(),
    );
    let mut calls = Vec::new();
    for c in &e.calls {
        calls.push(format!("{} ({}:{})", c.function, c.file, c.line));
        calls.extend(c.args.iter().map(|a| format!("  {} = {}", a.name, a.value)));
    }
    push(&mut s, "Captured calls (outermost first)", calls);
    push(&mut s, "Request", request_lines(&e.payload));
    push(
        &mut s,
        "Tags",
        e.tags.iter().map(|(k, v)| format!("{k} = {v}")).collect(),
    );
    let mut extra = Vec::new();
    for (k, v) in &e.extra {
        let text = json_text(v);
        let mut lines = text.lines();
        extra.push(format!("{k} = {}", lines.next().unwrap_or("")));
        extra.extend(lines.map(|l| format!("  {l}")));
    }
    push(&mut s, "Extra data", extra);
    if let Some(other) = e.payload.as_object() {
        push(
            &mut s,
            "Other data",
            other
                .iter()
                .filter(|(k, _)| k.as_str() != "request")
                .map(|(k, v)| format!("{k} = {}", json_text(v)))
                .collect(),
        );
    }
    push(
        &mut s,
        "Breadcrumbs (oldest first)",
        e.breadcrumbs
            .iter()
            .map(|b| {
                format!(
                    "{} {} [{}] {}",
                    utc_text(b.timestamp_us),
                    b.level,
                    b.category,
                    b.message
                )
            })
            .collect(),
    );
    push(&mut s, "Group", group_lines(n));
    let c = &e.context;
    let mut env = vec![
        format!("Program: {} {}", c.program, c.program_version),
        format!("Host: {}", c.hostname),
        format!("System: {} {}", c.os, c.arch),
        format!("Process: {}", c.pid),
        format!(
            "Thread: {} {}",
            c.thread_name.as_deref().unwrap_or("<unnamed>"),
            c.thread_id
        ),
    ];
    env.extend(environment_lines(&c.environment));
    push(&mut s, "Environment", env);
    s
}

impl Reporter for StandardReporter {
    fn text(&self, notice: &Notice<'_>) -> String {
        let mut out = format!("{}\n", notice.event.title());
        for section in sections_of(notice) {
            let _ = write!(out, "\n{}:\n", section.heading);
            for line in section.lines {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }

    fn html(&self, notice: &Notice<'_>) -> Option<String> {
        let mut out = String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
        let title = html_escaped(&notice.event.title());
        let _ = write!(
            out,
            "{title}</title></head>\n<body style=\"font-family:sans-serif\">\n<h1>{title}</h1>\n"
        );
        for section in sections_of(notice) {
            let _ = write!(
                out,
                "<h2>{}</h2>\n<pre style=\"background:#f6f6f6;padding:6px\">",
                html_escaped(section.heading)
            );
            for line in &section.lines {
                let escaped = html_escaped(line);
                if section.heading.starts_with("Frames") && line.starts_with('*') {
                    let _ = writeln!(out, "<b>{escaped}</b>");
                } else {
                    let _ = writeln!(out, "{escaped}");
                }
            }
            out.push_str("</pre>\n");
        }
        out.push_str("</body></html>\n");
        Some(out)
    }
}

pub(crate) use crate::escape::escape_html as html_escaped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_of_known_instants() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(1_709_294_400_000_000), "2024-03-01 12:00:00 UTC");
        assert_eq!(utc_text(951_782_400_000_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn frames_show_their_source_lines_with_the_line_marked() {
        let mut e = CrashEvent::sample(1, "boom");
        e.frames = vec![
            crate::model::event::Frame {
                function: "app::pay".into(),
                file: Some("src/pay.rs".into()),
                line: Some(12),
                in_app: true,
                source: Some(crate::model::source::SourceContext {
                    pre: vec!["let total = 3;".into()],
                    line: "if total > 2 { panic!(\"<too much>\") }".into(),
                    post: vec!["}".into()],
                }),
            },
            crate::model::event::Frame {
                function: "std::rt::lang_start".into(),
                ..Default::default()
            },
        ];
        let notice = Notice::new(&e, None, MailReason::NewGroup, 0);
        let text = StandardReporter.text(&notice);
        assert!(text.contains("   11 | let total = 3;"), "{text}");
        assert!(text.contains(">    12 | if total > 2"), "{text}");
        assert!(text.contains("   13 | }"), "{text}");
        let html = StandardReporter.html(&notice).unwrap();
        assert!(html.contains("&lt;too much&gt;") && !html.contains("<too much>"));
    }

    // Regression: every in-app frame's source lines and the whole environment put an
    // ordinary panic's report past one 5,000-character part: two mails for one panic.
    #[test]
    fn source_lines_of_the_culprit_only_and_the_environment_capped() {
        let mut e = CrashEvent::sample(1, "boom");
        let frame = |function: &str, line: &str| crate::model::event::Frame {
            function: function.into(),
            file: Some("src/pay.rs".into()),
            line: Some(12),
            in_app: true,
            source: Some(crate::model::source::SourceContext {
                pre: vec![],
                line: line.into(),
                post: vec![],
            }),
        };
        e.frames = vec![
            frame("app::pay", "culprit line"),
            frame("app::main", "caller line"),
        ];
        let env = (0..100)
            .map(|i| {
                (
                    format!("VAR_{i:03}"),
                    format!("value {i} {}", "x".repeat(200)),
                )
            })
            .collect();
        e.context.environment = std::borrow::Cow::Owned(env);
        let text = StandardReporter.text(&Notice::new(&e, None, MailReason::NewGroup, 0));
        assert!(text.contains("culprit line"), "{text}");
        assert!(!text.contains("caller line"), "{text}");
        // Control: the caller's frame is listed, without its lines.
        assert!(text.contains("* app::main at src/pay.rs:12"), "{text}");
        assert!(text.contains("VAR_000 = value 0 x"), "{text}");
        assert!(!text.contains("VAR_099"), "{text}");
        assert!(text.contains("more variables"), "{text}");
        assert!(text.chars().count() < 3000, "{}", text.chars().count());
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escaped("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}

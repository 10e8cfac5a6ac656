//! From what a source captured to the stored event: frames resolved, fields redacted,
//! secrets scrubbed, fingerprint computed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::thread::{Thread, ThreadId};

use serde_json::Value;

use crate::capture::pending::PendingEvent;
use crate::model::breadcrumb::Breadcrumb;
use crate::model::event::PLACEHOLDER;
use crate::model::event::{CapturedCall, CrashEvent, Frame, RuntimeContext};
use crate::pipeline::fingerprint::{fingerprint_of, fingerprint_of_key};
use crate::pipeline::process::ProcessInfo;
use crate::pipeline::redact::credentials::{
    redact_credentials, redact_credentials_in, redact_credentials_json,
};
use crate::pipeline::redact::fields::{hide, keep_hidden, FieldRedactor, Secrets};
use crate::pipeline::resolve::frames::frames_from_trace;

/// The most bytes of one argument's text kept in an event.
pub(crate) const MAX_ARGUMENT_BYTES: usize = 4096;

/// Cuts a text to at most `max` bytes on a character boundary; says whether it did.
pub(crate) fn truncate_utf8(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// How many threads' names and ids [`thread_texts`] remembers.
const RECENT_THREADS: usize = 8;

thread_local! {
    static RECENT_THREADS_SEEN: RefCell<Vec<(ThreadId, Option<String>, String)>> =
        const { RefCell::new(Vec::new()) };
}

/// A thread's name and its id as text (`ThreadId(N)`). A thread's name never changes and
/// its id is never reused, so the texts of recent threads are kept and copied.
fn thread_texts(thread: &Thread) -> (Option<String>, String) {
    let id = thread.id();
    let remembered = RECENT_THREADS_SEEN
        .try_with(|r| {
            let r = r.try_borrow().ok()?;
            r.iter()
                .find(|(t, _, _)| *t == id)
                .map(|(_, name, text)| (name.clone(), text.clone()))
        })
        .ok()
        .flatten();
    if let Some(texts) = remembered {
        return texts;
    }
    let texts = (thread.name().map(str::to_owned), format!("{id:?}"));
    let _ = RECENT_THREADS_SEEN.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if r.len() == RECENT_THREADS {
                r.remove(0);
            }
            r.push((id, texts.0.clone(), texts.1.clone()));
        }
    });
    texts
}

/// What building an event needs, made once at install.
#[derive(Debug)]
pub(crate) struct BuildSettings {
    /// Field names whose values are replaced.
    pub(crate) redactor: FieldRedactor,
    /// The values of the settings that hold secrets, scrubbed from everything stored.
    pub(crate) secrets: Secrets,
    /// Program and machine.
    pub(crate) process: ProcessInfo,
    /// The most bytes of a message or source kept (at least 1024).
    pub(crate) max_payload_bytes: usize,
    /// Source lines around the app's frames (off by a setting).
    pub(crate) source: crate::pipeline::resolve::source::SourceLines,
}

/// One redaction step over texts: by value, or scrubbing known secrets.
trait TextPass {
    fn text(&mut self, text: &mut String);
    /// Every string and every key of a JSON value, at any depth.
    fn json(&mut self, value: &mut Value);
    /// A key as this step leaves it, when it changes it (copied only then).
    fn renamed(&mut self, key: &str) -> Option<String>;
}

/// Credentials found by their form (see [`redact_credentials_in`]), collecting what they
/// hid.
struct ByValue<'a> {
    fields: &'a FieldRedactor,
    found: Vec<String>,
}

impl TextPass for ByValue<'_> {
    fn text(&mut self, text: &mut String) {
        redact_credentials_in(text, self.fields, &mut self.found);
    }
    fn json(&mut self, value: &mut Value) {
        redact_credentials_json(value, self.fields, &mut self.found);
    }
    fn renamed(&mut self, key: &str) -> Option<String> {
        match redact_credentials(key, self.fields, &mut self.found) {
            Cow::Owned(key) => Some(key),
            Cow::Borrowed(_) => None,
        }
    }
}

impl TextPass for &Secrets {
    fn text(&mut self, text: &mut String) {
        self.scrub(text);
    }
    fn json(&mut self, value: &mut Value) {
        self.scrub_json(value);
    }
    fn renamed(&mut self, key: &str) -> Option<String> {
        if !self.found_in(key) {
            return None;
        }
        let mut text = key.to_owned();
        self.scrub(&mut text);
        (text != key).then_some(text)
    }
}

/// Every text of an event that a program, a request or the environment supplies, keys of
/// maps included: each redaction step visits all of them through [`EventTexts::each`], so
/// that no text is left out of one step and not another.
struct EventTexts<'a> {
    logger: &'a mut String,
    error_type: &'a mut String,
    message: &'a mut String,
    sources: &'a mut Vec<String>,
    calls: &'a mut Vec<CapturedCall>,
    request_path: &'a mut String,
    user: &'a mut String,
    thread_name: &'a mut Option<String>,
    tags: &'a mut BTreeMap<String, String>,
    extra: &'a mut BTreeMap<String, Value>,
    breadcrumbs: &'a mut Vec<Breadcrumb>,
    payload: &'a mut Value,
    frames: &'a mut Vec<Frame>,
}

impl EventTexts<'_> {
    fn each(&mut self, pass: &mut impl TextPass) {
        for text in [
            &mut *self.logger,
            &mut *self.error_type,
            &mut *self.message,
            &mut *self.request_path,
            &mut *self.user,
        ] {
            pass.text(text);
        }
        if let Some(name) = self.thread_name.as_mut() {
            pass.text(name);
        }
        self.sources.iter_mut().for_each(|s| pass.text(s));
        for call in self.calls.iter_mut() {
            call.args.iter_mut().for_each(|a| pass.text(&mut a.value));
        }
        rekey(self.tags, pass);
        self.tags.values_mut().for_each(|v| pass.text(v));
        rekey(self.extra, pass);
        self.extra.values_mut().for_each(|v| pass.json(v));
        for crumb in self.breadcrumbs.iter_mut() {
            pass.text(&mut crumb.category);
            pass.text(&mut crumb.message);
            rekey(&mut crumb.data, pass);
            crumb.data.values_mut().for_each(|v| pass.json(v));
        }
        pass.json(self.payload);
        source_lines_each(self.frames, pass);
    }
}

/// The source lines of the frames through a redaction step.
fn source_lines_each(frames: &mut [Frame], pass: &mut impl TextPass) {
    for source in frames.iter_mut().filter_map(|f| f.source.as_mut()) {
        source.lines_mut().for_each(|l| pass.text(l));
    }
}

/// Gives the frames of an event resolved after it was built (a journaled panic) their
/// source lines, redacted as [`event_from_pending`] redacts them: credentials by form, the
/// values they hid, the settings' secrets and `secrets` (those of the event's calls).
pub(crate) fn add_source_lines(frames: &mut [Frame], rt: &BuildSettings, secrets: Vec<String>) {
    rt.source.add_to(frames);
    if frames.iter().all(|f| f.source.is_none()) {
        return;
    }
    let mut by_value = ByValue {
        fields: &rt.redactor,
        found: secrets,
    };
    source_lines_each(frames, &mut by_value);
    let secrets = rt.secrets.extended(by_value.found);
    if !secrets.is_empty() {
        source_lines_each(frames, &mut &*secrets);
    }
}

/// The keys of a map through a redaction step; the map is rebuilt only when one changes.
fn rekey<V>(map: &mut BTreeMap<String, V>, pass: &mut impl TextPass) {
    let renamed: Vec<(String, String)> = map
        .keys()
        .filter_map(|key| pass.renamed(key).map(|new| (key.clone(), new)))
        .collect();
    for (old, new) in renamed {
        if let Some(v) = map.remove(&old) {
            map.insert(new, v);
        }
    }
}

/// Turns a pending event into the event that is stored. Nothing of the pending event
/// reaches the disk except through here.
pub(crate) fn event_from_pending(p: PendingEvent, rt: &'static BuildSettings) -> CrashEvent {
    build_event(p, rt, false).0
}

/// As [`event_from_pending`], also giving the texts its redaction hid (the calls' secrets,
/// values hidden by their names, credentials found by their form), never written: what
/// [`add_source_lines`] must scrub from the source lines of frames resolved later.
pub(crate) fn event_and_hidden(
    p: PendingEvent,
    rt: &'static BuildSettings,
) -> (CrashEvent, Vec<String>) {
    build_event(p, rt, true)
}

fn build_event(
    mut p: PendingEvent,
    rt: &'static BuildSettings,
    keep_hidden_texts: bool,
) -> (CrashEvent, Vec<String>) {
    let mut frames = p
        .trace
        .take()
        .map(|t| frames_from_trace(&t))
        .unwrap_or_default();
    rt.source.add_to(&mut frames);

    let redactor = &rt.redactor;
    let max = rt.max_payload_bytes.max(1024);

    let mut message = p.message;
    let mut sources = p.sources;
    let mut calls = p.calls;
    let mut extra = p.extra;
    let mut tags = p.tags;
    let mut payload = p.payload;
    let mut breadcrumbs = p.breadcrumbs;

    // What is hidden by its name is also scrubbed wherever else the event quotes it (a
    // message, a source line).
    let mut hidden = Vec::new();
    for (k, v) in extra.iter_mut() {
        if redactor.matches(k) {
            hide(v, &mut hidden);
        } else {
            redactor.redact_json_keeping(v, &mut hidden);
        }
    }
    for (k, v) in tags.iter_mut() {
        if redactor.matches(k) {
            keep_hidden(v, &mut hidden);
            *v = PLACEHOLDER.to_owned();
        }
    }
    for call in &mut calls {
        for arg in &mut call.args {
            if redactor.matches(&arg.name) {
                keep_hidden(&arg.value, &mut hidden);
                arg.value = PLACEHOLDER.to_owned();
            }
        }
    }
    redactor.redact_json_keeping(&mut payload, &mut hidden);
    for crumb in &mut breadcrumbs {
        for (k, v) in crumb.data.iter_mut() {
            if redactor.matches(k) {
                hide(v, &mut hidden);
            } else {
                redactor.redact_json_keeping(v, &mut hidden);
            }
        }
    }

    let (mut thread_name, thread_id) = thread_texts(&p.thread);
    let (mut logger, mut error_type) = (p.logger, p.error_type);
    let (mut request_path, mut user) = (p.request_path, p.user);
    let mut texts = EventTexts {
        logger: &mut logger,
        error_type: &mut error_type,
        message: &mut message,
        sources: &mut sources,
        calls: &mut calls,
        request_path: &mut request_path,
        user: &mut user,
        thread_name: &mut thread_name,
        tags: &mut tags,
        extra: &mut extra,
        breadcrumbs: &mut breadcrumbs,
        payload: &mut payload,
        frames: &mut frames,
    };
    // By value, whatever names them: credentials in URLs, authentication values and
    // sensitive `name=value` pairs, in every text. What they hid is scrubbed from the rest.
    let mut found = std::mem::take(&mut p.secrets);
    found.append(&mut hidden);
    let by_name = found.len();
    let mut by_value = ByValue {
        fields: redactor,
        found,
    };
    texts.each(&mut by_value);
    // Hidden once, hidden everywhere: later events of the process are scrubbed of them too
    // (another event's source lines quoting a literal passed to a sensitive argument). What
    // a name hid is remembered; what a pattern found in free text only when it looks like a
    // secret rather than a word (`auth: failed` must not hide every later `failed`).
    let (named, by_form) = by_value.found.split_at(by_name);
    crate::pipeline::redact::remembered::remember(
        named.iter().map(String::as_str).chain(
            by_form
                .iter()
                .map(String::as_str)
                .filter(|v| crate::pipeline::redact::remembered::looks_like_a_secret(v)),
        ),
    );
    // With the values of the settings that hold secrets (the SMTP password), wherever they
    // are quoted.
    let kept = if keep_hidden_texts {
        by_value.found.clone()
    } else {
        Vec::new()
    };
    let secrets = rt.secrets.extended(by_value.found);
    if !secrets.is_empty() {
        texts.each(&mut &*secrets);
    }
    #[cfg(feature = "http")]
    crate::pipeline::cut::cut_request(&mut payload, rt.max_payload_bytes, &secrets);
    // Cut only after scrubbing: a cut secret could no longer be found whole.
    if truncate_utf8(&mut message, max) {
        message.push_str(" [truncated]");
    }
    for call in &mut calls {
        for arg in &mut call.args {
            if truncate_utf8(&mut arg.value, MAX_ARGUMENT_BYTES) {
                arg.value.push_str(" [truncated]");
            }
        }
    }
    for s in &mut sources {
        if truncate_utf8(s, max) {
            s.push_str(" [truncated]");
        }
    }

    let fingerprint = match &p.grouping {
        Some(key) => fingerprint_of_key(&error_type, key),
        None => fingerprint_of(&error_type, &frames, &message),
    };
    let info = &rt.process;
    let event = CrashEvent {
        id: p.id,
        timestamp_us: p.timestamp_us,
        level: p.level,
        logger,
        error_type,
        message,
        sources,
        location: p.location,
        request_path,
        user,
        fingerprint,
        frames,
        unresolved: None,
        calls,
        tags,
        extra,
        breadcrumbs,
        context: RuntimeContext {
            os: Cow::Borrowed(&info.os),
            arch: Cow::Borrowed(&info.arch),
            hostname: Cow::Borrowed(&info.hostname),
            program: Cow::Borrowed(&info.program),
            program_version: Cow::Borrowed(&info.program_version),
            thread_name,
            thread_id,
            pid: info.pid,
            environment: Cow::Borrowed(&info.environment),
        },
        payload,
    };
    (event, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        let mut s = "héllo".to_owned();
        assert!(truncate_utf8(&mut s, 2));
        assert_eq!(s, "h");
        let mut s = "abc".to_owned();
        assert!(!truncate_utf8(&mut s, 3));
    }

    #[test]
    fn thread_texts_are_each_threads_own() {
        let here = thread_texts(&std::thread::current());
        assert_eq!(here.1, format!("{:?}", std::thread::current().id()));
        // More threads than are remembered, each asked about twice.
        let threads: Vec<_> = (0..RECENT_THREADS + 3)
            .map(|i| {
                std::thread::Builder::new()
                    .name(format!("t{i}"))
                    .spawn(std::thread::park)
                    .unwrap()
            })
            .collect();
        for _ in 0..2 {
            for (i, t) in threads.iter().enumerate() {
                let (name, id) = thread_texts(t.thread());
                assert_eq!(name.as_deref(), Some(format!("t{i}").as_str()));
                assert_eq!(id, format!("{:?}", t.thread().id()));
            }
        }
        assert_eq!(thread_texts(&std::thread::current()), here);
        for t in threads {
            t.thread().unpark();
            t.join().unwrap();
        }
    }
}

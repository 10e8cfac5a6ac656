//! From what a source captured to the stored event: frames resolved, fields redacted,
//! secrets scrubbed, fingerprint computed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::thread::{Thread, ThreadId};

use serde_json::Value;

use crate::capture::pending::PendingEvent;
use crate::model::event::PLACEHOLDER;
use crate::model::event::{CrashEvent, RuntimeContext};
use crate::pipeline::fingerprint::fingerprint_of;
use crate::pipeline::process::ProcessInfo;
use crate::pipeline::redact::credentials::{redact_credentials_in, redact_credentials_json};
use crate::pipeline::redact::fields::{FieldRedactor, Secrets};
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
}

/// Turns a pending event into the event that is stored. Nothing of the pending event
/// reaches the disk except through here.
pub(crate) fn event_from_pending(mut p: PendingEvent, rt: &'static BuildSettings) -> CrashEvent {
    let frames = p
        .trace
        .take()
        .map(|t| frames_from_trace(&t))
        .unwrap_or_default();

    let redactor = &rt.redactor;
    let max = rt.max_payload_bytes.max(1024);

    let mut message = p.message;
    let mut sources = p.sources;
    let mut calls = p.calls;
    let mut extra = p.extra;
    let mut tags = p.tags;
    let mut payload = p.payload;
    let mut breadcrumbs = p.breadcrumbs;

    for (k, v) in extra.iter_mut() {
        if redactor.matches(k) {
            *v = Value::String(PLACEHOLDER.to_owned());
        } else {
            redactor.redact_json(v);
        }
    }
    for (k, v) in tags.iter_mut() {
        if redactor.matches(k) {
            *v = PLACEHOLDER.to_owned();
        }
    }
    for call in &mut calls {
        for arg in &mut call.args {
            if redactor.matches(&arg.name) {
                arg.value = PLACEHOLDER.to_owned();
            }
        }
    }
    redactor.redact_json(&mut payload);
    for crumb in &mut breadcrumbs {
        for (k, v) in crumb.data.iter_mut() {
            if redactor.matches(k) {
                *v = Value::String(PLACEHOLDER.to_owned());
            } else {
                redactor.redact_json(v);
            }
        }
    }

    // By value, whatever names them: credentials in URLs, authentication values and
    // sensitive `name=value` pairs, in every text. What they hid is scrubbed from the rest.
    let mut found = std::mem::take(&mut p.secrets);
    redact_credentials_in(&mut message, redactor, &mut found);
    for s in &mut sources {
        redact_credentials_in(s, redactor, &mut found);
    }
    for call in &mut calls {
        for arg in &mut call.args {
            redact_credentials_in(&mut arg.value, redactor, &mut found);
        }
    }
    for v in extra.values_mut() {
        redact_credentials_json(v, redactor, &mut found);
    }
    for v in tags.values_mut() {
        redact_credentials_in(v, redactor, &mut found);
    }
    redact_credentials_json(&mut payload, redactor, &mut found);
    redact_credentials_in(&mut p.request_path, redactor, &mut found);
    for crumb in &mut breadcrumbs {
        redact_credentials_in(&mut crumb.message, redactor, &mut found);
        for v in crumb.data.values_mut() {
            redact_credentials_json(v, redactor, &mut found);
        }
    }
    // With the values of the settings that hold secrets (the SMTP password), wherever they
    // are quoted.
    let secrets = rt.secrets.extended(found);

    if !secrets.is_empty() {
        secrets.scrub(&mut message);
        sources.iter_mut().for_each(|s| secrets.scrub(s));
        for call in &mut calls {
            call.args
                .iter_mut()
                .for_each(|a| secrets.scrub(&mut a.value));
        }
        extra.values_mut().for_each(|v| secrets.scrub_json(v));
        tags.values_mut().for_each(|v| secrets.scrub(v));
        secrets.scrub_json(&mut payload);
        secrets.scrub(&mut p.request_path);
        secrets.scrub(&mut p.user);
        for crumb in &mut breadcrumbs {
            secrets.scrub(&mut crumb.message);
            crumb.data.values_mut().for_each(|v| secrets.scrub_json(v));
        }
    }
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

    let fingerprint = fingerprint_of(&p.error_type, &frames, &message);
    let (thread_name, thread_id) = thread_texts(&p.thread);
    let info = &rt.process;
    CrashEvent {
        id: p.id,
        timestamp_us: p.timestamp_us,
        level: p.level,
        logger: p.logger,
        error_type: p.error_type,
        message,
        sources,
        location: p.location,
        request_path: p.request_path,
        user: p.user,
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
    }
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

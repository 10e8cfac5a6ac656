//! One event in one envelope, trimmed to the servers' size limit, gzipped.

use std::io::Write;

use serde_json::{json, Value};

/// The largest event item servers take (Sentry, Bugsink: 1 MiB after decompression).
pub(crate) const MAX_EVENT_BYTES: usize = 1 << 20;

/// The frames kept at each end of a stack that had to be cut.
const KEPT_FRAMES: usize = 50;
/// The characters kept of a long text that had to be cut.
const KEPT_TEXT: usize = 16 * 1024;

/// An event's envelope: its header (the event id and the time it was sent; no `dsn`,
/// which servers read from `X-Sentry-Auth` and some refuse beside it), the item header,
/// the event. The event is trimmed first when it is over [`MAX_EVENT_BYTES`].
pub(crate) fn envelope_of(mut event: Value, sent_at: &str) -> Vec<u8> {
    let mut body = serialised(&event);
    if body.len() > MAX_EVENT_BYTES {
        trim(&mut event);
        body = serialised(&event);
    }
    let id = event.get("event_id").cloned().unwrap_or(Value::Null);
    let header = json!({ "event_id": id, "sent_at": sent_at });
    let item = json!({ "type": "event", "length": body.len(), "content_type": "application/json" });
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(header.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(item.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&body);
    out.push(b'\n');
    out
}

fn serialised(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

fn size(v: &Value) -> usize {
    serialised(v).len()
}

/// Cuts an event to fit: breadcrumbs (oldest first), then extra, then the middle of its
/// stacks, then long texts; each step only when the event is still too large. What was
/// cut is said in `extra.stacktrace_trimmed`.
pub(crate) fn trim(event: &mut Value) {
    let mut cut: Vec<&'static str> = Vec::new();
    let fits = |e: &Value| size(e) <= MAX_EVENT_BYTES - 1024;
    if let Some(values) = event
        .pointer_mut("/breadcrumbs/values")
        .and_then(Value::as_array_mut)
    {
        while !values.is_empty() && !fits_len(values) {
            values.remove(0);
        }
    }
    if !fits(event) {
        if let Some(obj) = event.as_object_mut() {
            if obj.remove("breadcrumbs").is_some() {
                cut.push("breadcrumbs");
            }
        }
    }
    if !fits(event) {
        if let Some(obj) = event.as_object_mut() {
            if obj.remove("extra").is_some() {
                cut.push("extra");
            }
            if let Some(data) = obj.get_mut("request").and_then(Value::as_object_mut) {
                if data.remove("data").is_some() {
                    cut.push("request body");
                }
            }
        }
    }
    if !fits(event) {
        let mut any = false;
        for_each_stack(event, &mut |frames| {
            if frames.len() > 2 * KEPT_FRAMES {
                frames.drain(KEPT_FRAMES..frames.len() - KEPT_FRAMES);
                any = true;
            }
        });
        if any {
            cut.push("frames");
        }
    }
    if !fits(event) {
        cut_texts(event);
        cut.push("long texts");
    }
    if !cut.is_empty() {
        if let Some(obj) = event.as_object_mut() {
            let extra = obj.entry("extra").or_insert_with(|| json!({}));
            if let Some(extra) = extra.as_object_mut() {
                extra.insert("stacktrace_trimmed".into(), json!(cut));
            }
        }
    }
}

fn fits_len(values: &[Value]) -> bool {
    values.iter().map(size).sum::<usize>() <= MAX_EVENT_BYTES / 4
}

fn for_each_stack(event: &mut Value, f: &mut dyn FnMut(&mut Vec<Value>)) {
    for list in ["/exception/values", "/threads/values"] {
        if let Some(values) = event.pointer_mut(list).and_then(Value::as_array_mut) {
            for v in values {
                if let Some(frames) = v
                    .pointer_mut("/stacktrace/frames")
                    .and_then(Value::as_array_mut)
                {
                    f(frames);
                }
            }
        }
    }
}

fn cut_texts(v: &mut Value) {
    match v {
        Value::String(s) if s.len() > KEPT_TEXT => {
            let mut end = KEPT_TEXT;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("...");
        }
        Value::Array(a) => a.iter_mut().for_each(cut_texts),
        Value::Object(o) => o.values_mut().for_each(cut_texts),
        _ => {}
    }
}

/// Gzips a body.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The time as RFC 3339, UTC, for `sent_at`.
pub(crate) fn rfc3339_now() -> String {
    crate::model::time::rfc3339(crate::model::time::now_us())
}

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

/// The fixed start of a gzip member: magic, deflate, no flags, no time, no extra flags, an
/// unknown system (RFC 1952).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Gzips bodies one after another with one deflate state and one output buffer: a fresh
/// state allocates and zeroes its tables (hundreds of KiB) for every body, a reset one does
/// not, and the buffer grows to the largest body once.
#[derive(Debug)]
pub(crate) struct Gzip {
    deflate: flate2::Compress,
    out: Vec<u8>,
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip {
            deflate: flate2::Compress::new(flate2::Compression::fast(), false),
            out: Vec::new(),
        }
    }
}

impl Gzip {
    /// `bytes` as one gzip member, in the buffer until the next call.
    pub(crate) fn gzip(&mut self, bytes: &[u8]) -> &[u8] {
        self.deflate.reset();
        let out = &mut self.out;
        out.clear();
        out.reserve(GZIP_HEADER.len() + bytes.len() / 3 + 64);
        out.extend_from_slice(&GZIP_HEADER);
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            // The state was reset, so what it has read is where this body goes on.
            let read = usize::try_from(self.deflate.total_in()).unwrap_or(bytes.len());
            let rest = bytes.get(read..).unwrap_or_default();
            match self
                .deflate
                .compress_vec(rest, out, flate2::FlushCompress::Finish)
            {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => {}
                // Deflate over memory has no error of its own; were there one, a body
                // sent whole with the plain encoder is still a valid gzip.
                Err(_) => {
                    *out = gzip_afresh(bytes);
                    return out;
                }
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE: the length modulo 2^32.
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out
    }
}

/// Gzips a body with a state of its own.
fn gzip_afresh(bytes: &[u8]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut plain)
            .expect("a valid gzip member");
        plain
    }

    // One deflate state serves body after body: each comes out a whole gzip member that
    // decodes to its body, whatever came before it (empty, short, long, incompressible).
    #[test]
    fn one_state_gzips_body_after_body() {
        let mut noise = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.push(x as u8);
        }
        let bodies: Vec<Vec<u8>> = vec![
            b"{\"event_id\":\"1\"}\n".to_vec(),
            Vec::new(),
            "the same line again\n".repeat(50_000).into_bytes(),
            noise,
            b"x".to_vec(),
        ];
        let mut gzip = Gzip::default();
        for body in bodies.iter().chain(bodies.iter()) {
            let gz = gzip.gzip(body);
            assert_eq!(&gz[..2], &[0x1f, 0x8b]);
            assert_eq!(gunzip(gz), *body);
            assert_eq!(gunzip(&gzip_afresh(body)), *body);
        }
    }
}

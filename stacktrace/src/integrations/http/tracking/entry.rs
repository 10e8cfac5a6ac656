//! A queued request to its stored entry: the record's bytes read back, headers and bodies
//! redacted and scrubbed, repeated texts cached.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use serde_json::Value;

use super::super::request::{redact_headers, stored_body, user_index, HeaderParts};
use super::super::request_redaction::{Redaction, SensitiveBody};
use crate::model::event::EventId;
use crate::pipeline::cut::{capped_header, cut_body};
use crate::pipeline::redact::credentials::redact_credentials;
use crate::pipeline::redact::fields::Secrets;
use crate::runtime::install::runtime;
use crate::store::{EntryParts, Fnv};

/// One finished request as queued: fixed fields, then lengths and bytes.
pub(super) struct Record<'a> {
    pub(super) started_us: u64,
    pub(super) duration_us: u64,
    pub(super) status: u16,
    pub(super) caps: (u64, u64),
    pub(super) body_limit: usize,
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) query: Option<&'a str>,
    pub(super) client_addr: Option<&'a str>,
    pub(super) headers: Headers<'a>,
    pub(super) request_body: Option<(&'a [u8], u64)>,
    pub(super) response_body: (&'a [u8], u64),
    pub(super) response_type: Option<&'a [u8]>,
    /// The user as JSON; empty when none was set.
    pub(super) user: &'a [u8],
    pub(super) sensitive: SensitiveBody,
    /// The attached data as a JSON object; empty for none.
    pub(super) data: &'a [u8],
}

/// A record's start, duration and status: what differs between requests that repeat one
/// another.
pub(super) type Varying = (u64, u64, u16);

/// A record's headers: each value as its own name and value, the values of one header one
/// after another (see [`RequestHead`](crate::integrations::http::request::RequestHead)).
pub(super) struct Headers<'a> {
    pub(super) count: usize,
    pub(super) bytes: &'a [u8],
}

pub(super) const NONE: u32 = u32::MAX;
/// The length word's mark of a record that repeats the whole record before it in the same
/// buffer, but for its start, duration and status (see [`Record::put_repeat`]).
pub(super) const REPEAT: u64 = 1 << 63;
/// A record's length word, start, duration and status: all a repeating record holds.
pub(super) const HEAD: usize = 8 + 8 + 8 + 2;

pub(super) fn put(out: &mut Vec<u8>, part: Option<&[u8]>) {
    match part {
        Some(p) => {
            out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(0).to_le_bytes());
            out.extend_from_slice(p);
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Appends a record's length word, start, duration and status, in one copy.
fn put_head(out: &mut Vec<u8>, len: u64, (started_us, duration_us, status): Varying) {
    let mut head = [0u8; HEAD];
    head[..8].copy_from_slice(&len.to_le_bytes());
    head[8..16].copy_from_slice(&started_us.to_le_bytes());
    head[16..24].copy_from_slice(&duration_us.to_le_bytes());
    head[24..26].copy_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&head);
}

/// Reads a record's parts back; `None` past the end.
pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn part(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u32()? {
            NONE => Some(None),
            n => self.take(n as usize).map(Some),
        }
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        self.part()?
    }
    fn text(&mut self) -> Option<Option<&'a str>> {
        match self.part()? {
            Some(b) => std::str::from_utf8(b).ok().map(Some),
            None => Some(None),
        }
    }
}

impl<'a> Record<'a> {
    /// The record's start, duration and status.
    pub(super) fn varying(&self) -> Varying {
        (self.started_us, self.duration_us, self.status)
    }

    /// Queues the record whole: its length, start, duration and status, then `rest`, which
    /// [`write_rest`](Record::write_rest) gave.
    pub(super) fn put_whole(out: &mut Vec<u8>, own: Varying, rest: &[u8]) {
        put_head(out, (HEAD - 8 + rest.len()) as u64, own);
        out.extend_from_slice(rest);
    }

    /// Queues a record that repeats the whole record queued last in `out`: its length
    /// (marked [`REPEAT`]), start, duration and status, and nothing else.
    pub(super) fn put_repeat(out: &mut Vec<u8>, own: Varying) {
        put_head(out, REPEAT | (HEAD - 8) as u64, own);
    }

    /// Queues the record whole.
    #[cfg(test)]
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let mut rest = Vec::new();
        self.write_rest(&mut rest);
        Record::put_whole(out, self.varying(), &rest);
    }

    /// What follows the start, duration and status: two requests whose rest is the same
    /// make the same entry but for those three (see `entry_of`).
    pub(super) fn write_rest(&self, out: &mut Vec<u8>) {
        // The fixed fields, in one copy: the caps and the body limit.
        let mut fixed = [0u8; 24];
        fixed[..8].copy_from_slice(&self.caps.0.to_le_bytes());
        fixed[8..16].copy_from_slice(&self.caps.1.to_le_bytes());
        fixed[16..24].copy_from_slice(&(self.body_limit as u64).to_le_bytes());
        out.extend_from_slice(&fixed);
        put(out, Some(self.method.as_bytes()));
        put(out, Some(self.path.as_bytes()));
        put(out, self.query.map(str::as_bytes));
        put(out, self.client_addr.map(str::as_bytes));
        out.extend_from_slice(&(self.headers.count as u32).to_le_bytes());
        put(out, Some(self.headers.bytes));
        put(out, self.request_body.map(|(b, _)| b));
        out.extend_from_slice(&self.request_body.map_or(0, |(_, seen)| seen).to_le_bytes());
        put(out, Some(self.response_body.0));
        out.extend_from_slice(&self.response_body.1.to_le_bytes());
        put(out, self.response_type);
        put(out, Some(self.user));
        match &self.sensitive {
            SensitiveBody::Nothing => out.push(0),
            SensitiveBody::All => out.push(1),
            SensitiveBody::Names(names) => {
                out.push(2);
                out.extend_from_slice(&(names.len() as u32).to_le_bytes());
                for n in names {
                    put(out, Some(n.as_bytes()));
                }
            }
        }
        put(out, Some(self.data));
    }

    /// The start, duration and status of the whole record at `at`, and what follows them
    /// to its end: two records whose rest is the same make the same entry but for those
    /// three (see `entry_of`). `None` when no whole record can be read there.
    pub(super) fn split(bytes: &[u8], at: usize) -> Option<(Varying, &[u8])> {
        let (repeat, own, end) = Record::own(bytes, at)?;
        if repeat {
            return None;
        }
        Some((own, bytes.get(at + HEAD..end)?))
    }

    /// Whether the record at `at` repeats the whole one before it, its start, duration and
    /// status, and where the next record starts; `None` when it cannot be read so far.
    pub(super) fn own(bytes: &[u8], at: usize) -> Option<(bool, Varying, usize)> {
        let mut c = Cursor { bytes, at };
        let len = c.u64()?;
        let repeat = len & REPEAT != 0;
        let len = usize::try_from(len & !REPEAT).ok()?;
        let end = c.at.checked_add(len).filter(|&end| end <= bytes.len())?;
        if len < HEAD - 8 || (repeat && len != HEAD - 8) {
            return None;
        }
        let started_us = c.u64()?;
        let duration_us = c.u64()?;
        let status = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
        Some((repeat, (started_us, duration_us, status), end))
    }

    /// The record at `at`, and where the next one starts.
    pub(super) fn read(bytes: &'a [u8], at: usize) -> Option<(Record<'a>, usize)> {
        let mut c = Cursor { bytes, at };
        let len = c.u64()?;
        if len & REPEAT != 0 {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        let end = c.at.checked_add(len)?;
        let mut c = Cursor {
            bytes: bytes.get(..end)?,
            at: c.at,
        };
        let started_us = c.u64()?;
        let duration_us = c.u64()?;
        let status = u16::from_le_bytes(c.take(2)?.try_into().ok()?);
        let caps = (c.u64()?, c.u64()?);
        let body_limit = usize::try_from(c.u64()?).ok()?;
        let method = c.text()??;
        let path = c.text()??;
        let query = c.text()?;
        let client_addr = c.text()?;
        let count = c.u32()? as usize;
        let headers = Headers {
            count,
            bytes: c.bytes()?,
        };
        let request_body = c.part()?;
        let request_seen = c.u64()?;
        let response_body = (c.bytes()?, c.u64()?);
        let response_type = c.part()?;
        let user = c.bytes()?;
        let sensitive = match c.take(1)?[0] {
            0 => SensitiveBody::Nothing,
            1 => SensitiveBody::All,
            2 => {
                let n = c.u32()? as usize;
                let mut names = Vec::new();
                for _ in 0..n {
                    names.push(c.text()??.to_owned());
                }
                SensitiveBody::Names(names)
            }
            _ => return None,
        };
        let data = c.bytes()?;
        if c.at != end {
            return None;
        }
        Some((
            Record {
                started_us,
                duration_us,
                status,
                caps,
                body_limit,
                method,
                path,
                query,
                client_addr,
                headers,
                request_body: request_body.map(|b| (b, request_seen)),
                response_body,
                response_type,
                user,
                sensitive,
                data,
            },
            end,
        ))
    }
}

impl<'a> Headers<'a> {
    /// Each value with its header's name, the values of one header one after another.
    pub(super) fn pairs(&self) -> HeaderParts<'a> {
        HeaderParts::new(self.bytes, self.count)
    }
}

/// A header value as text; empty when there is none.
pub(super) fn lossy(v: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    v.map(String::from_utf8_lossy).unwrap_or_default()
}

/// Header values as stored, with the secrets their redaction found, for the requests of
/// one take from the inbox: most values repeat from request to request (host, user agent,
/// accept). Only for requests without sensitive body parameters, which a cookie's
/// redaction reads.
#[derive(Default)]
pub(super) struct HeaderCache<'b> {
    /// The place in `stored` of each name and value as received.
    pub(super) places: HashMap<(&'b str, &'b [u8]), usize, BuildHasherDefault<Fnv>>,
    pub(super) stored: Vec<(String, Vec<String>)>,
    /// The previous request's headers as received, with their places: looked at first.
    pub(super) previous: Vec<(&'b str, &'b [u8], usize)>,
    /// The buffer the next request's headers go into.
    pub(super) spare: Vec<(&'b str, &'b [u8], usize)>,
}

/// What the entries of one take from the inbox share: an endpoint under load mostly
/// answers alike, and its clients send alike.
#[derive(Default)]
pub(super) struct TakeCache<'b> {
    headers: HeaderCache<'b>,
    /// The last request body without sensitive parameters, as received and as stored.
    request: Option<(BodyKey<'b>, Stored)>,
    /// The last response body, as received and as stored.
    response: Option<(BodyKey<'b>, Stored)>,
}

/// A body as received: content type, bytes, bytes seen, bytes kept.
pub(super) type BodyKey<'b> = (Option<&'b [u8]>, &'b [u8], u64, usize);

/// A body as stored, with the secrets its redaction found.
pub(super) struct Stored {
    text: String,
    truncated: bool,
    secrets: Vec<String>,
}

/// The body of `key` as stored, redacted as a body of its own (no sensitive parameters)
/// unless `slot` holds it already.
pub(super) fn cached_body<'c, 'b>(
    slot: &'c mut Option<(BodyKey<'b>, Stored)>,
    key: BodyKey<'b>,
    fresh: impl FnOnce() -> Redaction<'c>,
) -> &'c Stored {
    if slot.as_ref().is_some_and(|(last, _)| *last != key) {
        *slot = None;
    }
    &slot
        .get_or_insert_with(|| {
            let mut r = fresh();
            let (ct, bytes, seen, _) = key;
            // All that was captured: cut at the limit once scrubbed (see `entry_of`).
            let b = stored_body(&mut r, bytes, seen, &lossy(ct), bytes.len());
            let stored = Stored {
                text: b.text,
                truncated: b.truncated,
                secrets: r.secrets,
            };
            (key, stored)
        })
        .1
}

/// Each header once, in the order first seen, its values redacted and joined by `, `, as
/// `redact_headers` gives them; values already in `cache` are not redacted again. The
/// secrets found in them are added to `secrets`.
pub(super) fn cached_headers<'b: 'c, 'c>(
    r: &Redaction<'_>,
    headers: &Headers<'b>,
    cache: &'c mut HeaderCache<'b>,
    secrets: &mut Vec<String>,
) -> Vec<(&'b str, Cow<'c, str>)> {
    // This request's headers go into the buffer of the one before last, so that no
    // request allocates one.
    let mut current = std::mem::take(&mut cache.spare);
    current.clear();
    for (i, (name, value)) in headers.pairs().enumerate() {
        let place = match cache.previous.get(i) {
            Some(&(n, v, place)) if n == name && v == value => place,
            _ => {
                let stored = &mut cache.stored;
                *cache.places.entry((name, value)).or_insert_with(|| {
                    let mut fresh = r.fresh();
                    let text = fresh.header(name, value);
                    stored.push((text, fresh.secrets));
                    stored.len() - 1
                })
            }
        };
        current.push((name, value, place));
    }
    cache.spare = std::mem::replace(&mut cache.previous, current);
    let cache: &'c HeaderCache<'b> = cache;
    let mut out: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(cache.previous.len());
    for &(name, _, place) in &cache.previous {
        let (value, found) = &cache.stored[place];
        secrets.extend_from_slice(found);
        match out.last_mut() {
            Some((last, joined)) if *last == name => {
                let joined = joined.to_mut();
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => out.push((name, Cow::Borrowed(value.as_str()))),
        }
    }
    out
}

/// `text` without `secrets`, copied only when it held one.
pub(super) fn scrubbed<'t>(secrets: &Secrets, text: Cow<'t, str>) -> Cow<'t, str> {
    if !secrets.found_in(&text) {
        return text;
    }
    let mut owned = text.to_string();
    secrets.scrub(&mut owned);
    if owned == text {
        text
    } else {
        Cow::Owned(owned)
    }
}

/// Builds the stored entry of a finished request, redacted, and gives its parts to `store`;
/// `None` (and nothing given) when it cannot be built.
///
/// The entry depends on the record and the settings alone, and on the record's start,
/// duration and status only for those fields: a record whose other bytes are those of the
/// record before makes that record's entry with its own three (see `Record::split`).
///
/// What the redaction finds in the request (a password in the form, a bearer token, a
/// value attached under a sensitive name) is then hidden in every part, as in a crash
/// event: a handler may echo it in its response or attach it under a name that is not
/// sensitive. What it finds in the response is hidden in the response only: a guess made
/// in free text (`Basic plan`) must not rewrite the request's path.
pub(super) fn entry_of<'b>(
    record: &Record<'b>,
    id: EventId,
    cache: &mut TakeCache<'b>,
    store: impl FnOnce(&EntryParts<'_>),
) -> Option<()> {
    let rt = runtime()?;
    let c = &rt.config;
    let nothing = SensitiveBody::Nothing;
    let mut r = Redaction::new(&rt.build.redactor, &c.redact_headers, &record.sensitive);
    let mut found = Vec::new();
    let query = record.query.map(|q| r.pairs(q)).unwrap_or_default();
    let plain = record.sensitive == SensitiveBody::Nothing;
    let mut headers: Vec<(&str, Cow<'_, str>)> = if plain {
        cached_headers(&r, &record.headers, &mut cache.headers, &mut found)
    } else {
        redact_headers(&mut r, record.headers.pairs())
            .into_iter()
            .map(|(n, v)| (n, Cow::Owned(v)))
            .collect()
    };
    let limit = record.body_limit;
    let mut request_body: Option<(Cow<'_, str>, bool)> =
        record.request_body.map(|(bytes, seen)| {
            let ct = record
                .headers
                .pairs()
                .find(|(n, _)| *n == http::header::CONTENT_TYPE.as_str())
                .map(|(_, v)| v);
            if plain {
                let fresh = || Redaction::new(&rt.build.redactor, &c.redact_headers, &nothing);
                let b = cached_body(&mut cache.request, (ct, bytes, seen, limit), fresh);
                found.extend_from_slice(&b.secrets);
                (Cow::Borrowed(b.text.as_str()), b.truncated)
            } else {
                let b = stored_body(&mut r, bytes, seen, &lossy(ct), bytes.len());
                (Cow::Owned(b.text), b.truncated)
            }
        });
    // The response body is redacted as its own: the request's sensitive parameters do not
    // name its fields.
    let mut response_body: Option<(Cow<'_, str>, bool)> = (limit > 0).then(|| {
        let (bytes, seen) = record.response_body;
        let fresh = || Redaction::new(&rt.build.redactor, &c.redact_headers, &nothing);
        let b = cached_body(
            &mut cache.response,
            (record.response_type, bytes, seen, limit),
            fresh,
        );
        (Cow::Borrowed(b.text.as_str()), b.truncated)
    });
    let user = if record.user.is_empty() {
        String::new()
    } else {
        let u: Value = serde_json::from_slice(record.user).ok()?;
        user_index(&u, &c.user_field)
    };
    let mut data = if record.data.is_empty() {
        None
    } else {
        let mut data: Value = serde_json::from_slice(record.data).ok()?;
        r.json_value(&mut data);
        Some(data)
    };
    // The path and the user, by value as every text is.
    let mut path = redact_credentials(record.path, &rt.build.redactor, &mut found);
    let user = match redact_credentials(&user, &rt.build.redactor, &mut found) {
        Cow::Owned(redacted) => redacted,
        Cow::Borrowed(_) => user,
    };
    found.append(&mut r.secrets);
    // Also as a JSON text, a URL or HTML would quote them: a body echoing `pa"ss` holds
    // `pa\"ss` (see `Secrets::new`). With the secrets of the settings (the SMTP password).
    let secrets = rt.build.secrets.extended(found);
    if let Some(data) = &mut data {
        secrets.scrub_json(data);
    }
    let data = data
        .map(|d| serde_json::to_string(&d).unwrap_or_default())
        .unwrap_or_default();
    let (mut query, mut user) = (Cow::Owned(query), Cow::Owned(user));
    if !secrets.is_empty() {
        for (_, v) in &mut headers {
            *v = scrubbed(&secrets, std::mem::take(v));
        }
        for (t, _) in request_body.iter_mut().chain(response_body.iter_mut()) {
            *t = scrubbed(&secrets, std::mem::take(t));
        }
        for t in [&mut path, &mut query, &mut user] {
            *t = scrubbed(&secrets, std::mem::take(t));
        }
    }
    // Cut only once scrubbed: a secret cut in two could no longer be found.
    for (_, v) in &mut headers {
        *v = capped_header(std::mem::take(v));
    }
    for (t, cut) in request_body.iter_mut().chain(response_body.iter_mut()) {
        let (text, truncated) = cut_body(std::mem::take(t), *cut, limit, &secrets);
        (*t, *cut) = (text, truncated);
    }
    store(&EntryParts {
        id,
        timestamp_us: record.started_us,
        duration_us: record.duration_us,
        status: record.status,
        method: record.method,
        path: &path,
        query: &query,
        user: &user,
        client_addr: record.client_addr.unwrap_or_default(),
        request_body: request_body.as_ref().map(|(t, cut)| (&**t, *cut)),
        response_body: response_body.as_ref().map(|(t, cut)| (&**t, *cut)),
        headers: &headers,
        data: &data,
    });
    Some(())
}

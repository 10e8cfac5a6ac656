//! Reading blocks back: the head, the entries, each entry decoded.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;

use super::pack::{
    BLOCK_VERSION, PACKED_MIN, REQUEST_BODY, REQUEST_BODY_CUT, RESPONSE_BODY, RESPONSE_BODY_CUT,
    START_APART,
};
use crate::model::event::EventId;
use crate::store::keys;
use crate::store::tracking::log::TrackedRequest;

/// Reads a block's parts in order; every read checks the bounds.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "needs {n} bytes at offset {} of {}",
                    self.at,
                    self.bytes.len()
                )
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn len(&mut self) -> Result<usize, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= self.bytes.len())
                    .ok_or_else(|| format!("length {n} is past the end"));
            }
        }
        Err("a length runs past 64 bits".into())
    }

    /// A LEB128 number of up to 64 bits.
    pub(super) fn num(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number runs past 64 bits".into())
    }

    /// A text of the block's table, by its place.
    fn text_of(&mut self, table: &[&'a str]) -> Result<&'a str, String> {
        let n = self.num()?;
        usize::try_from(n)
            .ok()
            .and_then(|n| table.get(n))
            .copied()
            .ok_or_else(|| format!("text {n} of {}", table.len()))
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|e| format!("text at offset {at}: {e}"))
    }

    pub(super) fn done(&self) -> Result<(), String> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes left over at offset {}",
                self.bytes.len() - self.at,
                self.at
            ))
        }
    }
}

/// A block's count and oldest id, read without its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHead {
    pub(crate) count: usize,
    pub(crate) min: EventId,
}

/// Reads the head of a value of [`BLOCK_VERSION`]; the reader is left at its texts.
pub(super) fn read_head(value: &[u8]) -> Result<(BlockHead, Reader<'_>), String> {
    let mut r = Reader {
        bytes: value,
        at: 1,
    };
    let count = r.len()?;
    let min = EventId::from_bytes(r.array()?);
    Ok((BlockHead { count, min }, r))
}

/// A block's head; a value of format version 1 is one entry under its own id.
pub(crate) fn block_head(key: EventId, value: &[u8]) -> Result<BlockHead, String> {
    match value.first() {
        Some(&BLOCK_VERSION) => read_head(value).map(|(head, _)| head),
        Some(&keys::FORMAT_VERSION) => Ok(BlockHead { count: 1, min: key }),
        Some(v) => Err(format!(
            "format version {v}, this build reads {} and {BLOCK_VERSION}",
            keys::FORMAT_VERSION
        )),
        None => Err("empty value".into()),
    }
}

/// One entry of a block, decoded as far as asked.
#[derive(Debug)]
pub(crate) enum Slot<'a> {
    /// A packed entry, with its block's texts.
    Packed {
        entry: &'a [u8],
        texts: Rc<[&'a str]>,
    },
    /// A value of format version 1, decoded.
    Json(Box<TrackedRequest>),
}

/// What a query filters on, read without the rest of the entry.
#[derive(Debug)]
pub(crate) struct EntryHead<'a> {
    pub(crate) id: EventId,
    pub(crate) duration_us: u64,
    pub(crate) status: u16,
    pub(crate) path: &'a str,
}

/// A packed entry's fields up to its path.
pub(super) fn packed_head<'a>(
    r: &mut Reader<'a>,
    texts: &[&'a str],
) -> Result<(EntryHead<'a>, u64, u8, &'a str), String> {
    let id = EventId::from_bytes(r.array()?);
    let duration_us = r.num()?;
    let status = u16::try_from(r.num()?).map_err(|_| "status past 65535".to_owned())?;
    let flags = r.take(1)?[0];
    let timestamp_us = if flags & START_APART != 0 {
        u64::from_le_bytes(r.array()?)
    } else {
        id.timestamp_us()
    };
    let method = r.text_of(texts)?;
    let path = r.text_of(texts)?;
    Ok((
        EntryHead {
            id,
            duration_us,
            status,
            path,
        },
        timestamp_us,
        flags,
        method,
    ))
}

impl Slot<'_> {
    pub(crate) fn head(&self) -> Result<EntryHead<'_>, String> {
        match self {
            Slot::Json(r) => Ok(EntryHead {
                id: r.id,
                duration_us: r.duration_us,
                status: r.status,
                path: &r.path,
            }),
            Slot::Packed { entry, texts } => {
                let mut r = Reader {
                    bytes: entry,
                    at: 0,
                };
                packed_head(&mut r, texts).map(|(head, ..)| head)
            }
        }
    }

    /// The whole entry.
    pub(crate) fn request(self) -> Result<TrackedRequest, String> {
        match self {
            Slot::Json(r) => Ok(*r),
            Slot::Packed { entry, texts } => decode_packed(entry, &texts),
        }
    }
}

pub(super) fn decode_packed(bytes: &[u8], texts: &[&str]) -> Result<TrackedRequest, String> {
    let mut r = Reader { bytes, at: 0 };
    let (head, timestamp_us, flags, method) = packed_head(&mut r, texts)?;
    let query = r.text_of(texts)?.to_owned();
    let user = r.text_of(texts)?.to_owned();
    let client_addr = r.text_of(texts)?.to_owned();
    let request_body = if flags & REQUEST_BODY != 0 {
        Some(r.text_of(texts)?.to_owned())
    } else {
        None
    };
    let response_body = if flags & RESPONSE_BODY != 0 {
        Some(r.text_of(texts)?.to_owned())
    } else {
        None
    };
    let mut headers = BTreeMap::new();
    for _ in 0..r.len()? {
        let name = r.text_of(texts)?.to_owned();
        headers.insert(name, r.text_of(texts)?.to_owned());
    }
    let data_text = r.text_of(texts)?;
    let data = if data_text.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_str(data_text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("data is not a JSON object".into()),
            Err(e) => return Err(format!("data: {e}")),
        }
    };
    r.done()?;
    Ok(TrackedRequest {
        id: head.id,
        timestamp_us,
        method: method.to_owned(),
        path: head.path.to_owned(),
        query,
        status: head.status,
        duration_us: head.duration_us,
        user,
        client_addr,
        headers,
        request_body,
        request_body_truncated: flags & REQUEST_BODY_CUT != 0,
        response_body,
        response_body_truncated: flags & RESPONSE_BODY_CUT != 0,
        data,
    })
}

/// A block's entries, oldest first.
pub(crate) fn block_entries(key: EventId, value: &[u8]) -> Result<Vec<Slot<'_>>, String> {
    match value.first() {
        Some(&BLOCK_VERSION) => {
            let (BlockHead { count, .. }, mut r) = read_head(value)?;
            // Every entry and every text takes at least its length byte, and an entry its
            // fixed part: nothing is reserved for counts the bytes cannot hold.
            if count > value.len() / (PACKED_MIN + 1) {
                return Err(format!(
                    "{count} entries cannot fit in {} bytes",
                    value.len()
                ));
            }
            let n_texts = r.len()?;
            let mut texts = Vec::with_capacity(n_texts);
            for _ in 0..n_texts {
                texts.push(r.text()?);
            }
            let texts: Rc<[&str]> = texts.into();
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let n = r.len()?;
                out.push(Slot::Packed {
                    entry: r.take(n)?,
                    texts: texts.clone(),
                });
            }
            r.done()?;
            Ok(out)
        }
        Some(&keys::FORMAT_VERSION) => {
            let r: TrackedRequest =
                keys::decode(value, || key.to_string()).map_err(|e| match e {
                    crate::error::StoreError::Undecodable { reason, .. } => reason,
                    other => other.to_string(),
                })?;
            Ok(vec![Slot::Json(Box::new(r))])
        }
        _ => block_head(key, value).map(|_| Vec::new()),
    }
}

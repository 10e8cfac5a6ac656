//! Reading blocks back: the head, the entries, each entry decoded.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;

use super::pack::{
    unzigzag, Own, BLOCK_V2, BLOCK_VERSION, BODY_FLAGS, PACKED_MIN, REQUEST_BODY, REQUEST_BODY_CUT,
    RESPONSE_BODY, RESPONSE_BODY_CUT, SAME_TEXTS, START_APART, V2_PACKED_MIN,
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

    fn status(&mut self) -> Result<u16, String> {
        u16::try_from(self.num()?).map_err(|_| "status past 65535".to_owned())
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

/// Reads the head of a block (of either version); the reader is left at its texts.
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
        Some(&(BLOCK_VERSION | BLOCK_V2)) => read_head(value).map(|(head, _)| head),
        Some(&keys::FORMAT_VERSION) => Ok(BlockHead { count: 1, min: key }),
        Some(v) => Err(format!(
            "format version {v}, this build reads {}, {BLOCK_V2} and {BLOCK_VERSION}",
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
        entry: Packed<'a>,
        table: Rc<[&'a str]>,
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

/// An entry as its block holds it: what it has of its own, and the texts it has or repeats.
#[derive(Debug)]
pub(crate) struct Packed<'a> {
    pub(super) own: Own,
    /// Its flags; the body flags are those of its texts, and `SAME_TEXTS` says whether it
    /// repeats the texts of the entry with texts before it.
    pub(super) flags: u8,
    /// Its texts, each as its place among the block's: its own, or those it repeats.
    pub(super) texts: &'a [u8],
}

/// A block read but for its texts' places: its texts as bytes, and its entries.
pub(super) struct Parsed<'a> {
    pub(super) table: Vec<&'a [u8]>,
    pub(super) entries: Vec<Packed<'a>>,
}

/// A block's texts and its entries, each with what it repeats resolved; every entry is
/// checked to end where its length says.
pub(super) fn parse_block(value: &[u8]) -> Result<Parsed<'_>, String> {
    let v2 = value.first() == Some(&BLOCK_V2);
    let (head, mut r) = read_head(value)?;
    // Every entry and every text takes at least its length byte, and an entry its fixed
    // part: nothing is reserved for counts the bytes cannot hold.
    let least = if v2 { V2_PACKED_MIN } else { PACKED_MIN };
    if head.count > value.len() / (least + 1) {
        return Err(format!(
            "{} entries cannot fit in {} bytes",
            head.count,
            value.len()
        ));
    }
    let n_texts = r.len()?;
    let mut table = Vec::with_capacity(n_texts);
    for _ in 0..n_texts {
        let n = r.len()?;
        table.push(r.take(n)?);
    }
    let mut entries = Vec::with_capacity(head.count);
    let mut before = head.min;
    let mut source: Option<(&[u8], u8)> = None;
    for i in 0..head.count {
        let n = r.len()?;
        let mut e = Reader {
            bytes: r.take(n)?,
            at: 0,
        };
        let entry = if v2 {
            packed_v2(&mut e)?
        } else {
            let flags = e.take(1)?[0];
            let start = before.timestamp_us().wrapping_add(e.num()?);
            let low = (before.0 as u64).wrapping_add(unzigzag(e.num()?) as u64);
            let id = EventId((u128::from(start) << 64) | u128::from(low));
            let duration_us = e.num()?;
            let status = e.status()?;
            let timestamp_us = if flags & START_APART != 0 {
                u64::from_le_bytes(e.array()?)
            } else {
                start
            };
            let own = Own {
                id,
                timestamp_us,
                duration_us,
                status,
            };
            if flags & SAME_TEXTS != 0 {
                e.done()?;
                let (texts, with) =
                    source.ok_or_else(|| format!("entry {i} repeats the texts of none"))?;
                if (flags ^ with) & BODY_FLAGS != 0 {
                    return Err(format!("entry {i} keeps other bodies than it repeats"));
                }
                Packed { own, flags, texts }
            } else {
                let texts = &e.bytes[e.at..];
                source = Some((texts, flags));
                Packed { own, flags, texts }
            }
        };
        before = entry.own.id;
        entries.push(entry);
    }
    r.done()?;
    Ok(Parsed { table, entries })
}

/// An entry of a version 2 block: the whole id, duration, status, flags and the start
/// when apart, then its texts.
fn packed_v2<'a>(e: &mut Reader<'a>) -> Result<Packed<'a>, String> {
    let id = EventId::from_bytes(e.array()?);
    let duration_us = e.num()?;
    let status = e.status()?;
    let flags = e.take(1)?[0];
    let timestamp_us = if flags & START_APART != 0 {
        u64::from_le_bytes(e.array()?)
    } else {
        id.timestamp_us()
    };
    Ok(Packed {
        own: Own {
            id,
            timestamp_us,
            duration_us,
            status,
        },
        flags: flags & !SAME_TEXTS,
        texts: &e.bytes[e.at..],
    })
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
            Slot::Packed { entry, table } => {
                let mut r = Reader {
                    bytes: entry.texts,
                    at: 0,
                };
                r.text_of(table)?;
                Ok(EntryHead {
                    id: entry.own.id,
                    duration_us: entry.own.duration_us,
                    status: entry.own.status,
                    path: r.text_of(table)?,
                })
            }
        }
    }

    /// The whole entry.
    pub(crate) fn request(self) -> Result<TrackedRequest, String> {
        match self {
            Slot::Json(r) => Ok(*r),
            Slot::Packed { entry, table } => decode_packed(&entry, &table),
        }
    }
}

pub(super) fn decode_packed(entry: &Packed<'_>, texts: &[&str]) -> Result<TrackedRequest, String> {
    let mut r = Reader {
        bytes: entry.texts,
        at: 0,
    };
    let flags = entry.flags;
    let method = r.text_of(texts)?;
    let path = r.text_of(texts)?;
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
    let own = entry.own;
    Ok(TrackedRequest {
        id: own.id,
        timestamp_us: own.timestamp_us,
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        status: own.status,
        duration_us: own.duration_us,
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
        Some(&(BLOCK_VERSION | BLOCK_V2)) => {
            let Parsed { table, entries } = parse_block(value)?;
            let table = table
                .into_iter()
                .enumerate()
                .map(|(i, t)| std::str::from_utf8(t).map_err(|e| format!("text {i}: {e}")))
                .collect::<Result<Rc<[&str]>, String>>()?;
            Ok(entries
                .into_iter()
                .map(|entry| Slot::Packed {
                    entry,
                    table: table.clone(),
                })
                .collect())
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

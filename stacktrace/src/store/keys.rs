//! Tree names, key layouts and the value codec, in one place.
//!
//! Keys that are scanned in order are big-endian: an event id is its capture time in
//! microseconds followed by random bits, so the `events` tree is also the time index.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;
use crate::event::EventId;

/// Event id (16 bytes) to versioned event.
pub(crate) const EVENTS: &str = "events";
/// Secondary indexes: field tag, value, `0`, event id; empty values.
pub(crate) const INDEX: &str = "index";
/// Fingerprint to versioned group.
pub(crate) const GROUPS: &str = "groups";
/// Counter name to big-endian u64.
pub(crate) const COUNTERS: &str = "counters";
/// Request tracking (HTTP): the id of a block's newest request (its start and random bits,
/// 16 bytes, as an event id) to a block of tracked requests (see `tracking_block`); capped,
/// oldest removed first.
pub(crate) const TRACKING: &str = "tracking";

/// The version byte in front of every stored value.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// The indexed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Level,
    ErrorType,
    RequestPath,
    User,
    Fingerprint,
}

impl Field {
    fn tag(self) -> u8 {
        match self {
            Field::Level => b'l',
            Field::ErrorType => b't',
            Field::RequestPath => b'p',
            Field::User => b'u',
            Field::Fingerprint => b'f',
        }
    }
}

/// The prefix shared by every entry of one field value.
pub(crate) fn index_prefix(field: Field, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 18);
    k.push(field.tag());
    k.extend_from_slice(value);
    k.push(0);
    k
}

pub(crate) fn index_key(field: Field, value: &[u8], id: EventId) -> Vec<u8> {
    let mut k = index_prefix(field, value);
    k.extend_from_slice(&id.to_bytes());
    k
}

/// The event id of an index key, when the key belongs to exactly this prefix (a value that
/// itself contains a `0` byte would otherwise match a shorter value's prefix).
pub(crate) fn id_of_index_key(prefix: &[u8], key: &[u8]) -> Option<EventId> {
    if key.len() != prefix.len() + 16 || !key.starts_with(prefix) {
        return None;
    }
    let bytes: [u8; 16] = key[prefix.len()..].try_into().ok()?;
    Some(EventId::from_bytes(bytes))
}

pub(crate) fn id_of_event_key(key: &[u8]) -> Option<EventId> {
    let bytes: [u8; 16] = key.try_into().ok()?;
    Some(EventId::from_bytes(bytes))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serialising our own types to a Vec cannot fail: no maps with non-string keys, no I/O.
    if serde_json::to_writer(&mut out, value).is_err() {
        out.truncate(1);
        out.extend_from_slice(b"null");
    }
    out
}

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
                what: what(),
                reason: e.to_string(),
            })
        }
        Some((v, _)) => Err(StoreError::Corrupt {
            what: what(),
            reason: format!("format version {v}, this build reads {FORMAT_VERSION}"),
        }),
        None => Err(StoreError::Corrupt {
            what: what(),
            reason: "empty value".into(),
        }),
    }
}

pub(crate) fn counter_key(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

pub(crate) fn u64_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_key_rejects_longer_values_sharing_the_prefix() {
        let id = EventId::from_bytes([7; 16]);
        let p = index_prefix(Field::User, b"ann");
        assert_eq!(
            id_of_index_key(&p, &index_key(Field::User, b"ann", id)),
            Some(id)
        );
        let other = index_key(Field::User, b"ann\0x", id);
        assert!(other.starts_with(&p));
        assert_eq!(id_of_index_key(&p, &other), None);
    }

    #[test]
    fn codec_checks_the_version() {
        let bytes = encode(&vec![1, 2]);
        assert_eq!(decode::<Vec<i32>>(&bytes, || "x".into()).unwrap(), [1, 2]);
        let mut newer = bytes.clone();
        newer[0] = 9;
        let err = decode::<Vec<i32>>(&newer, || "events/1".into()).unwrap_err();
        assert!(err.to_string().contains("events/1") && err.to_string().contains("version 9"));
        assert!(decode::<Vec<i32>>(&[], || "x".into()).is_err());
        assert!(decode::<Vec<i32>>(&[1, b'{'], || "x".into()).is_err());
    }
}

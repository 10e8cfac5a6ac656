//! Tree names, key layouts and the value codec, in one place.
//!
//! Keys that are scanned in order are big-endian: an event id is its capture time in
//! microseconds followed by random bits, so the `events` tree is also the time index.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;
use crate::model::event::EventId;

/// The newest id of a block of events (16 bytes) to the block (see `event_blocks`).
pub(crate) const EVENTS: &str = "events";
/// The secondary indexes of an earlier layout (one key per event and field), rebuilt into
/// [`POSTINGS`] when found.
pub(crate) const OLD_INDEX: &str = "index";
/// Secondary indexes: runs of event ids per field value (see the postings module).
pub(crate) const POSTINGS: &str = "postings";
/// The vocabulary of indexed words: word to nothing.
pub(crate) const WORDS: &str = "words";
/// Bookkeeping of the indexes: name to value.
pub(crate) const META: &str = "meta";
/// In [`META`]: the number of events stored, big-endian u64, written in the same
/// transaction as the events it counts.
pub(crate) const EVENT_COUNT: &[u8] = b"events.count";
/// In [`META`]: the bytes of the stored event blocks, big-endian u64, written with
/// [`EVENT_COUNT`].
pub(crate) const EVENT_BYTES: &[u8] = b"events.bytes";
/// In [`META`]: the disk budget the program that writes the database last set, big-endian
/// u64 bytes (0: none).
pub(crate) const DISK_BUDGET: &[u8] = b"budget.bytes";
/// In [`META`]: the events removed to hold the disk budget, big-endian u64, written in the
/// same transaction as their removal.
pub(crate) const BUDGET_REMOVED: &[u8] = b"budget.removed";
/// In [`META`]: the bytes of event blocks freed to hold the disk budget, as
/// [`BUDGET_REMOVED`].
pub(crate) const BUDGET_REMOVED_BYTES: &[u8] = b"budget.removed_bytes";
/// In [`META`]: occurrences counted into their groups without their events (repeats of
/// a stored failure while the writer's queue was full), big-endian u64, written in the
/// same transaction as the groups' counts.
pub(crate) const REPEATS_COUNTED: &[u8] = b"repeats.counted";
/// In [`META`]: prefix of the marker of a stored batch whose events may not be indexed and
/// grouped yet, followed by a big-endian u64 from sled's id generator; the value is the
/// batch's ids, 16 big-endian bytes each. Written in the same transaction as the events,
/// removed in the same transaction as their groups' updates.
pub(crate) const PENDING: &[u8] = b"events.pending.";
/// Fingerprint to versioned group.
pub(crate) const GROUPS: &str = "groups";
/// Release name to its record: first and last seen, events, new groups, sessions by
/// outcome (see the releases module).
pub(crate) const RELEASES: &str = "releases";
/// A session (its start, big-endian u64 microseconds, and its process id, big-endian u32)
/// to its record: release and outcome.
pub(crate) const SESSIONS: &str = "sessions";
/// The sessions not yet ended, keyed as in [`SESSIONS`], to nothing: those the next open
/// settles.
pub(crate) const OPEN_SESSIONS: &str = "sessions.open";
/// Counter name to big-endian u64.
pub(crate) const COUNTERS: &str = "counters";
/// Occurrences counted into a group without their events: the fingerprint, a zero byte and
/// the start of the hour (big-endian u64 microseconds) to their number (big-endian u64),
/// so that trends count them where the events' keys are missing.
pub(crate) const REPEATS: &str = "repeats";
/// Request tracking (HTTP): the id of a block's newest request (its start and random bits,
/// 16 bytes, as an event id) to a block of tracked requests (see `tracking_block`); capped,
/// oldest removed first.
pub(crate) const TRACKING: &str = "tracking";
/// Calls and failures of each `#[capture]` function by release: the function's name, a
/// zero byte and the release, to a versioned `FunctionStats`.
pub(crate) const FUNCTIONS: &str = "functions";

/// Forwarding's outbox: the id of an event not yet taken by the server to its record.
pub(crate) const OUTBOX: &str = "outbox";
/// Forwarding's given-up events: event id to the refusal that ended it.
pub(crate) const FORWARD_FAILED: &str = "forward_failed";

/// Crash events stored at an open, waiting for mail and forwarding: event id to two
/// bytes, new group and regressed (see the unnotified module).
pub(crate) const UNNOTIFIED: &str = "unnotified";

/// The version byte in front of every stored value.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// The indexed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Level,
    ErrorType,
    RequestPath,
    User,
    Fingerprint,
    /// A lower-case word of the message or error type.
    Word,
}

impl Field {
    pub(crate) fn tag(self) -> u8 {
        match self {
            Field::Level => b'l',
            Field::ErrorType => b't',
            Field::RequestPath => b'p',
            Field::User => b'u',
            Field::Fingerprint => b'f',
            Field::Word => b'w',
        }
    }
}

pub(crate) fn id_of_event_key(key: &[u8]) -> Option<EventId> {
    let bytes: [u8; 16] = key.try_into().ok()?;
    Some(EventId::from_bytes(bytes))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_VERSION);
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
            serde_json::from_slice(body).map_err(|e| StoreError::Undecodable {
                what: what(),
                reason: e.to_string(),
            })
        }
        Some((v, _)) => Err(StoreError::Undecodable {
            what: what(),
            reason: format!("format version {v}, this build reads {FORMAT_VERSION}"),
        }),
        None => Err(StoreError::Undecodable {
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

//! The crash record file: one per running process, in a folder beside the database, of a
//! fixed size and kept mapped for the life of the process, so that what the process wrote
//! into it stays when it dies, however it dies. Read back by the next process that opens
//! the database, from bytes: a record cut short or half written reads as what it holds.
//!
//! ```text
//! 0     header     magic, state, pid, start time, breadcrumb count, meta length
//! 64    meta       JSON written at install: release, program, module table, settings
//! 4096  crash      written by the signal handler: signal, code, fault address, thread,
//!                  time, stack and instruction pointers, return addresses; a marker last
//! 8192  ring       the last breadcrumbs, each slot stamped with its sequence number
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::event::Level;
use crate::pipeline::resolve::modules::Module;

/// The folder of crash records beside the database at `db`.
pub(crate) fn records_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".crash");
    db.with_file_name(name)
}

pub(crate) const MAGIC: [u8; 8] = *b"STKCRSH1";
pub(crate) const SIZE: usize = RING + SLOTS * SLOT;

// Header.
pub(crate) const STATE: usize = 8;
pub(crate) const PID: usize = 16;
pub(crate) const STARTED_US: usize = 24;
// Written by the recorder, which only Linux has; the reader finds the ring by its stamps.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) const CRUMB_COUNT: usize = 32;
pub(crate) const META_LEN: usize = 40;
/// How the process's session ended, written at a clean end (see [`outcome`]).
pub(crate) const OUTCOME: usize = 48;
pub(crate) const META: usize = 64;
pub(crate) const META_MAX: usize = CRASH - META;

/// What the record says of its process, in the state word.
pub(crate) mod state {
    /// The process runs, or ended without a word.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) const OPEN: u32 = 1;
    /// It ended cleanly.
    pub(crate) const CLOSED: u32 = 2;
    /// The signal handler began writing the crash.
    pub(crate) const CRASHING: u32 = 3;
    /// Taken by a reader: whoever else reads it leaves it alone.
    pub(crate) const CONSUMED: u32 = 5;
}

/// How a session ended, in the outcome word: written before the state is set closed.
pub(crate) mod outcome {
    /// Not written (a record of a build that did not write it): clean.
    pub(crate) const UNSAID: u32 = 0;
    /// Ended after an error event.
    pub(crate) const ERRORED: u32 = 2;
    /// Ended by a panic in `main`.
    pub(crate) const CRASHED: u32 = 3;
}

// The crash section.
pub(crate) const CRASH: usize = 4096;
pub(crate) const SIGNAL: usize = CRASH;
pub(crate) const CODE: usize = CRASH + 4;
pub(crate) const FAULT: usize = CRASH + 8;
pub(crate) const TID: usize = CRASH + 16;
pub(crate) const CRASHED_US: usize = CRASH + 24;
pub(crate) const SP: usize = CRASH + 32;
pub(crate) const PC: usize = CRASH + 40;
pub(crate) const IP_COUNT: usize = CRASH + 48;
/// Non-zero when the crashing thread was panicking (an abort after a panic).
pub(crate) const PANICKING: usize = CRASH + 52;
pub(crate) const THREAD_NAME: usize = CRASH + 56;
pub(crate) const THREAD_NAME_LEN: usize = 16;
pub(crate) const IPS: usize = CRASH + 72;
pub(crate) const MAX_IPS: usize = 256;
/// Written last: the record before it is whole.
pub(crate) const DONE: usize = RING - 8;
pub(crate) const DONE_MARK: [u8; 8] = *b"CRSHDONE";

// The breadcrumb ring: slot = sequence number, time, level, lengths, category, message.
pub(crate) const RING: usize = 8192;
pub(crate) const SLOTS: usize = 64;
pub(crate) const SLOT: usize = 512;
pub(crate) const SLOT_TIME: usize = 8;
pub(crate) const SLOT_LEVEL: usize = 16;
pub(crate) const SLOT_CATEGORY_LEN: usize = 17;
pub(crate) const SLOT_MESSAGE_LEN: usize = 18;
pub(crate) const SLOT_CATEGORY: usize = 24;
pub(crate) const CATEGORY_MAX: usize = 48;
pub(crate) const SLOT_MESSAGE: usize = SLOT_CATEGORY + CATEGORY_MAX;
pub(crate) const MESSAGE_MAX: usize = SLOT - SLOT_MESSAGE;

// The writer's offsets stay inside their sections, and the file: checked when compiled.
const _: () = assert!(IPS + 8 * MAX_IPS <= DONE && THREAD_NAME + THREAD_NAME_LEN <= IPS);
const _: () = assert!(META + META_MAX <= CRASH && DONE + 8 <= RING);
const _: () = assert!(SLOT_MESSAGE + MESSAGE_MAX <= SLOT && RING + SLOTS * SLOT <= SIZE);

/// What install writes into the record for the reader.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) release: String,
    pub(crate) program: String,
    /// The level of the event for an end without a clean shutdown; `None`: no event.
    pub(crate) unclean_exit_level: Option<Level>,
    /// The field names whose `name=value` pairs in text are credentials.
    #[serde(default)]
    pub(crate) redact_fields: Vec<String>,
    pub(crate) modules: Vec<Module>,
    /// The start of the process's session, which names it with the process id (0: the
    /// record's own start).
    #[serde(default)]
    pub(crate) session_us: u64,
}

/// A crash as the handler wrote it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Crash {
    pub(crate) signal: i32,
    pub(crate) code: i32,
    pub(crate) fault: u64,
    pub(crate) tid: u64,
    pub(crate) time_us: u64,
    pub(crate) sp: u64,
    pub(crate) pc: u64,
    pub(crate) thread_name: String,
    pub(crate) panicking: bool,
    pub(crate) ips: Vec<usize>,
    /// The completeness marker was found.
    pub(crate) complete: bool,
}

/// A breadcrumb recovered from the ring.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Crumb {
    pub(crate) seq: u64,
    pub(crate) time_us: u64,
    pub(crate) level: Level,
    pub(crate) category: String,
    pub(crate) message: String,
}

/// A record read back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Record {
    pub(crate) state: u32,
    /// How its session ended, when it ended cleanly (see [`outcome`]).
    pub(crate) outcome: u32,
    pub(crate) pid: u64,
    pub(crate) started_us: u64,
    /// `None` when the meta block is missing or unreadable.
    pub(crate) meta: Option<Meta>,
    pub(crate) crash: Option<Crash>,
    pub(crate) crumbs: Vec<Crumb>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

fn text_at(b: &[u8], at: usize, len: usize) -> String {
    let bytes = b.get(at..at + len).unwrap_or(&[]);
    let end = bytes.iter().position(|c| *c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(&[])).into_owned()
}

fn level_of(byte: u8) -> Level {
    Level::ALL
        .into_iter()
        .find(|l| l.as_byte() == byte)
        .unwrap_or(Level::Info)
}

/// The record in `bytes`, or `None` when they are not a crash record at all. Never
/// panics: a field cut off reads as zero, a count past its room as the room.
pub(crate) fn parse(b: &[u8]) -> Option<Record> {
    if b.get(..8) != Some(&MAGIC[..]) {
        return None;
    }
    let state = u32_at(b, STATE);
    let meta_len = (u32_at(b, META_LEN) as usize).min(META_MAX);
    let meta = b
        .get(META..META + meta_len)
        .and_then(|m| serde_json::from_slice(m).ok());
    let crash = (state == state::CRASHING || u32_at(b, SIGNAL) != 0).then(|| {
        let count = (u32_at(b, IP_COUNT) as usize).min(MAX_IPS);
        Crash {
            signal: u32_at(b, SIGNAL) as i32,
            code: u32_at(b, CODE) as i32,
            fault: u64_at(b, FAULT),
            tid: u64_at(b, TID),
            time_us: u64_at(b, CRASHED_US),
            sp: u64_at(b, SP),
            pc: u64_at(b, PC),
            thread_name: text_at(b, THREAD_NAME, THREAD_NAME_LEN),
            panicking: u32_at(b, PANICKING) != 0,
            ips: (0..count)
                .map(|i| u64_at(b, IPS + 8 * i) as usize)
                .take_while(|ip| *ip != 0)
                .collect(),
            complete: b.get(DONE..DONE + 8) == Some(&DONE_MARK[..]),
        }
    });
    let mut crumbs: Vec<Crumb> = (0..SLOTS)
        .filter_map(|i| {
            let at = RING + i * SLOT;
            let seq = u64_at(b, at);
            if seq == 0 {
                return None;
            }
            let category_len = usize::from(*b.get(at + SLOT_CATEGORY_LEN)?).min(CATEGORY_MAX);
            let message_len = (usize::from(u16::from_ne_bytes([
                *b.get(at + SLOT_MESSAGE_LEN)?,
                *b.get(at + SLOT_MESSAGE_LEN + 1)?,
            ])))
            .min(MESSAGE_MAX);
            Some(Crumb {
                seq,
                time_us: u64_at(b, at + SLOT_TIME),
                level: level_of(*b.get(at + SLOT_LEVEL)?),
                category: text_at(b, at + SLOT_CATEGORY, category_len),
                message: text_at(b, at + SLOT_MESSAGE, message_len),
            })
        })
        .collect();
    crumbs.sort_by_key(|c| c.seq);
    Some(Record {
        state,
        outcome: u32_at(b, OUTCOME),
        pid: u64_at(b, PID),
        started_us: u64_at(b, STARTED_US),
        meta,
        crash,
        crumbs,
    })
}

/// The fresh bytes of a record for this process: header and meta, no crash, an empty ring.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn fresh(pid: u32, started_us: u64, meta: &Meta) -> Vec<u8> {
    let mut b = vec![0u8; SIZE];
    b[..8].copy_from_slice(&MAGIC);
    b[STATE..STATE + 4].copy_from_slice(&state::OPEN.to_ne_bytes());
    b[PID..PID + 8].copy_from_slice(&u64::from(pid).to_ne_bytes());
    b[STARTED_US..STARTED_US + 8].copy_from_slice(&started_us.to_ne_bytes());
    let mut json = serde_json::to_vec(meta).unwrap_or_default();
    if json.len() > META_MAX {
        // A process with very many modules keeps the first ones, the executable first.
        let mut fewer = meta.clone();
        while json.len() > META_MAX && !fewer.modules.is_empty() {
            fewer.modules.pop();
            json = serde_json::to_vec(&fewer).unwrap_or_default();
        }
    }
    if json.len() <= META_MAX {
        b[META_LEN..META_LEN + 4].copy_from_slice(&(json.len() as u32).to_ne_bytes());
        b[META..META + json.len()].copy_from_slice(&json);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_record_reads_back_open_with_its_meta_and_no_crash() {
        let meta = Meta {
            release: "1.2.3".into(),
            program: "app".into(),
            unclean_exit_level: Some(Level::Warning),
            redact_fields: Vec::new(),
            modules: Vec::new(),
            session_us: 5,
        };
        let r = parse(&fresh(42, 7, &meta)).unwrap();
        assert_eq!(
            (r.outcome, r.meta.as_ref().unwrap().session_us),
            (outcome::UNSAID, 5)
        );
        assert_eq!((r.state, r.pid, r.started_us), (state::OPEN, 42, 7));
        assert_eq!(r.meta.unwrap().release, "1.2.3");
        assert!(r.crash.is_none());
        assert!(r.crumbs.is_empty());
    }

    // A record cut anywhere, or filled with noise, must read as what it holds: the reader
    // runs at start-up of the next program and must never take it down.
    #[test]
    fn a_record_cut_anywhere_or_garbled_never_panics() {
        let mut b = fresh(1, 1, &Meta::default());
        b[STATE..STATE + 4].copy_from_slice(&state::CRASHING.to_ne_bytes());
        b[IP_COUNT..IP_COUNT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        b[META_LEN..META_LEN + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        for i in 0..SLOTS {
            let at = RING + i * SLOT;
            b[at..at + 8].copy_from_slice(&(i as u64 + 1).to_ne_bytes());
            b[at + SLOT_CATEGORY_LEN] = 255;
            b[at + SLOT_MESSAGE_LEN..at + SLOT_MESSAGE_LEN + 2].copy_from_slice(&[255, 255]);
        }
        for cut in (0..SIZE).step_by(97).chain([SIZE]) {
            let r = parse(&b[..cut]);
            assert_eq!(r.is_some(), cut >= 8, "cut at {cut}");
        }
        let whole = parse(&b).unwrap();
        assert!(!whole.crash.unwrap().complete);
        assert_eq!(whole.crumbs.len(), SLOTS);
        assert!(parse(b"not a record").is_none());
    }
}

//! The manifest: what the database held at its last flush, kept in a small checksummed
//! file inside the database directory, beside sled's own files.
//!
//! sled opens a database whose data file was overwritten or cut as an empty or shorter one,
//! without an error. The manifest is written after each flush, describing a state the flush
//! made durable, so a database that holds less than its manifest says lost what it had.
//! Events removed on purpose (retention) move the removal boundary first, which the
//! manifest records too; only what lies above the boundary is checked.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::event::EventId;

/// The manifest's file name inside the database directory.
pub(crate) const FILE: &str = "stacktrace.manifest";
/// The first line of a manifest, with its format version.
const HEADER: &str = "stacktrace manifest 1";

/// A database's contents, as far as the manifest records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Events stored.
    pub(crate) events: u64,
    /// The key of the newest block: the id of the newest event.
    pub(crate) newest: Option<EventId>,
    /// Ids below this may have been removed on purpose.
    pub(crate) purged_below: EventId,
}

fn path_of(db: &Path) -> PathBuf {
    db.join(FILE)
}

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn id_text(id: Option<EventId>) -> String {
    id.map_or_else(|| "none".into(), |id| id.to_string())
}

impl Manifest {
    fn body(&self) -> String {
        format!(
            "{HEADER}\nevents {}\nnewest {}\npurged_below {}\n",
            self.events,
            id_text(self.newest),
            self.purged_below
        )
    }

    /// Reads the manifest of the database at `db`; `None` when there is none, or it is torn
    /// or of another format: nothing is then known about what the database held.
    pub(crate) fn read(db: &Path) -> Option<Manifest> {
        let text = std::fs::read_to_string(path_of(db)).ok()?;
        let (body, sum) = text.rsplit_once("checksum ")?;
        if sum.trim_end() != checksum(body) {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|v| v.strip_prefix(' '))
                .map(str::to_owned)
        };
        let events = field("events")?.parse().ok()?;
        let newest = match field("newest")?.as_str() {
            "none" => None,
            id => Some(id.parse().ok()?),
        };
        let purged_below = field("purged_below")?.parse().ok()?;
        Some(Manifest {
            events,
            newest,
            purged_below,
        })
    }

    /// Replaces the manifest of the database at `db`: written beside it and renamed over
    /// it, so a reader finds the old one or the new one whole.
    pub(crate) fn write(&self, db: &Path) -> std::io::Result<()> {
        let body = self.body();
        let text = format!("{body}checksum {}\n", checksum(&body));
        let temp = db.join(format!("{FILE}.new"));
        std::fs::write(&temp, text)?;
        std::fs::rename(&temp, path_of(db))
    }

    /// What `found` lacks of what this manifest recorded, as (expected, found) texts; `None`
    /// when the database holds at least what was recorded.
    pub(crate) fn contradiction(&self, found: &Manifest) -> Option<(String, String)> {
        let describe = |m: &Manifest| match m.newest {
            Some(id) => format!("{} events, the newest {id}", m.events),
            None => format!("{} events", m.events),
        };
        let lost = || Some((describe(self), describe(found)));
        // The boundary never moves back: a smaller one was lost with the data.
        if found.purged_below < self.purged_below {
            return lost();
        }
        // The newest event recorded is still there, unless removed on purpose since.
        if let Some(newest) = self.newest.filter(|n| *n >= found.purged_below) {
            if found.newest.is_none_or(|f| f < newest) {
                return lost();
            }
        }
        // With no removal since, nothing may be missing.
        if found.purged_below == self.purged_below && found.events < self.events {
            return lost();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(events: u64, newest: Option<u128>, purged: u128) -> Manifest {
        Manifest {
            events,
            newest: newest.map(EventId),
            purged_below: EventId(purged),
        }
    }

    #[test]
    fn a_manifest_reads_back_and_a_torn_one_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(42, Some(0xabc), 7);
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()), Some(m));
        let empty = manifest(0, None, 0);
        empty.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()), Some(empty));

        m.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(path_of(dir.path())).unwrap();
        std::fs::write(path_of(dir.path()), text.replace("events 42", "events 43")).unwrap();
        assert_eq!(Manifest::read(dir.path()), None);
        std::fs::write(path_of(dir.path()), &text[..text.len() / 2]).unwrap();
        assert_eq!(Manifest::read(dir.path()), None);
    }

    #[test]
    fn only_a_database_holding_less_than_recorded_contradicts_it() {
        let recorded = manifest(10, Some(100), 5);
        // More, or as much: written after the manifest.
        assert_eq!(recorded.contradiction(&manifest(10, Some(100), 5)), None);
        assert_eq!(recorded.contradiction(&manifest(12, Some(130), 5)), None);
        // Removed on purpose: the boundary moved past what is gone.
        assert_eq!(recorded.contradiction(&manifest(3, Some(100), 50)), None);
        assert_eq!(recorded.contradiction(&manifest(0, None, 101)), None);
        // Lost.
        let (expected, found) = recorded.contradiction(&manifest(0, None, 0)).unwrap();
        assert!(expected.contains("10 events") && expected.contains(&EventId(100).to_string()));
        assert_eq!(found, "0 events");
        assert!(recorded.contradiction(&manifest(9, Some(100), 5)).is_some());
        assert!(recorded.contradiction(&manifest(10, Some(99), 5)).is_some());
        assert!(recorded.contradiction(&manifest(3, Some(99), 50)).is_some());
    }
}

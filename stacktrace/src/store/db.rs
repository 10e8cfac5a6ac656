//! Opening the database, storing an event with its indexes and group, reading it back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::groups::{self, Group};
use super::keys::{self, Field};
use super::spool::{self, Spool};
use crate::error::StoreError;
use crate::event::{CrashEvent, EventId};
use crate::gate::{DropCounters, DropReason, DROP_REASONS};

/// An open event database.
///
/// Open one with [`Store::open`] when no running program holds it, or use
/// [`stacktrace::store()`](crate::store) for the running program's own handle.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("errors.db");
/// let store = stacktrace::Store::open(&path)?;
/// let page = store.query().level(stacktrace::Level::Error).limit(20).run()?;
/// for event in &page.events {
///     println!("{} {}", event.id, event.title());
/// }
/// # Ok::<(), stacktrace::Error>(())
/// ```
pub struct Store {
    pub(super) db: sled::Db,
    pub(super) events: sled::Tree,
    pub(super) index: sled::Tree,
    pub(super) groups: sled::Tree,
    pub(super) counters: sled::Tree,
    path: PathBuf,
    /// Drops counted in memory by the running program, not yet persisted.
    pending_drops: Option<Arc<DropCounters>>,
    /// The running program's journal of panics (see the spool module), made on first use;
    /// `None` inside when it could not be made.
    journal: OnceLock<Option<Spool>>,
    /// Events appended to the journal and not (yet) stored in the database: while there
    /// are any, a flush leaves the journal alone. An event whose storing failed stays
    /// counted, so the journal keeps it for the next open to merge.
    journal_unstored: AtomicUsize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What storing an event did to its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InsertOutcome {
    /// The event started a new group.
    pub(crate) new_group: bool,
    /// The event reopened a resolved group.
    pub(crate) regressed: bool,
    /// The group after the event.
    pub(crate) group: Group,
}

/// Counts and sizes of a database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Events stored.
    pub events: u64,
    /// Groups.
    pub groups: u64,
    /// Events not stored, by reason (`sampled`, `rate_limited`, ...), every reason listed.
    pub dropped: BTreeMap<String, u64>,
    /// Bytes the database takes on disk.
    pub size_on_disk: u64,
}

fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, and merges into it the events that
    /// programs spooled beside it while another process held it.
    ///
    /// Fails with [`StoreError::Locked`] when another process has it open: sled allows one
    /// process at a time. Read a running program's events through its own
    /// [`store()`](crate::store) handle or the dashboard it serves.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| {
                if is_lock_error(&source) {
                    StoreError::Locked { path: path.clone() }
                } else {
                    StoreError::Open {
                        path: path.clone(),
                        source,
                    }
                }
            })?;
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })
        };
        let store = Store {
            events: tree(keys::EVENTS)?,
            index: tree(keys::INDEX)?,
            groups: tree(keys::GROUPS)?,
            counters: tree(keys::COUNTERS)?,
            db,
            path,
            pending_drops: None,
            journal: OnceLock::new(),
            journal_unstored: AtomicUsize::new(0),
        };
        spool::merge_into(&store)?;
        Ok(store)
    }

    pub(crate) fn with_pending_drops(mut self, counters: Arc<DropCounters>) -> Self {
        self.pending_drops = Some(counters);
        self
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores an event with its index entries and updates its group.
    pub(crate) fn insert(&self, event: &CrashEvent) -> Result<InsertOutcome, StoreError> {
        let mut outcomes = self.insert_batch(std::slice::from_ref(event))?;
        outcomes.pop().ok_or_else(|| StoreError::Corrupt {
            what: format!("events/{}", event.id),
            reason: "stored without a group".into(),
        })
    }

    /// Stores events with their index entries in two sled batches and updates each group
    /// once; returns what happened to each group touched, in order of first occurrence.
    pub(crate) fn insert_batch(
        &self,
        events: &[CrashEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut event_batch = sled::Batch::default();
        let mut index_batch = sled::Batch::default();
        let mut by_group: Vec<(&str, Vec<&CrashEvent>)> = Vec::new();
        for e in events {
            event_batch.insert(&e.id.to_bytes()[..], keys::encode(e));
            for (field, value) in index_entries(e) {
                if !value.is_empty() {
                    index_batch.insert(keys::index_key(field, value, e.id), &[] as &[u8]);
                }
            }
            match by_group.iter_mut().find(|(fp, _)| *fp == e.fingerprint) {
                Some((_, members)) => members.push(e),
                None => by_group.push((&e.fingerprint, vec![e])),
            }
        }
        self.events.apply_batch(event_batch)?;
        self.index.apply_batch(index_batch)?;
        let mut outcomes = Vec::with_capacity(by_group.len());
        for (_, members) in by_group {
            let (old, group) = groups::record_many(&self.groups, &members)?;
            outcomes.push(InsertOutcome {
                new_group: old.is_none(),
                regressed: old.is_some_and(|g| g.status == super::GroupStatus::Resolved),
                group,
            });
        }
        Ok(outcomes)
    }

    /// Removes an event and its index entries; its group keeps its counts.
    pub(crate) fn remove(&self, event: &CrashEvent) -> Result<(), StoreError> {
        for (field, value) in index_entries(event) {
            if !value.is_empty() {
                self.index.remove(keys::index_key(field, value, event.id))?;
            }
        }
        self.events.remove(event.id.to_bytes())?;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let journal = self.journal.get().and_then(Option::as_ref);
        // The mark first: every event in the journal up to it was counted as unstored
        // before it was appended, so when none is unstored now, all of them are in the
        // database and the flush below covers them.
        let mark = journal.map(Spool::mark);
        let all_stored = self.journal_unstored.load(Ordering::SeqCst) == 0;
        self.db.flush()?;
        if let (Some(j), Some(mark), true) = (journal, mark, all_stored) {
            j.empty_if_unchanged(mark);
        }
        Ok(())
    }

    /// Makes a finished event survive the process ending now, before it is stored: appends
    /// it to the journal, and counts it as unstored until [`Store::journaled_stored`] says
    /// it is in the database. Fails when there is no journal (it could not be made); the
    /// caller then stores the event and flushes.
    pub(crate) fn journal(&self, event: &CrashEvent) -> Result<(), StoreError> {
        let journal = self
            .journal
            .get_or_init(|| Spool::create(&self.path).ok())
            .as_ref()
            .ok_or_else(|| StoreError::Spool {
                path: spool::spool_dir(&self.path),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        self.journal_unstored.fetch_add(1, Ordering::SeqCst);
        journal.append(event).inspect_err(|_| {
            self.journal_unstored.fetch_sub(1, Ordering::SeqCst);
        })
    }

    /// Says that `n` journaled events were stored in the database.
    pub(crate) fn journaled_stored(&self, n: usize) {
        if n > 0 {
            self.journal_unstored.fetch_sub(n, Ordering::SeqCst);
        }
    }

    /// Whether the journal holds events a flush would make it drop.
    pub(crate) fn journal_pending(&self) -> bool {
        self.journal
            .get()
            .and_then(Option::as_ref)
            .is_some_and(Spool::holds_lines)
    }

    /// The event with this id.
    pub fn get(&self, id: EventId) -> Result<Option<CrashEvent>, StoreError> {
        match self.events.get(id.to_bytes())? {
            Some(bytes) => Ok(Some(keys::decode(&bytes, || format!("events/{id}"))?)),
            None => Ok(None),
        }
    }

    /// Adds dropped-event counts to the persisted counters.
    pub(crate) fn add_drops(&self, counts: [u64; 6]) -> Result<(), StoreError> {
        for (reason, n) in DROP_REASONS.iter().zip(counts) {
            if n > 0 {
                self.counters
                    .update_and_fetch(keys::counter_key(reason.as_str()), |old| {
                        let v = old.map(keys::u64_of).unwrap_or(0).saturating_add(n);
                        Some(v.to_be_bytes().to_vec())
                    })?;
            }
        }
        Ok(())
    }

    /// Events not stored, by reason, including those counted in memory by the running
    /// program and not yet persisted.
    pub fn dropped(&self) -> Result<BTreeMap<DropReason, u64>, StoreError> {
        let pending = self
            .pending_drops
            .as_ref()
            .map(|c| c.peek())
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        for (i, reason) in DROP_REASONS.iter().enumerate() {
            let stored = self
                .counters
                .get(keys::counter_key(reason.as_str()))?
                .map(|v| keys::u64_of(&v))
                .unwrap_or(0);
            out.insert(*reason, stored + pending[i]);
        }
        Ok(out)
    }

    /// Events, groups, drops by reason and size on disk.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        Ok(Stats {
            events: self.events.len() as u64,
            groups: self.groups.len() as u64,
            dropped: self
                .dropped()?
                .into_iter()
                .map(|(r, n)| (r.as_str().to_owned(), n))
                .collect(),
            size_on_disk: self.db.size_on_disk()?,
        })
    }
}

fn index_entries(e: &CrashEvent) -> [(Field, &[u8]); 5] {
    [
        (Field::Level, std::slice::from_ref(level_byte(e))),
        (Field::ErrorType, e.error_type.as_bytes()),
        (Field::RequestPath, e.request_path.as_bytes()),
        (Field::User, e.user.as_bytes()),
        (Field::Fingerprint, e.fingerprint.as_bytes()),
    ]
}

fn level_byte(e: &CrashEvent) -> &'static u8 {
    const BYTES: [u8; 5] = [0, 1, 2, 3, 4];
    &BYTES[usize::from(e.level.as_byte()).min(4)]
}

//! Opening the database, storing an event with its indexes and group, reading it back.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::drop::{DropCounters, DropReason, DROP_REASONS};
use crate::model::event::{CrashEvent, EventId};
use crate::pipeline::resolve::modules::without_module_files;
use crate::store::events::blocks::Encoded;
use crate::store::groups::group::Group;
use crate::store::index::postings::{Additions, Postings};
use crate::store::keys;
use crate::store::manifest::Manifest;
use crate::store::outbox::OutboxMarks;
use crate::store::pending::{index_event, Marker};
use crate::store::probe::{self, Plan};
use crate::store::recovery;
use crate::store::spool::{self, Spool};

/// sled's page cache when no size is given: what a reader or a host program spends on it.
pub(crate) const DEFAULT_CACHE_BYTES: u64 = 16 << 20;

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
    pub(super) postings: Postings,
    pub(super) groups: sled::Tree,
    pub(super) counters: sled::Tree,
    pub(super) outbox: sled::Tree,
    pub(super) forward_failed: sled::Tree,
    pub(super) unnotified: sled::Tree,
    /// Which stored events are marked unsent, when forwarding is on.
    pub(super) outbox_marks: Option<OutboxMarks>,
    /// Releases, sessions and the sessions still open (see the releases module).
    pub(super) releases: sled::Tree,
    pub(super) sessions: sled::Tree,
    pub(super) open_sessions: sled::Tree,
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
    /// Held while events are written or removed: each write reads what is stored (the
    /// block an id falls in, a value's last index run) before it writes.
    write_lock: Mutex<()>,
    /// Events stored, as recorded in the database (see the event_count module) and kept up
    /// to date by every write, under the write lock; recorded in the manifest at each flush.
    pub(super) stored: AtomicU64,
    /// The bytes of the stored event blocks, kept as `stored` is (see the event_count
    /// module): what the disk budget is held on.
    pub(super) stored_bytes: AtomicU64,
}

thread_local! {
    /// Set while this thread holds a store's write lock: a panic inside a write reaches
    /// the panic hook on the same thread, and a write from there must not wait for itself.
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// A store's write lock, held; see [`Store::writing`].
pub(crate) struct Writing<'a> {
    _guard: MutexGuard<'a, ()>,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        WRITING.with(|w| w.set(false));
    }
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
    /// Bytes the database takes on disk, as sled counts them: its files, space not yet
    /// reclaimed included.
    pub size_on_disk: u64,
    /// The database's size as the disk budget holds it (see [`Store::estimated_size`]).
    #[serde(default)]
    pub estimated_size: u64,
    /// The disk budget the program that writes the database set (0: none, or no program
    /// with a budget has opened it).
    #[serde(default)]
    pub disk_budget: u64,
    /// Events removed to hold the disk budget.
    #[serde(default)]
    pub budget_removed: u64,
    /// Bytes of event blocks those removals freed.
    #[serde(default)]
    pub budget_removed_bytes: u64,
    /// Occurrences counted in their groups without their events: repeats of a stored
    /// failure while the writer's queue was full (see [`Store::repeats_counted`]).
    #[serde(default)]
    pub repeats_counted: u64,
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
    /// programs spooled beside it while another process held it. sled's page cache is
    /// held to 16 MiB; see [`Store::open_with_cache`].
    ///
    /// Fails with [`StoreError::Locked`] when another process has it open: sled allows one
    /// process at a time. Read a running program's events through its own
    /// [`store()`](crate::store) handle or the dashboard it serves. Fails with
    /// [`StoreError::Corrupt`] when sled cannot read it, or when it holds less than it held
    /// at its last flush (a damaged data file reads as an empty database), or when sled
    /// panics reading it.
    ///
    /// In a build where a panic aborts (`panic = "abort"`) no panic can be caught: on Unix the
    /// open is first tried in a child process, so that such damage is still
    /// [`StoreError::Corrupt`], and a journaled panic whose module file makes the symbol
    /// readers panic is stored with its addresses; elsewhere there is no trial.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Like [`Store::open`], with sled's page cache held to about `cache_bytes` (the
    /// `cache_bytes` setting of [`Config`](crate::Config)).
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: u64) -> Result<Store, StoreError> {
        Store::open_marking(path.as_ref(), cache_bytes, None)
    }

    /// Like [`Store::open_with_cache`]; with `marks`, every event stored from the start
    /// (the merged spool and journal included) that they select is marked unsent in the
    /// same atomic write.
    pub(crate) fn open_marking(
        path: &Path,
        cache_bytes: u64,
        marks: Option<OutboxMarks>,
    ) -> Result<Store, StoreError> {
        // Where a panic aborts, nothing below catches one: trial opens in child processes
        // tell first whether this open would end the program.
        let plan = if cfg!(panic = "abort") {
            probe::plan_for(path, cache_bytes, marks)
        } else {
            Plan::AsToday
        };
        if let Plan::Damaged(signal) = plan {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                expected: "a database sled can read".into(),
                found: format!(
                    "data that made sled panic (a trial open ended by {})",
                    probe::signal_name(signal)
                ),
            });
        }
        let open = || Store::open_unguarded(path, cache_bytes, marks);
        let open = || match plan {
            Plan::WithoutModuleFiles => without_module_files(open),
            _ => open(),
        };
        // sled panics on some damaged files rather than failing: that is a damaged database
        // too, not a reason to take the program down.
        std::panic::catch_unwind(open).unwrap_or_else(|panic| {
            let said = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                expected: "a database sled can read".into(),
                found: format!("data that made sled panic ({said})"),
            })
        })
    }

    pub(super) fn open_unguarded(
        path: &Path,
        cache_bytes: u64,
        outbox_marks: Option<OutboxMarks>,
    ) -> Result<Store, StoreError> {
        /// How long a lock just being released is waited for: sled lets go of its file
        /// lock when its background threads end, a moment after the holder closed it.
        const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(100);
        let path = path.to_path_buf();
        // A directory that is there holds a database (sled makes one otherwise): what keeps
        // sled from reading it is damage, unless the system refused.
        let existed = path.is_dir();
        recovery::remove_torn_snapshots(&path);
        let start = std::time::Instant::now();
        let db = loop {
            let opened = sled::Config::new()
                .path(&path)
                .mode(sled::Mode::HighThroughput)
                .cache_capacity(cache_bytes)
                .open();
            match opened {
                Ok(db) => break db,
                Err(e) if is_lock_error(&e) && start.elapsed() < LOCK_GRACE => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) if is_lock_error(&e) => return Err(StoreError::Locked { path }),
                Err(sled::Error::Corruption { at, .. }) => {
                    let at = at.map_or_else(|| "unknown".into(), |at| format!("{at:?}"));
                    return Err(StoreError::Corrupt {
                        path,
                        expected: "a database sled can read".into(),
                        found: format!("data sled refuses as corrupt (at file offset {at})"),
                    });
                }
                Err(e) if existed && recovery::is_damage(&e) => {
                    return Err(StoreError::Corrupt {
                        path,
                        expected: "a database sled can read".into(),
                        found: format!("files sled cannot read ({e})"),
                    });
                }
                Err(source) => return Err(StoreError::Open { path, source }),
            }
        };
        let tree = |name: &str| {
            db.open_tree(name).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })
        };
        let mut store = Store {
            events: tree(keys::EVENTS)?,
            postings: Postings::new(tree(keys::POSTINGS)?, tree(keys::WORDS)?, tree(keys::META)?),
            groups: tree(keys::GROUPS)?,
            counters: tree(keys::COUNTERS)?,
            outbox: tree(keys::OUTBOX)?,
            forward_failed: tree(keys::FORWARD_FAILED)?,
            unnotified: tree(keys::UNNOTIFIED)?,
            outbox_marks,
            releases: tree(keys::RELEASES)?,
            sessions: tree(keys::SESSIONS)?,
            open_sessions: tree(keys::OPEN_SESSIONS)?,
            db,
            path,
            pending_drops: None,
            journal: OnceLock::new(),
            journal_unstored: AtomicUsize::new(0),
            write_lock: Mutex::new(()),
            stored: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
        };
        let kept = store.recorded_count()?;
        *store.stored.get_mut() = match kept {
            Some(n) => n,
            None => store.event_count()?,
        };
        let recorded = Manifest::read(&store.path);
        if let Some(recorded) = &recorded {
            let mut found = store.manifest_now()?;
            // A version that kept no count may have written since this one kept it, leaving
            // it low: the events are counted before the database is called damaged.
            if kept.is_some() && recorded.contradiction(&found).is_some() {
                *store.stored.get_mut() = store.event_count()?;
                found = store.manifest_now()?;
            }
            if let Some((expected, found)) = recorded.contradiction(&found) {
                return Err(StoreError::Corrupt {
                    path: store.path.clone(),
                    expected,
                    found,
                });
            }
        }
        let stored = *store.stored.get_mut();
        if kept != Some(stored) {
            store.record_count(stored)?;
        }
        // Read block by block when not kept, or when the count was not right either.
        *store.stored_bytes.get_mut() = match store.recorded_bytes()? {
            Some(bytes) if kept == Some(stored) => bytes,
            _ => {
                let bytes = store.event_bytes()?;
                store.record_bytes(bytes)?;
                bytes
            }
        };
        store.rebuild_old_index()?;
        // Before the merge, which skips the events that are stored.
        store.complete_pending()?;
        spool::merge_into(&store)?;
        store.merge_crash_records()?;
        if recorded.is_none() {
            store.flush()?;
        }
        Ok(store)
    }

    /// Stores the events of crash records left by processes that are gone, their frames
    /// resolved from the modules' files while those are the same build, and lists them
    /// for mail and forwarding (see the unnotified module).
    fn merge_crash_records(&self) -> Result<(), StoreError> {
        let mut taken = crate::crash::take_records(&self.path);
        if !taken.events.is_empty() {
            let mut files = crate::pipeline::resolve::modules::ModuleFiles::default();
            for e in &mut taken.events {
                crate::pipeline::resolve::modules::resolve_journaled(e, None, &mut files);
                crate::crash::name_out_of_memory(e);
            }
            let outcomes = self.insert_batch(&taken.events)?;
            self.add_unnotified(&taken.events, &outcomes)?;
        }
        // Their sessions ended as the records tell; then those left open with no record
        // (another system, a record that could not be made) are settled as crashed.
        self.end_sessions_of(&taken.ended)?;
        self.settle_open_sessions()?;
        if !taken.events.is_empty() || !taken.ended.is_empty() {
            self.flush()?;
        }
        // Removed once their events are stored; on an error above they stay for the next.
        taken.settle();
        Ok(())
    }

    /// What the database holds now, as its manifest records it.
    fn manifest_now(&self) -> Result<Manifest, StoreError> {
        Ok(Manifest {
            events: self.stored.load(Ordering::SeqCst),
            newest: match self.events.last()? {
                Some((k, _)) => keys::id_of_event_key(&k),
                None => None,
            },
            purged_below: self.postings.purged_below()?,
        })
    }

    /// Takes the write lock, waiting for another thread's write; refused on a thread that
    /// already holds it. A write that panicked leaves the data as consistent as a failed
    /// write does, so a poisoned lock is taken as it is.
    pub(crate) fn writing(&self) -> Result<Writing<'_>, StoreError> {
        if WRITING.with(Cell::get) {
            return Err(StoreError::WriteReentered);
        }
        let guard = crate::sync::lock(&self.write_lock);
        WRITING.with(|w| w.set(true));
        Ok(Writing { _guard: guard })
    }

    /// Takes the write lock when it is free; `None` while another thread writes, or on a
    /// thread that holds it already. Never waits: the panic hook's path flushes.
    fn try_writing(&self) -> Option<Writing<'_>> {
        if WRITING.with(Cell::get) {
            return None;
        }
        let guard = match self.write_lock.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        WRITING.with(|w| w.set(true));
        Some(Writing { _guard: guard })
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
        outcomes.pop().ok_or_else(|| StoreError::Undecodable {
            what: format!("events/{}", event.id),
            reason: "stored without a group".into(),
        })
    }

    /// Stores events in blocks (see the event_blocks module), indexes them with a few writes
    /// per indexed value (see the postings module), and updates each group once; returns
    /// what happened to each group touched, in order of first occurrence. A batch cut short
    /// after its events are written is completed at the next open (see the pending module).
    pub(crate) fn insert_batch(
        &self,
        events: &[CrashEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let _writing = self.writing()?;
        let mut event_batch = sled::Batch::default();
        let written = self.write_events(&Encoded::new(events), &mut event_batch)?;
        let marker = Marker::of(self, events)?;
        let count = self
            .stored
            .load(Ordering::SeqCst)
            .saturating_add(written.events);
        let bytes = written.bytes_after(self.stored_bytes.load(Ordering::SeqCst));
        let unsent = self.outbox_batch_of(events);
        self.apply_counted_marked(
            &event_batch,
            (count, bytes),
            Some((&marker.key, &marker.ids)),
            unsent.as_ref(),
        )?;
        self.stored.store(count, Ordering::SeqCst);
        self.stored_bytes.store(bytes, Ordering::SeqCst);
        #[cfg(test)]
        if crate::store::pending::torn_after(crate::store::pending::Stage::Events) {
            return Ok(Vec::new());
        }
        self.index_and_group(events, &marker.key)
    }

    /// Indexes the events of a database written with the earlier index layout (one key
    /// per event and field), then drops the old index.
    fn rebuild_old_index(&self) -> Result<(), StoreError> {
        let _writing = self.writing()?;
        let name = keys::OLD_INDEX.as_bytes();
        if !self.db.tree_names().iter().any(|n| n.as_ref() == name) {
            return Ok(());
        }
        let mut chunk: Vec<CrashEvent> = Vec::with_capacity(4096);
        let index = |chunk: &mut Vec<CrashEvent>| {
            let mut additions = Additions::default();
            for e in chunk.iter() {
                index_event(&mut additions, e);
            }
            let applied = additions.apply(&self.postings);
            chunk.clear();
            applied
        };
        self.visit_events(EventId(0)..EventId(u128::MAX), false, |block, i| {
            // An undecodable event cannot be indexed; it stays readable by id as before.
            if let Ok(e) = block.event(i) {
                chunk.push(e);
            }
            if chunk.len() == 4096 {
                index(&mut chunk)?;
            }
            Ok(true)
        })?;
        index(&mut chunk)?;
        self.db.drop_tree(name)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes the events with ids below `boundary`; returns how many. Groups keep their
    /// counts. Index runs made only of removed events are deleted; readers skip the other
    /// removed ids.
    pub(crate) fn remove_below(&self, boundary: EventId) -> Result<u64, StoreError> {
        let _writing = self.writing()?;
        // The boundary is recorded first: from then on readers check the ids below it.
        self.postings.set_purged_below(boundary)?;
        let removed = self.remove_events_below(boundary)?;
        self.postings.forget_below(boundary)?;
        Ok(removed)
    }

    /// Index entries below this id may be of removed events: look them up.
    pub(crate) fn purged_below(&self) -> Result<EventId, StoreError> {
        Ok(self.postings.purged_below()?)
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        let journal = self.journal.get().and_then(Option::as_ref);
        // The mark first: every event in the journal up to it was counted as unstored
        // before it was appended, so when none is unstored now, all of them are in the
        // database and the flush below covers them.
        let mark = journal.map(Spool::mark);
        let all_stored = self.journal_unstored.load(Ordering::SeqCst) == 0;
        // Taken before the flush, so the flush makes all it describes durable; under the
        // write lock, so no write is half counted. While another thread writes, or on a
        // thread inside a write of its own, the manifest stays as it is rather than the
        // flush waiting (the panic hook flushes): an older manifest is never wrong, only
        // less sharp.
        let manifest = match self.try_writing() {
            Some(_writing) => Some(self.manifest_now()?),
            None => None,
        };
        self.db.flush()?;
        if let Some(m) = manifest {
            // A manifest that cannot be written leaves the last one, which the database
            // still holds at least.
            let _ = m.write(&self.path);
        }
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

    /// Makes the journal now rather than at the first panic, which making it (a directory,
    /// a file, its lock) would slow.
    pub(crate) fn prepare_journal(&self) {
        self.journal.get_or_init(|| Spool::create(&self.path).ok());
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
        match self.block_at_or_after(id)? {
            Some(block) => block.find(id).map(|i| block.event(i)).transpose(),
            None => Ok(None),
        }
    }

    /// Adds dropped-event counts to the persisted counters.
    pub(crate) fn add_drops(&self, counts: [u64; DROP_REASONS.len()]) -> Result<(), StoreError> {
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

    /// Events, groups, drops by reason, size on disk, and the disk budget with what it
    /// removed.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        Ok(Stats {
            events: self.event_count()?,
            groups: self.groups.len() as u64,
            dropped: self
                .dropped()?
                .into_iter()
                .map(|(r, n)| (r.as_str().to_owned(), n))
                .collect(),
            size_on_disk: self.db.size_on_disk()?,
            estimated_size: self.estimated_size(),
            disk_budget: self.disk_budget()?,
            budget_removed: self.meta_u64(keys::BUDGET_REMOVED)?,
            budget_removed_bytes: self.meta_u64(keys::BUDGET_REMOVED_BYTES)?,
            repeats_counted: self.repeats_counted()?,
        })
    }
}

//! The spool: where a program writes its events while another process holds the database.
//!
//! sled lets one process open a database. A program that finds its database locked writes
//! each event as a JSON line to its own file in `<db>.spool/`, holding an exclusive lock on
//! that file while it lives. The next [`Store::open`] merges every spool file whose owner is
//! gone (its lock is free) into the database and removes it; files of live owners are left
//! for later. Events already present (a merge cut short) are not stored twice, and a torn
//! last line (a crash mid-write) is skipped, as is a line longer than [`MAX_LINE`] (read
//! past, never held whole). A file in the folder that is not a regular file is moved
//! aside, never opened.
//!
//! A program that spools keeps trying its database, and once it opens it merges its own
//! spool into it ([`merge_own`]). While it spools, its file is held to `spool_max_bytes`:
//! an event that would grow it past that first drops the oldest events (a quarter of the
//! cap at least, so that the file is rewritten once per quarter of new events), counted as
//! [`DropReason::SpoolFull`].
//!
//! The same file serves as the journal of panics of a program that holds its database: the
//! panic hook appends the finished event here, then hands it to the background writer,
//! which stores it in the database. A `write` reaches the operating system at once, so the
//! event survives the process ending right after the hook (a panic in `main`,
//! `panic = "abort"`, `kill -9`) for a fraction of the cost of storing and flushing it. A
//! database flush empties the journal again once every event in it is stored (see
//! [`Store::flush`]).

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::StoreError;
use crate::model::drop::{DropCounters, DropReason};
use crate::model::event::CrashEvent;
use crate::pipeline::resolve::modules::ModuleFiles;
use crate::store::db::Store;

/// Spooled events stored at once when merging.
const MERGE_BATCH: usize = 512;

/// The longest spool line read: far more than an event takes (its texts and request are
/// capped), so a longer line is not one the spool wrote whole, and is skipped without
/// being read into memory.
const MAX_LINE: usize = 8 << 20;

/// The spool directory of a database.
pub(crate) fn spool_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".spool");
    db.with_file_name(name)
}

/// This process's spool file.
#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
    file: Mutex<File>,
    /// Lines appended since the file was made; only grows, changed under the file's lock.
    appended: AtomicU64,
    /// `appended` when the file was last emptied.
    emptied_at: AtomicU64,
    /// The file's length, changed under the file's lock.
    bytes: AtomicU64,
    /// The size the file may reach, and where the events dropped to keep it are counted;
    /// none for a journal, which each flush empties.
    cap: Option<(u64, Arc<DropCounters>)>,
}

thread_local! {
    /// Each thread's buffer for the line of an event.
    static LINE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The largest line buffer a thread keeps for its next event.
const MAX_KEPT_LINE: usize = 1 << 16;

/// How many times an append tries the file's lock, yielding in between, before it sleeps.
const YIELDS: u32 = 200;
/// Sleeps of a millisecond after that before an append gives up.
const SLEEPS: u32 = 2_000;

impl Spool {
    /// A journal for the database at `db` (see [`Store::journal`]): not capped, each flush
    /// empties it.
    pub(crate) fn create(db: &Path) -> Result<Spool, StoreError> {
        Spool::create_with(db, None)
    }

    /// The spool of a program whose database at `db` is held by another process: at most
    /// `max_bytes`, the oldest events dropped beyond and counted in `drops`.
    pub(crate) fn create_capped(
        db: &Path,
        max_bytes: u64,
        drops: Arc<DropCounters>,
    ) -> Result<Spool, StoreError> {
        Spool::create_with(db, Some((max_bytes, drops)))
    }

    fn create_with(db: &Path, cap: Option<(u64, Arc<DropCounters>)>) -> Result<Spool, StoreError> {
        let dir = spool_dir(db);
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Spool { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(err(&dir))?;
        let path = dir.join(format!(
            "{}-{:016x}.jsonl",
            std::process::id(),
            crate::model::random::random_u64()
        ));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err(&path))?;
        // Held for the life of the process: a merger leaves a locked file alone.
        file.try_lock()
            .map_err(|e| match e {
                std::fs::TryLockError::Error(io) => io,
                std::fs::TryLockError::WouldBlock => std::io::ErrorKind::WouldBlock.into(),
            })
            .map_err(err(&path))?;
        Ok(Spool {
            path,
            file: Mutex::new(file),
            appended: AtomicU64::new(0),
            emptied_at: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            cap,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event in one `write`, which survives the process ending once it
    /// returns. Waits a bounded time for the file (many threads may panic at once) and never
    /// blocks for good: it yields while the lock is briefly taken, then sleeps.
    pub(crate) fn append(&self, event: &CrashEvent) -> Result<(), StoreError> {
        // The thread's line buffer, which keeps its capacity from one event to the next;
        // a fresh one while the thread's locals are being destroyed.
        let mut line = LINE.try_with(Cell::take).unwrap_or_default();
        line.clear();
        if serde_json::to_writer(&mut line, event).is_err() {
            line.clear();
        }
        line.push(b'\n');
        let written = self.write_line(&line);
        if line.capacity() <= MAX_KEPT_LINE {
            let _ = LINE.try_with(|l| l.set(line));
        }
        written
    }

    fn write_line(&self, line: &[u8]) -> Result<(), StoreError> {
        let io = |source| StoreError::Spool {
            path: self.path.clone(),
            source,
        };
        for attempt in 0..YIELDS + SLEEPS {
            let Some(mut file) = crate::sync::try_lock(&self.file) else {
                if attempt < YIELDS {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
                continue;
            };
            if let Some((max, drops)) = &self.cap {
                let (len, held) = (line.len() as u64, self.bytes.load(Ordering::SeqCst));
                if len > *max {
                    drops.add(DropReason::SpoolFull);
                    return Ok(());
                }
                if held + len > *max {
                    let keep = (max / 4 * 3).saturating_sub(len);
                    let (left, dropped) = drop_oldest(&self.path, held, keep).map_err(io)?;
                    self.bytes.store(left, Ordering::SeqCst);
                    for _ in 0..dropped {
                        drops.add(DropReason::SpoolFull);
                    }
                }
            }
            file.write_all(line).map_err(io)?;
            self.bytes.fetch_add(line.len() as u64, Ordering::SeqCst);
            self.appended.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        Err(io(std::io::ErrorKind::TimedOut.into()))
    }

    /// The file's length on disk; 0 when it cannot be read.
    #[cfg(test)]
    fn len_on_disk(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// A mark of what was appended so far, for [`Spool::empty_if_unchanged`].
    pub(crate) fn mark(&self) -> u64 {
        self.appended.load(Ordering::SeqCst)
    }

    /// Whether lines were appended since the file was last emptied.
    pub(crate) fn holds_lines(&self) -> bool {
        self.mark() != self.emptied_at.load(Ordering::SeqCst)
    }

    /// Empties the file if nothing was appended since `mark` was taken: the caller knows
    /// that everything up to there is in the database, made durable by a flush that began
    /// after.
    pub(crate) fn empty_if_unchanged(&self, mark: u64) {
        // None: an append is under way.
        let Some(file) = crate::sync::try_lock(&self.file) else {
            return;
        };
        if self.appended.load(Ordering::SeqCst) == mark
            && self.emptied_at.load(Ordering::SeqCst) != mark
            && file.set_len(0).is_ok()
        {
            self.bytes.store(0, Ordering::SeqCst);
            self.emptied_at.store(mark, Ordering::SeqCst);
        }
    }
}

/// Merges the spool files of finished programs into `store`.
pub(super) fn merge_into(store: &Store) -> Result<(), StoreError> {
    let dir = spool_dir(store.path());
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Spool { path: dir, source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let paths = files;
    let mut files = crate::pipeline::resolve::modules::ModuleFiles::default();
    for path in paths {
        let io = |source| StoreError::Spool {
            path: path.clone(),
            source,
        };
        let file = match crate::untrusted::open_regular(&path, true) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if crate::untrusted::is_not_regular(&e) => {
                crate::untrusted::set_aside(&path, "not a spool file: not a regular file");
                continue;
            }
            Err(e) => return Err(io(e)),
        };
        if file.try_lock().is_err() {
            continue; // its program is still running
        }
        merge_lines(store, &file, true, &mut files, io)?;
        store.flush()?;
        std::fs::remove_file(&path).map_err(io)?;
    }
    // Leave no empty directory behind; another program may have just created a file.
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}

/// Stores the events of the spool lines `reader` gives that `store` lacks; a last line with
/// no end is read too when `torn_too` (its writer is gone). A line over [`MAX_LINE`] is
/// read past and skipped, said once a file. Returns the bytes of the lines read and how
/// many events were stored.
fn merge_lines(
    store: &Store,
    reader: impl Read,
    torn_too: bool,
    files: &mut ModuleFiles,
    io: impl Fn(std::io::Error) -> StoreError,
) -> Result<(u64, u64), StoreError> {
    // Stored a batch at a time: an old event rewrites the block its id falls in.
    let mut batch: Vec<CrashEvent> = Vec::new();
    let (mut read, mut stored) = (0, 0);
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut said = false;
    loop {
        let got =
            crate::untrusted::read_line_capped(&mut reader, &mut line, MAX_LINE).map_err(&io)?;
        if got.read == 0 || !(got.whole || torn_too) {
            break;
        }
        read += got.read;
        if got.too_long {
            if !std::mem::replace(&mut said, true) {
                crate::diag::say(&format!(
                    "stacktrace: skipped a spooled line of {} bytes (over the {} MiB \
                     a spooled event may take) while merging into {}",
                    got.read,
                    MAX_LINE >> 20,
                    store.path().display()
                ));
            }
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let Ok(mut event) = serde_json::from_slice::<CrashEvent>(text) else {
            continue;
        };
        let repeated = batch.iter().any(|e| e.id == event.id);
        if !repeated && !store.contains_event(event.id)? {
            // A panic journaled as return addresses, its program gone before it was
            // stored: resolved from its modules' files while they are the same build.
            crate::pipeline::resolve::modules::resolve_journaled(&mut event, None, files);
            batch.push(event);
        }
        if batch.len() == MERGE_BATCH {
            store.insert_batch(&batch)?;
            stored += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_batch(&batch)?;
        stored += batch.len() as u64;
    }
    Ok((read, stored))
}

/// Stores in `store` the events of this program's own spool from byte `from` on, which the
/// store lacks: before the store is the sink, to merge the most while nothing reads it yet,
/// and after ([`merge_own`]). Returns where the lines read end and how many were stored.
pub(crate) fn merge_own_from(
    store: &Store,
    spool: &Spool,
    from: u64,
) -> Result<(u64, u64), StoreError> {
    let io = |source| StoreError::Spool {
        path: spool.path.clone(),
        source,
    };
    let mut file = File::open(&spool.path).map_err(io)?;
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let (read, stored) = merge_lines(store, &file, false, &mut ModuleFiles::default(), io)?;
    Ok((from + read, stored))
}

/// Merges the rest of this program's own spool into `store`, from byte `from` on, once new
/// events go to the store: the lines appended until it became the sink, and those a thread
/// was appending meanwhile. The file is emptied when nothing was appended since it was
/// read; a line appended after stays in it, and the next open merges it once this program
/// ended. Returns how many events were stored.
pub(crate) fn merge_own(store: &Store, spool: &Spool, mut from: u64) -> Result<u64, StoreError> {
    let mut stored = 0;
    for _ in 0..3 {
        let mark = spool.mark();
        let (to, n) = merge_own_from(store, spool, from)?;
        from = to;
        stored += n;
        store.flush()?;
        if spool.mark() == mark {
            spool.empty_if_unchanged(mark);
            break;
        }
    }
    Ok(stored)
}

/// Drops the oldest lines of the spool file at `path`, `held` bytes long, until at most
/// `keep` bytes are left, cutting at a line's end; returns the bytes left and the lines
/// dropped. Called under the file's lock: the kept lines are copied to the file's start and
/// the file cut there, so that the appending handle writes after them.
fn drop_oldest(path: &Path, held: u64, keep: u64) -> std::io::Result<(u64, u64)> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let held = held.max(file.metadata()?.len());
    let want = held.saturating_sub(keep);
    let mut buf = vec![0u8; 256 << 10];
    let (mut at, mut lines, mut cut) = (0u64, 0u64, None);
    while cut.is_none() {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (i, b) in buf.iter().take(n).enumerate() {
            if *b == b'\n' {
                lines += 1;
                let end = at + i as u64 + 1;
                if end >= want {
                    cut = Some(end);
                    break;
                }
            }
        }
        at += n as u64;
    }
    // No line ends past the cut: what is there is one torn line, dropped whole.
    let cut = cut.unwrap_or(at);
    let (mut from, mut to) = (cut, 0u64);
    loop {
        file.seek(SeekFrom::Start(from))?;
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        file.seek(SeekFrom::Start(to))?;
        file.write_all(buf.get(..n).unwrap_or_default())?;
        from += n as u64;
        to += n as u64;
    }
    file.set_len(to)?;
    Ok((to, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128, message: &str) -> CrashEvent {
        let mut e = CrashEvent::sample(id, message);
        e.level = crate::model::event::Level::Fatal;
        e.logger = "panic".into();
        e.error_type = "panic".into();
        e
    }

    fn journal_bytes(db: &Path) -> u64 {
        std::fs::read_dir(spool_dir(db))
            .map(|d| d.flatten().map(|e| e.metadata().unwrap().len()).sum())
            .unwrap_or(0)
    }

    #[test]
    fn a_flush_keeps_the_journal_until_every_journaled_event_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let store = Store::open(&db).unwrap();
        let e = event(0xa, "journaled, not yet stored");
        store.journal(&e).unwrap();
        assert!(store.journal_pending());
        // The writer has not stored it: a flush must leave it in the journal.
        store.flush().unwrap();
        assert!(store.journal_pending());
        assert!(journal_bytes(&db) > 0);

        store.insert(&e).unwrap();
        store.journaled_stored(1);
        store.flush().unwrap();
        assert!(!store.journal_pending());
        assert_eq!(journal_bytes(&db), 0);
    }

    #[test]
    fn a_line_appended_after_the_mark_is_not_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let spool = Spool::create(&db).unwrap();
        spool.append(&event(1, "first")).unwrap();
        let mark = spool.mark();
        spool.append(&event(2, "second")).unwrap();
        spool.empty_if_unchanged(mark);
        assert!(spool.holds_lines());
        assert!(spool.len_on_disk() > 0);
        spool.empty_if_unchanged(spool.mark());
        assert!(!spool.holds_lines());
        assert_eq!(spool.len_on_disk(), 0);
    }

    #[test]
    fn a_journaled_event_the_program_never_stored_is_merged_on_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let e = event(0xb, "the program ended before its writer stored this");
        {
            let store = Store::open(&db).unwrap();
            store.journal(&e).unwrap();
            store.flush().unwrap();
            assert!(store.get(e.id).unwrap().is_none());
        }
        let store = Store::open(&db).unwrap();
        assert_eq!(store.get(e.id).unwrap().map(|s| s.message), Some(e.message));
        assert!(!spool_dir(&db).exists());
    }
}

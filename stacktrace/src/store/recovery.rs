//! Getting a program storing again after a crash or damage: the snapshot a killed program
//! left half written, and a damaged database moved aside for a fresh one.

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Removes the snapshot files a killed process left half written, while no process holds
/// the database.
///
/// sled writes a snapshot of its page table to `snap.<lsn>.generating` and renames it to
/// `snap.<lsn>` once whole; it does this at every open that recovers new writes, that is at
/// the start of every program. A process killed before the rename leaves the `.generating`
/// file, which sled's next open takes for the newest snapshot (it sorts after the finished
/// one) and refuses as corrupt ("Read corrupted data at file offset None"), open after
/// open. Such a file is never needed: the finished snapshot before it and the log hold
/// everything.
pub(crate) fn remove_torn_snapshots(db: &Path) {
    let Ok(entries) = std::fs::read_dir(db) else {
        return;
    };
    let torn: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
        })
        .collect();
    if torn.is_empty() {
        return;
    }
    // sled locks its data file for as long as a process has the database open; a holder
    // may be writing one of these files right now.
    let Ok(data) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(db.join("db"))
    else {
        return;
    };
    if data.try_lock().is_err() {
        return;
    }
    for path in torn {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether sled's failure to open an existing database says its files are damaged, rather
/// than that the system refused: what the operating system reports (permission denied, a
/// read-only or full file system, a missing directory, an I/O error) is the system's and
/// may pass; what sled finds in the files' bytes (a short read, a value it does not
/// support, a state it calls a bug, data it calls corrupt) stays at every open.
pub(crate) fn is_damage(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => io.raw_os_error().is_none(),
        sled::Error::CollectionNotFound(_) => false,
        sled::Error::Unsupported(_)
        | sled::Error::ReportableBug(_)
        | sled::Error::Corruption { .. } => true,
    }
}

/// What to do about a damaged database, as the tool and the dashboard say it: what
/// [`install`](crate::install()) does with one.
#[cfg_attr(not(any(feature = "cli", feature = "dashboard")), allow(dead_code))]
pub(crate) const DAMAGE_REMEDY: &str =
    "the next program that installs stacktrace on it moves it aside and starts a fresh database";

/// A read or write of the open database at `db` that ran into damaged pages (which opening
/// it did not read), as [`StoreError::Corrupt`] naming it; any other error as it is.
#[cfg_attr(not(any(feature = "cli", feature = "dashboard")), allow(dead_code))]
pub(crate) fn named_damage(e: StoreError, db: &Path) -> StoreError {
    match e {
        StoreError::Io(sled::Error::Corruption { at, .. }) => StoreError::Corrupt {
            path: db.to_path_buf(),
            expected: "pages sled can read".into(),
            found: format!(
                "data sled refuses as corrupt (at file offset {})",
                at.map_or_else(|| "unknown".into(), |at| format!("{at:?}"))
            ),
        },
        other => other,
    }
}

/// Where a damaged database at `db` is moved: `<db>.corrupt-<seconds since the epoch>`,
/// with a counter added if that is taken.
pub(crate) fn aside_path(db: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    let with = |suffix: String| {
        let mut n = name.clone();
        n.push(suffix);
        db.with_file_name(n)
    };
    let first = with(format!(".corrupt-{secs}"));
    std::iter::once(first.clone())
        .chain((1..1000).map(|i| with(format!(".corrupt-{secs}-{i}"))))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Moves the damaged database at `db` aside (see [`aside_path`]); returns where it went
/// and how many events its manifest recorded, when it had one. On failure, says where it
/// was to go and why it did not.
pub(crate) fn move_aside(db: &Path) -> Result<(PathBuf, Option<u64>), (PathBuf, std::io::Error)> {
    let held = super::manifest::Manifest::read(db).map(|m| m.events);
    let aside = aside_path(db);
    match std::fs::rename(db, &aside) {
        Ok(()) => Ok((aside, held)),
        Err(e) => Err((aside, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_snapshot_goes_while_the_database_is_free_and_stays_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("db"), b"").unwrap();
        let torn = db.join("snap.0000000000001000.generating");
        let whole = db.join("snap.0000000000000800");
        std::fs::write(&torn, b"half").unwrap();
        std::fs::write(&whole, b"whole").unwrap();

        let holder = std::fs::File::open(db.join("db")).unwrap();
        holder.lock().unwrap();
        remove_torn_snapshots(&db);
        assert!(torn.exists(), "a holder may be writing it");
        drop(holder);

        remove_torn_snapshots(&db);
        assert!(!torn.exists());
        assert!(whole.exists());
    }

    // Pins: a program killed while sled wrote its snapshot at open left
    // `snap.<lsn>.generating`, which sled's next open took for the newest snapshot and
    // refused ("Read corrupted data at file offset None"), start after start.
    #[test]
    fn a_snapshot_left_half_written_by_a_killed_program_does_not_stop_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let e = crate::model::event::CrashEvent::sample(0x51, "stored before the kill");
        {
            let store = crate::Store::open(&db).unwrap();
            store.insert(&e).unwrap();
            store.flush().unwrap();
        }
        // What a kill between sled's creating the file and renaming it leaves: the file,
        // cut short, under a newer position than any finished snapshot.
        std::fs::write(db.join("snap.7FFFFFFFFFFFFFFF.generating"), b"cut short").unwrap();
        let store = crate::Store::open(&db).unwrap();
        assert_eq!(store.get(e.id).unwrap().map(|s| s.message), Some(e.message));
    }

    // Pins: only sled's Corruption error and its panics counted as damage; a cut or
    // garbled `conf` or data file failed as a plain open error (an unexpected end of file,
    // an unsupported value), so install did not move it aside and stored nothing, start
    // after start.
    #[test]
    fn a_cut_or_garbled_database_file_is_damage_not_an_open_error() {
        type Damage = fn(&[u8]) -> Vec<u8>;
        let variants: [(&str, &str, Damage); 5] = [
            ("conf", "cut short", |b| b[..b.len() / 2].to_vec()),
            ("conf", "garbled", |b| b.iter().map(|x| !x).collect()),
            ("db", "cut short", |b| b[..b.len().min(20)].to_vec()),
            ("db", "emptied", |_| Vec::new()),
            ("db", "garbled", |b| b.iter().map(|x| !x).collect()),
        ];
        for (file, how, damage) in variants {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("events.db");
            {
                let store = crate::Store::open(&db).unwrap();
                store
                    .insert(&crate::model::event::CrashEvent::sample(
                        0x51,
                        "before the damage",
                    ))
                    .unwrap();
                store.flush().unwrap();
            }
            let target = db.join(file);
            let bytes = std::fs::read(&target).unwrap();
            std::fs::write(&target, damage(&bytes)).unwrap();
            match crate::Store::open(&db) {
                Err(crate::StoreError::Corrupt { path, .. }) => assert_eq!(path, db),
                other => panic!("{file} {how}: expected Corrupt, got {other:?}"),
            }
        }
        // The system refusing is not damage: a file where the directory should be.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        std::fs::write(&db, b"not a directory").unwrap();
        let refused = crate::Store::open(&db);
        assert!(
            matches!(refused, Err(crate::StoreError::Open { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_taken_aside_path_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("events.db");
        let first = aside_path(&db);
        assert!(first
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("events.db.corrupt-"));
        std::fs::create_dir_all(&first).unwrap();
        let second = aside_path(&db);
        assert_ne!(first, second);
        assert!(second
            .to_string_lossy()
            .starts_with(&*first.to_string_lossy()));
    }
}

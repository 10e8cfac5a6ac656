//! The record of each release: when it was first and last seen, its events and new groups,
//! and its sessions by outcome; and resolving a group in a release.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::transaction::{TransactionalTree, UnabortableTransactionError};

use crate::error::StoreError;
use crate::model::event::CrashEvent;
use crate::model::release;
use crate::store::db::Store;
use crate::store::groups::group::{Group, GroupStatus};
use crate::store::keys;

/// A release, as the database has seen it: its events and the groups it started, and the
/// sessions of its processes (each process that installed the tracker) by how they ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The release's name (`app@1.4.0`, or as set in [`Config::release`](crate::Config::release)).
    pub name: String,
    /// When an event or a session of it was first seen, microseconds since the epoch.
    pub first_seen_us: u64,
    /// When one was last seen.
    pub last_seen_us: u64,
    /// Events stored.
    pub events: u64,
    /// Groups whose first event came from this release.
    pub new_groups: u64,
    /// Sessions: processes that installed the tracker, ended or not.
    pub sessions: u64,
    /// Sessions that ended cleanly without an error event.
    pub clean: u64,
    /// Sessions that ended cleanly after an error event (level error or fatal).
    pub errored: u64,
    /// Sessions that crashed: a panic in `main`, an abort, a fatal signal, an end without a
    /// clean shutdown.
    pub crashed: u64,
}

impl Release {
    /// Sessions not ended yet: running, or ended in a way the next open settles.
    pub fn open_sessions(&self) -> u64 {
        self.sessions
            .saturating_sub(self.clean)
            .saturating_sub(self.errored)
            .saturating_sub(self.crashed)
    }

    /// The share of sessions that did not crash, from 0 to 1; `None` without sessions.
    pub fn crash_free_rate(&self) -> Option<f64> {
        (self.sessions > 0).then(|| 1.0 - self.crashed as f64 / self.sessions as f64)
    }

    /// The share of sessions that ended errored, from 0 to 1; `None` without sessions.
    pub fn errored_rate(&self) -> Option<f64> {
        (self.sessions > 0).then(|| self.errored as f64 / self.sessions as f64)
    }

    fn seen_at(&mut self, us: u64) {
        if self.first_seen_us == 0 || us < self.first_seen_us {
            self.first_seen_us = us;
        }
        self.last_seen_us = self.last_seen_us.max(us);
    }
}

/// A group resolved in a release: the release, and when it was first seen (or, for one not
/// seen yet, when the group was resolved), which orders it against releases that are not
/// semantic versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedIn {
    /// The release the fix is in.
    pub release: String,
    /// Its place among releases that are not semantic versions.
    pub first_seen_us: u64,
}

type TxResult<T> = Result<T, UnabortableTransactionError>;

fn read(tree: &TransactionalTree, name: &str) -> TxResult<Release> {
    let mut r = tree
        .get(name.as_bytes())?
        .and_then(|v| keys::decode::<Release>(&v, String::new).ok())
        .unwrap_or_default();
    r.name = name.to_owned();
    Ok(r)
}

/// Reads, changes and writes a release's record inside a transaction.
pub(in crate::store) fn update(
    tree: &TransactionalTree,
    name: &str,
    change: impl FnOnce(&mut Release),
) -> TxResult<Release> {
    let mut r = read(tree, name)?;
    change(&mut r);
    tree.insert(name.as_bytes(), keys::encode(&r))?;
    Ok(r)
}

/// Counts a batch's events in their releases (events without one are in none); returns
/// when each release of the batch was first seen.
pub(in crate::store) fn note_events<'a>(
    tree: &TransactionalTree,
    events: impl Iterator<Item = &'a CrashEvent>,
) -> TxResult<BTreeMap<String, u64>> {
    let mut batch: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for e in events.filter(|e| !e.release().is_empty()) {
        let (first, last, n) =
            batch
                .entry(e.release())
                .or_insert((e.timestamp_us, e.timestamp_us, 0));
        *first = (*first).min(e.timestamp_us);
        *last = (*last).max(e.timestamp_us);
        *n += 1;
    }
    let mut seen = BTreeMap::new();
    for (name, (first, last, n)) in batch {
        let r = update(tree, name, |r| {
            r.seen_at(first);
            r.seen_at(last);
            r.events = r.events.saturating_add(n);
        })?;
        seen.insert(name.to_owned(), r.first_seen_us);
    }
    Ok(seen)
}

/// Counts a new group in the release of its first event.
pub(in crate::store) fn note_new_group(tree: &TransactionalTree, name: &str) -> TxResult<()> {
    if !name.is_empty() {
        update(tree, name, |r| {
            r.new_groups = r.new_groups.saturating_add(1)
        })?;
    }
    Ok(())
}

/// Counts a session in its release's record: `started` when it began (counted once), and
/// its end when it ended (`None` while open).
pub(in crate::store) fn note_session(
    tree: &TransactionalTree,
    name: &str,
    started: Option<u64>,
    ended: Option<(crate::store::releases::sessions::Outcome, u64)>,
) -> TxResult<()> {
    use crate::store::releases::sessions::Outcome;
    if name.is_empty() {
        return Ok(());
    }
    update(tree, name, |r| {
        if let Some(us) = started {
            r.sessions = r.sessions.saturating_add(1);
            r.seen_at(us);
        }
        if let Some((outcome, us)) = ended {
            let n = match outcome {
                Outcome::Clean => &mut r.clean,
                Outcome::Errored => &mut r.errored,
                Outcome::Crashed => &mut r.crashed,
                Outcome::Open => return,
            };
            *n = n.saturating_add(1);
            r.seen_at(us);
        }
    })?;
    Ok(())
}

/// Whether an event reopens a group resolved in `resolved`: its release is newer. An event
/// without a release could be of any build, and reopens it.
pub(in crate::store) fn reopens(
    resolved: &ResolvedIn,
    event: &CrashEvent,
    seen: &BTreeMap<String, u64>,
) -> bool {
    let name = event.release();
    if name.is_empty() {
        return true;
    }
    let event_seen = seen.get(name).copied().unwrap_or(event.timestamp_us);
    release::is_newer(name, event_seen, &resolved.release, resolved.first_seen_us)
}

impl Store {
    /// Every release the database has seen (in events or sessions), oldest first: by
    /// semantic version when every name holds one (`1.9.0` before `1.10.0`, `app@` prefixes
    /// allowed), else by when each was first seen.
    pub fn releases(&self) -> Result<Vec<Release>, StoreError> {
        let mut out = Vec::new();
        for item in self.releases.iter() {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let mut r: Release = keys::decode(&v, || format!("releases/{name}"))?;
            r.name = name;
            out.push(r);
        }
        release::sort_oldest_first(&mut out, |r| &r.name, |r| r.first_seen_us);
        Ok(out)
    }

    /// The release of this name, if the database has seen it.
    pub fn release(&self, name: &str) -> Result<Option<Release>, StoreError> {
        match self.releases.get(name.as_bytes())? {
            Some(v) => {
                let mut r: Release = keys::decode(&v, || format!("releases/{name}"))?;
                r.name = name.to_owned();
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// The newest release the database has seen (see [`Store::releases`] for the order).
    pub fn current_release(&self) -> Result<Option<Release>, StoreError> {
        Ok(self.releases()?.pop())
    }

    /// Marks a group fixed in `release`: an event of a newer release reopens it as a
    /// regression, and one of that release or an older build is counted and leaves it
    /// resolved. Releases are compared by semantic version when both names hold one, else
    /// by when each was first seen (a release not seen yet counts as first seen now).
    /// `None` when there is no such group; [`StoreError::InvalidRelease`] for a name that is
    /// empty, longer than 200 bytes or holds control characters.
    pub fn resolve_in_release(
        &self,
        fingerprint: &str,
        release: &str,
    ) -> Result<Option<Group>, StoreError> {
        if !release::is_valid(release) {
            return Err(StoreError::InvalidRelease {
                release: release::cut(release),
                expected: release::EXPECTED,
            });
        }
        let name = release.trim();
        let first_seen_us = match self.release(name)? {
            Some(r) if r.first_seen_us > 0 => r.first_seen_us,
            _ => crate::model::time::now_us(),
        };
        let resolved = ResolvedIn {
            release: name.to_owned(),
            first_seen_us,
        };
        self.change_group(fingerprint, |g| {
            g.status = GroupStatus::Resolved;
            g.regressed = false;
            g.resolved_in = Some(resolved.clone());
        })
    }

    /// Marks a group fixed in the newest release the database has seen
    /// ([`Store::current_release`]); see [`Store::resolve_in_release`].
    /// [`StoreError::InvalidRelease`] when it has seen none.
    pub fn resolve_in_current_release(
        &self,
        fingerprint: &str,
    ) -> Result<Option<Group>, StoreError> {
        match self.current_release()? {
            Some(r) => self.resolve_in_release(fingerprint, &r.name),
            None => Err(StoreError::InvalidRelease {
                release: String::new(),
                expected: "a release the database has seen (it has seen none: set a release, \
                           or install with install!())",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128, release: &str) -> CrashEvent {
        let mut e = CrashEvent::sample(id, "boom");
        e.timestamp_us = id as u64;
        e.context.program_version = release.to_owned().into();
        e
    }

    fn status(store: &Store) -> (GroupStatus, bool, u64) {
        let g = store.group("fp").unwrap().unwrap();
        (g.status, g.regressed, g.count)
    }

    #[test]
    fn resolved_in_a_release_only_a_newer_one_or_an_unknown_build_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        store.insert(&event(10, "app@1.9.0")).unwrap();
        let g = store
            .resolve_in_release("fp", "app@1.9.0")
            .unwrap()
            .unwrap();
        assert_eq!(g.resolved_in.unwrap().first_seen_us, 10);
        // Older by version though seen later, then the same release: counted, resolved.
        let outcome = store.insert(&event(20, "app@1.2.0")).unwrap();
        assert!(!outcome.regressed);
        store.insert(&event(30, "app@1.9.0")).unwrap();
        assert_eq!(status(&store), (GroupStatus::Resolved, false, 3));
        // 1.10.0 is newer than 1.9.0, though it sorts before it as text.
        let outcome = store.insert(&event(40, "app@1.10.0")).unwrap();
        assert!(outcome.regressed);
        assert_eq!(status(&store), (GroupStatus::Unresolved, true, 4));
        // An event without a release could be any build: it reopens.
        store.resolve_in_release("fp", "app@1.10.0").unwrap();
        store.insert(&event(50, "")).unwrap();
        assert_eq!(status(&store), (GroupStatus::Unresolved, true, 5));
        // Counted in their releases, and the group in the release of its first event.
        let r = store.release("app@1.9.0").unwrap().unwrap();
        assert_eq!(
            (r.events, r.new_groups, r.first_seen_us, r.last_seen_us),
            (2, 1, 10, 30)
        );
        assert_eq!(store.current_release().unwrap().unwrap().name, "app@1.10.0");
    }

    #[test]
    fn bad_releases_and_unknown_groups_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        // No release seen: there is no current one.
        store.insert(&event(10, "")).unwrap();
        assert!(matches!(
            store.resolve_in_current_release("fp"),
            Err(StoreError::InvalidRelease { .. })
        ));
        for bad in ["", " ", "1.0\r", &"x".repeat(201)] {
            let err = store.resolve_in_release("fp", bad).unwrap_err();
            assert!(matches!(err, StoreError::InvalidRelease { .. }), "{bad:?}");
            assert!(err.to_string().len() < 300, "{err}");
        }
        assert_eq!(status(&store).0, GroupStatus::Unresolved);
        assert_eq!(store.resolve_in_release("nope", "1.0.0").unwrap(), None);
        // A release not seen yet is placed at the time it was named: the control.
        let g = store.resolve_in_release("fp", "later").unwrap().unwrap();
        assert_eq!(g.status, GroupStatus::Resolved);
    }

    #[test]
    fn a_group_stored_before_releases_reads_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        // As an earlier version wrote it: no first release, no release resolved in.
        let old = br#"{"fingerprint":"fp","title":"boom","error_type":"","level":"error","count":2,"first_seen_us":1,"last_seen_us":2,"last_event":"00000000000000000000000000000002","status":"resolved","regressed":false}"#;
        let mut value = vec![keys::FORMAT_VERSION];
        value.extend_from_slice(old);
        store.groups.insert("fp", value).unwrap();
        let g = store.group("fp").unwrap().unwrap();
        assert_eq!(
            (g.first_release.as_str(), g.resolved_in.is_none()),
            ("", true)
        );
        // Resolved outright: any event reopens it, as before.
        store.insert(&event(10, "1.0.0")).unwrap();
        assert_eq!(status(&store), (GroupStatus::Unresolved, true, 3));
    }
}

//! Repeats counted into groups without their events: occurrences of a failure whose full
//! copies a burst left no room for, counted by the runtime and added to the group of a
//! stored copy.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use crate::error::StoreError;
use crate::store::db::Store;
use crate::store::event_count::from_transaction;
use crate::store::groups::group::Group;
use crate::store::keys;

/// Occurrences of a group whose events were not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Repeated {
    /// The group.
    pub(crate) fingerprint: String,
    /// How many.
    pub(crate) repeats: u64,
    /// The time of the latest, microseconds since the epoch.
    pub(crate) last_us: u64,
}

impl Store {
    /// Adds occurrences without events to their groups' counts and last-seen times, to
    /// their groups' trends (in the hour of the latest: the runtime adds them within moments
    /// of their capture), and to the database's count of repeats counted, in one
    /// transaction. A group that is not stored takes none.
    pub(crate) fn add_repeats(&self, repeated: &[Repeated]) -> Result<(), StoreError> {
        let _writing = self.writing()?;
        let meta = &self.postings.meta;
        let hours = self.repeats_tree()?;
        (&self.groups, meta, &hours)
            .transaction(|(groups, meta, hours)| {
                let mut added = 0u64;
                for r in repeated {
                    let Some(old) = groups.get(r.fingerprint.as_bytes())? else {
                        continue;
                    };
                    // A record that does not decode is rebuilt by its next event.
                    let Ok(mut g) = keys::decode::<Group>(&old, String::new) else {
                        continue;
                    };
                    g.count = g.count.saturating_add(r.repeats);
                    g.last_seen_us = g.last_seen_us.max(r.last_us);
                    groups.insert(r.fingerprint.as_bytes(), keys::encode(&g))?;
                    added = added.saturating_add(r.repeats);
                    let key = hour_key(&r.fingerprint, r.last_us);
                    let n = hours
                        .get(&key)?
                        .map_or(0, |v| keys::u64_of(&v))
                        .saturating_add(r.repeats);
                    hours.insert(key, &n.to_be_bytes())?;
                }
                let total = meta
                    .get(keys::REPEATS_COUNTED)?
                    .map_or(0, |v| keys::u64_of(&v))
                    .saturating_add(added);
                meta.insert(keys::REPEATS_COUNTED, &total.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(from_transaction)
    }

    /// The repeats of one group (or of all, `None`) counted in the hours from `start_us` to
    /// `end_us`: each hour's start and its number.
    pub(crate) fn repeats_by_hour(
        &self,
        fingerprint: Option<&str>,
        start_us: u64,
        end_us: u64,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let tree = self.repeats_tree()?;
        let mut out = Vec::new();
        let prefix = fingerprint.map_or_else(Vec::new, |fp| hour_key(fp, 0)[..=fp.len()].to_vec());
        for item in tree.scan_prefix(prefix) {
            let (k, v) = item?;
            let Some(hour) = k
                .len()
                .checked_sub(8)
                .and_then(|at| <[u8; 8]>::try_from(&k[at..]).ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if (start_us..end_us).contains(&hour) {
                out.push((hour, keys::u64_of(&v)));
            }
        }
        Ok(out)
    }

    fn repeats_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(keys::REPEATS)?)
    }

    /// Occurrences counted in their groups whose events were not stored: repeats of a
    /// stored failure while the writer's queue was full.
    pub fn repeats_counted(&self) -> Result<u64, StoreError> {
        self.meta_u64(keys::REPEATS_COUNTED)
    }
}

/// The key of a group's repeats in the hour of `at_us` (see [`keys::REPEATS`]).
fn hour_key(fingerprint: &str, at_us: u64) -> Vec<u8> {
    const HOUR_US: u64 = 3_600_000_000;
    let mut key = Vec::with_capacity(fingerprint.len() + 9);
    key.extend_from_slice(fingerprint.as_bytes());
    key.push(0);
    key.extend_from_slice(&(at_us - at_us % HOUR_US).to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::CrashEvent;

    #[test]
    fn repeats_add_to_their_group_and_to_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let mut e = CrashEvent::sample(1, "boom");
        e.fingerprint = "fp".into();
        e.timestamp_us = 100;
        store.insert(&e).unwrap();
        let repeated = |fingerprint: &str, repeats, last_us| Repeated {
            fingerprint: fingerprint.into(),
            repeats,
            last_us,
        };
        store
            .add_repeats(&[repeated("fp", 41, 500), repeated("gone", 7, 9)])
            .unwrap();
        let g = store.group("fp").unwrap().unwrap();
        assert_eq!((g.count, g.last_seen_us), (42, 500));
        assert_eq!(store.repeats_counted().unwrap(), 41);
        assert_eq!(store.stats().unwrap().events, 1);
        // In the trends too, in the hour they were counted.
        let hour = crate::store::Window::ending_at_us(crate::store::Interval::Hour, 1, 500);
        assert_eq!(store.group_trend("fp", hour).unwrap().total(), 42);
        assert_eq!(store.trend(hour).unwrap().total(), 42);
        let later = crate::store::Window::ending_at_us(crate::store::Interval::Hour, 1, 4e9 as u64);
        assert_eq!(store.group_trend("fp", later).unwrap().total(), 0);
    }
}

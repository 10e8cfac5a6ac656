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
    /// Adds occurrences without events to their groups' counts and last-seen times, and to
    /// the database's count of repeats counted, in one transaction. A group since removed
    /// takes none.
    pub(crate) fn add_repeats(&self, repeated: &[Repeated]) -> Result<(), StoreError> {
        let _writing = self.writing()?;
        let meta = &self.postings.meta;
        (&self.groups, meta)
            .transaction(|(groups, meta)| {
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

    /// Occurrences counted in their groups whose events were not stored: repeats of a
    /// stored failure while the writer's queue was full.
    pub fn repeats_counted(&self) -> Result<u64, StoreError> {
        self.meta_u64(keys::REPEATS_COUNTED)
    }
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
    }
}

//! Crash events stored at an open and not yet handed to mail and forwarding. A crash is
//! reported by whichever process opens the database next (see the crash module): the
//! `stacktrace` tool or [`Store::open`] neither mails nor forwards, so the events wait here,
//! with what storing them did to their groups, for the next program that installs with mail
//! or forwarding.

use crate::error::StoreError;
use crate::model::event::CrashEvent;
use crate::store::db::{InsertOutcome, Store};

/// A crash event taken from the waiting list, with what storing it did to its group.
#[cfg_attr(not(any(feature = "mail", feature = "forward")), allow(dead_code))]
pub(crate) struct Unnotified {
    /// The event as stored.
    pub(crate) event: CrashEvent,
    /// What storing it did to its group, the group as it is now (mail reads it).
    #[cfg_attr(not(feature = "mail"), allow(dead_code))]
    pub(crate) outcome: InsertOutcome,
}

// Read only in a build with mail or forwarding.
#[cfg_attr(not(any(feature = "mail", feature = "forward")), allow(dead_code))]
impl Store {
    /// Records `events` (stored by [`Store::insert_batch`] with `outcomes`) as waiting; the
    /// flags of a group's outcome belong to its first event, as for the writer's batches.
    pub(super) fn add_unnotified(
        &self,
        events: &[CrashEvent],
        outcomes: &[InsertOutcome],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut seen: Vec<&str> = Vec::new();
        for e in events {
            let first = !seen.contains(&e.fingerprint.as_str());
            if first {
                seen.push(&e.fingerprint);
            }
            let outcome = outcomes
                .iter()
                .find(|o| o.group.fingerprint == e.fingerprint)
                .filter(|_| first);
            let flags = [
                u8::from(outcome.is_some_and(|o| o.new_group)),
                u8::from(outcome.is_some_and(|o| o.regressed)),
            ];
            batch.insert(&e.id.to_bytes(), &flags);
        }
        self.unnotified.apply_batch(batch)?;
        Ok(())
    }

    /// Takes the waiting crash events, oldest first: each is returned once, to the first
    /// caller (removed as it is read). An event no longer stored (removed by retention) is
    /// skipped.
    pub(crate) fn take_unnotified(&self) -> Result<Vec<Unnotified>, StoreError> {
        let mut out = Vec::new();
        for item in self.unnotified.iter() {
            let (key, flags) = item?;
            // Removed first: of two programs starting at once, one takes it.
            if self.unnotified.remove(&key)?.is_none() {
                continue;
            }
            let Some(id) = crate::store::keys::id_of_event_key(&key) else {
                continue;
            };
            let Some(event) = self.get(id)? else {
                continue;
            };
            let Some(group) = self.group(&event.fingerprint)? else {
                continue;
            };
            let outcome = InsertOutcome {
                new_group: flags.first() == Some(&1),
                regressed: flags.get(1) == Some(&1),
                group,
            };
            out.push(Unnotified { event, outcome });
        }
        Ok(out)
    }
}

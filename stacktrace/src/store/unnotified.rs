//! Crash events stored at an open and not yet handed to mail and forwarding. A crash is
//! reported by whichever process opens the database next (see the crash module): the
//! `stacktrace` tool or [`Store::open`] neither mails nor forwards, so the events wait here,
//! with what storing them did to their groups, for the next program that installs with mail
//! or forwarding. Mail and forwarding take an event each once, apart: a program with mail
//! only leaves it waiting for the next one that forwards, and the other way round.

use crate::error::StoreError;
use crate::model::event::CrashEvent;
#[cfg(test)]
use crate::model::event::EventId;
use crate::store::db::{InsertOutcome, Store};

/// A waiting event is waiting for mail.
pub(crate) const FOR_MAIL: u8 = 1;
/// A waiting event is waiting for forwarding.
pub(crate) const FOR_FORWARDING: u8 = 2;

/// A crash event taken from the waiting list, with what storing it did to its group.
#[cfg_attr(not(any(feature = "mail", feature = "forward")), allow(dead_code))]
pub(crate) struct Unnotified {
    /// Which of the takers asked for ([`FOR_MAIL`], [`FOR_FORWARDING`]) it was taken for:
    /// those it was still waiting for.
    pub(crate) taken_for: u8,
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
                FOR_MAIL | FOR_FORWARDING,
            ];
            batch.insert(&e.id.to_bytes(), &flags);
        }
        self.unnotified.apply_batch(batch)?;
        Ok(())
    }

    /// Takes the waiting crash events for `wanted` (a union of [`FOR_MAIL`] and
    /// [`FOR_FORWARDING`]), oldest first: each is returned once for each of the two, to the
    /// first caller that asks for it, and leaves the list when both took it. An event no
    /// longer stored (removed by retention) is skipped.
    pub(crate) fn take_unnotified(&self, wanted: u8) -> Result<Vec<Unnotified>, StoreError> {
        let mut out = Vec::new();
        for item in self.unnotified.iter() {
            let (key, mut flags) = item?;
            // Taken by changing the record from what was read: of two takers at once, one
            // takes each part.
            let taken_for = loop {
                // A record written before the two parts were kept waits for both.
                let waiting = flags.get(2).copied().unwrap_or(FOR_MAIL | FOR_FORWARDING);
                let taken = waiting & wanted;
                if taken == 0 {
                    break 0;
                }
                let left = waiting & !wanted;
                let new = (left != 0).then(|| {
                    [
                        flags.first().copied().unwrap_or(0),
                        flags.get(1).copied().unwrap_or(0),
                        left,
                    ]
                });
                match self.unnotified.compare_and_swap(
                    &key,
                    Some(&flags),
                    new.as_ref().map(|f| &f[..]),
                )? {
                    Ok(()) => break taken,
                    Err(e) => match e.current {
                        Some(current) => flags = current,
                        None => break 0,
                    },
                }
            };
            if taken_for == 0 {
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
            out.push(Unnotified {
                taken_for,
                event,
                outcome,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: a program with mail only took the waiting crash events, and they were
    // never forwarded by a later program with forwarding (and the other way round).
    #[test]
    fn mail_and_forwarding_each_take_a_waiting_event_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let events = [
            CrashEvent::sample(7, "segfault"),
            CrashEvent::sample(8, "killed"),
        ];
        let outcomes = store.insert_batch(&events).unwrap();
        store.add_unnotified(&events, &outcomes).unwrap();
        let ids = |taken: &[Unnotified]| taken.iter().map(|u| u.event.id.0).collect::<Vec<_>>();

        let mailed = store.take_unnotified(FOR_MAIL).unwrap();
        assert_eq!(ids(&mailed), [7, 8]);
        assert!(mailed.iter().all(|u| u.taken_for == FOR_MAIL));
        let new_groups = |taken: &[Unnotified]| {
            taken
                .iter()
                .map(|u| u.outcome.new_group)
                .collect::<Vec<_>>()
        };
        assert!(mailed[0].outcome.new_group, "the first of its group");
        assert!(store.take_unnotified(FOR_MAIL).unwrap().is_empty());

        // Still waiting for forwarding, with the group's flags kept.
        let forwarded = store.take_unnotified(FOR_MAIL | FOR_FORWARDING).unwrap();
        assert_eq!(ids(&forwarded), [7, 8]);
        assert!(forwarded.iter().all(|u| u.taken_for == FOR_FORWARDING));
        assert_eq!(new_groups(&forwarded), new_groups(&mailed));
        assert!(store
            .take_unnotified(FOR_MAIL | FOR_FORWARDING)
            .unwrap()
            .is_empty());
        assert_eq!(store.unnotified.len(), 0);
    }

    #[test]
    fn a_program_with_both_takes_both_parts_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let events = [CrashEvent::sample(3, "abort")];
        let outcomes = store.insert_batch(&events).unwrap();
        store.add_unnotified(&events, &outcomes).unwrap();
        // A record kept before the parts were told apart (two bytes) waits for both.
        store
            .unnotified
            .insert(EventId(3).to_bytes(), &[1u8, 0][..])
            .unwrap();

        let taken = store.take_unnotified(FOR_MAIL | FOR_FORWARDING).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].taken_for, FOR_MAIL | FOR_FORWARDING);
        assert!(store.take_unnotified(FOR_FORWARDING).unwrap().is_empty());
        assert!(store.take_unnotified(FOR_MAIL).unwrap().is_empty());
    }
}

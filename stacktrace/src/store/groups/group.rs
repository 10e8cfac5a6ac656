//! Groups: events of one fingerprint, with counts, first and last seen, and a status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use crate::error::StoreError;
use crate::model::event::{CrashEvent, EventId, Level};
use crate::store::db::Store;
use crate::store::event_count::from_transaction;
use crate::store::keys;
use crate::store::releases::record::{self, ResolvedIn};

/// Where a group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    /// Open: new occurrences are news.
    Unresolved,
    /// Fixed: a new occurrence reopens the group as a regression.
    Resolved,
    /// Known and accepted: occurrences are counted quietly.
    Ignored,
}

impl GroupStatus {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Unresolved => "unresolved",
            GroupStatus::Resolved => "resolved",
            GroupStatus::Ignored => "ignored",
        }
    }
}

impl fmt::Display for GroupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "unresolved" | "open" => Ok(GroupStatus::Unresolved),
            "resolved" => Ok(GroupStatus::Resolved),
            "ignored" => Ok(GroupStatus::Ignored),
            _ => Err(format!(
                "unknown group status {s:?}: expected unresolved, resolved or ignored"
            )),
        }
    }
}

/// How [`Store::groups`] orders groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupOrder {
    /// Most occurrences first.
    Count,
    /// Most recently seen first.
    #[default]
    LastSeen,
}

/// The events that share a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The shared fingerprint.
    pub fingerprint: String,
    /// Title of the first event (error type and message).
    pub title: String,
    /// Error type of the events.
    pub error_type: String,
    /// Level of the latest event.
    pub level: Level,
    /// Occurrences, including events since purged.
    pub count: u64,
    /// Time of the first occurrence, microseconds since the epoch.
    pub first_seen_us: u64,
    /// Time of the latest occurrence, microseconds since the epoch.
    pub last_seen_us: u64,
    /// The latest event.
    pub last_event: EventId,
    /// Status.
    pub status: GroupStatus,
    /// Whether the group came back after it was resolved (cleared by resolving it again).
    #[serde(default)]
    pub regressed: bool,
    /// The release of the group's first event (empty when it had none, or the group is
    /// older than releases).
    #[serde(default)]
    pub first_release: String,
    /// Resolved in a release: only an event of a newer release reopens the group; one of
    /// that release or an older build is counted and leaves it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_in: Option<ResolvedIn>,
}

fn group_from_first(event: &CrashEvent) -> Group {
    Group {
        fingerprint: event.fingerprint.clone(),
        title: event.title(),
        error_type: event.error_type.clone(),
        level: event.level,
        count: 1,
        first_seen_us: event.timestamp_us,
        last_seen_us: event.timestamp_us,
        last_event: event.id,
        status: GroupStatus::Unresolved,
        regressed: false,
        first_release: event.release().to_owned(),
        resolved_in: None,
    }
}

/// Whether an event reopens a group resolved in a release: its release is newer.
type Reopens<'a> = dyn Fn(&ResolvedIn, &CrashEvent) -> bool + 'a;

fn group_with_occurrence(mut g: Group, event: &CrashEvent, reopens: &Reopens<'_>) -> Group {
    g.count = g.count.saturating_add(1);
    g.level = event.level;
    // Events can arrive out of order (the writer and the panic hook store concurrently).
    g.first_seen_us = g.first_seen_us.min(event.timestamp_us);
    if event.timestamp_us >= g.last_seen_us {
        g.last_seen_us = event.timestamp_us;
        g.last_event = event.id;
    }
    let back = match &g.resolved_in {
        Some(release) => reopens(release, event),
        None => true,
    };
    if g.status == GroupStatus::Resolved && back {
        g.status = GroupStatus::Unresolved;
        g.regressed = true;
        g.resolved_in = None;
    }
    g
}

/// The group `old` (or a new one) after `events`, all of its fingerprint; `None` when
/// there are none.
fn group_after(old: Option<Group>, events: &[&CrashEvent], reopens: &Reopens<'_>) -> Option<Group> {
    let mut rest = events.iter();
    let mut g = match old {
        Some(g) => g,
        None => group_from_first(rest.next()?),
    };
    for e in rest {
        g = group_with_occurrence(g, e, reopens);
    }
    Some(g)
}

/// Counts each fingerprint's events in its group and removes `marker` from the meta tree,
/// all in one transaction: a marker still there says the groups were not counted, so
/// that completing its batch counts them once. Returns each group before and after.
pub(in crate::store) fn record_groups(
    (groups, meta, releases): (&sled::Tree, &sled::Tree, &sled::Tree),
    by_group: &[(&str, Vec<&CrashEvent>)],
    marker: &[u8],
) -> Result<Vec<(Option<Group>, Group)>, StoreError> {
    (groups, meta, releases)
        .transaction(|(groups, meta, releases)| {
            // The batch's releases are counted, and known, before any group is judged.
            let batch = by_group
                .iter()
                .flat_map(|(_, events)| events.iter().copied());
            let seen = record::note_events(releases, batch)?;
            let reopens =
                |resolved: &ResolvedIn, e: &CrashEvent| record::reopens(resolved, e, &seen);
            let mut out = Vec::with_capacity(by_group.len());
            for (fingerprint, events) in by_group {
                // A damaged group record is rebuilt from the events rather than blocking
                // every later event of the group.
                let old = groups
                    .get(fingerprint.as_bytes())?
                    .and_then(|b| keys::decode::<Group>(&b, String::new).ok());
                if let Some(new) = group_after(old.clone(), events, &reopens) {
                    if old.is_none() {
                        record::note_new_group(releases, &new.first_release)?;
                    }
                    groups.insert(fingerprint.as_bytes(), keys::encode(&new))?;
                    out.push((old, new));
                }
            }
            meta.remove(marker)?;
            Ok::<_, ConflictableTransactionError<()>>(out)
        })
        .map_err(from_transaction)
}

impl Store {
    /// Every group, ordered as asked.
    pub fn groups(&self, order: GroupOrder) -> Result<Vec<Group>, StoreError> {
        let mut out = Vec::new();
        for item in self.groups.iter() {
            let (k, v) = item?;
            out.push(keys::decode::<Group>(&v, || {
                format!("groups/{}", String::from_utf8_lossy(&k))
            })?);
        }
        match order {
            GroupOrder::Count => out.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(b.last_seen_us.cmp(&a.last_seen_us))
            }),
            GroupOrder::LastSeen => out.sort_by_key(|g| std::cmp::Reverse(g.last_seen_us)),
        }
        Ok(out)
    }

    /// The group of a fingerprint.
    pub fn group(&self, fingerprint: &str) -> Result<Option<Group>, StoreError> {
        match self.groups.get(fingerprint.as_bytes())? {
            Some(v) => Ok(Some(keys::decode(&v, || format!("groups/{fingerprint}"))?)),
            None => Ok(None),
        }
    }

    /// Sets a group's status; `None` when there is no such group. Resolving clears the
    /// regression mark, so that the next occurrence is a new regression.
    pub fn set_group_status(
        &self,
        fingerprint: &str,
        status: GroupStatus,
    ) -> Result<Option<Group>, StoreError> {
        self.change_group(fingerprint, |g| {
            g.status = status;
            g.resolved_in = None;
            if status != GroupStatus::Unresolved {
                g.regressed = false;
            }
        })
    }

    /// Changes a stored group in one read-modify-write; `None` when there is none. A
    /// record that does not decode is left as it is and its error returned.
    pub(crate) fn change_group(
        &self,
        fingerprint: &str,
        change: impl Fn(&mut Group),
    ) -> Result<Option<Group>, StoreError> {
        let mut decode_error = None;
        let updated = self
            .groups
            .update_and_fetch(fingerprint.as_bytes(), |old| {
                let old = old?;
                match keys::decode::<Group>(old, || format!("groups/{fingerprint}")) {
                    Ok(mut g) => {
                        change(&mut g);
                        Some(keys::encode(&g))
                    }
                    Err(e) => {
                        decode_error = Some(e);
                        Some(old.to_vec())
                    }
                }
            })?;
        if let Some(e) = decode_error {
            return Err(e);
        }
        match updated {
            Some(v) => Ok(Some(keys::decode(&v, || format!("groups/{fingerprint}"))?)),
            None => Ok(None),
        }
    }

    /// Marks a group fixed; see [`Store::set_group_status`].
    pub fn resolve(&self, fingerprint: &str) -> Result<Option<Group>, StoreError> {
        self.set_group_status(fingerprint, GroupStatus::Resolved)
    }

    /// Marks a group ignored; see [`Store::set_group_status`].
    pub fn ignore(&self, fingerprint: &str) -> Result<Option<Group>, StoreError> {
        self.set_group_status(fingerprint, GroupStatus::Ignored)
    }

    /// Reopens a group; see [`Store::set_group_status`].
    pub fn reopen(&self, fingerprint: &str) -> Result<Option<Group>, StoreError> {
        self.set_group_status(fingerprint, GroupStatus::Unresolved)
    }
}

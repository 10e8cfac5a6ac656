//! Groups a page at a time: one pass over the groups tree that keeps the groups a filter
//! accepts past a cursor, and sorts only the page, rather than sorting every group.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::error::StoreError;
use crate::store::db::Store;
use crate::store::groups::group::{Group, GroupOrder};
use crate::store::keys;

/// One page of groups, from [`Store::groups_page`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupPage {
    /// The groups on the page, in the order asked for.
    pub groups: Vec<Group>,
    /// The groups the filter accepts, on every page.
    pub matching: usize,
    /// The cursor of the next page (the last group's fingerprint), when there is one.
    pub next: Option<String>,
}

/// Where a group stands in `order`; ties go by fingerprint, so every group has one place
/// and a cursor names it.
fn compare(order: GroupOrder, a: &Group, b: &Group) -> Ordering {
    let by_order = match order {
        GroupOrder::Count => b
            .count
            .cmp(&a.count)
            .then(b.last_seen_us.cmp(&a.last_seen_us)),
        GroupOrder::LastSeen => b.last_seen_us.cmp(&a.last_seen_us),
    };
    by_order.then_with(|| a.fingerprint.cmp(&b.fingerprint))
}

/// The part of a group the totals read: the rest of the record is skipped, not decoded.
#[derive(Deserialize)]
struct Counted {
    count: u64,
}

impl Store {
    /// How many groups there are and how many events they counted (events since purged
    /// included), reading only each group's count.
    #[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
    pub(crate) fn group_totals(&self) -> Result<(u64, u64), StoreError> {
        let (mut groups, mut events) = (0u64, 0u64);
        for item in self.groups.iter() {
            let (k, v) = item?;
            let c: Counted =
                keys::decode(&v, || format!("groups/{}", String::from_utf8_lossy(&k)))?;
            groups += 1;
            events = events.saturating_add(c.count);
        }
        Ok((groups, events))
    }

    /// The first `limit` groups that `keep` accepts, in `order`, after the group whose
    /// fingerprint is `after` (the previous page's [`next`](GroupPage::next)); an unknown
    /// cursor gives an empty page.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = stacktrace::Store::open(dir.path().join("db")).unwrap();
    /// use stacktrace::{GroupOrder, GroupStatus};
    ///
    /// let open = |g: &stacktrace::Group| g.status == GroupStatus::Unresolved;
    /// let first = store.groups_page(GroupOrder::Count, None, 50, open)?;
    /// if let Some(next) = &first.next {
    ///     let second = store.groups_page(GroupOrder::Count, Some(next), 50, open)?;
    /// }
    /// # assert_eq!(first.matching, 0);
    /// # Ok::<(), stacktrace::StoreError>(())
    /// ```
    pub fn groups_page(
        &self,
        order: GroupOrder,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Group) -> bool,
    ) -> Result<GroupPage, StoreError> {
        let cursor = match after {
            Some(fp) => match self.group(fp)? {
                Some(g) => Some(g),
                None => {
                    return Ok(GroupPage {
                        groups: Vec::new(),
                        matching: 0,
                        next: None,
                    })
                }
            },
            None => None,
        };
        let mut matching = 0;
        let mut rest = Vec::new();
        for item in self.groups.iter() {
            let (k, v) = item?;
            let g: Group = keys::decode(&v, || format!("groups/{}", String::from_utf8_lossy(&k)))?;
            if !keep(&g) {
                continue;
            }
            matching += 1;
            if cursor
                .as_ref()
                .is_none_or(|c| compare(order, &g, c) == Ordering::Greater)
            {
                rest.push(g);
            }
        }
        // One more than the page says whether another page follows.
        let wanted = limit.saturating_add(1);
        if rest.len() > wanted {
            rest.select_nth_unstable_by(wanted, |a, b| compare(order, a, b));
            rest.truncate(wanted);
        }
        rest.sort_unstable_by(|a, b| compare(order, a, b));
        let more = rest.len() > limit;
        rest.truncate(limit);
        let next = if more {
            rest.last().map(|g| g.fingerprint.clone())
        } else {
            None
        };
        Ok(GroupPage {
            groups: rest,
            matching,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::{EventId, Level};
    use crate::GroupStatus;

    fn group(fp: &str, count: u64, last: u64) -> Group {
        Group {
            fingerprint: fp.into(),
            title: format!("title {fp}"),
            error_type: String::new(),
            level: Level::Error,
            count,
            first_seen_us: 1,
            last_seen_us: last,
            last_event: EventId::new(last),
            status: if count.is_multiple_of(2) {
                GroupStatus::Resolved
            } else {
                GroupStatus::Unresolved
            },
            regressed: false,
            first_release: String::new(),
            resolved_in: None,
        }
    }

    fn store_with(groups: &[Group]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        for g in groups {
            store
                .groups
                .insert(g.fingerprint.as_bytes(), keys::encode(g))
                .unwrap();
        }
        (dir, store)
    }

    #[test]
    fn pages_follow_each_other_in_the_order_of_all_groups() {
        let all: Vec<Group> = (0..37u64)
            .map(|i| group(&format!("fp{i:02}"), (i * 7) % 11, (i * 13) % 17))
            .collect();
        let (_dir, store) = store_with(&all);
        for order in [GroupOrder::Count, GroupOrder::LastSeen] {
            let mut expected = all.clone();
            expected.sort_by(|a, b| compare(order, a, b));
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .groups_page(order, after.as_deref(), 5, |_| true)
                    .unwrap();
                assert_eq!(page.matching, 37);
                assert!(page.groups.len() <= 5);
                seen.extend(page.groups);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{order:?}");
            // The order of the full listing, up to ties.
            let listed = store.groups(order).unwrap();
            let key = |g: &Group| (g.count, g.last_seen_us);
            if order == GroupOrder::Count {
                assert!(listed.iter().map(key).eq(seen.iter().map(key)));
            }
        }
    }

    #[test]
    fn the_filter_counts_matches_and_an_unknown_cursor_ends_the_listing() {
        let all: Vec<Group> = (0..10u64).map(|i| group(&format!("g{i}"), i, i)).collect();
        let (_dir, store) = store_with(&all);
        let open = |g: &Group| g.status == GroupStatus::Unresolved;
        let page = store
            .groups_page(GroupOrder::LastSeen, None, 3, open)
            .unwrap();
        assert_eq!(page.matching, 5);
        let fps: Vec<&str> = page.groups.iter().map(|g| g.fingerprint.as_str()).collect();
        assert_eq!(fps, ["g9", "g7", "g5"]);
        assert_eq!(page.next.as_deref(), Some("g5"));
        let last = store
            .groups_page(GroupOrder::LastSeen, Some("g5"), 3, open)
            .unwrap();
        let fps: Vec<&str> = last.groups.iter().map(|g| g.fingerprint.as_str()).collect();
        assert_eq!((fps, last.next), (vec!["g3", "g1"], None));
        let none = store
            .groups_page(GroupOrder::LastSeen, Some("nope"), 3, open)
            .unwrap();
        assert!(none.groups.is_empty() && none.next.is_none());
        assert_eq!(store.group_totals().unwrap(), (10, 45));
    }
}

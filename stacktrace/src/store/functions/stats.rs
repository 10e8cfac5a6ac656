//! One record per function and release in the `functions` tree, updated in place: counts
//! are added, a failure's event replaces the last one if newer.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::event::CrashEvent;
use crate::store::keys;
use crate::store::Store;

/// The loggers of the events of failed calls: an `Err` a captured function returned, a
/// panic.
const FAILURE_LOGGERS: [&str; 2] = ["capture", "panic"];

/// Groups kept per function and release, the most recent last.
const MAX_GROUPS: usize = 20;

/// How often a `#[capture]` function was called and failed in one release, with its last
/// failure and the groups of its failures' events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionStats {
    /// The function's path (or its `#[capture(name = "...")]`), as events show it.
    pub function: String,
    /// The release the calls ran in (empty when none was set).
    pub release: String,
    /// Calls counted.
    pub calls: u64,
    /// Calls that returned an `Err` or panicked.
    pub failures: u64,
    /// When the newest stored event of a failure was captured, in microseconds since the
    /// Unix epoch.
    #[serde(default)]
    pub last_failure_us: Option<u64>,
    /// That event's id, as 32 hex digits.
    #[serde(default)]
    pub last_event: Option<String>,
    /// Fingerprints of the groups its failures' events went to, the most recent last (at
    /// most 20).
    #[serde(default)]
    pub groups: Vec<String>,
}

impl FunctionStats {
    /// Failures per call, from 0 to 1 (0 when no call was counted). A failure's event
    /// may be stored before the writer sums its call: the rate never goes above 1.
    pub fn failure_rate(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        (self.failures as f64 / self.calls as f64).min(1.0)
    }
}

fn key_of(function: &str, release: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(function.len() + 1 + release.len());
    key.extend_from_slice(function.as_bytes());
    key.push(0);
    key.extend_from_slice(release.as_bytes());
    key
}

impl Store {
    fn functions_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(keys::FUNCTIONS)?)
    }

    /// Changes the record of `function` in `release` with `change` (a fresh one when there
    /// is none or it cannot be read).
    fn update_function(
        &self,
        tree: &sled::Tree,
        function: &str,
        release: &str,
        change: &dyn Fn(&mut FunctionStats),
    ) -> Result<(), StoreError> {
        tree.update_and_fetch(key_of(function, release), |old| {
            let mut stats = old
                .and_then(|v| keys::decode::<FunctionStats>(v, String::new).ok())
                .unwrap_or_else(|| FunctionStats {
                    function: function.to_owned(),
                    release: release.to_owned(),
                    ..FunctionStats::default()
                });
            change(&mut stats);
            Some(keys::encode(&stats))
        })?;
        Ok(())
    }

    /// Adds calls and failures counted in `release`: `(function, calls, failures)`.
    pub(crate) fn add_function_counts(
        &self,
        release: &str,
        counts: &[(String, u64, u64)],
    ) -> Result<(), StoreError> {
        let tree = self.functions_tree()?;
        for (function, calls, failures) in counts {
            self.update_function(&tree, function, release, &|s| {
                s.calls = s.calls.saturating_add(*calls);
                s.failures = s.failures.saturating_add(*failures);
            })?;
        }
        Ok(())
    }

    /// Records the stored events of failed captured calls as their function's failures:
    /// the innermost call of an event's chain is the one that failed.
    pub(crate) fn note_function_failures(&self, events: &[CrashEvent]) -> Result<(), StoreError> {
        let mut tree = None;
        // Only a `#[capture]` error or a panic is a failure of the call; an event captured
        // by hand inside a captured call is not.
        for e in events
            .iter()
            .filter(|e| FAILURE_LOGGERS.contains(&e.logger.as_str()))
        {
            let Some(call) = e.calls.last() else { continue };
            let tree = match &tree {
                Some(t) => t,
                None => tree.insert(self.functions_tree()?),
            };
            let (at, id, group) = (e.timestamp_us, e.id.to_string(), e.fingerprint.clone());
            self.update_function(tree, &call.function, &e.context.program_version, &|s| {
                if s.last_failure_us.is_none_or(|last| last <= at) {
                    s.last_failure_us = Some(at);
                    s.last_event = Some(id.clone());
                }
                if !group.is_empty() {
                    s.groups.retain(|g| *g != group);
                    s.groups.push(group.clone());
                    if s.groups.len() > MAX_GROUPS {
                        s.groups.remove(0);
                    }
                }
            })?;
        }
        Ok(())
    }

    /// Every counted function, by name and then release.
    pub fn functions(&self) -> Result<Vec<FunctionStats>, StoreError> {
        let tree = self.functions_tree()?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (key, value) = item?;
            out.push(keys::decode(&value, || {
                format!("functions/{}", String::from_utf8_lossy(&key))
            })?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::CapturedCall;

    fn failure(function: &str, release: &str, at: u64, group: &str) -> CrashEvent {
        let mut e = CrashEvent::sample(u128::from(at) << 64, "failed");
        e.logger = "capture".into();
        e.timestamp_us = at;
        e.fingerprint = group.to_owned();
        e.context.program_version = release.to_owned().into();
        e.calls.push(CapturedCall {
            function: "outer".into(),
            ..CapturedCall::default()
        });
        e.calls.push(CapturedCall {
            function: function.into(),
            ..CapturedCall::default()
        });
        e
    }

    #[test]
    fn counts_add_up_by_function_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        store
            .add_function_counts("1.0", &[("app::pay".into(), 10, 1)])
            .unwrap();
        store
            .add_function_counts("1.0", &[("app::pay".into(), 5, 2)])
            .unwrap();
        store
            .add_function_counts("2.0", &[("app::pay".into(), 4, 0)])
            .unwrap();
        let all = store.functions().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].release.as_str(), all[0].calls, all[0].failures),
            ("1.0", 15, 3)
        );
        assert!((all[0].failure_rate() - 0.2).abs() < 1e-9);
        assert_eq!(
            (all[1].release.as_str(), all[1].calls, all[1].failures),
            ("2.0", 4, 0)
        );
        assert_eq!(all[1].failure_rate(), 0.0);
    }

    #[test]
    fn failures_keep_the_newest_event_and_the_groups_of_the_innermost_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let newer = failure("app::pay", "1.0", 2_000, "g2");
        let older = failure("app::pay", "1.0", 1_000, "g1");
        store
            .note_function_failures(&[newer.clone(), older])
            .unwrap();
        let all = store.functions().unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        let s = &all[0];
        assert_eq!(s.function, "app::pay");
        assert_eq!(s.last_failure_us, Some(2_000));
        assert_eq!(s.last_event, Some(newer.id.to_string()));
        assert_eq!(newer.id.timestamp_us(), 2_000);
        assert_eq!(s.groups, ["g2", "g1"]);
        // Events without a captured call are no function's failure.
        let mut unrelated = CrashEvent::sample(1, "no call");
        unrelated.logger = "capture".into();
        unrelated.calls.clear();
        // Nor is an event captured by hand inside a captured call.
        let mut by_hand = failure("app::pay", "1.0", 3_000, "g3");
        by_hand.logger = "report".into();
        store.note_function_failures(&[unrelated, by_hand]).unwrap();
        let all = store.functions().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].last_failure_us, Some(2_000));
    }

    #[test]
    fn groups_are_capped_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db")).unwrap();
        let events: Vec<_> = (0..25)
            .map(|i| failure("f", "", 1_000 + i, &format!("g{i}")))
            .collect();
        store.note_function_failures(&events).unwrap();
        let s = &store.functions().unwrap()[0];
        assert_eq!(s.groups.len(), MAX_GROUPS);
        assert_eq!(s.groups.first().map(String::as_str), Some("g5"));
        assert_eq!(s.groups.last().map(String::as_str), Some("g24"));
    }
}

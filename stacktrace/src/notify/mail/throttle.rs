//! At most one mail per group and audience every `mail_throttle`; the occurrences held back
//! are counted and told in the next mail. A regression mails at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Who a mail is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Audience {
    /// `admins`: errors.
    Admins,
    /// `managers`: broken links.
    Managers,
}

/// Groups remembered at most; beyond, those whose window has passed are forgotten.
const MAX_GROUPS: usize = 10_000;

#[derive(Debug)]
struct Window {
    last_mail: Instant,
    unmailed: u64,
}

/// The throttle's memory: per audience and group, when it was last mailed.
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    /// Admins, then managers; looked up by the borrowed fingerprint, without allocating.
    windows: [HashMap<String, Window>; 2],
}

fn index(audience: Audience) -> usize {
    match audience {
        Audience::Admins => 0,
        Audience::Managers => 1,
    }
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Throttle {
            every,
            windows: [HashMap::new(), HashMap::new()],
        }
    }

    /// Records an occurrence of a group. `wants_mail`: the occurrence would be mailed
    /// without a throttle. Returns `Some(unmailed)` when it is mailed, with the count of
    /// occurrences held back since the last mail; `None` when it is held back.
    pub(crate) fn occurrence(
        &mut self,
        fingerprint: &str,
        audience: Audience,
        wants_mail: bool,
        regressed: bool,
        now: Instant,
    ) -> Option<u64> {
        let every = self.every;
        let windows = &mut self.windows[index(audience)];
        match windows.get_mut(fingerprint) {
            Some(w) => {
                let open = regressed || now.saturating_duration_since(w.last_mail) >= every;
                if wants_mail && open {
                    w.last_mail = now;
                    Some(std::mem::take(&mut w.unmailed))
                } else {
                    w.unmailed = w.unmailed.saturating_add(1);
                    None
                }
            }
            None if wants_mail => {
                if windows.len() >= MAX_GROUPS {
                    windows.retain(|_, w| now.saturating_duration_since(w.last_mail) < every);
                    if windows.len() >= MAX_GROUPS {
                        windows.clear();
                    }
                }
                windows.insert(
                    fingerprint.to_owned(),
                    Window {
                        last_mail: now,
                        unmailed: 0,
                    },
                );
                Some(0)
            }
            None => None,
        }
    }

    /// Puts back an occurrence that was to be mailed but could not be queued.
    pub(crate) fn not_sent(&mut self, fingerprint: &str, audience: Audience) {
        if let Some(w) = self.windows[index(audience)].get_mut(fingerprint) {
            w.unmailed = w.unmailed.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mail_per_window_and_the_next_counts_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let t0 = Instant::now();
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, t0),
            Some(0)
        );
        for i in 1..50 {
            let at = t0 + Duration::from_secs(i);
            assert_eq!(t.occurrence("g", Audience::Admins, true, false, at), None);
        }
        // Another audience and another group have their own windows.
        assert_eq!(
            t.occurrence("g", Audience::Managers, true, false, t0),
            Some(0)
        );
        assert_eq!(
            t.occurrence("h", Audience::Admins, true, false, t0),
            Some(0)
        );
        let later = t0 + Duration::from_secs(601);
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, later),
            Some(49)
        );
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, later),
            None
        );
    }

    #[test]
    fn a_regression_mails_at_once_and_quiet_occurrences_count() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let t0 = Instant::now();
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, t0),
            Some(0)
        );
        assert_eq!(t.occurrence("g", Audience::Admins, false, false, t0), None);
        assert_eq!(t.occurrence("g", Audience::Admins, false, false, t0), None);
        assert_eq!(t.occurrence("g", Audience::Admins, true, true, t0), Some(2));
        // An occurrence of a group never mailed is not remembered.
        assert_eq!(t.occurrence("x", Audience::Admins, false, false, t0), None);
        assert!(!t.windows[index(Audience::Admins)].contains_key("x"));
    }
}

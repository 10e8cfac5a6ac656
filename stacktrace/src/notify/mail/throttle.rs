//! At most one mail per group and audience every `mail_throttle`; the occurrences held back
//! are counted and told in the next mail. A regression mails at once. Mails about the HTTP
//! layer's own events (broken links, server errors), whose number clients decide, are also
//! capped a minute across groups (`http_mail_limit`).

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
    /// `None`: held back by the per-minute cap before its first mail.
    last_mail: Option<Instant>,
    unmailed: u64,
}

/// Mails a minute about the HTTP layer's events, across groups.
#[derive(Debug)]
struct MinuteCap {
    /// 0: no cap.
    per_minute: u32,
    started: Option<Instant>,
    sent: u32,
}

impl MinuteCap {
    /// Takes one mail of the current minute's budget; `false` when it is spent.
    fn take(&mut self, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        match self.started {
            Some(t) if now.saturating_duration_since(t) < Duration::from_secs(60) => {}
            _ => {
                self.started = Some(now);
                self.sent = 0;
            }
        }
        if self.sent >= self.per_minute {
            return false;
        }
        self.sent += 1;
        true
    }
}

/// The throttle's memory: per audience and group, when it was last mailed.
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    /// Admins, then managers; looked up by the borrowed fingerprint, without allocating.
    windows: [HashMap<String, Window>; 2],
    http: MinuteCap,
    /// Mails held back by the cap of the HTTP layer's mails, since the start.
    pub(crate) limited: u64,
}

fn index(audience: Audience) -> usize {
    match audience {
        Audience::Admins => 0,
        Audience::Managers => 1,
    }
}

impl Throttle {
    /// One mail per group every `every`; `http_per_minute` mails a minute about the HTTP
    /// layer's events (0: no cap).
    pub(crate) fn new(every: Duration, http_per_minute: u32) -> Self {
        Throttle {
            every,
            windows: [HashMap::new(), HashMap::new()],
            http: MinuteCap {
                per_minute: http_per_minute,
                started: None,
                sent: 0,
            },
            limited: 0,
        }
    }

    /// Records an occurrence of a group. `wants_mail`: the occurrence would be mailed
    /// without a throttle; `from_http`: it is one of the HTTP layer's events, under the
    /// per-minute cap. Returns `Some(unmailed)` when it is mailed, with the count of
    /// occurrences held back since the last mail; `None` when it is held back.
    pub(crate) fn occurrence(
        &mut self,
        fingerprint: &str,
        audience: Audience,
        wants_mail: bool,
        regressed: bool,
        from_http: bool,
        now: Instant,
    ) -> Option<u64> {
        let every = self.every;
        let windows = &mut self.windows[index(audience)];
        let known = windows.get_mut(fingerprint);
        let open = match &known {
            Some(w) => {
                regressed
                    || w.last_mail
                        .is_none_or(|t| now.saturating_duration_since(t) >= every)
            }
            None => true,
        };
        let mails = wants_mail && open && (!from_http || self.http.take(now));
        if wants_mail && open && !mails {
            self.limited = self.limited.saturating_add(1);
        }
        match known {
            Some(w) if mails => {
                w.last_mail = Some(now);
                Some(std::mem::take(&mut w.unmailed))
            }
            Some(w) => {
                w.unmailed = w.unmailed.saturating_add(1);
                None
            }
            // A group never mailed is remembered only when it wanted a mail: one the cap
            // held back is mailed, with this occurrence counted, once the cap allows.
            None if wants_mail => {
                if windows.len() >= MAX_GROUPS {
                    windows.retain(|_, w| {
                        w.last_mail
                            .is_some_and(|t| now.saturating_duration_since(t) < every)
                    });
                    if windows.len() >= MAX_GROUPS {
                        windows.clear();
                    }
                }
                windows.insert(
                    fingerprint.to_owned(),
                    Window {
                        last_mail: mails.then_some(now),
                        unmailed: u64::from(!mails),
                    },
                );
                mails.then_some(0)
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
        let mut t = Throttle::new(Duration::from_secs(600), 0);
        let t0 = Instant::now();
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, false, t0),
            Some(0)
        );
        for i in 1..50 {
            let at = t0 + Duration::from_secs(i);
            assert_eq!(
                t.occurrence("g", Audience::Admins, true, false, false, at),
                None
            );
        }
        // Another audience and another group have their own windows.
        assert_eq!(
            t.occurrence("g", Audience::Managers, true, false, false, t0),
            Some(0)
        );
        assert_eq!(
            t.occurrence("h", Audience::Admins, true, false, false, t0),
            Some(0)
        );
        let later = t0 + Duration::from_secs(601);
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, false, later),
            Some(49)
        );
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, false, later),
            None
        );
    }

    #[test]
    fn a_regression_mails_at_once_and_quiet_occurrences_count() {
        let mut t = Throttle::new(Duration::from_secs(600), 0);
        let t0 = Instant::now();
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, false, false, t0),
            Some(0)
        );
        assert_eq!(
            t.occurrence("g", Audience::Admins, false, false, false, t0),
            None
        );
        assert_eq!(
            t.occurrence("g", Audience::Admins, false, false, false, t0),
            None
        );
        assert_eq!(
            t.occurrence("g", Audience::Admins, true, true, false, t0),
            Some(2)
        );
        // An occurrence of a group never mailed is not remembered.
        assert_eq!(
            t.occurrence("x", Audience::Admins, false, false, false, t0),
            None
        );
        assert!(!t.windows[index(Audience::Admins)].contains_key("x"));
    }

    // Regression: a client looping over fresh paths made a new group per request, each
    // mailed at once: the managers got a mail per request.
    #[test]
    fn the_http_layers_mails_are_capped_a_minute_across_groups() {
        let mut t = Throttle::new(Duration::from_secs(600), 3);
        let t0 = Instant::now();
        let mailed = (0..100)
            .filter(|i| {
                t.occurrence(&format!("g{i}"), Audience::Managers, true, false, true, t0)
                    .is_some()
            })
            .count();
        assert_eq!(mailed, 3);
        assert_eq!(t.limited, 97);
        // Control: other events are not under the cap.
        assert_eq!(
            t.occurrence("panic", Audience::Admins, true, false, false, t0),
            Some(0)
        );
        // A group held back is mailed once the cap allows, counting what was held back.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            t.occurrence("g50", Audience::Managers, true, false, true, later),
            Some(1)
        );
        // Held back, a group's window stays as it was.
        assert_eq!(
            t.occurrence("g0", Audience::Managers, true, false, true, later),
            None
        );
    }
}

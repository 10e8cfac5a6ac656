//! Volume control on the calling thread: enable switch, sampling and the per-minute rate
//! limit, lock-free so that the panic hook can use them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::model::drop::DropReason;
use crate::model::random::random_u64;

#[derive(Debug)]
pub(crate) struct Gate {
    enabled: bool,
    /// Keep an event when a uniform u64 is below this; `u64::MAX` keeps all.
    sample_threshold: u64,
    rate_limit: u32,
    /// Minute number in the high 32 bits, events admitted in it in the low 32.
    window: AtomicU64,
}

impl Gate {
    pub(crate) fn new(enabled: bool, sample_rate: f64, rate_limit: u32) -> Self {
        let sample_threshold = if sample_rate >= 1.0 {
            u64::MAX
        } else if sample_rate <= 0.0 || sample_rate.is_nan() {
            0
        } else {
            (sample_rate * u64::MAX as f64) as u64
        };
        Gate {
            enabled,
            sample_threshold,
            rate_limit,
            window: AtomicU64::new(0),
        }
    }

    /// The checks made before an event is built: the enable switch and sampling.
    pub(crate) fn admit(&self) -> Result<(), DropReason> {
        if !self.enabled {
            return Err(DropReason::Disabled);
        }
        if self.sample_threshold != u64::MAX && random_u64() >= self.sample_threshold {
            return Err(DropReason::Sampled);
        }
        Ok(())
    }

    /// The global per-minute limit, checked last, once the event passed every other check.
    pub(crate) fn admit_rate(&self, now_us: u64) -> Result<(), DropReason> {
        if self.rate_limit == 0 {
            return Ok(());
        }
        let minute = (now_us / 60_000_000) & 0xFFFF_FFFF;
        let mut current = self.window.load(Ordering::Relaxed);
        loop {
            let (win, count) = (current >> 32, current & 0xFFFF_FFFF);
            let next = if win == minute {
                if count >= u64::from(self.rate_limit) {
                    return Err(DropReason::RateLimited);
                }
                current + 1
            } else {
                (minute << 32) | 1
            };
            match self.window.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }
}

/// Per-minute limits by key (a user, a client address). Bounded: at most `MAX_KEYS` keys
/// are tracked in a minute; beyond, new keys share one budget.
#[derive(Debug)]
pub(crate) struct KeyedLimit {
    per_minute: u32,
    window: Mutex<(u64, HashMap<String, u32>)>,
}

const MAX_KEYS: usize = 10_000;
const OVERFLOW_KEY: &str = "\u{0}overflow";

impl KeyedLimit {
    pub(crate) fn new(per_minute: u32) -> Self {
        KeyedLimit {
            per_minute,
            window: Mutex::new((0, HashMap::new())),
        }
    }

    /// Counts an event of `key` at `now_us`; `false` when the key is over its limit. In the
    /// panic hook (`wait = false`) a contended lock admits the event rather than wait.
    pub(crate) fn admit(&self, key: &str, now_us: u64, wait: bool) -> bool {
        if self.per_minute == 0 || key.is_empty() {
            return true;
        }
        let guard = if wait {
            Some(crate::sync::lock(&self.window))
        } else {
            crate::sync::try_lock(&self.window)
        };
        let Some(mut w) = guard else { return true };
        let minute = now_us / 60_000_000;
        if w.0 != minute {
            w.0 = minute;
            w.1.clear();
        }
        let key = if w.1.len() >= MAX_KEYS && !w.1.contains_key(key) {
            OVERFLOW_KEY
        } else {
            key
        };
        let count = match w.1.get_mut(key) {
            Some(c) => c,
            None => w.1.entry(key.to_owned()).or_insert(0),
        };
        if *count >= self.per_minute {
            return false;
        }
        *count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_drops_everything() {
        let g = Gate::new(false, 1.0, 0);
        assert_eq!(g.admit(), Err(DropReason::Disabled));
    }

    #[test]
    fn sample_rate_zero_and_one() {
        let none = Gate::new(true, 0.0, 0);
        let all = Gate::new(true, 1.0, 0);
        for _ in 0..1000 {
            assert_eq!(none.admit(), Err(DropReason::Sampled));
            assert_eq!(all.admit(), Ok(()));
        }
    }

    #[test]
    fn sample_rate_half_keeps_about_half() {
        let g = Gate::new(true, 0.5, 0);
        let kept = (0..10_000).filter(|_| g.admit().is_ok()).count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }

    #[test]
    fn rate_limit_counts_per_minute() {
        let g = Gate::new(true, 1.0, 5);
        let t = 120_000_000;
        let kept = (0..20).filter(|_| g.admit_rate(t).is_ok()).count();
        assert_eq!(kept, 5);
        assert_eq!(g.admit_rate(t + 1), Err(DropReason::RateLimited));
        assert_eq!(g.admit_rate(t + 60_000_000), Ok(()));
    }

    #[test]
    fn rate_limit_holds_under_threads() {
        let g = std::sync::Arc::new(Gate::new(true, 1.0, 100));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|_| g.admit_rate(60_000_000).is_ok())
                        .count()
                })
            })
            .collect();
        let kept: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(kept, 100);
    }

    #[test]
    fn keyed_limit_is_per_key_and_per_minute() {
        let l = KeyedLimit::new(3);
        let t = 600_000_000;
        assert_eq!((0..10).filter(|_| l.admit("noisy", t, true)).count(), 3);
        assert!(l.admit("quiet", t, true), "another key has its own budget");
        assert!(l.admit("noisy", t + 60_000_000, true), "a new minute");
        assert!(l.admit("", t, true), "no key, no limit");
        assert!(KeyedLimit::new(0).admit("x", t, true));
    }

    #[test]
    fn keyed_limit_bounds_its_memory() {
        let l = KeyedLimit::new(1);
        for i in 0..(MAX_KEYS + 50) {
            l.admit(&i.to_string(), 0, true);
        }
        assert!(l.window.lock().unwrap().1.len() <= MAX_KEYS + 1);
    }
}

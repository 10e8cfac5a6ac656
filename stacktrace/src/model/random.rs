//! The random source of event ids and sampling.

use std::sync::atomic::{AtomicU64, Ordering};

static RANDOM_STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// A 64-bit random number without thread-locals (the panic hook may run while a thread's
/// locals are being destroyed): SplitMix64 over a global counter, so values never repeat
/// within a process, seeded by `rand` at install so that processes differ.
pub(crate) fn random_u64() -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = RANDOM_STATE
        .fetch_add(GAMMA, Ordering::Relaxed)
        .wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeds [`random_u64`]; called at install, where thread-locals are safe to use.
pub(crate) fn seed_random() {
    RANDOM_STATE.store(rand::random::<u64>(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_differ() {
        let a: std::collections::HashSet<u64> = (0..1000).map(|_| random_u64()).collect();
        assert_eq!(a.len(), 1000);
    }
}

//! Locks, with the crate's one policy for a poisoned lock: the data behind every lock of
//! this crate is left consistent by whatever panicked while holding it (no update is made
//! half-way), so a poisoned lock is taken and its data read as it is. The panic hook never
//! waits on a lock: it uses [`try_lock`] or [`lock_briefly`].

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::Duration;

/// Takes a lock, waiting; for code outside the panic hook only.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a lock without waiting: `None` when another thread holds it.
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Takes a lock without waiting long: the panic hook must not block on a lock that another
/// thread holds. Gives up after about 20 ms.
#[cfg_attr(not(feature = "mail"), allow(dead_code))]
pub(crate) fn lock_briefly<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    for i in 0..400u32 {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) if i < 50 => std::thread::yield_now(),
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_micros(50)),
        }
    }
    None
}

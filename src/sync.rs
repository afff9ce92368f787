//! The crate's one way to take a lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, and keeps using it if a thread panicked while holding it.
/// Every critical section in the crate leaves its data whole at each step
/// (a value pushed or popped, a field set, a driver polled as an early
/// return would leave it), so a poisoned lock's data is still sound, and
/// one panicking task does not take its neighbours down with it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

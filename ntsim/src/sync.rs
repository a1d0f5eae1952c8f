//! The one synchronization facade of ntsim.
//!
//! Every OS-level thread, lock, condition variable and atomic that ntsim uses comes from here, so
//! that the `shuttle` feature can swap the whole set for shuttle's controlled versions (the way
//! tokio's `loom` module does) and put every emulated thread under shuttle's scheduler. No other
//! file of ntsim names `std::sync` or `std::thread` directly.

#[cfg(not(feature = "shuttle"))]
mod imp {
    pub use std::sync::atomic;
    pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub use std::thread;
}

#[cfg(feature = "shuttle")]
mod imp {
    pub use shuttle::sync::atomic;
    pub use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub use shuttle::thread;
}

pub(crate) use imp::*;

/// Locks `m`, ignoring poisoning: a panic inside ntsim is reported by the panic itself, and the
/// state it protects stays readable for the verifier's final report.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv`, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(g).unwrap_or_else(|e| e.into_inner())
}

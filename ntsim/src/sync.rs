//! The one synchronization facade of ntsim.
//!
//! Every OS-level thread, lock, condition variable and atomic that ntsim uses comes from here, so
//! that the `shuttle` feature can swap the whole set for shuttle's controlled versions (the way
//! tokio's `loom` module does) and put every emulated thread under shuttle's scheduler. No other
//! file of ntsim names `std::sync` or `std::thread` directly.
//!
//! # What the shuttle mode still needs
//!
//! `--features shuttle` compiles, but it does not explore anything yet. With the baton of
//! `sched`, exactly one actor is runnable at any moment (every other one waits on the baton
//! condvar), so shuttle never has a choice to make: every interleaving decision is still
//! ntsim's own [`Policy`](crate::sched::Policy). To put the schedule in shuttle's hands:
//!
//! - Replace the baton by free running: `Cx::reschedule` becomes a shuttle switch point
//!   (`shuttle::thread::yield_now()`), and the `World` mutex alone makes each kernel routine's
//!   step atomic. `Cx::block` waits on a per-actor condvar (or park/unpark) instead of handing
//!   the baton on; `make_ready` notifies it.
//! - Turn the CPU rules of spec A.1.1 into blocking conditions, since shuttle picks among
//!   runnable threads without knowing IRQLs: an actor that is not `eligible` (its CPU owned by
//!   another actor at DISPATCH_LEVEL, or DPC work pending on its CPU while it is below
//!   DISPATCH_LEVEL) waits on its condvar until it is, re-checked at every switch point.
//!   The interrupt actors likewise wait while their CPU is owned.
//! - Virtual time: "every actor is blocked" is no longer visible to one chooser. Count the
//!   blocked actors in `World`; the one that blocks last advances the clock and fires what is
//!   due (otherwise shuttle reports a deadlock before any timer fires). Real time
//!   (`TimeMode::Real`, `std::thread::sleep`, `Instant`) has no meaning under shuttle.
//! - Shutdown: a halted machine parks its actors forever, which shuttle reports as a deadlock
//!   at the end of each iteration. Actors must instead return from their OS-thread bodies once
//!   `halted` is set (drivers cannot be unwound under `panic = "abort"`, so this needs a
//!   cooperative exit at the next switch point), and `Kernel::run` must join them.
//! - Each test then wraps a whole machine in `shuttle::check_random(|| Kernel::new(..).run(..),
//!   N)` / `check_pct`; a failing schedule is printed and replayed by shuttle.
//! - Words inside driver-visible memory (a `KSPIN_LOCK`, `IRP.CancelRoutine`) are views of real
//!   memory: they must stay std atomics of the field's size ([`word_atomic`]), never shuttle's
//!   atomics, which carry extra state and have another layout. `cancel.rs` still uses the
//!   facade's `atomic` for `IRP.CancelRoutine` and must move to [`word_atomic`] too; to let
//!   shuttle interleave at those accesses, put a switch point before each of them.

/// Atomics over words of driver-visible memory (lock words, `IRP.CancelRoutine`): always the
/// std ones, whose layout is the word's own, in every mode (see above).
pub(crate) mod word_atomic {
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
}

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

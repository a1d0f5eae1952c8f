//! The time queries that are exports on x64 (`KeQueryInterruptTime`, `KeQuerySystemTime` and
//! `KeQueryTickCount` are inline there, reading a page at a kernel address that a user-mode
//! host cannot map, so images must use these instead).

use crate::ntdef::{LARGE_INTEGER, ULONG};

/// The performance counter runs at 10 MHz: one count per 100 ns of interrupt time.
pub const PERFORMANCE_FREQUENCY: i64 = 10_000_000;
/// The clock interrupt period reported by `KeQueryTimeIncrement`: 15.625 ms in 100 ns units.
pub const TIME_INCREMENT: ULONG = 156_250;

/// `KeQueryInterruptTimePrecise`: interrupt time, and the performance counter at that instant.
///
/// IRQL: any.
///
/// # Safety
/// `qpc` must be NULL or valid for a write.
pub unsafe fn KeQueryInterruptTimePrecise(qpc: *mut u64) -> u64 {
    let now = crate::clock::KeQueryInterruptTime();
    if !qpc.is_null() {
        // SAFETY: the caller guarantees `qpc` is writable.
        unsafe { qpc.write(now) };
    }
    now
}

/// `KeQueryUnbiasedInterruptTime`: interrupt time (ntsim never sleeps, so there is no bias).
///
/// IRQL: any.
pub fn KeQueryUnbiasedInterruptTime() -> u64 {
    crate::clock::KeQueryInterruptTime()
}

/// `KeQuerySystemTimePrecise`.
///
/// IRQL: any.
///
/// # Safety
/// `time` must be valid for a write.
pub unsafe fn KeQuerySystemTimePrecise(time: *mut LARGE_INTEGER) {
    // SAFETY: forwarded caller contract.
    unsafe { crate::clock::KeQuerySystemTime(time) };
}

/// `KeQueryTimeIncrement`: the clock tick, in 100 ns units.
///
/// IRQL: any.
pub fn KeQueryTimeIncrement() -> ULONG {
    TIME_INCREMENT
}

/// `KeQueryPerformanceCounter`: the counter (interrupt time at [`PERFORMANCE_FREQUENCY`]).
///
/// IRQL: any.
///
/// # Safety
/// `frequency` must be NULL or valid for a write.
pub unsafe fn KeQueryPerformanceCounter(frequency: *mut LARGE_INTEGER) -> LARGE_INTEGER {
    if !frequency.is_null() {
        // SAFETY: the caller guarantees `frequency` is writable.
        unsafe { frequency.write(PERFORMANCE_FREQUENCY) };
    }
    crate::clock::KeQueryInterruptTime() as i64
}

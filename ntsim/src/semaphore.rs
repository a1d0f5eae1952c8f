//! Kernel semaphores (spec A.15).

use crate::machine::Cx;
use crate::ntdef::{DISPATCH_LEVEL, KPRIORITY, KSEMAPHORE, LONG, PKSEMAPHORE, SemaphoreObject};
use crate::verifier::Rule;

/// Initializes a semaphore with `count` and `limit`.
///
/// IRQL: any.
///
/// # Safety
/// `sem` must be valid for writes and not in use by a wait.
#[allow(non_snake_case)]
pub unsafe fn KeInitializeSemaphore(sem: PKSEMAPHORE, count: LONG, limit: LONG) {
    // SAFETY: the caller guarantees `sem` is writable; the header is at offset 0.
    unsafe {
        crate::object::init_header(sem.cast(), SemaphoreObject, size_of::<KSEMAPHORE>(), count)
    };
    // SAFETY: as above.
    unsafe { (*sem).Limit = limit };
}

/// Adds `adjustment` to the count and satisfies waits; returns the previous count. Exceeding
/// the limit raises STATUS_SEMAPHORE_LIMIT_EXCEEDED on Windows, which a driver does not handle:
/// ntsim reports rule C29 (fatal) and leaves the count unchanged.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `sem` must point to an initialized semaphore.
#[allow(non_snake_case)]
pub unsafe fn KeReleaseSemaphore(
    sem: PKSEMAPHORE,
    _increment: KPRIORITY,
    adjustment: LONG,
    wait: u8,
) -> LONG {
    let cx = Cx::get();
    cx.check_irql_at_most("KeReleaseSemaphore", DISPATCH_LEVEL);
    let mut g = cx.lock();
    let obj = sem as usize;
    let prev = crate::wait::signal_state(obj);
    // SAFETY: the caller guarantees `sem` points to an initialized semaphore.
    let limit = unsafe { (*sem).Limit };
    match prev.checked_add(adjustment) {
        Some(new) if new <= limit && adjustment > 0 => {
            crate::wait::set_signal_state(obj, new);
            g.signal_object(obj);
        }
        _ => {
            let who = g.who(cx.me);
            g.report(
                Rule::SemaphoreLimit,
                format!(
                    "KeReleaseSemaphore({adjustment}) on a semaphore with count {prev} and limit {limit}"
                ),
                vec![who],
            );
            // The unhandled exception is a bugcheck: the caller never gets control back.
            drop(cx.stop_if_halted(g));
            return prev;
        }
    }
    drop(g);
    if wait != 0 {
        cx.arm_wait_next("KeReleaseSemaphore");
    } else {
        cx.switch_point();
    }
    prev
}

/// The current count.
///
/// IRQL: any.
///
/// # Safety
/// `sem` must point to an initialized semaphore.
#[allow(non_snake_case)]
pub unsafe fn KeReadStateSemaphore(sem: PKSEMAPHORE) -> LONG {
    crate::wait::signal_state(sem as usize)
}

//! IoCompleteRequest (spec A.7): rules C1–C4 with a wrong and a right fragment each, completion
//! routines (SL_INVOKE_ON_*, STATUS_MORE_PROCESSING_REQUIRED) and PendingReturned propagation.

mod irp_support;

use std::sync::atomic::{AtomicU32, Ordering};

use irp_support::{Irp, cancel_and_complete};
use ntsim::irql::{KeLowerIrql, KfRaiseIrql};
use ntsim::ntdef::*;
use ntsim::spinlock::{KeAcquireSpinLock, KeReleaseSpinLock};
use ntsim::{Config, Kernel, Rule, Severity};

fn machine() -> Kernel {
    Kernel::new(Config::default())
}

// ---- C1 --------------------------------------------------------------------------------------

#[test]
fn completing_twice_is_fatal() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.complete(STATUS_SUCCESS);
        irp.complete(STATUS_SUCCESS);
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::MultipleCompletion);
}

#[test]
fn completing_once_leaves_current_location_at_stack_count_plus_two() {
    let out = machine().run(|| {
        let irp = Irp::routed(3);
        irp.complete(STATUS_SUCCESS);
        assert_eq!(irp.current_location(), 5);
        irp.free();
    });
    out.expect_clean();
}

// ---- C2 --------------------------------------------------------------------------------------

#[test]
fn completing_with_the_cancel_routine_set_is_fatal() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.set_cancel_routine(Some(cancel_and_complete));
        irp.complete(STATUS_SUCCESS);
    });
    assert_eq!(
        out.stop.expect("stop").rule,
        Rule::CompleteWithCancelRoutine
    );
}

#[test]
fn completing_after_taking_the_cancel_routine_back_is_clean() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.set_cancel_routine(Some(cancel_and_complete));
        assert!(irp.set_cancel_routine(None).is_some());
        irp.complete(STATUS_SUCCESS);
        irp.free();
    });
    out.expect_clean();
}

// ---- C3 --------------------------------------------------------------------------------------

#[test]
fn completing_with_status_pending_is_fatal() {
    let out = machine().run(|| Irp::routed(1).complete(STATUS_PENDING));
    assert_eq!(out.stop.expect("stop").rule, Rule::CompletePendingStatus);
}

#[test]
fn completing_with_status_minus_one_is_fatal() {
    let out = machine().run(|| Irp::routed(1).complete(-1));
    assert_eq!(out.stop.expect("stop").rule, Rule::CompletePendingStatus);
}

#[test]
fn completing_with_an_error_status_is_clean() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.complete(STATUS_INVALID_PARAMETER);
        irp.free();
    });
    out.expect_clean();
}

// ---- C4 --------------------------------------------------------------------------------------

#[test]
fn completing_above_dispatch_level_is_fatal() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        KfRaiseIrql(CLOCK_LEVEL);
        irp.complete(STATUS_SUCCESS);
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::CompleteIrql);
}

#[test]
fn completing_while_holding_a_spin_lock_is_a_violation() {
    let out = machine().run(|| {
        let mut lock: Box<KSPIN_LOCK> = Box::new(0);
        let irp = Irp::routed(1);
        let mut irql = 0;
        // SAFETY: a fresh lock.
        unsafe { KeAcquireSpinLock(&mut *lock, &mut irql) };
        irp.complete(STATUS_SUCCESS);
        // SAFETY: held since the acquire.
        unsafe { KeReleaseSpinLock(&mut *lock, irql) };
        irp.free();
    });
    let r = out.reports_of(Rule::CompleteIrql);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, Severity::Violation);
    assert!(out.stop.is_none());
}

#[test]
fn completing_at_dispatch_level_without_a_lock_is_clean() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        let old = KfRaiseIrql(DISPATCH_LEVEL);
        irp.complete(STATUS_SUCCESS);
        KeLowerIrql(old);
        irp.free();
    });
    out.expect_clean();
}

// ---- completion routines ---------------------------------------------------------------------

/// What a completion routine saw: how often it ran and whether PendingReturned was set.
#[derive(Debug, Default)]
struct Seen {
    calls: AtomicU32,
    pending: AtomicU32,
    /// Return STATUS_MORE_PROCESSING_REQUIRED.
    keep: AtomicU32,
}

unsafe extern "system" fn on_complete(
    _dev: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    ctx: PVOID,
) -> NTSTATUS {
    // SAFETY: the context is the test's `Seen`, alive until the IRP is freed.
    let seen = unsafe { &*ctx.cast::<Seen>() };
    let irp = Irp(irp);
    seen.calls.fetch_add(1, Ordering::SeqCst);
    if irp.pending_returned() {
        seen.pending.fetch_add(1, Ordering::SeqCst);
        // The rule for a routine that does not return MORE_PROCESSING_REQUIRED: propagate.
        if irp.current_location() <= irp.stack_count() {
            irp.mark_pending();
        }
    }
    if seen.keep.load(Ordering::SeqCst) != 0 {
        STATUS_MORE_PROCESSING_REQUIRED
    } else {
        STATUS_SUCCESS
    }
}

/// A two-location IRP: the upper driver (location 1) sets `on_complete` for the lower one
/// (location 0) with the given SL_INVOKE_* flags, the lower driver optionally marks it pending
/// and completes it with `status`.
fn two_level(
    seen: &Seen,
    flags: (bool, bool, bool),
    lower_pends: bool,
    cancel: bool,
    status: NTSTATUS,
) -> Irp {
    let irp = Irp::routed(2);
    let ctx = std::ptr::from_ref(seen).cast_mut().cast();
    // SAFETY: the IRP has a next location; `seen` outlives the IRP.
    unsafe {
        ntsim::irp::IoSetCompletionRoutine(
            irp.0,
            Some(on_complete),
            ctx,
            u8::from(flags.0),
            u8::from(flags.1),
            u8::from(flags.2),
        );
    }
    irp.set_next();
    if cancel {
        assert!(!irp.cancel());
    }
    if lower_pends {
        irp.mark_pending();
    }
    irp.complete(status);
    irp
}

#[test]
fn invoke_on_success_runs_on_success_only() {
    let out = machine().run(|| {
        let seen = Seen::default();
        two_level(&seen, (true, false, false), false, false, STATUS_SUCCESS).free();
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
        two_level(
            &seen,
            (true, false, false),
            false,
            false,
            STATUS_UNSUCCESSFUL,
        )
        .free();
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    });
    out.expect_clean();
}

#[test]
fn invoke_on_error_runs_on_error_only() {
    let out = machine().run(|| {
        let seen = Seen::default();
        two_level(&seen, (false, true, false), false, false, STATUS_SUCCESS).free();
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
        two_level(
            &seen,
            (false, true, false),
            false,
            false,
            STATUS_UNSUCCESSFUL,
        )
        .free();
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    });
    out.expect_clean();
}

#[test]
fn invoke_on_cancel_runs_for_a_cancelled_irp() {
    let out = machine().run(|| {
        let seen = Seen::default();
        two_level(&seen, (false, false, true), false, true, STATUS_CANCELLED).free();
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
        two_level(&seen, (true, true, false), false, true, STATUS_CANCELLED).free();
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    });
    out.expect_clean();
}

#[test]
fn pending_returned_reaches_the_completion_routine_and_the_top() {
    let out = machine().run(|| {
        let seen = Seen::default();
        let irp = two_level(&seen, (true, true, true), true, false, STATUS_SUCCESS);
        assert_eq!(seen.pending.load(Ordering::SeqCst), 1);
        assert!(irp.pending_returned());
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn pending_returned_propagates_through_locations_without_a_routine() {
    let out = machine().run(|| {
        let irp = Irp::routed(3);
        irp.set_next();
        irp.set_next();
        irp.mark_pending();
        irp.complete(STATUS_SUCCESS);
        assert!(irp.pending_returned());
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn not_pending_means_pending_returned_false() {
    let out = machine().run(|| {
        let seen = Seen::default();
        let irp = two_level(&seen, (true, true, true), false, false, STATUS_SUCCESS);
        assert_eq!(seen.pending.load(Ordering::SeqCst), 0);
        assert!(!irp.pending_returned());
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn more_processing_required_stops_completion_and_the_irp_can_be_completed_again() {
    let out = machine().run(|| {
        let seen = Seen::default();
        seen.keep.store(1, Ordering::SeqCst);
        let irp = two_level(&seen, (true, true, true), false, false, STATUS_SUCCESS);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
        // Not completed: the walk stopped at the upper location.
        assert_eq!(irp.current_location(), 2);
        seen.keep.store(0, Ordering::SeqCst);
        irp.complete(STATUS_SUCCESS);
        assert_eq!(irp.current_location(), 4);
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn more_processing_required_then_free_is_clean() {
    let out = machine().run(|| {
        let seen = Seen::default();
        seen.keep.store(1, Ordering::SeqCst);
        let irp = Irp::raw(1);
        let ctx = std::ptr::from_ref(&seen).cast_mut().cast();
        // SAFETY: the IRP's only location is its next one; `seen` outlives it.
        unsafe { ntsim::irp::IoSetCompletionRoutine(irp.0, Some(on_complete), ctx, 1, 1, 1) };
        irp.set_next();
        irp.complete(STATUS_SUCCESS);
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
        // The allocator's routine kept it: it frees it instead of completing it again.
        irp.free();
    });
    out.expect_clean();
}

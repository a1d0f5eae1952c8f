//! IoSetCancelRoutine / IoCancelIrp (spec A.3–A.5), the ReactOS-derived IoCancel test (spec E),
//! and a wrong and a right driver fragment for rules C5, C6, C8, C9, C10 and C12.

mod irp_support;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use irp_support::{Irp, cancel_and_complete, cancel_and_keep};
use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::irp::designate_canceller;
use ntsim::irql::{KeLowerIrql, KeRaiseIrqlToDpcLevel};
use ntsim::ntdef::*;
use ntsim::spinlock::{IoReleaseCancelSpinLock, KeAcquireSpinLock, KeReleaseSpinLock};
use ntsim::thread::SystemThread;
use ntsim::{Config, Kernel, Rule};

fn machine() -> Kernel {
    Kernel::new(Config::default())
}

fn cancel_irql(irp: *mut IRP) -> KIRQL {
    Irp(irp).get().CancelIrql
}

// ---- spec E: IoCancel ------------------------------------------------------------------------

static KMTEST_CALLS: AtomicU32 = AtomicU32::new(0);

unsafe extern "system" fn kmtest_cancel(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    KMTEST_CALLS.fetch_add(1, Ordering::SeqCst);
    let irp = Irp(irp);
    // Entered with Cancel TRUE and the routine already taken (spec A.5).
    assert!(irp.cancel_flag());
    assert!(!irp.has_cancel_routine());
    assert_eq!(ntsim::irql::KeGetCurrentIrql(), DISPATCH_LEVEL);
    IoReleaseCancelSpinLock(cancel_irql(irp.0));
}

#[test]
fn kmtest_cancel_calls_the_routine_once_and_a_second_cancel_returns_false() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        assert!(irp.set_cancel_routine(Some(kmtest_cancel)).is_none());
        assert!(irp.cancel());
        assert_eq!(KMTEST_CALLS.load(Ordering::SeqCst), 1);
        assert!(irp.cancel_flag());
        assert!(!irp.has_cancel_routine());
        assert!(!irp.cancel());
        assert_eq!(KMTEST_CALLS.load(Ordering::SeqCst), 1);
        assert_eq!(ntsim::irql::KeGetCurrentIrql(), PASSIVE_LEVEL);
        irp.complete(STATUS_CANCELLED);
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn cancelling_a_fresh_irp_returns_false_but_sets_cancel() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        assert!(!irp.cancel());
        assert!(irp.cancel_flag());
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn set_cancel_routine_returns_the_previous_routine() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        assert!(irp.set_cancel_routine(Some(cancel_and_keep)).is_none());
        let prev = irp.set_cancel_routine(Some(cancel_and_complete));
        assert_eq!(
            prev.map(|f| f as usize),
            Some(cancel_and_keep as *const () as usize)
        );
        let prev = irp.set_cancel_routine(None);
        assert_eq!(
            prev.map(|f| f as usize),
            Some(cancel_and_complete as *const () as usize)
        );
        assert!(irp.set_cancel_routine(None).is_none());
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn the_cancel_routine_owns_and_completes_the_irp() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.set_cancel_routine(Some(cancel_and_complete));
        assert!(irp.cancel());
        assert_eq!(irp.status(), STATUS_CANCELLED);
        assert_eq!(irp.current_location(), irp.stack_count() + 2);
        irp.free();
    });
    out.expect_clean();
}

// ---- rule C5: a cancel routine in progress owns the IRP --------------------------------------

/// Parks IoCancelIrp in another thread just before the cancel routine runs, then lets this
/// thread try to claim the IRP; `complete_anyway` is the wrong fragment (ignores the NULL).
fn claim_while_cancel_routine_pending(complete_anyway: bool) {
    let irp = Irp::routed(1);
    irp.set_cancel_routine(Some(cancel_and_complete));
    let at_routine = Breakpoint::set(Point::CancelRoutineEntry, Filter::Object(irp.addr()));
    let canceller = SystemThread::spawn_on(1, "canceller", move || {
        assert!(irp.cancel());
    });
    designate_canceller(irp.0, canceller.actor());
    at_routine.wait_hit();
    // NULL: the cancel routine owns the IRP now (spec A.3).
    assert!(irp.set_cancel_routine(None).is_none());
    if complete_anyway {
        irp.complete(STATUS_SUCCESS);
    }
    at_routine.clear();
    canceller.join();
    assert_eq!(irp.status(), STATUS_CANCELLED);
    irp.free();
}

#[test]
fn completing_an_irp_whose_cancel_routine_is_pending_is_reported() {
    let out = machine().run(|| claim_while_cancel_routine_pending(true));
    assert_eq!(out.reports_of(Rule::CompleteWithoutOwnership).len(), 1);
    // And the cancel routine then completes it a second time.
    assert_eq!(out.stop.expect("stop").rule, Rule::MultipleCompletion);
}

#[test]
fn leaving_the_irp_to_its_pending_cancel_routine_is_clean() {
    let out = machine().run(|| claim_while_cancel_routine_pending(false));
    out.expect_clean();
}

// ---- rule C9 ---------------------------------------------------------------------------------

fn cancel_from_another_thread(designate: bool) {
    let irp = Irp::routed(1);
    let t = SystemThread::spawn("other", move || {
        irp.cancel();
    });
    if designate {
        designate_canceller(irp.0, t.actor());
    }
    t.join();
    irp.free();
}

#[test]
fn cancel_by_a_thread_that_neither_allocated_nor_routes_the_irp_is_a_warning() {
    let out = machine().run(|| cancel_from_another_thread(false));
    let r = out.reports_of(Rule::CancelNotOwned);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, ntsim::Severity::Warning);
}

#[test]
fn cancel_by_a_designated_thread_is_clean() {
    let out = machine().run(|| cancel_from_another_thread(true));
    out.expect_clean();
}

// ---- rule C10 --------------------------------------------------------------------------------

unsafe extern "system" fn cancel_keeps_lock(_dev: *mut DEVICE_OBJECT, _irp: *mut IRP) {}

unsafe extern "system" fn cancel_releases_twice(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    IoReleaseCancelSpinLock(cancel_irql(irp));
    IoReleaseCancelSpinLock(cancel_irql(irp));
    Irp(irp).complete(STATUS_CANCELLED);
}

unsafe extern "system" fn cancel_releases_to_passive(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    IoReleaseCancelSpinLock(PASSIVE_LEVEL);
    Irp(irp).complete(STATUS_CANCELLED);
}

unsafe extern "system" fn cancel_stays_at_dispatch(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    IoReleaseCancelSpinLock(DISPATCH_LEVEL);
    Irp(irp).complete(STATUS_CANCELLED);
}

unsafe extern "system" fn cancel_dispatch_then_lower(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // spec A.11.4: release at DISPATCH (to call IoStartNextPacket there), then lower.
    IoReleaseCancelSpinLock(DISPATCH_LEVEL);
    KeLowerIrql(cancel_irql(irp));
    Irp(irp).complete(STATUS_CANCELLED);
}

fn cancel_with(routine: PDRIVER_CANCEL, at_dispatch: bool) {
    let irp = Irp::routed(1);
    irp.set_cancel_routine(routine);
    let old = at_dispatch.then(KeRaiseIrqlToDpcLevel);
    assert!(irp.cancel());
    if let Some(old) = old {
        KeLowerIrql(old);
    }
}

#[test]
fn cancel_routine_returning_with_the_cancel_lock_held_is_reported() {
    let out = machine().run(|| cancel_with(Some(cancel_keeps_lock), false));
    assert_eq!(out.reports_of(Rule::CancelSpinLock).len(), 1);
}

#[test]
fn cancel_routine_releasing_the_cancel_lock_twice_is_reported() {
    let out = machine().run(|| cancel_with(Some(cancel_releases_twice), false));
    assert_eq!(out.reports_of(Rule::CancelSpinLock).len(), 1);
    assert!(out.stop.is_none());
}

#[test]
fn cancel_routine_releasing_to_an_irql_other_than_cancel_irql_is_reported() {
    let out = machine().run(|| cancel_with(Some(cancel_releases_to_passive), true));
    assert_eq!(out.reports_of(Rule::CancelSpinLock).len(), 1);
}

#[test]
fn cancel_routine_releasing_at_dispatch_and_never_lowering_is_reported() {
    let out = machine().run(|| cancel_with(Some(cancel_stays_at_dispatch), false));
    assert_eq!(out.reports_of(Rule::CancelSpinLock).len(), 1);
}

#[test]
fn cancel_routine_releasing_at_dispatch_then_lowering_to_cancel_irql_is_clean() {
    let out = machine().run(|| cancel_with(Some(cancel_dispatch_then_lower), false));
    out.expect_clean();
}

#[test]
fn cancel_routine_releasing_with_cancel_irql_at_dispatch_is_clean() {
    let out = machine().run(|| cancel_with(Some(cancel_and_complete), true));
    out.expect_clean();
}

// ---- rule C12 --------------------------------------------------------------------------------

/// A dispatch fragment that makes an IRP cancelable under its queue lock; `check` is whether it
/// tests `Irp->Cancel` in the same critical section.
fn pend_cancelable(check: bool) {
    let mut lock: Box<KSPIN_LOCK> = Box::new(0);
    let irp = Irp::routed(1);
    // The requester cancelled before the driver saw the IRP: IoCancelIrp returned FALSE.
    assert!(!irp.cancel());
    let mut irql = 0;
    // SAFETY: a fresh, initialized lock.
    unsafe { KeAcquireSpinLock(&mut *lock, &mut irql) };
    irp.mark_pending();
    irp.set_cancel_routine(Some(cancel_and_complete));
    let claimed = check && irp.cancel_flag() && irp.set_cancel_routine(None).is_some();
    // SAFETY: held since the acquire above.
    unsafe { KeReleaseSpinLock(&mut *lock, irql) };
    if claimed {
        irp.complete(STATUS_CANCELLED);
        irp.free();
    }
}

#[test]
fn cancel_routine_set_without_checking_cancel_is_reported() {
    let out = machine().run(|| pend_cancelable(false));
    assert_eq!(out.reports_of(Rule::CancelFlagUnchecked).len(), 1);
}

#[test]
fn cancel_routine_set_then_cancel_checked_is_clean() {
    let out = machine().run(|| pend_cancelable(true));
    out.expect_clean();
}

// ---- rules C8 and C6 outside queues ----------------------------------------------------------

#[test]
fn marking_pending_after_making_the_irp_cancelable_without_a_lock_is_reported() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.set_cancel_routine(Some(cancel_and_complete));
        irp.mark_pending();
    });
    assert_eq!(out.reports_of(Rule::MarkPendingLate).len(), 1);
}

#[test]
fn marking_pending_before_making_the_irp_cancelable_is_clean() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.mark_pending();
        irp.set_cancel_routine(Some(cancel_and_complete));
        assert!(irp.cancel());
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn setting_a_cancel_routine_on_a_completed_irp_is_reported() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.complete(STATUS_SUCCESS);
        assert!(irp.set_cancel_routine(Some(cancel_and_complete)).is_none());
        assert!(!irp.has_cancel_routine());
    });
    assert_eq!(out.reports_of(Rule::UseAfterHandoff).len(), 1);
}

#[test]
fn marking_a_completed_irp_pending_is_reported() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.complete(STATUS_SUCCESS);
        irp.mark_pending();
    });
    assert_eq!(out.reports_of(Rule::UseAfterHandoff).len(), 1);
}

#[test]
fn using_a_freed_irp_is_fatal() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.free();
        irp.set_cancel_routine(Some(cancel_and_complete));
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::UseAfterHandoff);
}

#[test]
fn a_cancelled_irp_cancelled_again_is_not_cancelable() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.set_cancel_routine(Some(cancel_and_keep));
        assert!(irp.cancel());
        // The routine kept the IRP; the owner completes it later.
        assert!(!irp.cancel());
        irp.complete(STATUS_CANCELLED);
        irp.free();
    });
    out.expect_clean();
}

// ---- rule C11 --------------------------------------------------------------------------------

// One lock word per test: tests run in parallel, each on its own machine.
static WRONG_ORDER_LOCK: AtomicUsize = AtomicUsize::new(0);
static RIGHT_ORDER_LOCK: AtomicUsize = AtomicUsize::new(0);

fn lock_and_unlock(lock: &'static AtomicUsize) {
    let mut irql = 0;
    // SAFETY: a KSPIN_LOCK is a pointer-sized word, initialized (0) and used by one machine.
    unsafe { KeAcquireSpinLock(lock.as_ptr(), &mut irql) };
    // SAFETY: held since the line above.
    unsafe { KeReleaseSpinLock(lock.as_ptr(), irql) };
}

unsafe extern "system" fn cancel_locks_queue_first(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // Deliberately wrong: the driver lock under the cancel lock.
    lock_and_unlock(&WRONG_ORDER_LOCK);
    IoReleaseCancelSpinLock(cancel_irql(irp));
    Irp(irp).complete(STATUS_CANCELLED);
}

unsafe extern "system" fn cancel_releases_then_locks_queue(
    _dev: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) {
    IoReleaseCancelSpinLock(cancel_irql(irp));
    lock_and_unlock(&RIGHT_ORDER_LOCK);
    Irp(irp).complete(STATUS_CANCELLED);
}

#[test]
fn cancel_routine_taking_a_driver_lock_under_the_cancel_lock_is_reported() {
    let out = machine().run(|| cancel_with(Some(cancel_locks_queue_first), false));
    assert_eq!(out.reports_of(Rule::CancelLockOrder).len(), 1);
}

#[test]
fn cancel_routine_releasing_the_cancel_lock_before_the_driver_lock_is_clean() {
    let out = machine().run(|| cancel_with(Some(cancel_releases_then_locks_queue), false));
    out.expect_clean();
}

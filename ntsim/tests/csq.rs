//! Cancel-safe queues (spec A.9): every row of A.9.7, the already-cancelled insert, the races
//! D-18 and A.9.5 case 3 forced with breakpoints, the ReactOS-derived IoCsq test (spec E), and
//! one wrong and one right driver fragment for each CSQ rule (C5, C6, C8, C13, C30–C33).

mod irp_support;

use irp_support::{Irp, Q, bug, context, ctx_ptr};
use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::irp::designate_canceller;
use ntsim::ntdef::*;
use ntsim::thread::SystemThread;
use ntsim::{Config, Kernel, Rule};

fn machine(cpus: usize) -> Kernel {
    Kernel::new(Config {
        cpus,
        ..Config::default()
    })
}

// ---- A.9.7 row 1: the remover completes ------------------------------------------------------

#[test]
fn inserted_irp_is_pending_cancelable_and_remove_next_hands_it_back() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        assert_eq!(q.log(), ["Acquire", "Insert", "Release"]);
        assert_ne!(irp.current_control() & SL_PENDING_RETURNED, 0);
        assert!(irp.has_cancel_routine());
        assert_eq!(irp.driver_context3(), q.csq() as usize);

        let got = q.remove_next(std::ptr::null_mut()).expect("queued");
        assert_eq!(got, irp);
        assert!(!irp.has_cancel_routine());
        assert_eq!(irp.driver_context3(), 0);
        assert!(q.remove_next(std::ptr::null_mut()).is_none());
        irp.complete(STATUS_SUCCESS);
        assert_eq!(irp.current_location(), irp.stack_count() + 2);
        irp.free();
        q.free();
    });
    out.expect_clean();
}

#[test]
fn remove_by_context_hands_the_irp_back_once_and_clears_the_context() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let mut ctx = context();
        let irp = Irp::routed(1);
        q.insert(irp, ctx_ptr(&mut ctx));
        assert_eq!(ctx.Type, IO_TYPE_CSQ_IRP_CONTEXT);
        assert_eq!(ctx.Irp, irp.0);
        assert_eq!(ctx.Csq, q.csq());
        assert_eq!(irp.driver_context3(), ctx_ptr(&mut ctx) as usize);

        assert_eq!(q.remove(ctx_ptr(&mut ctx)), Some(irp));
        assert!(ctx.Irp.is_null());
        assert_eq!(irp.driver_context3(), 0);
        assert!(!irp.has_cancel_routine());
        assert_eq!(q.remove(ctx_ptr(&mut ctx)), None);
        irp.complete(STATUS_SUCCESS);
        irp.free();
        q.free();
    });
    out.expect_clean();
}

// ---- A.9.7 row 2: IoCancelIrp wins -----------------------------------------------------------

#[test]
fn cancelling_a_queued_irp_completes_it_through_complete_canceled() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let mut ctx = context();
        let irp = Irp::routed(1);
        q.insert(irp, ctx_ptr(&mut ctx));
        q.clear_log();
        assert!(irp.cancel());
        // spec A.9.6: cancel lock released first, then the queue lock, CompleteCanceled last.
        assert_eq!(
            q.log(),
            ["Acquire", "Remove", "Release", "CompleteCanceled"]
        );
        assert_eq!(q.canceled(), 1);
        assert_eq!(irp.status(), STATUS_CANCELLED);
        assert!(ctx.Irp.is_null());
        assert_eq!(irp.driver_context3(), 0);
        assert_eq!(q.remove(ctx_ptr(&mut ctx)), None);
        assert!(q.remove_next(std::ptr::null_mut()).is_none());
        irp.free();
        q.free();
    });
    out.expect_clean();
}

// ---- A.9.7 row 3: already cancelled at insert -------------------------------------------------

#[test]
fn already_cancelled_irp_is_inserted_removed_and_completed_after_the_lock() {
    let out = machine(2).run(|| {
        let q = Q::new(true);
        let irp = Irp::routed(1);
        // Cancelled while not cancelable: IoCancelIrp returns FALSE but sets Cancel.
        assert!(!irp.cancel());
        assert!(irp.cancel_flag());
        let status = q.insert_ex(irp, std::ptr::null_mut());
        // The insert callback's status, although the IRP is already completed.
        assert_eq!(status, STATUS_SUCCESS);
        // WRK order (spec A.9.3 step 7), not ReactOS's or the documentation's.
        assert_eq!(
            q.log(),
            [
                "Acquire",
                "InsertEx",
                "Remove",
                "Release",
                "CompleteCanceled"
            ]
        );
        assert_eq!(q.canceled(), 1);
        assert_eq!(irp.status(), STATUS_CANCELLED);
        // It was marked pending (under the lock) before it was completed.
        assert!(irp.pending_returned());
        irp.free();
        q.free();
    });
    out.expect_clean();
}

// ---- A.9.7 row 4: Ex insert refused ----------------------------------------------------------

#[test]
fn refused_ex_insert_leaves_the_irp_unqueued_unpending_and_with_the_caller() {
    let out = machine(2).run(|| {
        let q = Q::new(true);
        q.queue()
            .insert_status
            .store(STATUS_UNSUCCESSFUL, std::sync::atomic::Ordering::SeqCst);
        let irp = Irp::routed(1);
        let status = q.insert_ex(irp, std::ptr::null_mut());
        assert_eq!(status, STATUS_UNSUCCESSFUL);
        assert_eq!(q.log(), ["Acquire", "InsertEx", "Release"]);
        assert!(!irp.has_cancel_routine());
        assert_eq!(irp.current_control() & SL_PENDING_RETURNED, 0);
        // The caller owns it and completes it.
        irp.complete(STATUS_DEVICE_BUSY);
        irp.free();
        q.free();
    });
    out.expect_clean();
}

// ---- D-18: IoCancelIrp between setting the cancel routine and checking Irp->Cancel -----------

#[test]
fn cancel_between_setting_the_routine_and_checking_cancel_is_finished_by_the_cancel_routine() {
    let out = machine(3).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        let at_check = Breakpoint::set(
            Point::CsqInsertBeforeCancelCheck,
            Filter::Object(irp.addr()),
        );
        let inserter = SystemThread::spawn_on(1, "inserter", move || {
            let status = q.insert_ex(irp, std::ptr::null_mut());
            assert_eq!(status, STATUS_SUCCESS);
        });
        at_check.wait_hit();
        // The inserter holds the queue lock, the routine is set, Cancel not yet read.
        assert!(irp.has_cancel_routine());
        let at_queue_lock = Breakpoint::set(Point::SpinLockAcquire, Filter::Object(q.lock_addr()));
        let canceller = SystemThread::spawn_on(2, "canceller", move || {
            assert!(irp.cancel());
        });
        designate_canceller(irp.0, canceller.actor());
        at_queue_lock.wait_hit();
        // IoCancelIrp took the routine; its cancel routine waits for the queue lock.
        assert!(irp.cancel_flag());
        assert!(!irp.has_cancel_routine());
        at_queue_lock.clear();
        at_check.clear();
        inserter.join();
        canceller.join();
        assert_eq!(
            q.log(),
            [
                "Acquire",
                "Insert",
                "Acquire",
                "Release",
                "Remove",
                "Release",
                "CompleteCanceled"
            ]
        );
        assert_eq!(q.canceled(), 1);
        assert_eq!(irp.status(), STATUS_CANCELLED);
        irp.free();
        q.free();
    });
    out.expect_clean();
}

// ---- A.9.5 case 3: remove by context while the cancel routine waits for the queue lock -------

#[test]
fn remove_by_context_loses_to_a_cancel_routine_blocked_on_the_queue_lock() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let mut ctx = context();
        let ctx_addr = ctx_ptr(&mut ctx) as usize;
        let irp = Irp::routed(1);
        q.insert(irp, ctx_ptr(&mut ctx));
        let at_queue_lock = Breakpoint::set(Point::SpinLockAcquire, Filter::Object(q.lock_addr()));
        let canceller = SystemThread::spawn_on(1, "canceller", move || {
            assert!(irp.cancel());
        });
        designate_canceller(irp.0, canceller.actor());
        at_queue_lock.wait_hit();
        // NULL, and the context is left alone: the cancel routine still has to clear it.
        assert_eq!(q.remove(ctx_addr as PIO_CSQ_IRP_CONTEXT), None);
        assert_eq!(ctx.Irp, irp.0);
        assert_eq!(q.canceled(), 0);
        at_queue_lock.clear();
        canceller.join();
        assert!(ctx.Irp.is_null());
        assert_eq!(q.canceled(), 1);
        assert_eq!(irp.status(), STATUS_CANCELLED);
        irp.free();
        q.free();
    });
    out.expect_clean();
}

// ---- spec E: the ReactOS-derived IoCsq kernel-mode test -------------------------------------

#[test]
fn kmtest_three_inserted_two_removed_in_order_third_cancelled() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        // Porting note of spec E: give each IRP a current stack location first.
        let irps = [Irp::routed(2), Irp::routed(2), Irp::routed(2)];
        for irp in irps {
            q.insert(irp, std::ptr::null_mut());
        }
        assert_eq!(q.remove_next(std::ptr::null_mut()), Some(irps[0]));
        assert_eq!(q.remove_next(std::ptr::null_mut()), Some(irps[1]));
        assert!(irps[2].cancel());
        assert_eq!(q.canceled(), 1);
        assert!(q.remove_next(std::ptr::null_mut()).is_none());
        for irp in &irps[..2] {
            irp.complete(STATUS_SUCCESS);
        }
        for irp in irps {
            irp.free();
        }
        q.free();
    });
    out.expect_clean();
}

#[test]
fn remove_next_with_a_peek_context_takes_only_the_matching_irp() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let a = Irp::routed(1);
        let b = Irp::routed(1);
        q.insert(a, std::ptr::null_mut());
        q.insert(b, std::ptr::null_mut());
        assert_eq!(q.remove_next(b.0.cast()), Some(b));
        assert_eq!(q.remove_next(b.0.cast()), None);
        assert_eq!(q.remove_next(std::ptr::null_mut()), Some(a));
        for irp in [a, b] {
            irp.complete(STATUS_SUCCESS);
            irp.free();
        }
        q.free();
    });
    out.expect_clean();
}

// ---- rule C32 (and the A.9.4 skip of an IRP being cancelled) ---------------------------------

/// Queues A and B, parks IoCancelIrp(A) in another thread just before A's cancel routine runs
/// (A's routine is taken, A still linked), then removes the next IRP.
fn remove_next_while_head_is_being_cancelled(bugs: u32) -> Option<bool> {
    let q = Q::new(false);
    let a = Irp::routed(1);
    let b = Irp::routed(1);
    q.insert(a, std::ptr::null_mut());
    q.insert(b, std::ptr::null_mut());
    let at_routine = Breakpoint::set(Point::CancelRoutineEntry, Filter::Object(a.addr()));
    let canceller = SystemThread::spawn_on(1, "canceller", move || {
        assert!(a.cancel());
    });
    designate_canceller(a.0, canceller.actor());
    at_routine.wait_hit();
    q.set_bugs(bugs);
    let got = q.remove_next(std::ptr::null_mut());
    q.set_bugs(0);
    at_routine.clear();
    canceller.join();
    assert_eq!(q.canceled(), 1);
    let took_b = got == Some(b);
    if let Some(irp) = got {
        irp.complete(STATUS_SUCCESS);
    } else {
        q.remove_next(std::ptr::null_mut())
            .expect("B")
            .complete(STATUS_SUCCESS);
    }
    a.free();
    b.free();
    q.free();
    Some(took_b)
}

#[test]
fn remove_next_skips_an_irp_whose_cancel_routine_is_pending() {
    let out = machine(2).run(|| remove_next_while_head_is_being_cancelled(0));
    assert_eq!(out.expect_clean(), Some(true));
}

#[test]
fn peek_that_goes_back_to_the_head_is_reported() {
    let out = machine(2).run(|| remove_next_while_head_is_being_cancelled(bug::PEEK_FROM_HEAD));
    assert_eq!(out.reports_of(Rule::CsqPeek).len(), 1, "{:?}", out.reports);
    assert_eq!(out.value, Some(Some(false)));
}

#[test]
fn peek_returning_an_irp_that_is_not_queued_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let stranger = Irp::routed(1);
        q.queue()
            .foreign
            .store(stranger.addr(), std::sync::atomic::Ordering::SeqCst);
        q.set_bugs(bug::PEEK_FOREIGN);
        assert!(q.remove_next(std::ptr::null_mut()).is_none());
        // Never touched by IoCsq: still not cancelable.
        assert!(!stranger.has_cancel_routine());
    });
    assert_eq!(out.reports_of(Rule::CsqPeek).len(), 1, "{:?}", out.reports);
}

// ---- rule C31 --------------------------------------------------------------------------------

#[test]
fn callback_reentering_its_own_queue_is_fatal() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        q.set_bugs(bug::PEEK_REENTERS);
        q.remove_next(std::ptr::null_mut());
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::CsqReentry);
}

// ---- rule C13 --------------------------------------------------------------------------------

#[test]
fn driver_context_3_overwritten_while_queued_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        irp.set_driver_context3(0x1234);
        let got = q.remove_next(std::ptr::null_mut()).expect("queued");
        got.complete(STATUS_SUCCESS);
        got.free();
        q.free();
    });
    assert_eq!(out.reports_of(Rule::CsqDriverContext).len(), 1);
    assert!(out.stop.is_none());
}

#[test]
fn insert_callback_writing_driver_context_3_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        q.set_bugs(bug::INSERT_WRITES_DC3);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        q.set_bugs(0);
        assert!(q.remove_next(std::ptr::null_mut()).is_some());
    });
    assert_eq!(out.reports_of(Rule::CsqDriverContext).len(), 1);
}

// ---- rules C30 and C30a ----------------------------------------------------------------------

#[test]
fn ex_insert_returning_pending_is_a_portability_warning() {
    let out = machine(2).run(|| {
        let q = Q::new(true);
        q.queue()
            .insert_status
            .store(STATUS_PENDING, std::sync::atomic::Ordering::SeqCst);
        let irp = Irp::routed(1);
        // WRK: NT_SUCCESS, so queued.
        assert_eq!(q.insert_ex(irp, std::ptr::null_mut()), STATUS_PENDING);
        assert_eq!(q.remove_next(std::ptr::null_mut()), Some(irp));
    });
    let r = out.reports_of(Rule::CsqInsertStatus);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].severity, ntsim::Severity::Warning);
}

#[test]
fn ex_insert_returning_success_is_clean() {
    let out = machine(2).run(|| {
        let q = Q::new(true);
        let irp = Irp::routed(1);
        assert_eq!(q.insert_ex(irp, std::ptr::null_mut()), STATUS_SUCCESS);
        let got = q.remove_next(std::ptr::null_mut()).expect("queued");
        got.complete(STATUS_SUCCESS);
        got.free();
        q.free();
    });
    out.expect_clean();
}

#[test]
fn plain_insert_on_an_ex_queue_that_refuses_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(true);
        q.queue()
            .insert_status
            .store(STATUS_UNSUCCESSFUL, std::sync::atomic::Ordering::SeqCst);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        assert_eq!(irp.current_control() & SL_PENDING_RETURNED, 0);
    });
    assert_eq!(out.reports_of(Rule::CsqNonExInsert).len(), 1);
}

// ---- rule C33 --------------------------------------------------------------------------------

#[test]
fn reusing_a_context_whose_irp_is_still_queued_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let mut ctx = context();
        let (a, b) = (Irp::routed(1), Irp::routed(1));
        q.insert(a, ctx_ptr(&mut ctx));
        q.insert(b, ctx_ptr(&mut ctx));
    });
    assert_eq!(out.reports_of(Rule::CsqContext).len(), 1);
}

#[test]
fn reusing_a_context_after_its_irp_left_the_queue_is_clean() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let mut ctx = context();
        let (a, b) = (Irp::routed(1), Irp::routed(1));
        q.insert(a, ctx_ptr(&mut ctx));
        assert_eq!(q.remove(ctx_ptr(&mut ctx)), Some(a));
        q.insert(b, ctx_ptr(&mut ctx));
        assert_eq!(q.remove(ctx_ptr(&mut ctx)), Some(b));
        for irp in [a, b] {
            irp.complete(STATUS_SUCCESS);
            irp.free();
        }
        q.free();
    });
    out.expect_clean();
}

// ---- rules C5, C6, C8 on queued IRPs ---------------------------------------------------------

#[test]
fn completing_an_irp_still_linked_in_the_queue_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        // Wrong: takes the routine behind IoCsq's back and completes a linked IRP.
        assert!(irp.set_cancel_routine(None).is_some());
        irp.complete(STATUS_SUCCESS);
    });
    assert_eq!(out.reports_of(Rule::CompleteWithoutOwnership).len(), 1);
}

#[test]
fn inserting_a_completed_irp_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        irp.complete(STATUS_SUCCESS);
        q.insert(irp, std::ptr::null_mut());
        assert!(q.log().is_empty());
    });
    assert_eq!(out.reports_of(Rule::UseAfterHandoff).len(), 1);
}

#[test]
fn marking_pending_after_the_insert_returned_is_reported() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        // Wrong: another thread may already have removed and completed it.
        irp.mark_pending();
    });
    assert_eq!(out.reports_of(Rule::MarkPendingLate).len(), 1);
}

#[test]
fn marking_a_queued_irp_pending_under_the_queue_lock_is_clean() {
    let out = machine(2).run(|| {
        let q = Q::new(false);
        let irp = Irp::routed(1);
        q.insert(irp, std::ptr::null_mut());
        let irql = q.lock();
        irp.mark_pending();
        q.unlock(irql);
        let got = q.remove_next(std::ptr::null_mut()).expect("queued");
        got.complete(STATUS_SUCCESS);
        got.free();
        q.free();
    });
    out.expect_clean();
}

//! IRP cancellation: IoSetCancelRoutine and IoCancelIrp (spec A.3–A.5), and the verifier rules
//! that watch the cancel protocol (C8, C9, C10, C12).
//!
//! `Irp->CancelRoutine` only ever changes by an atomic exchange on the real field. Whoever swaps
//! a non-NULL routine out owns the IRP (spec A.3). The owner model ntsim keeps is deliberately
//! small, so that it never reports a correct driver:
//! - while a cancel routine taken by IoCancelIrp runs, the IRP is that routine's (the actor that
//!   called IoCancelIrp): anyone else completing it (C5) or marking it pending (C8) is wrong;
//!   once the routine returns, whatever it did with the IRP (completed it, or handed it to a DPC)
//!   is no longer tracked;
//! - an IRP linked in a cancel-safe queue is the queue's (see `csq.rs`);
//! - an IRP whose cancel routine was taken back by IoSetCancelRoutine(NULL) or an IoCsqRemove*
//!   is its remover's, who may hand it to any other party (a DPC, a worker), so nothing is
//!   enforced there.

use crate::breakpoint::Point;
use crate::irp::{CancelFrame, CancelWatch};
use crate::machine::{Cx, World};
use crate::ntdef::{DISPATCH_LEVEL, IRP, KIRQL, PDRIVER_CANCEL, PIRP};
use crate::sched::ActorId;
use crate::spinlock::acquire_cancel_lock;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::verifier::Rule;

fn cancel_routine_word(irp: PIRP) -> &'static AtomicUsize {
    // SAFETY: `irp` is a live IRP (the address is computed, nothing is read).
    let field = unsafe { &raw mut (*irp).CancelRoutine };
    // SAFETY: CancelRoutine is a pointer-sized, pointer-aligned field that the kernel only ever
    // changes by atomic exchange.
    unsafe { &*field.cast::<AtomicUsize>() }
}

/// Atomically exchanges `irp`'s cancel routine; returns the previous one.
pub(crate) fn exchange_cancel_routine(irp: PIRP, new: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    let raw = new.map_or(0, |f| f as usize);
    let old = cancel_routine_word(irp).swap(raw, Ordering::SeqCst);
    if old == 0 {
        None
    } else {
        // SAFETY: a non-zero value was stored from a PDRIVER_CANCEL function pointer.
        Some(unsafe { std::mem::transmute::<usize, unsafe extern "system" fn(_, _)>(old) })
    }
}

/// The current value of `irp`'s cancel routine, as an address (0 if none).
fn peek_cancel_routine(irp: usize) -> usize {
    cancel_routine_word(irp as PIRP).load(Ordering::SeqCst)
}

fn read_cancel_flag(irp: PIRP) -> bool {
    // SAFETY: `irp` is a live IRP; `Cancel` is a byte the kernel only sets.
    unsafe { (*irp).Cancel != 0 }
}

/// Rule C8: IoMarkIrpPending after the IRP became visible to other completers without holding
/// the lock that keeps them out. Visible means: linked in a cancel-safe queue whose lock ntsim
/// knows (and the caller does not hold it); cancelable (a cancel routine set) while the caller
/// holds no spin lock at all; or its cancel routine is running in another actor.
pub(crate) fn check_mark_pending(g: &mut World, me: ActorId, irp: usize) {
    let why = if let Some(why) = crate::csq::mark_pending_unprotected(g, me, irp) {
        Some(why)
    } else if g
        .irps
        .irps
        .get(&irp)
        .and_then(|s| s.cancel_taken_by)
        .is_some_and(|a| a != me)
    {
        Some("its cancel routine is running in another thread, which owns it".to_string())
    } else if g.irp_is_live(irp)
        && peek_cancel_routine(irp) != 0
        && g.sched.actor(me).held_locks.is_empty()
    {
        Some("it is cancelable (cancel routine set) and no spin lock is held, so IoCancelIrp may complete it at any moment".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        let who = g.who(me);
        let mut parties = vec![who];
        parties.extend(g.irp_history(irp));
        g.report(
            Rule::MarkPendingLate,
            format!("IoMarkIrpPending on IRP {irp:#x} too late: {why} (spec A.6)"),
            parties,
        );
    }
}

/// Rule C12: checks, at a switch point of `me`, the cancel routines it set on IRPs that were
/// already cancelled. ntsim cannot see the driver read `Irp->Cancel`; what it can see is the
/// consequence of not reading it: the routine is still set when the setter reaches its next
/// switch point (a kernel call that may let another CPU in), so it left the critical section
/// with a cancel routine that nobody will ever call (IoCancelIrp already ran).
pub(crate) fn check_cancel_watch(g: &mut World, me: ActorId) {
    if g.irps.cancel_watch.is_empty() {
        return;
    }
    let (mine, rest): (Vec<CancelWatch>, Vec<CancelWatch>) =
        std::mem::take(&mut g.irps.cancel_watch)
            .into_iter()
            .partition(|w| w.setter == me);
    g.irps.cancel_watch = rest;
    for w in mine {
        if !g.irp_is_live(w.irp) || g.irp_is_completed(w.irp) {
            continue;
        }
        if peek_cancel_routine(w.irp) != w.routine {
            continue;
        }
        let who = g.who(me);
        let mut parties = vec![who];
        parties.extend(g.irp_history(w.irp));
        g.report(
            Rule::CancelFlagUnchecked,
            format!(
                "cancel routine set on IRP {:#x} whose Cancel flag was already TRUE, and not taken back before the setter went on: IoCancelIrp has already run, nobody will call it (spec A.4 step 5)",
                w.irp
            ),
            parties,
        );
    }
}

/// Sets `irp`'s cancel routine by atomic exchange and returns the previous one. NULL back from
/// `IoSetCancelRoutine(irp, NULL)` on a cancelable IRP means the cancel routine has been taken
/// by IoCancelIrp and owns the IRP now (spec A.3).
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `irp` must be a live IRP the caller currently routes.
#[allow(non_snake_case)]
pub unsafe fn IoSetCancelRoutine(irp: PIRP, routine: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    let cx = Cx::get();
    {
        let mut g = cx.lock();
        if !g.check_irp_usable(cx.me, irp as usize, "IoSetCancelRoutine") {
            drop(cx.reschedule(g));
            return None;
        }
    }
    let old = exchange_cancel_routine(irp, routine);
    // C12: "Cancel was TRUE at the moment the routine was set".
    let cancelled_at_set = routine.is_some() && read_cancel_flag(irp);
    {
        let mut g = cx.lock();
        let what = match (routine.is_some(), old.is_some()) {
            (true, _) => {
                crate::startio::note_cancel_routine(&mut g, irp as usize);
                "IoSetCancelRoutine(routine)".to_string()
            }
            (false, true) => "IoSetCancelRoutine(NULL) took the cancel routine: owner".to_string(),
            (false, false) => "IoSetCancelRoutine(NULL) found none".to_string(),
        };
        g.irp_event(irp as usize, cx.me, what);
    }
    cx.point(Point::SetCancelRoutineReturn, irp as usize);
    if let Some(r) = routine.filter(|_| cancelled_at_set) {
        cx.lock().irps.cancel_watch.push(CancelWatch {
            irp: irp as usize,
            setter: cx.me,
            routine: r as usize,
        });
    }
    old
}

/// Cancels `irp` (spec A.4): sets `Cancel`, takes the cancel routine by exchange and, if there
/// was one, calls it with the cancel spin lock held. Returns TRUE (1) if a cancel routine was
/// called, FALSE (0) if the IRP was not cancelable (`Cancel` is set anyway).
///
/// IRQL: <= DISPATCH_LEVEL. Rule C9 warns when the caller is neither the IRP's allocator nor a
/// party the I/O manager designated.
///
/// # Safety
/// `irp` must stay allocated during the call (the caller keeps it from being freed).
#[allow(non_snake_case)]
pub unsafe fn IoCancelIrp(irp: PIRP) -> u8 {
    let cx = Cx::get();
    cx.check_irql_at_most("IoCancelIrp", DISPATCH_LEVEL);
    check_canceller(&cx, irp as usize);
    cx.point(Point::CancelIrpEntry, irp as usize);
    let old_irql = acquire_cancel_lock();
    // SAFETY: the caller keeps `irp` allocated.
    unsafe { (*irp).Cancel = 1 };
    let routine = exchange_cancel_routine(irp, None);
    let Some(routine) = routine else {
        cx.lock()
            .irp_event(irp as usize, cx.me, "IoCancelIrp: not cancelable".into());
        crate::spinlock::IoReleaseCancelSpinLock(old_irql);
        return 0;
    };
    {
        let mut g = cx.lock();
        g.irp_event(
            irp as usize,
            cx.me,
            "IoCancelIrp took the cancel routine".into(),
        );
        if let Some(s) = g.irps.irps.get_mut(&(irp as usize)) {
            s.cancel_taken_by = Some(cx.me);
        }
        g.irps
            .cancel_frames
            .entry(cx.me)
            .or_default()
            .push(CancelFrame {
                irp: irp as usize,
                cancel_irql: old_irql,
                released: false,
                must_lower: false,
            });
    }
    // SAFETY: as above.
    unsafe { (*irp).CancelIrql = old_irql };
    // SAFETY: the caller keeps `irp` allocated.
    let sl = unsafe { crate::irp::IoGetCurrentIrpStackLocation(irp) };
    // SAFETY: the current stack location of a routed IRP is valid.
    let dev = unsafe { crate::irp::stack_location_mut(sl) }.DeviceObject;
    cx.point(Point::CancelRoutineEntry, irp as usize);
    // SAFETY: the routine was installed for this IRP; it is called as its contract says: at
    // DISPATCH_LEVEL with the cancel spin lock held.
    unsafe { crate::abi::call_cancel_fn(routine, dev, irp) };
    check_cancel_routine_exit(&cx, irp);
    1
}

/// Rule C9: IoCancelIrp by a party that neither allocated the IRP nor was designated.
fn check_canceller(cx: &Cx, irp: usize) {
    let mut g = cx.lock();
    let allowed = g
        .irps
        .irps
        .get(&irp)
        .is_none_or(|s| s.cancel_allowed.allows(cx.me));
    if !allowed {
        let who = g.who(cx.me);
        let mut parties = vec![who];
        parties.extend(g.irp_history(irp));
        g.report(
            Rule::CancelNotOwned,
            format!(
                "IoCancelIrp on IRP {irp:#x} by a thread that neither allocated it nor was designated by the I/O manager (MSL IoCancelIrp: results are unpredictable)"
            ),
            parties,
        );
    }
}

/// Rule C10 at IoReleaseCancelSpinLock: inside a cancel routine the lock must be released once,
/// with `Irp->CancelIrql` (or with DISPATCH_LEVEL followed by KeLowerIrql(CancelIrql), spec
/// A.11.4). Returns whether the release should go ahead.
pub(crate) fn on_release_cancel_lock(cx: &Cx, irql: KIRQL) -> bool {
    let mut g = cx.lock();
    let me = cx.me;
    let holds = g.spin.cancel_lock_holder() == Some(me);
    let Some(frame) = g.irps.cancel_frames.get_mut(&me).and_then(|v| v.last_mut()) else {
        return true;
    };
    let irp = frame.irp;
    if !holds {
        if frame.released {
            let who = g.who(me);
            let mut parties = vec![who];
            parties.extend(g.irp_history(irp));
            g.report(
                Rule::CancelSpinLock,
                format!(
                    "cancel routine for IRP {irp:#x} released the cancel spin lock twice (DDI CancelSpinLock)"
                ),
                parties,
            );
            return false;
        }
        return true;
    }
    if frame.released {
        // Re-acquired inside the routine and released again: an ordinary pair.
        return true;
    }
    frame.released = true;
    if irql == frame.cancel_irql {
        return true;
    }
    if irql == DISPATCH_LEVEL {
        frame.must_lower = true;
        return true;
    }
    let expected = frame.cancel_irql;
    let who = g.who(me);
    let mut parties = vec![who];
    parties.extend(g.irp_history(irp));
    g.report(
        Rule::CancelSpinLock,
        format!(
            "cancel routine for IRP {irp:#x} released the cancel spin lock to IRQL {irql}; Irp->CancelIrql is {expected}"
        ),
        parties,
    );
    true
}

/// Rule C10 when a cancel routine returns: it must have released the cancel lock, and be back
/// at `Irp->CancelIrql`. Ends the routine's hold on the IRP (see the module doc).
fn check_cancel_routine_exit(cx: &Cx, irp: *mut IRP) {
    let mut g = cx.lock();
    let frame = g.irps.cancel_frames.get_mut(&cx.me).and_then(Vec::pop);
    if let Some(s) = g.irps.irps.get_mut(&(irp as usize)) {
        s.cancel_taken_by = None;
    }
    let irql = g.sched.actor(cx.me).irql;
    let problem = if g.spin.cancel_lock_holder() == Some(cx.me) {
        Some("returned still holding the cancel spin lock".to_string())
    } else {
        frame.filter(|f| f.must_lower && irql != f.cancel_irql).map(|f| {
            format!(
                "released the cancel spin lock at DISPATCH_LEVEL and returned at IRQL {irql} without KeLowerIrql({})",
                f.cancel_irql
            )
        })
    };
    if let Some(problem) = problem {
        let who = g.who(cx.me);
        let mut parties = vec![who];
        parties.extend(g.irp_history(irp as usize));
        g.report(
            Rule::CancelSpinLock,
            format!("cancel routine for IRP {:#x} {problem}", irp as usize),
            parties,
        );
    }
}

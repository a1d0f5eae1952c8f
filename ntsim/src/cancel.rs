//! IRP cancellation: IoSetCancelRoutine and IoCancelIrp (spec A.3–A.5).
//!
//! `Irp->CancelRoutine` only ever changes by an atomic exchange on the real field. Whoever swaps
//! a non-NULL routine out owns the IRP (spec A.3): the verifier's owner model records that.

use crate::breakpoint::Point;
use crate::machine::{Cx, World};
use crate::ntdef::{DISPATCH_LEVEL, IRP, PDRIVER_CANCEL, PIRP};
use crate::sched::ActorId;
use crate::spinlock::acquire_cancel_lock;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::verifier::Rule;

fn cancel_routine_word(irp: PIRP) -> &'static AtomicUsize {
    // SAFETY: `irp` is a live IRP; CancelRoutine is a pointer-sized, pointer-aligned field that
    // the kernel only ever changes by atomic exchange.
    unsafe { &*((&raw mut (*irp).CancelRoutine).cast::<AtomicUsize>()) }
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

/// Rule C8 hook: IoMarkIrpPending after the IRP became visible to other completers.
pub(crate) fn check_mark_pending(_g: &mut World, _me: ActorId, _irp: usize) {}

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
    let old = exchange_cancel_routine(irp, routine);
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
    old
}

/// Cancels `irp` (spec A.4): sets `Cancel`, takes the cancel routine by exchange and, if there
/// was one, calls it with the cancel spin lock held. TRUE (1) if a cancel routine was called.
///
/// IRQL: <= DISPATCH_LEVEL.
///
/// # Safety
/// `irp` must stay allocated during the call (the caller keeps it from being freed).
#[allow(non_snake_case)]
pub unsafe fn IoCancelIrp(irp: PIRP) -> u8 {
    let cx = Cx::get();
    cx.check_irql_at_most("IoCancelIrp", DISPATCH_LEVEL);
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
    }
    // SAFETY: as above.
    unsafe { (*irp).CancelIrql = old_irql };
    // SAFETY: the current stack location of a routed IRP is valid.
    let dev = unsafe { (*crate::irp::IoGetCurrentIrpStackLocation(irp)).DeviceObject };
    cx.point(Point::CancelRoutineEntry, irp as usize);
    // SAFETY: the routine was installed for this IRP; it is called as its contract says: at
    // DISPATCH_LEVEL with the cancel spin lock held.
    unsafe { routine(dev, irp) };
    check_cancel_routine_exit(&cx, irp);
    1
}

/// Rule C10: a cancel routine must have released the cancel lock before returning.
fn check_cancel_routine_exit(cx: &Cx, irp: *mut IRP) {
    let mut g = cx.lock();
    if g.spin.cancel_lock_holder() == Some(cx.me) {
        let who = g.who(cx.me);
        let mut parties = vec![who];
        parties.extend(g.irp_history(irp as usize));
        g.report(
            Rule::CancelSpinLock,
            format!(
                "cancel routine for IRP {:#x} returned still holding the cancel spin lock",
                irp as usize
            ),
            parties,
        );
    }
}

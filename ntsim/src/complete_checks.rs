//! The verifier checks IoCompleteRequest makes before completing (spec A.7, rules C1–C5).

use crate::machine::Cx;
use crate::ntdef::{DISPATCH_LEVEL, PIRP, STATUS_PENDING};
use crate::verifier::{Rule, Severity};

/// Returns whether the completion may proceed; reports what is wrong otherwise.
pub(crate) fn check_completion(cx: &Cx, irp: PIRP) -> bool {
    let mut g = cx.lock();
    let who = g.who(cx.me);
    let addr = irp as usize;
    let mut parties = vec![who];
    parties.extend(g.irp_history(addr));
    if !g.irp_is_live(addr) && g.irps.irps.contains_key(&addr) {
        g.report_as(
            Rule::UseAfterHandoff,
            Severity::Fatal,
            format!("IoCompleteRequest on IRP {addr:#x} after it was freed"),
            parties,
        );
        drop(cx.reschedule(g));
        return false;
    }
    // SAFETY: the caller passed a live IRP.
    let (loc, count, routine, status) = unsafe {
        (
            (*irp).CurrentLocation,
            (*irp).StackCount,
            (*irp).CancelRoutine,
            (*irp).IoStatus.u.Status,
        )
    };
    if loc > count + 1 {
        g.report(
            Rule::MultipleCompletion,
            format!(
                "IRP {addr:#x} completed again (CurrentLocation {loc} > StackCount+1 = {})",
                count + 1
            ),
            parties,
        );
        drop(cx.reschedule(g));
        return false;
    }
    if routine.is_some() {
        g.report(
            Rule::CompleteWithCancelRoutine,
            format!("IRP {addr:#x} completed with cancel routine {routine:?} still set"),
            parties,
        );
        drop(cx.reschedule(g));
        return false;
    }
    if status == STATUS_PENDING || status as u32 == 0xFFFF_FFFF {
        g.report(
            Rule::CompletePendingStatus,
            format!("IRP {addr:#x} completed with status {status:#x}"),
            parties,
        );
        drop(cx.reschedule(g));
        return false;
    }
    let a = g.sched.actor(cx.me);
    let (irql, locks) = (a.irql, a.held_locks.len());
    if irql > DISPATCH_LEVEL {
        g.report(
            Rule::CompleteIrql,
            format!("IRP {addr:#x} completed at IRQL {irql}"),
            parties,
        );
        drop(cx.reschedule(g));
        return false;
    }
    if locks > 0 {
        g.report_as(
            Rule::CompleteIrql,
            Severity::Violation,
            format!("IRP {addr:#x} completed while holding {locks} spin lock(s)"),
            parties,
        );
    }
    true
}

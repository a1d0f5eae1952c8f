//! The verifier checks IoCompleteRequest makes before completing (spec A.7, rules C1–C6).

use crate::machine::{Cx, World};
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
    let r = unsafe { crate::irp::irp_mut(irp) };
    let (loc, count, routine) = (r.CurrentLocation, r.StackCount, r.CancelRoutine);
    // SAFETY: the status arm of the union is the one completion uses.
    let status = unsafe { r.IoStatus.u.Status };
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
            parties.clone(),
        );
    }
    check_ownership(&mut g, cx, addr, parties);
    true
}

/// Rule C5: the completer must own the IRP. What ntsim can know for sure (see `cancel.rs`): an
/// IRP still linked in a cancel-safe queue belongs to the queue, and an IRP whose cancel routine
/// is running belongs to that routine's thread.
fn check_ownership(g: &mut World, cx: &Cx, addr: usize, parties: Vec<String>) {
    let why = if let Some(q) = crate::csq::queue_of_linked(g, addr) {
        Some(format!(
            "it is still linked in cancel-safe queue {q:#x} (only IoCsqRemoveIrp/IoCsqRemoveNextIrp or the CSQ cancel path may take it out)"
        ))
    } else {
        g.irps
            .irps
            .get(&addr)
            .and_then(|s| s.cancel_taken_by)
            .filter(|&a| a != cx.me)
            .map(|a| {
                format!(
                    "IoCancelIrp in {} took its cancel routine, which owns it (spec A.3)",
                    g.who(a)
                )
            })
    };
    if let Some(why) = why {
        g.report(
            Rule::CompleteWithoutOwnership,
            format!("IRP {addr:#x} completed by a party that does not own it: {why}"),
            parties,
        );
    }
}

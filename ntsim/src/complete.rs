//! IoCompleteRequest (spec A.7).

use crate::breakpoint::Point;
use crate::irp::{
    IoGetCurrentIrpStackLocation, IoSkipCurrentIrpStackLocation, irp_mut, stack_location_mut,
};
use crate::machine::Cx;
use crate::ntdef::{
    IRP, NT_ERROR, NT_SUCCESS, PIRP, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS,
    SL_PENDING_RETURNED, STATUS_MORE_PROCESSING_REQUIRED,
};

/// Completes `irp`: checks the rules of spec A.7 (C1–C4), walks the stack locations upward
/// calling completion routines, and hands the IRP to its completion sink (the I/O manager's
/// user-visible completion). The caller must not touch the IRP afterwards.
///
/// IRQL: <= DISPATCH_LEVEL, no spin lock held.
///
/// # Safety
/// `irp` must be a live IRP owned by the caller.
#[allow(non_snake_case)]
pub unsafe fn IofCompleteRequest(irp: PIRP, _boost: i8) {
    let cx = Cx::get();
    cx.point(Point::CompleteRequestEntry, irp as usize);
    if !crate::complete_checks::check_completion(&cx, irp) {
        return;
    }
    {
        let mut g = cx.lock();
        // SAFETY: the caller owns a live IRP.
        let r = unsafe { irp_mut(irp) };
        // SAFETY: the status arm of the union is the one completion uses.
        let status = unsafe { r.IoStatus.u.Status };
        g.irp_event(
            irp as usize,
            cx.me,
            format!(
                "IoCompleteRequest({})",
                crate::ntdef::status_name(status)
                    .map_or_else(|| format!("{status:#x}"), str::to_string)
            ),
        );
    }
    // SAFETY: the caller owns a live IRP; the walk stays within its stack locations.
    let stopped = unsafe { walk_stack(irp) };
    if stopped {
        return;
    }
    // The walk leaves CurrentLocation at StackCount + 1; a completed IRP reads StackCount + 2
    // (spec A.2), which is what catches a second completion.
    // SAFETY: as above.
    unsafe { irp_mut(irp) }.CurrentLocation += 1;
    let mut g = cx.lock();
    let sink = g.irps.irps.get_mut(&(irp as usize)).and_then(|s| {
        s.completed = true;
        s.sink
    });
    if let Some(sink) = sink {
        sink(&mut g, irp as usize);
    }
}

/// `IoCompleteRequest`.
///
/// IRQL: <= DISPATCH_LEVEL, no spin lock held.
///
/// # Safety
/// As [`IofCompleteRequest`].
#[allow(non_snake_case)]
pub unsafe fn IoCompleteRequest(irp: PIRP, boost: i8) {
    // SAFETY: forwarded caller contract.
    unsafe { IofCompleteRequest(irp, boost) };
}

/// Walks the stack locations from the current one up, calling completion routines. Returns true
/// if a routine returned STATUS_MORE_PROCESSING_REQUIRED (the IRP then belongs to it).
///
/// # Safety
/// `irp` must be a live IRP with a current stack location.
unsafe fn walk_stack(irp: *mut IRP) -> bool {
    loop {
        // SAFETY: the caller guarantees a live IRP; the reference ends before any callback.
        let r = unsafe { irp_mut(irp) };
        if r.CurrentLocation > r.StackCount {
            return false;
        }
        // SAFETY: as above.
        let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
        // SAFETY: CurrentLocation <= StackCount: the current location is in the stack array.
        let sl = unsafe { stack_location_mut(sl) };
        let (control, routine, context) = (sl.Control, sl.CompletionRoutine, sl.Context);
        r.PendingReturned = u8::from(control & SL_PENDING_RETURNED != 0);
        // SAFETY: moving one up from a location inside the array is allowed.
        unsafe { IoSkipCurrentIrpStackLocation(irp) };
        // SAFETY: as above.
        let r = unsafe { irp_mut(irp) };
        // SAFETY: the status arm of the union is the one completion uses.
        let status = unsafe { r.IoStatus.u.Status };
        let invoke = if r.Cancel != 0 {
            control & SL_INVOKE_ON_CANCEL != 0
        } else if NT_SUCCESS(status) {
            control & SL_INVOKE_ON_SUCCESS != 0
        } else {
            NT_ERROR(status) && control & SL_INVOKE_ON_ERROR != 0
        };
        let upper = if r.CurrentLocation <= r.StackCount {
            // SAFETY: as above.
            let sl = unsafe { IoGetCurrentIrpStackLocation(irp) };
            // SAFETY: the location is in the stack array.
            Some(unsafe { stack_location_mut(sl) })
        } else {
            None
        };
        match routine {
            Some(f) if invoke => {
                let dev = upper.map_or(std::ptr::null_mut(), |u| u.DeviceObject);
                // SAFETY: the routine was set for this location by its driver, and is called
                // as IoSetCompletionRoutine promises: with the upper device, the IRP and its
                // context.
                if unsafe { crate::abi::call_completion_fn(f, dev, irp, context) }
                    == STATUS_MORE_PROCESSING_REQUIRED
                {
                    return true;
                }
            }
            _ => {
                // No routine to propagate it: the pending mark moves up by itself.
                if let Some(u) = upper
                    && r.PendingReturned != 0
                {
                    u.Control |= SL_PENDING_RETURNED;
                }
            }
        }
    }
}

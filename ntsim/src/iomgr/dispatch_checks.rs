//! Rule C7: the dispatch return-value rules of spec A.6, checked when a dispatch routine
//! returns.

use crate::machine::Cx;
use crate::ntdef::{
    IO_STACK_LOCATION, NTSTATUS, PIRP, SL_PENDING_RETURNED, STATUS_PENDING, status_name,
};
use crate::verifier::{Rule, Severity};

fn name(s: NTSTATUS) -> String {
    status_name(s).map_or_else(|| format!("{:#x}", s as u32), str::to_string)
}

/// Checks what a dispatch routine returned for `irp`, whose stack location it was given was
/// `sl` and whose CurrentLocation was `location` at the call.
///
/// Violations: STATUS_PENDING without SL_PENDING_RETURNED [0x23D]; marked pending but returned
/// something else [0x23E]; returned 0xFFFFFFFF [0x225]. Fatal: returned a status other than the
/// one it completed the IRP with [0x224]; returned neither STATUS_PENDING nor after completing
/// or forwarding the IRP [0x226]. After a fatal report the caller parks.
pub(crate) fn check_dispatch_return(
    cx: &Cx,
    irp: PIRP,
    sl: *mut IO_STACK_LOCATION,
    location: i8,
    status: NTSTATUS,
) {
    let mut g = cx.lock();
    let addr = irp as usize;
    // An IRP freed during the call (a driver-allocated IRP completed and freed) can no longer
    // be read: only its return value is checked.
    let live = g.irp_is_live(addr);
    let mut parties = vec![g.who(cx.me)];
    parties.extend(g.irp_history(addr));
    if status as u32 == 0xFFFF_FFFF {
        g.report(
            Rule::DispatchReturn,
            format!("dispatch routine returned 0xFFFFFFFF for IRP {addr:#x} [0x225]"),
            parties.clone(),
        );
    }
    if !live {
        return;
    }
    // SAFETY: the IRP is live (the I/O manager frees its IRPs only after this check), and its
    // stack locations with it.
    let marked = unsafe { (*sl).Control } & SL_PENDING_RETURNED != 0;
    let completed = g.irps.irps.get(&addr).is_some_and(|s| s.completed);
    // SAFETY: as above.
    let r = unsafe { &*irp };
    let now_location = r.CurrentLocation;
    // SAFETY: IoStatus.u holds a status.
    let final_status = unsafe { r.IoStatus.u.Status };
    let forwarded = now_location < location;
    if status == STATUS_PENDING && !marked {
        g.report(
            Rule::DispatchReturn,
            format!(
                "dispatch routine returned STATUS_PENDING for IRP {addr:#x} without IoMarkIrpPending [0x23D]"
            ),
            parties,
        );
    } else if status != STATUS_PENDING && marked {
        g.report(
            Rule::DispatchReturn,
            format!(
                "dispatch routine marked IRP {addr:#x} pending but returned {} [0x23E]",
                name(status)
            ),
            parties,
        );
    } else if status != STATUS_PENDING && !completed && !forwarded {
        g.report_as(
            Rule::DispatchReturn,
            Severity::Fatal,
            format!(
                "dispatch routine returned {} for IRP {addr:#x} without completing, forwarding or pending it [0x226]",
                name(status)
            ),
            parties,
        );
        drop(cx.reschedule(g));
    } else if status != STATUS_PENDING && completed && !forwarded && status != final_status {
        g.report_as(
            Rule::DispatchReturn,
            Severity::Fatal,
            format!(
                "dispatch routine returned {} for IRP {addr:#x} but completed it with {} [0x224]",
                name(status),
                name(final_status)
            ),
            parties,
        );
        drop(cx.reschedule(g));
    }
}

//! First checks of IRPs: cancel ownership and completion rules.

use ntsim::cancel::*;
use ntsim::complete::IoCompleteRequest;
use ntsim::irp::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel, Rule};

unsafe extern "system" fn cancel_and_complete(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: called by IoCancelIrp with the cancel lock held on a live IRP we own now.
    unsafe {
        ntsim::spinlock::IoReleaseCancelSpinLock((*irp).CancelIrql);
        (*irp).IoStatus.u.Status = STATUS_CANCELLED;
        IoCompleteRequest(irp, 0);
    }
}

#[test]
fn cancel_routine_owns_and_completes() {
    let out = Kernel::new(Config::default()).run(|| {
        let irp = IoAllocateIrp(1, 0);
        // SAFETY: fresh IRP with one stack location.
        unsafe {
            IoSetNextIrpStackLocation(irp);
            assert!(IoSetCancelRoutine(irp, Some(cancel_and_complete)).is_none());
            assert_eq!(IoCancelIrp(irp), 1);
            assert_eq!((*irp).Cancel, 1);
            assert!((*irp).CancelRoutine.is_none());
            assert_eq!((*irp).CurrentLocation, (*irp).StackCount + 2);
            // A second cancel finds no routine.
            assert_eq!(IoCancelIrp(irp), 0);
            IoFreeIrp(irp);
        }
    });
    out.expect_clean();
}

#[test]
fn completing_twice_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let irp = IoAllocateIrp(1, 0);
        // SAFETY: fresh IRP.
        unsafe {
            IoSetNextIrpStackLocation(irp);
            (*irp).IoStatus.u.Status = STATUS_SUCCESS;
            IoCompleteRequest(irp, 0);
            IoCompleteRequest(irp, 0);
        }
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::MultipleCompletion);
}

#[test]
fn completing_with_cancel_routine_set_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let irp = IoAllocateIrp(1, 0);
        // SAFETY: fresh IRP.
        unsafe {
            IoSetNextIrpStackLocation(irp);
            IoSetCancelRoutine(irp, Some(cancel_and_complete));
            (*irp).IoStatus.u.Status = STATUS_SUCCESS;
            IoCompleteRequest(irp, 0);
        }
    });
    assert_eq!(
        out.stop.expect("stop").rule,
        Rule::CompleteWithCancelRoutine
    );
}

//! IRP allocation and stack locations: the ReactOS-derived IoIrp field checks (spec E, A.2) and
//! the misuse of freed IRPs.

mod irp_support;

use irp_support::Irp;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel, Rule};

fn machine() -> Kernel {
    Kernel::new(Config::default())
}

fn stack_base(irp: Irp) -> usize {
    irp.addr() + size_of::<IRP>()
}

fn current_stack_location(irp: Irp) -> usize {
    // SAFETY: the IRP is allocated; the field is read, not dereferenced.
    unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(irp.0) as usize }
}

#[test]
fn kmtest_allocated_irp_fields() {
    let out = machine().run(|| {
        for stack in [1i8, 2, 5] {
            let irp = Irp::raw(stack);
            let f = irp.get();
            assert_eq!(f.Type, IO_TYPE_IRP);
            assert_eq!(
                f.Size as usize,
                size_of::<IRP>() + stack as usize * size_of::<IO_STACK_LOCATION>()
            );
            assert_eq!(f.StackCount, stack);
            assert_eq!(f.CurrentLocation, stack + 1);
            // An empty list points at itself.
            let tle = &raw const f.ThreadListEntry;
            assert_eq!(f.ThreadListEntry.Flink.cast_const(), tle);
            assert_eq!(f.ThreadListEntry.Blink.cast_const(), tle);
            // One past the last slot.
            assert_eq!(
                current_stack_location(irp),
                stack_base(irp) + stack as usize * size_of::<IO_STACK_LOCATION>()
            );
            assert!(!irp.cancel_flag());
            assert!(!irp.has_cancel_routine());
            assert!(!irp.pending_returned());
            irp.free();
        }
    });
    out.expect_clean();
}

#[test]
fn stack_location_moves_down_and_back_up() {
    let out = machine().run(|| {
        let irp = Irp::raw(2);
        irp.set_next();
        assert_eq!(irp.current_location(), 2);
        assert_eq!(
            current_stack_location(irp),
            stack_base(irp) + size_of::<IO_STACK_LOCATION>()
        );
        irp.set_next();
        assert_eq!(irp.current_location(), 1);
        assert_eq!(current_stack_location(irp), stack_base(irp));
        // SAFETY: the IRP has a location above the current one.
        unsafe { ntsim::irp::IoSkipCurrentIrpStackLocation(irp.0) };
        assert_eq!(irp.current_location(), 2);
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn initialize_irp_resets_a_completed_irp_for_reuse() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.complete(STATUS_SUCCESS);
        let size = irp.get().Size;
        // SAFETY: the IRP's storage is `size` bytes and nobody uses it.
        unsafe { ntsim::irp::IoInitializeIrp(irp.0, size, 1) };
        assert_eq!(irp.current_location(), 2);
        irp.set_next();
        irp.complete(STATUS_SUCCESS);
        irp.free();
    });
    out.expect_clean();
}

#[test]
fn freeing_an_irp_twice_is_fatal() {
    let out = machine().run(|| {
        let irp = Irp::raw(1);
        irp.free();
        irp.free();
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::BadPool);
}

#[test]
fn completing_a_freed_irp_is_fatal() {
    let out = machine().run(|| {
        let irp = Irp::routed(1);
        irp.free();
        // SAFETY: deliberately wrong; ntsim checks before touching the memory.
        unsafe { ntsim::complete::IoCompleteRequest(irp.0, 0) };
    });
    assert_eq!(out.stop.expect("stop").rule, Rule::UseAfterHandoff);
}

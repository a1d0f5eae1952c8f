//! Validation on both devices (spec B.1 "Dispatch", D-6…D-10): every error is synchronous,
//! never pending, and leaves nothing behind.

mod support;

use csq_event::interface::{EVENT_BASED, IOCTL_REGISTER_EVENT, IRP_BASED, register_event};
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use support::*;

/// A request that failed synchronously with `status`: not pending, IOSB not written.
fn assert_sync_error(r: Request, status: NTSTATUS) {
    let info = r.info();
    assert_eq!(info.returned, Some(status));
    assert_eq!(info.status, Some(status));
    assert!(!info.pending);
    assert!(info.synchronous_error);
    assert_eq!(info.completed_at, Some(info.issued_at));
}

/// `irp_records`: whether IRP-based registrations allocate a record (model C: one timer per
/// registration; model S: the IRP itself is the queue's carrier, nothing to allocate).
fn run_on(device: &'static str, irp_records: bool) {
    let out = machine().run(move || {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(device, OpenMode::Overlapped).expect("open");
            let input = register_event(IRP_BASED, 0, due_ms(1000));
            // D-6: one byte short.
            let r = device_io_control(h, IOCTL_REGISTER_EVENT, &input[..23], 0).unwrap();
            assert_sync_error(r, STATUS_INVALID_PARAMETER);
            // D-7: an unknown type.
            let r = device_io_control(h, IOCTL_REGISTER_EVENT, &register_event(2, 0, 0), 0);
            assert_sync_error(r.unwrap(), STATUS_INVALID_PARAMETER);
            // D-8: an unknown control code (function 0x801).
            let r = device_io_control(h, IOCTL_REGISTER_EVENT + 4, &input, 0).unwrap();
            assert_sync_error(r, STATUS_NOT_IMPLEMENTED);
            // D-9: a handle that does not exist, and one to a semaphore.
            let bad = register_event(EVENT_BASED, 0x7777_7770, due_ms(1000));
            let r = device_io_control(h, IOCTL_REGISTER_EVENT, &bad, 0).unwrap();
            assert_sync_error(r, STATUS_INVALID_HANDLE);
            let s = create_semaphore(0, 1);
            let r = event_based(h, s, due_ms(1000));
            assert_sync_error(r, STATUS_OBJECT_TYPE_MISMATCH);
            // A longer input is accepted; its extra bytes are ignored.
            let mut long = input.to_vec();
            long.extend_from_slice(&[0xEE; 8]);
            let r = device_io_control(h, IOCTL_REGISTER_EVENT, &long, 0).unwrap();
            r.wait();
            assert_eq!(outcome(r), (STATUS_SUCCESS, ms(1000), true));
            // D-10: the record's allocation fails (IRP-based, then event-based).
            ntsim::pool::fail_allocations(1, None);
            let r = irp_based(h, due_ms(1000));
            if irp_records {
                assert_sync_error(r, STATUS_INSUFFICIENT_RESOURCES);
            } else {
                assert_eq!(r.info().returned, Some(STATUS_PENDING));
                ntsim::pool::fail_allocations(0, None);
                cancel_io_ex(h, Some(r));
                assert_eq!(r.info().status, Some(STATUS_CANCELLED));
            }
            let e = create_event(true, false);
            let obj = event_object(p, e).expect("event");
            ntsim::pool::fail_allocations(1, None);
            let r = event_based(h, e, due_ms(1000));
            assert_sync_error(r, STATUS_INSUFFICIENT_RESOURCES);
            // The event reference taken before the failed allocation was released.
            assert_eq!(ntsim::object::object_reference_count(obj), Some(1));
            // The device still works.
            let r = irp_based(h, 0);
            r.wait();
            assert_eq!(r.info().status, Some(STATUS_SUCCESS));
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

#[test]
fn validation_errors_are_synchronous_on_the_concurrent_device() {
    run_on(CONCURRENT, true);
}

/// An open fails cleanly when its per-handle context cannot be allocated.
#[test]
fn open_fails_cleanly_without_pool() {
    let out = machine().run(|| {
        let drv = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            ntsim::pool::fail_allocations(1, None);
            assert_eq!(
                create_file(CONCURRENT, OpenMode::Overlapped),
                Err(STATUS_INSUFFICIENT_RESOURCES)
            );
            let h = create_file(CONCURRENT, OpenMode::Overlapped).expect("open");
            close_handle(h);
        })
        .join();
        unload_clean(drv);
    });
    out.expect_clean();
}

#[test]
fn validation_errors_are_synchronous_on_the_serial_device() {
    run_on(SERIAL, false);
}

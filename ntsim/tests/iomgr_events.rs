//! User events by handle (spec A.14): create/set/reset/wait, the set log, the driver
//! referencing an event by handle with the requestor's mode and type, and D-24.

mod iomgr_support;

use iomgr_support::*;
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::object::object_reference_count;
use ntsim::{Config, Kernel};

fn register(h: Handle, event: Handle, due: i64) -> Request {
    let mut input = Vec::new();
    input.extend_from_slice(&(event.raw() as u64).to_le_bytes());
    input.extend_from_slice(&due.to_le_bytes());
    device_io_control(h, IOCTL_EVENT, &input, 0).expect("ioctl")
}

#[test]
fn events_set_reset_wait_and_log() {
    let out = Kernel::new(Config::default()).run(|| {
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let manual = create_event(true, false);
            let auto = create_event(false, false);
            assert_eq!(wait_for_single_object(manual, Some(0)), Ok(STATUS_TIMEOUT));
            assert_eq!(set_event(manual), Ok(0));
            assert_eq!(set_event(manual), Ok(1));
            assert_eq!(wait_for_single_object(manual, None), Ok(STATUS_SUCCESS));
            assert_eq!(wait_for_single_object(manual, Some(0)), Ok(STATUS_SUCCESS));
            assert_eq!(reset_event(manual), Ok(1));
            set_event(auto).expect("set");
            assert_eq!(wait_for_single_object(auto, Some(0)), Ok(STATUS_SUCCESS));
            assert_eq!(wait_for_single_object(auto, Some(100)), Ok(STATUS_TIMEOUT));
            let log = event_log(p, manual);
            assert_eq!(log.len(), 2);
            assert_eq!((log[0].previous, log[1].previous), (0, 1));
            let sem = create_semaphore(0, 1);
            assert_eq!(set_event(sem), Err(STATUS_OBJECT_TYPE_MISMATCH));
            assert_eq!(
                wait_for_single_object(Handle::from_raw(0x1234 as HANDLE), None),
                Err(STATUS_INVALID_HANDLE)
            );
        })
        .join();
        ntsim::iomgr::interrupt_time()
    });
    assert_eq!(out.expect_clean(), 1_000_000);
}

/// The event-based registration: the driver signals the user's event at the due time.
#[test]
fn driver_signals_user_event_at_due_time() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            let e = create_event(true, false);
            let r = register(h, e, -10_000_000);
            assert_eq!(r.info().status, Some(STATUS_SUCCESS));
            assert_eq!(wait_for_single_object(e, None), Ok(STATUS_SUCCESS));
            let log = event_log(p, e);
            assert_eq!(log.len(), 1);
            assert_eq!(log[0].time, 10_000_000);
            let obj = event_object(p, e).expect("event");
            assert_eq!(object_reference_count(obj), Some(1));
            // A handle to a semaphore: ObReferenceObjectByHandle's type check fails.
            let s = create_semaphore(0, 1);
            let r = register(h, s, -10_000_000);
            assert_eq!(r.info().status, Some(STATUS_OBJECT_TYPE_MISMATCH));
            assert!(r.info().synchronous_error);
            close_handle(h);
        })
        .join();
    });
    out.expect_clean();
}

/// Spec D-24: an event-based registration, then the handle is closed before the due time: the
/// event is never signalled and its reference count is back to the handle's alone.
#[test]
fn close_before_due_time_releases_event_reference() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            let e = create_event(true, false);
            let obj = event_object(p, e).expect("event");
            let baseline = object_reference_count(obj);
            register(h, e, -10_000_000);
            assert_eq!(object_reference_count(obj), baseline.map(|n| n + 1));
            sleep(500);
            close_handle(h);
            assert_eq!(object_reference_count(obj), baseline);
            sleep(2000);
            assert!(event_log(p, e).is_empty());
        })
        .join();
        let r = unload_driver(drv).expect("unload");
        assert_eq!(r, UnloadOutcome::Unloaded(LeakReport::default()));
    });
    out.expect_clean();
}

#[test]
fn overlapped_event_is_signalled_at_completion() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let e = create_event(true, true);
            let r = device_io_control_with_event(h, IOCTL_PEND, &[], 0, e).expect("ioctl");
            // The I/O manager reset the event when it took the request.
            assert_eq!(wait_for_single_object(e, Some(0)), Ok(STATUS_TIMEOUT));
            device_io_control(h, IOCTL_COMPLETE_ALL, &[], 0).expect("complete");
            assert_eq!(wait_for_single_object(e, None), Ok(STATUS_SUCCESS));
            assert_eq!(r.poll().map(|x| x.status), Some(STATUS_SUCCESS));
            close_handle(e);
            close_handle(h);
        })
        .join();
    });
    out.expect_clean();
}

/// A driver that keeps a reference to the user's event shows in the leak report.
#[test]
fn unreleased_event_reference_is_a_leak() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            let e = create_event(true, false);
            register(h, e, -10_000_000);
        })
        .join();
        // Forget the registration without dereferencing the event (a buggy driver).
        state(dev).event = 0;
        p.terminate();
        p.wait();
        let UnloadOutcome::Unloaded(r) = unload_driver(drv).expect("unload") else {
            panic!("deferred");
        };
        assert_eq!(r.object_references.len(), 1, "{r:?}");
        assert_eq!(r.object_references[0].references, 1);
    });
    assert_eq!(out.reports_of(ntsim::Rule::Leak).len(), 1);
}

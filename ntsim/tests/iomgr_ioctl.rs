//! DeviceIoControl through the I/O manager: buffered I/O, the user-visible completion rules of
//! spec A.6, overlapped requests, FO_SYNCHRONOUS_IO serialization (D-14), and rule C7.

mod iomgr_support;

use iomgr_support::*;
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel, Rule};

#[test]
fn buffered_echo_copies_information_bytes_back() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        let t = p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            let r = device_io_control(h, IOCTL_ECHO, b"hello", 8).expect("ioctl");
            let i = r.info();
            assert_eq!(i.status, Some(STATUS_SUCCESS));
            assert_eq!(i.returned, Some(STATUS_SUCCESS));
            assert!(!i.pending);
            assert_eq!(i.information, 5);
            assert_eq!(&i.output[..5], b"hello");
            assert_eq!(i.output[5..], [0, 0, 0]);
            assert_eq!(i.completed_at, Some(0));
            assert_eq!(close_handle(h), STATUS_SUCCESS);
        });
        t.join();
    });
    out.expect_clean();
}

#[test]
fn synchronous_error_is_returned_without_iosb_or_event() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        let t = p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let e = create_event(true, false);
            let r = device_io_control_with_event(h, IOCTL_FAIL, &[], 0, e).expect("ioctl");
            let i = r.info();
            assert!(i.synchronous_error);
            assert_eq!(i.returned, Some(STATUS_INVALID_PARAMETER));
            assert!(event_log(p, e).is_empty(), "the event is not signalled");
            // Pending-returned error: the IOSB is written and the event signalled.
            let r = device_io_control_with_event(h, IOCTL_PEND_FAIL, &[], 0, e).expect("ioctl");
            let i = r.info();
            assert!(!i.synchronous_error);
            assert!(i.pending);
            assert_eq!(i.returned, Some(STATUS_PENDING));
            assert_eq!(i.status, Some(STATUS_INVALID_PARAMETER));
            assert_eq!(event_log(p, e).len(), 1);
            close_handle(e);
            close_handle(h);
        });
        t.join();
    });
    out.expect_clean();
}

#[test]
fn overlapped_request_stays_pending_until_completed() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let p = Process::create("app");
        let t = p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let r = device_io_control(h, IOCTL_PEND, &[], 4).expect("ioctl");
            assert_eq!(r.info().returned, Some(STATUS_PENDING));
            assert!(r.poll().is_none());
            sleep(300);
            let c = device_io_control(h, IOCTL_COMPLETE_ALL, &[], 0).expect("ioctl");
            assert_eq!(c.info().status, Some(STATUS_SUCCESS));
            let res = r.wait();
            assert_eq!(res.status, STATUS_SUCCESS);
            assert_eq!(r.info().completed_at, Some(3_000_000));
            close_handle(h);
        });
        t.join();
        assert_eq!(device_refs(dev), 0);
        assert_eq!(
            majors(dev),
            vec![IRP_MJ_CREATE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE]
        );
    });
    out.expect_clean();
}

/// Spec D-14: two threads on one synchronous handle: the second request is dispatched only
/// after the first completed.
#[test]
fn synchronous_handle_serializes_requests() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let p = Process::create("app");
        let h = std::sync::Arc::new(std::sync::Mutex::new(None));
        let h1 = h.clone();
        let opener = p.spawn_thread("opener", move || {
            *h1.lock().unwrap() = Some(create_file(NAME, OpenMode::Synchronous).expect("open"));
        });
        opener.join();
        let hh = h.lock().unwrap().expect("opened");
        let a = p.spawn_thread("a", move || {
            let r = device_io_control(hh, IOCTL_PEND, &[], 0).expect("ioctl");
            assert_eq!(r.info().status, Some(STATUS_SUCCESS));
        });
        let b = p.spawn_thread("b", move || {
            let r = device_io_control(hh, IOCTL_PEND, &[], 0).expect("ioctl");
            assert_eq!(r.info().status, Some(STATUS_SUCCESS));
        });
        let mut t = -5_000_000i64;
        // SAFETY: a 0.5 s delay.
        unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut t) };
        assert_eq!(
            state(dev).queue.len(),
            1,
            "b is not dispatched while a is pending"
        );
        let devaddr = dev as usize;
        let c = p.spawn_thread("completer", move || {
            let dev = devaddr as PDEVICE_OBJECT;
            let h2 = create_file(NAME, OpenMode::Overlapped).expect("open");
            device_io_control(h2, IOCTL_COMPLETE_ALL, &[], 0).expect("ioctl");
            sleep(500);
            assert_eq!(
                state(dev).queue.len(),
                1,
                "b was dispatched after a completed"
            );
            device_io_control(h2, IOCTL_COMPLETE_ALL, &[], 0).expect("ioctl");
            close_handle(h2);
        });
        a.join();
        b.join();
        c.join();
        p.terminate();
        p.wait();
        assert_eq!(p.handle_count(), 0);
    });
    out.expect_clean();
}

fn run_code(code: u32) -> ntsim::Outcome<()> {
    Kernel::new(Config::default()).run(move || {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        let t = p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let _ = device_io_control(h, code, &[], 0);
            let _ = device_io_control(h, IOCTL_COMPLETE_ALL, &[], 0);
            close_handle(h);
        });
        t.join();
    })
}

#[test]
fn c7_pending_returned_without_mark_is_reported() {
    let out = run_code(IOCTL_PENDING_UNMARKED);
    let r = out.reports_of(Rule::DispatchReturn);
    assert_eq!(r.len(), 1, "{:?}", out.reports);
    assert!(r[0].message.contains("0x23D"));
}

#[test]
fn c7_marked_pending_then_returned_success_is_reported() {
    let out = run_code(IOCTL_MARKED_RETURNS_SUCCESS);
    let r = out.reports_of(Rule::DispatchReturn);
    assert_eq!(r.len(), 1, "{:?}", out.reports);
    assert!(r[0].message.contains("0x23E"));
}

#[test]
fn c7_returned_status_differs_from_completion_is_fatal() {
    let out = run_code(IOCTL_RETURNS_OTHER_STATUS);
    let stop = out.stop.expect("fatal");
    assert_eq!(stop.rule, Rule::DispatchReturn);
    assert!(stop.message.contains("0x224"));
}

#[test]
fn c7_returned_without_completing_is_fatal() {
    let out = run_code(IOCTL_NOT_COMPLETED);
    let stop = out.stop.expect("fatal");
    assert_eq!(stop.rule, Rule::DispatchReturn);
    assert!(stop.message.contains("0x226"));
}

#[test]
fn c7_returned_ffffffff_is_reported() {
    let out = run_code(IOCTL_RETURNS_FFFFFFFF);
    assert!(
        out.reports_of(Rule::DispatchReturn)
            .iter()
            .any(|r| r.message.contains("0x225"))
    );
}

#[test]
fn c7_right_dispatch_routines_are_clean() {
    for code in [IOCTL_ECHO, IOCTL_FAIL, IOCTL_PEND, IOCTL_PEND_FAIL] {
        run_code(code).expect_clean();
    }
}

#[test]
fn unknown_handle_and_wrong_object_type_fail_before_any_irp() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            assert_eq!(
                device_io_control(Handle::from_raw(0x7770 as HANDLE), IOCTL_ECHO, &[], 0),
                Err(STATUS_INVALID_HANDLE)
            );
            let e = create_event(true, false);
            assert_eq!(
                device_io_control(e, IOCTL_ECHO, &[], 0),
                Err(STATUS_OBJECT_TYPE_MISMATCH)
            );
        })
        .join();
    });
    out.expect_clean();
}

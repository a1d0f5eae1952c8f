//! CancelIo/CancelIoEx, CloseHandle with requests pending (D-21), thread and process exit
//! (IoCancelThreadIo, D-25, rule C15).

mod iomgr_support;

use iomgr_support::*;
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel, Rule};

#[test]
fn cancel_io_ex_cancels_one_request() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let a = device_io_control(h, IOCTL_PEND, &[], 0).expect("a");
            let b = device_io_control(h, IOCTL_PEND, &[], 0).expect("b");
            sleep(200);
            assert_eq!(cancel_io_ex(h, Some(b)), STATUS_SUCCESS);
            let rb = b.info();
            assert_eq!(rb.status, Some(STATUS_CANCELLED));
            assert_eq!(rb.cancelled_at, Some(2_000_000));
            assert_eq!(rb.completed_at, Some(2_000_000));
            assert!(a.poll().is_none());
            // Nothing left to cancel for b.
            assert_eq!(cancel_io_ex(h, Some(b)), STATUS_NOT_FOUND);
            assert_eq!(cancel_io_ex(h, None), STATUS_SUCCESS);
            assert_eq!(a.wait().status, STATUS_CANCELLED);
            assert_eq!(cancel_io(h), STATUS_SUCCESS);
            close_handle(h);
        })
        .join();
    });
    out.expect_clean();
}

/// Spec D-21: closing H1 cancels its queued requests before its cleanup completes; H2's
/// request is unaffected; IRP_MJ_CLOSE for H1 only after all its IRPs are done.
#[test]
fn close_cancels_that_handles_requests_only() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let h1 = create_file(NAME, OpenMode::Overlapped).expect("h1");
            let h2 = create_file(NAME, OpenMode::Overlapped).expect("h2");
            let r1: Vec<Request> = (0..3)
                .map(|_| device_io_control(h1, IOCTL_PEND, &[], 0).expect("pend"))
                .collect();
            let r2 = device_io_control(h2, IOCTL_PEND, &[], 0).expect("pend");
            sleep(100);
            close_handle(h1);
            for r in &r1 {
                let i = r.info();
                assert_eq!(i.status, Some(STATUS_CANCELLED));
                assert_eq!(i.completed_at, Some(1_000_000));
            }
            assert!(r2.poll().is_none());
            device_io_control(h2, IOCTL_COMPLETE_ALL, &[], 0).expect("complete");
            assert_eq!(r2.wait().status, STATUS_SUCCESS);
            close_handle(h2);
        })
        .join();
        let log = &state(dev).log;
        let f1 = log[0].2;
        let close1 = log
            .iter()
            .position(|&(m, _, f)| m == IRP_MJ_CLOSE && f == f1);
        let cleanup1 = log
            .iter()
            .position(|&(m, _, f)| m == IRP_MJ_CLEANUP && f == f1);
        assert!(cleanup1 < close1);
        assert_eq!(device_refs(dev), 0);
    });
    out.expect_clean();
}

/// IRP_MJ_CLOSE waits for the last IRP on the file object: an uncancelable request that
/// completes after the handle is closed brings the CLOSE with it (sent by the I/O manager's
/// worker).
#[test]
fn close_irp_follows_the_last_request() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let devaddr = dev as usize;
        let p = Process::create("app");
        p.spawn_thread("client", move || {
            let dev = devaddr as PDEVICE_OBJECT;
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            let r = device_io_control(h, IOCTL_PEND_NO_CANCEL, &[], 0).expect("pend");
            close_handle(h);
            assert_eq!(majors(dev), vec![IRP_MJ_CREATE, IRP_MJ_CLEANUP]);
            sleep(100);
            let irp = state(dev).held.pop().expect("held") as PIRP;
            // SAFETY: the test completes the IRP the driver held, as the driver would.
            let held = unsafe { &mut *irp };
            held.IoStatus.u.Status = STATUS_SUCCESS;
            // SAFETY: as above.
            unsafe { ntsim::complete::IoCompleteRequest(irp, 0) };
            assert_eq!(r.info().status, Some(STATUS_SUCCESS));
            sleep(1);
            assert_eq!(
                majors(dev),
                vec![IRP_MJ_CREATE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE]
            );
        })
        .join();
        assert_eq!(device_refs(dev), 0);
    });
    out.expect_clean();
}

/// Spec D-25: killing a process whose thread waits in a synchronous IOCTL cancels the IRP
/// (IoCancelThreadIo); the process exits at once and its handles are closed.
#[test]
fn process_kill_cancels_pending_synchronous_ioctl() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, dev) = load();
        let p = Process::create("app");
        let t = p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            let _ = device_io_control(h, IOCTL_PEND, &[], 0);
            unreachable!("the thread is terminated while it waits");
        });
        let mut d = -10_000_000i64;
        // SAFETY: a 1 s delay.
        unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut d) };
        p.terminate();
        p.wait();
        assert!(t.is_finished());
        assert!(p.has_exited());
        assert_eq!(p.handle_count(), 0);
        assert_eq!(device_refs(dev), 0);
        assert_eq!(
            majors(dev),
            vec![IRP_MJ_CREATE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE]
        );
        ntsim::iomgr::interrupt_time()
    });
    assert_eq!(out.expect_clean(), 10_000_000, "exit within the same tick");
}

/// A thread that returns with a request pending: IoCancelThreadIo cancels it first.
#[test]
fn thread_exit_cancels_its_requests() {
    let out = Kernel::new(Config::default()).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s2 = slot.clone();
        p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            *s2.lock().unwrap() = Some(device_io_control(h, IOCTL_PEND, &[], 0).expect("pend"));
        })
        .join();
        let r = slot.lock().unwrap().expect("issued");
        assert_eq!(r.info().status, Some(STATUS_CANCELLED));
        p.terminate();
        p.wait();
    });
    out.expect_clean();
}

/// Rule C15: a driver that never completes a cancelled IRP keeps the exiting thread for
/// `cancel_timeout`; then the IRP is reported and disassociated.
#[test]
fn c15_cancel_not_honoured_at_thread_exit() {
    let config = Config {
        cancel_timeout: 10_000_000,
        ..Config::default()
    };
    let out = Kernel::new(config).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        let t = p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            device_io_control(h, IOCTL_PEND_NO_CANCEL, &[], 0).expect("pend");
        });
        t.join();
        ntsim::iomgr::interrupt_time()
    });
    let r = out.reports_of(Rule::CancelNotHonoured);
    assert_eq!(r.len(), 1, "{:?}", out.reports);
    assert_eq!(out.value, Some(10_000_000));
}

#[test]
fn c15_right_cancelable_request_exits_at_once() {
    let config = Config {
        cancel_timeout: 10_000_000,
        ..Config::default()
    };
    let out = Kernel::new(config).run(|| {
        let (_drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Overlapped).expect("open");
            device_io_control(h, IOCTL_PEND, &[], 0).expect("pend");
        })
        .join();
        p.terminate();
        ntsim::iomgr::interrupt_time()
    });
    assert_eq!(out.expect_clean(), 0);
}

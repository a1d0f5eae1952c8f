//! Driver unload: D-28 (nothing open), D-29 (deferred while a handle is open), rules C25 and
//! C14, and the leak report.

mod iomgr_support;

use iomgr_support::*;
use ntsim::iomgr::*;
use ntsim::ntdef::*;
use ntsim::{Config, Kernel, Rule};

/// Spec D-28: all handles closed, no pending work: unload runs at once and leaves nothing.
#[test]
fn unload_with_nothing_open_is_clean() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, _dev) = load();
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            device_io_control(h, IOCTL_START_THREAD, &[], 0).expect("thread");
            device_io_control(h, IOCTL_ARM_TIMER, &[], 0).expect("timer");
            close_handle(h);
        })
        .join();
        let r = unload_driver(drv).expect("unload");
        assert_eq!(r, UnloadOutcome::Unloaded(LeakReport::default()));
        assert_eq!(
            create_file_from_main(),
            Err(STATUS_OBJECT_NAME_NOT_FOUND),
            "the name is gone with the device"
        );
        assert_eq!(unload_driver(drv), Err(STATUS_INVALID_DEVICE_REQUEST));
    });
    out.expect_clean();
}

fn create_file_from_main() -> Result<Handle, NTSTATUS> {
    create_file(NAME, OpenMode::Synchronous)
}

/// Spec D-29: unload with a handle open is deferred until the last reference to the device
/// goes; new opens fail meanwhile.
#[test]
fn unload_is_deferred_while_a_handle_is_open() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        let p = Process::create("app");
        let h = std::sync::Arc::new(std::sync::Mutex::new(None));
        let h1 = h.clone();
        p.spawn_thread("opener", move || {
            *h1.lock().unwrap() = Some(create_file(NAME, OpenMode::Overlapped).expect("open"));
        })
        .join();
        assert_eq!(device_refs(dev), 1);
        assert_eq!(unload_driver(drv), Ok(UnloadOutcome::Deferred));
        let hh = h.lock().unwrap().expect("open");
        p.spawn_thread("closer", move || {
            assert_eq!(
                create_file(NAME, OpenMode::Overlapped),
                Err(STATUS_NO_SUCH_DEVICE)
            );
            sleep(500);
            close_handle(hh);
        })
        .join();
        let report = wait_for_unload(drv).expect("requested");
        assert!(report.is_empty(), "{report:?}");
        ntsim::iomgr::interrupt_time()
    });
    assert_eq!(out.expect_clean(), 5_000_000);
}

#[test]
fn c25_unload_with_timer_inserted_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        state(dev).unload_leaves_timer = true;
        // Deleting the device would free the timer's memory: rule C24 first.
        state(dev).unload_leaves_device = true;
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            device_io_control(h, IOCTL_ARM_TIMER, &[], 0).expect("timer");
            close_handle(h);
        })
        .join();
        let _ = unload_driver(drv);
    });
    let stop = out.stop.expect("fatal");
    assert_eq!(stop.rule, Rule::UnloadPending);
    assert!(stop.message.contains("timer"), "{stop}");
}

#[test]
fn c25_unload_with_thread_alive_is_fatal() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        state(dev).unload_leaves_thread = true;
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            device_io_control(h, IOCTL_START_THREAD, &[], 0).expect("thread");
            close_handle(h);
        })
        .join();
        let _ = unload_driver(drv);
    });
    let stop = out.stop.expect("fatal");
    assert_eq!(stop.rule, Rule::UnloadPending);
    assert!(stop.message.contains("system thread"), "{stop}");
}

#[test]
fn leaks_are_reported_and_counted() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        state(dev).unload_leaves_device = true;
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            device_io_control(h, IOCTL_LEAK_POOL, &[], 0).expect("leak");
            close_handle(h);
        })
        .join();
        let UnloadOutcome::Unloaded(r) = unload_driver(drv).expect("unload") else {
            panic!("not deferred");
        };
        assert_eq!(r.pool_blocks.len(), 1);
        assert_eq!(r.pool_blocks[0].tag, u32::from_le_bytes(*b"Leak"));
        assert_eq!(r.devices, vec![dev as usize]);
        assert_eq!(r.symbolic_links.len(), 1);
        assert_eq!(r.count(), 3);
    });
    assert_eq!(out.reports_of(Rule::Leak).len(), 1, "{:?}", out.reports);
    assert!(out.stop.is_none());
}

/// Rule C14: an IRP still pending on the driver's device when DriverUnload has run (a
/// driver-allocated IRP sent with IoCallDriver, which holds no file object).
#[test]
fn c14_irp_pending_at_unload_is_reported() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        let p = Process::create("app");
        let fo = std::sync::Arc::new(std::sync::Mutex::new(0usize));
        let fo2 = fo.clone();
        let devaddr = dev as usize;
        p.spawn_thread("client", move || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            *fo2.lock().unwrap() = state(devaddr as PDEVICE_OBJECT).log[0].2;
            close_handle(h);
        })
        .join();
        let irp = ntsim::irp::IoAllocateIrp(1, 0);
        // SAFETY: a fresh IRP with one stack location, set up as an IOCTL for the device; the
        // FsContext of a closed file is gone, so give the driver a fresh file context.
        let next = unsafe { ntsim::irp::IoGetNextIrpStackLocation(irp) };
        // SAFETY: as above.
        let sl = unsafe { &mut *next };
        sl.MajorFunction = IRP_MJ_DEVICE_CONTROL;
        sl.Parameters.DeviceIoControl = IO_STACK_LOCATION_DEVICE_IO_CONTROL::new(
            0,
            0,
            IOCTL_PEND_NO_CANCEL,
            std::ptr::null_mut(),
        );
        let mut file = Box::new(FILE_OBJECT::zeroed());
        let mut ctx = Box::new(IO_REMOVE_LOCK::zeroed());
        // SAFETY: a fresh lock.
        unsafe { ntsim::remove_lock::IoInitializeRemoveLock(&mut *ctx, 0, 0, 0) };
        file.FsContext = (&mut *ctx as *mut IO_REMOVE_LOCK).cast();
        sl.FileObject = &mut *file;
        // SAFETY: the IRP's next location is set up for the device.
        let s = unsafe { ntsim::driver::IoCallDriver(dev, irp) };
        assert_eq!(s, STATUS_PENDING);
        let _ = unload_driver(drv);
        std::mem::forget((file, ctx));
    });
    assert_eq!(out.reports_of(Rule::IrpLeak).len(), 1, "{:?}", out.reports);
}

/// Deleting a device whose extension holds an inserted timer frees that timer: rule C24.
#[test]
fn deleting_a_device_with_its_timer_inserted_is_c24() {
    let out = Kernel::new(Config::default()).run(|| {
        let (drv, dev) = load();
        state(dev).unload_leaves_timer = true;
        let p = Process::create("app");
        p.spawn_thread("client", || {
            let h = create_file(NAME, OpenMode::Synchronous).expect("open");
            device_io_control(h, IOCTL_ARM_TIMER, &[], 0).expect("timer");
            close_handle(h);
        })
        .join();
        let _ = unload_driver(drv);
    });
    assert_eq!(out.stop.expect("fatal").rule, Rule::FreeActiveTimer);
}

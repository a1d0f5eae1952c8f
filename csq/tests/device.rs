//! Device and driver glue on ntsim: a driver written with `driver_entry!` and a `DeviceHandler`
//! whose extension embeds a cancel-safe queue; requests are dispatched the way the I/O manager
//! does (built IRP, the driver object's MajorFunction entry), cleanup flushes one handle's
//! requests, unload deletes the device and cancels what is left.

mod support;

use csq::pinned_init::{pin_data, pin_init};
use csq::{
    CancelSafeQueue, DeviceAccess, DeviceConfig, DeviceHandler, DispatchStatus, DriverObject, Fifo,
    Irp, NtStatus, TransferMethod, ctl_code,
};
use ntsim::ntdef::{
    DEVICE_OBJECT, DO_DEVICE_INITIALIZING, DRIVER_OBJECT, IRP_MJ_CLEANUP, IRP_MJ_CREATE,
    IRP_MJ_READ, STATUS_CANCELLED, STATUS_PENDING, STATUS_SUCCESS,
};
use support::{RawIrp, machine};

const IOCTL_PING: u32 = ctl_code(0x22, 0x800, TransferMethod::Buffered, 0);
const IOCTL_QUEUE: u32 = ctl_code(0x22, 0x801, TransferMethod::Buffered, 0);

std::thread_local! {
    /// Unload hook calls on this thread: DriverUnload runs on the thread that unloads the
    /// driver, so each test sees only its own (the tests of this binary run in parallel).
    static UNLOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[pin_data]
struct Ext {
    #[pin]
    queue: CancelSafeQueue<Fifo>,
}

impl DeviceHandler for Ext {
    fn device_control(&self, mut irp: Irp) -> DispatchStatus {
        match irp.ioctl_code() {
            Some(IOCTL_PING) => {
                let input: Vec<u8> = irp.buffered_input().to_vec();
                let out = irp.buffered_output();
                let n = out.len().min(input.len());
                for (o, i) in out.iter_mut().zip(&input) {
                    *o = i.wrapping_add(1);
                }
                irp.complete(NtStatus::SUCCESS, n).into()
            }
            Some(IOCTL_QUEUE) => match self.queue.insert(irp, ()) {
                Ok(pending) => pending.into(),
                Err(refused) => refused.complete().into(),
            },
            _ => irp.complete(NtStatus::NOT_IMPLEMENTED, 0).into(),
        }
    }

    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.queue.flush_file(file);
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }
}

fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    let config = DeviceConfig {
        name: csq::wstr!("\\Device\\CsqTest"),
        symbolic_link: Some(csq::wstr!("\\DosDevices\\CsqTest")),
        access: DeviceAccess::SystemAndAdministrators,
        device_type: 0x22,
        characteristics: 0x100,
        exclusive: false,
        buffered_io: true,
    };
    driver.create_device(
        &config,
        pin_init!(Ext {
            queue <- CancelSafeQueue::new(Fifo),
        }),
    )?;
    Ok(())
}

fn unload(_driver: &DriverObject) {
    UNLOADS.with(|n| n.set(n.get() + 1));
}

csq::driver_entry!(fn test_driver_entry = init; unload = unload);

fn fail_init(driver: &DriverObject) -> Result<(), NtStatus> {
    init(driver)?;
    Err(NtStatus::INSUFFICIENT_RESOURCES)
}

csq::driver_entry!(fn failing_driver_entry = fail_init);

/// Sends `irp` to the driver's device as the I/O manager would; returns the dispatch status.
fn call(driver: *mut DRIVER_OBJECT, irp: RawIrp) -> i32 {
    // SAFETY: a loaded driver with one device.
    let dev: *mut DEVICE_OBJECT = unsafe { (*driver).DeviceObject };
    // SAFETY: the IRP's current stack location exists.
    let sl = unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(irp.ptr()) };
    // SAFETY: as above.
    unsafe { (*sl).DeviceObject = dev };
    // SAFETY: as above.
    let major = unsafe { (*sl).MajorFunction };
    // SAFETY: the driver object is live.
    let routine = unsafe { (*driver).MajorFunction[major as usize] }.expect("dispatch routine");
    // SAFETY: the dispatch routine's contract: its device and an IRP routed to it.
    unsafe { routine(dev, irp.ptr()) }
}

/// Calls the driver's unload routine, as the I/O manager does once the driver is idle.
fn unload_driver(driver: *mut DRIVER_OBJECT) {
    // SAFETY: the driver is loaded.
    let routine = unsafe { (*driver).DriverUnload }.expect("unload routine");
    // SAFETY: no I/O is in flight in these tests.
    unsafe { routine(driver) };
}

#[test]
fn driver_entry_creates_the_device_and_dispatches_to_the_handler() {
    let out = machine().run(|| {
        let driver = ntsim::driver::load_driver("CsqTest", Some(test_driver_entry)).unwrap();
        assert_eq!(ntsim::driver::device_names(), ["\\device\\csqtest"]);
        // SAFETY: loaded driver with one device.
        let dev = unsafe { (*driver).DeviceObject };
        // SAFETY: as above.
        let flags = unsafe { (*dev).Flags };
        assert_eq!(flags & DO_DEVICE_INITIALIZING, 0);
        // The typed access policy reaches the kernel as its SDDL string, and the DACL guards
        // the device's namespace too (FILE_DEVICE_SECURE_OPEN).
        assert_eq!(
            ntsim::driver::device_security(dev).as_deref(),
            Some("D:P(A;;GA;;;SY)(A;;GA;;;BA)")
        );
        // SAFETY: as above.
        let characteristics = unsafe { (*dev).Characteristics };
        assert_eq!(characteristics & 0x100, 0x100);

        let create = RawIrp::new(IRP_MJ_CREATE, 0xF11E);
        assert_eq!(call(driver, create), STATUS_SUCCESS);
        assert_eq!(create.status(), STATUS_SUCCESS);

        let mut buf = [1u8, 2, 3, 0];
        let ping = RawIrp::ioctl(IOCTL_PING, 0xF11E, &mut buf, 3, 4);
        assert_eq!(call(driver, ping), STATUS_SUCCESS);
        assert_eq!(ping.information(), 3);
        assert_eq!(buf[..3], [2, 3, 4]);

        let read = RawIrp::new(IRP_MJ_READ, 0xF11E);
        assert_eq!(call(driver, read), NtStatus::INVALID_DEVICE_REQUEST.0);

        let mut b = [0u8; 1];
        let unknown = RawIrp::ioctl(0x22_0000, 0xF11E, &mut b, 0, 0);
        assert_eq!(call(driver, unknown), NtStatus::NOT_IMPLEMENTED.0);

        for r in [create, ping, read, unknown] {
            r.free();
        }
    });
    out.expect_clean();
}

#[test]
fn cleanup_flushes_the_handles_queued_requests_and_unload_cancels_the_rest() {
    let out = machine().run(|| {
        let driver = ntsim::driver::load_driver("CsqTest", Some(test_driver_entry)).unwrap();
        let mut b1 = [0u8; 1];
        let mut b2 = [0u8; 1];
        let a = RawIrp::ioctl(IOCTL_QUEUE, 0xAAA0, &mut b1, 0, 0);
        let b = RawIrp::ioctl(IOCTL_QUEUE, 0xBBB0, &mut b2, 0, 0);
        assert_eq!(call(driver, a), STATUS_PENDING);
        assert_eq!(call(driver, b), STATUS_PENDING);

        let cleanup = RawIrp::new(IRP_MJ_CLEANUP, 0xAAA0);
        assert_eq!(call(driver, cleanup), STATUS_SUCCESS);
        assert_eq!(a.status(), STATUS_CANCELLED);
        assert!(a.pending_returned());
        assert!(!b.completed());

        let before = UNLOADS.with(std::cell::Cell::get);
        unload_driver(driver);
        assert_eq!(UNLOADS.with(std::cell::Cell::get), before + 1);
        assert!(ntsim::driver::device_names().is_empty());
        assert_eq!(
            b.status(),
            STATUS_CANCELLED,
            "dropping the queue cancelled it"
        );
        for r in [a, b, cleanup] {
            r.free();
        }
    });
    out.expect_clean();
}

#[test]
fn a_failing_driver_entry_deletes_its_devices() {
    let out = machine().run(|| {
        let err = ntsim::driver::load_driver("CsqFail", Some(failing_driver_entry)).unwrap_err();
        assert_eq!(err, NtStatus::INSUFFICIENT_RESOURCES.0);
        assert!(ntsim::driver::device_names().is_empty());
        // The symbolic link went with it: the name can be created again.
        let driver = ntsim::driver::load_driver("CsqTest", Some(test_driver_entry)).unwrap();
        unload_driver(driver);
    });
    out.expect_clean();
}

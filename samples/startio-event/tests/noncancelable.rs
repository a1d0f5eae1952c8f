//! D-33: the wrapper's NonCancelable variant (`StartIoHandler::NON_CANCELABLE`,
//! `IoSetStartIoAttributes(.., NonCancelable = TRUE)`), on a small device built like
//! StartIoEvent: requests handed to StartIo have no cancel routine, so cancelling the request in
//! service has no effect until its timer completes it; queued requests stay cancelable, and the
//! handle's cleanup cancels them but lets the one in service finish.

mod support;

use csq::pinned_init::{PinInit, pin_data, pin_init};
use csq::{
    DeviceConfig, DeviceHandler, DispatchLevel, DispatchStatus, DriverObject, InService, Irp,
    NtStatus, StartIoHandler, StartIoQueue, Timer, TimerCallback, TimerKind,
};
use ntsim::iomgr::{self, OpenMode, cancel_io_ex, close_handle, sleep};
use ntsim::ntdef::{STATUS_CANCELLED, STATUS_SUCCESS};
use startio_event::interface::RegisterEvent;
use support::*;

const SEC: u64 = 1000 * MS;
const NAME: &str = r"\\.\NcStartIo";

#[pin_data]
struct NcDevice {
    #[pin]
    timer: Timer<NcDevice>,
    queue: StartIoQueue,
}

csq::impl_has_timer!(NcDevice, timer);

impl NcDevice {
    fn new() -> impl PinInit<NcDevice> {
        pin_init!(NcDevice {
            timer <- Timer::new(TimerKind::Notification),
            queue: StartIoQueue::new(),
        })
    }
}

impl DeviceHandler for NcDevice {
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        self.queue.start_packet(irp).into()
    }

    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.queue.cancel_file(file, |_| {
                self.timer.cancel();
            });
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }
}

impl StartIoHandler for NcDevice {
    const NON_CANCELABLE: bool = true;

    fn start_io_queue(&self) -> &StartIoQueue {
        &self.queue
    }

    fn start_io(&self, request: InService<'_>, _level: DispatchLevel<'_>) {
        let delay = RegisterEvent::parse(request.buffered_input()).map(|r| r.delay());
        match delay {
            Ok(d) => {
                request.arm_timer(&self.timer, d);
            }
            Err(status) => request.complete(status, 0),
        }
    }
}

impl TimerCallback for NcDevice {
    fn expired(&self, _level: DispatchLevel<'_>) {
        if let Some(request) = self.queue.claim_expired(&self.timer) {
            request.complete(NtStatus::SUCCESS, 0);
        }
    }
}

fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    let config = DeviceConfig {
        name: csq::wstr!("\\Device\\NcStartIo"),
        symbolic_link: Some(csq::wstr!("\\DosDevices\\NcStartIo")),
        access: csq::DeviceAccess::SystemAndAdministrators,
        device_type: 0x22,
        characteristics: 0x100,
        exclusive: false,
        buffered_io: true,
    };
    driver.create_startio_device(&config, NcDevice::new())?;
    Ok(())
}

csq::driver_entry!(fn nc_driver_entry = init);

fn unload(driver: ntsim::ntdef::PDRIVER_OBJECT) {
    match iomgr::unload_driver(driver).expect("unload") {
        iomgr::UnloadOutcome::Unloaded(report) => assert!(report.is_empty(), "{report:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn d33_cancel_of_the_request_in_service_waits_for_its_completion() {
    machine()
        .run(|| {
            let drv = ntsim::driver::load_driver("NcStartIo", Some(nc_driver_entry)).unwrap();
            client(|| {
                let h = iomgr::create_file(NAME, OpenMode::Overlapped).expect("open");
                let t0 = now();
                let (a, b, c) = (irp_ms(h, 1000), irp_ms(h, 1000), irp_ms(h, 1000));
                sleep(200);
                // In service, non-cancelable: nothing happens now.
                assert_eq!(cancel_io_ex(h, Some(a)), STATUS_SUCCESS);
                sleep(1);
                assert!(!a.is_complete());
                // Queued requests are still cancelable.
                assert_eq!(cancel_io_ex(h, Some(b)), STATUS_SUCCESS);
                assert_pending_then(b, STATUS_CANCELLED, t0 + 201 * MS);
                c.wait();
                assert_pending_then(a, STATUS_SUCCESS, t0 + SEC);
                assert_pending_then(c, STATUS_SUCCESS, t0 + 2 * SEC);
                close_handle(h);
            });
            unload(drv);
        })
        .expect_clean();
}

#[test]
fn d33_cleanup_lets_the_request_in_service_finish() {
    machine()
        .run(|| {
            let drv = ntsim::driver::load_driver("NcStartIo", Some(nc_driver_entry)).unwrap();
            client(|| {
                let (h1, h2) = (
                    iomgr::create_file(NAME, OpenMode::Overlapped).expect("open"),
                    iomgr::create_file(NAME, OpenMode::Overlapped).expect("open"),
                );
                let t0 = now();
                let (a, b) = (irp_ms(h1, 1000), irp_ms(h1, 1000));
                let c = irp_ms(h2, 1000);
                sleep(100);
                close_handle(h1);
                assert_pending_then(b, STATUS_CANCELLED, t0 + 100 * MS);
                assert!(!a.is_complete());
                c.wait();
                assert_pending_then(a, STATUS_SUCCESS, t0 + SEC);
                assert_pending_then(c, STATUS_SUCCESS, t0 + 2 * SEC);
                close_handle(h2);
            });
            unload(drv);
        })
        .expect_clean();
}

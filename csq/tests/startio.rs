//! The StartIo wrapper on ntsim: a small timer device (model S: one request in service, its
//! timer armed when it enters service, the DPC completes it) driven through the D-15…D-20-like
//! sequences of spec D, with the races of spec A.11.4 (P1, P2) and B.5 (P5) forced with
//! breakpoints.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use csq::pinned_init::{pin_data, pin_init};
use csq::{
    DeviceConfig, DeviceHandler, DispatchLevel, DispatchStatus, DriverObject, InService, Interval,
    Irp, NtStatus, ServiceTag, StartIoHandler, StartIoQueue, Timer, TimerCallback, TimerKind,
    TransferMethod, ctl_code,
};
use ntsim::breakpoint::{Breakpoint, Filter, Point};
use ntsim::ntdef::{DRIVER_OBJECT, STATUS_CANCELLED, STATUS_PENDING, STATUS_SUCCESS};
use ntsim::thread::SystemThread;
use support::{RawIrp, completions, machine, new_log, now_ms, send, sleep_until_ms};

/// The request's due time in milliseconds is its input length (the buffer is not read).
const IOCTL_WAIT: u32 = ctl_code(0x22, 0x800, TransferMethod::Buffered, 0);

static CANCEL_HOOKS: AtomicUsize = AtomicUsize::new(0);

#[pin_data]
struct TimerDevice {
    #[pin]
    timer: Timer<TimerDevice>,
    sio: StartIoQueue,
}

csq::impl_has_timer!(TimerDevice, timer);

impl DeviceHandler for TimerDevice {
    fn device_control(&self, irp: Irp) -> DispatchStatus {
        match irp.ioctl_code() {
            Some(IOCTL_WAIT) => self.sio.start_packet(irp).into(),
            _ => irp.complete(NtStatus::NOT_IMPLEMENTED, 0).into(),
        }
    }

    fn cleanup(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.sio.cancel_file(file, |_tag| {
                self.timer.cancel();
            });
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }

    fn close(&self, irp: Irp) -> DispatchStatus {
        if let Some(file) = irp.file_object() {
            self.sio.file_closed(file);
        }
        irp.complete(NtStatus::SUCCESS, 0).into()
    }
}

impl StartIoHandler for TimerDevice {
    fn start_io_queue(&self) -> &StartIoQueue {
        &self.sio
    }

    fn start_io(&self, request: InService<'_>, _level: DispatchLevel<'_>) {
        ntsim::breakpoint::named_point("sio.start_io");
        let due = u64::from(request.input_buffer_length());
        if due == 0 {
            request.complete(NtStatus::SUCCESS, 0);
        } else {
            request.arm_timer(&self.timer, Interval::from_millis(due));
        }
    }

    fn cancelled_in_service(&self, _tag: ServiceTag, _level: DispatchLevel<'_>) {
        CANCEL_HOOKS.fetch_add(1, Ordering::Relaxed);
        self.timer.cancel();
    }
}

impl TimerCallback for TimerDevice {
    fn expired(&self, _level: DispatchLevel<'_>) {
        ntsim::breakpoint::named_point("sio.dpc");
        if let Some(request) = self.sio.claim_expired(&self.timer) {
            request.complete(NtStatus::SUCCESS, 0);
        }
    }
}

fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    let config = DeviceConfig {
        name: csq::wstr!("\\Device\\SioTest"),
        symbolic_link: None,
        access: csq::DeviceAccess::SystemAndAdministrators,
        device_type: 0x22,
        characteristics: 0x100,
        exclusive: false,
        buffered_io: true,
    };
    driver.create_startio_device(
        &config,
        pin_init!(TimerDevice {
            timer <- Timer::new(TimerKind::Notification),
            sio: StartIoQueue::new(),
        }),
    )?;
    Ok(())
}

csq::driver_entry!(fn sio_driver_entry = init);

fn load() -> *mut DRIVER_OBJECT {
    ntsim::driver::load_driver("SioTest", Some(sio_driver_entry)).unwrap()
}

/// A request due after `ms`, logged in `log`, not yet sent. Its buffer is leaked (tests are
/// short-lived).
fn request(ms: u32, log: support::Log) -> RawIrp {
    request_on(FILE_F, ms, log)
}

/// The file object of [`request`]s, and another one.
const FILE_F: usize = 0xF11E;
const FILE_G: usize = 0x6F11E;

/// As [`request`], sent on the file object `file`.
fn request_on(file: usize, ms: u32, log: support::Log) -> RawIrp {
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 1].into_boxed_slice());
    RawIrp::ioctl(IOCTL_WAIT, file, buf, ms, 0).logged(log)
}

/// A machine with `cpus` CPUs: threads parked at DISPATCH_LEVEL keep their CPU.
fn machine_with_cpus(cpus: usize) -> ntsim::Kernel {
    ntsim::Kernel::new(ntsim::Config {
        cpus,
        ..ntsim::Config::default()
    })
}

fn device_of(driver: *mut DRIVER_OBJECT) -> *mut ntsim::ntdef::DEVICE_OBJECT {
    // SAFETY: a loaded driver with one device.
    unsafe { (*driver).DeviceObject }
}

#[test]
fn requests_are_served_one_at_a_time_in_order() {
    let out = machine().run(|| {
        let driver = load();
        let log = new_log();
        let (a, b, c) = (request(10, log), request(20, log), request(0, log));
        assert_eq!(send(driver, a), STATUS_PENDING);
        assert_eq!(send(driver, b), STATUS_PENDING);
        assert_eq!(send(driver, c), STATUS_PENDING);
        sleep_until_ms(100);
        // b enters service when a expires (10), c (due 0) when b expires (30), at once.
        assert_eq!(
            completions(log),
            [
                (a, STATUS_SUCCESS, 10),
                (b, STATUS_SUCCESS, 30),
                (c, STATUS_SUCCESS, 30)
            ]
        );
        support::unload(driver);
    });
    out.expect_clean();
}

#[test]
fn cancelling_a_queued_request_completes_it_at_once_and_leaves_the_one_in_service() {
    let out = machine().run(|| {
        let driver = load();
        let log = new_log();
        let (a, b, c) = (request(50, log), request(20, log), request(20, log));
        for r in [a, b, c] {
            assert_eq!(send(driver, r), STATUS_PENDING);
        }
        sleep_until_ms(5);
        assert!(
            b.cancel(),
            "a queued request has the crate's cancel routine"
        );
        assert_eq!(completions(log), [(b, STATUS_CANCELLED, 5)]);
        sleep_until_ms(200);
        assert_eq!(
            completions(log),
            [
                (b, STATUS_CANCELLED, 5),
                (a, STATUS_SUCCESS, 50),
                (c, STATUS_SUCCESS, 70)
            ]
        );
        support::unload(driver);
    });
    out.expect_clean();
}

#[test]
fn cancelling_the_request_in_service_completes_it_first_and_the_next_enters_service_at_once() {
    let out = machine().run(|| {
        let driver = load();
        let log = new_log();
        let (a, b, c) = (request(100, log), request(0, log), request(30, log));
        for r in [a, b, c] {
            assert_eq!(send(driver, r), STATUS_PENDING);
        }
        sleep_until_ms(10);
        let hooks = CANCEL_HOOKS.load(Ordering::Relaxed);
        assert!(a.cancel(), "the request in service stays cancelable");
        assert!(CANCEL_HOOKS.load(Ordering::Relaxed) > hooks);
        // a first, then b (due 0) at the same instant, then c 30 ms later.
        sleep_until_ms(200);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_CANCELLED, 10),
                (b, STATUS_SUCCESS, 10),
                (c, STATUS_SUCCESS, 40)
            ]
        );
        support::unload(driver);
    });
    out.expect_clean();
}

/// P5: the DPC of request a's arming is held after a's timer expired; a is cancelled, b enters
/// service and re-arms the shared timer. The stale DPC must not complete b.
#[test]
fn a_stale_dpc_gets_nothing_after_the_timer_was_rearmed_for_the_next_request() {
    let out = machine_with_cpus(4).run(|| {
        let driver = load();
        let log = new_log();
        let (a, b) = (request(10, log), request(50, log));
        // The timer expires on the CPU that armed it: arm a's from CPU 1, so that its held DPC
        // does not keep this thread's CPU.
        let driver_addr = driver as usize;
        SystemThread::spawn_on(1, "sender", move || {
            let driver = driver_addr as *mut DRIVER_OBJECT;
            assert_eq!(send(driver, a), STATUS_PENDING);
            assert_eq!(send(driver, b), STATUS_PENDING);
        })
        .join();
        let bp = Breakpoint::set(Point::Named("sio.dpc"), Filter::Any);
        bp.wait_hit();
        assert_eq!(now_ms(), 10);
        // a's timer has fired, its DPC is held: a is still in service and cancelable.
        assert!(a.cancel());
        assert_eq!(completions(log), [(a, STATUS_CANCELLED, 10)]);
        bp.clear(); // the stale DPC runs now: b's arming has not expired
        sleep_until_ms(59);
        assert_eq!(completions(log).len(), 1, "b must not complete early");
        sleep_until_ms(200);
        assert_eq!(
            completions(log),
            [(a, STATUS_CANCELLED, 10), (b, STATUS_SUCCESS, 60)]
        );
        support::unload(driver);
    });
    out.expect_clean();
}

/// P1: IoStartPacket made a current and is about to call StartIo; a is cancelled on another
/// thread, whose cancel routine is held just as it completes a (cancel lock released, next
/// packet not started). StartIo then runs for a: it must leave a to the cancel routine.
#[test]
fn startio_leaves_a_request_whose_cancel_routine_already_runs_to_it() {
    let out = machine_with_cpus(4).run(|| {
        let driver = load();
        let log = new_log();
        let (a, b) = (request(10, log), request(20, log));
        let at_startio = Breakpoint::set(Point::StartIoEntry, Filter::Object(a.0));
        let driver_addr = driver as usize;
        let sender = SystemThread::spawn("sender", move || {
            let _ = send(driver_addr as *mut DRIVER_OBJECT, a);
        });
        at_startio.wait_hit();
        let at_complete = Breakpoint::set(Point::CompleteRequestEntry, Filter::Object(a.0));
        let canceller = SystemThread::spawn("canceller", move || {
            assert!(a.cancel());
        });
        ntsim::irp::designate_canceller(a.ptr(), canceller.actor());
        at_complete.wait_hit();
        at_startio.clear(); // StartIo(a) runs while the cancel routine owns a
        sender.join();
        at_complete.clear();
        canceller.join();
        assert_eq!(send(driver, b), STATUS_PENDING);
        sleep_until_ms(100);
        let done = completions(log);
        assert_eq!(done[0], (a, STATUS_CANCELLED, 0));
        assert_eq!(done[1], (b, STATUS_SUCCESS, 20));
        support::unload(driver);
    });
    out.expect_clean();
}

/// P2: a request cancelled before IoStartPacket installed the cancel routine (IoCancelIrp
/// returned FALSE). On an idle device StartIo completes it; on a busy one IoStartPacket calls
/// the cancel routine at once. Either way the device keeps serving.
#[test]
fn a_request_cancelled_before_start_packet_is_completed_not_left_hanging() {
    let out = machine().run(|| {
        let driver = load();
        let log = new_log();
        let (a, b, c, d) = (
            request(10, log),
            request(10, log),
            request(10, log),
            request(10, log),
        );
        assert!(!a.cancel(), "no cancel routine yet");
        assert_eq!(send(driver, a), STATUS_PENDING); // idle device: StartIo completes it
        assert_eq!(send(driver, b), STATUS_PENDING); // b in service
        assert!(!c.cancel());
        assert_eq!(send(driver, c), STATUS_PENDING); // busy device: cancel routine at once
        assert_eq!(send(driver, d), STATUS_PENDING);
        sleep_until_ms(100);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_CANCELLED, 0),
                (c, STATUS_CANCELLED, 0),
                (b, STATUS_SUCCESS, 10),
                (d, STATUS_SUCCESS, 20)
            ]
        );
        support::unload(driver);
    });
    out.expect_clean();
}

/// DeferredStartIo: many requests that StartIo completes synchronously nest StartIo at most
/// twice (spec A.11.3), and no StartIoRecursion warning is given.
#[test]
fn synchronous_completions_nest_startio_at_most_twice() {
    let out = machine().run(|| {
        let driver = load();
        let log = new_log();
        let gate = request(10, log);
        assert_eq!(send(driver, gate), STATUS_PENDING);
        let rest: Vec<RawIrp> = (0..8).map(|_| request(0, log)).collect();
        for r in &rest {
            assert_eq!(send(driver, *r), STATUS_PENDING);
        }
        sleep_until_ms(50);
        let done = completions(log);
        assert_eq!(done.len(), 9);
        assert!(done.iter().all(|&(_, s, t)| s == STATUS_SUCCESS && t == 10));
        let depth = ntsim::startio::startio_max_depth(device_of(driver));
        assert!(depth <= 2, "StartIo nested {depth} deep");
        support::unload(driver);
    });
    out.expect_clean();
}

/// Re-initializes the completed IRP `old` in place as a new request due after `ms`: a second
/// IRP at the very address of the first, as the pool hands out a freed block again.
fn reuse(old: RawIrp, ms: u32, log: support::Log) -> RawIrp {
    // SAFETY: `old` was completed and is not used by anyone any more; it keeps its size.
    let size = unsafe { (*old.ptr()).Size };
    // SAFETY: as above: an allocated IRP of `size` bytes with one stack location, not in use.
    unsafe { ntsim::irp::IoInitializeIrp(old.ptr(), size, 1) };
    // SAFETY: a fresh IRP with one stack location.
    unsafe { ntsim::irp::IoSetNextIrpStackLocation(old.ptr()) };
    // SAFETY: the current stack location now exists.
    let sl = unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(old.ptr()) };
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 1].into_boxed_slice());
    let params = ntsim::ntdef::IO_STACK_LOCATION_DEVICE_IO_CONTROL::new(
        0,
        ms,
        IOCTL_WAIT,
        core::ptr::null_mut(),
    );
    // SAFETY: the stack location and the IRP are live and not yet sent.
    let sl = unsafe { &mut *sl };
    sl.MajorFunction = ntsim::ntdef::IRP_MJ_DEVICE_CONTROL;
    sl.FileObject = 0xF11E as *mut ntsim::ntdef::FILE_OBJECT;
    sl.Parameters = ntsim::ntdef::IO_STACK_LOCATION_PARAMETERS {
        DeviceIoControl: params,
    };
    // SAFETY: as above.
    let irp = unsafe { &mut *old.ptr() };
    irp.AssociatedIrp = ntsim::ntdef::IRP_ASSOCIATED_IRP {
        SystemBuffer: buf.as_mut_ptr().cast(),
    };
    old.logged(log)
}

/// The window between the completion of a cancelled request in service and IoStartNextPacket:
/// `DeviceObject->CurrentIrp` still names the completed IRP. A new IRP at the same address is
/// queued (the device is still busy) and cancelled in that window: the cancel routine must
/// treat it as the queued request it is — take it out of the device queue and complete it —
/// not as the current one (which would complete it while still queued and start a packet
/// twice). The wrapper decides by its own state and the device queue, never by CurrentIrp.
#[test]
fn an_irp_reusing_the_address_of_the_cancelled_one_is_cancelled_as_queued() {
    let out = machine_with_cpus(4).run(|| {
        let driver = load();
        let log = new_log();
        let (a, c) = (request(100, log), request(30, log));
        assert_eq!(send(driver, a), STATUS_PENDING); // in service
        sleep_until_ms(10);
        let at_complete = Breakpoint::set(Point::CompleteRequestEntry, Filter::Object(a.0));
        let canceller = SystemThread::spawn("canceller", move || {
            assert!(a.cancel());
        });
        ntsim::irp::designate_canceller(a.ptr(), canceller.actor());
        at_complete.wait_hit();
        // Park the cancel path after a's completion, at IoStartNextPacket's cancel lock.
        let at_next = Breakpoint::set(Point::SpinLockAcquire, Filter::Actor(canceller.actor()));
        at_complete.clear();
        at_next.wait_hit();
        assert_eq!(completions(log), [(a, STATUS_CANCELLED, 10)]);
        // SAFETY: the device is live.
        let current = unsafe { (*device_of(driver)).CurrentIrp };
        assert_eq!(
            current,
            a.ptr(),
            "the window: CurrentIrp names the completed IRP"
        );
        let y = reuse(a, 50, log);
        assert_eq!(y, a);
        assert_eq!(send(driver, y), STATUS_PENDING); // the device is busy: queued
        assert_eq!(send(driver, c), STATUS_PENDING); // queued behind y
        // y's completion: it must be out of the device queue by then (a cancel routine that
        // took it for the current IRP completes it still linked, then starts a packet twice).
        let at_y = Breakpoint::set(Point::CompleteRequestEntry, Filter::Object(y.0));
        let canceller_y = SystemThread::spawn("canceller-y", move || {
            assert!(y.cancel());
        });
        ntsim::irp::designate_canceller(y.ptr(), canceller_y.actor());
        at_y.wait_hit();
        let entry = ntsim::ntdef::IRP::device_queue_entry_ptr(y.ptr());
        // SAFETY: y is live (parked at the entry of its completion).
        let inserted = unsafe { (*entry).Inserted };
        assert_eq!(
            inserted, 0,
            "y is completed while still in the device queue"
        );
        at_y.clear();
        canceller_y.join();
        assert_eq!(
            completions(log),
            [(a, STATUS_CANCELLED, 10), (y, STATUS_CANCELLED, 10)]
        );
        at_next.clear();
        canceller.join();
        // c is the only request left, and it enters service once, now.
        sleep_until_ms(200);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_CANCELLED, 10),
                (y, STATUS_CANCELLED, 10),
                (c, STATUS_SUCCESS, 40)
            ]
        );
        let depth = ntsim::startio::startio_max_depth(device_of(driver));
        assert!(depth <= 2, "StartIo nested {depth} deep");
        support::unload(driver);
    });
    out.expect_clean();
}

/// The cleanup gap: a's timer expires on CPU 1 and its DPC completes a, and IoStartNextPacket
/// takes b (same handle) out of the device queue; the DPC is held at StartIo's entry. The
/// handle's cleanup runs meanwhile on CPU 0: b is neither queued nor in service, so the
/// cleanup walks past it. When StartIo runs it must cancel b (the cleanup recorded the file
/// object), not serve it, and start c (another handle) once. After the close, a new request on
/// a file object at the same address is served.
#[test]
fn a_request_dequeued_before_its_handles_cleanup_is_cancelled_at_startio() {
    let out = machine_with_cpus(2).run(|| {
        let driver = load();
        let log = new_log();
        let (a, b, c) = (
            request_on(FILE_F, 10, log),
            request_on(FILE_F, 10, log),
            request_on(FILE_G, 10, log),
        );
        // a's timer is armed, and expires, on CPU 1: the held DPC keeps that CPU, not ours.
        let driver_addr = driver as usize;
        SystemThread::spawn_on(1, "sender", move || {
            let driver = driver_addr as *mut DRIVER_OBJECT;
            for r in [a, b, c] {
                assert_eq!(send(driver, r), STATUS_PENDING);
            }
        })
        .join();
        let at_startio = Breakpoint::set(Point::StartIoEntry, Filter::Object(b.0));
        at_startio.wait_hit();
        assert_eq!(now_ms(), 10);
        assert_eq!(completions(log), [(a, STATUS_SUCCESS, 10)]);
        let cleanup = RawIrp::new(ntsim::ntdef::IRP_MJ_CLEANUP, FILE_F);
        assert_eq!(send(driver, cleanup), STATUS_SUCCESS);
        at_startio.clear();
        sleep_until_ms(100);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_SUCCESS, 10),
                (b, STATUS_CANCELLED, 10),
                (c, STATUS_SUCCESS, 20)
            ],
            "b served after its handle's cleanup, or a packet started twice"
        );
        let close = RawIrp::new(ntsim::ntdef::IRP_MJ_CLOSE, FILE_F);
        assert_eq!(send(driver, close), STATUS_SUCCESS);
        let d = request_on(FILE_F, 10, log);
        assert_eq!(send(driver, d), STATUS_PENDING);
        sleep_until_ms(200);
        assert_eq!(completions(log).last(), Some(&(d, STATUS_SUCCESS, 110)));
        assert_eq!(completions(log).len(), 4);
        support::unload(driver);
    });
    out.expect_clean();
}

/// The same gap one step later: StartIo has taken b (its cancel routine too) and is inside the
/// handler's `start_io`, held there, when b's handle is cleaned up. Leaving b in service
/// (`arm_timer`) must cancel it instead, and start c once.
#[test]
fn a_request_inside_startio_during_its_handles_cleanup_is_cancelled_when_left_in_service() {
    let out = machine_with_cpus(2).run(|| {
        let driver = load();
        let log = new_log();
        let (a, b, c) = (
            request_on(FILE_F, 10, log),
            request_on(FILE_F, 10, log),
            request_on(FILE_G, 10, log),
        );
        let driver_addr = driver as usize;
        SystemThread::spawn_on(1, "sender", move || {
            let driver = driver_addr as *mut DRIVER_OBJECT;
            for r in [a, b, c] {
                assert_eq!(send(driver, r), STATUS_PENDING);
            }
        })
        .join();
        let at_startio = Breakpoint::set(Point::StartIoEntry, Filter::Object(b.0));
        at_startio.wait_hit();
        let in_handler = Breakpoint::set(Point::Named("sio.start_io"), Filter::Any);
        at_startio.clear();
        in_handler.wait_hit();
        let cleanup = RawIrp::new(ntsim::ntdef::IRP_MJ_CLEANUP, FILE_F);
        assert_eq!(send(driver, cleanup), STATUS_SUCCESS);
        in_handler.clear();
        sleep_until_ms(100);
        assert_eq!(
            completions(log),
            [
                (a, STATUS_SUCCESS, 10),
                (b, STATUS_CANCELLED, 10),
                (c, STATUS_SUCCESS, 20)
            ]
        );
        let close = RawIrp::new(ntsim::ntdef::IRP_MJ_CLOSE, FILE_F);
        assert_eq!(send(driver, close), STATUS_SUCCESS);
        support::unload(driver);
    });
    out.expect_clean();
}

//! What every StartIoEvent test needs: the machine, the driver loaded the way the I/O manager
//! loads it, REGISTER_EVENT inputs, and an unload that must leave nothing behind.

#![allow(dead_code)]

use ntsim::iomgr::{self, Handle, OpenMode, Request, RequestInfo, UnloadOutcome};
use ntsim::ntdef::{NTSTATUS, PDRIVER_OBJECT, STATUS_PENDING};
use ntsim::{Config, Kernel};
use startio_event::interface::{
    DOS_NAME, IOCTL_REGISTER_EVENT, Kind, REGISTER_EVENT_SIZE, RegisterEvent,
};

/// 100 ns units per millisecond.
pub const MS: u64 = 10_000;

/// A default machine (2 CPUs, virtual time, FIFO scheduler).
pub fn machine() -> Kernel {
    Kernel::new(Config::default())
}

/// Loads the driver (DriverEntry as the I/O manager calls it).
pub fn load() -> PDRIVER_OBJECT {
    ntsim::driver::load_driver("StartIoEvent", Some(startio_event::driver_entry))
        .expect("DriverEntry succeeds")
}

/// Unloads the driver and asserts that it left nothing behind (spec D-28).
pub fn unload_clean(driver: PDRIVER_OBJECT) {
    match iomgr::unload_driver(driver).expect("unload") {
        UnloadOutcome::Unloaded(report) => assert!(report.is_empty(), "leaks: {report:?}"),
        other => panic!("unload did not run: {other:?}"),
    }
}

/// Opens an overlapped handle to `\\.\StartIoEvent`.
pub fn open() -> Handle {
    iomgr::create_file(DOS_NAME, OpenMode::Overlapped).expect("open")
}

/// Opens a synchronous handle.
pub fn open_sync() -> Handle {
    iomgr::create_file(DOS_NAME, OpenMode::Synchronous).expect("open")
}

/// A relative due time of `ms` milliseconds, as a client passes it.
pub fn due_ms(ms: u64) -> i64 {
    -((ms * MS) as i64)
}

/// The input of an IRP-based registration.
pub fn irp_input(due_time: i64) -> [u8; REGISTER_EVENT_SIZE] {
    RegisterEvent {
        kind: Kind::IrpBased,
        due_time,
    }
    .encode()
}

/// The input of an event-based registration.
pub fn event_input(event: Handle, due_time: i64) -> [u8; REGISTER_EVENT_SIZE] {
    RegisterEvent {
        kind: Kind::EventBased {
            handle: event.raw() as usize,
        },
        due_time,
    }
    .encode()
}

/// Sends IOCTL_REGISTER_EVENT with `input`.
pub fn register(h: Handle, input: &[u8]) -> Request {
    iomgr::device_io_control(h, IOCTL_REGISTER_EVENT, input, 0).expect("ioctl")
}

/// IRP-based registration due in `ms` milliseconds.
pub fn irp_ms(h: Handle, ms: u64) -> Request {
    register(h, &irp_input(due_ms(ms)))
}

/// Event-based registration of `event`, due in `ms` milliseconds.
pub fn event_ms(h: Handle, event: Handle, ms: u64) -> Request {
    register(h, &event_input(event, due_ms(ms)))
}

/// The interrupt time now.
pub fn now() -> u64 {
    iomgr::interrupt_time()
}

/// Asserts that `r` completed with `status` at `t` (interrupt time), Information 0, after its
/// dispatch routine returned STATUS_PENDING.
pub fn assert_pending_then(r: Request, status: NTSTATUS, t: u64) -> RequestInfo {
    let i = r.info();
    assert!(i.pending, "{i:?}: expected STATUS_PENDING from dispatch");
    assert_eq!(i.status, Some(status), "{i:?}");
    assert_eq!(i.information, 0, "{i:?}");
    assert_eq!(i.completed_at, Some(t), "{i:?}");
    i
}

/// Asserts that `r` completed synchronously (not pending) with `status`, at `t`.
pub fn assert_sync(r: Request, status: NTSTATUS, t: u64) -> RequestInfo {
    let i = r.info();
    assert!(!i.pending, "{i:?}: expected a synchronous completion");
    assert_ne!(i.dispatch_status, Some(STATUS_PENDING));
    assert_eq!(i.status, Some(status), "{i:?}");
    assert_eq!(i.information, 0, "{i:?}");
    assert_eq!(i.completed_at, Some(t), "{i:?}");
    i
}

/// Runs `body` as a user thread of a new process and waits for it.
pub fn client(body: impl FnOnce() + Send + 'static) {
    iomgr::Process::create("client")
        .spawn_thread("client", body)
        .join();
}

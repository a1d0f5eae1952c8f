//! Shared by the driver's tests: load the driver on ntsim, issue registrations through the I/O
//! manager's user-mode calls, and unload with a leak check.
#![allow(dead_code)]

use csq_event::interface::{EVENT_BASED, IOCTL_REGISTER_EVENT, IRP_BASED, register_event};
use ntsim::iomgr::{Handle, LeakReport, Request, UnloadOutcome, device_io_control, unload_driver};
use ntsim::ntdef::PDRIVER_OBJECT;

/// `\\.\CsqEvent` (model C).
pub const CONCURRENT: &str = r"\\.\CsqEvent";
/// `\\.\CsqEventSerial` (model S).
pub const SERIAL: &str = r"\\.\CsqEventSerial";

/// Milliseconds in 100 ns units (the virtual clock's unit).
pub const fn ms(n: u64) -> u64 {
    n * 10_000
}

/// A relative DueTime of `n` milliseconds, as a client passes it.
pub const fn due_ms(n: u64) -> i64 {
    -(ms(n) as i64)
}

/// A two-CPU machine.
pub fn machine() -> ntsim::Kernel {
    ntsim::Kernel::new(ntsim::Config::default())
}

/// Loads the driver (service `CsqEvent`).
pub fn load() -> PDRIVER_OBJECT {
    ntsim::driver::load_driver("CsqEvent", Some(csq_event::driver_entry)).expect("DriverEntry")
}

/// Unloads the driver and asserts that it left nothing behind (D-28).
pub fn unload_clean(driver: PDRIVER_OBJECT) {
    match unload_driver(driver).expect("unload") {
        UnloadOutcome::Unloaded(report) => assert_eq!(report, LeakReport::default()),
        UnloadOutcome::Deferred => panic!("unload deferred: a device is still referenced"),
    }
}

/// An IRP-based registration with a raw DueTime.
pub fn irp_based(h: Handle, due_time: i64) -> Request {
    device_io_control(
        h,
        IOCTL_REGISTER_EVENT,
        &register_event(IRP_BASED, 0, due_time),
        0,
    )
    .expect("DeviceIoControl")
}

/// An event-based registration of `event` with a raw DueTime.
pub fn event_based(h: Handle, event: Handle, due_time: i64) -> Request {
    let input = register_event(EVENT_BASED, event.raw() as usize, due_time);
    device_io_control(h, IOCTL_REGISTER_EVENT, &input, 0).expect("DeviceIoControl")
}

/// (status, completion time, dispatch returned STATUS_PENDING) of a completed request.
pub fn outcome(r: Request) -> (i32, u64, bool) {
    let info = r.info();
    (
        info.status.expect("completed"),
        info.completed_at.expect("completed"),
        info.pending,
    )
}

/// A user thread whose body returns a value.
pub struct ValueThread<T> {
    thread: ntsim::iomgr::UserThread,
    value: std::sync::Arc<std::sync::Mutex<Option<T>>>,
}

impl<T> ValueThread<T> {
    /// Waits for the thread and returns its value.
    pub fn join_value(self) -> T {
        self.thread.join();
        self.value
            .lock()
            .unwrap()
            .take()
            .expect("the thread returned")
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Runs `body` on a new thread of `p`.
pub fn spawn<T: Send + 'static>(
    p: ntsim::iomgr::Process,
    name: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> ValueThread<T> {
    let value = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = value.clone();
    let thread = p.spawn_thread(name, move || {
        let v = body();
        *slot.lock().unwrap() = Some(v);
    });
    ValueThread { thread, value }
}

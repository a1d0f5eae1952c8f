//! Test harness: IRPs built by hand the way the I/O manager builds them, handed to `csq` as
//! owned [`::csq::Irp`] values, and inspected after completion.
#![allow(dead_code)]

pub mod bare;

use ntsim::ntdef::*;

/// A raw IRP the test allocated (it outlives its completion until [`RawIrp::free`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawIrp(pub usize);

impl RawIrp {
    /// An IRP with one stack location set up for `major`, sent on the file object `file`
    /// (a fake address: the queue only compares it).
    pub fn new(major: u8, file: usize) -> RawIrp {
        let irp = ntsim::irp::IoAllocateIrp(1, 0);
        // SAFETY: a fresh IRP with one stack location.
        unsafe { ntsim::irp::IoSetNextIrpStackLocation(irp) };
        // SAFETY: the current stack location now exists.
        let sl = unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(irp) };
        // SAFETY: as above.
        unsafe { (*sl).MajorFunction = major };
        // SAFETY: as above.
        unsafe { (*sl).FileObject = file as *mut FILE_OBJECT };
        RawIrp(irp as usize)
    }

    /// A device-control IRP with `code` and a METHOD_BUFFERED system buffer `buf` (which must
    /// outlive the IRP).
    pub fn ioctl(code: u32, file: usize, buf: &mut [u8], input: u32, output: u32) -> RawIrp {
        let r = RawIrp::new(IRP_MJ_DEVICE_CONTROL, file);
        let sl = r.sl();
        let params =
            IO_STACK_LOCATION_DEVICE_IO_CONTROL::new(output, input, code, std::ptr::null_mut());
        // SAFETY: the IRP and its current stack location are live.
        unsafe {
            (*sl).Parameters = IO_STACK_LOCATION_PARAMETERS {
                DeviceIoControl: params,
            }
        };
        // SAFETY: as above.
        unsafe {
            (*r.ptr()).AssociatedIrp = IRP_ASSOCIATED_IRP {
                SystemBuffer: buf.as_mut_ptr().cast(),
            }
        };
        r
    }

    pub fn ptr(self) -> *mut IRP {
        self.0 as *mut IRP
    }

    fn sl(self) -> *mut IO_STACK_LOCATION {
        // SAFETY: a live IRP.
        unsafe { ntsim::irp::IoGetCurrentIrpStackLocation(self.ptr()) }
    }

    fn get(self) -> IRP {
        // SAFETY: the IRP is allocated until `free`.
        unsafe { self.ptr().read() }
    }

    /// Hands the IRP to `csq` as an owned value.
    pub fn take(self) -> ::csq::Irp {
        // SAFETY: the test allocated the IRP, it has a current stack location, no cancel
        // routine, and the test gives up the right to complete it.
        unsafe { ::csq::Irp::from_raw(self.0 as *mut core::ffi::c_void) }
    }

    /// IoCancelIrp; TRUE if a cancel routine ran.
    pub fn cancel(self) -> bool {
        // SAFETY: the IRP stays allocated during the call.
        unsafe { ntsim::cancel::IoCancelIrp(self.ptr()) != 0 }
    }

    /// Whether IoCompleteRequest finished with it (spec A.2: CurrentLocation = StackCount + 2).
    pub fn completed(self) -> bool {
        let i = self.get();
        i.CurrentLocation == i.StackCount + 2
    }

    /// The status it was completed with.
    pub fn status(self) -> NTSTATUS {
        self.get().IoStatus.status()
    }

    pub fn information(self) -> usize {
        self.get().IoStatus.Information
    }

    /// Whether it was marked pending before completion (PendingReturned after the walk).
    pub fn pending_returned(self) -> bool {
        self.get().PendingReturned != 0
    }

    pub fn has_cancel_routine(self) -> bool {
        self.get().CancelRoutine.is_some()
    }

    pub fn free(self) {
        // SAFETY: allocated by IoAllocateIrp and not used afterwards.
        unsafe { ntsim::irp::IoFreeIrp(self.ptr()) };
    }
}

/// A two-CPU machine.
pub fn machine() -> ntsim::Kernel {
    ntsim::Kernel::new(ntsim::Config::default())
}

/// One completion seen by a [`Log`]: the IRP, its status and the virtual time (100 ns units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub irp: usize,
    pub status: NTSTATUS,
    pub time: u64,
}

/// A test's completion log (leaked: completion routines reach it through a raw context).
pub type Log = &'static std::sync::Mutex<Vec<Done>>;

/// A fresh completion log.
pub fn new_log() -> Log {
    Box::leak(Box::new(std::sync::Mutex::new(Vec::new())))
}

unsafe extern "system" fn log_completion(
    _dev: PDEVICE_OBJECT,
    irp: PIRP,
    context: PVOID,
) -> NTSTATUS {
    // SAFETY: the context is the `Log` given to `RawIrp::logged`.
    let log = unsafe { &*context.cast::<std::sync::Mutex<Vec<Done>>>() };
    // SAFETY: IoCompleteRequest passes the live IRP.
    let status = unsafe { (*irp).IoStatus.status() };
    log.lock().unwrap().push(Done {
        irp: irp as usize,
        status,
        time: ntsim::clock::KeQueryInterruptTime(),
    });
    STATUS_SUCCESS
}

impl RawIrp {
    /// Records the IRP's completion (status and time) in `log`, through a completion routine
    /// in its current stack location.
    pub fn logged(self, log: Log) -> RawIrp {
        let sl = self.sl();
        // SAFETY: the IRP and its current stack location are live and not yet dispatched.
        let sl = unsafe { &mut *sl };
        sl.CompletionRoutine = Some(log_completion);
        sl.Context = std::ptr::from_ref(log).cast_mut().cast();
        sl.Control |= SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
        self
    }
}

/// The completions of `log` as (irp, status, time in ms).
pub fn completions(log: Log) -> Vec<(RawIrp, NTSTATUS, u64)> {
    log.lock()
        .unwrap()
        .iter()
        .map(|d| (RawIrp(d.irp), d.status, d.time / 10_000))
        .collect()
}

/// The virtual time in milliseconds.
pub fn now_ms() -> u64 {
    ntsim::clock::KeQueryInterruptTime() / 10_000
}

/// Sleeps (as an emulated thread) until `ms` milliseconds of virtual time.
pub fn sleep_until_ms(ms: u64) {
    let now = ntsim::clock::KeQueryInterruptTime();
    let target = ms * 10_000;
    if target > now {
        let mut interval = -((target - now) as i64);
        // SAFETY: `interval` is a live local.
        unsafe { ntsim::wait::KeDelayExecutionThread(KernelMode, 0, &mut interval) };
    }
}

/// Sends `irp` to the first device of `driver` as the I/O manager would (the current stack
/// location names the device; the driver's MajorFunction entry is called); returns the
/// dispatch routine's status.
pub fn send(driver: *mut DRIVER_OBJECT, irp: RawIrp) -> NTSTATUS {
    // SAFETY: a loaded driver with a device.
    let dev: *mut DEVICE_OBJECT = unsafe { (*driver).DeviceObject };
    let sl = irp.sl();
    // SAFETY: the IRP's current stack location exists.
    unsafe { (*sl).DeviceObject = dev };
    // SAFETY: as above.
    let major = unsafe { (*sl).MajorFunction };
    // SAFETY: the driver object is live.
    let routine = unsafe { (*driver).MajorFunction[major as usize] }.expect("dispatch routine");
    // SAFETY: the dispatch routine's contract: its device and an IRP routed to it.
    unsafe { routine(dev, irp.ptr()) }
}

/// Calls the driver's unload routine, as the I/O manager does once the driver is idle.
pub fn unload(driver: *mut DRIVER_OBJECT) {
    // SAFETY: the driver is loaded.
    let routine = unsafe { (*driver).DriverUnload }.expect("unload routine");
    // SAFETY: the caller has no I/O in flight.
    unsafe { routine(driver) };
}

//! Test harness: IRPs built by hand the way the I/O manager builds them, handed to `csq` as
//! owned [`::csq::Irp`] values, and inspected after completion.
#![allow(dead_code)]

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

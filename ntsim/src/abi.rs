//! Calls from ntsim into driver-supplied routines, in ONE place.
//!
//! A routine pointer that a driver hands to the kernel is typed `extern "system"` (the host's
//! C convention, see [`crate::ntdef::callbacks`]): right for drivers built for the host, wrong
//! for a real Windows image running on a Unix host, whose code follows the Microsoft x64
//! convention. Each `call_*_fn` here checks whether the pointer lies inside a mapped image
//! ([`crate::image`]'s registry) and then calls it as `extern "win64"` (marking, for the export
//! thunks, which image's code is running); otherwise it calls it natively. Every call site in
//! ntsim that enters driver code goes through one of these.

use crate::ntdef::{
    DEVICE_OBJECT, DRIVER_OBJECT, IO_CSQ, IRP, KDPC, KIRQL, NTSTATUS, PVOID, UNICODE_STRING,
};

macro_rules! callers {
    ($( $(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?; )*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// `f` must be a routine of this type (native, or `win64` code inside a loaded image)
        /// that may be called now with these arguments under its contract.
        pub(crate) unsafe fn $name(
            f: unsafe extern "system" fn($($ty),*) $(-> $ret)?,
            $($arg: $ty),*
        ) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if let Some(image) = crate::image::registry::image_at(f as usize) {
                // SAFETY: both are pointers to code with the same parameters; the code lies in
                // a Windows image, so win64 is its real convention.
                let w = unsafe {
                    std::mem::transmute::<
                        unsafe extern "system" fn($($ty),*) $(-> $ret)?,
                        unsafe extern "win64" fn($($ty),*) $(-> $ret)?,
                    >(f)
                };
                let _inside = crate::image::registry::enter(image);
                // SAFETY: forwarded caller contract.
                return unsafe { w($($arg),*) };
            }
            // SAFETY: forwarded caller contract; a host routine uses the host convention.
            unsafe { f($($arg),*) }
        }
    )*};
}

callers! {
    /// DriverEntry.
    call_driver_entry(driver: *mut DRIVER_OBJECT, registry_path: *mut UNICODE_STRING) -> NTSTATUS;
    /// An `IRP_MJ_*` dispatch routine.
    call_dispatch_fn(dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
    /// A StartIo routine.
    call_startio_fn(dev: *mut DEVICE_OBJECT, irp: *mut IRP);
    /// A cancel routine.
    call_cancel_fn(dev: *mut DEVICE_OBJECT, irp: *mut IRP);
    /// DriverUnload.
    call_unload_fn(driver: *mut DRIVER_OBJECT);
    /// A completion routine.
    call_completion_fn(dev: *mut DEVICE_OBJECT, irp: *mut IRP, context: PVOID) -> NTSTATUS;
    /// A DPC routine.
    call_dpc_fn(dpc: *mut KDPC, context: PVOID, a1: PVOID, a2: PVOID);
    /// A system thread's start routine.
    call_thread_start_fn(context: PVOID);
    /// CsqInsertIrp.
    call_csq_insert_fn(csq: *mut IO_CSQ, irp: *mut IRP);
    /// CsqInsertIrpEx.
    call_csq_insert_ex_fn(csq: *mut IO_CSQ, irp: *mut IRP, context: PVOID) -> NTSTATUS;
    /// CsqRemoveIrp.
    call_csq_remove_fn(csq: *mut IO_CSQ, irp: *mut IRP);
    /// CsqPeekNextIrp.
    call_csq_peek_fn(csq: *mut IO_CSQ, irp: *mut IRP, context: PVOID) -> *mut IRP;
    /// CsqAcquireLock.
    call_csq_acquire_lock_fn(csq: *mut IO_CSQ, irql: *mut KIRQL);
    /// CsqReleaseLock.
    call_csq_release_lock_fn(csq: *mut IO_CSQ, irql: KIRQL);
    /// CsqCompleteCanceledIrp.
    call_csq_complete_canceled_fn(csq: *mut IO_CSQ, irp: *mut IRP);
}

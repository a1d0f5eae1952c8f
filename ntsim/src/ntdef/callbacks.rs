//! Driver-supplied routine types. Each is an `Option` so that `None` is the C null pointer.
//!
//! They use `extern "system"`: the host's native C ABI, which is what ntsim and Rust drivers built
//! for the host use. (On Windows x64 that is the Microsoft x64 convention; a pointer taken from a
//! real Windows image running under a non-Windows host would need `extern "win64"`.)

use super::basic::{NTSTATUS, PVOID, UNICODE_STRING};
use super::device_object::DEVICE_OBJECT;
use super::dpc::KDPC;
use super::driver_object::DRIVER_OBJECT;
use super::irp::IRP;

/// `IRP_MJ_*` dispatch routine.
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP) -> NTSTATUS>;
/// Cancel routine: called with the cancel spin lock held (release it with `Irp.CancelIrql`).
pub type PDRIVER_CANCEL =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP)>;
/// `StartIo` routine, called at DISPATCH_LEVEL by `IoStartPacket`/`IoStartNextPacket`.
pub type PDRIVER_STARTIO =
    Option<unsafe extern "system" fn(DeviceObject: *mut DEVICE_OBJECT, Irp: *mut IRP)>;
/// Unload routine.
pub type PDRIVER_UNLOAD = Option<unsafe extern "system" fn(DriverObject: *mut DRIVER_OBJECT)>;
/// `DriverEntry`.
pub type PDRIVER_INITIALIZE = Option<
    unsafe extern "system" fn(
        DriverObject: *mut DRIVER_OBJECT,
        RegistryPath: *mut UNICODE_STRING,
    ) -> NTSTATUS,
>;
/// Completion routine (`IoSetCompletionRoutine`); returning `STATUS_MORE_PROCESSING_REQUIRED`
/// stops the completion walk.
pub type PIO_COMPLETION_ROUTINE = Option<
    unsafe extern "system" fn(
        DeviceObject: *mut DEVICE_OBJECT,
        Irp: *mut IRP,
        Context: PVOID,
    ) -> NTSTATUS,
>;
/// DPC routine.
pub type PKDEFERRED_ROUTINE = Option<
    unsafe extern "system" fn(
        Dpc: *mut KDPC,
        DeferredContext: PVOID,
        SystemArgument1: PVOID,
        SystemArgument2: PVOID,
    ),
>;
/// System-thread start routine (`PsCreateSystemThread`).
pub type PKSTART_ROUTINE = Option<unsafe extern "system" fn(StartContext: PVOID)>;

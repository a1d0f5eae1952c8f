//! The driver object and its extension.

use core::mem::size_of;

use super::basic::{CSHORT, PVOID, ULONG, UNICODE_STRING};
use super::callbacks::{PDRIVER_DISPATCH, PDRIVER_INITIALIZE, PDRIVER_STARTIO, PDRIVER_UNLOAD};
use super::device_object::DEVICE_OBJECT;
use super::stack_location::IRP_MJ_COUNT;

/// `DRIVER_OBJECT.Flags` bits (set by the I/O manager).
pub const DRVO_UNLOAD_INVOKED: ULONG = 0x0000_0001;
pub const DRVO_LEGACY_DRIVER: ULONG = 0x0000_0002;

/// The driver extension (the driver-visible prefix of the I/O manager's structure).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_EXTENSION {
    pub DriverObject: *mut DRIVER_OBJECT,
    /// A `PDRIVER_ADD_DEVICE` (PnP drivers only).
    pub AddDevice: PVOID,
    pub Count: ULONG,
    pub ServiceKeyName: UNICODE_STRING,
}
const _: () = assert!(size_of::<DRIVER_EXTENSION>() == 40);

/// A driver object. `Type` is [`super::IO_TYPE_DRIVER`]; `DeviceObject` heads the list of the
/// driver's devices (linked through `DEVICE_OBJECT.NextDevice`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub Flags: ULONG,
    pub DriverStart: PVOID,
    pub DriverSize: ULONG,
    pub DriverSection: PVOID,
    pub DriverExtension: *mut DRIVER_EXTENSION,
    pub DriverName: UNICODE_STRING,
    pub HardwareDatabase: *mut UNICODE_STRING,
    /// A `PFAST_IO_DISPATCH`.
    pub FastIoDispatch: PVOID,
    pub DriverInit: PDRIVER_INITIALIZE,
    pub DriverStartIo: PDRIVER_STARTIO,
    pub DriverUnload: PDRIVER_UNLOAD,
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_COUNT],
}
const _: () = assert!(size_of::<DRIVER_OBJECT>() == 336);

impl_zeroed!(DRIVER_EXTENSION, DRIVER_OBJECT);

//! The device object.

use core::mem::{align_of, size_of};

use super::basic::{CCHAR, CSHORT, LIST_ENTRY, PVOID, ULONG, USHORT};
use super::device_queue::KDEVICE_QUEUE;
use super::dispatcher::KEVENT;
use super::dpc::KDPC;
use super::driver_object::DRIVER_OBJECT;
use super::irp::IRP;
use super::opaque::WAIT_CONTEXT_BLOCK;

/// `DEVICE_OBJECT.Flags` bits.
pub const DO_VERIFY_VOLUME: ULONG = 0x0000_0002;
pub const DO_BUFFERED_IO: ULONG = 0x0000_0004;
pub const DO_EXCLUSIVE: ULONG = 0x0000_0008;
pub const DO_DIRECT_IO: ULONG = 0x0000_0010;
pub const DO_MAP_IO_BUFFER: ULONG = 0x0000_0020;
pub const DO_DEVICE_INITIALIZING: ULONG = 0x0000_0080;
pub const DO_SHUTDOWN_REGISTERED: ULONG = 0x0000_0800;
pub const DO_BUS_ENUMERATED_DEVICE: ULONG = 0x0000_1000;
pub const DO_POWER_PAGABLE: ULONG = 0x0000_2000;
pub const DO_POWER_INRUSH: ULONG = 0x0000_4000;

/// `DEVICE_OBJECT.Queue` (C: union `Queue`): a list entry, or the wait context block used by the
/// DMA adapter routines. 72 bytes, so that `AlignmentRequirement` lands at offset 152.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DEVICE_OBJECT_QUEUE {
    pub ListEntry: LIST_ENTRY,
    pub Wcb: WAIT_CONTEXT_BLOCK,
}
const _: () = assert!(size_of::<DEVICE_OBJECT_QUEUE>() == 72);

/// A device object. Declared 16-byte aligned in the WDK, which makes it 336 bytes (not 328).
///
/// `Type` is [`super::IO_TYPE_DEVICE`]; `Size` is the size in bytes including the device
/// extension; `CurrentIrp` and `DeviceQueue` belong to the `IoStartPacket` machinery.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct DEVICE_OBJECT {
    pub Type: CSHORT,
    pub Size: USHORT,
    pub ReferenceCount: i32,
    pub DriverObject: *mut DRIVER_OBJECT,
    pub NextDevice: *mut DEVICE_OBJECT,
    pub AttachedDevice: *mut DEVICE_OBJECT,
    pub CurrentIrp: *mut IRP,
    /// A `PIO_TIMER`.
    pub Timer: PVOID,
    pub Flags: ULONG,
    pub Characteristics: ULONG,
    /// A `PVPB` (volume parameter block; file systems only).
    pub Vpb: PVOID,
    pub DeviceExtension: PVOID,
    /// A `DEVICE_TYPE` (`FILE_DEVICE_*`).
    pub DeviceType: ULONG,
    pub StackSize: CCHAR,
    pub Queue: DEVICE_OBJECT_QUEUE,
    pub AlignmentRequirement: ULONG,
    pub DeviceQueue: KDEVICE_QUEUE,
    pub Dpc: KDPC,
    pub ActiveThreadCount: ULONG,
    /// A `PSECURITY_DESCRIPTOR`.
    pub SecurityDescriptor: PVOID,
    pub DeviceLock: KEVENT,
    pub SectorSize: USHORT,
    pub Spare1: USHORT,
    /// A `PDEVOBJ_EXTENSION`.
    pub DeviceObjectExtension: PVOID,
    pub Reserved: PVOID,
}
const _: () = assert!(size_of::<DEVICE_OBJECT>() == 336 && align_of::<DEVICE_OBJECT>() == 16);

impl_union_debug!(DEVICE_OBJECT_QUEUE);
impl_zeroed!(DEVICE_OBJECT_QUEUE, DEVICE_OBJECT);

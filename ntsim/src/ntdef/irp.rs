//! The I/O request packet.

use core::mem::{align_of, offset_of, size_of};

use super::basic::{
    BOOLEAN, CCHAR, CSHORT, IO_STATUS_BLOCK, KIRQL, KPROCESSOR_MODE, LIST_ENTRY, PVOID, UCHAR,
    ULONG, USHORT,
};
use super::callbacks::PDRIVER_CANCEL;
use super::device_queue::KDEVICE_QUEUE_ENTRY;
use super::dispatcher::KEVENT;
use super::file_object::FILE_OBJECT;
use super::opaque::{KAPC, MDL, PETHREAD};
use super::stack_location::IO_STACK_LOCATION;

/// `IRP.Type`.
pub const IO_TYPE_ADAPTER: CSHORT = 1;
pub const IO_TYPE_CONTROLLER: CSHORT = 2;
pub const IO_TYPE_DEVICE: CSHORT = 3;
pub const IO_TYPE_DRIVER: CSHORT = 4;
pub const IO_TYPE_FILE: CSHORT = 5;
pub const IO_TYPE_IRP: CSHORT = 6;
pub const IO_TYPE_MASTER_ADAPTER: CSHORT = 7;
pub const IO_TYPE_OPEN_PACKET: CSHORT = 8;
pub const IO_TYPE_TIMER: CSHORT = 9;
pub const IO_TYPE_VPB: CSHORT = 10;
pub const IO_TYPE_ERROR_LOG: CSHORT = 11;
pub const IO_TYPE_ERROR_MESSAGE: CSHORT = 12;
pub const IO_TYPE_DEVICE_OBJECT_EXTENSION: CSHORT = 13;

/// Priority boost for `IoCompleteRequest` when none is wanted.
pub const IO_NO_INCREMENT: CCHAR = 0;

/// `IRP.Flags` bits.
pub const IRP_NOCACHE: ULONG = 0x0000_0001;
pub const IRP_PAGING_IO: ULONG = 0x0000_0002;
pub const IRP_SYNCHRONOUS_API: ULONG = 0x0000_0004;
/// (Shares its name with the [`IRP.AssociatedIrp` union type](union@IRP_ASSOCIATED_IRP); Rust
/// keeps values and types apart.)
pub const IRP_ASSOCIATED_IRP: ULONG = 0x0000_0008;
pub const IRP_BUFFERED_IO: ULONG = 0x0000_0010;
pub const IRP_DEALLOCATE_BUFFER: ULONG = 0x0000_0020;
pub const IRP_INPUT_OPERATION: ULONG = 0x0000_0040;
pub const IRP_CREATE_OPERATION: ULONG = 0x0000_0080;
pub const IRP_READ_OPERATION: ULONG = 0x0000_0100;
pub const IRP_WRITE_OPERATION: ULONG = 0x0000_0200;
pub const IRP_CLOSE_OPERATION: ULONG = 0x0000_0400;
pub const IRP_DEFER_IO_COMPLETION: ULONG = 0x0000_0800;

/// `IRP.AssociatedIrp` (C: anonymous union). For buffered I/O the live member is `SystemBuffer`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_ASSOCIATED_IRP {
    pub MasterIrp: *mut IRP,
    pub IrpCount: i32,
    pub SystemBuffer: PVOID,
}
const _: () = assert!(size_of::<IRP_ASSOCIATED_IRP>() == 8);

/// `IRP.Overlay.AsynchronousParameters`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_ASYNCHRONOUS_PARAMETERS {
    pub UserApcRoutine: PVOID,
    pub UserApcContext: PVOID,
}

/// `IRP.Overlay` (C: union `Overlay`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_OVERLAY {
    pub AsynchronousParameters: IRP_ASYNCHRONOUS_PARAMETERS,
    pub AllocationSize: i64,
}
const _: () = assert!(size_of::<IRP_OVERLAY>() == 16);

/// `IRP.Tail.Overlay.DeviceQueue` (C: the anonymous union of `DeviceQueueEntry` and
/// `DriverContext[4]`). While an IRP sits in a `KDEVICE_QUEUE` the entry is live; otherwise the
/// current owner may use `DriverContext` (slot 3 is reserved by the IoCsq routines).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_DEVICE_QUEUE_OR_CONTEXT {
    pub DeviceQueueEntry: KDEVICE_QUEUE_ENTRY,
    pub DriverContext: [PVOID; 4],
}
const _: () = assert!(size_of::<IRP_DEVICE_QUEUE_OR_CONTEXT>() == 32);

/// `IRP.Tail.Overlay` (C: struct `Overlay`). The `PacketType` member that overlays
/// `CurrentStackLocation` (used only for mini-packets) is omitted.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_TAIL_OVERLAY {
    pub DeviceQueue: IRP_DEVICE_QUEUE_OR_CONTEXT,
    pub Thread: PETHREAD,
    pub AuxiliaryBuffer: *mut i8,
    /// Free for the current owner's queues (the IoCsq samples link IRPs through it).
    pub ListEntry: LIST_ENTRY,
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    pub OriginalFileObject: *mut FILE_OBJECT,
}
const _: () = assert!(size_of::<IRP_TAIL_OVERLAY>() == 80);

/// `IRP.Tail` (C: union `Tail`); 88 bytes because of the embedded APC.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL {
    pub Overlay: IRP_TAIL_OVERLAY,
    pub Apc: KAPC,
    pub CompletionKey: PVOID,
}
const _: () = assert!(size_of::<IRP_TAIL>() == 88);

/// An I/O request packet. It is followed in memory by `StackCount` [`IO_STACK_LOCATION`]s.
///
/// `CurrentLocation` counts down from `StackCount + 1` (nothing current) as the IRP is passed
/// down; `Tail.Overlay.CurrentStackLocation` points at the matching stack location.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP {
    pub Type: CSHORT,
    pub Size: USHORT,
    pub AllocationProcessorNumber: USHORT,
    pub Reserved: USHORT,
    pub MdlAddress: *mut MDL,
    pub Flags: ULONG,
    pub AssociatedIrp: IRP_ASSOCIATED_IRP,
    pub ThreadListEntry: LIST_ENTRY,
    pub IoStatus: IO_STATUS_BLOCK,
    pub RequestorMode: KPROCESSOR_MODE,
    pub PendingReturned: BOOLEAN,
    pub StackCount: CCHAR,
    pub CurrentLocation: CCHAR,
    pub Cancel: BOOLEAN,
    pub CancelIrql: KIRQL,
    pub ApcEnvironment: CCHAR,
    pub AllocationFlags: UCHAR,
    pub UserIosb: *mut IO_STATUS_BLOCK,
    pub UserEvent: *mut KEVENT,
    pub Overlay: IRP_OVERLAY,
    pub CancelRoutine: PDRIVER_CANCEL,
    pub UserBuffer: PVOID,
    pub Tail: IRP_TAIL,
}
const _: () = assert!(size_of::<IRP>() == 208 && align_of::<IRP>() == 8);

/// Field addresses computed from an IRP pointer without dereferencing it (so without `unsafe`).
///
/// Reaching these fields by name goes through two unions (`Tail`, then `DeviceQueue`), which is
/// two unsafe operations per expression; these helpers keep driver code to one operation (the
/// read or write through the returned pointer). The results are only valid to dereference if
/// `irp` points at a live IRP.
impl IRP {
    /// `&raw mut (*irp).Tail.Overlay.DeviceQueue.DriverContext[index]` (`index` < 4).
    #[must_use]
    pub const fn driver_context_ptr(irp: *mut IRP, index: usize) -> *mut PVOID {
        assert!(index < 4, "DriverContext has 4 slots");
        irp.wrapping_byte_add(offset_of!(IRP, Tail.Overlay.DeviceQueue.DriverContext))
            .cast::<PVOID>()
            .wrapping_add(index)
    }

    /// `&raw mut (*irp).Tail.Overlay.DeviceQueue.DeviceQueueEntry`.
    #[must_use]
    pub const fn device_queue_entry_ptr(irp: *mut IRP) -> *mut KDEVICE_QUEUE_ENTRY {
        irp.wrapping_byte_add(offset_of!(IRP, Tail.Overlay.DeviceQueue.DeviceQueueEntry))
            .cast()
    }

    /// `&raw mut (*irp).Tail.Overlay.ListEntry`.
    #[must_use]
    pub const fn list_entry_ptr(irp: *mut IRP) -> *mut LIST_ENTRY {
        irp.wrapping_byte_add(offset_of!(IRP, Tail.Overlay.ListEntry))
            .cast()
    }

    /// `&raw mut (*irp).Tail.Overlay.CurrentStackLocation`.
    #[must_use]
    pub const fn current_stack_location_ptr(irp: *mut IRP) -> *mut *mut IO_STACK_LOCATION {
        irp.wrapping_byte_add(offset_of!(IRP, Tail.Overlay.CurrentStackLocation))
            .cast()
    }

    /// `&raw mut (*irp).Tail.Overlay.OriginalFileObject`.
    #[must_use]
    pub const fn original_file_object_ptr(irp: *mut IRP) -> *mut *mut FILE_OBJECT {
        irp.wrapping_byte_add(offset_of!(IRP, Tail.Overlay.OriginalFileObject))
            .cast()
    }

    /// `CONTAINING_RECORD(entry, IRP, Tail.Overlay.ListEntry)`.
    #[must_use]
    pub const fn from_list_entry(entry: *mut LIST_ENTRY) -> *mut IRP {
        entry
            .wrapping_byte_sub(offset_of!(IRP, Tail.Overlay.ListEntry))
            .cast()
    }

    /// `CONTAINING_RECORD(entry, IRP, Tail.Overlay.DeviceQueueEntry)`.
    #[must_use]
    pub const fn from_device_queue_entry(entry: *mut KDEVICE_QUEUE_ENTRY) -> *mut IRP {
        entry
            .wrapping_byte_sub(offset_of!(IRP, Tail.Overlay.DeviceQueue.DeviceQueueEntry))
            .cast()
    }
}

impl_union_debug!(
    IRP_ASSOCIATED_IRP,
    IRP_OVERLAY,
    IRP_DEVICE_QUEUE_OR_CONTEXT,
    IRP_TAIL
);
impl_zeroed!(
    IRP_ASSOCIATED_IRP,
    IRP_ASYNCHRONOUS_PARAMETERS,
    IRP_OVERLAY,
    IRP_DEVICE_QUEUE_OR_CONTEXT,
    IRP_TAIL_OVERLAY,
    IRP_TAIL,
    IRP,
);

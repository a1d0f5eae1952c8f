//! The I/O stack location: one per driver layer, following the [`IRP`] in memory.

use core::mem::{align_of, size_of};

use super::basic::{LARGE_INTEGER, PVOID, UCHAR, ULONG, USHORT};
use super::callbacks::PIO_COMPLETION_ROUTINE;
use super::device_object::DEVICE_OBJECT;
use super::file_object::FILE_OBJECT;
#[cfg(doc)]
use super::irp::IRP;

/// Major function codes (`IO_STACK_LOCATION.MajorFunction`, index into
/// `DRIVER_OBJECT.MajorFunction`).
pub const IRP_MJ_CREATE: UCHAR = 0x00;
pub const IRP_MJ_CREATE_NAMED_PIPE: UCHAR = 0x01;
pub const IRP_MJ_CLOSE: UCHAR = 0x02;
pub const IRP_MJ_READ: UCHAR = 0x03;
pub const IRP_MJ_WRITE: UCHAR = 0x04;
pub const IRP_MJ_QUERY_INFORMATION: UCHAR = 0x05;
pub const IRP_MJ_SET_INFORMATION: UCHAR = 0x06;
pub const IRP_MJ_QUERY_EA: UCHAR = 0x07;
pub const IRP_MJ_SET_EA: UCHAR = 0x08;
pub const IRP_MJ_FLUSH_BUFFERS: UCHAR = 0x09;
pub const IRP_MJ_QUERY_VOLUME_INFORMATION: UCHAR = 0x0A;
pub const IRP_MJ_SET_VOLUME_INFORMATION: UCHAR = 0x0B;
pub const IRP_MJ_DIRECTORY_CONTROL: UCHAR = 0x0C;
pub const IRP_MJ_FILE_SYSTEM_CONTROL: UCHAR = 0x0D;
pub const IRP_MJ_DEVICE_CONTROL: UCHAR = 0x0E;
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: UCHAR = 0x0F;
pub const IRP_MJ_SHUTDOWN: UCHAR = 0x10;
pub const IRP_MJ_LOCK_CONTROL: UCHAR = 0x11;
pub const IRP_MJ_CLEANUP: UCHAR = 0x12;
pub const IRP_MJ_CREATE_MAILSLOT: UCHAR = 0x13;
pub const IRP_MJ_QUERY_SECURITY: UCHAR = 0x14;
pub const IRP_MJ_SET_SECURITY: UCHAR = 0x15;
pub const IRP_MJ_POWER: UCHAR = 0x16;
pub const IRP_MJ_SYSTEM_CONTROL: UCHAR = 0x17;
pub const IRP_MJ_DEVICE_CHANGE: UCHAR = 0x18;
pub const IRP_MJ_QUERY_QUOTA: UCHAR = 0x19;
pub const IRP_MJ_SET_QUOTA: UCHAR = 0x1A;
pub const IRP_MJ_PNP: UCHAR = 0x1B;
pub const IRP_MJ_PNP_POWER: UCHAR = IRP_MJ_PNP;
pub const IRP_MJ_MAXIMUM_FUNCTION: UCHAR = 0x1B;
/// Number of major functions (the length of `DRIVER_OBJECT.MajorFunction`).
pub const IRP_MJ_COUNT: usize = IRP_MJ_MAXIMUM_FUNCTION as usize + 1;

/// `IO_STACK_LOCATION.Control` bits.
pub const SL_PENDING_RETURNED: UCHAR = 0x01;
pub const SL_ERROR_RETURNED: UCHAR = 0x02;
pub const SL_INVOKE_ON_CANCEL: UCHAR = 0x20;
pub const SL_INVOKE_ON_SUCCESS: UCHAR = 0x40;
pub const SL_INVOKE_ON_ERROR: UCHAR = 0x80;

/// `Parameters.DeviceIoControl` (also used for `IRP_MJ_INTERNAL_DEVICE_CONTROL`). The three
/// `ULONG`s are `POINTER_ALIGNMENT`, hence 8 bytes apart.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_DEVICE_IO_CONTROL {
    pub OutputBufferLength: ULONG,
    _pad0: u32,
    pub InputBufferLength: ULONG,
    _pad1: u32,
    pub IoControlCode: ULONG,
    _pad2: u32,
    pub Type3InputBuffer: PVOID,
}
const _: () = assert!(size_of::<IO_STACK_LOCATION_DEVICE_IO_CONTROL>() == 32);

/// `Parameters.Read` and `Parameters.Write` (same layout). `Key` is `POINTER_ALIGNMENT`;
/// `Flags` exists since Windows 8.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_READ_WRITE {
    pub Length: ULONG,
    _pad0: u32,
    pub Key: ULONG,
    pub Flags: ULONG,
    pub ByteOffset: LARGE_INTEGER,
}
const _: () = assert!(size_of::<IO_STACK_LOCATION_READ_WRITE>() == 24);

/// `Parameters.Create`. `FileAttributes` and `EaLength` are `POINTER_ALIGNMENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_CREATE {
    /// A `PIO_SECURITY_CONTEXT`.
    pub SecurityContext: PVOID,
    pub Options: ULONG,
    _pad0: u32,
    pub FileAttributes: USHORT,
    pub ShareAccess: USHORT,
    _pad1: u32,
    pub EaLength: ULONG,
}
const _: () = assert!(size_of::<IO_STACK_LOCATION_CREATE>() == 32);

/// `Parameters.Others`: the raw four pointer-sized arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_OTHERS {
    pub Argument1: PVOID,
    pub Argument2: PVOID,
    pub Argument3: PVOID,
    pub Argument4: PVOID,
}
const _: () = assert!(size_of::<IO_STACK_LOCATION_OTHERS>() == 32);

/// `IO_STACK_LOCATION.Parameters` (C: union `Parameters`), 32 bytes, 8-aligned.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_PARAMETERS {
    pub Create: IO_STACK_LOCATION_CREATE,
    pub Read: IO_STACK_LOCATION_READ_WRITE,
    pub Write: IO_STACK_LOCATION_READ_WRITE,
    pub DeviceIoControl: IO_STACK_LOCATION_DEVICE_IO_CONTROL,
    pub Others: IO_STACK_LOCATION_OTHERS,
}
const _: () = assert!(
    size_of::<IO_STACK_LOCATION_PARAMETERS>() == 32
        && align_of::<IO_STACK_LOCATION_PARAMETERS>() == 8
);

/// One driver layer's view of an [`IRP`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION {
    pub MajorFunction: UCHAR,
    pub MinorFunction: UCHAR,
    pub Flags: UCHAR,
    pub Control: UCHAR,
    pub Parameters: IO_STACK_LOCATION_PARAMETERS,
    pub DeviceObject: *mut DEVICE_OBJECT,
    pub FileObject: *mut FILE_OBJECT,
    pub CompletionRoutine: PIO_COMPLETION_ROUTINE,
    pub Context: PVOID,
}
const _: () = assert!(size_of::<IO_STACK_LOCATION>() == 72);

impl IO_STACK_LOCATION_DEVICE_IO_CONTROL {
    /// Parameters of a device-control request (padding zeroed).
    #[must_use]
    pub const fn new(
        OutputBufferLength: ULONG,
        InputBufferLength: ULONG,
        IoControlCode: ULONG,
        Type3InputBuffer: PVOID,
    ) -> Self {
        Self {
            OutputBufferLength,
            _pad0: 0,
            InputBufferLength,
            _pad1: 0,
            IoControlCode,
            _pad2: 0,
            Type3InputBuffer,
        }
    }
}

impl IO_STACK_LOCATION_READ_WRITE {
    /// Parameters of a read or write request (padding and `Flags` zeroed).
    #[must_use]
    pub const fn new(Length: ULONG, Key: ULONG, ByteOffset: LARGE_INTEGER) -> Self {
        Self {
            Length,
            _pad0: 0,
            Key,
            Flags: 0,
            ByteOffset,
        }
    }
}

impl IO_STACK_LOCATION_CREATE {
    /// Parameters of a create request (padding zeroed).
    #[must_use]
    pub const fn new(
        SecurityContext: PVOID,
        Options: ULONG,
        FileAttributes: USHORT,
        ShareAccess: USHORT,
        EaLength: ULONG,
    ) -> Self {
        Self {
            SecurityContext,
            Options,
            _pad0: 0,
            FileAttributes,
            ShareAccess,
            _pad1: 0,
            EaLength,
        }
    }
}

impl_union_debug!(IO_STACK_LOCATION_PARAMETERS);
impl_zeroed!(
    IO_STACK_LOCATION_DEVICE_IO_CONTROL,
    IO_STACK_LOCATION_READ_WRITE,
    IO_STACK_LOCATION_CREATE,
    IO_STACK_LOCATION_OTHERS,
    IO_STACK_LOCATION_PARAMETERS,
    IO_STACK_LOCATION,
);

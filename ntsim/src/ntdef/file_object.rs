//! The file object: one per open handle target (`CreateFile` on a device).

use core::mem::size_of;

use super::basic::{
    BOOLEAN, CSHORT, LARGE_INTEGER, LIST_ENTRY, NTSTATUS, PVOID, ULONG, UNICODE_STRING,
};
use super::device_object::DEVICE_OBJECT;
use super::device_queue::KSPIN_LOCK;
use super::dispatcher::KEVENT;

/// `FILE_OBJECT.Flags` bits.
pub const FO_FILE_OPEN: ULONG = 0x0000_0001;
pub const FO_SYNCHRONOUS_IO: ULONG = 0x0000_0002;
pub const FO_ALERTABLE_IO: ULONG = 0x0000_0004;
pub const FO_NO_INTERMEDIATE_BUFFERING: ULONG = 0x0000_0008;
pub const FO_WRITE_THROUGH: ULONG = 0x0000_0010;
pub const FO_SEQUENTIAL_ONLY: ULONG = 0x0000_0020;
pub const FO_CACHE_SUPPORTED: ULONG = 0x0000_0040;
pub const FO_NAMED_PIPE: ULONG = 0x0000_0080;
pub const FO_STREAM_FILE: ULONG = 0x0000_0100;
pub const FO_MAILSLOT: ULONG = 0x0000_0200;
pub const FO_DIRECT_DEVICE_OPEN: ULONG = 0x0000_0800;
pub const FO_CLEANUP_COMPLETE: ULONG = 0x0000_4000;
pub const FO_HANDLE_CREATED: ULONG = 0x0004_0000;

/// A file object. `Type` is [`super::IO_TYPE_FILE`]. Drivers use `FsContext`/`FsContext2` for
/// per-open state; `Lock` serializes synchronous (`FO_SYNCHRONOUS_IO`) requests; `Event` is
/// signalled when an I/O on the file completes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FILE_OBJECT {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceObject: *mut DEVICE_OBJECT,
    /// A `PVPB`.
    pub Vpb: PVOID,
    pub FsContext: PVOID,
    pub FsContext2: PVOID,
    /// A `PSECTION_OBJECT_POINTERS`.
    pub SectionObjectPointer: PVOID,
    pub PrivateCacheMap: PVOID,
    pub FinalStatus: NTSTATUS,
    pub RelatedFileObject: *mut FILE_OBJECT,
    pub LockOperation: BOOLEAN,
    pub DeletePending: BOOLEAN,
    pub ReadAccess: BOOLEAN,
    pub WriteAccess: BOOLEAN,
    pub DeleteAccess: BOOLEAN,
    pub SharedRead: BOOLEAN,
    pub SharedWrite: BOOLEAN,
    pub SharedDelete: BOOLEAN,
    pub Flags: ULONG,
    pub FileName: UNICODE_STRING,
    pub CurrentByteOffset: LARGE_INTEGER,
    pub Waiters: ULONG,
    pub Busy: ULONG,
    pub LastLock: PVOID,
    pub Lock: KEVENT,
    pub Event: KEVENT,
    /// A `PIO_COMPLETION_CONTEXT`.
    pub CompletionContext: PVOID,
    pub IrpListLock: KSPIN_LOCK,
    pub IrpList: LIST_ENTRY,
    pub FileObjectExtension: PVOID,
}
const _: () = assert!(size_of::<FILE_OBJECT>() == 216);

impl_zeroed!(FILE_OBJECT);

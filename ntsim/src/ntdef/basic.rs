//! Basic scalar types, IRQL levels, list links, counted strings and the I/O status block.

use core::ffi::c_void;
use core::mem::size_of;

/// A status code: severity in bits 30..31, customer bit 29, facility 16..27, code 0..15.
pub type NTSTATUS = i32;
/// `TRUE` (1) or `FALSE` (0), one byte.
pub type BOOLEAN = u8;
/// Interrupt request level.
pub type KIRQL = u8;
/// `KernelMode` or `UserMode`.
pub type KPROCESSOR_MODE = i8;
/// A signed 8-bit count (`StackCount`, `CurrentLocation`, `StackSize`).
pub type CCHAR = i8;
/// A signed 16-bit count (the `Type`/`Size` headers of I/O objects).
pub type CSHORT = i16;
pub type ULONG = u32;
pub type LONG = i32;
pub type USHORT = u16;
pub type UCHAR = u8;
pub type ULONG_PTR = usize;
pub type LONG_PTR = isize;
pub type PVOID = *mut c_void;
pub type HANDLE = *mut c_void;
/// A 64-bit signed integer (the C union's `QuadPart`); same size and alignment as the union.
pub type LARGE_INTEGER = i64;
/// A 64-bit unsigned integer (the C union's `QuadPart`).
pub type ULARGE_INTEGER = u64;
/// A set of access rights (see [`super::access`]).
pub type ACCESS_MASK = u32;

pub const TRUE: BOOLEAN = 1;
pub const FALSE: BOOLEAN = 0;

pub const KernelMode: KPROCESSOR_MODE = 0;
pub const UserMode: KPROCESSOR_MODE = 1;

pub const PASSIVE_LEVEL: KIRQL = 0;
pub const LOW_LEVEL: KIRQL = 0;
pub const APC_LEVEL: KIRQL = 1;
pub const DISPATCH_LEVEL: KIRQL = 2;
pub const CMCI_LEVEL: KIRQL = 5;
pub const CLOCK_LEVEL: KIRQL = 13;
pub const IPI_LEVEL: KIRQL = 14;
pub const POWER_LEVEL: KIRQL = 14;
pub const PROFILE_LEVEL: KIRQL = 15;
pub const HIGH_LEVEL: KIRQL = 15;

/// A link in a circular doubly linked list; an empty list head points at itself.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}
const _: () = assert!(size_of::<LIST_ENTRY>() == 16);

/// A link in a singly linked (null-terminated) list.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SINGLE_LIST_ENTRY {
    pub Next: *mut SINGLE_LIST_ENTRY,
}
const _: () = assert!(size_of::<SINGLE_LIST_ENTRY>() == 8);

/// A counted UTF-16 string; `Length` and `MaximumLength` are in **bytes** and the buffer need not
/// be NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: *mut u16,
}
const _: () = assert!(size_of::<UNICODE_STRING>() == 16);

/// The anonymous `Status`/`Pointer` union at the start of an [`IO_STATUS_BLOCK`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STATUS_BLOCK_0 {
    pub Status: NTSTATUS,
    /// Reserved for internal use.
    pub Pointer: PVOID,
}
const _: () = assert!(size_of::<IO_STATUS_BLOCK_0>() == 8);

/// The final status of an I/O request and its request-specific `Information` (usually a byte
/// count). The status is `iosb.u.Status`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STATUS_BLOCK {
    pub u: IO_STATUS_BLOCK_0,
    pub Information: ULONG_PTR,
}
const _: () = assert!(size_of::<IO_STATUS_BLOCK>() == 16);

impl IO_STATUS_BLOCK {
    /// A status block holding `status` and `information`.
    #[must_use]
    pub const fn new(status: NTSTATUS, information: ULONG_PTR) -> Self {
        Self {
            u: IO_STATUS_BLOCK_0 {
                Pointer: core::ptr::null_mut(),
            },
            Information: information,
        }
        .with_status(status)
    }

    /// Replaces the status (the full pointer-sized slot is zeroed first).
    #[must_use]
    const fn with_status(mut self, status: NTSTATUS) -> Self {
        self.u.Status = status;
        self
    }

    /// The `Status` member.
    #[must_use]
    pub const fn status(&self) -> NTSTATUS {
        // SAFETY: `Status` is the low 4 bytes of the union; whichever member was last written
        // (`Status` or `Pointer`) initializes those bytes, and any bit pattern is a valid i32.
        unsafe { self.u.Status }
    }
}

impl_union_debug!(IO_STATUS_BLOCK_0);
impl_zeroed!(
    LIST_ENTRY,
    SINGLE_LIST_ENTRY,
    UNICODE_STRING,
    IO_STATUS_BLOCK
);

/// Thread priority and priority increments.
pub type KPRIORITY = i32;
/// Pointer to a KEVENT.
pub type PKEVENT = *mut super::KEVENT;
/// Pointer to a KSEMAPHORE.
pub type PKSEMAPHORE = *mut super::KSEMAPHORE;
/// Pointer to a KTIMER.
pub type PKTIMER = *mut super::KTIMER;
/// Pointer to a KDPC.
pub type PKDPC = *mut super::KDPC;
/// Pointer to an IRP.
pub type PIRP = *mut super::IRP;
/// Pointer to a DEVICE_OBJECT.
pub type PDEVICE_OBJECT = *mut super::DEVICE_OBJECT;
/// Pointer to a DRIVER_OBJECT.
pub type PDRIVER_OBJECT = *mut super::DRIVER_OBJECT;
/// Pointer to a FILE_OBJECT.
pub type PFILE_OBJECT = *mut super::FILE_OBJECT;
/// Pointer to an IO_STACK_LOCATION.
pub type PIO_STACK_LOCATION = *mut super::IO_STACK_LOCATION;
/// Pointer to a UNICODE_STRING.
pub type PUNICODE_STRING = *mut UNICODE_STRING;
/// Pointer to an IO_CSQ.
pub type PIO_CSQ = *mut super::IO_CSQ;
/// Pointer to an IO_CSQ_IRP_CONTEXT.
pub type PIO_CSQ_IRP_CONTEXT = *mut super::IO_CSQ_IRP_CONTEXT;

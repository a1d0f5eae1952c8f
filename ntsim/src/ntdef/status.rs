//! NTSTATUS values used by drivers and the I/O manager, their names and Win32 error mappings.
//!
//! The constants, [`status_name`] and [`RtlNtStatusToDosError`] are all generated from one table,
//! so they cannot drift apart.

use super::basic::NTSTATUS;

/// `ERROR_MR_MID_NOT_FOUND`: what [`RtlNtStatusToDosError`] returns for an unmapped code.
pub const ERROR_MR_MID_NOT_FOUND: u32 = 317;

macro_rules! status_table {
    ($( $(#[$meta:meta])* $name:ident = $value:literal => $dos:literal, )+) => {
        $(
            $(#[$meta])*
            #[doc = concat!("\n\nWin32 error: ", stringify!($dos), ".")]
            pub const $name: NTSTATUS = ($value as u32) as NTSTATUS;
        )+

        /// `(code, name, Win32 error)` for every named status; codes are unique.
        pub const STATUS_TABLE: &[(NTSTATUS, &str, u32)] = &[
            $( ($name, stringify!($name), $dos), )+
        ];
    };
}

status_table! {
    /// The operation completed successfully (also `STATUS_WAIT_0`: object 0 of a wait satisfied).
    STATUS_SUCCESS = 0x0000_0000 => 0,
    /// A wait on a mutex was satisfied because its owner terminated (also
    /// `STATUS_ABANDONED_WAIT_0`). Win32 `WAIT_ABANDONED` has the same value.
    STATUS_ABANDONED = 0x0000_0080 => 0x80,
    /// A user-mode APC was delivered during an alertable wait. Win32 `WAIT_IO_COMPLETION` has the
    /// same value.
    STATUS_USER_APC = 0x0000_00C0 => 0xC0,
    /// A kernel APC was delivered during a wait (internal; never returned to callers).
    STATUS_KERNEL_APC = 0x0000_0100 => 0x100,
    /// An alertable wait ended because the thread was alerted.
    STATUS_ALERTED = 0x0000_0101 => 0x101,
    /// A wait timed out. Win32 `WAIT_TIMEOUT` has the same value.
    STATUS_TIMEOUT = 0x0000_0102 => 258,
    /// The operation will complete later (`ERROR_IO_PENDING`).
    STATUS_PENDING = 0x0000_0103 => 997,
    /// Warning: the output buffer holds only part of the data (`ERROR_MORE_DATA`).
    STATUS_BUFFER_OVERFLOW = 0x8000_0005 => 234,
    /// Warning: the device is busy (`ERROR_BUSY`). Note the *warning* severity.
    STATUS_DEVICE_BUSY = 0x8000_0011 => 170,
    /// Generic failure (`ERROR_GEN_FAILURE`).
    STATUS_UNSUCCESSFUL = 0xC000_0001 => 31,
    /// The requested operation is not implemented (`ERROR_INVALID_FUNCTION`).
    STATUS_NOT_IMPLEMENTED = 0xC000_0002 => 1,
    /// An invalid handle was given (`ERROR_INVALID_HANDLE`).
    STATUS_INVALID_HANDLE = 0xC000_0008 => 6,
    /// An invalid parameter was given (`ERROR_INVALID_PARAMETER`).
    STATUS_INVALID_PARAMETER = 0xC000_000D => 87,
    /// The device does not exist (`ERROR_FILE_NOT_FOUND`).
    STATUS_NO_SUCH_DEVICE = 0xC000_000E => 2,
    /// The request is not valid for this device (`ERROR_INVALID_FUNCTION`).
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010 => 1,
    /// Returned by a completion routine to stop the completion walk (`ERROR_MORE_DATA`).
    STATUS_MORE_PROCESSING_REQUIRED = 0xC000_0016 => 234,
    /// Not enough virtual memory (`ERROR_NOT_ENOUGH_MEMORY`).
    STATUS_NO_MEMORY = 0xC000_0017 => 8,
    /// Access denied (`ERROR_ACCESS_DENIED`).
    STATUS_ACCESS_DENIED = 0xC000_0022 => 5,
    /// The buffer is too small for the data (`ERROR_INSUFFICIENT_BUFFER`).
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023 => 122,
    /// The handle refers to an object of another type (`ERROR_INVALID_HANDLE`).
    STATUS_OBJECT_TYPE_MISMATCH = 0xC000_0024 => 6,
    /// The object name is syntactically invalid (`ERROR_INVALID_NAME`).
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033 => 123,
    /// No object has that name (`ERROR_FILE_NOT_FOUND`).
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034 => 2,
    /// An object with that name already exists (`ERROR_ALREADY_EXISTS`).
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035 => 183,
    /// A path component does not exist (`ERROR_PATH_NOT_FOUND`).
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003A => 3,
    /// The caller does not own the mutex it released (`ERROR_NOT_OWNER`).
    STATUS_MUTANT_NOT_OWNED = 0xC000_0046 => 288,
    /// Releasing the semaphore would exceed its limit (`ERROR_TOO_MANY_POSTS`).
    STATUS_SEMAPHORE_LIMIT_EXCEEDED = 0xC000_0047 => 298,
    /// The thread is terminating (`ERROR_ACCESS_DENIED`).
    STATUS_THREAD_IS_TERMINATING = 0xC000_004B => 5,
    /// The object is being deleted (`ERROR_ACCESS_DENIED`); also what `IoAcquireRemoveLock`
    /// returns after removal.
    STATUS_DELETE_PENDING = 0xC000_0056 => 5,
    /// Not enough system resources (`ERROR_NO_SYSTEM_RESOURCES`).
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A => 1450,
    /// The device is not ready (`ERROR_NOT_READY`).
    STATUS_DEVICE_NOT_READY = 0xC000_00A3 => 21,
    /// The request is not supported (`ERROR_NOT_SUPPORTED`).
    STATUS_NOT_SUPPORTED = 0xC000_00BB => 50,
    /// The I/O request was cancelled (`ERROR_OPERATION_ABORTED`).
    STATUS_CANCELLED = 0xC000_0120 => 995,
    /// The device is not in a state to accept the request (`ERROR_BAD_COMMAND`).
    STATUS_INVALID_DEVICE_STATE = 0xC000_0184 => 22,
}

/// Object 0 of a wait was signalled (same value as [`STATUS_SUCCESS`]).
pub const STATUS_WAIT_0: NTSTATUS = STATUS_SUCCESS;
/// Object 1 of a `WaitAny` wait was signalled; `STATUS_WAIT_0 + n` for object `n` (n ≤ 63).
pub const STATUS_WAIT_1: NTSTATUS = 1;
/// The last possible `STATUS_WAIT_n`.
pub const STATUS_WAIT_63: NTSTATUS = 0x3F;
/// Mutex 0 of a wait was abandoned (same value as [`STATUS_ABANDONED`]).
pub const STATUS_ABANDONED_WAIT_0: NTSTATUS = STATUS_ABANDONED;
/// The last possible `STATUS_ABANDONED_WAIT_n`.
pub const STATUS_ABANDONED_WAIT_63: NTSTATUS = 0xBF;

/// Severity 0 (success) or 1 (informational): the value is non-negative.
#[must_use]
pub const fn NT_SUCCESS(status: NTSTATUS) -> bool {
    status >= 0
}

/// Severity 1: informational (bits 31..30 == 01).
#[must_use]
pub const fn NT_INFORMATION(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 1
}

/// Severity 2: warning (bits 31..30 == 10).
#[must_use]
pub const fn NT_WARNING(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 2
}

/// Severity 3: error (bits 31..30 == 11).
#[must_use]
pub const fn NT_ERROR(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 3
}

/// The `STATUS_*` name of a code in [`STATUS_TABLE`] (aliases resolve to the canonical name, e.g.
/// 0 is `"STATUS_SUCCESS"`).
#[must_use]
pub fn status_name(status: NTSTATUS) -> Option<&'static str> {
    STATUS_TABLE
        .iter()
        .find(|&&(code, _, _)| code == status)
        .map(|&(_, name, _)| name)
}

/// The Win32 error code for `status`, for the codes in [`STATUS_TABLE`].
///
/// As on Windows, codes with the customer bit (29) set are returned unchanged, and any other code
/// without a mapping gives [`ERROR_MR_MID_NOT_FOUND`] (317). `STATUS_WAIT_1..63` and
/// `STATUS_ABANDONED_WAIT_1..63` map to themselves (the Win32 `WAIT_OBJECT_0 + n` and
/// `WAIT_ABANDONED_0 + n` values coincide).
#[must_use]
pub fn RtlNtStatusToDosError(status: NTSTATUS) -> u32 {
    if status as u32 & 0x2000_0000 != 0 {
        return status as u32;
    }
    if (STATUS_WAIT_1..=STATUS_WAIT_63).contains(&status)
        || (STATUS_ABANDONED..=STATUS_ABANDONED_WAIT_63).contains(&status)
    {
        return status as u32;
    }
    STATUS_TABLE
        .iter()
        .find(|&&(code, _, _)| code == status)
        .map_or(ERROR_MR_MID_NOT_FOUND, |&(_, _, dos)| dos)
}

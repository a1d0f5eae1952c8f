//! `NTSTATUS` values: [`NtStatus`] for any status, [`NtError`] for the error-severity ones.

use core::fmt;

/// A kernel status code (`NTSTATUS`): severity in bits 30–31 (success, informational, warning,
/// error), facility and code below.
///
/// Constants for the values this crate and its drivers use are associated items
/// (`NtStatus::CANCELLED`). Any IRQL.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct NtStatus(pub i32);

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        impl NtStatus {
            $( $(#[$doc])* pub const $name: NtStatus = NtStatus($value as u32 as i32); )*

            /// The status's symbolic name (`"STATUS_CANCELLED"`), if it is one of the constants.
            ///
            /// IRQL: any (no kernel call).
            #[must_use]
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( v if v == $value as u32 as i32 => Some(concat!("STATUS_", stringify!($name))), )*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    /// `STATUS_SUCCESS`.
    SUCCESS = 0x0000_0000;
    /// `STATUS_TIMEOUT` (a wait timed out; informational).
    TIMEOUT = 0x0000_0102;
    /// `STATUS_PENDING` (the request completes later; informational).
    PENDING = 0x0000_0103;
    /// `STATUS_DEVICE_BUSY` (a *warning*, not an error).
    DEVICE_BUSY = 0x8000_0011;
    /// `STATUS_UNSUCCESSFUL`.
    UNSUCCESSFUL = 0xC000_0001;
    /// `STATUS_NOT_IMPLEMENTED`.
    NOT_IMPLEMENTED = 0xC000_0002;
    /// `STATUS_INVALID_HANDLE`.
    INVALID_HANDLE = 0xC000_0008;
    /// `STATUS_INVALID_PARAMETER`.
    INVALID_PARAMETER = 0xC000_000D;
    /// `STATUS_INVALID_DEVICE_REQUEST`.
    INVALID_DEVICE_REQUEST = 0xC000_0010;
    /// `STATUS_ACCESS_DENIED`.
    ACCESS_DENIED = 0xC000_0022;
    /// `STATUS_BUFFER_TOO_SMALL`.
    BUFFER_TOO_SMALL = 0xC000_0023;
    /// `STATUS_OBJECT_TYPE_MISMATCH`.
    OBJECT_TYPE_MISMATCH = 0xC000_0024;
    /// `STATUS_OBJECT_NAME_COLLISION`.
    OBJECT_NAME_COLLISION = 0xC000_0035;
    /// `STATUS_DELETE_PENDING`.
    DELETE_PENDING = 0xC000_0056;
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    INSUFFICIENT_RESOURCES = 0xC000_009A;
    /// `STATUS_DEVICE_NOT_READY`.
    DEVICE_NOT_READY = 0xC000_00A3;
    /// `STATUS_NOT_SUPPORTED`.
    NOT_SUPPORTED = 0xC000_00BB;
    /// `STATUS_CANCELLED`.
    CANCELLED = 0xC000_0120;
    /// `STATUS_INVALID_DEVICE_STATE`.
    INVALID_DEVICE_STATE = 0xC000_0184;
}

impl NtStatus {
    /// `NT_SUCCESS`: severity success or informational.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// `NT_INFORMATION`.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn is_information(self) -> bool {
        (self.0 as u32) >> 30 == 1
    }

    /// `NT_WARNING`.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn is_warning(self) -> bool {
        (self.0 as u32) >> 30 == 2
    }

    /// `NT_ERROR`.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn is_error(self) -> bool {
        (self.0 as u32) >> 30 == 3
    }

    /// `Ok(())` for a success code, `Err(self)` otherwise.
    ///
    /// # Errors
    /// `self` when it is a warning or an error.
    ///
    /// IRQL: any (no kernel call).
    pub const fn to_result(self) -> Result<(), NtStatus> {
        if self.is_success() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "NtStatus({:#010x})", self.0 as u32),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A status of *error* severity (`NT_ERROR`), the only kind a queue policy may refuse an insert
/// with (spec A.9.3, "Ex status convention": an informational code would count as "queued" on
/// Windows and as "not queued" on ReactOS).
///
/// # Invariants
///
/// The wrapped status is an NT error.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NtError(NtStatus);

impl NtError {
    /// `STATUS_UNSUCCESSFUL`.
    pub const UNSUCCESSFUL: NtError = NtError::new(NtStatus::UNSUCCESSFUL);
    /// `STATUS_CANCELLED`.
    pub const CANCELLED: NtError = NtError::new(NtStatus::CANCELLED);
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    pub const INSUFFICIENT_RESOURCES: NtError = NtError::new(NtStatus::INSUFFICIENT_RESOURCES);
    /// `STATUS_INVALID_DEVICE_STATE`.
    pub const INVALID_DEVICE_STATE: NtError = NtError::new(NtStatus::INVALID_DEVICE_STATE);
    /// `STATUS_DELETE_PENDING`.
    pub const DELETE_PENDING: NtError = NtError::new(NtStatus::DELETE_PENDING);
    /// `STATUS_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: NtError = NtError::new(NtStatus::INVALID_PARAMETER);

    /// Wraps an error status.
    ///
    /// # Panics
    /// If `status` is not of error severity (at compile time when used in a constant).
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn new(status: NtStatus) -> NtError {
        assert!(status.is_error(), "NtError::new: not an NT error status");
        // INVARIANT: checked just above.
        NtError(status)
    }

    /// `Some` if `status` is an NT error.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn from_status(status: NtStatus) -> Option<NtError> {
        if status.is_error() {
            Some(NtError(status))
        } else {
            None
        }
    }

    /// The status.
    ///
    /// IRQL: any (no kernel call).
    #[must_use]
    pub const fn status(self) -> NtStatus {
        self.0
    }
}

impl From<NtError> for NtStatus {
    fn from(e: NtError) -> NtStatus {
        e.0
    }
}

//! The device's interface, as a user-mode client sees it (the `public.h` of this driver; spec
//! B.1 and `docs/timer-event-design.md`). `csq-event` and `eventctl` keep their own copies; the
//! acceptance tests check that all three agree.

use csq::{NtStatus, TransferMethod, ctl_code};

/// `FILE_DEVICE_UNKNOWN`.
pub const FILE_DEVICE_UNKNOWN: u32 = 0x22;

/// `IOCTL_REGISTER_EVENT` = `CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED,
/// FILE_ANY_ACCESS)` = `0x222000`.
pub const IOCTL_REGISTER_EVENT: u32 =
    ctl_code(FILE_DEVICE_UNKNOWN, 0x800, TransferMethod::Buffered, 0);

/// `REGISTER_EVENT.Type`: the IOCTL stays pending until the due time.
pub const IRP_BASED: u32 = 0;
/// `REGISTER_EVENT.Type`: the IOCTL completes at once; the event is signalled at the due time.
pub const EVENT_BASED: u32 = 1;

/// `sizeof(REGISTER_EVENT)` on x64: `{ u32 Type @0; HANDLE hEvent @8; i64 DueTime @16 }`.
pub const REGISTER_EVENT_SIZE: usize = 24;

/// The user-visible name of the device (`\\.\StartIoEvent`).
pub const DOS_NAME: &str = r"\\.\StartIoEvent";

/// How a registration is notified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `IRP_BASED`.
    IrpBased,
    /// `EVENT_BASED`, with the caller's event handle.
    EventBased {
        /// `hEvent`, a handle in the caller's process.
        handle: usize,
    },
}

/// A decoded `REGISTER_EVENT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterEvent {
    /// `Type` (and `hEvent` for event-based registrations).
    pub kind: Kind,
    /// `DueTime` as given: 100 ns units, negative relative, positive also taken as relative.
    pub due_time: i64,
}

impl RegisterEvent {
    /// Decodes the input buffer. A longer input is accepted; its extra bytes are ignored.
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` for an input shorter than [`REGISTER_EVENT_SIZE`] or a `Type`
    /// other than [`IRP_BASED`] and [`EVENT_BASED`] (spec B.1 dispatch step 2).
    pub fn parse(input: &[u8]) -> Result<RegisterEvent, NtStatus> {
        let Some(input) = input.get(..REGISTER_EVENT_SIZE) else {
            return Err(NtStatus::INVALID_PARAMETER);
        };
        let u32_at = |o: usize| u32::from_le_bytes(input[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(input[o..o + 8].try_into().expect("8 bytes"));
        let kind = match u32_at(0) {
            IRP_BASED => Kind::IrpBased,
            EVENT_BASED => Kind::EventBased {
                handle: u64_at(8) as usize,
            },
            _ => return Err(NtStatus::INVALID_PARAMETER),
        };
        Ok(RegisterEvent {
            kind,
            due_time: u64_at(16) as i64,
        })
    }

    /// The delay until the registration is due. A positive `DueTime` is negated, which makes it
    /// relative too (spec B.1 registration step 2: the sample's rule, not an absolute date); 0
    /// is due at once.
    pub fn delay(&self) -> csq::Interval {
        csq::Interval::from_100ns(self.due_time.unsigned_abs())
    }

    /// Encodes a `REGISTER_EVENT` (for clients and tests).
    pub fn encode(&self) -> [u8; REGISTER_EVENT_SIZE] {
        let (ty, handle) = match self.kind {
            Kind::IrpBased => (IRP_BASED, 0usize),
            Kind::EventBased { handle } => (EVENT_BASED, handle),
        };
        let mut b = [0u8; REGISTER_EVENT_SIZE];
        b[0..4].copy_from_slice(&ty.to_le_bytes());
        b[8..16].copy_from_slice(&(handle as u64).to_le_bytes());
        b[16..24].copy_from_slice(&self.due_time.to_le_bytes());
        b
    }
}

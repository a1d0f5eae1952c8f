//! The device interface: what a client needs to talk to the devices (the sample's `public.h`,
//! spec B.1; the contract is `docs/timer-event-design.md`).
//!
//! eventctl and the StartIo sample keep their own copies of these numbers; the acceptance tests
//! check that all three agree.

use csq::{TransferMethod, ctl_code};

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

/// `sizeof(REGISTER_EVENT)` on x64: `{ u32 Type; HANDLE hEvent; LARGE_INTEGER DueTime }`.
pub const REGISTER_EVENT_SIZE: usize = 24;
/// Offset of `Type` (u32).
pub const TYPE_OFFSET: usize = 0;
/// Offset of `hEvent` (HANDLE, 8 bytes).
pub const EVENT_OFFSET: usize = 8;
/// Offset of `DueTime` (i64, 100 ns units; negative = relative).
pub const DUE_TIME_OFFSET: usize = 16;

/// The model-C device (every registration has its own deadline).
pub const CONCURRENT_DEVICE: &str = "\\Device\\CsqEvent";
/// Its symbolic link, `\\.\CsqEvent` for Win32 clients.
pub const CONCURRENT_LINK: &str = "\\DosDevices\\CsqEvent";
/// The model-S device (one IRP-based registration in service at a time, on `SerialWorker`).
pub const SERIAL_DEVICE: &str = "\\Device\\CsqEventSerial";
/// Its symbolic link, `\\.\CsqEventSerial` for Win32 clients.
pub const SERIAL_LINK: &str = "\\DosDevices\\CsqEventSerial";

/// The `REGISTER_EVENT` input of a registration (what a client sends).
#[must_use]
pub fn register_event(kind: u32, event: usize, due_time: i64) -> [u8; REGISTER_EVENT_SIZE] {
    let mut b = [0u8; REGISTER_EVENT_SIZE];
    b[TYPE_OFFSET..TYPE_OFFSET + 4].copy_from_slice(&kind.to_le_bytes());
    b[EVENT_OFFSET..EVENT_OFFSET + 8].copy_from_slice(&(event as u64).to_le_bytes());
    b[DUE_TIME_OFFSET..DUE_TIME_OFFSET + 8].copy_from_slice(&due_time.to_le_bytes());
    b
}

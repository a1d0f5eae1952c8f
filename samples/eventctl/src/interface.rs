//! eventctl's copy of the devices' interface (the drivers' `public.h`): the IOCTL, the
//! `REGISTER_EVENT` layout and the device names. Each driver keeps its own copy in its
//! `src/interface.rs`; the acceptance tests (`tests/tests/interface.rs`) check that the three
//! agree.

pub use crate::script::{IOCTL_REGISTER_EVENT, REGISTER_EVENT_SIZE};

/// `REGISTER_EVENT.Type` of an IRP-based registration: the IOCTL stays pending until the due
/// time.
pub const IRP_BASED: u32 = 0;
/// `REGISTER_EVENT.Type` of an event-based registration: the IOCTL completes at once and the
/// driver signals `hEvent` at the due time.
pub const EVENT_BASED: u32 = 1;

/// Offset of `u32 Type` in `REGISTER_EVENT`.
pub const TYPE_OFFSET: usize = 0;
/// Offset of `HANDLE hEvent` in `REGISTER_EVENT` (x64).
pub const HANDLE_OFFSET: usize = 8;
/// Offset of `i64 DueTime` in `REGISTER_EVENT` (x64).
pub const DUE_TIME_OFFSET: usize = 16;

/// The user-visible name of `startio`'s device (samples/startio-event, service `StartIoEvent`).
pub const STARTIO_PATH: &str = r"\\.\StartIoEvent";
/// The user-visible name of `csq-serial`'s device (driver/, service `CsqEvent`).
pub const CSQ_SERIAL_PATH: &str = r"\\.\CsqEventSerial";
/// The user-visible name of `csq-concurrent`'s device (driver/, service `CsqEvent`).
pub const CSQ_CONCURRENT_PATH: &str = r"\\.\CsqEvent";

/// A handle value that names nothing in the client's process (`badevent handle=invalid`):
/// a multiple of 4 far above any handle a short run creates, and not one of the pseudo-handles
/// (-1 is the current process, -2 the current thread).
pub const INVALID_EVENT_HANDLE: u64 = 0x7FFF_FFFC;

/// The `REGISTER_EVENT` bytes: `Type` at 0, `hEvent` at 8, `DueTime` at 16, padding zero.
pub fn register_event(
    ty: u32,
    event: u64,
    due_time_100ns: i64,
) -> [u8; REGISTER_EVENT_SIZE as usize] {
    let mut bytes = [0u8; REGISTER_EVENT_SIZE as usize];
    bytes[TYPE_OFFSET..TYPE_OFFSET + 4].copy_from_slice(&ty.to_le_bytes());
    bytes[HANDLE_OFFSET..HANDLE_OFFSET + 8].copy_from_slice(&event.to_le_bytes());
    bytes[DUE_TIME_OFFSET..DUE_TIME_OFFSET + 8].copy_from_slice(&due_time_100ns.to_le_bytes());
    bytes
}

/// The input buffer of `raw <r> <h> len=<n> [type=<n>] [due=<ms>]`: `REGISTER_EVENT` with a
/// NULL `hEvent`, cut to `len` bytes or zero-padded to it.
pub fn raw_input(len: u32, ty: Option<u32>, due_ms: Option<u64>) -> Vec<u8> {
    let due = crate::script::Due::Ms(due_ms.unwrap_or(0)).due_time_100ns();
    let mut bytes = register_event(ty.unwrap_or(IRP_BASED), 0, due).to_vec();
    bytes.resize(len as usize, 0);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_event_layout_is_the_x64_struct() {
        let b = register_event(EVENT_BASED, 0x1234, -10_000);
        assert_eq!(b[0..4], [1, 0, 0, 0]);
        assert_eq!(b[4..8], [0; 4]);
        assert_eq!(b[8..16], 0x1234u64.to_le_bytes());
        assert_eq!(b[16..24], (-10_000i64).to_le_bytes());
    }

    #[test]
    fn raw_input_cuts_and_pads() {
        assert_eq!(raw_input(16, Some(7), Some(5)).len(), 16);
        assert_eq!(raw_input(16, Some(7), Some(5))[0], 7);
        let long = raw_input(32, None, Some(50));
        assert_eq!(long[16..24], (-500_000i64).to_le_bytes());
        assert_eq!(long[24..], [0; 8]);
        assert!(raw_input(0, None, None).is_empty());
    }

    #[test]
    fn ioctl_is_ctl_code_unknown_0x800_buffered_any_access() {
        let ctl = |dev: u32, func: u32, method: u32, access: u32| {
            (dev << 16) | (access << 14) | (func << 2) | method
        };
        assert_eq!(IOCTL_REGISTER_EVENT, ctl(0x22, 0x800, 0, 0));
    }
}

//! `csq-event`: the timer-event driver (spec B.1) on `wdm-csq`, with two devices.
//!
//! - `\Device\CsqEvent` (`\\.\CsqEvent`): model C, the original sample's semantics — every
//!   IRP-based registration has its own deadline, all run concurrently ([`concurrent`]).
//! - `\Device\CsqEventSerial` (`\\.\CsqEventSerial`): model S — one IRP-based registration in
//!   service at a time, device-wide FIFO, on `csq`'s serial worker; observably identical to the
//!   StartIo sample ([`serial`]).
//!
//! Both share validation, event-based registrations, per-handle rundown and cleanup
//! ([`device`]). The behavioural contract is `docs/timer-event-design.md`; the client interface
//! is [`interface`]. The driver uses `csq`'s safe API only: the same source runs on ntsim and on
//! Windows.
// The kernel image has no `std`; host builds keep it (ntsim and the tests need it).
#![cfg_attr(windows, no_std)]

mod concurrent;
mod device;
mod events;
mod files;
pub mod interface;
mod registration;
mod serial;
mod slots;

// The Windows image's panic handler (platform glue, not driver logic).
#[cfg(windows)]
mod panic_handler;

use csq::{DeviceAccess, DeviceConfig, DriverObject, NtStatus};

pub use concurrent::IRP_RECORD_TAG;
pub use events::EVENT_RECORD_TAG;

use concurrent::Concurrent;
use device::EventDevice;
use interface::FILE_DEVICE_UNKNOWN;
use serial::Serial;

/// `FILE_DEVICE_SECURE_OPEN`.
const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
/// SYSTEM and Administrators: all access (`D:P(A;;GA;;;SY)(A;;GA;;;BA)`).
const ACCESS: DeviceAccess = DeviceAccess::SystemAndAdministrators;

/// The model-C device.
const CONCURRENT: DeviceConfig = DeviceConfig {
    name: csq::wstr!("\\Device\\CsqEvent"),
    symbolic_link: Some(csq::wstr!("\\DosDevices\\CsqEvent")),
    access: ACCESS,
    device_type: FILE_DEVICE_UNKNOWN,
    characteristics: FILE_DEVICE_SECURE_OPEN,
    exclusive: false,
    buffered_io: true,
};

/// The model-S device.
const SERIAL: DeviceConfig = DeviceConfig {
    name: csq::wstr!("\\Device\\CsqEventSerial"),
    symbolic_link: Some(csq::wstr!("\\DosDevices\\CsqEventSerial")),
    ..CONCURRENT
};

fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    driver.create_device(&SERIAL, EventDevice::new(Serial::new()))?;
    driver.create_device(&CONCURRENT, EventDevice::new(Concurrent::new()))?;
    Ok(())
}

// Unload deletes the devices; dropping their extensions cancels every timer, waits for the
// DPCs, stops the worker thread and frees every record (unload comes after every handle is
// closed, so nothing is pending any more).
csq::driver_entry!(pub fn driver_entry = init);

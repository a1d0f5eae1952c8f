//! `startio-event`: the WDK event sample's timer-event device on IoStartPacket/StartIo, written
//! against `wdm-csq`'s safe StartIo wrapper. Device `\Device\StartIoEvent`, user-visible as
//! `\\.\StartIoEvent`; service `StartIoEvent`.
//!
//! The behavioural contract (model S, shared with `csq-event`'s `CsqEventSerial`) is
//! `docs/timer-event-design.md`; spec B.1 and B.5 are its sources. The modules:
//!
//! - [`interface`]: the IOCTL and its input (this driver's `public.h`);
//! - [`device`]: the device extension, its dispatch routines, StartIo and the timer DPC;
//! - `events`: event-based registrations with their own timers (E3(a));
//! - `files`: per-handle records with the remove lock of the cleanup rundown (spec A.17);
//! - `list`: the pool-backed list both use.
//!
//! On Windows the crate is the kernel image (`startio_event.sys`, see `docs/windows-build.md`
//! and `docs/install.md`); on other hosts it links against ntsim, where
//! `ntsim::driver::load_driver("StartIoEvent", Some(startio_event::driver_entry))` loads it.
// The kernel image has no `std`; host builds keep it (ntsim and the tests need it).
#![cfg_attr(windows, no_std)]

pub mod device;
mod events;
mod files;
pub mod interface;
mod list;

// The panic handler of the Windows image.
#[cfg(windows)]
mod windows_glue;

use csq::{DeviceConfig, DriverObject, NtStatus};

pub use device::StartIoEvent;
pub use events::EVENT_TAG;
pub use files::FILE_TAG;

/// `\Device\StartIoEvent`.
pub const DEVICE_NAME: &[u16] = csq::wstr!("\\Device\\StartIoEvent");
/// `\DosDevices\StartIoEvent`, i.e. `\\.\StartIoEvent`.
pub const SYMBOLIC_LINK: &[u16] = csq::wstr!("\\DosDevices\\StartIoEvent");
/// SYSTEM and Administrators: all access (`D:P(A;;GA;;;SY)(A;;GA;;;BA)`).
pub const ACCESS: csq::DeviceAccess = csq::DeviceAccess::SystemAndAdministrators;

/// DriverEntry: creates the device (spec B.1: FILE_DEVICE_UNKNOWN, FILE_DEVICE_SECURE_OPEN,
/// non-exclusive, buffered I/O).
fn init(driver: &DriverObject) -> Result<(), NtStatus> {
    let config = DeviceConfig {
        name: DEVICE_NAME,
        symbolic_link: Some(SYMBOLIC_LINK),
        access: ACCESS,
        device_type: interface::FILE_DEVICE_UNKNOWN,
        characteristics: 0x100, // FILE_DEVICE_SECURE_OPEN
        exclusive: false,
        buffered_io: true,
    };
    driver.create_startio_device(&config, StartIoEvent::new())?;
    Ok(())
}

/// DriverUnload: the I/O manager calls it once every handle is closed, so every request was
/// completed by its cleanup and every registration dropped. Deleting the device (which the
/// generated unload does next) drops the extension: the timer is cancelled and its DPC flushed,
/// and any record left is freed.
fn unload(_driver: &DriverObject) {}

csq::driver_entry!(pub fn driver_entry = init; unload = unload);

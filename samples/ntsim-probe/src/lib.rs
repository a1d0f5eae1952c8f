//! ntsim-probe: a test fixture, not a product driver. A tiny WDM driver written with raw
//! `wdk-sys` calls whose DriverEntry and IOCTLs exercise a spread of kernel routines, so that
//! ntsim's image loader tests (`ntsim/tests/image.rs`) run a real cross-built image:
//!
//! - DriverEntry: `DbgPrint`/`DbgPrintEx` with most conversions, `ExAllocatePool2` /
//!   `ExFreePoolWithTag`, `KeInitializeEvent`/`KeSetEvent`/`KeReadStateEvent`, `IoCreateDevice`
//!   (`\Device\NtsimProbe`) and its symbolic link (`\DosDevices\NtsimProbe`), dispatch routines
//!   for create, close and device control, DriverUnload, and a timer with a DPC.
//! - IOCTLs (METHOD_BUFFERED, device type 0x8000): [`IOCTL_PING`] answers `pong`;
//!   [`IOCTL_TIMER`] arms a 10 ms timer and waits until its DPC has run; [`IOCTL_BREAK`] calls
//!   `DbgBreakPoint`; [`IOCTL_BUGCHECK`] calls `KeBugCheckEx(0xE2, 0xDEAD, 1, 2, 3)`.
//!
//! Built only for Windows (`scripts/windows-build.sh` → `target/windows/out/ntsim_probe.sys`);
//! on other targets the crate is empty. Never install it on a real machine: it bugchecks on
//! request.
#![cfg_attr(windows, no_std)]

/// `CTL_CODE(0x8000, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS)`: answers "pong".
pub const IOCTL_PING: u32 = 0x8000_2000;
/// `CTL_CODE(0x8000, 0x801, ...)`: arms a 10 ms timer whose DPC signals an event, and waits.
pub const IOCTL_TIMER: u32 = 0x8000_2004;
/// `CTL_CODE(0x8000, 0x802, ...)`: `KeBugCheckEx(0xE2, 0xDEAD, 1, 2, 3)`.
pub const IOCTL_BUGCHECK: u32 = 0x8000_2008;
/// `CTL_CODE(0x8000, 0x803, ...)`: `DbgBreakPoint()`.
pub const IOCTL_BREAK: u32 = 0x8000_200C;

#[cfg(windows)]
mod image;

//! The timer-event driver on wdm-csq (issue 4).
// The kernel image has no `std`; host builds keep it (ntsim and the tests need it).
#![cfg_attr(windows, no_std)]

// Entry point and panic handler of the Windows image (temporary, see the file).
#[cfg(windows)]
mod windows_entry;

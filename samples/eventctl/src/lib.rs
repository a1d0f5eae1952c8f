//! `eventctl`: the client of the timer-event devices (issue 4).
//!
//! It runs scenario scripts (`shared/design/scenarios.md` is the contract) against a device
//! through a [`backend::Backend`] and prints what a user observes; `compare` puts two devices side
//! by side; `demo` draws three devices on one scenario as a timeline.
//!
//! Layout: [`script`] parses, [`observation`] is what a run reports and how it prints,
//! [`backend`] is the seam to a device, [`devices`] makes the backends, [`compare`] and
//! [`timeline`] present runs, [`cli`] is the command line.

pub mod backend;
pub mod cli;
pub mod compare;
pub mod devices;
pub mod interface;
#[cfg(not(windows))]
pub mod ntsim_backend;
pub mod observation;
pub mod script;
pub mod timeline;
#[cfg(windows)]
pub mod windows_backend;

#[cfg(test)]
mod fake;

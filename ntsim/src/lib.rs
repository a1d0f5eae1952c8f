//! ntsim: a user-mode model of the NT kernel pieces that WDM drivers use, with a verifier.
//!
//! Drivers and the `wdm-csq` crate run on it unchanged: the kernel routines have the names and
//! signatures of the real `ntoskrnl.exe` exports, and every object a driver can see has the
//! Windows x64 layout ([`ntdef`]). A [`Kernel`] is one emulated machine; [`Kernel::run`] runs a
//! closure as its first system thread, and every routine of this crate may be called from
//! there or from the threads, DPCs and driver routines it leads to.
//!
//! The scheduler ([`sched`]) runs one emulated thread at a time and switches at the points where
//! Windows could interleave CPUs, so runs are deterministic per policy and seed, races can be
//! forced with [`breakpoint`]s or explored with random and PCT policies, and virtual time
//! ([`clock`]) jumps to the next deadline when nothing can run. The [`verifier`] reports the
//! rules of spec C with their numbers; fatal ones halt the machine as a bugcheck would.

#![allow(non_snake_case, non_upper_case_globals)]

mod abi;
pub mod breakpoint;
pub mod cancel;
pub mod clock;
pub mod complete;
mod complete_checks;
mod cpu;
pub mod csq;
pub mod device_queue;
pub mod dpc;
pub mod driver;
pub mod driver_bugs;
pub mod event;
pub mod image;
pub mod iomgr;
pub mod irp;
pub mod irql;
mod machine;
pub mod ntdef;
pub mod object;
pub mod pool;
pub mod remove_lock;
pub mod sched;
pub mod security;
pub mod semaphore;
pub mod spinlock;
pub mod startio;
mod sync;
pub mod thread;
pub mod timer;
pub mod verifier;
pub mod wait;

pub use machine::{Config, Kernel, Outcome};
pub use verifier::{Report, Rule, Severity};

/// The README's Rust examples run as doc tests of this crate, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;

//! Windows x64 definitions of the kernel objects a driver can see or embed.
//!
//! Every type here has the **Windows x64 layout** (sizes, alignments and field offsets) given in
//! the project's ground-truth table, `spec/x64-layouts.md`; `tests/layout.rs` checks every listed
//! offset and each definition carries a compile-time size assertion.
//!
//! Conventions:
//!
//! - Field and type names are Windows's own (`IRP`, `Tail`, `CurrentStackLocation`, …), hence the
//!   module-wide `non_snake_case`/`non_camel_case_types` allowances.
//! - C anonymous unions and structs get explicit names, documented on each type: for example
//!   `IRP.AssociatedIrp` is [`IRP_ASSOCIATED_IRP`](union@IRP_ASSOCIATED_IRP) (the union; the
//!   `IRP.Flags` bit of the same name is a constant), `IRP.Tail` is [`IRP_TAIL`], the
//!   `DeviceQueueEntry`/`DriverContext` overlay is reached as
//!   `irp.Tail.Overlay.DeviceQueue.DriverContext[3]`, and the status in an [`IO_STATUS_BLOCK`] is
//!   `iosb.u.Status`.
//! - Naming `irp.Tail.Overlay.DeviceQueue.DriverContext[3]` crosses two unions (two unsafe
//!   operations); [`IRP::driver_context_ptr`], [`IRP::list_entry_ptr`], [`IRP::from_list_entry`]
//!   and friends compute those addresses from a `*mut IRP` without dereferencing it.
//! - `POINTER_ALIGNMENT` members (8-aligned on x64) are modelled with explicit padding fields named
//!   `_padN`, so the offsets are visible in the source.
//! - Objects whose internals drivers never touch (threads, processes, APCs, MDLs, wait context
//!   blocks) are opaque byte blocks of the right size (or, for threads and processes, of a size
//!   large enough for the dispatcher header drivers wait on).
//! - All of these are plain old data: all-zero is a valid value of each (null pointers, `None`
//!   callbacks), which is what the `zeroed()` constructors rely on.
//! - ntsim keeps its own bookkeeping (ownership, verifier state, wait queues) in side tables keyed
//!   by object address, **never** in these structs: a driver may read or write any field it could
//!   on Windows without corrupting the emulator.
//!
//! Callback types use `extern "system"`, which is the native C ABI on the host; a routine pointer
//! obtained from a real Windows image would need `extern "win64"` instead (see the errata in the
//! layout spec).
#![allow(non_snake_case, non_camel_case_types, non_upper_case_globals)]

/// Implements a safe all-zero constructor for plain-old-data types.
macro_rules! impl_zeroed {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl $ty {
                /// An all-zero value: null pointers, `None` callbacks, zero counters.
                ///
                /// This is what `RtlZeroMemory` on a freshly allocated object gives; it is not an
                /// *initialized* kernel object (use the matching `Ke*`/`Io*` initializer for that).
                #[must_use]
                pub fn zeroed() -> Self {
                    // SAFETY: the type is `#[repr(C)]` plain old data made only of integers, raw
                    // pointers, `Option<fn>` callbacks and arrays/unions thereof, for all of which
                    // the all-zero bit pattern is a valid value.
                    unsafe { core::mem::zeroed() }
                }
            }
        )+
    };
}

/// Implements a short `Debug` for a C union. Which member is live is unknown (and the bytes outside
/// it may be uninitialized), so the contents are not shown.
macro_rules! impl_union_debug {
    ($($ty:ident),+ $(,)?) => {
        $(
            impl core::fmt::Debug for $ty {
                fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                    f.debug_struct(stringify!($ty)).finish_non_exhaustive()
                }
            }
        )+
    };
}

pub mod access;
pub mod basic;
pub mod callbacks;
pub mod csq;
pub mod device_object;
pub mod device_queue;
pub mod dispatcher;
pub mod dpc;
pub mod driver_object;
pub mod file_object;
pub mod ioctl;
pub mod irp;
pub mod opaque;
pub mod remove_lock;
pub mod stack_location;
pub mod status;

pub use access::*;
pub use basic::*;
pub use callbacks::*;
pub use csq::*;
pub use device_object::*;
pub use device_queue::*;
pub use dispatcher::*;
pub use dpc::*;
pub use driver_object::*;
pub use file_object::*;
pub use ioctl::*;
pub use irp::*;
pub use opaque::*;
pub use remove_lock::*;
pub use stack_location::*;
pub use status::*;

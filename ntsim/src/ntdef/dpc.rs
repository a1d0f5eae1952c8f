//! Deferred procedure calls.

use core::mem::size_of;

use super::basic::{PVOID, SINGLE_LIST_ENTRY, ULONG_PTR};
use super::callbacks::PKDEFERRED_ROUTINE;

/// A DPC object. `Type` is [`super::DpcObject`] (or [`super::ThreadedDpcObject`]); `Importance`
/// is `LowImportance`/`MediumImportance`/`HighImportance`; `DpcData` is non-null while the DPC is
/// queued (it points at the per-processor DPC data on Windows).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDPC {
    pub Type: u8,
    pub Importance: u8,
    pub Number: u16,
    pub DpcListEntry: SINGLE_LIST_ENTRY,
    pub ProcessorHistory: ULONG_PTR,
    pub DeferredRoutine: PKDEFERRED_ROUTINE,
    pub DeferredContext: PVOID,
    pub SystemArgument1: PVOID,
    pub SystemArgument2: PVOID,
    pub DpcData: PVOID,
}
const _: () = assert!(size_of::<KDPC>() == 64);

/// `KDPC_IMPORTANCE` values stored in [`KDPC::Importance`].
pub type KDPC_IMPORTANCE = u8;
pub const LowImportance: KDPC_IMPORTANCE = 0;
pub const MediumImportance: KDPC_IMPORTANCE = 1;
pub const HighImportance: KDPC_IMPORTANCE = 2;
pub const MediumHighImportance: KDPC_IMPORTANCE = 3;

impl_zeroed!(KDPC);

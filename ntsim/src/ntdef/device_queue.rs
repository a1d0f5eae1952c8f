//! Device queues (`KDEVICE_QUEUE`), as used by `IoStartPacket`/`IoStartNextPacket`.

use core::mem::size_of;

use super::basic::{BOOLEAN, CSHORT, LIST_ENTRY, ULONG};

/// A spin lock: one pointer-sized word, 0 when free.
pub type KSPIN_LOCK = usize;

/// A device queue. `Type` is [`super::DeviceQueueObject`]; `Size` is the size in bytes (40).
///
/// On x64 `Busy` shares its 8-byte slot with a `Reserved:8`/`Hint:56` bitfield; drivers only
/// see `Busy`, so the remaining 7 bytes are modelled as opaque `_hint` padding.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE {
    pub Type: CSHORT,
    pub Size: CSHORT,
    pub DeviceListHead: LIST_ENTRY,
    pub Lock: KSPIN_LOCK,
    pub Busy: BOOLEAN,
    _hint: [u8; 7],
}
const _: () = assert!(size_of::<KDEVICE_QUEUE>() == 40);

/// An entry of a [`KDEVICE_QUEUE`]; `Inserted` is TRUE while it is linked on a queue.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE_ENTRY {
    pub DeviceListEntry: LIST_ENTRY,
    pub SortKey: ULONG,
    pub Inserted: BOOLEAN,
}
const _: () = assert!(size_of::<KDEVICE_QUEUE_ENTRY>() == 24);

impl_zeroed!(KDEVICE_QUEUE, KDEVICE_QUEUE_ENTRY);
